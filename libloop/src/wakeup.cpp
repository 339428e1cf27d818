#include "wakeup.h"

#include "clock.h"
#include "faults.h"

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
    } else if (!writeEventFd()) {
        // This wake-up is lost; let the next notify for the same sleep try again instead of
        // being de-duplicated against it.
        std::uint64_t e = epoch;
        wokenEpoch_.compare_exchange_strong(e, 0, std::memory_order_acq_rel);
    }
}

bool Wakeup::writeEventFd() noexcept {
    const std::uint64_t one = 1;
    for (;;) {
        int err = faults::check(faults::Site::EventFdWrite);
        if (err == 0) {
            if (::write(eventFd_, &one, sizeof one) == sizeof one)
                return true;
            err = errno;
        }
        if (err == EAGAIN) // the counter is saturated: the eventfd is readable already
            return true;
        if (err != EINTR)
            return false;
    }
}

void Wakeup::futexWait(std::uint32_t seen, std::int64_t timeoutNs) noexcept {
    // Returns at once (EAGAIN) if a producer bumped the word after we read `seen`; EINTR and
    // spurious returns are fine: the caller re-checks everything.
    timespec ts;
    futex(&futex_, FUTEX_WAIT_PRIVATE, seen, relativeTimeout(timeoutNs, ts));
}

void Wakeup::drainEventFd() noexcept {
    // One read takes the whole counter and resets it to 0 (no EFD_SEMAPHORE), so a read that
    // returns 8 bytes leaves the eventfd empty: no second read to see EAGAIN. EINTR is retried;
    // EAGAIN (already empty) and any other error return: an error leaves the eventfd readable, so
    // the next poll returns at once and drains it again.
    std::uint64_t v;
    for (;;) {
        int err = faults::check(faults::Site::EventFdRead);
        if (err == 0) {
            if (::read(eventFd_, &v, sizeof v) == sizeof v)
                return;
            err = errno;
        }
        if (err != EINTR)
            return;
    }
}

} // namespace libloop::detail
