// ManualClock: the test seam for time. A Loop given one (LoopOptions::clock) reads every "now"
// from it instead of CLOCK_MONOTONIC: timer deadlines, the runOnce timeout, latency and metrics
// timestamps. Fuzzers and deterministic tests drive a loop on it.
//
// How a loop on a ManualClock waits. Time never passes by itself, so a wait that would end at a
// deadline (the next timer, or runOnce's timeout) does not sleep: when nothing is ready (a
// non-blocking poll of fds included), the loop moves the clock forward to that deadline and goes
// on, as if it had slept exactly that long ("auto-advance"). A wait with no deadline at all
// (kForever and no timer pending) blocks in real time until a wake-up, as on the real clock.
//
// A test may also move the clock itself with advance()/advanceTo(), from any thread; a loop
// blocked in such a deadline-less wait does not notice (nothing could be due: it has no timer).
// The clock never goes backwards. TimePoints handed to the loop (scheduleTimerAt,
// rescheduleTimer) and returned by it (timerDeadline, Loop::now) are on this clock.
#pragma once

#include <libloop/timer.h>

#include <atomic>
#include <cstdint>

namespace libloop {

class ManualClock {
public:
    // The start is an arbitrary positive instant (1 h), so "now - small delay" stays positive.
    explicit ManualClock(TimePoint start = TimePoint(std::chrono::hours(1))) noexcept
        : ns_(start.time_since_epoch().count()) {}
    ManualClock(const ManualClock&) = delete;
    ManualClock& operator=(const ManualClock&) = delete;

    // [any thread]
    TimePoint now() const noexcept { return TimePoint(Duration(nowNs())); }
    std::int64_t nowNs() const noexcept { return ns_.load(std::memory_order_acquire); }
    // [any thread] Negative durations are ignored.
    void advance(Duration d) noexcept {
        if (d.count() > 0)
            ns_.fetch_add(d.count(), std::memory_order_acq_rel);
    }
    // [any thread] Moves to `t` if it is later than now; never backwards.
    void advanceTo(TimePoint t) noexcept {
        const std::int64_t target = t.time_since_epoch().count();
        std::int64_t cur = ns_.load(std::memory_order_relaxed);
        while (cur < target && !ns_.compare_exchange_weak(cur, target, std::memory_order_acq_rel)) {
        }
    }

private:
    std::atomic<std::int64_t> ns_;
};

} // namespace libloop
