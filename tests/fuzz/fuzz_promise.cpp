// Fuzz harness: libloop::Promise<int> (promise.h) against a small reference model of
// Promise/A+ with ECMAScript's job order, written here: promise records, reaction closures and
// one explicit FIFO job queue (the loop's microtasks), plus HTML's rejection tracker.
//
// Input: byte 0 = mode (bit 0: threaded variant; bits 1-2 == 3: a microtask budget of
// 1 + (byte 1 & 3) per checkpoint), then operations of 4 bytes each (op, a, b, c):
// makePromise / resolvedPromise / rejectedPromise; resolve / reject / resolve-with-a-promise
// (adoption, self-resolution, an empty promise) / reject(nullptr); then(f, g), then(f), catch_,
// finally with handlers that return values, throw, rethrow, or (promise mode) return fresh
// settled or pending promises, earlier promises, their own derived promise or an empty one, and
// that may resolve/reject/chain other promises while they run; all / allSettled / race / any over
// subsets (optionally observed by a then); a marker microtask; runOnce(0) and drains; rarely
// loop.close() or loop.shutdown() (then resolvers answer false and nothing runs any more).
// Op bit 0x40 runs the operation inside a task (loop.submit: inside the loop's run); in the
// threaded variant op bit 0x80 runs it on a second std::thread that is joined before the next
// operation (Resolver and then() from another thread: queued to the loop as a microtask, so the
// model queues a job at that point of the FIFO: pushes ordered by the join keep FIFO order).
//
// After every operation the harness compares, and aborts with the operation trace on any
// difference: the event log (every handler invocation in order with its argument, every
// resolver's answer, every rejection-hook report (Unhandled / HandledLater, which promise,
// which reason), runOnce's callback count, marker microtasks, combinator observers) and the
// state, value and reason of every promise handed out.
//
// Adoption is restricted to promises created earlier than the adopting one (or itself, or an
// empty promise): a cycle of pending promises adopting each other is a documented reference
// cycle in C++ (no garbage collector) and would be reported as a leak.
// Not covered: Promise<T> for T other than int (and void, as race/any inputs),
// makePromise(loop, executor), settling or then() from another thread *while* the loop runs
// (ordering then is a race; only joined threads are used), Resolvers outliving the Loop,
// value()/reason() misuse, setCheckpointHook.
//
#include <libloop/promise.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

using namespace libloop;

namespace {

constexpr std::size_t kMaxOps = 150;
constexpr std::size_t kMaxEntries = 96; // promises handed out per input
constexpr int kMaxThreadOps = 24;
constexpr int kMaxDrainRuns = 16;
constexpr int kMaxRunOps = 64;
struct Op {
    std::uint8_t o = 0, a = 0, b = 0, c = 0;
};

struct Program {
    bool threaded = false;
    std::uint32_t budget = 1024;
    std::vector<Op> ops;
};

Program decode(const std::uint8_t* data, std::size_t size) {
    Program p;
    std::size_t i = 0;
    auto next = [&] { return i < size ? data[i++] : std::uint8_t(0); };
    const std::uint8_t flags = next();
    const std::uint8_t param = next();
    p.threaded = flags & 1;
    if (((flags >> 1) & 3) == 3)
        p.budget = 1 + (param & 3);
    while (i < size && p.ops.size() < kMaxOps)
        p.ops.push_back(Op{next(), next(), next(), next()});
    return p;
}

enum Kind : int {
    KMake = 0,
    KResolved,
    KRejected,
    KResolve,
    KReject,
    KResolveWith,
    KThen2,
    KThen1,
    KCatch,
    KFinally,
    KAll,
    KRaceAny,
    KRun0,
    KDrain,
    KRun1,
    KSpecial,
};

bool threadable(const Op& op) {
    const int k = op.o & 15;
    if (k >= KResolved && k <= KFinally)
        return true;
    return k == KSpecial && op.b % 16 != 15 && (op.b % 4 == 0 || op.b % 4 == 3);
}
bool isRun(const Op& op) {
    const int k = op.o & 15;
    return k == KRun0 || k == KDrain || k == KRun1;
}

std::string describeOp(const Op& op) {
    static const char* names[] = {"makePromise", "resolvedPromise", "rejectedPromise", "resolve",
                                  "reject",      "resolveWith",     "then(f,g)",       "then(f)",
                                  "catch_",      "finally",         "all/allSettled",  "race/any",
                                  "runOnce(0)",  "drain",           "runOnce(0)",      "special"};
    char buf[120];
    std::snprintf(buf, sizeof buf, "%s%s%s a=%u b=%u c=%u", names[op.o & 15],
                  (op.o & 0x80) ? " [thread?]" : "", (op.o & 0x40) ? " [task?]" : "", op.a, op.b,
                  op.c);
    return buf;
}

// ---- handlers ----

// A handler's behaviour, from one byte: bit 0 = promise mode (returns Promise<int>) or plain
// (returns int / void), bits 1-3 = what it does, bits 4-7 = a parameter.
struct Spec {
    bool pm = false;
    int beh = 0;
    int param = 0;
};
Spec specOf(std::uint8_t h) {
    return {bool(h & 1), (h >> 1) & 7, h >> 4};
}

enum class Which : std::uint8_t { F, R, Fin };

struct Handler {
    Spec spec;
    Which which;
    int derived = -1; // the table index of the promise its result resolves
};

// What a handler does on return.
enum class HK : std::uint8_t {
    Value,
    Throw,
    Rethrow,
    Table,
    Self,
    Empty,
    FreshRes,
    FreshRej,
    FreshPending
};
struct HR {
    HK kind = HK::Value;
    int v = 0;
    int tag = 0;
    int table = -1;
};

// ---- the event log ----

enum class Ev : std::uint8_t { Handler, Resolver, Rejection, RunOnce, Combo, Marker, Misc };

struct Event {
    Ev type;
    int a = 0;
    int b = 0;
    std::string s;
    bool operator==(const Event&) const = default;
};

std::string describe(const Event& e) {
    char buf[64];
    switch (e.type) {
    case Ev::Handler:
        std::snprintf(buf, sizeof buf, "handler %d (%s) arg ", e.a,
                      e.b == 0   ? "onFulfilled"
                      : e.b == 1 ? "onRejected"
                                 : "onFinally");
        return buf + e.s;
    case Ev::Resolver:
        return std::string("resolver answered ") + (e.a ? "true" : "false");
    case Ev::Rejection:
        std::snprintf(buf, sizeof buf, "rejection hook: %s promise #%d reason ",
                      e.a == 0 ? "Unhandled" : "HandledLater", e.b);
        return buf + e.s;
    case Ev::RunOnce:
        std::snprintf(buf, sizeof buf, "runOnce -> %d callbacks", e.a);
        return buf;
    case Ev::Combo:
        std::snprintf(buf, sizeof buf, "combinator %d observed %s ", e.a,
                      e.b ? "rejected" : "fulfilled");
        return buf + e.s;
    case Ev::Marker:
        std::snprintf(buf, sizeof buf, "marker microtask %d", e.a);
        return buf;
    case Ev::Misc:
        return "misc " + std::to_string(e.a) + " b=" + std::to_string(e.b) + " " + e.s;
    }
    return "?";
}

std::string join(const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i)
        s += (i ? "," : "") + v[i];
    return s + "]";
}

