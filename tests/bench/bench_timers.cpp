// Rows 5-6: timers. Schedule+fire of delay-0 timers, and schedule+cancel pairs with many long
// timers pending.
#include "harness.h"
#include "naive.h"

#include <libloop/loop.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#ifdef BENCH_HAVE_LIBUV
#include <uv.h>
#endif

namespace bench {
namespace {

using namespace std::chrono_literals;

// Long timers for row 6: pseudo-random delays in [1 h, 2 h), so that inserts and removals land
// all over the heap (not always at its bottom, as strictly increasing deadlines would).
constexpr std::uint64_t kLongLoNs = 3'600'000'000'000ull;
constexpr std::uint64_t kLongHiNs = 7'200'000'000'000ull;
libloop::Duration longDelay(Rng& rng) {
    return libloop::Duration(static_cast<std::int64_t>(rng.range(kLongLoNs, kLongHiNs)));
}
std::uint64_t longDelayMs(Rng& rng) {
    return rng.range(kLongLoNs, kLongHiNs) / 1'000'000;
}

// ---- row 5: schedule n timers with delay 0, then run until the last one fired (the window
// covers both).

struct FireCtx {
    libloop::Loop* loop;
    std::uint64_t n;
    std::uint64_t fired = 0;
};

Sample libloopFire(libloop::Loop& loop, std::uint64_t n) {
    FireCtx ctx{&loop, n};
    const auto w0 = loop.snapshot().wakeSyscalls;
    Window w;
    w.start();
    for (std::uint64_t i = 0; i < n; ++i) {
        (void)must(loop.scheduleTimer(libloop::Duration::zero(),
                                      [c = &ctx] {
                                          if (++c->fired == c->n)
                                              c->loop->stop();
                                      }),
                   "scheduleTimer");
    }
    must(loop.run(), "run");
    Sample s = w.stop(n);
    s.syscalls = static_cast<double>(loop.snapshot().wakeSyscalls - w0);
    if (ctx.fired != n)
        fail("timers lost");
    return s;
}

Sample naiveFire(NaiveTimers& t, std::uint64_t n) {
    std::uint64_t fired = 0;
    Window w;
    w.start();
    for (std::uint64_t i = 0; i < n; ++i)
        t.schedule(0ns, [c = &fired] { ++*c; });
    while (fired < n)
        t.runDue();
    Sample s = w.stop(n);
    return s;
}

#ifdef BENCH_HAVE_LIBUV
// A uv loop with a pool of initialised timer handles (handles must not move after init).
struct UvPool {
    uv_loop_t loop{};
    std::unique_ptr<uv_timer_t[]> h;
    std::size_t n;
    explicit UvPool(std::size_t count) : h(new uv_timer_t[count]()), n(count) {
        if (uv_loop_init(&loop) != 0)
            fail("uv_loop_init");
        for (std::size_t i = 0; i < n; ++i)
            uv_timer_init(&loop, &h[i]);
    }
    ~UvPool() {
        for (std::size_t i = 0; i < n; ++i)
            uv_close(reinterpret_cast<uv_handle_t*>(&h[i]), nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    UvPool(const UvPool&) = delete;
    UvPool& operator=(const UvPool&) = delete;
};

void uvCount(uv_timer_t* t) {
    ++*static_cast<std::uint64_t*>(t->data);
}
void uvNoop(uv_timer_t*) {}

Sample uvFire(UvPool& p, std::uint64_t n) {
    std::uint64_t fired = 0;
    for (std::uint64_t i = 0; i < n; ++i)
        p.h[i].data = &fired;
    Window w;
    w.start();
    uv_update_time(&p.loop);
    for (std::uint64_t i = 0; i < n; ++i)
        if (uv_timer_start(&p.h[i], uvCount, 0, 0) != 0)
            fail("uv_timer_start");
    uv_run(&p.loop, UV_RUN_DEFAULT);
    Sample s = w.stop(n);
    if (fired != n)
        fail("uv timers lost");
    return s;
}
#endif

// ---- row 6: `active` long timers pending; then schedule+cancel pairs (one op = one pair) on
// the loop thread, in two patterns:
//  at once:    cancel right after schedule, in the same callback (the "timeout that did not
//              fire" pattern). libloop stages new timers and only pushes them into its heap when
//              the heap's top is next looked at, so this pair never touches the heap at all.
//  next tick:  a task schedules a batch of kChurnBatch timers and cancels the batch the previous
//              task scheduled: by then the loop's timer phase has moved them into the heap, so
//              this measures a real heap insert + remove among `active` timers (plus one loop
//              iteration per batch for libloop). The naive queue and libuv have no staging: for
//              them both patterns cost the same kind of work.
constexpr std::size_t kChurnBatch = 256;

struct CancelSamples {
    std::vector<Sample> atOnce, nextTick;
};

std::uint64_t warmPairs(std::uint64_t pairs) {
    return pairs / 4 + 1000;
}

class LibloopChurn {
public:
    explicit LibloopChurn(libloop::Loop& loop) : loop_(loop) {
        prev_.reserve(kChurnBatch);
        cur_.reserve(kChurnBatch);
    }
    Rng rng;

    void pairAtOnce() {
        const auto id = must(loop_.scheduleTimer(longDelay(rng), [] {}), "scheduleTimer");
        if (!loop_.cancelTimer(id))
            fail("cancelTimer answered false for a pending timer");
    }
    // One run() of `pairs` next-tick pairs.
    void runNextTick(std::uint64_t pairs) {
        remaining_ = pairs;
        must(loop_.submitInternal([this] { step(); }), "submitInternal");
        must(loop_.run(), "run");
    }

private:
    void step() {
        for (const auto id : prev_)
            if (!loop_.cancelTimer(id))
                fail("cancelTimer answered false for a pending timer (next tick)");
        prev_.clear();
        if (remaining_ == 0) {
            loop_.stop();
            return;
        }
        const auto k = std::min<std::uint64_t>(kChurnBatch, remaining_);
        remaining_ -= k;
        for (std::uint64_t i = 0; i < k; ++i)
            cur_.push_back(must(loop_.scheduleTimer(longDelay(rng), [] {}), "scheduleTimer"));
        std::swap(prev_, cur_);
        must(loop_.submitInternal([this] { step(); }), "submitInternal");
    }

    libloop::Loop& loop_;
    std::uint64_t remaining_ = 0;
    std::vector<libloop::TimerId> prev_, cur_;
};

CancelSamples libloopCancel(const Options& o, std::uint64_t active, std::uint64_t pairs,
                            bool atOnce, bool nextTick) {
    libloop::Loop loop;
    LibloopChurn churn(loop);
    for (std::uint64_t i = 0; i < active; ++i)
        (void)must(loop.scheduleTimer(longDelay(churn.rng), [] {}), "scheduleTimer (pre-fill)");
    CancelSamples out;
    if (atOnce) {
        struct Run {
            LibloopChurn* churn;
            libloop::Loop* loop;
            const Options* o;
            std::uint64_t pairs;
            std::vector<Sample> samples;
            void body() {
                for (std::uint64_t i = 0; i < warmPairs(pairs); ++i)
                    churn->pairAtOnce();
                for (int r = 0; r < o->reps; ++r) {
                    const auto w0 = loop->snapshot().wakeSyscalls;
                    Window w;
                    w.start();
                    for (std::uint64_t i = 0; i < pairs; ++i)
                        churn->pairAtOnce();
                    Sample s = w.stop(pairs);
                    s.syscalls = static_cast<double>(loop->snapshot().wakeSyscalls - w0);
                    samples.push_back(s);
                }
                loop->stop();
            }
        } run{&churn, &loop, &o, pairs, {}};
        run.samples.reserve(static_cast<std::size_t>(o.reps));
        // Measured inside a task: the loop thread, with the loop running, as a program would.
        must(loop.submitInternal([r = &run] { r->body(); }), "submitInternal");
        must(loop.run(), "run");
        out.atOnce = std::move(run.samples);
    }
    if (nextTick) {
        out.nextTick = repeat(
            o, [&] { churn.runNextTick(warmPairs(pairs)); },
            [&] {
                const auto w0 = loop.snapshot().wakeSyscalls;
                Window w;
                w.start();
                churn.runNextTick(pairs);
                Sample s = w.stop(pairs);
                s.syscalls = static_cast<double>(loop.snapshot().wakeSyscalls - w0);
                return s;
            });
    }
    if (loop.pendingTimers() != active)
        std::fprintf(stderr, "  warning: pendingTimers() = %zu after the pairs, expected %llu\n",
                     loop.pendingTimers(), static_cast<unsigned long long>(active));
    return out;
}

// Lazy cancel never shrinks the naive queue while the cancelled timers are far from due: every
// pair leaves a tombstone in the heap and an id in the set. So that "N active" stays close to
// true for it too, each repetition starts from a freshly pre-filled queue (outside the window);
// its tombstones are bounded by one repetition's pairs. Two flavours:
//   presize = false: the containers grow inside the window as they would in a program (vector
//                    doubling, rehashing, first-touch page faults: amortised costs that the
//                    lazy-cancel design pays for as long as it runs);
//   presize = true:  they already have room (and the heap's memory is touched): the naive
//                    queue's best case, i.e. the bare cost of push + set insert.
CancelSamples naiveCancel(const Options& o, std::uint64_t active, std::uint64_t pairs, bool atOnce,
                          bool nextTick, bool presize) {
    std::unique_ptr<NaiveTimers> t;
    Rng rng;
    auto fresh = [&] {
        t.reset();
        t = std::make_unique<NaiveTimers>();
        if (presize)
            t->reserve(active + warmPairs(pairs) + pairs + 2 * kChurnBatch);
        for (std::uint64_t i = 0; i < active; ++i)
            t->schedule(longDelay(rng), [] {});
    };
    auto runAtOnce = [&](std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i)
            t->cancel(t->schedule(longDelay(rng), [] {}));
    };
    std::vector<std::uint64_t> prev, cur;
    prev.reserve(kChurnBatch);
    cur.reserve(kChurnBatch);
    auto runNextTick = [&](std::uint64_t n) {
        for (std::uint64_t remaining = n;;) {
            for (const auto id : prev)
                t->cancel(id);
            prev.clear();
            if (!remaining)
                break;
            const auto k = std::min<std::uint64_t>(kChurnBatch, remaining);
            remaining -= k;
            for (std::uint64_t i = 0; i < k; ++i)
                cur.push_back(t->schedule(longDelay(rng), [] {}));
            std::swap(prev, cur);
        }
    };
    auto measure = [&](auto& fn) {
        return repeat(
            o,
            [&] {
                fresh();
                fn(warmPairs(pairs));
            },
            [&] {
                fresh();
                fn(1000); // a short warm-up on the fresh queue
                Window w;
                w.start();
                fn(pairs);
                return w.stop(pairs);
            });
    };
    CancelSamples out;
    if (atOnce)
        out.atOnce = measure(runAtOnce);
    if (nextTick)
        out.nextTick = measure(runNextTick);
    return out;
}

#ifdef BENCH_HAVE_LIBUV
CancelSamples uvCancel(const Options& o, std::uint64_t active, std::uint64_t pairs, bool atOnce,
                       bool nextTick) {
    UvPool p(active + 2 * kChurnBatch);
    Rng rng;
    uv_update_time(&p.loop);
    for (std::uint64_t i = 0; i < active; ++i)
        if (uv_timer_start(&p.h[i], uvNoop, longDelayMs(rng), 0) != 0)
            fail("uv_timer_start");
    uv_timer_t* extra = &p.h[active];
    auto runAtOnce = [&](std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i) {
            if (uv_timer_start(extra, uvNoop, longDelayMs(rng), 0) != 0)
                fail("uv_timer_start");
            uv_timer_stop(extra);
        }
    };
    // Two halves of kChurnBatch handles: start one half, stop the other (started last batch).
    auto runNextTick = [&](std::uint64_t n) {
        std::size_t half = 0, prevCount = 0;
        for (std::uint64_t remaining = n;;) {
            uv_timer_t* prevHalf = extra + (half ^ kChurnBatch);
            for (std::size_t i = 0; i < prevCount; ++i)
                uv_timer_stop(&prevHalf[i]);
            if (!remaining)
                break;
            const auto k = std::min<std::uint64_t>(kChurnBatch, remaining);
            remaining -= k;
            for (std::uint64_t i = 0; i < k; ++i)
                if (uv_timer_start(&extra[half + i], uvNoop, longDelayMs(rng), 0) != 0)
                    fail("uv_timer_start");
            prevCount = k;
            half ^= kChurnBatch;
        }
    };
    auto measure = [&](auto& fn) {
        return repeat(
            o, [&] { fn(warmPairs(pairs)); },
            [&] {
                Window w;
                w.start();
                fn(pairs);
                return w.stop(pairs);
            });
    };
    CancelSamples out;
    if (atOnce)
        out.atOnce = measure(runAtOnce);
    if (nextTick)
        out.nextTick = measure(runNextTick);
    return out;
}
#endif

void cancelRows(const Options& o, Report& rep, std::uint64_t active, std::uint64_t pairs) {
    const std::string label = activeLabel(active);
    const std::string b1 = std::string(names::kTimerCancelPrefix) + label;
    const std::string b2 = std::string(names::kTimerCancelHeapPrefix) + label;
    std::vector<Row> atOnce, nextTick;
    auto one = [&](const char* impl, const char* shortName, Role role, bool mustFree, auto fn) {
        const bool w1 = rep.wants(b1, impl), w2 = rep.wants(b2, impl);
        if (!w1 && !w2)
            return;
        RowGuard g(label + " timers / " + impl);
        CancelSamples s = fn(o, active, pairs, w1, w2);
        if (w1)
            atOnce.push_back(makeRow(b1, impl, shortName, role, mustFree, std::move(s.atOnce)));
        if (w2)
            nextTick.push_back(makeRow(b2, impl, shortName, role, mustFree, std::move(s.nextTick)));
    };
    one(names::kLibloop, "libloop", Role::Subject, true, libloopCancel);
    one("naive B", "naive", Role::Naive, false,
        [](const Options& o, std::uint64_t a, std::uint64_t p, bool w1, bool w2) {
            return naiveCancel(o, a, p, w1, w2, false);
        });
    one("naive B pre-sized", "naive pre-sized", Role::Naive, false,
        [](const Options& o, std::uint64_t a, std::uint64_t p, bool w1, bool w2) {
            return naiveCancel(o, a, p, w1, w2, true);
        });
#ifdef BENCH_HAVE_LIBUV
    one("libuv timer", "libuv", Role::Peer, false, uvCancel);
#endif
    for (auto& r : atOnce)
        rep.add(std::move(r));
    for (auto& r : nextTick)
        rep.add(std::move(r));
}

} // namespace

void benchTimers(const Options& o, const Counts& c, Report& rep) {
    const auto n = c.timerFire;
    const char* b5 = names::kTimerFire;
    if (rep.wants(b5, names::kLibloop)) {
        RowGuard g(std::string(b5) + " / libloop");
        libloop::Loop loop;
        rep.add(
            makeRow(b5, names::kLibloop, "libloop", Role::Subject, true,
                    repeat(
                        o, [&] { libloopFire(loop, n); }, [&] { return libloopFire(loop, n); })));
    }
    if (rep.wants(b5, "naive B")) {
        RowGuard g(std::string(b5) + " / naive B");
        NaiveTimers t;
        rep.add(makeRow(b5, "naive B", "naive", Role::Naive, false,
                        repeat(
                            o, [&] { naiveFire(t, n); }, [&] { return naiveFire(t, n); })));
    }
#ifdef BENCH_HAVE_LIBUV
    if (rep.wants(b5, "libuv timer")) {
        RowGuard g(std::string(b5) + " / libuv timer");
        UvPool p(n);
        rep.add(makeRow(b5, "libuv timer", "libuv", Role::Peer, false,
                        repeat(
                            o, [&] { uvFire(p, n); }, [&] { return uvFire(p, n); })));
    }
#endif

    cancelRows(o, rep, 1'000, c.cancelSmall);
    cancelRows(o, rep, c.activeLarge, c.cancelLarge);
}

} // namespace bench
