// The workshop scenarios of loop-demo. Each one drives one kind of work on a libloop::Loop so
// that a plot of the inspector moves; ScenarioController (scenariocontroller.h) is their Qt face.
//
// Plain C++ on libloop's own API, no Qt. Every member function is [loop thread].
//
// Lifetime. The callbacks a scenario leaves on the loop (timers, microtasks, promise reactions,
// fd callbacks) hold the scenario's shared Core, never the scenario object, together with the
// generation they belong to. stop() starts a new generation and releases what can be released
// (cancels timers, unregisters and closes fds); whatever still runs afterwards (a microtask
// already queued, a reaction already scheduled) finds its generation outdated and does nothing.
// So a scenario may be stopped or destroyed at any time; the Loop must outlive its callbacks.
#pragma once

#include <libloop/loop.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace libloop::demo {

// Called (on the loop thread) when a scenario has something new to show: a promise batch
// finished, a block ended, a fast-path step was taken. Never called after stop().
using Notify = std::function<void()>;

// Keeps `count` timers pending, each with a random delay in [1 ms, maxDelayMs]: a timer that
// fires is scheduled again with a fresh random delay, so the timer heap holds `count` of them and
// the loop runs about count / (mean delay) timers a second until stop() cancels them all.
class TimerStorm {
public:
    explicit TimerStorm(Loop& loop);
    ~TimerStorm();
    TimerStorm(const TimerStorm&) = delete;
    TimerStorm& operator=(const TimerStorm&) = delete;

    // Replaces a running storm. On an error (TooManyTimers, NotAccepting) nothing stays pending.
    Status start(std::uint32_t count, std::uint32_t maxDelayMs);
    void stop();
    bool running() const;
    std::size_t pending() const; // this storm's timers
    std::uint64_t fired() const; // since construction

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

// `size` self-requeuing microtasks: each queues itself again when it runs, so the microtask queue
// never empties. It relies on the loop's checkpoint budget (LoopOptions::microtaskBudget, 1024
// by default; 0 would let the flood starve everything): each checkpoint stops after the budget
// (microtaskBudgetHits grows), and tasks, timers, fd callbacks and window-system events still run
// in between. A size above the ring's capacity fills the overflow list as well.
class MicrotaskFlood {
public:
    explicit MicrotaskFlood(Loop& loop);
    ~MicrotaskFlood();
    MicrotaskFlood(const MicrotaskFlood&) = delete;
    MicrotaskFlood& operator=(const MicrotaskFlood&) = delete;

    Status start(std::uint32_t size); // replaces a running flood
    void stop(); // the queued ones run once more, as no-ops, at the next checkpoints
    bool running() const;
    std::uint64_t microtasksRun() const; // flood microtasks that did work, since construction

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

// Batches of promise chains: `chains` root promises, all resolved by one timer callback, each
// followed by `depth` then() steps, and all() over the chains' tails. One batch settles
// chains × (depth + 1) promises (the all() promise is not counted), as microtasks: `chains`
// reactions sit in the microtask queue at once, `depth` times over. Repeating (start): the next
// batch begins 100 ms after the previous one finished.
class PromiseChains {
public:
    explicit PromiseChains(Loop& loop);
    ~PromiseChains();
    PromiseChains(const PromiseChains&) = delete;
    PromiseChains& operator=(const PromiseChains&) = delete;

    void setNotify(Notify notify); // after each finished batch
    // One batch (alongside any other batch in flight).
    Status runBatch(std::uint32_t chains, std::uint32_t depth);
    // Batches one after the other until stop(); the sizes are read before each batch.
    Status start(std::function<std::uint32_t()> chains, std::function<std::uint32_t()> depth);
    void stop(); // batches in flight are abandoned (their promises stay pending and are freed)
    bool running() const;
    std::uint64_t settled() const; // promises settled by batches of this generation and earlier
    std::uint64_t batches() const; // batches finished

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

// Blocks the loop thread for `ms` of busy work inside one task. Witnesses make the effect
// measurable on the loop's own metrics: when the block begins, 32 timers are scheduled due at
// that instant and 32 tasks are queued, so the loop's timerLateness and taskLatency both record
// at least `ms` (the loop samples latency 1 callback in LoopOptions::latencySampleEvery ≤ 32, per
// producer; the witnesses run consecutively). Repeating (start): one block every `periodMs`.
class Blocker {
public:
    explicit Blocker(Loop& loop);
    ~Blocker();
    Blocker(const Blocker&) = delete;
    Blocker& operator=(const Blocker&) = delete;

    void setNotify(Notify notify); // after each block, once its witnesses ran
    Status blockOnce(std::uint32_t ms);
    Status start(std::function<std::uint32_t()> ms, std::uint32_t periodMs);
    void stop();
    bool running() const;
    std::uint64_t blocks() const;  // blocks whose witnesses ran
    double lastLatenessMs() const; // how late the last block's first witness timer ran

    static constexpr int kWitnesses = 32;

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

// Fast-path switching: one idle fd (one end of a socketpair, never written to) to register and
// unregister, and the loop's fast-path mode. The automatic cycle (start) takes one step every
// `periodMs`: register the fd (Auto leaves the fast path), ask for Forced (refused: an fd is
// registered), unregister it (back on the fast path), Disabled, Auto, Forced, try to register
// the fd (refused while Forced), Auto, and round again.
class FastPathSwitcher {
public:
    explicit FastPathSwitcher(Loop& loop);
    ~FastPathSwitcher();
    FastPathSwitcher(const FastPathSwitcher&) = delete;
    FastPathSwitcher& operator=(const FastPathSwitcher&) = delete;

    void setNotify(Notify notify); // after each step of the cycle
    // Registers / unregisters the idle fd (registering answers FastPathConflict while Forced).
    Status setFdRegistered(bool on);
    bool fdRegistered() const;
    Status setMode(FastPathMode mode); // the loop's answer (FastPathConflict for Forced with fds)

    Status start(std::uint32_t periodMs);
    // Ends the cycle, unregisters and closes the idle fd, and sets the mode back to Auto.
    void stop();
    bool running() const;
    std::uint64_t steps() const;
    std::uint64_t refusals() const;      // FastPathConflict answers seen (cycle and manual)
    const std::string& lastStep() const; // what the last cycle step did, for a status line

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

// Ping-pong over a socketpair: `balls` bytes bounce between the two ends, both registered
// Readable on the loop; each end echoes what it reads. One round trip = one byte back at the
// first end: as many as epoll and two fd callbacks per byte allow.
class PingPong {
public:
    explicit PingPong(Loop& loop);
    ~PingPong();
    PingPong(const PingPong&) = delete;
    PingPong& operator=(const PingPong&) = delete;

    // Replaces a running game. Errors: FastPathConflict while Forced, SystemError.
    Status start(std::uint32_t balls);
    void stop(); // unregisters and closes both ends
    bool running() const;
    std::uint64_t roundTrips() const;

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

} // namespace libloop::demo