// An error a handler (or the harness) throws: identified by its tag.
struct FuzzError {
    int tag;
};

std::string errName(int tag) {
    return "E" + std::to_string(tag);
}

std::string reasonOf(const std::exception_ptr& e) {
    if (!e)
        return "null";
    try {
        std::rethrow_exception(e);
    } catch (const FuzzError& f) {
        return errName(f.tag);
    } catch (const AggregateError& a) {
        std::vector<std::string> v;
        for (const auto& x : a.errors())
            v.push_back(reasonOf(x));
        return "Agg" + join(v);
    } catch (const PromiseTypeError&) {
        return "TypeError";
    } catch (const std::invalid_argument&) {
        return "Inval";
    } catch (...) {
        return "other";
    }
}

// ---- what both sides share: the table of promises handed out, the handlers, and the
// interpretation of operations and handler behaviours. D supplies the promise primitives. ----

template <class D, class P, class R> struct Side {
    struct Entry {
        P p;
        R r;
        bool hasR;
    };

    explicit Side(const Program& pr) : prog(pr) {}
    const Program& prog;
    std::vector<Entry> table;
    std::vector<Handler> handlers;
    std::vector<Event> log;
    int errTag = 0;
    int invocations = 0;
    int threadOps = 0;
    int markers = 0;
    int combos = 0;

    D& d() { return static_cast<D&>(*this); }

    bool full() const { return table.size() >= kMaxEntries; }
    int add(P p, R r, bool hasR) {
        const int i = int(table.size());
        table.push_back(Entry{std::move(p), std::move(r), hasR});
        d().label(table.back().p, i);
        return i;
    }
    int pick(unsigned k) const { return table.empty() ? -1 : int(k % table.size()); }
    int pickResolver(unsigned k) const {
        std::size_t n = 0;
        for (const auto& e : table)
            n += e.hasR;
        if (n == 0)
            return -1;
        std::size_t want = k % n;
        for (std::size_t i = 0; i < table.size(); ++i)
            if (table[i].hasR && want-- == 0)
                return int(i);
        return -1;
    }
    int newHandler(Spec s, Which w) {
        handlers.push_back(Handler{s, w, -1});
        return int(handlers.size() - 1);
    }
    void logBool(bool b) { log.push_back({Ev::Resolver, b ? 1 : 0, 0, {}}); }

    // A handler runs: log it, do its side effect, decide its outcome.
    HR decide(int h, bool rejected, int v, const std::string& reason) {
        const Handler hd = handlers[std::size_t(h)];
        ++invocations;
        log.push_back({Ev::Handler, h, int(hd.which),
                       hd.which == Which::Fin ? std::string()
                       : rejected             ? reason
                                              : std::to_string(v)});
        const Spec s = hd.spec;
        const int base = rejected ? 100 : v % 1000;
        auto lower = [&](int salt) -> HR {
            const int bound = hd.derived;
            if (bound <= 0)
                return HR{HK::FreshRes, base + 1};
            return HR{HK::Table, 0, 0,
                      int(unsigned(s.param * 7 + salt + invocations) % unsigned(bound))};
        };
        if (!s.pm) {
            switch (s.beh) {
            case 0:
            case 1:
            case 2:
                return {HK::Value, base + s.beh};
            case 3:
                return {HK::Throw, 0, ++errTag};
            case 4:
                return rejected ? HR{HK::Rethrow} : HR{HK::Throw, 0, ++errTag};
            case 5:
                nested(s.param);
                return {HK::Value, base * 2};
            case 6:
                nested(s.param);
                return {HK::Throw, 0, ++errTag};
            default:
                return {HK::Value, -base};
            }
        }
        switch (s.beh) {
        case 0:
            return {HK::FreshRes, base + 1};
        case 1:
            return {HK::FreshRej, 0, ++errTag};
        case 2:
            return lower(0);
        case 3: // its own derived promise (finally: that would be a cycle, not a TypeError)
            return hd.which == Which::Fin ? lower(1) : HR{HK::Self};
        case 4:
            return {HK::Empty};
        case 5:
            return {HK::Throw, 0, ++errTag};
        case 6:
            nested(s.param);
            return lower(2);
        default:
            return {HK::FreshPending};
        }
    }

    // A handler's side effect (inside the loop's run, on its thread).
    void nested(int param) {
        const unsigned k = unsigned(param >> 2) + unsigned(invocations);
        switch (param & 3) {
        case 0: {
            const int i = pickResolver(k);
            if (i >= 0) {
                const R r = table[std::size_t(i)].r;
                logBool(d().resolve(r, 7, false));
            }
            break;
        }
        case 1: {
            const int i = pickResolver(k);
            if (i >= 0) {
                const R r = table[std::size_t(i)].r;
                logBool(d().reject(r, ++errTag, false));
            }
            break;
        }
        case 2: {
            const int src = pick(k);
            if (src < 0 || full())
                break;
            const int h = newHandler(Spec{false, 0, 0}, Which::F);
            const P src_p = table[std::size_t(src)].p;
            P dd = d().then1(src_p, h, false);
            handlers[std::size_t(h)].derived = add(std::move(dd), R{}, false);
            break;
        }
        default:
            if (!full()) {
                R r{};
                P p = d().make(r);
                add(std::move(p), std::move(r), true);
            }
            break;
        }
    }

    std::vector<P> inputs(const Op& op) {
        std::vector<P> in;
        const unsigned n = op.a % 5, stride = (op.c >> 2) | 1;
        for (unsigned k = 0; k < n; ++k) {
            const int i = pick(op.b + k * stride);
            if (i >= 0)
                in.push_back(table[std::size_t(i)].p);
        }
        return in;
    }

    // One operation that is not a runOnce. `top`: issued by the test body (not from a task).
    void execOp(const Op& op, bool top) {
        const int kind = op.o & 15;
        const bool off =
            top && prog.threaded && (op.o & 0x80) && threadable(op) && threadOps < kMaxThreadOps;
        if (off)
            ++threadOps;
        else if (top && (op.o & 0x40)) {
            d().submitOp(op);
            return;
        }
        switch (kind) {
        case KMake:
            if (!full()) {
                R r{};
                P p = d().make(r);
                add(std::move(p), std::move(r), true);
            }
            break;
        case KResolved:
            if (!full())
                add(d().resolved(op.b, off), R{}, false);
            break;
        case KRejected:
            if (!full())
                add(d().rejected(++errTag, off), R{}, false);
            break;
        case KResolve:
        case KReject:
        case KResolveWith: {
            const int i = pickResolver(op.a);
            if (i < 0)
                break;
            const R r = table[std::size_t(i)].r;
            if (kind == KResolve) {
                logBool(d().resolve(r, op.b, off));
            } else if (kind == KReject) {
                logBool(d().reject(r, ++errTag, off));
            } else {
                // Adopt an earlier promise, itself (TypeError) or an empty one (TypeError).
                const int sel = op.b & 3;
                P target = d().empty();
                if (sel == 0)
                    target = table[std::size_t(i)].p;
                else if (sel >= 2 && i > 0)
                    target = table[std::size_t((op.b >> 2) % unsigned(i))].p;
                logBool(d().resolveWith(r, target, off));
            }
            break;
        }
        case KThen2:
        case KThen1:
        case KCatch:
        case KFinally: {
            const int src = pick(op.a);
            if (src < 0 || full())
                break;
            const P sp = table[std::size_t(src)].p;
            P dd{};
            int h1 = -1, h2 = -1;
            if (kind == KThen2) {
                h1 = newHandler(specOf(op.b), Which::F);
                Spec g = specOf(op.c);
                g.pm = handlers[std::size_t(h1)].spec.pm; // f and g return the same type
                h2 = newHandler(g, Which::R);
                dd = d().then2(sp, h1, h2, off);
            } else if (kind == KThen1) {
                h1 = newHandler(specOf(op.b), Which::F);
                dd = d().then1(sp, h1, off);
            } else if (kind == KCatch) {
                h1 = newHandler(specOf(op.b), Which::R);
                dd = d().catch1(sp, h1, off);
            } else {
                h1 = newHandler(specOf(op.b), Which::Fin);
                dd = d().fin(sp, h1, off);
            }
            const int idx = add(std::move(dd), R{}, false);
            handlers[std::size_t(h1)].derived = idx;
            if (h2 >= 0)
                handlers[std::size_t(h2)].derived = idx;
            break;
        }
        case KAll:
            d().allOf(inputs(op), op.c & 1, op.c & 2, combos++);
            break;
        case KRaceAny:
            // Bit 1: over the int promises themselves, or over a void then() of each.
            if (op.c & 2) {
                if (!full())
                    add(d().raceAny(inputs(op), op.c & 1), R{}, false);
            } else {
                d().raceAnyVoid(inputs(op), op.c & 1, combos++);
            }
            break;
        case KSpecial:
            if (op.b % 16 == 15) { // rarely: the loop's end
                if (op.c & 1)
                    log.push_back({Ev::Misc, 5, d().shutdown(), {}});
                else
                    log.push_back({Ev::Misc, 4, d().close(), {}});
                break;
            }
            switch (op.b % 4) {
            case 0: {
                const int i = pickResolver(op.a);
                if (i >= 0) {
                    const R r = table[std::size_t(i)].r;
                    logBool(d().rejectNull(r, off));
                }
                break;
            }
            case 1:
                log.push_back({Ev::Misc, 1, 0, d().thenOnEmpty()});
                break;
            case 2:
                logBool(d().defaultResolver());
                break;
            default:
                d().marker(++markers, off);
                break;
            }
            break;
        default:
            break;
        }
    }
};

