// Fuzz harness: libloop::JsTimers (js_timers.h) on a Loop with a ManualClock, against a small
// reference model of the HTML timer rules written here (plain vectors and linear scans).
//
// Input: byte 0 picks the mode (firstId near 2^53−1 for id exhaustion, a small maxTimers, a
// small microtask budget), byte 1 its parameter; then a table of callback scripts (each a few
// actions: set/clear timers, queueMicrotask, throw, advance the clock, probe the state), then
// top-level operations of 3 bytes each (set*/clear*/queueMicrotask/advance/runOnce/probe, and
// rarely loop.close()). Ids for clear*/probes are picked among valid, fired, cleared, unknown,
// 0, 2^53−1, 2^53 and 2^64−1 ones, of any kind (cross-kind clears).
// The real JsTimers and the model execute the same operations; after every one the harness
// compares, and aborts with the operation trace on any difference:
//  - the event log: which callbacks ran in which order (timeout/interval/immediate id,
//    microtask tag), the nesting level each saw, the ids/errors each set* answered (also inside
//    callbacks), the error hook's reports (kind), probes made inside callbacks (deadline(id),
//    pending(), nestingLevel(), loop.pendingTimers()), runOnce's callback count;
//  - js.pending(), loop.pendingTimers(), loop.now(), js.nestingLevel() (0 outside callbacks)
//    and deadline(id) of every id ever handed out (or NotFound);
//  - normalizeDelay(x) against an independent WebIDL `long` conversion;
//  - at the end, ~JsTimers leaves no loop timer and nothing of it runs afterwards.
// Not covered here: set*/clear* from other threads, tasks and fd callbacks around timers,
// RunPhase, nested runOnce, shutdown() (fuzz_loop covers the loop itself).
// runOnce(kForever) is issued only when the model says something is ready or a timer is pending
// (the manual clock then jumps to the deadline instead of sleeping), so nothing sleeps.
#include <libloop/js_timers.h>
#include <libloop/loop.h>
#include <libloop/manual_clock.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace libloop;

