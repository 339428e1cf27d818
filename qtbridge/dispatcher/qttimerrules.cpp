#include "qttimerrules.h"

#include <algorithm>

namespace libloop::qt::detail {

namespace {
constexpr std::int64_t kNsPerMs = 1'000'000;
constexpr std::int64_t kNsPerSec = 1'000'000'000;

// Qt keeps the deadline in milliseconds of precision inside the second: the fraction is the
// millisecond part of the deadline within its second, the sub-millisecond rest is dropped.
std::uint32_t roundedFraction(std::uint32_t msec, std::uint32_t interval) {
    const std::uint32_t maxRounding = interval / 20; // 5%
    if (interval < 100 && interval != 25 && interval != 50 && interval != 75) {
        // Under 50 ms: to an even millisecond, nudged up when past the middle of a 50 ms
        // period; 50..99 ms: to a multiple of 4, nudged up past the middle of a 100 ms period.
        if (interval < 50) {
            const bool up = msec % 50 >= 25;
            return ((msec >> 1) | std::uint32_t(up)) << 1;
        }
        const bool up = msec % 100 >= 50;
        return ((msec >> 2) | std::uint32_t(up)) << 2;
    }
    const std::uint32_t lo = msec > maxRounding ? msec - maxRounding : 0;
    const std::uint32_t hi = std::min<std::uint32_t>(1000, msec + maxRounding);
    if (lo == 0)
        return 0; // a whole second is always preferred
    if (hi == 1000)
        return 1000;
    std::uint32_t boundary;
    if (interval % 500 == 0) {
        if (interval >= 5000) // long multiples of 500 ms go to whole seconds
            return msec >= 500 ? hi : lo;
        boundary = 500;
    } else if (interval % 50 == 0) {
        const std::uint32_t fifties = interval / 50;
        boundary = fifties % 4 == 0 ? 200 : fifties % 2 == 0 ? 100 : fifties % 5 == 0 ? 250 : 50;
    } else {
        boundary = 25;
    }
    const std::uint32_t base = msec / boundary * boundary;
    return msec < base + boundary / 2 ? std::max(base, lo) : std::min(base + boundary, hi);
}
} // namespace

QtTimerRule normalizeTimer(qint64 intervalMs, Qt::TimerType type) {
    if (type == Qt::CoarseTimer) {
        if (intervalMs <= 20)
            return {intervalMs, Qt::PreciseTimer};
        if (intervalMs < 20000)
            return {intervalMs, Qt::CoarseTimer};
        type = Qt::VeryCoarseTimer;
    }
    if (type == Qt::VeryCoarseTimer)
        return {std::max<qint64>(1, ((intervalMs / 500) + 1) >> 1), Qt::VeryCoarseTimer};
    return {intervalMs, Qt::PreciseTimer};
}

qint64 reportedInterval(const QtTimerRule& rule) {
    return rule.type == Qt::VeryCoarseTimer ? rule.interval * 1000 : rule.interval;
}

std::int64_t coarseDeadline(std::int64_t deadlineNs, qint64 intervalMs, std::int64_t nowNs) {
    const std::int64_t sec = deadlineNs / kNsPerSec;
    const std::uint32_t msec = std::uint32_t(deadlineNs % kNsPerSec / kNsPerMs);
    const std::uint32_t rounded = roundedFraction(msec, std::uint32_t(intervalMs));
    std::int64_t result = sec * kNsPerSec + std::int64_t(rounded) * kNsPerMs;
    if (result < nowNs)
        result += intervalMs * kNsPerMs;
    return result;
}

std::int64_t firstDeadline(const QtTimerRule& rule, qint64 requestedMs, std::int64_t nowNs) {
    switch (rule.type) {
    case Qt::PreciseTimer:
        return nowNs + requestedMs * kNsPerMs;
    case Qt::CoarseTimer:
        return coarseDeadline(nowNs + requestedMs * kNsPerMs, rule.interval, nowNs);
    case Qt::VeryCoarseTimer:
        break;
    }
    // Whole seconds: one more when we are past the half-second mark.
    std::int64_t sec = nowNs / kNsPerSec + rule.interval;
    if (nowNs % kNsPerSec > 500 * kNsPerMs)
        ++sec;
    return sec * kNsPerSec;
}

std::int64_t nextDeadline(const QtTimerRule& rule, std::int64_t previousNs, std::int64_t nowNs) {
    if (rule.type == Qt::VeryCoarseTimer) {
        std::int64_t sec = previousNs / kNsPerSec + rule.interval;
        if (sec <= nowNs / kNsPerSec)
            sec = nowNs / kNsPerSec + rule.interval;
        return sec * kNsPerSec + previousNs % kNsPerSec;
    }
    std::int64_t next = previousNs + rule.interval * kNsPerMs;
    if (next < nowNs)
        next = nowNs + rule.interval * kNsPerMs;
    return rule.type == Qt::CoarseTimer ? coarseDeadline(next, rule.interval, nowNs) : next;
}

int remainingMs(std::int64_t deadlineNs, std::int64_t nowNs) {
    if (deadlineNs <= nowNs)
        return 0;
    const std::int64_t ms = (deadlineNs - nowNs + kNsPerMs - 1) / kNsPerMs;
    return ms > INT32_MAX ? INT32_MAX : int(ms);
}

} // namespace libloop::qt::detail
