// libloop::JsTimers — setTimeout, setInterval, setImmediate, clear* and queueMicrotask on a Loop,
// with the browser's rules (HTML § 8.6 "Timers", WebIDL for the delay).
//
//   libloop::JsTimers js(loop);
//   auto id = js.setTimeout([] { ... }, 10.0);     // Result<std::uint64_t>
//   js.clearTimeout(id.value());
//
// Ids. Positive integers ≤ kMaxJsTimerId (2^53−1, JavaScript's Number.MAX_SAFE_INTEGER), handed
// out in increasing order and never reused. An id is allocated and checked before anything is
// scheduled: once the space is exhausted set* answers Errc::IdsExhausted and schedules nothing.
// Timeouts, intervals and immediates draw from one id space. clearTimeout and clearInterval are
// interchangeable (as in browsers: both clear a timeout or an interval); clearImmediate clears
// only immediates, and clearTimeout/clearInterval never clear an immediate. Clearing an unknown,
// already fired, already cleared or wrong-kind id does nothing.
//
// Delays follow WebIDL's `long` conversion, then HTML: NaN and ±Infinity become 0; the value is
// truncated and wrapped modulo 2^32 into [−2^31, 2^31−1] (so 2^31 ms becomes −2^31 and fires at
// once, as in browsers; Node instead uses 1 ms); a negative delay becomes 0.
//
// Nesting (HTML's timer nesting level). A timer scheduled while a timer callback runs gets that
// callback's nesting level; at a level above 5 a delay below 4 ms is raised to 4 ms (never
// lowered: a longer delay is kept). The new timer's level is one more. An interval re-arms itself
// after each run at its run's level, so from its 6th run on it re-arms with at least 4 ms.
// Outside timer callbacks (tasks, immediates, fd callbacks, microtasks run after the callback
// returned) the level is 0.
//
// Ordering on the loop (see loop.h): due timers, then tasks, then fd callbacks, then immediates
// (the check phase: after this iteration's I/O, before the next iteration's timers), with a
// microtask checkpoint after each callback. An interval's next run is scheduled when its
// callback returns (delay measured from then).
//
// Threads. Every entry point may be called from any thread. clear* from the loop thread
// guarantees the callback never starts again (also from inside the callback itself); from
// another thread the same holds once the call returns, except that a run already started may
// finish. Callbacks run, and are destroyed, on the loop thread. An exception escaping a callback
// goes to the loop's error hook and does not stop an interval.
//
// Lifetime. Destroying a JsTimers clears everything it scheduled (callbacks are released on the
// loop thread). The Loop must outlive it.
#pragma once

#include <libloop/loop.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace libloop {

inline constexpr std::uint64_t kMaxJsTimerId = (std::uint64_t(1) << 53) - 1;

struct JsTimersOptions {
    // The first id handed out (≥ 1). A test seam: start near kMaxJsTimerId to reach exhaustion.
    std::uint64_t firstId = 1;
};

class JsTimers {
public:
    using Callback = Function<void()>;

    explicit JsTimers(Loop& loop, JsTimersOptions options = {});
    ~JsTimers();
    JsTimers(const JsTimers&) = delete;
    JsTimers& operator=(const JsTimers&) = delete;

    // Errors: NullCallable, IdsExhausted, NotAccepting (the loop is shutting down or closed),
    // TooManyTimers. On any error nothing is scheduled and the id is not used up.
    Result<std::uint64_t> setTimeout(Callback callback, double delayMs = 0);
    Result<std::uint64_t> setInterval(Callback callback, double delayMs = 0);
    Result<std::uint64_t> setImmediate(Callback callback);
    void clearTimeout(std::uint64_t id) noexcept;
    void clearInterval(std::uint64_t id) noexcept;
    void clearImmediate(std::uint64_t id) noexcept;
    Status queueMicrotask(Task task);

    // The deadline of a pending timeout or interval's next run (after the nesting clamp), or
    // NotFound (unknown, fired, cleared, an immediate, or an interval between runs).
    Result<TimePoint> deadline(std::uint64_t id) const noexcept;
    // Timeouts, intervals and immediates scheduled and neither run (for one-shots) nor cleared.
    std::size_t pending() const noexcept;
    // [loop thread] The nesting level of the running timer callback (0 outside one).
    int nestingLevel() const noexcept;
    // The delay (ms) a delay argument becomes before nesting (WebIDL long, then negative → 0).
    static std::int64_t normalizeDelay(double delayMs) noexcept;

    Loop& loop() const noexcept;

    struct Impl;

private:
    std::shared_ptr<Impl> d_;
};

} // namespace libloop
