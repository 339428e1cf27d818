// JsTimers: browser timer semantics on a Loop (js_timers.h), and the check phase they rely on.
//
// Delays are checked through deadline(), which is decided when a timer is armed: exact and
// independent of how slow the machine is. No test asserts on elapsed time.
#include <libloop/js_timers.h>

#include "testsupport.h"

#include <QTest>

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using namespace libloop;
using namespace std::chrono_literals;
using testsupport::runUntil;

namespace {

// Counts live copies of itself, so a test can see when a callback's captures are released.
struct Counted {
    explicit Counted(std::atomic<int>* c) : live(c) { live->fetch_add(1); }
    Counted(const Counted& o) : live(o.live) { live->fetch_add(1); }
    Counted(Counted&& o) noexcept : live(o.live) { live->fetch_add(1); }
    ~Counted() { live->fetch_sub(1); }
    std::atomic<int>* live;
};

bool drain(Loop& loop) {
    for (int i = 0; i < 64; ++i)
        if (!loop.runOnce(Duration(0)).ok())
            return false;
    return true;
}

} // namespace

class TstJsTimers : public QObject {
    Q_OBJECT
private slots:
    // ---- ids ----
    void idsArePositiveIncreasingAndShared() {
        Loop loop;
        JsTimers js(loop);
        auto a = js.setTimeout([] {}, 10);
        auto b = js.setInterval([] {}, 10);
        auto c = js.setImmediate([] {});
        QVERIFY(a.ok() && b.ok() && c.ok());
        QVERIFY(a.value() >= 1);
        QCOMPARE(b.value(), a.value() + 1);
        QCOMPARE(c.value(), b.value() + 1);
        QCOMPARE(js.pending(), std::size_t(3));
    }
    void idExhaustionIsAnErrorAndSchedulesNothing() {
        Loop loop;
        std::atomic<int> live{0};
        JsTimers js(loop, JsTimersOptions{kMaxJsTimerId - 1});
        auto a = js.setTimeout([] {}, 0);
        auto b = js.setTimeout([] {}, 0);
        QVERIFY(a.ok() && b.ok());
        QCOMPARE(a.value(), kMaxJsTimerId - 1);
        QCOMPARE(b.value(), kMaxJsTimerId); // 2^53 − 1 is still valid
        const std::size_t timersBefore = loop.pendingTimers();
        {
            Counted c(&live);
            auto x = js.setTimeout([c] {}, 0);
            QCOMPARE(x.code(), Errc::IdsExhausted);
            auto y = js.setInterval([c] {}, 5);
            QCOMPARE(y.code(), Errc::IdsExhausted);
            auto z = js.setImmediate([c] {});
            QCOMPARE(z.code(), Errc::IdsExhausted);
        }
        QCOMPARE(live.load(), 0); // refused callbacks were released, not stored
        QCOMPARE(loop.pendingTimers(), timersBefore);
        QCOMPARE(js.pending(), std::size_t(2));
        auto pred = [&] { return js.pending() == 0; }; // the two valid ones still run
        QVERIFY(runUntil(loop, pred));
    }
    void refusedCallDoesNotUseAnId() {
        Loop loop;
        JsTimers js(loop);
        QCOMPARE(js.setTimeout(nullptr, 0).code(), Errc::NullCallable);
        auto a = js.setTimeout([] {}, 0);
        QCOMPARE(a.value(), std::uint64_t(1));
    }
    void closedLoopRefuses() {
        Loop loop;
        JsTimers js(loop);
        QVERIFY(loop.close().ok());
        QCOMPARE(js.setTimeout([] {}, 0).code(), Errc::NotAccepting);
        QCOMPARE(js.setImmediate([] {}).code(), Errc::NotAccepting);
        QCOMPARE(js.pending(), std::size_t(0));
    }