namespace {

constexpr std::size_t kMaxOps = 150;
constexpr int kMaxRunOps = 64;      // runOnce calls per input
constexpr int kCallbackBudget = 96; // creating actions (set*, queueMicrotask) run in callbacks
constexpr int kMaxIntervals = 12;   // further setInterval attempts become setTimeout
constexpr std::size_t kMaxScripts = 8;
constexpr std::size_t kMaxActions = 4;
constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kNestingThreshold = 5; // HTML: nesting level greater than 5
constexpr std::int64_t kNestedMinMs = 4;

enum class TK : std::uint8_t { Timeout, Interval, Immediate, Micro };
const char* tkName(TK k) {
    switch (k) {
    case TK::Timeout:
        return "timeout";
    case TK::Interval:
        return "interval";
    case TK::Immediate:
        return "immediate";
    case TK::Micro:
        return "microtask";
    }
    return "?";
}

struct Action {
    std::uint8_t op = 0, a = 0, b = 0;
};

struct Program {
    std::uint64_t firstId = 1;
    std::uint32_t maxTimers = 1u << 24;
    std::uint32_t budget = 1024;
    std::vector<std::vector<Action>> scripts;
    std::vector<Action> ops;
};

// ---- inputs: delays, clock steps, timeouts ----

double delayOf(std::uint8_t v) {
    static const double table[] = {0.0,
                                   1.0,
                                   2.0,
                                   3.0,
                                   4.0,
                                   5.0,
                                   10.0,
                                   100.0,
                                   -1.0,
                                   -0.0,
                                   0.5,
                                   3.9999,
                                   4.0001,
                                   std::numeric_limits<double>::quiet_NaN(),
                                   std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(),
                                   2147483647.0,
                                   2147483648.0,
                                   4294967296.0 + 7,
                                   -4294967296.0 + 3,
                                   1e300,
                                   -1e300,
                                   9007199254740993.0,
                                   4294967295.0,
                                   -2147483649.0,
                                   1.5e10 + 0.75,
                                   5e-324,
                                   18446744073709551616.0,
                                   9223372036854775808.0 + 1099511627776.0 * 4096,
                                   -4611686018427387904.0 - 21474836480.0,
                                   6.0};
    constexpr std::size_t n = sizeof table / sizeof table[0];
    const std::size_t i = v % 32;
    return i < n ? table[i] : double(v >> 5); // 0..7
}

std::int64_t advanceOf(std::uint8_t v) {
    static const std::int64_t table[] = {0,       1,           kMs - 1,          kMs,
                                         3 * kMs, 4 * kMs,     10 * kMs,         1000 * kMs,
                                         5 * kMs, 2 * kMs + 1, 2147483648 * kMs, 100 * kMs};
    return table[v % (sizeof table / sizeof table[0])];
}

std::int64_t smallAdvanceOf(std::uint8_t v) {
    static const std::int64_t table[] = {0, 1, kMs, 4 * kMs};
    return table[v % 4];
}

std::int64_t timeoutOf(std::uint8_t v) {
    static const std::int64_t table[] = {1,         kMs,         4 * kMs,          5 * kMs,
                                         100 * kMs, 3 * kMs + 7, 2147483648 * kMs, 1000 * kMs};
    return table[v % 8];
}

// Independent WebIDL ConvertToInt(x, 32 bits, signed), then HTML's "negative → 0": by the binary
// representation rather than fmod.
std::int64_t modelDelay(double x) {
    if (std::isnan(x) || std::isinf(x))
        return 0;
    const double t = std::trunc(x);
    std::uint32_t low;
    if (std::fabs(t) < 9.2e18) {
        low = std::uint32_t(std::uint64_t(std::int64_t(t)));
    } else {
        int e = 0;
        const double fr = std::frexp(t, &e);
        const std::int64_t m = std::int64_t(std::ldexp(fr, 53)); // t == m * 2^(e-53)
        const int shift = e - 53;
        low = shift >= 32 ? 0u : std::uint32_t(std::uint64_t(m) << shift);
    }
    const std::int32_t s = std::int32_t(low);
    return s < 0 ? 0 : s;
}

// ---- the event log both sides write ----

enum class Ev : std::uint8_t { Set, Run, Err, Probe, RunOnce };

struct Event {
    Ev type;
    TK kind;
    std::uint64_t a;    // Set: id (0 on error); Run: id or microtask tag; Probe: id; RunOnce: n
    std::int64_t b = 0; // Set: Errc; Run: nesting level; Probe: deadline ns or -1
    std::int64_t c = 0; // Probe: pending()
    std::int64_t d = 0; // Probe: nestingLevel()
    std::int64_t e = 0; // Probe: loop.pendingTimers()
    bool operator==(const Event&) const = default;
};

std::string describe(const Event& e) {
    char buf[200];
    switch (e.type) {
    case Ev::Set:
        std::snprintf(buf, sizeof buf, "set %s -> id %llu errc %s", tkName(e.kind),
                      (unsigned long long)e.a, errcName(Errc(e.b)));
        break;
    case Ev::Run:
        std::snprintf(buf, sizeof buf, "run %s %llu level %lld", tkName(e.kind),
                      (unsigned long long)e.a, (long long)e.b);
        break;
    case Ev::Err:
        std::snprintf(buf, sizeof buf, "error hook, kind %s", tkName(e.kind));
        break;
    case Ev::Probe:
        std::snprintf(buf, sizeof buf,
                      "probe id %llu: deadline %lld pending %lld level %lld loopTimers %lld",
                      (unsigned long long)e.a, (long long)e.b, (long long)e.c, (long long)e.d,
                      (long long)e.e);
        break;
    case Ev::RunOnce:
        std::snprintf(buf, sizeof buf, "runOnce -> %llu callbacks", (unsigned long long)e.a);
        break;
    }
    return buf;
}

// ---- decoding ----

struct Reader {
    const std::uint8_t* p;
    std::size_t n;
    std::size_t i = 0;
    bool more() const { return i < n; }
    std::uint8_t next() { return i < n ? p[i++] : 0; }
};

Program decode(const std::uint8_t* data, std::size_t size) {
    Reader r{data, size};
    Program prog;
    const std::uint8_t flags = r.next();
    const std::uint8_t param = r.next();
    switch (flags & 3) {
    case 2: {
        static const std::uint64_t firsts[] = {
            kMaxJsTimerId,     kMaxJsTimerId - 1, kMaxJsTimerId - 2, kMaxJsTimerId - 3,
            kMaxJsTimerId - 5, kMaxJsTimerId - 8, kMaxJsTimerId + 1, ~std::uint64_t(0)};
        prog.firstId = firsts[param % 8];
        break;
    }
    case 3:
        prog.firstId = 1000 + param;
        break;
    default:
        break;
    }
    if (((flags >> 2) & 3) == 3)
        prog.maxTimers = 1 + ((param >> 3) & 7);
    if (((flags >> 4) & 3) == 3)
        prog.budget = 1 + ((param >> 6) & 3);
    const std::size_t nScripts = 1 + r.next() % kMaxScripts;
    prog.scripts.resize(nScripts);
    for (auto& s : prog.scripts) {
        const std::size_t n = r.next() % (kMaxActions + 1);
        for (std::size_t k = 0; k < n; ++k)
            s.push_back(Action{r.next(), r.next(), r.next()});
    }
    while (r.more() && prog.ops.size() < kMaxOps)
        prog.ops.push_back(Action{r.next(), r.next(), r.next()});
    return prog;
}

// Top-level operations (op % 16).
enum TopOp : int {
    TSetTimeout0 = 0,
    TSetTimeout1,
    TSetInterval,
    TSetImmediate,
    TClearTimeout,
    TClearInterval,
    TClearImmediate,
    TQueueMicrotask,
    TAdvance,
    TRunOnce0,
    TRunOnceTimeout,
    TRunOnceForever0,
    TRunOnceForever1,
    TDrain,
    TSetNull,
    TProbe,
};

// Callback actions (op % 12).
enum CbOp : int {
    CSetTimeout = 0,
    CSetInterval,
    CSetImmediate,
    CClearTimeout,
    CClearInterval,
    CClearImmediate,
    CQueueMicrotask,
    CThrow,
    CAdvance,
    CProbe,
    CSetTimeout2,
    CProbeSelf,
};

std::string describeAction(const Action& a, bool top) {
    char buf[160];
    if (top) {
        static const char* names[] = {
            "setTimeout",       "setTimeout",    "setInterval",    "setImmediate",
            "clearTimeout",     "clearInterval", "clearImmediate", "queueMicrotask",
            "advance",          "runOnce(0)",    "runOnce(t)",     "runOnce(forever)",
            "runOnce(forever)", "drain",         "set(null)",      "probe"};
        std::snprintf(buf, sizeof buf, "%s a=%u b=%u (delay %g, step %lld ns, timeout %lld ns)",
                      names[a.op % 16], a.a, a.b, delayOf(a.a), (long long)advanceOf(a.a),
                      (long long)timeoutOf(a.a));
    } else {
        static const char* names[] = {"setTimeout",     "setInterval",   "setImmediate",
                                      "clearTimeout",   "clearInterval", "clearImmediate",
                                      "queueMicrotask", "throw",         "advance",
                                      "probe",          "setTimeout",    "probe(self)"};
        std::snprintf(buf, sizeof buf, "%s a=%u b=%u (delay %g)", names[a.op % 12], a.a, a.b,
                      delayOf(a.a));
    }
    return buf;
}

struct SetResult {
    std::uint64_t id = 0;
    Errc errc = Errc::Ok;
};

// What both sides share: the harness's own bookkeeping (ids seen, budgets) and the script
// interpreter. D supplies the primitives: set, clear, queueMicro, advance, probe.
template <class D> struct Side {
    explicit Side(const Program& p) : prog(p) {}
    const Program& prog;
    std::vector<Event> log;
    std::vector<std::uint64_t> known; // every id a set* answered, in order
    std::uint64_t last = 0, maxKnown = 0;
    int budget = kCallbackBudget;
    int intervals = 0;
    std::uint64_t microTags = 0;

    D& d() { return static_cast<D&>(*this); }

    std::uint64_t pickId(std::uint8_t v, std::uint64_t self) const {
        switch (v & 7) {
        case 0:
            return self ? self : last;
        case 1:
            return last;
        case 2:
        case 3:
        case 4:
            return known.empty() ? 0 : known[(v >> 3) % known.size()];
        case 5:
            return 0;
        case 6:
            return (maxKnown ? maxKnown : prog.firstId) + 1 + ((v >> 3) & 3);
        default: {
            const std::uint64_t special[] = {kMaxJsTimerId, kMaxJsTimerId + 1, ~std::uint64_t(0),
                                             prog.firstId - 1};
            return special[(v >> 3) & 3];
        }
        }
    }

    void set(TK kind, double delay, std::size_t script, bool null) {
        if (kind == TK::Interval && intervals++ >= kMaxIntervals)
            kind = TK::Timeout;
        const SetResult r = d().doSet(kind, delay, script, null);
        log.push_back({Ev::Set, kind, r.id, std::int64_t(r.errc)});
        if (r.errc == Errc::Ok) {
            known.push_back(r.id);
            last = r.id;
            maxKnown = std::max(maxKnown, r.id);
        }
    }

    void queueMicro(std::size_t script) { d().doQueueMicro(script, microTags++); }

    // Runs a callback's script; true when it "threw" (the caller throws / reports).
    bool runScript(std::size_t script, std::uint64_t self) {
        for (const Action& a : prog.scripts[script % prog.scripts.size()]) {
            const std::size_t child = a.b % prog.scripts.size();
            const int op = a.op % 12;
            const bool creates = op == CSetTimeout || op == CSetInterval || op == CSetImmediate ||
                                 op == CQueueMicrotask || op == CSetTimeout2;
            if (creates) {
                if (budget <= 0)
                    continue;
                --budget;
            }
            switch (op) {
            case CSetTimeout:
            case CSetTimeout2:
                set(TK::Timeout, delayOf(a.a), child, false);
                break;
            case CSetInterval:
                set(TK::Interval, delayOf(a.a), child, false);
                break;
            case CSetImmediate:
                set(TK::Immediate, 0, child, false);
                break;
            case CClearTimeout:
                d().doClear(TK::Timeout, pickId(a.a, self));
                break;
            case CClearInterval:
                d().doClear(TK::Interval, pickId(a.a, self));
                break;
            case CClearImmediate:
                d().doClear(TK::Immediate, pickId(a.a, self));
                break;
            case CQueueMicrotask:
                queueMicro(child);
                break;
            case CThrow:
                return true;
            case CAdvance:
                d().doAdvance(smallAdvanceOf(a.a));
                break;
            case CProbe:
                d().doProbe(pickId(a.a, self));
                break;
            case CProbeSelf:
                d().doProbe(self ? self : last);
                break;
            default:
                break;
            }
        }
        return false;
    }
};

// ================================ the real JsTimers ================================

struct Real : Side<Real> {
    static LoopOptions options(Real* self, const Program& p, ManualClock* clock) {
        LoopOptions o;
        o.name = "fuzz_js_timers";
        o.clock = clock;
        o.maxTimers = p.maxTimers;
        o.microtaskBudget = p.budget;
        o.metrics = false;
        o.microtaskRingCapacity = 16; // small: cheap to create, and the overflow list is used
        o.errorHook = [self](std::exception_ptr, CallbackKind k) {
            TK kind = TK::Micro;
            if (k == CallbackKind::Timer)
                kind = TK::Timeout; // timeouts and intervals alike
            else if (k == CallbackKind::Task)
                kind = TK::Immediate;
            else if (k != CallbackKind::Microtask)
                kind = TK(99);
            self->log.push_back({Ev::Err, kind, 0});
        };
        return o;
    }

