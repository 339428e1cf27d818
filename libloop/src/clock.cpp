#include "clock.h"

#include <time.h>

namespace libloop::detail {

static_assert(std::is_same_v<Clock, std::chrono::steady_clock>);

std::int64_t monotonicNs() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

} // namespace libloop::detail
