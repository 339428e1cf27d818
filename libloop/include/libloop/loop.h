// libloop::Loop — a JavaScript-semantics event loop: tasks, microtasks, timers and fd I/O.
//
// Threads. One thread runs a Loop at a time: the "loop thread" is the thread that constructed it,
// or the one that last called attachToCurrentThread(), and only it may call run()/runOnce() and the
// entry points marked [loop thread] (they answer Errc::WrongThread elsewhere). Entry points marked
// [any thread] are safe from every thread, concurrently.
//
// One iteration (runOnce):
//   1. due timers scheduled before this phase began, earliest deadline first, equal deadlines in
//      scheduling order (a timer scheduled by one of them waits for a later iteration, even if
//      it is already due, and never holds back the others);
//   2. the tasks queued before this phase began (so including those the timers just queued):
//      internal ones, then external ones;
//   3. fd callbacks for ready fds (epoll, non-blocking unless nothing else was ready); an fd
//      whose callback is running (a nested iteration from inside it) is neither called again
//      nor watched until that callback returns, so a nested wait does not spin on it, unless it
//      was registered with FdReentry::Allow;
//   4. the check phase: the immediates queued before it began (queueImmediate, Node's
//      setImmediate), so they run after this iteration's I/O and before the next one's timers;
// and a microtask checkpoint after every single callback of 1–4: microtasks run FIFO until the
// queue is empty or the checkpoint budget is spent (the rest run at the next checkpoint, and the
// loop does not sleep while any are left).
//
// If an iteration found nothing to do it waits — up to the timeout and never past the next timer
// deadline; with fds, the wait is an epoll poll even when work is already pending (then without
// blocking), so a stream of wake-ups never hides ready fds — then runs what woke it (fd callbacks,
// then the check phase, then timers and tasks; RunFlag::ReturnOnWakeUp returns instead when a
// wakeUp() ended the wait). Waiting uses a futex when no fd is registered (the fast path) or when
// the iteration excludes fds (RunPhase), and epoll otherwise; see FastPathMode. Microtasks queued
// outside any callback (from another thread, or by the loop thread between iterations) run at the
// checkpoint that starts the next iteration.
#pragma once

#include <libloop/manual_clock.h>
#include <libloop/metrics.h>
#include <libloop/status.h>
#include <libloop/task.h>
#include <libloop/timer.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace libloop {

namespace detail {
struct LoopAccess;
}

// fd readiness, as passed to registerFd and reported to its callback.
namespace FdEvent {
inline constexpr unsigned Readable = 1u << 0;
inline constexpr unsigned Writable = 1u << 1;
inline constexpr unsigned Error = 1u << 2; // reported only, never requested
// Reported only: EPOLLHUP (always), and the peer's half-close (EPOLLRDHUP) when Readable is
// watched. Half-close is not asked for otherwise: a Writable- or Priority-only watcher would see
// it on every level-triggered iteration (Qt's poll has no equivalent either).
inline constexpr unsigned HangUp = 1u << 3;
inline constexpr unsigned Priority = 1u << 4; // urgent / exceptional data (EPOLLPRI)
} // namespace FdEvent

// The phases one runOnce() may run and wait for (Qt's X11ExcludeTimers and
// ExcludeSocketNotifiers). Tasks and microtasks always run.
namespace RunPhase {
inline constexpr unsigned Timers = 1u << 0;
inline constexpr unsigned Fds = 1u << 1;
inline constexpr unsigned All = Timers | Fds;
} // namespace RunPhase

// Modifiers of one runOnce(), or'ed into its `phases` argument; they are not phases.
namespace RunFlag {
// A wait ended with a wakeUp() pending (and no fd callback run by it) returns at once instead
// of running what follows a wait (the check phase, timers, tasks), even if other work arrived
// with the wake-up: that work runs at the start of the next runOnce(), which does not wait
// while it is there. For a caller that has its own work to do on a wake-up and calls runOnce()
// again (Qt's dispatcher sends the posted events a wakeUp() announced: they go first).
inline constexpr unsigned ReturnOnWakeUp = 1u << 8;
} // namespace RunFlag