    // ---- clear* ----
    void clearTimeoutAndIntervalAreInterchangeable() {
        Loop loop;
        JsTimers js(loop);
        int ran = 0;
        auto t = js.setTimeout([&] { ++ran; }, 0);
        auto i = js.setInterval([&] { ++ran; }, 0);
        js.clearInterval(t.value()); // as in browsers: clears a timeout too
        js.clearTimeout(i.value());
        QVERIFY(drain(loop));
        QCOMPARE(ran, 0);
        QCOMPARE(js.pending(), std::size_t(0));
    }
    void clearWrongKindUnknownOrFiredIsNoOp() {
        Loop loop;
        JsTimers js(loop);
        std::vector<std::string> log;
        auto t = js.setTimeout([&] { log.push_back("timeout"); }, 0);
        auto m = js.setImmediate([&] { log.push_back("immediate"); });
        js.clearImmediate(t.value()); // wrong kind
        js.clearTimeout(m.value());   // wrong kind
        js.clearInterval(m.value());  // wrong kind
        js.clearTimeout(9999);        // unknown
        js.clearTimeout(0);
        QVERIFY(drain(loop));
        QCOMPARE(log.size(), std::size_t(2));
        js.clearTimeout(t.value()); // fired
        js.clearImmediate(m.value());
        QCOMPARE(js.pending(), std::size_t(0));
    }
    void clearImmediateCancels() {
        Loop loop;
        JsTimers js(loop);
        int ran = 0;
        auto m = js.setImmediate([&] { ++ran; });
        js.clearImmediate(m.value());
        QVERIFY(drain(loop));
        QCOMPARE(ran, 0);
    }
    void clearIntervalInsideCallbackStopsIt() {
        Loop loop;
        JsTimers js(loop);
        int runs = 0;
        std::uint64_t id = 0;
        id = js.setInterval(
                   [&] {
                       if (++runs == 3)
                           js.clearInterval(id);
                   },
                   0)
                 .value();
        auto pred = [&] { return runs >= 3; };
        QVERIFY(runUntil(loop, pred));
        QVERIFY(drain(loop));
        QCOMPARE(runs, 3);
        QCOMPARE(js.pending(), std::size_t(0));
        QCOMPARE(loop.pendingTimers(), std::size_t(0));
    }
    void clearIntervalFromTaskOnLoopThreadStopsIt() {
        Loop loop;
        JsTimers js(loop);
        int runs = 0;
        auto id = js.setInterval([&] { ++runs; }, 0).value();
        auto pred = [&] { return runs >= 2; };
        QVERIFY(runUntil(loop, pred));
        const int at = runs;
        QVERIFY(loop.submit([&] { js.clearInterval(id); }).ok());
        QVERIFY(drain(loop));
        // The submitted task runs after this iteration's timers: at most that iteration's run.
        QVERIFY(runs <= at + 1);
        const int after = runs;
        QVERIFY(drain(loop));
        QCOMPARE(runs, after);
    }
    // From another thread: once clearInterval returned, no run starts (one already started may
    // finish). Repeated to give the race many chances.
    void clearIntervalFromOtherThreadNoNewRunAfterReturn() {
        for (int round = 0; round < 100; ++round) {
            Loop loop;
            JsTimers js(loop);
            std::atomic<bool> returned{false};
            std::atomic<int> startsAfterReturn{0}, starts{0};
            auto id = js.setInterval(
                            [&] {
                                if (returned.load(std::memory_order_seq_cst))
                                    startsAfterReturn.fetch_add(1);
                                starts.fetch_add(1);
                            },
                            0)
                          .value();
            std::thread clearer([&] {
                while (starts.load() < 1 + round % 5)
                    std::this_thread::yield();
                js.clearInterval(id);
                returned.store(true, std::memory_order_seq_cst);
            });
            auto pred = [&] { return returned.load(); };
            QVERIFY(runUntil(loop, pred));
            clearer.join();
            for (int i = 0; i < 20; ++i)
                (void)loop.runOnce(1ms);
            // At most the run whose start raced with the clear sees `returned`.
            QVERIFY2(startsAfterReturn.load() <= 1, qPrintable(QString::number(round)));
            QCOMPARE(js.pending(), std::size_t(0));
        }
    }