// Runs `f` on a new thread and joins it.
template <class F> auto onThread(F f) {
    using T = decltype(f());
    T out{};
    std::thread t([&] { out = f(); });
    t.join();
    return out;
}

// ================================ the real promises ================================

using RealSide = Side<struct Real, Promise<int>, Resolver<int>>;

struct Real : RealSide {
    static LoopOptions options(const Program& p) {
        LoopOptions o;
        o.name = "fuzz_promise";
        o.metrics = false;
        o.microtaskRingCapacity = 16; // small: cheap to create, and the overflow list is used
        o.microtaskBudget = p.budget;
        o.errorHook = [](std::exception_ptr e, CallbackKind k) {
            std::fprintf(stderr, "fuzz_promise: the loop's error hook saw a %s failure: %s\n",
                         callbackKindName(k), reasonOf(e).c_str());
            std::abort(); // nothing the harness runs may throw into the loop
        };
        return o;
    }

    explicit Real(const Program& p) : RealSide(p), loop(options(p)) {
        setRejectionHook(loop, [this](const RejectionInfo& i) {
            auto it = labels.find(i.promiseId);
            log.push_back({Ev::Rejection, i.event == RejectionEvent::Unhandled ? 0 : 1,
                           it == labels.end() ? -1 : it->second, reasonOf(i.reason)});
        });
    }
    ~Real() {
        table.clear();
        allCombos.clear();
        settledCombos.clear();
        voidCombos.clear();
    }

