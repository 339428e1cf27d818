// The metrics snapshot: what a Loop reports about itself, readable from any thread.
#pragma once

#include <cstdint>

namespace libloop {

enum class FastPathMode : std::uint8_t {
    Auto,     // use the fast path whenever no fd is registered (default)
    Forced,   // always use it; registering an fd is refused
    Disabled, // always wait in epoll
};

enum class LoopState : std::uint8_t {
    Idle,         // constructed, or between runs: nobody is inside run()/runOnce()
    Running,      // a thread is inside run()/runOnce() and doing work
    Sleeping,     // a thread is inside run()/runOnce() and waiting for work
    ShuttingDown, // shutdown() is draining accepted work; new work is refused
    Closed,       // nothing is accepted or run any more
};

const char* fastPathModeName(FastPathMode m) noexcept;
const char* loopStateName(LoopState s) noexcept;

// Latency summary from a log-bucketed histogram (relative error below 1%). Nanoseconds.
struct LatencySummary {
    std::uint64_t count = 0;
    std::uint64_t p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
    double mean = 0;
};

struct MetricsSnapshot {
    std::uint64_t takenAtNs = 0; // CLOCK_MONOTONIC

    // Enqueue-to-start latency of tasks (external and internal) and lateness of timers
    // (start minus deadline). Cumulative since the loop started, over the sampled callbacks
    // (LoopOptions::latencySampleEvery): `count` is the number of samples.
    LatencySummary taskLatency;
    LatencySummary timerLateness;

    // Throughput and utilisation over the configured window (LoopOptions::rateWindow).
    double tasksPerSecond = 0;  // tasks + timers + fd callbacks + microtasks started
    double utilisation = 0;     // busy / (busy + idle), 0..1
    std::uint64_t windowNs = 0; // the span the two figures above cover (≤ the window)
    std::uint64_t busyNs = 0;   // cumulative
    std::uint64_t idleNs = 0;   // cumulative (time spent waiting in futex/epoll)

    // Gauges: the value now and the max since the previous snapshot (a snapshot resets the
    // max; the first snapshot reports the max since the loop started).
    std::uint64_t externalQueue = 0, externalQueueMax = 0;
    std::uint64_t internalQueue = 0, internalQueueMax = 0;
    std::uint64_t microtaskRingUsed = 0, microtaskRingMax = 0;
    std::uint64_t microtaskRingCapacity = 0;
    std::uint64_t microtaskOverflow = 0, microtaskOverflowMax = 0;
    std::uint64_t timerHeapSize = 0, timerHeapMax = 0;
    std::uint64_t registeredFds = 0;

    // Counters since the loop started.
    std::uint64_t iterations = 0;
    std::uint64_t tasksRun = 0, microtasksRun = 0, timersRun = 0, fdCallbacksRun = 0;
    std::uint64_t callbackErrors = 0;
    std::uint64_t microtaskBudgetHits = 0; // checkpoints cut short by the budget
    std::uint64_t wakeSyscalls = 0;        // futex/eventfd wakes issued by producers

    FastPathMode fastPathMode = FastPathMode::Auto;
    bool fastPathActive = false;           // the last wait (or poll) skipped epoll
    std::uint64_t fastPathTransitions = 0; // changes between the fast path and epoll
    LoopState state = LoopState::Idle;
};

} // namespace libloop