    // ---- delays ----
    void delayConversionFollowsWebIdlLong() {
        QCOMPARE(JsTimers::normalizeDelay(std::nan("")), std::int64_t(0));
        QCOMPARE(JsTimers::normalizeDelay(std::numeric_limits<double>::infinity()),
                 std::int64_t(0));
        QCOMPARE(JsTimers::normalizeDelay(-std::numeric_limits<double>::infinity()),
                 std::int64_t(0));
        QCOMPARE(JsTimers::normalizeDelay(-5), std::int64_t(0));
        QCOMPARE(JsTimers::normalizeDelay(-0.5), std::int64_t(0));
        QCOMPARE(JsTimers::normalizeDelay(10.9), std::int64_t(10));
        QCOMPARE(JsTimers::normalizeDelay(2147483647.0), std::int64_t(2147483647));
        QCOMPARE(JsTimers::normalizeDelay(2147483648.0), std::int64_t(0)); // wraps to −2^31
        QCOMPARE(JsTimers::normalizeDelay(4294967296.0 + 7), std::int64_t(7));
        QCOMPARE(JsTimers::normalizeDelay(-4294967296.0 + 3), std::int64_t(3));
    }
    void negativeAndNaNDelaysAreDueNow() {
        Loop loop;
        JsTimers js(loop);
        const auto before = Clock::now();
        auto a = js.setTimeout([] {}, -100);
        auto b = js.setTimeout([] {}, std::nan(""));
        const auto after = Clock::now();
        QVERIFY(js.deadline(a.value()).value() <= after);
        QVERIFY(js.deadline(b.value()).value() <= after);
        QVERIFY(js.deadline(a.value()).value() >= before);
        auto c = js.setTimeout([] {}, 50);
        QVERIFY(js.deadline(c.value()).value() >= before + 50ms);
    }