    Loop loop;
    std::unordered_map<std::uint64_t, int> labels;
    std::vector<std::pair<int, Promise<std::vector<int>>>> allCombos;
    std::vector<std::pair<int, Promise<std::vector<Settled<int>>>>> settledCombos;
    std::vector<std::pair<int, Promise<void>>> voidCombos;

    void label(const Promise<int>& p, int i) {
        if (p.valid())
            labels[p.id()] = i;
    }

    Promise<int> make(Resolver<int>& r) {
        auto pr = makePromise<int>(loop);
        r = pr.resolver;
        return pr.promise;
    }
    Promise<int> empty() { return {}; }
    Promise<int> resolved(int v, bool off) {
        if (off)
            return onThread([&] { return resolvedPromise<int>(loop, v); });
        return resolvedPromise<int>(loop, v);
    }
    Promise<int> rejected(int tag, bool off) {
        auto e = std::make_exception_ptr(FuzzError{tag});
        if (off)
            return onThread([&] { return rejectedPromise<int>(loop, e); });
        return rejectedPromise<int>(loop, e);
    }
    template <class F> bool maybeOff(bool off, F f) { return off ? onThread(f) : f(); }
    bool resolve(const Resolver<int>& r, int v, bool off) {
        return maybeOff(off, [&] { return r.resolve(v); });
    }
    bool reject(const Resolver<int>& r, int tag, bool off) {
        return maybeOff(off, [&] { return r.reject(std::make_exception_ptr(FuzzError{tag})); });
    }
    bool rejectNull(const Resolver<int>& r, bool off) {
        return maybeOff(off, [&] { return r.reject(nullptr); });
    }
    bool resolveWith(const Resolver<int>& r, const Promise<int>& p, bool off) {
        return maybeOff(off, [&] { return r.resolve(p); });
    }

    // Handler results.
    int asInt(const HR& r, const std::exception_ptr& e) {
        switch (r.kind) {
        case HK::Value:
            return r.v;
        case HK::Rethrow:
            std::rethrow_exception(e);
        default:
            throw FuzzError{r.tag};
        }
    }
    Promise<int> asPromise(const HR& r, const std::exception_ptr& e, int h) {
        switch (r.kind) {
        case HK::Table:
            return table[std::size_t(r.table)].p;
        case HK::Self:
            return table[std::size_t(handlers[std::size_t(h)].derived)].p;
        case HK::Empty:
            return {};
        case HK::FreshRes:
            return resolvedPromise<int>(loop, r.v);
        case HK::FreshRej:
            return rejectedPromise<int>(loop, std::make_exception_ptr(FuzzError{r.tag}));
        case HK::FreshPending:
            return makePromise<int>(loop).promise;
        case HK::Rethrow:
            std::rethrow_exception(e);
        default:
            throw FuzzError{r.tag};
        }
    }
    auto fInt(int h) {
        return [this, h](const int& v) -> int { return asInt(decide(h, false, v, {}), nullptr); };
    }
    auto rInt(int h) {
        return [this, h](std::exception_ptr e) -> int {
            return asInt(decide(h, true, 0, reasonOf(e)), e);
        };
    }
    auto fProm(int h) {
        return [this, h](const int& v) -> Promise<int> {
            return asPromise(decide(h, false, v, {}), nullptr, h);
        };
    }
    auto rProm(int h) {
        return [this, h](std::exception_ptr e) -> Promise<int> {
            return asPromise(decide(h, true, 0, reasonOf(e)), e, h);
        };
    }
    template <class F> Promise<int> maybeOffP(bool off, F f) { return off ? onThread(f) : f(); }
    bool pm(int h) const { return handlers[std::size_t(h)].spec.pm; }

    Promise<int> then2(const Promise<int>& p, int hf, int hr, bool off) {
        if (pm(hf))
            return maybeOffP(off, [&] { return p.then(fProm(hf), rProm(hr)); });
        return maybeOffP(off, [&] { return p.then(fInt(hf), rInt(hr)); });
    }
    Promise<int> then1(const Promise<int>& p, int h, bool off) {
        if (pm(h))
            return maybeOffP(off, [&] { return p.then(fProm(h)); });
        return maybeOffP(off, [&] { return p.then(fInt(h)); });
    }
    Promise<int> catch1(const Promise<int>& p, int h, bool off) {
        if (pm(h))
            return maybeOffP(off, [&] { return p.catch_(rProm(h)); });
        return maybeOffP(off, [&] { return p.catch_(rInt(h)); });
    }
    Promise<int> fin(const Promise<int>& p, int h, bool off) {
        if (pm(h))
            return maybeOffP(off, [&] {
                return p.finally([this, h]() -> Promise<int> {
                    return asPromise(decide(h, false, 0, {}), nullptr, h);
                });
            });
        return maybeOffP(off, [&] {
            return p.finally([this, h] {
                const HR r = decide(h, false, 0, {});
                if (r.kind != HK::Value)
                    throw FuzzError{r.tag};
            });
        });
    }