using FdCallback = Function<void(int fd, unsigned events)>;

// Whether an fd's callback may be called again by a nested iteration (runOnce/run from inside
// it) while it runs.
enum class FdReentry {
    // Not called again, and not watched until it returns (so a nested wait does not spin on an
    // fd its callback has not drained). The default.
    Skip,
    // Called again, as Qt's own dispatchers activate a QSocketNotifier from a nested event loop
    // inside its own slot. A callback that nests without draining its fd recurses.
    Allow,
};

// Where a failing callback ran.
enum class CallbackKind : std::uint8_t { Task, Microtask, Timer, Fd };
const char* callbackKindName(CallbackKind k) noexcept;

// Called on the loop thread with the exception a callback let escape. The loop has already
// restored its invariants (the timer entry is gone, the task is destroyed) and goes on after the
// hook returns. An exception escaping the hook itself is swallowed.
using ErrorHook = std::function<void(std::exception_ptr, CallbackKind)>;

inline constexpr Duration kForever = Duration::max();

struct LoopOptions {
    std::string name = "loop";
    // Ring slots for microtasks (rounded up to a power of two, at least 2). When the ring is full,
    // microtasks go to a FIFO overflow list; order is kept across ring and overflow.
    std::uint32_t microtaskRingCapacity = 1024;
    // Microtasks run per checkpoint at most. 0 means no limit (HTML's "until empty").
    std::uint32_t microtaskBudget = 1024;
    FastPathMode fastPath = FastPathMode::Auto;
    // Latency histograms, rates, utilisation. Counters and gauges are always kept.
    bool metrics = true;
    // Latency is recorded for one task (and one timer) in this many, per producer thread
    // (rounded up to a power of two; 1 = every one). A clock read costs ~40 ns on a KVM guest,
    // two per task would halve the loop's throughput; a 1-in-16 sample keeps percentiles
    // faithful at any real rate while counters stay exact.
    std::uint32_t latencySampleEvery = 16;
    // The window for tasksPerSecond and utilisation in snapshots.
    Duration rateWindow = std::chrono::seconds(1);
    // Timers pending at once, at most (further scheduleTimer calls answer TooManyTimers). A
    // timer stops counting when its callback starts. On the loop thread the cap is exact; another
    // thread can also be refused for a short while below it: until the loop has taken in a
    // cancel made from another thread, and, right after the timer storage reached its final
    // size, until the loop's next iteration returns the free slots it keeps for itself.
    std::uint32_t maxTimers = 1u << 24;
    // Called for callbacks that throw; empty = one line on stderr. A throwing task, microtask or
    // timer is destroyed before the hook runs; a throwing fd callback stays registered.
    ErrorHook errorHook;
    // Test seam: read time from this clock instead of CLOCK_MONOTONIC, and auto-advance it
    // instead of sleeping until a deadline (see manual_clock.h). Null (the default) is the real
    // clock. Not owned; it must outlive the loop.
    ManualClock* clock = nullptr;
};

struct ShutdownReport {
    std::uint64_t tasksRun = 0;        // tasks, microtasks, due timers run by the drain
    std::uint64_t timersCancelled = 0; // timers not yet due when the drain ended: released
};

enum class ShutdownTimers : std::uint8_t {
    CancelPending, // run what is due now; cancel (and count) the timers not yet due
    WaitForAll,    // keep iterating until no timer is pending (timers may not schedule new ones)
};

class Loop {
public:
    explicit Loop(LoopOptions options = {});
    // Closes the loop (see close()) if it is not closed yet. Must not run while another thread is
    // inside run()/runOnce().
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // ---- lifecycle ----

