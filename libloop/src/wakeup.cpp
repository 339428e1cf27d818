#include "wakeup.h"

#include "clock.h"

#include <cerrno>
#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace libloop::detail {

namespace {
long futex(std::atomic<std::uint32_t>* addr, int op, std::uint32_t val, const timespec* ts) {
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), op, val, ts, nullptr, 0);
}
} // namespace

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

Wakeup::Wakeup() {
    eventFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

Wakeup::~Wakeup() {
    if (eventFd_ >= 0)
        ::close(eventFd_);
}

void Wakeup::wakeSlow(std::uint64_t word) noexcept {
    const std::uint64_t epoch = word >> 2;
    // Only the first producer to see this sleep's epoch issues the syscall.
    if (wokenEpoch_.exchange(epoch, std::memory_order_acq_rel) == epoch)
        return;
    syscalls_.fetch_add(1, std::memory_order_relaxed);
    if ((word & 3) == Futex) {
        futex_.fetch_add(1, std::memory_order_release);
        futex(&futex_, FUTEX_WAKE_PRIVATE, 1, nullptr);
    } else {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(eventFd_, &one, sizeof one);
    }
}

void Wakeup::futexWait(std::uint32_t seen, std::int64_t timeoutNs) noexcept {
    // Returns at once (EAGAIN) if a producer bumped the word after we read `seen`; EINTR and
    // spurious returns are fine: the caller re-checks everything.
    timespec ts;
    futex(&futex_, FUTEX_WAIT_PRIVATE, seen, relativeTimeout(timeoutNs, ts));
}

void Wakeup::drainEventFd() noexcept {
    std::uint64_t v;
    while (::read(eventFd_, &v, sizeof v) > 0) {
    }
}

} // namespace libloop::detail
