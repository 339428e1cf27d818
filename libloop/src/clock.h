// The loop's one clock: CLOCK_MONOTONIC in nanoseconds, the same clock as libloop::Clock
// (std::chrono::steady_clock on Linux/libstdc++), so deadlines and remaining times never mix
// clocks.
#pragma once

#include <libloop/timer.h>

#include <cstdint>
#include <ctime>

namespace libloop::detail {

std::int64_t monotonicNs() noexcept;

inline std::int64_t toNs(TimePoint t) noexcept {
    return std::chrono::duration_cast<Duration>(t.time_since_epoch()).count();
}
inline TimePoint fromNs(std::int64_t ns) noexcept {
    return TimePoint(Duration(ns));
}

// now + delay, clamped to [now, INT64_MAX] instead of overflowing (a huge delay never fires
// rather than firing in the past). A negative delay means "due now".
inline std::int64_t deadlineAfter(std::int64_t nowNs, std::int64_t delayNs) noexcept {
    if (delayNs <= 0)
        return nowNs;
    if (delayNs > INT64_MAX - nowNs)
        return INT64_MAX;
    return nowNs + delayNs;
}

// A relative timeout for syscalls: null (wait forever) for a negative timeoutNs, else `storage`
// filled in.
inline const timespec* relativeTimeout(std::int64_t timeoutNs, timespec& storage) noexcept {
    if (timeoutNs < 0)
        return nullptr;
    storage.tv_sec = time_t(timeoutNs / 1'000'000'000);
    storage.tv_nsec = long(timeoutNs % 1'000'000'000);
    return &storage;
}

} // namespace libloop::detail