    void allOf(const std::vector<Promise<int>>& in, bool settled, bool observe, int k) {
        const int lbl = 1000 + k;
        if (settled) {
            auto c = libloop::allSettled(loop, in);
            labels[c.id()] = lbl;
            if (observe)
                (void)c.then(
                    [this, k](const std::vector<Settled<int>>& v) {
                        log.push_back({Ev::Combo, k, 0, settledStr(v)});
                    },
                    [this, k](std::exception_ptr e) {
                        log.push_back({Ev::Combo, k, 1, reasonOf(e)});
                    });
            settledCombos.emplace_back(k, c);
        } else {
            auto c = libloop::all(loop, in);
            labels[c.id()] = lbl;
            if (observe)
                (void)c.then(
                    [this, k](const std::vector<int>& v) {
                        log.push_back({Ev::Combo, k, 0, intsStr(v)});
                    },
                    [this, k](std::exception_ptr e) {
                        log.push_back({Ev::Combo, k, 1, reasonOf(e)});
                    });
            allCombos.emplace_back(k, c);
        }
    }
    Promise<int> raceAny(const std::vector<Promise<int>>& in, bool any) {
        return any ? libloop::any(loop, in) : libloop::race(loop, in);
    }
    void raceAnyVoid(const std::vector<Promise<int>>& in, bool any, int k) {
        std::vector<Promise<void>> vin;
        for (const auto& p : in)
            vin.push_back(p.then([](const int&) {}));
        auto c = any ? libloop::any(loop, vin) : libloop::race(loop, vin);
        labels[c.id()] = 1000 + k;
        voidCombos.emplace_back(k, c);
    }

    std::string thenOnEmpty() {
        try {
            (void)Promise<int>().then([](const int&) {});
        } catch (const std::invalid_argument&) {
            return "invalid_argument";
        } catch (...) {
            return "other exception";
        }
        return "no exception";
    }
    bool defaultResolver() { return Resolver<int>().resolve(1); }
    void marker(int k, bool off) {
        auto task = [this, k] { log.push_back({Ev::Marker, k, 0, {}}); };
        Status s;
        if (off)
            s = onThread([&] { return loop.queueMicrotask(task); });
        else
            s = loop.queueMicrotask(task);
        if (!s)
            log.push_back({Ev::Misc, 2, 0, s.message()});
    }
    void submitOp(const Op& op) {
        const Status s = loop.submit([this, op] { execOp(op, false); });
        if (!s)
            log.push_back({Ev::Misc, 3, 0, s.message()});
    }

    int close() { return loop.close().ok() ? 1 : 0; }
    int shutdown() {
        const auto r = loop.shutdown();
        return r ? int(r.value().tasksRun) : -1;
    }

    int runOnce() {
        const auto r = loop.runOnce(Duration(0));
        const int n = r ? int(r.value()) : -1;
        log.push_back({Ev::RunOnce, n, 0, {}});
        return n;
    }

    static std::string intsStr(const std::vector<int>& v) {
        std::vector<std::string> s;
        for (int x : v)
            s.push_back(std::to_string(x));
        return join(s);
    }
    static std::string settledStr(const std::vector<Settled<int>>& v) {
        std::vector<std::string> s;
        for (const auto& x : v)
            s.push_back(x.state == PromiseState::Fulfilled
                            ? "F" + (x.value ? std::to_string(*x.value) : std::string("?"))
                        : x.state == PromiseState::Rejected ? "R:" + reasonOf(x.reason)
                                                            : std::string("pending"));
        return join(s);
    }

    // state / value / reason of a table entry or a combinator, as text.
    static std::string stateOf(const Promise<int>& p) {
        switch (p.state()) {
        case PromiseState::Pending:
            return "pending";
        case PromiseState::Fulfilled:
            return "fulfilled " + std::to_string(p.value());
        case PromiseState::Rejected:
            return "rejected " + reasonOf(p.reason());
        }
        return "?";
    }
    template <class V, class S> static std::string comboState(const Promise<V>& p, S str) {
        switch (p.state()) {
        case PromiseState::Pending:
            return "pending";
        case PromiseState::Fulfilled:
            return "fulfilled " + str(p.value());
        case PromiseState::Rejected:
            return "rejected " + reasonOf(p.reason());
        }
        return "?";
    }
    std::vector<std::string> comboStates() const {
        std::vector<std::pair<int, std::string>> v;
        for (const auto& [k, p] : allCombos)
            v.emplace_back(k, comboState(p, intsStr));
        for (const auto& [k, p] : settledCombos)
            v.emplace_back(k, comboState(p, settledStr));
        for (const auto& [k, p] : voidCombos) {
            const PromiseState st = p.state();
            v.emplace_back(k, st == PromiseState::Pending     ? std::string("pending")
                              : st == PromiseState::Fulfilled ? std::string("fulfilled void")
                                                              : "rejected " + reasonOf(p.reason()));
        }
        std::sort(v.begin(), v.end());
        std::vector<std::string> out;
        for (auto& [k, s] : v)
            out.push_back(std::move(s));
        return out;
    }
};

// ================================ the model ================================

// The outcome of a handler for the promise it resolves.
struct Outcome {
    enum Kind { Value, Throw, Adopt } kind = Value;
    int v = 0;
    std::string reason;
    int p = -1; // Adopt: the promise (-1: an empty one)
    static Outcome value(int v) { return {Value, v, {}, -1}; }
    static Outcome thrown(std::string r) { return {Throw, 0, std::move(r), -1}; }
    static Outcome adopt(int p) { return {Adopt, 0, {}, p}; }
};

struct Model : Side<Model, int, int> {
    enum St { Pending, Fulfilled, Rejected };
    using Reaction = std::function<void(int settled)>;
    using HandlerFn = std::function<Outcome(int settled)>;

    struct MP {
        St st = Pending;
        int value = 0;
        std::string str; // a combinator's value, as text
        std::string reason;
        std::vector<Reaction> reactions;
        bool handled = false;  // a reaction was attached at some point
        bool notified = false; // reported as Unhandled
        bool claimed = false;  // a resolver's first call happened
        int label = -1;        // table index, 1000 + combinator number, or -1 (internal)
    };

    explicit Model(const Program& p) : Side(p) {}

    std::deque<MP> ps;
    std::deque<std::function<void()>> jobs; // the microtask queue
    std::deque<std::function<void()>> local, ingress;
    std::vector<int> aboutToNotify;
    std::vector<int> comboIds;
    bool closed = false;
    bool shuttingDown = false;
    long long callbacks = 0; // microtasks and tasks run