    explicit Real(const Program& p) : Side(p), loop(options(this, p, &clock)) {
        js.emplace(loop, JsTimersOptions{p.firstId});
    }

    ManualClock clock;
    Loop loop;
    std::optional<JsTimers> js;
    std::vector<std::uint64_t> cells; // the id of each set* attempt (0 until it answered)

    void onRun(TK kind, std::size_t cell, std::size_t script) {
        const std::uint64_t id = cells[cell];
        log.push_back({Ev::Run, kind, id, js->nestingLevel()});
        if (runScript(script, id))
            throw std::runtime_error("fuzz_js_timers: a callback throws");
    }

    SetResult doSet(TK kind, double delay, std::size_t script, bool null) {
        const std::size_t cell = cells.size();
        cells.push_back(0);
        JsTimers::Callback cb;
        if (!null)
            cb = [this, kind, cell, script] { onRun(kind, cell, script); };
        Result<std::uint64_t> r = kind == TK::Timeout    ? js->setTimeout(std::move(cb), delay)
                                  : kind == TK::Interval ? js->setInterval(std::move(cb), delay)
                                                         : js->setImmediate(std::move(cb));
        if (!r)
            return {0, r.code()};
        cells[cell] = r.value();
        return {r.value(), Errc::Ok};
    }

