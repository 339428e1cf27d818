// JsTimers: browser timers on a Loop (see js_timers.h for the semantics).
//
// Invariants:
// - `active` (under `mutex`) maps the id of every timer or immediate that may still run to its
//   Entry. An entry leaves the map exactly once: when cleared, when a one-shot ran, or when an
//   interval could not be re-armed.
// - Entry::st decides, with one atomic step, between a run starting (Idle → Running, loop thread)
//   and a clear (any → Cleared, any thread). A run starts only from Idle, so once a clear's
//   exchange has happened no run starts; a run already started may finish, and an interval whose
//   state left Running meanwhile is not re-armed (Running → Idle fails).
// - Callbacks are invoked and destroyed on the loop thread: an entry is co-owned by the map and by
//   the loop task that will fire it; a clear on another thread hands its reference back to the
//   loop thread (a task) instead of dropping it.
#include <libloop/js_timers.h>

#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <unordered_map>

namespace libloop {

namespace {
enum class Kind : std::uint8_t { Timeout, Interval, Immediate };
enum : int { Idle, Running, Cleared };
constexpr int kNestingThreshold = 5; // HTML: "nesting level is greater than 5"
constexpr std::int64_t kNestedMinDelayMs = 4;
} // namespace

struct JsTimers::Impl : std::enable_shared_from_this<JsTimers::Impl> {
    struct Entry {
        Entry(Kind k, std::uint64_t i, std::int64_t d, Callback c)
            : kind(k), id(i), delayMs(d), callback(std::move(c)) {}
        const Kind kind;
        const std::uint64_t id;
        const std::int64_t delayMs; // normalized, before the nesting clamp
        int level = 0;              // the nesting level its runs have (loop thread after arming)
        std::atomic<int> st{Idle};
        std::atomic<std::uint64_t> loopTimer{0};
        Callback callback;
    };
    using EntryPtr = std::shared_ptr<Entry>;

    Impl(Loop& l, JsTimersOptions o) : loop(l), nextId(o.firstId ? o.firstId : 1) {}

    Loop& loop;
    mutable std::mutex mutex;
    std::unordered_map<std::uint64_t, EntryPtr> active;
    std::uint64_t nextId;
    bool closed = false;
    int level = 0; // loop thread: the running timer callback's nesting level

    int currentLevel() const noexcept { return loop.isLoopThread() ? level : 0; }

    // Schedules the loop timer for `e` at nesting level `parent` (the level of the callback that
    // (re-)arms it). HTML timer initialization steps 3–5 and 10–11.
    Status arm(const EntryPtr& e, int parent) {
        std::int64_t delay = e->delayMs;
        if (parent > kNestingThreshold && delay < kNestedMinDelayMs)
            delay = kNestedMinDelayMs;
        e->level = parent + 1;
        auto r = loop.scheduleTimer(std::chrono::milliseconds(delay),
                                    [self = shared_from_this(), e] { self->fire(e); });
        if (!r)
            return r.status();
        e->loopTimer.store(r.value().value, std::memory_order_release);
        // A clear that read the previous loop timer id cancelled nothing: release this one now
        // rather than at its deadline (it would not run anyway: st is Cleared).
        if (e->st.load(std::memory_order_acquire) == Cleared)
            loop.cancelTimer(r.value());
        return {};
    }

    Result<std::uint64_t> add(Kind kind, Callback cb, double delayMs) {
        if (!cb)
            return Errc::NullCallable;
        std::lock_guard lock(mutex);
        if (closed)
            return Errc::NotAccepting;
        if (nextId > kMaxJsTimerId)
            return Errc::IdsExhausted;
        const std::uint64_t id = nextId;
        auto e = std::make_shared<Entry>(kind, id, normalizeDelay(delayMs), std::move(cb));
        if (kind == Kind::Immediate) {
            // Off the loop thread, a task moves it into the check phase (queueImmediate is
            // loop-thread only).
            Status s = loop.isLoopThread() ? queueImmediate(e)
                                           : loop.submit([self = shared_from_this(), e] {
                                                 if (!self->queueImmediate(e))
                                                     self->erase(e);
                                             });
            if (!s)
                return s;
        } else if (Status s = arm(e, currentLevel()); !s) {
            return s;
        }
        active.emplace(id, std::move(e));
        ++nextId;
        return id;
    }

    Status queueImmediate(const EntryPtr& e) {
        return loop.queueImmediate([self = shared_from_this(), e] { self->fireImmediate(e); });
    }

    // Runs `cb` with the nesting level `lvl`, then rethrows what it threw after `after` ran.
    template <class After> void invoke(Entry& e, int lvl, After after) {
        const int saved = level;
        level = lvl;
        std::exception_ptr failure;
        try {
            e.callback();
        } catch (...) {
            failure = std::current_exception();
        }
        level = saved;
        after();
        if (failure)
            std::rethrow_exception(failure); // to the loop's error hook; bookkeeping is done
    }