    // [loop thread] Iterates until stop() or the loop is closed. Re-entrant (a callback may call
    // run() or runOnce(): a nested loop, as Qt's nested event loops do). stop() ends the innermost
    // run() that sees it. NotAccepting on a closed loop.
    Status run();
    // [loop thread] One iteration, waiting at most `timeout` (0: never wait, kForever: until
    // something happens) if nothing is ready. Returns the number of callbacks started (tasks,
    // timers, fd callbacks, microtasks). Re-entrant. NotAccepting on a closed loop.
    // A wakeUp() or stop() that arrived while nothing was waiting makes the next wait return at
    // once (as Qt's wakeUp does); a runOnce() outside any run() consumes a pending stop().
    // `phases` leaves timers and/or fds out of this iteration: excluded timers neither run nor
    // end the wait, excluded fds are neither polled nor waited on; it may add RunFlag bits.
    // Other bits: InvalidArgument, and nothing runs.
    Result<std::size_t> runOnce(Duration timeout = kForever, unsigned phases = RunPhase::All);
    // [any thread] Makes the innermost run() return after its current iteration, and a waiting
    // runOnce() return promptly.
    void stop() noexcept;
    // [any thread] Wakes the loop if it is waiting (runOnce returns after at most one iteration).
    void wakeUp() noexcept;
    // [loop thread, or any thread when nobody runs the loop; Busy otherwise] Graceful: from the
    // call on, submit, scheduleTimer and queueMicrotask from other threads answer NotAccepting;
    // everything accepted before runs (tasks, microtasks, due timers; pending timers per
    // `timers`), and so do the microtasks and submitInternal tasks that this work queues on the
    // loop thread; then the loop is Closed. fd callbacks do not run during the drain.
    Result<ShutdownReport> shutdown(ShutdownTimers timers = ShutdownTimers::CancelPending);
    // [loop thread, or any thread when nobody runs the loop] Immediate: nothing more runs; every
    // queued task, microtask, timer and fd callback is destroyed (captured objects are released),
    // fds are unregistered (not closed). Idempotent.
    Status close();
    // [any thread]
    LoopState state() const noexcept;
    // [any thread] Makes the calling thread the loop thread. Refused (Busy) while a thread is
    // inside run()/runOnce().
    Status attachToCurrentThread();
    // [any thread]
    bool isLoopThread() const noexcept;
    const std::string& name() const noexcept;
    // [any thread] Unique in the process, never reused (the registry lists loops by it).
    std::uint64_t id() const noexcept;
    // [any thread] The Linux thread id (gettid) of the loop thread.
    int loopThreadTid() const noexcept;

    // ---- tasks ----

    // Memory. The queues are unbounded: submit never blocks, even while a callback on the loop
    // thread never returns; the work waits in memory. When an allocation fails the call answers
    // SystemError (sysErrno ENOMEM) and has no effect; everything accepted before still runs.
    // (Fault-injection tests: tests/libloop/tst_faults.cpp.)

    // [any thread] Queues a task (FIFO per producer). No allocation in steady state when the
    // callable fits Task's inline buffer.
    Status submit(Task task);
    // [loop thread] Queues a task on the loop thread's own queue (FIFO).
    Status submitInternal(Task task);
    // [any thread] Queues a microtask: it runs at the next microtask checkpoint (after the current
    // callback when called from the loop thread). FIFO per producer across ring and overflow.
    Status queueMicrotask(Task task);
    // [loop thread] Queues a task for the check phase (step 4 above; FIFO). One queued while the
    // check phase runs waits for the next iteration's. The loop does not sleep while any is
    // queued. Counted as a task in the metrics.
    Status queueImmediate(Task task);

    // ---- timers ----