    void doClear(TK kind, std::uint64_t id) {
        if (kind == TK::Timeout)
            js->clearTimeout(id);
        else if (kind == TK::Interval)
            js->clearInterval(id);
        else
            js->clearImmediate(id);
    }

    void doQueueMicro(std::size_t script, std::uint64_t tag) {
        const Status s = js->queueMicrotask([this, script, tag] {
            log.push_back({Ev::Run, TK::Micro, tag, js->nestingLevel()});
            if (runScript(script, 0))
                throw std::runtime_error("fuzz_js_timers: a microtask throws");
        });
        if (!s)
            log.push_back({Ev::Set, TK::Micro, 0, std::int64_t(s.code())});
    }

    void doAdvance(std::int64_t ns) { clock.advance(Duration(ns)); }

    std::int64_t deadlineNs(std::uint64_t id) const {
        const auto r = js->deadline(id);
        return r ? std::int64_t(r.value().time_since_epoch().count()) : -1;
    }

    void doProbe(std::uint64_t id) {
        log.push_back({Ev::Probe, TK::Timeout, id, deadlineNs(id), std::int64_t(js->pending()),
                       js->nestingLevel(), std::int64_t(loop.pendingTimers())});
    }

    void doClose() { (void)loop.close(); }

    void runOnce(Duration timeout) {
        const auto r = loop.runOnce(timeout);
        log.push_back({Ev::RunOnce, TK::Timeout, r ? r.value() : ~std::uint64_t(0)});
    }
};

// ================================ the model ================================

struct Model : Side<Model> {
    struct Entry {
        TK kind;
        std::int64_t delayMs; // normalized, before the clamp
        std::size_t script;
        int level = 0;       // the nesting level its (next) run has
        bool active = true;  // in the id map: may still run, counted by pending()
        bool inHeap = false; // a loop timer is pending for it
        std::int64_t deadline = 0;
        std::uint64_t seq = 0;
    };
    struct Micro {
        std::size_t script;
        std::uint64_t tag;
    };

