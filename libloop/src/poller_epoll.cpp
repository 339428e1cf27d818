#include "poller_epoll.h"

#include "clock.h"
#include "faults.h"

#include <cerrno>
#include <ctime>
#include <sys/syscall.h>
#include <unistd.h>

namespace libloop::detail {

PollerEpoll::PollerEpoll() {
    fd_ = ::epoll_create1(EPOLL_CLOEXEC);
}

PollerEpoll::~PollerEpoll() {
    if (fd_ >= 0)
        ::close(fd_);
}

namespace {
// epoll_ctl, 0 or errno; EINTR (which Linux does not document for it, but a signal-heavy or
// injected environment may produce) is retried.
int control(int epfd, int op, int fd, epoll_event* e) noexcept {
    for (;;) {
        int err = faults::check(faults::Site::EpollCtl);
        if (err == 0 && ::epoll_ctl(epfd, op, fd, e) != 0)
            err = errno;
        if (err != EINTR)
            return err;
    }
}
} // namespace

int PollerEpoll::add(int fd, std::uint32_t ev, std::uint64_t data) noexcept {
    epoll_event e{};
    e.events = ev;
    e.data.u64 = data;
    return control(fd_, EPOLL_CTL_ADD, fd, &e);
}

int PollerEpoll::modify(int fd, std::uint32_t ev, std::uint64_t data) noexcept {
    epoll_event e{};
    e.events = ev;
    e.data.u64 = data;
    return control(fd_, EPOLL_CTL_MOD, fd, &e);
}

int PollerEpoll::remove(int fd) noexcept {
    epoll_event e{};
    const int err = control(fd_, EPOLL_CTL_DEL, fd, &e);
    return (err == EBADF || err == ENOENT || err == EPERM) ? 0 : err;
}

int PollerEpoll::wait(epoll_event* events, int max, std::int64_t timeoutNs) noexcept {
    if (faults::check(faults::Site::EpollWait))
        return 0; // as an interrupted wait: the caller re-checks and waits again
    int n;
#ifdef SYS_epoll_pwait2
    if (havePwait2_) {
        timespec ts;
        n = int(::syscall(SYS_epoll_pwait2, fd_, events, max, relativeTimeout(timeoutNs, ts),
                          nullptr, 0));
        if (n >= 0)
            return n;
        if (errno != ENOSYS)
            return 0;
        havePwait2_ = false;
    }
#endif
    // Millisecond resolution: round up so a wait never ends before the deadline.
    int ms = -1;
    if (timeoutNs >= 0) {
        const std::int64_t m = (timeoutNs + 999'999) / 1'000'000;
        ms = m > INT32_MAX ? INT32_MAX : int(m);
    }
    n = ::epoll_wait(fd_, events, max, ms);
    return n < 0 ? 0 : n;
}

} // namespace libloop::detail