    // queueMicrotask: refused (the job is dropped) once the loop is closed.
    void job(std::function<void()> f) {
        if (!closed)
            jobs.push_back(std::move(f));
    }

    int newP(int label = -1) {
        ps.emplace_back();
        ps.back().label = label;
        return int(ps.size() - 1);
    }
    void label(int p, int i) {
        if (p >= 0)
            ps[std::size_t(p)].label = i;
    }
    MP& at(int p) { return ps[std::size_t(p)]; }

    // ---- the Promise/A+ state machine ----
    void flush(int p) {
        std::vector<Reaction> rs;
        rs.swap(at(p).reactions);
        for (auto& r : rs)
            job([p, r = std::move(r)] { r(p); });
    }
    void fulfill(int p, int v) {
        if (at(p).st != Pending)
            return;
        at(p).value = v;
        at(p).st = Fulfilled;
        flush(p);
    }
    void fulfillStr(int p, std::string s) {
        if (at(p).st != Pending)
            return;
        at(p).str = std::move(s);
        at(p).st = Fulfilled;
        flush(p);
    }
    void reject(int p, std::string reason) {
        if (at(p).st != Pending)
            return;
        at(p).reason = std::move(reason);
        at(p).st = Rejected;
        if (!at(p).handled)
            aboutToNotify.push_back(p); // HostPromiseRejectionTracker "reject"
        flush(p);
    }
    void attach(int p, Reaction r) {
        MP& m = at(p);
        if (m.st == Rejected && !m.handled && m.notified) { // tracker "handle"
            m.notified = false;
            if (!closed) // submitInternal
                local.push_back([this, p] {
                    log.push_back({Ev::Rejection, 1, at(p).label, at(p).reason});
                });
        }
        m.handled = true;
        if (m.st == Pending)
            m.reactions.push_back(std::move(r));
        else
            job([p, r = std::move(r)] { r(p); });
    }
    // The resolution procedure for a promise result: NewPromiseResolveThenableJob.
    void adopt(int me, int other) {
        if (other < 0 || other == me) {
            reject(me, "TypeError");
            return;
        }
        job([this, me, other] {
            attach(other, [this, me](int s) {
                if (at(s).st == Fulfilled)
                    fulfill(me, at(s).value);
                else
                    reject(me, at(s).reason);
            });
        });
    }
    void settle(int d, const Outcome& o) {
        if (o.kind == Outcome::Value)
            fulfill(d, o.v);
        else if (o.kind == Outcome::Throw)
            reject(d, o.reason);
        else
            adopt(d, o.p);
    }
    // then(): the derived promise; off the loop thread the attach is a queued job.
    int chain(int p, HandlerFn f, HandlerFn g, bool off) {
        const int d = newP();
        Reaction r = [this, d, f = std::move(f), g = std::move(g)](int s) {
            if (at(s).st == Fulfilled) {
                if (f)
                    settle(d, f(s));
                else
                    fulfill(d, at(s).value);
            } else {
                if (g)
                    settle(d, g(s));
                else
                    reject(d, at(s).reason);
            }
        };
        if (off)
            job([this, p, r = std::move(r)] { attach(p, r); });
        else
            attach(p, std::move(r));
        return d;
    }
    // A resolver call: the first one claims; off the loop thread the settling is a job.
    bool claim(int p, bool off, std::function<void()> settleFn) {
        if (at(p).claimed)
            return false;
        at(p).claimed = true;
        if (closed)
            return false; // the loop no longer accepts work: nothing settles
        if (off)
            job(std::move(settleFn));
        else
            settleFn();
        return true;
    }

    // ---- the loop: checkpoints, tasks, one iteration ----
    // A close() from inside a task (a lifecycle operation run by loop.submit) stops everything
    // at once; shutdown() from inside one drains first (nested). Callbacks are counted globally
    // so that runOnce and shutdown report what ran inside them, nested drains included.
    int checkpoint() {
        int n = 0;
        while (!closed && !jobs.empty() && (prog.budget == 0 || std::uint32_t(n) < prog.budget)) {
            auto j = std::move(jobs.front());
            jobs.pop_front();
            ++callbacks;
            j();
            ++n;
        }
        if (!closed && !aboutToNotify.empty() &&
            jobs.empty()) { // HTML "notify about rejected promises"
            std::vector<int> list;
            list.swap(aboutToNotify);
            for (int p : list) {
                if (at(p).handled)
                    continue;
                at(p).notified = true;
                log.push_back({Ev::Rejection, 0, at(p).label, at(p).reason});
            }
        }
        return n;
    }
    int runTasks(std::deque<std::function<void()>>& q) {
        int n = 0;
        for (std::size_t i = q.size(); i > 0 && !closed && !q.empty(); --i) {
            auto t = std::move(q.front());
            q.pop_front();
            ++callbacks;
            t();
            ++n;
            n += checkpoint();
        }
        return n;
    }
    int close() {
        closed = true;
        jobs.clear();
        local.clear();
        ingress.clear();
        aboutToNotify.clear();
        return 1;
    }
    // Graceful: everything queued runs (and what it queues), then the loop is closed.
    int shutdown() {
        if (closed)
            return 0;
        if (shuttingDown)
            return -1; // Busy
        shuttingDown = true;
        const long long before = callbacks;
        for (;;) {
            int n = checkpoint();
            n += runTasks(local);
            n += runTasks(ingress);
            if (closed || n == 0)
                break;
        }
        close();
        return int(callbacks - before);
    }

    int runOnce() {
        if (closed) {
            log.push_back({Ev::RunOnce, -1, 0, {}});
            return -1;
        }
        const long long before = callbacks;
        checkpoint();
        runTasks(local);
        runTasks(ingress);
        const int n = int(callbacks - before);
        log.push_back({Ev::RunOnce, n, 0, {}});
        return n;
    }