    explicit Model(const Program& p) : Side(p), nextId(p.firstId) {}

    std::int64_t now = std::chrono::nanoseconds(std::chrono::hours(1)).count();
    std::uint64_t nextId;
    std::uint64_t nextSeq = 0;
    int level = 0; // the running timer callback's level, 0 elsewhere
    std::map<std::uint64_t, Entry> entries;
    std::vector<std::uint64_t> immediates; // the check-phase queue (cleared ones stay: no-op)
    std::vector<Micro> micro;              // FIFO
    std::size_t microHead = 0;
    bool closed = false; // loop.close(): every queued callback and loop timer is gone

    void doClose() {
        closed = true;
        for (auto& [id, e] : entries)
            e.inHeap = false; // still "pending" for JsTimers: neither run nor cleared
        immediates.clear();
        micro.clear();
        microHead = 0;
    }

    std::size_t heapCount() const {
        std::size_t n = 0;
        for (const auto& [id, e] : entries)
            n += e.inHeap;
        return n;
    }
    std::size_t pending() const {
        std::size_t n = 0;
        for (const auto& [id, e] : entries)
            n += e.active;
        return n;
    }
    bool microPending() const { return microHead < micro.size(); }
    // runOnce(kForever) returns without sleeping in real time.
    bool wontBlock() const { return microPending() || !immediates.empty() || heapCount() != 0; }

    // HTML timer initialization steps 3–5 and 10–11 as js_timers.h states them.
    bool arm(Entry& e, int parent) {
        // loop.h: "Timers pending at once, at most": a running timer is not pending, so an
        // interval re-arms even at the cap (regression: corpus/js_timers/regress-interval-at-cap).
        const std::size_t used = heapCount();
        if (used >= prog.maxTimers)
            return false;
        std::int64_t delay = e.delayMs;
        if (parent > kNestingThreshold && delay < kNestedMinMs)
            delay = kNestedMinMs;
        e.level = parent + 1;
        e.deadline = now + delay * kMs;
        e.seq = nextSeq++;
        e.inHeap = true;
        return true;
    }