    // [any thread] Runs `task` once, no earlier than `delay` from now. delay ≤ 0 means "due now"
    // (it still runs as a timer, in a later timer phase, never synchronously). A delay so large
    // that now + delay overflows is clamped to the furthest representable deadline (never fires
    // in practice). From another thread the timer is inserted into the heap by the loop thread.
    Result<TimerId> scheduleTimer(Duration delay, Task task);
    // [any thread] As above with an absolute deadline on Clock.
    Result<TimerId> scheduleTimerAt(TimePoint deadline, Task task);
    // [any thread] True when the timer was pending and now will never start. False for an
    // unknown, already started, already finished or already cancelled id. Cancelling from inside
    // the timer's own callback answers false (it already started). O(log n) on the loop thread;
    // from another thread the callback's release happens on the loop thread shortly after.
    bool cancelTimer(TimerId id) noexcept;
    // [loop thread] Moves a pending timer to a new deadline, keeping its callback: it then counts
    // as scheduled now (after the timers already due at that deadline). O(log n), no allocation.
    // NotFound when the timer is not pending (unknown, started, cancelled) or was scheduled from
    // another thread and the loop has not taken it in yet.
    Status rescheduleTimer(TimerId id, TimePoint deadline);
    // [any thread] The deadline of a pending timer, or Errc::NotFound.
    Result<TimePoint> timerDeadline(TimerId id) const noexcept;
    // [any thread] The loop's "now": Clock::now(), or LoopOptions::clock's time.
    TimePoint now() const noexcept;
    // [any thread] Pending timers (the heap's size as the loop thread last updated it).
    std::size_t pendingTimers() const noexcept;

    // ---- fds ----

    // [loop thread] Watches `fd` (level-triggered) for `events` (Readable|Writable|Priority,
    // not 0).
    // One registration per fd (AlreadyExists otherwise). Refused with FastPathConflict while the
    // fast path is Forced. Errors and hang-ups (see FdEvent::HangUp) are reported whenever any
    // event is watched. Bits outside Readable|Writable|Priority answer InvalidArgument (also in
    // modifyFd). `reentry`: see FdReentry.
    Status registerFd(int fd, unsigned events, FdCallback callback,
                      FdReentry reentry = FdReentry::Skip);
    // [loop thread] Changes the watched events. 0 keeps the fd registered but reports nothing at
    // all, not even errors or hang-ups (a level-triggered hang-up would otherwise fire on every
    // iteration), until events are set again.
    Status modifyFd(int fd, unsigned events);
    // [loop thread] Stops watching `fd` and destroys its callback (also from inside it). An fd
    // that was already closed is fine: it is forgotten without error. If epoll refuses the
    // removal (SystemError) nothing changes: the fd stays registered and the call may be retried.
    // (registerFd and modifyFd likewise change nothing when they answer an error.)
    Status unregisterFd(int fd);
    // [any thread]
    std::size_t registeredFds() const noexcept;

    // ---- fast path ----

    // [any thread] Changes the mode; the loop re-evaluates how it waits within one iteration.
    // Forced while fds are registered answers FastPathConflict and changes nothing. No queued or
    // concurrently queued work is stranded by a change.
    Status setFastPathMode(FastPathMode mode);
    FastPathMode fastPathMode() const noexcept;

    // ---- metrics and hooks ----

    // [any thread] Never blocks the loop; cost is independent of the number of samples.
    MetricsSnapshot snapshot() const;
    // [loop thread]
    void setErrorHook(ErrorHook hook);
    // [loop thread] Embeds another engine's job queue in the microtask checkpoints (Qt's V4
    // promise reactions, for the JS layer). When a checkpoint has emptied the microtask queue it
    // calls `hook`; true means it ran something, and then the microtasks that queued run and the
    // hook is asked again, up to microtaskBudget passes per checkpoint. An exception it throws
    // goes to the error hook (as a Microtask failure) and counts as having run something. Not
    // called re-entrantly. Empty removes it; Busy from inside the hook.
    Status setCheckpointHook(Function<bool()> hook);

    struct Impl;

private:
    friend struct detail::LoopAccess;
    std::unique_ptr<Impl> d_;
};

} // namespace libloop
