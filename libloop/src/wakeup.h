// Wake-ups: how producers on other threads get a sleeping loop thread going again.
//
// The loop sleeps either on a futex word (the fast path, no fds) or in epoll_wait on an eventfd
// (the fd path). Producers must not pay a syscall when the loop is awake, and must never miss a
// sleeping loop. The handshake is Dekker-style over two seq_cst operations:
//
//   producer: publish work (a seq_cst store or RMW)   loop: beginSleep(kind)  (seq_cst store)
//             notify(): sleepWord_ (seq_cst load)           check every queue (seq_cst loads)
//
// In the single total order of seq_cst operations, either the loop's check sees the work (and it
// does not sleep), or the producer's load sees the sleep word (and it wakes the loop).
//
// sleepWord_ = (epoch << 2) | kind. Each sleep has a new epoch; wokenEpoch_ records the last epoch
// a producer has woken, so of many producers only the first issues the syscall for a given sleep.
// A producer that read a stale epoch (the loop already woke and slept again with the other
// mechanism) wakes the old mechanism, which only costs a spurious wake-up; it cannot suppress the
// wake of the new sleep because the new sleep has a different epoch.
#pragma once

#include <atomic>
#include <cstdint>

namespace libloop::detail {

class Wakeup {
public:
    enum Kind : std::uint64_t { Awake = 0, Futex = 1, Epoll = 2 };

    Wakeup();
    ~Wakeup();
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;

    bool valid() const noexcept { return eventFd_ >= 0; }
    int eventFd() const noexcept { return eventFd_; }

    // [any thread] Call after publishing work with a seq_cst store/RMW.
    void notify() noexcept {
        const std::uint64_t w = sleepWord_.load(std::memory_order_seq_cst);
        if ((w & 3) != Awake)
            wakeSlow(w);
    }

    // [loop thread] The futex value to wait on; read before beginSleep.
    std::uint32_t futexValue() const noexcept { return futex_.load(std::memory_order_acquire); }
    // [loop thread] Announce a sleep; then check for work; then wait or cancelSleep().
    void beginSleep(Kind kind) noexcept {
        sleepWord_.store((++epoch_ << 2) | kind, std::memory_order_seq_cst);
    }
    void endSleep() noexcept { sleepWord_.store(epoch_ << 2, std::memory_order_relaxed); }
    // [loop thread] Waits on the futex until woken or timeoutNs (< 0: forever) elapsed.
    void futexWait(std::uint32_t seen, std::int64_t timeoutNs) noexcept;
    // [loop thread] Clears the eventfd after epoll reported it readable.
    void drainEventFd() noexcept;

    std::uint64_t syscalls() const noexcept { return syscalls_.load(std::memory_order_relaxed); }

private:
    void wakeSlow(std::uint64_t word) noexcept;
    bool writeEventFd() noexcept; // false when the wake-up could not be delivered

    // One cache line: the loop writes sleepWord_ at every sleep anyway, and producers touch the
    // others only to wake a sleeping loop, so epoch_ (loop thread only) shares it rather than
    // costing a line of its own on the wake-up path.
    alignas(64) std::atomic<std::uint64_t> sleepWord_{0};
    std::uint64_t epoch_ = 0; // loop thread only
    std::atomic<std::uint64_t> wokenEpoch_{0};
    std::atomic<std::uint32_t> futex_{0};
    std::atomic<std::uint64_t> syscalls_{0};
    int eventFd_ = -1;
};

} // namespace libloop::detail