    SetResult doSet(TK kind, double delay, std::size_t script, bool null);

    void doClear(TK kind, std::uint64_t id) {
        auto it = entries.find(id);
        if (it == entries.end() || !it->second.active)
            return;
        if ((it->second.kind == TK::Immediate) != (kind == TK::Immediate))
            return;
        it->second.active = false;
        it->second.inHeap = false;
    }

    void doQueueMicro(std::size_t script, std::uint64_t tag) {
        if (closed)
            log.push_back({Ev::Set, TK::Micro, 0, std::int64_t(Errc::NotAccepting)});
        else
            micro.push_back({script, tag});
    }
    void doAdvance(std::int64_t ns) { now += ns; }

    std::int64_t deadlineNs(std::uint64_t id) const {
        auto it = entries.find(id);
        if (it == entries.end() || !it->second.active || !it->second.inHeap)
            return -1; // unknown, fired, cleared, an immediate, or running
        return it->second.deadline;
    }

    void doProbe(std::uint64_t id) {
        log.push_back({Ev::Probe, TK::Timeout, id, deadlineNs(id), std::int64_t(pending()), level,
                       std::int64_t(heapCount())});
    }

    // Microtasks until the queue is empty or the budget is spent.
    std::size_t checkpoint() {
        std::size_t n = 0;
        while (microPending() && (prog.budget == 0 || n < prog.budget)) {
            const Micro m = micro[microHead++];
            ++n;
            log.push_back({Ev::Run, TK::Micro, m.tag, 0});
            if (runScript(m.script, 0))
                log.push_back({Ev::Err, TK::Micro, 0});
        }
        if (!microPending()) {
            micro.clear();
            microHead = 0;
        }
        return n;
    }

    // Due timers (deadline ≤ now0), earliest deadline first, equal deadlines in scheduling
    // order; those armed during the phase wait for the next one.
    std::size_t timerPhase(std::int64_t now0) {
        const std::uint64_t limit = nextSeq;
        std::size_t n = 0;
        for (;;) {
            Entry* best = nullptr;
            std::uint64_t bestId = 0;
            for (auto& [id, e] : entries) {
                if (!e.inHeap || e.deadline > now0 || e.seq >= limit)
                    continue;
                if (!best || e.deadline < best->deadline ||
                    (e.deadline == best->deadline && e.seq < best->seq)) {
                    best = &e;
                    bestId = id;
                }
            }
            if (!best)
                return n;
            Entry& e = *best;
            e.inHeap = false;
            ++n;
            level = e.level;
            log.push_back({Ev::Run, e.kind, bestId, e.level});
            const bool threw = runScript(e.script, bestId);
            level = 0;
            Entry& after = entries.at(bestId); // (the map does not move entries)
            if (after.kind == TK::Interval) {
                if (after.active && !arm(after, after.level))
                    after.active = false; // could not be re-armed
            } else {
                after.active = false;
            }
            if (threw)
                log.push_back({Ev::Err, TK::Timeout, 0});
            n += checkpoint();
        }
    }

    // The check phase: the immediates queued before it began.
    std::size_t checkPhase() {
        const std::size_t count = immediates.size();
        std::vector<std::uint64_t> batch(immediates.begin(), immediates.begin() + long(count));
        immediates.erase(immediates.begin(), immediates.begin() + long(count));
        std::size_t n = 0;
        for (std::uint64_t id : batch) {
            ++n; // a cleared immediate's task still runs (as a no-op)
            Entry& e = entries.at(id);
            if (e.active) {
                log.push_back({Ev::Run, TK::Immediate, id, 0});
                const bool threw = runScript(e.script, id);
                entries.at(id).active = false;
                if (threw)
                    log.push_back({Ev::Err, TK::Immediate, 0});
            }
            n += checkpoint();
        }
        return n;
    }

