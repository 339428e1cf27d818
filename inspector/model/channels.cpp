#include "channels.h"

#include <limits>

namespace libloop::inspector {

QString channelName(Channel c) {
    switch (c) {
    case Channel::TimerHeapSize:
        return QStringLiteral("timerHeapSize");
    case Channel::TimerHeapMax:
        return QStringLiteral("timerHeapMax");
    case Channel::MicrotaskRingUsed:
        return QStringLiteral("microtaskRingUsed");
    case Channel::MicrotaskRingMax:
        return QStringLiteral("microtaskRingMax");
    case Channel::MicrotaskRingCapacity:
        return QStringLiteral("microtaskRingCapacity");
    case Channel::MicrotaskOverflow:
        return QStringLiteral("microtaskOverflow");
    case Channel::MicrotaskOverflowMax:
        return QStringLiteral("microtaskOverflowMax");
    case Channel::FastPathMode:
        return QStringLiteral("fastPathMode");
    case Channel::FastPathActive:
        return QStringLiteral("fastPathActive");
    case Channel::LatencyP50:
        return QStringLiteral("taskLatency.p50");
    case Channel::LatencyP90:
        return QStringLiteral("taskLatency.p90");
    case Channel::LatencyP99:
        return QStringLiteral("taskLatency.p99");
    case Channel::LatencyMax:
        return QStringLiteral("taskLatency.max");
    case Channel::TimerLatenessP99:
        return QStringLiteral("timerLateness.p99");
    case Channel::TasksPerSecond:
        return QStringLiteral("tasksPerSecond");
    case Channel::Utilisation:
        return QStringLiteral("utilisation");
    case Channel::ExternalQueue:
        return QStringLiteral("externalQueue");
    case Channel::ExternalQueueMax:
        return QStringLiteral("externalQueueMax");
    case Channel::InternalQueue:
        return QStringLiteral("internalQueue");
    case Channel::InternalQueueMax:
        return QStringLiteral("internalQueueMax");
    case Channel::RegisteredFds:
        return QStringLiteral("registeredFds");
    case Channel::Count:
        break;
    }
    return {};
}

std::array<Channel, kChannelCount> allChannels() {
    std::array<Channel, kChannelCount> a{};
    for (int i = 0; i < kChannelCount; ++i)
        a[std::size_t(i)] = Channel(i);
    return a;
}

int fastPathModeLevel(const QString& mode) {
    if (mode == QLatin1String("auto"))
        return 0;
    if (mode == QLatin1String("forced"))
        return 1;
    if (mode == QLatin1String("disabled"))
        return 2;
    return -1;
}

QString fastPathModeFromLevel(int level) {
    switch (level) {
    case 0:
        return QStringLiteral("auto");
    case 1:
        return QStringLiteral("forced");
    case 2:
        return QStringLiteral("disabled");
    default:
        return {};
    }
}

double channelValue(const protocol::LoopMetrics& m, Channel c) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    const bool latency = m.taskLatency.count > 0;
    switch (c) {
    case Channel::TimerHeapSize:
        return double(m.timerHeapSize);
    case Channel::TimerHeapMax:
        return double(m.timerHeapMax);
    case Channel::MicrotaskRingUsed:
        return double(m.microtaskRingUsed);
    case Channel::MicrotaskRingMax:
        return double(m.microtaskRingMax);
    case Channel::MicrotaskRingCapacity:
        return double(m.microtaskRingCapacity);
    case Channel::MicrotaskOverflow:
        return double(m.microtaskOverflow);
    case Channel::MicrotaskOverflowMax:
        return double(m.microtaskOverflowMax);
    case Channel::FastPathMode: {
        const int level = fastPathModeLevel(m.fastPathMode);
        return level < 0 ? nan : double(level);
    }
    case Channel::FastPathActive:
        return m.fastPathActive ? 1.0 : 0.0;
    case Channel::LatencyP50:
        return latency ? double(m.taskLatency.p50) : nan;
    case Channel::LatencyP90:
        return latency ? double(m.taskLatency.p90) : nan;
    case Channel::LatencyP99:
        return latency ? double(m.taskLatency.p99) : nan;
    case Channel::LatencyMax:
        return latency ? double(m.taskLatency.max) : nan;
    case Channel::TimerLatenessP99:
        return m.timerLateness.count > 0 ? double(m.timerLateness.p99) : nan;
    case Channel::TasksPerSecond:
        return m.tasksPerSecond;
    case Channel::Utilisation:
        return m.utilisation;
    case Channel::ExternalQueue:
        return double(m.externalQueue);
    case Channel::ExternalQueueMax:
        return double(m.externalQueueMax);
    case Channel::InternalQueue:
        return double(m.internalQueue);
    case Channel::InternalQueueMax:
        return double(m.internalQueueMax);
    case Channel::RegisteredFds:
        return double(m.registeredFds);
    case Channel::Count:
        break;
    }
    return nan;
}

} // namespace libloop::inspector
