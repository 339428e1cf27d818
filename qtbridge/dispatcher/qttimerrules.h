// Qt's timer rules (Qt 6.4, qtimerinfo_unix.cpp), as pure functions on CLOCK_MONOTONIC
// nanoseconds, so that LoopEventDispatcher schedules Qt timers exactly where Qt's own
// dispatcher would. Documented deviation: a VeryCoarseTimer shorter than 500 ms rounds to 1 s
// (Qt rounds it to 0 s and then fires it on every processEvents()).
#pragma once

#include <QtCore/qglobal.h>
#include <QtCore/qnamespace.h>

#include <cstdint>

namespace libloop::qt::detail {

struct QtTimerRule {
    qint64 interval = 0; // milliseconds; whole seconds for Qt::VeryCoarseTimer
    Qt::TimerType type = Qt::CoarseTimer;
};

// The type Qt really uses and the interval it keeps: a CoarseTimer of 20 ms or less becomes
// Precise (5% would be under 1 ms); of 20 s or more becomes VeryCoarse; a VeryCoarse interval is
// kept in whole seconds, rounded half up (at least 1 s here: see above).
QtTimerRule normalizeTimer(qint64 intervalMs, Qt::TimerType type);

// The interval registeredTimers() reports (VeryCoarse: seconds * 1000).
qint64 reportedInterval(const QtTimerRule& rule);

// The first deadline of a timer registered at `nowNs` with the interval it was asked for.
std::int64_t firstDeadline(const QtTimerRule& rule, qint64 requestedMs, std::int64_t nowNs);

// The deadline after a timer fired, computed (as Qt does) before its event is delivered: the
// previous deadline plus the interval, or — when that is already past — now plus the interval
// (missed periods are skipped, not caught up).
std::int64_t nextDeadline(const QtTimerRule& rule, std::int64_t previousNs, std::int64_t nowNs);

// Qt's coarse rounding: move `deadlineNs` by at most 5% of the interval so that it lands on a
// "round" fraction of a second (0, 500, 250/750, multiples of 200/100/50/25 ms, in that order of
// preference; timers under 100 ms round to even or multiples of 4 ms), so that many timers
// wake up together. May move the deadline earlier than deadline - 5% only when that crosses a
// whole second; if the result is before `nowNs` it moves one interval later.
std::int64_t coarseDeadline(std::int64_t deadlineNs, qint64 intervalMs, std::int64_t nowNs);

// remainingTime(): milliseconds until the deadline, rounded up; 0 when overdue.
int remainingMs(std::int64_t deadlineNs, std::int64_t nowNs);

} // namespace libloop::qt::detail