    // loop.h's iteration; timeoutNs < 0 is kForever.
    void runOnce(std::int64_t timeoutNs) {
        if (closed) {
            log.push_back({Ev::RunOnce, TK::Timeout, ~std::uint64_t(0)});
            return;
        }
        const std::int64_t now0 = now;
        std::size_t ran = checkpoint();
        ran += timerPhase(now0);
        ran += checkPhase();
        std::size_t total = ran;
        if (ran == 0 && timeoutNs != 0) {
            // Nothing ran: nothing is ready and every pending deadline is after now. The
            // manual clock jumps to the earlier of the timeout and the next deadline.
            std::int64_t until =
                timeoutNs < 0 ? std::numeric_limits<std::int64_t>::max() : now + timeoutNs;
            for (const auto& [id, e] : entries)
                if (e.inHeap && e.deadline < until)
                    until = e.deadline;
            if (until == std::numeric_limits<std::int64_t>::max())
                fail("model: runOnce(kForever) would block");
            if (until > now)
                now = until;
            const std::int64_t now1 = now;
            total += checkpoint();
            total += timerPhase(now1);
        }
        log.push_back({Ev::RunOnce, TK::Timeout, total});
    }

    [[noreturn]] static void fail(const char* what) {
        std::fprintf(stderr, "fuzz_js_timers: %s\n", what);
        std::abort();
    }
};

SetResult Model::doSet(TK kind, double delay, std::size_t script, bool null) {
    if (null)
        return {0, Errc::NullCallable};
    if (nextId > kMaxJsTimerId)
        return {0, Errc::IdsExhausted};
    if (closed)
        return {0, Errc::NotAccepting};
    const std::int64_t d = modelDelay(delay);
    if (d != JsTimers::normalizeDelay(delay)) {
        std::fprintf(stderr, "fuzz_js_timers: normalizeDelay(%.17g) = %lld, model says %lld\n",
                     delay, (long long)JsTimers::normalizeDelay(delay), (long long)d);
        std::abort();
    }
    Entry e{kind, d, script};
    if (kind == TK::Immediate) {
        immediates.push_back(nextId);
    } else if (!arm(e, level)) {
        return {0, Errc::TooManyTimers};
    }
    const std::uint64_t id = nextId++;
    entries.emplace(id, e);
    return {id, Errc::Ok};
}

// ================================ the comparison ================================

struct Harness {
    explicit Harness(const Program& p) : prog(p), real(p), model(p) {}
    const Program& prog;
    Real real;
    Model model;
    std::size_t opsDone = 0;
    std::size_t compared = 0; // log entries already compared

    [[noreturn]] void fail(const std::string& what) {
        std::fprintf(stderr, "fuzz_js_timers: MISMATCH: %s\n", what.c_str());
        std::fprintf(stderr, "mode: firstId %llu maxTimers %u microtaskBudget %u\n",
                     (unsigned long long)prog.firstId, prog.maxTimers, prog.budget);
        for (std::size_t s = 0; s < prog.scripts.size(); ++s) {
            std::fprintf(stderr, "script %zu:", s);
            for (const Action& a : prog.scripts[s])
                std::fprintf(stderr, " [%s]", describeAction(a, false).c_str());
            std::fprintf(stderr, "\n");
        }
        std::fprintf(stderr, "operations (the last one failed):\n");
        for (std::size_t i = 0; i < opsDone && i < prog.ops.size(); ++i)
            std::fprintf(stderr, "  #%zu %s\n", i, describeAction(prog.ops[i], true).c_str());
        const std::size_t n = std::max(real.log.size(), model.log.size());
        std::size_t first = compared;
        while (first < n && first < real.log.size() && first < model.log.size() &&
               real.log[first] == model.log[first])
            ++first;
        std::fprintf(stderr, "event log (real | model), first difference at %zu:\n", first);
        for (std::size_t i = first > 40 ? first - 40 : 0; i < n && i < first + 10; ++i)
            std::fprintf(stderr, "  %c%4zu %-70s | %s\n", i == first ? '>' : ' ', i,
                         i < real.log.size() ? describe(real.log[i]).c_str() : "-",
                         i < model.log.size() ? describe(model.log[i]).c_str() : "-");
        std::abort();
    }