    void fire(const EntryPtr& e) {
        int expected = Idle;
        if (!e->st.compare_exchange_strong(expected, Running, std::memory_order_acq_rel))
            return; // cleared
        invoke(*e, e->level, [&] {
            if (e->kind == Kind::Interval) {
                int running = Running;
                if (!e->st.compare_exchange_strong(running, Idle, std::memory_order_acq_rel))
                    return; // cleared during the run (and already out of the map)
                if (!arm(e, e->level))
                    erase(e);
            } else {
                e->st.store(Cleared, std::memory_order_release);
                erase(e);
            }
        });
    }

    void fireImmediate(const EntryPtr& e) {
        int expected = Idle;
        if (!e->st.compare_exchange_strong(expected, Running, std::memory_order_acq_rel))
            return;
        invoke(*e, 0, [&] {
            e->st.store(Cleared, std::memory_order_release);
            erase(e);
        });
    }

    void erase(const EntryPtr& e) {
        std::lock_guard lock(mutex);
        auto it = active.find(e->id);
        if (it != active.end() && it->second == e)
            active.erase(it);
    }

    void clear(std::uint64_t id, bool immediate) noexcept {
        EntryPtr e;
        {
            std::lock_guard lock(mutex);
            auto it = active.find(id);
            if (it == active.end() || (it->second->kind == Kind::Immediate) != immediate)
                return;
            e = std::move(it->second);
            active.erase(it);
        }
        cancel(std::move(e));
    }

    void cancel(EntryPtr e) noexcept {
        if (e->st.exchange(Cleared, std::memory_order_acq_rel) == Idle &&
            e->kind != Kind::Immediate)
            loop.cancelTimer(TimerId{e->loopTimer.load(std::memory_order_acquire)});
        if (!loop.isLoopThread()) // the last reference may be ours: release on the loop thread
            (void)loop.submit([e = std::move(e)] {});
    }

    void clearAll() noexcept {
        std::unordered_map<std::uint64_t, EntryPtr> all;
        {
            std::lock_guard lock(mutex);
            closed = true;
            all.swap(active);
        }
        for (auto& [id, e] : all)
            cancel(std::move(e));
    }
};

std::int64_t JsTimers::normalizeDelay(double delayMs) noexcept {
    // WebIDL ConvertToInt(x, 32, signed): NaN/±Inf → 0, truncate, modulo 2^32, into the signed
    // range. Then HTML: negative → 0.
    if (!std::isfinite(delayMs))
        return 0;
    constexpr double k2to32 = 4294967296.0;
    double m = std::fmod(std::trunc(delayMs), k2to32);
    if (m < 0)
        m += k2to32;
    std::int64_t v = std::int64_t(m);
    if (v >= (std::int64_t(1) << 31))
        v -= std::int64_t(1) << 32;
    return v < 0 ? 0 : v;
}

JsTimers::JsTimers(Loop& loop, JsTimersOptions options)
    : d_(std::make_shared<Impl>(loop, options)) {}

JsTimers::~JsTimers() {
    d_->clearAll();
}

Result<std::uint64_t> JsTimers::setTimeout(Callback callback, double delayMs) {
    return d_->add(Kind::Timeout, std::move(callback), delayMs);
}
Result<std::uint64_t> JsTimers::setInterval(Callback callback, double delayMs) {
    return d_->add(Kind::Interval, std::move(callback), delayMs);
}
Result<std::uint64_t> JsTimers::setImmediate(Callback callback) {
    return d_->add(Kind::Immediate, std::move(callback), 0);
}
void JsTimers::clearTimeout(std::uint64_t id) noexcept {
    d_->clear(id, false);
}
void JsTimers::clearInterval(std::uint64_t id) noexcept {
    d_->clear(id, false);
}
void JsTimers::clearImmediate(std::uint64_t id) noexcept {
    d_->clear(id, true);
}
Status JsTimers::queueMicrotask(Task task) {
    return d_->loop.queueMicrotask(std::move(task));
}
Result<TimePoint> JsTimers::deadline(std::uint64_t id) const noexcept {
    std::uint64_t timer = 0;
    {
        std::lock_guard lock(d_->mutex);
        auto it = d_->active.find(id);
        if (it == d_->active.end() || it->second->kind == Kind::Immediate)
            return Errc::NotFound;
        timer = it->second->loopTimer.load(std::memory_order_acquire);
    }
    return d_->loop.timerDeadline(TimerId{timer});
}

std::size_t JsTimers::pending() const noexcept {
    std::lock_guard lock(d_->mutex);
    return d_->active.size();
}
int JsTimers::nestingLevel() const noexcept {
    return d_->currentLevel();
}
Loop& JsTimers::loop() const noexcept {
    return d_->loop;
}

} // namespace libloop
