// The series the inspector keeps per loop: one number per snapshot each, taken from
// libloop::protocol::LoopMetrics. Their names are the LoopMetrics JSON names (a latency
// percentile as "taskLatency.p99"); they head the CSV columns.
#pragma once

#include <libloop/protocol/messages.h>

#include <QtCore/qstring.h>

#include <array>

namespace libloop::inspector {

enum class Channel : int {
    TimerHeapSize,
    TimerHeapMax,
    MicrotaskRingUsed,
    MicrotaskRingMax,
    MicrotaskRingCapacity,
    MicrotaskOverflow,
    MicrotaskOverflowMax,
    FastPathMode,   // 0 auto, 1 forced, 2 disabled (fastPathModeLevel)
    FastPathActive, // 0 epoll, 1 fast path
    LatencyP50,     // task latency, ns (NaN while the loop has no sample yet)
    LatencyP90,
    LatencyP99,
    LatencyMax,
    TimerLatenessP99, // ns
    TasksPerSecond,
    Utilisation, // 0..1
    ExternalQueue,
    ExternalQueueMax,
    InternalQueue,
    InternalQueueMax,
    RegisteredFds,
    Count
};

inline constexpr int kChannelCount = int(Channel::Count);

// "timerHeapSize", "taskLatency.p99", ...
QString channelName(Channel c);
// All channels, in enum order.
std::array<Channel, kChannelCount> allChannels();
double channelValue(const protocol::LoopMetrics& m, Channel c);

// The fast-path mode as a plot level and back: "auto" 0, "forced" 1, "disabled" 2, else -1.
int fastPathModeLevel(const QString& mode);
QString fastPathModeFromLevel(int level);

} // namespace libloop::inspector