    void compare() {
        if (real.log != model.log)
            fail("the event logs differ");
        compared = real.log.size();
        char buf[200];
        if (real.js->pending() != model.pending()) {
            std::snprintf(buf, sizeof buf, "js.pending() %zu, model %zu", real.js->pending(),
                          model.pending());
            fail(buf);
        }
        if (real.loop.pendingTimers() != model.heapCount()) {
            std::snprintf(buf, sizeof buf, "loop.pendingTimers() %zu, model %zu",
                          real.loop.pendingTimers(), model.heapCount());
            fail(buf);
        }
        const std::int64_t now = real.loop.now().time_since_epoch().count();
        if (now != model.now) {
            std::snprintf(buf, sizeof buf, "loop.now() %lld, model %lld", (long long)now,
                          (long long)model.now);
            fail(buf);
        }
        if (real.js->nestingLevel() != 0)
            fail("nestingLevel() is not 0 outside callbacks");
        if (real.known != model.known)
            fail("ids differ");
        for (std::uint64_t id : real.known) {
            const std::int64_t a = real.deadlineNs(id), b = model.deadlineNs(id);
            if (a != b) {
                std::snprintf(buf, sizeof buf, "deadline(%llu) = %lld, model %lld",
                              (unsigned long long)id, (long long)a, (long long)b);
                fail(buf);
            }
        }
    }

    template <class F> void both(F f) {
        f(real);
        f(model);
    }

    void run() {
        int runOps = 0;
        for (const Action& op : prog.ops) {
            const std::size_t script = op.b % prog.scripts.size();
            ++opsDone;
            switch (op.op % 16) {
            case TSetTimeout1:
                if (op.a % 16 == 15) { // rarely: loop.close()
                    both([&](auto& s) { s.doClose(); });
                    break;
                }
                [[fallthrough]];
            case TSetTimeout0:
                both([&](auto& s) { s.set(TK::Timeout, delayOf(op.a), script, false); });
                break;
            case TSetInterval:
                both([&](auto& s) { s.set(TK::Interval, delayOf(op.a), script, false); });
                break;
            case TSetImmediate:
                both([&](auto& s) { s.set(TK::Immediate, 0, script, false); });
                break;
            case TClearTimeout:
                both([&](auto& s) { s.doClear(TK::Timeout, s.pickId(op.a, 0)); });
                break;
            case TClearInterval:
                both([&](auto& s) { s.doClear(TK::Interval, s.pickId(op.a, 0)); });
                break;
            case TClearImmediate:
                both([&](auto& s) { s.doClear(TK::Immediate, s.pickId(op.a, 0)); });
                break;
            case TQueueMicrotask:
                both([&](auto& s) { s.queueMicro(script); });
                break;
            case TAdvance:
                both([&](auto& s) { s.doAdvance(advanceOf(op.a)); });
                break;
            case TRunOnce0:
            case TRunOnceTimeout:
            case TRunOnceForever0:
            case TRunOnceForever1: {
                if (++runOps > kMaxRunOps)
                    break;
                std::int64_t t = 0;
                if (op.op % 16 == TRunOnceTimeout)
                    t = timeoutOf(op.a);
                else if (op.op % 16 != TRunOnce0 && model.wontBlock())
                    t = -1;
                real.runOnce(t < 0 ? kForever : Duration(t));
                model.runOnce(t);
                break;
            }
            case TDrain:
                for (int i = 0; i <= op.a % 8 && model.wontBlock() && ++runOps <= kMaxRunOps; ++i) {
                    real.runOnce(kForever);
                    model.runOnce(-1);
                    compare();
                }
                break;
            case TSetNull:
                both([&](auto& s) { s.set(TK(op.a % 3), delayOf(op.b), 0, true); });
                break;
            case TProbe:
                both([&](auto& s) { s.doProbe(s.pickId(op.a, 0)); });
                break;
            default:
                break;
            }
            compare();
        }
        finish();
    }

    // Destroying a JsTimers clears everything it scheduled: no loop timer is left and nothing
    // of it runs (a cleared immediate's queued task still runs, as a no-op). Skipped while
    // microtasks (which call into it) are queued.
    void finish() {
        if (model.closed || model.microPending())
            return;
        real.js.reset();
        if (real.loop.pendingTimers() != 0)
            fail("loop timers left after ~JsTimers");
        const std::size_t before = real.log.size();
        const auto r = real.loop.runOnce(Duration(0));
        if (!r || r.value() != model.immediates.size() || real.log.size() != before)
            fail("something ran after ~JsTimers");
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3)
        return 0;
    const Program prog = decode(data, size);
    Harness h(prog);
    h.run();
    return 0;
}