    // ---- the primitives Side uses ----
    int make(int& r) {
        r = newP();
        return r;
    }
    int empty() { return -1; }
    int resolved(int v, bool off) {
        const int p = newP();
        claim(p, off, [this, p, v] { fulfill(p, v); });
        return p;
    }
    int rejected(int tag, bool off) {
        const int p = newP();
        claim(p, off, [this, p, tag] { reject(p, errName(tag)); });
        return p;
    }
    bool resolve(int r, int v, bool off) {
        return claim(r, off, [this, r, v] { fulfill(r, v); });
    }
    bool reject(int r, int tag, bool off) {
        return claim(r, off, [this, r, tag] { reject(r, errName(tag)); });
    }
    bool rejectNull(int r, bool off) {
        return claim(r, off, [this, r] { reject(r, "Inval"); });
    }
    bool resolveWith(int r, int p, bool off) {
        return claim(r, off, [this, r, p] { adopt(r, p); });
    }

    Outcome toOutcome(const HR& r, const std::string& reason, int h) {
        switch (r.kind) {
        case HK::Value:
            return Outcome::value(r.v);
        case HK::Throw:
            return Outcome::thrown(errName(r.tag));
        case HK::Rethrow:
            return Outcome::thrown(reason);
        case HK::Table:
            return Outcome::adopt(table[std::size_t(r.table)].p);
        case HK::Self:
            return Outcome::adopt(table[std::size_t(handlers[std::size_t(h)].derived)].p);
        case HK::Empty:
            return Outcome::adopt(-1);
        case HK::FreshRes:
            return Outcome::adopt(resolved(r.v, false));
        case HK::FreshRej:
            return Outcome::adopt(rejected(r.tag, false));
        case HK::FreshPending:
            return Outcome::adopt(newP());
        }
        return Outcome::value(0);
    }
    HandlerFn onF(int h) {
        return [this, h](int s) { return toOutcome(decide(h, false, at(s).value, {}), {}, h); };
    }
    HandlerFn onR(int h) {
        return [this, h](int s) {
            const std::string reason = at(s).reason;
            return toOutcome(decide(h, true, 0, reason), reason, h);
        };
    }
    int then2(int p, int hf, int hr, bool off) { return chain(p, onF(hf), onR(hr), off); }
    int then1(int p, int h, bool off) { return chain(p, onF(h), nullptr, off); }
    int catch1(int p, int h, bool off) { return chain(p, nullptr, onR(h), off); }
    // ECMAScript 27.2.5.3 as promise.h implements it: thenFinally / catchFinally call
    // onFinally, chain the thunk restoring the outcome on its result (a fresh fulfilled promise
    // when it returns nothing), and the derived promise adopts that chained promise.
    int fin(int p, int h, bool off) {
        const bool promiseMode = handlers[std::size_t(h)].spec.pm;
        auto settleAfter = [this, h, promiseMode](std::function<Outcome()> thunk) -> Outcome {
            const HR r = decide(h, false, 0, {});
            if (r.kind == HK::Throw)
                return Outcome::thrown(errName(r.tag));
            int q;
            if (promiseMode) {
                q = toOutcome(r, {}, h).p;
                if (q < 0)
                    return Outcome::thrown("Inval"); // .then() on an empty promise throws
            } else {
                q = resolved(0, false);
            }
            const int p2 = chain(
                q, [thunk](int) { return thunk(); }, nullptr, false);
            return Outcome::adopt(p2);
        };
        return chain(
            p,
            [this, settleAfter](int s) {
                const int v = at(s).value;
                return settleAfter([v] { return Outcome::value(v); });
            },
            [this, settleAfter](int s) {
                const std::string e = at(s).reason;
                return settleAfter([e] { return Outcome::thrown(e); });
            },
            off);
    }

    // The combinators as promise.h writes them (a resolver per output, one then per input).
    void allOf(const std::vector<int>& in, bool settled, bool observe, int k) {
        const int out = newP(1000 + k);
        comboIds.push_back(out);
        struct Acc {
            std::vector<std::string> items;
            std::vector<int> values;
            std::size_t remaining;
        };
        auto acc = std::make_shared<Acc>(
            Acc{std::vector<std::string>(in.size()), std::vector<int>(in.size()), in.size()});
        auto finish = [this, out, acc, settled] {
            if (settled) {
                claim(out, false, [this, out, acc] { fulfillStr(out, join(acc->items)); });
            } else {
                std::vector<std::string> s;
                for (int v : acc->values)
                    s.push_back(std::to_string(v));
                claim(out, false, [this, out, s] { fulfillStr(out, join(s)); });
            }
        };
        if (in.empty()) {
            finish();
        } else {
            for (std::size_t i = 0; i < in.size(); ++i) {
                chain(
                    in[i],
                    [this, acc, i, finish, settled](int s) {
                        if (settled)
                            acc->items[i] = "F" + std::to_string(at(s).value);
                        else
                            acc->values[i] = at(s).value;
                        if (--acc->remaining == 0)
                            finish();
                        return Outcome::value(0);
                    },
                    [this, acc, i, finish, settled, out](int s) {
                        if (settled) {
                            acc->items[i] = "R:" + at(s).reason;
                            if (--acc->remaining == 0)
                                finish();
                        } else {
                            const std::string e = at(s).reason;
                            claim(out, false, [this, out, e] { reject(out, e); });
                        }
                        return Outcome::value(0);
                    },
                    false);
            }
        }
        if (observe)
            chain(
                out,
                [this, k](int s) {
                    log.push_back({Ev::Combo, k, 0, at(s).str});
                    return Outcome::value(0);
                },
                [this, k](int s) {
                    log.push_back({Ev::Combo, k, 1, at(s).reason});
                    return Outcome::value(0);
                },
                false);
    }
    void raceAnyVoid(const std::vector<int>& in, bool any, int k) {
        std::vector<int> vin;
        for (int p : in)
            vin.push_back(chain(
                p, [](int) { return Outcome::value(0); }, nullptr, false));
        raceAny(vin, any, 1000 + k);
    }
    int raceAny(const std::vector<int>& in, bool any, int comboLabel = -1) {
        const int out = newP(comboLabel);
        if (comboLabel >= 0)
            comboIds.push_back(out);
        auto resolveOut = [this, out, comboLabel](int s) {
            const int v = at(s).value;
            claim(out, false, [this, out, v, comboLabel] {
                if (comboLabel >= 0)
                    fulfillStr(out, "void");
                else
                    fulfill(out, v);
            });
            return Outcome::value(0);
        };
        if (!any) {
            for (int p : in)
                chain(
                    p, resolveOut,
                    [this, out](int s) {
                        const std::string e = at(s).reason;
                        claim(out, false, [this, out, e] { reject(out, e); });
                        return Outcome::value(0);
                    },
                    false);
            return out;
        }
        struct Acc {
            std::vector<std::string> errors;
            std::size_t remaining;
        };
        auto acc = std::make_shared<Acc>(Acc{std::vector<std::string>(in.size()), in.size()});
        if (in.empty()) {
            claim(out, false, [this, out] { reject(out, "Agg[]"); });
            return out;
        }
        for (std::size_t i = 0; i < in.size(); ++i)
            chain(
                in[i], resolveOut,
                [this, out, acc, i](int s) {
                    acc->errors[i] = at(s).reason;
                    if (--acc->remaining == 0) {
                        const std::string e = "Agg" + join(acc->errors);
                        claim(out, false, [this, out, e] { reject(out, e); });
                    }
                    return Outcome::value(0);
                },
                false);
        return out;
    }

