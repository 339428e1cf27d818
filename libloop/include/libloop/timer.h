// Timer identifiers and the clock every deadline is measured on.
#pragma once

#include <chrono>
#include <cstdint>

namespace libloop {

// One monotonic clock for deadlines, lateness and remaining time (CLOCK_MONOTONIC).
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::nanoseconds;

// A timer's identity. 0 is never a valid id. An id is never reused by the Loop that issued it:
// it encodes a slab slot and that slot's generation, and a slot whose generation counter is
// exhausted is retired instead of wrapped.
struct TimerId {
    std::uint64_t value = 0;
    constexpr explicit operator bool() const noexcept { return value != 0; }
    friend constexpr bool operator==(TimerId, TimerId) = default;
};

} // namespace libloop
