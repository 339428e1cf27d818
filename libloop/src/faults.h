// Fault injection: the test seam that makes the loop's syscalls and allocations fail on demand,
// so tests can prove what the loop does when the kernel or the allocator says no
// (tests/libloop/tst_faults.cpp).
//
// Process-wide: an armed site fails for every loop in the process. When nothing is armed a site
// costs one relaxed load of a global flag (no syscall, no lock). Armed sites are resolved under a
// mutex; that only happens in tests.
//
// What the loop does at each site (documented in the Loop API where a caller sees it):
//   EpollCtl          EINTR is retried; other errors fail registerFd/modifyFd/unregisterFd with
//                     SystemError(errno) (EBADF: InvalidArgument) and change nothing.
//   EpollWait         treated as a wait that returned no event (the loop re-checks its queues).
//   EventFdWrite      EINTR is retried; EAGAIN means the counter is saturated, so the loop is
//                     already woken; another error loses that one wake-up, and the next notify
//                     issues the syscall again (it is not de-duplicated against the failed one).
//   EventFdRead       EINTR is retried; another error leaves the eventfd readable: the next poll
//                     returns at once and drains it again.
//   IngressBlock      submit() answers SystemError(ENOMEM); nothing accepted is lost.
//   TimerChunk        scheduleTimer() answers SystemError(ENOMEM) (TooManyTimers is kept for the
//                     configured maxTimers); nothing accepted is lost.
//   LocalQueueGrow    submitInternal()/queueImmediate() answer SystemError(ENOMEM).
//   MicrotaskOverflow queueMicrotask() into a full ring answers SystemError(ENOMEM).
//   FdTable           registerFd() answers SystemError(ENOMEM).
#pragma once

#include <atomic>
#include <cstdint>

namespace libloop::detail::faults {

enum class Site : std::uint8_t {
    EpollCtl,
    EpollWait,
    EventFdWrite,
    EventFdRead,
    IngressBlock,
    TimerChunk,
    LocalQueueGrow,
    MicrotaskOverflow,
    FdTable,
    Count
};

// Arms `site`: the next `skip` calls pass, then the next `count` calls fail with `err`.
// Re-arming a site replaces its previous setting.
void arm(Site site, int err, std::uint32_t count = 1, std::uint32_t skip = 0) noexcept;
// Disarms every site and resets the counts of triggered faults.
void reset() noexcept;
// How many times `site` failed since the last reset().
std::uint64_t triggered(Site site) noexcept;

extern std::atomic<bool> anyArmed;
int checkSlow(Site site) noexcept;

// At a site: the errno to fail with, or 0 to go ahead.
inline int check(Site site) noexcept {
    return anyArmed.load(std::memory_order_relaxed) ? checkSlow(site) : 0;
}

} // namespace libloop::detail::faults