    std::string thenOnEmpty() { return "invalid_argument"; }
    bool defaultResolver() { return false; }
    void marker(int k, bool) {
        if (closed)
            log.push_back({Ev::Misc, 2, 0, Status(Errc::NotAccepting).message()});
        job([this, k] { log.push_back({Ev::Marker, k, 0, {}}); });
    }
    void submitOp(const Op& op) {
        if (closed)
            log.push_back({Ev::Misc, 3, 0, Status(Errc::NotAccepting).message()});
        else
            ingress.push_back([this, op] { execOp(op, false); });
    }

    std::string stateOf(int p) {
        const MP& m = at(p);
        switch (m.st) {
        case Pending:
            return "pending";
        case Fulfilled:
            return "fulfilled " + (m.label >= 1000 ? m.str : std::to_string(m.value));
        case Rejected:
            return "rejected " + m.reason;
        }
        return "?";
    }
    std::vector<std::string> comboStates() {
        std::vector<std::string> out;
        for (int p : comboIds)
            out.push_back(stateOf(p));
        return out;
    }
};

// ================================ the comparison ================================

struct Harness {
    explicit Harness(const Program& p) : prog(p), real(p), model(p) {}
    const Program& prog;
    Real real;
    Model model;
    std::size_t opsDone = 0;

    [[noreturn]] void fail(const std::string& what) {
        std::fprintf(stderr, "fuzz_promise: MISMATCH: %s\n", what.c_str());
        std::fprintf(stderr, "mode: %s, microtask budget %u\n",
                     prog.threaded ? "threaded" : "single-threaded", prog.budget);
        std::fprintf(stderr, "operations (the last one failed):\n");
        for (std::size_t i = 0; i < opsDone && i < prog.ops.size(); ++i)
            std::fprintf(stderr, "  #%zu %s\n", i, describeOp(prog.ops[i]).c_str());
        std::fprintf(stderr, "handlers:");
        for (std::size_t i = 0; i < real.handlers.size(); ++i) {
            const Handler& h = real.handlers[i];
            std::fprintf(stderr, " %zu:%s%d/%d->#%d", i, h.spec.pm ? "P" : "V", h.spec.beh,
                         h.spec.param, h.derived);
        }
        std::fprintf(stderr, "\n");
        const std::size_t n = std::max(real.log.size(), model.log.size());
        std::size_t first = 0;
        while (first < n && first < real.log.size() && first < model.log.size() &&
               real.log[first] == model.log[first])
            ++first;
        std::fprintf(stderr, "event log (real | model), first difference at %zu:\n", first);
        for (std::size_t i = first > 40 ? first - 40 : 0; i < n && i < first + 10; ++i)
            std::fprintf(stderr, "  %c%4zu %-60s | %s\n", i == first ? '>' : ' ', i,
                         i < real.log.size() ? describe(real.log[i]).c_str() : "-",
                         i < model.log.size() ? describe(model.log[i]).c_str() : "-");
        std::abort();
    }

    void compare() {
        if (real.log != model.log)
            fail("the event logs differ");
        if (real.table.size() != model.table.size())
            fail("different numbers of promises");
        for (std::size_t i = 0; i < real.table.size(); ++i) {
            const std::string a = Real::stateOf(real.table[i].p);
            const std::string b = model.stateOf(model.table[i].p);
            if (a != b)
                fail("promise #" + std::to_string(i) + " is " + a + ", model: " + b);
        }
        const auto ca = real.comboStates(), cb = model.comboStates();
        if (ca != cb) {
            for (std::size_t i = 0; i < std::min(ca.size(), cb.size()); ++i)
                if (ca[i] != cb[i])
                    fail("combinator " + std::to_string(i) + " is " + ca[i] + ", model: " + cb[i]);
            fail("different numbers of combinators");
        }
    }

    void run() {
        int runs = 0;
        for (const Op& op : prog.ops) {
            ++opsDone;
            if (isRun(op)) {
                const int k = op.o & 15;
                for (int i = 0; i < (k == KDrain ? kMaxDrainRuns : 1) && runs < kMaxRunOps; ++i) {
                    ++runs;
                    const int a = real.runOnce();
                    const int b = model.runOnce();
                    compare();
                    if (a != b)
                        fail("runOnce counts differ");
                    if (a <= 0)
                        break;
                }
            } else {
                real.execOp(op, true);
                model.execOp(op, true);
            }
            compare();
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const Program prog = decode(data, size);
    Harness h(prog);
    h.run();
    return 0;
}