    // ---- nesting (HTML timer nesting level) ----
    // A chain of setTimeout(0), each scheduled from the previous callback. Timer k (1-based) is
    // scheduled at nesting level k−1, so timers 1..6 are not clamped and 7.. are raised to 4 ms.
    void nestedTimeoutsClampedFromLevelSix() {
        Loop loop;
        JsTimers js(loop);
        std::vector<bool> clamped; // per timer in the chain
        std::vector<int> levels;   // nestingLevel() inside each callback
        std::function<void()> next;
        int scheduled = 0;
        next = [&] {
            levels.push_back(js.nestingLevel());
            if (scheduled == 10)
                return;
            const auto before = Clock::now();
            auto id = js.setTimeout([&] { next(); }, 0).value();
            const auto after = Clock::now();
            const auto dl = js.deadline(id).value();
            ++scheduled;
            QVERIFY(dl >= before);
            if (dl >= before + 4ms)
                clamped.push_back(true);
            else if (dl <= after)
                clamped.push_back(false);
            else
                QFAIL("deadline neither now nor ≥ 4 ms");
        };
        QCOMPARE(js.nestingLevel(), 0);
        next(); // outside any timer: level 0
        auto pred = [&] { return levels.size() == 11; };
        QVERIFY(runUntil(loop, pred));
        QCOMPARE(levels, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
        QCOMPARE(clamped, (std::vector<bool>{false, false, false, false, false, false, true, true,
                                             true, true}));
    }
    // The clamp raises short delays only; a longer delay is kept (not lowered to 4 ms).
    void nestingClampNeverLowersADelay() {
        Loop loop;
        JsTimers js(loop);
        int depth = 0;
        bool checked = false;
        std::function<void()> step = [&] {
            if (++depth < 7) {
                (void)js.setTimeout([&] { step(); }, 0);
                return;
            }
            QCOMPARE(js.nestingLevel(), 7);
            const auto before = Clock::now();
            auto id = js.setTimeout([] {}, 100).value();
            QVERIFY(js.deadline(id).value() >= before + 100ms);
            auto id2 = js.setTimeout([] {}, 2).value();
            QVERIFY(js.deadline(id2).value() >= before + 4ms);
            js.clearTimeout(id);
            js.clearTimeout(id2);
            checked = true;
        };
        (void)js.setTimeout([&] { step(); }, 0);
        auto pred = [&] { return checked; };
        QVERIFY(runUntil(loop, pred));
    }
    // An interval re-arms after each run at that run's level: runs 1..5 re-arm at levels 1..5
    // (no clamp), run 6 on re-arms at level ≥ 6 (clamped to 4 ms).
    void intervalNestedAfterFifthRun() {
        Loop loop;
        JsTimers js(loop);
        std::vector<int> clamped; // 1 clamped, 0 not, -1 neither (a failure)
        std::vector<int> levels;
        std::uint64_t id = 0;
        Clock::time_point endOfRun;
        id = js.setInterval(
                   [&] {
                       levels.push_back(js.nestingLevel());
                       if (levels.size() == 9) {
                           js.clearInterval(id);
                           return;
                       }
                       // The re-arm happens when the callback returns; a microtask sees it.
                       (void)loop.queueMicrotask([&] {
                           const auto after = Clock::now();
                           const auto dl = js.deadline(id).value();
                           clamped.push_back(dl >= endOfRun + 4ms ? 1 : (dl <= after ? 0 : -1));
                       });
                       endOfRun = Clock::now();
                   },
                   0)
                 .value();
        auto pred = [&] { return levels.size() == 9; };
        QVERIFY(runUntil(loop, pred));
        QCOMPARE(levels, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
        QCOMPARE(clamped, (std::vector<int>{0, 0, 0, 0, 0, 1, 1, 1}));
    }
    void immediatesAndTasksAreNotNested() {
        Loop loop;
        JsTimers js(loop);
        std::vector<int> levels;
        (void)js.setTimeout(
            [&] {
                (void)js.setImmediate([&] { levels.push_back(js.nestingLevel()); });
                (void)loop.submit([&] { levels.push_back(js.nestingLevel()); });
            },
            0);
        auto pred = [&] { return levels.size() == 2; };
        QVERIFY(runUntil(loop, pred));
        QCOMPARE(levels, (std::vector<int>{0, 0}));
    }

    // ---- ordering ----
    // Node's classic: inside an I/O callback, setImmediate runs before setTimeout(0).
    void immediateBeforeTimeoutFromIoCallback() {
        Loop loop;
        JsTimers js(loop);
        int sv[2];
        QCOMPARE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        std::vector<std::string> log;
        QVERIFY(loop.registerFd(sv[0], FdEvent::Readable,
                                [&](int fd, unsigned) {
                                    char c;
                                    (void)::read(fd, &c, 1);
                                    (void)js.setTimeout([&] { log.push_back("timeout"); }, 0);
                                    (void)js.setImmediate([&] { log.push_back("immediate"); });
                                    (void)loop.queueMicrotask([&] { log.push_back("microtask"); });
                                })
                    .ok());
        QCOMPARE(::write(sv[1], "x", 1), ssize_t(1));
        auto pred = [&] { return log.size() == 3; };
        QVERIFY(runUntil(loop, pred));
        QCOMPARE(log, (std::vector<std::string>{"microtask", "immediate", "timeout"}));
        QVERIFY(loop.unregisterFd(sv[0]).ok());
        ::close(sv[0]);
        ::close(sv[1]);
    }
    // One iteration: timers, tasks, (fds), immediates; a checkpoint after each callback.
    void phaseOrderWithinAnIteration() {
        Loop loop;
        JsTimers js(loop);
        std::vector<std::string> log;
        (void)js.setImmediate([&] {
            log.push_back("immediate");
            (void)loop.queueMicrotask([&] { log.push_back("immediate.micro"); });
            (void)js.setImmediate([&] { log.push_back("immediate2"); }); // next iteration
        });
        (void)js.setTimeout(
            [&] {
                log.push_back("timeout");
                (void)loop.queueMicrotask([&] { log.push_back("timeout.micro"); });
            },
            0);
        (void)loop.submit([&] { log.push_back("task"); });
        (void)js.queueMicrotask([&] { log.push_back("micro"); });
        // The timer's deadline must have passed for it to be due in the first iteration.
        std::this_thread::sleep_for(2ms);
        QVERIFY(loop.runOnce(Duration(0)).ok());
        QCOMPARE(log, (std::vector<std::string>{"micro", "timeout", "timeout.micro", "task",
                                                "immediate", "immediate.micro"}));
        QVERIFY(loop.runOnce(Duration(0)).ok());
        QCOMPARE(log.back(), std::string("immediate2"));
    }
    void loopDoesNotSleepWithImmediatesQueued() {
        Loop loop;
        JsTimers js(loop);
        int n = 0;
        std::function<void()> again = [&] {
            if (++n < 100)
                (void)js.setImmediate([&] { again(); });
        };
        (void)js.setImmediate([&] { again(); });
        // Each runOnce(kForever) must return promptly: an immediate is always queued.
        for (int i = 0; i < 100 && n < 100; ++i)
            QVERIFY(loop.runOnce(kForever).ok());
        QCOMPARE(n, 100);
    }
    void setImmediateFromOtherThread() {
        Loop loop;
        JsTimers js(loop);
        std::atomic<bool> onLoopThread{false}, ran{false};
        std::thread t([&] {
            QVERIFY(js.setImmediate([&] {
                          onLoopThread = loop.isLoopThread();
                          ran = true;
                      }).ok());
        });
        t.join();
        auto pred = [&] { return ran.load(); };
        QVERIFY(runUntil(loop, pred));
        QVERIFY(onLoopThread.load());
        QCOMPARE(js.pending(), std::size_t(0));
    }

    // ---- failures and lifetime ----
    void throwingIntervalKeepsRunningAndIsReported() {
        std::atomic<int> errors{0};
        LoopOptions o;
        o.errorHook = [&](std::exception_ptr, CallbackKind k) {
            if (k == CallbackKind::Timer)
                ++errors;
        };
        Loop loop(o);
        JsTimers js(loop);
        int runs = 0;
        std::uint64_t id = 0;
        id = js.setInterval(
                   [&] {
                       if (++runs == 4)
                           js.clearInterval(id);
                       throw std::runtime_error("interval");
                   },
                   0)
                 .value();
        auto pred = [&] { return runs >= 4; };
        QVERIFY(runUntil(loop, pred));
        QVERIFY(drain(loop));
        QCOMPARE(runs, 4);
        QCOMPARE(errors.load(), 4);
        QCOMPARE(js.pending(), std::size_t(0));
    }
    void callbacksReleasedAfterRunOrClear() {
        Loop loop;
        std::atomic<int> live{0};
        JsTimers js(loop);
        {
            Counted c(&live);
            (void)js.setTimeout([c] {}, 0);
            auto i = js.setInterval([c] {}, 1000);
            (void)js.setImmediate([c] {});
            auto t = js.setTimeout([c] {}, 1000);
            js.clearInterval(i.value());
            js.clearTimeout(t.value());
        }
        QCOMPARE(live.load(), 2); // the cleared ones are gone at once on the loop thread
        auto pred = [&] { return live.load() == 0; };
        QVERIFY(runUntil(loop, pred));
    }
    void destroyingJsTimersClearsEverything() {
        Loop loop;
        std::atomic<int> live{0};
        int ran = 0;
        {
            JsTimers js(loop);
            Counted c(&live);
            (void)js.setTimeout([c, &ran] { ++ran; }, 0);
            (void)js.setInterval([c, &ran] { ++ran; }, 0);
            (void)js.setImmediate([c, &ran] { ++ran; });
        }
        QVERIFY(drain(loop));
        QCOMPARE(ran, 0);
        QCOMPARE(live.load(), 0);
        QCOMPARE(loop.pendingTimers(), std::size_t(0));
    }

    void intervalKeepsRunningAtMaxTimers() {
        // Regression (fuzz_js_timers, corpus/js_timers/regress-interval-at-cap): with room for
        // one timer, an interval must still re-arm: the running timer is not pending.
        ManualClock clock;
        LoopOptions o;
        o.maxTimers = 1;
        o.clock = &clock;
        Loop loop(o);
        JsTimers js(loop);
        int ticks = 0;
        QVERIFY(js.setInterval([&] { ++ticks; }, 5).ok());
        for (int i = 0; i < 10; ++i)
            QVERIFY(loop.runOnce(kForever).ok());
        QCOMPARE(ticks, 10);
        QCOMPARE(js.pending(), std::size_t(1));
    }
};

QTEST_APPLESS_MAIN(TstJsTimers)
#include "tst_js_timers.moc"
