// Tests for the timers of libloop::Loop (loop.h, timer.h): deadline order, FIFO for equal
// deadlines, never early, delay <= 0 and huge delays, cancellation (also across threads and from
// callbacks), id uniqueness, timerDeadline, null tasks, throwing callbacks and re-entrancy.
//
// No assertion depends on how long anything takes: conditions are awaited by driving runOnce()
// under a generous deadline that only guards against hangs.
#include <libloop/loop.h>

#include <QTest>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "testsupport.h"

using namespace std::chrono_literals;
using namespace testsupport;
using libloop::CallbackKind;
using libloop::Clock;
using libloop::Duration;
using libloop::Errc;
using libloop::kForever;
using libloop::Loop;
using libloop::LoopOptions;
using libloop::LoopState;
using libloop::Task;
using libloop::TimePoint;
using libloop::TimerId;

namespace {

void spinRunOnce(Loop& loop, int n) {
    for (int i = 0; i < n; ++i)
        (void)loop.runOnce(0ns);
}

// A timer that re-schedules itself with delay 0 until `limit` runs happened.
struct Chain {
    Loop* loop;
    int* count;
    int limit;
    void operator()() const {
        if (++*count < limit)
            (void)loop->scheduleTimer(0ns, Chain{*this});
    }
};

} // namespace

class TestTimers : public QObject {
    Q_OBJECT

private slots:
    void firesInDeadlineOrder();
    void equalDeadlinesFireInSchedulingOrder();
    void equalDeadlinesFromOtherThreadKeepOrder();
    void neverFiresBeforeDeadline();
    void zeroAndNegativeDelayNeverRunSynchronously();
    void zeroDelayRunsInLaterTimerPhase();
    void hugeDelayIsPendingAndDoesNotOverflow();
    void cancelBeforeFire();
    void cancelTwice();
    void cancelUnknownId();
    void cancelAfterFire();
    void cancelFromOwnCallback();
    void cancelSiblingDueInSameIteration();
    void timerSchedulingTimersDoesNotSpinInOneIteration();
    void waitEndsAtTimerDeadline();
    void scheduleFromOtherThreadFiresOnLoopThread();
    void scheduleFromOtherThreadWakesSleepingLoop();
    void crossThreadCancelStress();
    void manyTimersHalfCancelled();
    void idsAreNeverReused();
    void timerDeadlineLifecycle();
    void nullTaskIsRejected();
    void throwingTimerCallbackReportsToHook();
    void reentrantRunOnceFromTimer();
    void rescheduleMovesTimerAndKeepsCallback();
    void rescheduleRefusals();
    void maxTimersIsExact();
    void slotsCachedByTheLoopReturnAtTheCap();
    void runningTimerDoesNotCountAgainstMaxTimers();
};

void TestTimers::firesInDeadlineOrder() {
    // Once with deadlines in the future (they may come due across several iterations) and once
    // with all of them in the past (all due in the same iteration).
    for (const Duration shift : {Duration(5ms), Duration(-1s)}) {
        Loop loop;
        std::vector<int> order;
        const TimePoint base = Clock::now() + shift;
        const int offsets[] = {7, 3, 9, 0, 5, 1, 8, 2, 6, 4};
        for (int off : offsets) {
            const auto r = loop.scheduleTimerAt(base + std::chrono::milliseconds(off),
                                                [&order, off] { order.push_back(off); });
            QVERIFY(r.ok());
        }
        QVERIFY(runUntil(loop, [&] { return order.size() == 10; }));
        spinRunOnce(loop, 3);
        QCOMPARE(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
        QCOMPARE(loop.pendingTimers(), std::size_t(0));
    }
}

void TestTimers::equalDeadlinesFireInSchedulingOrder() {
    Loop loop;
    std::vector<int> order;
    const TimePoint t = Clock::now() + 20ms;
    // Half before the loop has iterated, half after: FIFO must hold across heap insertions.
    for (int i = 0; i < 50; ++i)
        QVERIFY(loop.scheduleTimerAt(t, [&order, i] { order.push_back(i); }).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    for (int i = 50; i < 100; ++i)
        QVERIFY(loop.scheduleTimerAt(t, [&order, i] { order.push_back(i); }).ok());
    QVERIFY(runUntil(loop, [&] { return order.size() == 100; }));
    std::vector<int> expected(100);
    std::iota(expected.begin(), expected.end(), 0);
    QCOMPARE(order, expected);
}

void TestTimers::equalDeadlinesFromOtherThreadKeepOrder() {
    Loop loop;
    std::vector<int> order; // loop thread only
    std::atomic<bool> producerDone{false};
    std::atomic<int> failures{0};
    std::thread producer([&] {
        const TimePoint t = Clock::now() + 20ms;
        for (int i = 0; i < 100; ++i)
            if (!loop.scheduleTimerAt(t, [&order, i] { order.push_back(i); }).ok())
                ++failures;
        producerDone = true;
    });
    const bool done = runUntil(loop, [&] { return producerDone && order.size() == 100; });
    producer.join();
    QCOMPARE(failures.load(), 0);
    QVERIFY(done);
    std::vector<int> expected(100);
    std::iota(expected.begin(), expected.end(), 0);
    QCOMPARE(order, expected);
}

void TestTimers::neverFiresBeforeDeadline() {
    Loop loop;
    constexpr int N = 60;
    struct Rec {
        TimePoint before{};   // taken just before scheduling
        Duration delay{};     // requested delay (relative timers)
        TimePoint deadline{}; // timerDeadline() right after scheduling
        TimePoint fired{};
        int runs = 0;
    };
    std::vector<Rec> recs(N);
    for (int i = 0; i < N; ++i) {
        Rec& rec = recs[i];
        rec.delay = std::chrono::microseconds((i * 337) % 20000);
        rec.before = Clock::now();
        Task cb = [&recs, i] {
            recs[i].fired = Clock::now();
            ++recs[i].runs;
        };
        const auto r = (i % 2) ? loop.scheduleTimer(rec.delay, std::move(cb))
                               : loop.scheduleTimerAt(rec.before + rec.delay, std::move(cb));
        QVERIFY(r.ok());
        const auto d = loop.timerDeadline(r.value());
        QVERIFY(d.ok());
        rec.deadline = d.value();
    }
    QVERIFY(runUntil(loop, [&] {
        return std::all_of(recs.begin(), recs.end(), [](const Rec& r) { return r.runs > 0; });
    }));
    for (int i = 0; i < N; ++i) {
        const Rec& rec = recs[i];
        QCOMPARE(rec.runs, 1);
        QVERIFY2(rec.deadline >= rec.before + rec.delay, qPrintable(QString::number(i)));
        QVERIFY2(rec.fired >= rec.deadline, qPrintable(QString("timer %1 fired early").arg(i)));
        QVERIFY2(rec.fired >= rec.before + rec.delay, qPrintable(QString::number(i)));
    }
}

void TestTimers::zeroAndNegativeDelayNeverRunSynchronously() {
    Loop loop;
    int ran = 0;
    const Duration delays[] = {Duration(0), Duration(-1), Duration(-1s), Duration::min()};
    int scheduled = 0;
    for (Duration d : delays) {
        const auto r = loop.scheduleTimer(d, [&ran] { ++ran; });
        QVERIFY(r.ok());
        ++scheduled;
        QCOMPARE(ran, 0); // not run inside scheduleTimer
        const auto dl = loop.timerDeadline(r.value());
        QVERIFY(dl.ok());
        QVERIFY(dl.value() <= Clock::now()); // "due now"
    }
    // Same from inside a task (a callback on the loop thread).
    int ranAtReturn = -1;
    bool scheduledOk = false;
    QVERIFY(loop.submit([&] {
                    const int before = ran;
                    scheduledOk = loop.scheduleTimer(0ns, [&ran] { ++ran; }).ok() &&
                                  loop.scheduleTimer(-5ms, [&ran] { ++ran; }).ok();
                    ranAtReturn = ran - before;
                })
                .ok());
    scheduled += 2;
    QVERIFY(runUntil(loop, [&] { return ran == scheduled; }));
    QVERIFY(scheduledOk);
    QCOMPARE(ranAtReturn, 0);
    spinRunOnce(loop, 3);
    QCOMPARE(ran, scheduled);
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::zeroDelayRunsInLaterTimerPhase() {
    Loop loop;
    int iteration = 0; // incremented by this driver before each runOnce
    int taskIter = -1, timerFromTaskIter = -1;
    int parentIter = -1, childIter = -1, negChildIter = -1;
    QVERIFY(loop.submit([&] {
                    taskIter = iteration;
                    (void)loop.scheduleTimer(0ns, [&] { timerFromTaskIter = iteration; });
                })
                .ok());
    QVERIFY(loop.scheduleTimer(0ns,
                               [&] {
                                   parentIter = iteration;
                                   (void)loop.scheduleTimer(0ns, [&] { childIter = iteration; });
                                   (void)loop.scheduleTimerAt(Clock::now() - 1s,
                                                              [&] { negChildIter = iteration; });
                               })
                .ok());
    for (int i = 0; i < 100000 && (timerFromTaskIter < 0 || childIter < 0 || negChildIter < 0);
         ++i) {
        ++iteration;
        QVERIFY(loop.runOnce(1ms).ok());
    }
    QVERIFY(taskIter > 0);
    QVERIFY(parentIter > 0);
    QVERIFY(timerFromTaskIter > taskIter);
    QVERIFY(childIter > parentIter);
    QVERIFY(negChildIter > parentIter);
}

void TestTimers::hugeDelayIsPendingAndDoesNotOverflow() {
    Loop loop;
    int ran = 0;
    const TimePoint before = Clock::now();
    const Duration thousandHours = std::chrono::hours(1000);
    const Duration twoCenturies = std::chrono::hours(24 * 365 * 200);
    std::vector<TimerId> ids;
    for (Duration d :
         {Duration::max(), Duration::max() - Duration(1), twoCenturies, thousandHours}) {
        const auto r = loop.scheduleTimer(d, [&ran] { ++ran; });
        QVERIFY(r.ok());
        ids.push_back(r.value());
    }
    {
        const auto r = loop.scheduleTimerAt(TimePoint::max(), [&ran] { ++ran; });
        QVERIFY(r.ok());
        ids.push_back(r.value());
    }
    const TimePoint now = Clock::now();
    const Duration oneYear = std::chrono::hours(24 * 365);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto dl = loop.timerDeadline(ids[i]);
        QVERIFY(dl.ok());
        QVERIFY(dl.value() > now); // in the future: nothing wrapped around
        if (i != 3)                // ids[3] is "only" 1000 hours out
            QVERIFY2(dl.value() > now + oneYear, qPrintable(QString("timer %1").arg(i)));
    }
    QVERIFY(loop.timerDeadline(ids[3]).value() >= before + thousandHours);
    QVERIFY(loop.timerDeadline(ids[2]).value() >= before + twoCenturies);

    // None fires, and waiting with a finite timeout still returns (no overflowed wait time).
    Watchdog wd(loop);
    for (int i = 0; i < 3; ++i) {
        const auto r = loop.runOnce(0ns);
        QVERIFY(r.ok());
        QCOMPARE(r.value(), std::size_t(0));
    }
    for (int i = 0; i < 2; ++i)
        QVERIFY(loop.runOnce(5ms).ok());
    QVERIFY(!wd.fired());
    QCOMPARE(ran, 0);
    QCOMPARE(loop.pendingTimers(), ids.size());

    // An ordinary timer alongside still fires.
    bool shortRan = false;
    QVERIFY(loop.scheduleTimer(1ms, [&shortRan] { shortRan = true; }).ok());
    QVERIFY(runUntil(loop, [&] { return shortRan; }));
    wd.dismiss();
    QVERIFY(!wd.fired());
    QCOMPARE(ran, 0);
    for (TimerId id : ids)
        QVERIFY(loop.cancelTimer(id));
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::cancelBeforeFire() {
    Loop loop;
    int ran = 0;
    bool sentinel = false;
    std::atomic<bool> released{false};
    const TimePoint t = Clock::now() + 5ms;
    const auto a = loop.scheduleTimerAt(t, [&ran, tok = makeToken(released)] { ++ran; });
    // Same deadline, scheduled after: when it has run, `a` would have run before it.
    const auto s = loop.scheduleTimerAt(t, [&sentinel] { sentinel = true; });
    QVERIFY(a.ok());
    QVERIFY(s.ok());
    QVERIFY(loop.cancelTimer(a.value()));
    QVERIFY(runUntil(loop, [&] { return sentinel; }));
    spinRunOnce(loop, 3);
    QCOMPARE(ran, 0);
    QVERIFY(released); // the cancelled callable was destroyed
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::cancelTwice() {
    Loop loop;
    int ran = 0;
    const auto a = loop.scheduleTimer(1h, [&ran] { ++ran; });
    QVERIFY(a.ok());
    QVERIFY(loop.cancelTimer(a.value()));
    QVERIFY(!loop.cancelTimer(a.value()));
    spinRunOnce(loop, 2);
    QVERIFY(!loop.cancelTimer(a.value()));
    QCOMPARE(ran, 0);
}

void TestTimers::cancelUnknownId() {
    Loop loop;
    QVERIFY(!loop.cancelTimer(TimerId{}));
    QVERIFY(!loop.cancelTimer(TimerId{~std::uint64_t(0)}));
    const auto a = loop.scheduleTimer(1h, [] {});
    QVERIFY(a.ok());
    QVERIFY(!loop.cancelTimer(TimerId{}));
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.pendingTimers(), std::size_t(1));
    QVERIFY(loop.cancelTimer(a.value()));
}

void TestTimers::cancelAfterFire() {
    Loop loop;
    int ran = 0;
    const auto a = loop.scheduleTimer(0ns, [&ran] { ++ran; });
    QVERIFY(a.ok());
    QVERIFY(runUntil(loop, [&] { return ran == 1; }));
    QVERIFY(!loop.cancelTimer(a.value()));
    spinRunOnce(loop, 2);
    QCOMPARE(ran, 1);
}

void TestTimers::cancelFromOwnCallback() {
    Loop loop;
    TimerId self;
    int ran = 0;
    bool cancelResult = true;
    Errc deadlineCode = Errc::Ok;
    const auto r = loop.scheduleTimer(0ns, [&] {
        ++ran;
        cancelResult = loop.cancelTimer(self);
        deadlineCode = loop.timerDeadline(self).code();
    });
    QVERIFY(r.ok());
    self = r.value();
    QVERIFY(runUntil(loop, [&] { return ran > 0; }));
    spinRunOnce(loop, 3);
    QCOMPARE(ran, 1);
    QVERIFY(!cancelResult);
    QCOMPARE(deadlineCode, Errc::NotFound); // started: no longer pending
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
    QVERIFY(!loop.cancelTimer(self));
}

void TestTimers::cancelSiblingDueInSameIteration() {
    // Case 0: identical future deadline; case 1: different deadlines all already in the past, so
    // all three are due in the very first iteration.
    for (int variant = 0; variant < 2; ++variant) {
        Loop loop;
        const TimePoint now = Clock::now();
        const TimePoint ta = variant == 0 ? now + 5ms : now - 3ms;
        const TimePoint tb = variant == 0 ? ta : now - 2ms;
        const TimePoint tc = variant == 0 ? ta : now - 1ms;
        TimerId b;
        int aRan = 0, bRan = 0, cRan = 0;
        bool cancelResult = false;
        std::atomic<bool> bReleased{false};
        QVERIFY(loop.scheduleTimerAt(ta,
                                     [&] {
                                         ++aRan;
                                         cancelResult = loop.cancelTimer(b);
                                     })
                    .ok());
        const auto rb = loop.scheduleTimerAt(tb, [&bRan, tok = makeToken(bReleased)] { ++bRan; });
        QVERIFY(rb.ok());
        b = rb.value();
        QVERIFY(loop.scheduleTimerAt(tc, [&cRan] { ++cRan; }).ok());
        QVERIFY(runUntil(loop, [&] { return cRan > 0; }));
        spinRunOnce(loop, 3);
        QCOMPARE(aRan, 1);
        QVERIFY2(cancelResult, qPrintable(QString("variant %1").arg(variant)));
        QCOMPARE(bRan, 0);
        QCOMPARE(cRan, 1);
        QVERIFY(bReleased);
        QCOMPARE(loop.pendingTimers(), std::size_t(0));
    }
}

void TestTimers::timerSchedulingTimersDoesNotSpinInOneIteration() {
    Loop loop;
    // A self-rescheduling delay-0 chain: each runOnce may start at most one link.
    int count = 0;
    constexpr int kLinks = 200;
    QVERIFY(loop.scheduleTimer(0ns, Chain{&loop, &count, kLinks}).ok());
    int maxPerIteration = 0;
    for (int i = 0; i < 100000 && count < kLinks; ++i) {
        const int before = count;
        QVERIFY(loop.runOnce(0ns).ok());
        maxPerIteration = std::max(maxPerIteration, count - before);
    }
    QCOMPARE(count, kLinks);
    QCOMPARE(maxPerIteration, 1);

    // Fan-out: children scheduled by a timer do not run in the parent's runOnce.
    int parent = 0, children = 0, childrenWhenParentReturned = -1;
    QVERIFY(loop.scheduleTimer(0ns,
                               [&] {
                                   ++parent;
                                   for (int i = 0; i < 10; ++i)
                                       (void)loop.scheduleTimer(i % 2 ? Duration(0)
                                                                      : Duration(-1ms),
                                                                [&children] { ++children; });
                               })
                .ok());
    for (int i = 0; i < 100000 && parent == 0; ++i) {
        QVERIFY(loop.runOnce(0ns).ok());
        if (parent)
            childrenWhenParentReturned = children;
    }
    QCOMPARE(parent, 1);
    QCOMPARE(childrenWhenParentReturned, 0);
    QVERIFY(runUntil(loop, [&] { return children == 10; }));
}

void TestTimers::waitEndsAtTimerDeadline() {
    // runOnce(kForever) with only a timer pending must wake up for it, in the futex fast path
    // and in epoll.
    for (auto mode : {libloop::FastPathMode::Auto, libloop::FastPathMode::Disabled}) {
        Loop loop;
        QVERIFY(loop.setFastPathMode(mode).ok());
        bool ran = false;
        const auto id = loop.scheduleTimer(20ms, [&ran] { ran = true; });
        QVERIFY(id.ok());
        Watchdog wd(loop);
        for (int i = 0; i < 1000 && !ran && !wd.fired(); ++i)
            QVERIFY(loop.runOnce(kForever).ok());
        wd.dismiss();
        QVERIFY(!wd.fired());
        QVERIFY(ran);
    }
}

void TestTimers::scheduleFromOtherThreadFiresOnLoopThread() {
    Loop loop;
    constexpr int N = 200;
    const auto loopThread = std::this_thread::get_id();
    std::vector<int> runs(N, 0);             // loop thread only
    std::vector<uint8_t> onLoopThread(N, 0); // loop thread only
    std::vector<uint8_t> early(N, 0);        // loop thread only
    int total = 0;                           // loop thread only
    std::atomic<int> failures{0};
    std::atomic<bool> producerDone{false};
    std::thread producer([&] {
        for (int i = 0; i < N; ++i) {
            const Duration delay = std::chrono::microseconds((i % 5) * 200);
            const TimePoint before = Clock::now();
            const auto r = loop.scheduleTimer(delay, [&, i, before, delay] {
                ++runs[i];
                ++total;
                onLoopThread[i] = std::this_thread::get_id() == loopThread && loop.isLoopThread();
                early[i] = Clock::now() < before + delay;
            });
            if (!r.ok())
                ++failures;
        }
        producerDone = true;
    });
    const bool done = runUntil(loop, [&] { return producerDone && total == N; });
    producer.join();
    QCOMPARE(failures.load(), 0);
    QVERIFY(done);
    spinRunOnce(loop, 3);
    for (int i = 0; i < N; ++i) {
        QCOMPARE(runs[i], 1);
        QVERIFY(onLoopThread[i]);
        QVERIFY2(!early[i], qPrintable(QString("timer %1 fired early").arg(i)));
    }
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::scheduleFromOtherThreadWakesSleepingLoop() {
    Loop loop;
    constexpr int kRounds = 10;
    std::vector<uint8_t> ran(kRounds, 0); // loop thread only
    std::atomic<int> round{-1};
    std::atomic<bool> quit{false};
    std::atomic<int> failures{0};
    std::thread producer([&] {
        bool sleepingObservable = true;
        for (int r = 0; r < kRounds; ++r) {
            while (round.load() < r && !quit)
                std::this_thread::yield();
            if (quit)
                return;
            // Wait (bounded) until the loop is asleep, so the timer must wake it.
            const TimePoint end = Clock::now() + 5s;
            while (sleepingObservable && loop.state() != LoopState::Sleeping && !quit) {
                if (Clock::now() > end) {
                    sleepingObservable = false;
                    break;
                }
                std::this_thread::yield();
            }
            const Duration delay = r % 2 ? Duration(0) : Duration(3ms);
            if (!loop.scheduleTimer(delay, [&ran, r] { ran[r] = 1; }).ok())
                ++failures;
        }
    });
    Watchdog wd(loop);
    bool allRan = true;
    for (int r = 0; r < kRounds && allRan; ++r) {
        round = r;
        for (int i = 0; i < 1000 && !ran[r] && !wd.fired(); ++i)
            (void)loop.runOnce(kForever);
        allRan = ran[r];
    }
    quit = true;
    producer.join();
    wd.dismiss();
    QVERIFY(!wd.fired());
    QCOMPARE(failures.load(), 0);
    QVERIFY(allRan);
}

void TestTimers::crossThreadCancelStress() {
    Loop loop;
    constexpr int N = 4000;
    std::vector<uint8_t> ran(N, 0);                       // loop thread only
    std::vector<uint8_t> wrongThread(N, 0);               // loop thread only
    int ranTotal = 0;                                     // loop thread only
    std::vector<uint8_t> accepted(N, 0), cancelled(N, 0); // producer, read after join
    std::vector<std::uint64_t> ids(N, 0);                 // producer, read after join
    std::atomic<bool> producerDone{false};
    std::thread producer([&] {
        std::vector<TimerId> tids(N);
        auto tryCancel = [&](int j) {
            if (j >= 0 && accepted[j])
                cancelled[j] = loop.cancelTimer(tids[j]) ? 1 : 0;
        };
        for (int i = 0; i < N; ++i) {
            const Duration delay = std::chrono::microseconds(((i / 4) % 3) * 40);
            const auto r = loop.scheduleTimer(delay, [&, i] {
                ++ran[i];
                ++ranTotal;
                wrongThread[i] = !loop.isLoopThread();
            });
            if (r.ok()) {
                accepted[i] = 1;
                tids[i] = r.value();
                ids[i] = r.value().value;
            }
            // i % 4: 0 = cancel right away (likely before the loop inserted it), 1 = cancelled
            // two steps later, 2 = cancel after a few yields (races with the timer phase),
            // 3 = never cancelled (at this step, timer i - 2 of kind 1 is cancelled).
            const int kind = i % 4;
            if (kind == 0) {
                tryCancel(i);
            } else if (kind == 2) {
                for (int k = 0; k < (i % 13); ++k)
                    std::this_thread::yield();
                tryCancel(i);
            } else if (kind == 3) {
                tryCancel(i - 2);
            }
        }
        producerDone = true;
    });
    // The loop runs while the producer schedules and cancels.
    const TimePoint end = Clock::now() + 60s;
    while (!producerDone && Clock::now() < end)
        (void)loop.runOnce(1ms);
    producer.join();
    int acceptedCount = 0, cancelledCount = 0;
    for (int i = 0; i < N; ++i) {
        acceptedCount += accepted[i];
        cancelledCount += cancelled[i];
    }
    QCOMPARE(acceptedCount, N);
    QVERIFY(runUntil(loop, [&] { return ranTotal >= acceptedCount - cancelledCount; }));
    QVERIFY(runUntil(loop, [&] { return loop.pendingTimers() == 0; }));
    spinRunOnce(loop, 5);
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
    QVERIFY(cancelledCount > 0);
    for (int i = 0; i < N; ++i) {
        QVERIFY2(ran[i] + cancelled[i] == 1,
                 qPrintable(QString("timer %1: ran %2 times, cancel returned %3")
                                .arg(i)
                                .arg(int(ran[i]))
                                .arg(cancelled[i] ? "true" : "false")));
        QVERIFY(!wrongThread[i]);
    }
    QCOMPARE(ranTotal + cancelledCount, N);
    std::unordered_set<std::uint64_t> distinct(ids.begin(), ids.end());
    QCOMPARE(distinct.size(), std::size_t(N));
    QVERIFY(!distinct.count(0));
}

void TestTimers::manyTimersHalfCancelled() {
    Loop loop;
    constexpr int N = 100000;
    std::vector<uint8_t> ran(N, 0);
    std::vector<uint8_t> cancelled(N, 0);
    std::vector<TimerId> ids(N);
    int ranTotal = 0;
    std::mt19937 rng(20240601);
    std::vector<int> perm(N);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    int lateCancelTrue = 0;
    bool lateCancelDone = false;

    const TimePoint base = Clock::now();
    int scheduleFailures = 0;
    for (int i = 0; i < N; ++i) {
        const TimePoint t = base + std::chrono::microseconds((i * 7919) % 5000);
        const auto r = loop.scheduleTimerAt(t, [&, i] {
            ++ran[i];
            ++ranTotal;
            if (!lateCancelDone) {
                // The first callback cancels another 10% — some of them due in this very
                // iteration, some already run (those answer false).
                lateCancelDone = true;
                for (int k = 40000; k < 50000; ++k) {
                    const int j = perm[k];
                    if (loop.cancelTimer(ids[j])) {
                        cancelled[j] = 1;
                        ++lateCancelTrue;
                    }
                }
            }
        });
        if (!r.ok()) {
            ++scheduleFailures;
            continue;
        }
        ids[i] = r.value();
    }
    QCOMPARE(scheduleFailures, 0);
    {
        std::unordered_set<std::uint64_t> distinct;
        distinct.reserve(N);
        for (const TimerId& id : ids)
            distinct.insert(id.value);
        QCOMPARE(distinct.size(), std::size_t(N));
        QVERIFY(!distinct.count(0));
    }
    // 40% cancelled before the loop ever ran: all pending, all must answer true.
    int earlyCancelTrue = 0;
    for (int k = 0; k < 40000; ++k) {
        const int j = perm[k];
        if (loop.cancelTimer(ids[j])) {
            cancelled[j] = 1;
            ++earlyCancelTrue;
        }
    }
    QCOMPARE(earlyCancelTrue, 40000);
    QVERIFY(runUntil(
        loop, [&] { return lateCancelDone && ranTotal + earlyCancelTrue + lateCancelTrue == N; }));
    QVERIFY(runUntil(loop, [&] { return loop.pendingTimers() == 0; }));
    spinRunOnce(loop, 3);
    QCOMPARE(ranTotal + earlyCancelTrue + lateCancelTrue, N);
    QVERIFY(lateCancelTrue > 0);
    for (int i = 0; i < N; ++i) {
        if (ran[i] + cancelled[i] != 1)
            QFAIL(qPrintable(QString("timer %1: ran %2, cancelled %3")
                                 .arg(i)
                                 .arg(int(ran[i]))
                                 .arg(int(cancelled[i]))));
    }
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::idsAreNeverReused() {
    Loop loop;
    constexpr int N = 200000;
    std::unordered_set<std::uint64_t> seen;
    seen.reserve(N);
    int failures = 0, cancelFailures = 0, fired = 0;
    for (int i = 0; i < N; ++i) {
        const bool letFire = i % 1000 == 0;
        const auto r =
            loop.scheduleTimer(letFire ? Duration(0) : Duration(1h), [&fired] { ++fired; });
        if (!r.ok()) {
            ++failures;
            continue;
        }
        seen.insert(r.value().value);
        if (!letFire && !loop.cancelTimer(r.value()))
            ++cancelFailures;
        if (i % 1000 == 999)
            (void)loop.runOnce(0ns); // let released slots be reused
    }
    QCOMPARE(failures, 0);
    QCOMPARE(cancelFailures, 0);
    QCOMPARE(seen.size(), std::size_t(N));
    QVERIFY(!seen.count(0));
    QVERIFY(runUntil(loop, [&] { return fired == N / 1000; }));
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::timerDeadlineLifecycle() {
    Loop loop;
    const TimePoint t = Clock::now() + 1h;
    const auto a = loop.scheduleTimerAt(t, [] {});
    QVERIFY(a.ok());
    {
        const auto d = loop.timerDeadline(a.value());
        QVERIFY(d.ok());
        QVERIFY(d.value() == t);
    }
    // [any thread]
    Errc otherCode = Errc::SystemError;
    bool otherEqual = false;
    std::thread([&] {
        const auto d = loop.timerDeadline(a.value());
        otherCode = d.code();
        otherEqual = d.ok() && d.value() == t;
    }).join();
    QCOMPARE(otherCode, Errc::Ok);
    QVERIFY(otherEqual);

    QVERIFY(loop.cancelTimer(a.value()));
    QCOMPARE(loop.timerDeadline(a.value()).code(), Errc::NotFound);

    bool ran = false;
    const auto b = loop.scheduleTimer(0ns, [&ran] { ran = true; });
    QVERIFY(b.ok());
    QVERIFY(loop.timerDeadline(b.value()).ok());
    QVERIFY(runUntil(loop, [&] { return ran; }));
    QCOMPARE(loop.timerDeadline(b.value()).code(), Errc::NotFound);
    QCOMPARE(loop.timerDeadline(TimerId{}).code(), Errc::NotFound);
}

void TestTimers::nullTaskIsRejected() {
    Loop loop;
    void (*nullFn)() = nullptr;
    std::function<void()> emptyFn;
    QCOMPARE(loop.scheduleTimer(0ns, Task{}).code(), Errc::NullCallable);
    QCOMPARE(loop.scheduleTimer(1ms, nullptr).code(), Errc::NullCallable);
    QCOMPARE(loop.scheduleTimer(1ms, nullFn).code(), Errc::NullCallable);
    QCOMPARE(loop.scheduleTimer(1ms, std::move(emptyFn)).code(), Errc::NullCallable);
    QCOMPARE(loop.scheduleTimerAt(Clock::now(), Task{}).code(), Errc::NullCallable);
    Errc otherCode = Errc::Ok;
    std::thread([&] { otherCode = loop.scheduleTimer(0ns, Task{}).code(); }).join();
    QCOMPARE(otherCode, Errc::NullCallable);
    for (int i = 0; i < 3; ++i) {
        const auto r = loop.runOnce(0ns);
        QVERIFY(r.ok());
        QCOMPARE(r.value(), std::size_t(0));
    }
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::throwingTimerCallbackReportsToHook() {
    std::vector<CallbackKind> kinds;
    std::vector<std::string> messages;
    std::atomic<bool> thrownReleased{false};
    bool releasedBeforeHook = false;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr e, CallbackKind k) {
        kinds.push_back(k);
        releasedBeforeHook = thrownReleased; // "destroyed before the hook runs"
        try {
            std::rethrow_exception(e);
        } catch (const std::runtime_error& ex) {
            messages.emplace_back(ex.what());
        } catch (...) {
            messages.emplace_back("?");
        }
    };
    Loop loop(std::move(opt));
    const TimePoint t = Clock::now() + 2ms;
    const auto a = loop.scheduleTimerAt(
        t, [tok = makeToken(thrownReleased)] { throw std::runtime_error("timer boom"); });
    bool bRan = false;
    const auto b = loop.scheduleTimerAt(t, [&bRan] { bRan = true; }); // same deadline, after a
    const auto far = loop.scheduleTimer(1h, [] {});
    QVERIFY(a.ok());
    QVERIFY(b.ok());
    QVERIFY(far.ok());
    QVERIFY(runUntil(loop, [&] { return bRan; }));
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(kinds, std::vector<CallbackKind>{CallbackKind::Timer});
    QCOMPARE(messages, std::vector<std::string>{"timer boom"});
    QVERIFY(thrownReleased);
    QVERIFY(releasedBeforeHook);
    QCOMPARE(loop.pendingTimers(), std::size_t(1));
    QCOMPARE(loop.timerDeadline(a.value()).code(), Errc::NotFound);
    QVERIFY(!loop.cancelTimer(a.value()));
    QVERIFY(loop.timerDeadline(far.value()).ok());
    // Later timers still run.
    bool laterRan = false;
    QVERIFY(loop.scheduleTimer(0ns, [&laterRan] { laterRan = true; }).ok());
    QVERIFY(runUntil(loop, [&] { return laterRan; }));
    QCOMPARE(kinds.size(), std::size_t(1));
    QVERIFY(loop.cancelTimer(far.value()));
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void TestTimers::reentrantRunOnceFromTimer() {
    Loop loop;
    int depth = 0;
    bool bRan = false, bRanNested = false, aDone = false, nestedOk = true;
    QVERIFY(loop.scheduleTimer(0ns,
                               [&] {
                                   depth = 1;
                                   (void)loop.scheduleTimer(0ns, [&] {
                                       bRan = true;
                                       bRanNested = depth == 1;
                                   });
                                   const TimePoint end = Clock::now() + kHangGuard;
                                   while (!bRan && Clock::now() < end)
                                       if (!loop.runOnce(1ms).ok())
                                           nestedOk = false;
                                   depth = 0;
                                   aDone = true;
                               })
                .ok());
    QVERIFY(runUntil(loop, [&] { return aDone; }));
    QVERIFY(nestedOk);
    QVERIFY(bRan);
    QVERIFY(bRanNested);
    bool cRan = false;
    QVERIFY(loop.scheduleTimer(0ns, [&cRan] { cRan = true; }).ok());
    QVERIFY(runUntil(loop, [&] { return cRan; }));
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

// rescheduleTimer: the timer fires at its new deadline (earlier or later), once, with its own
// callback; among equal deadlines it counts as scheduled last; staged (not yet in the heap) and
// heap timers both work.
void TestTimers::rescheduleMovesTimerAndKeepsCallback() {
    Loop loop;
    std::vector<int> order;
    const TimePoint past = Clock::now() - 1s;
    auto a = loop.scheduleTimerAt(past, [&] { order.push_back(1); });
    auto b = loop.scheduleTimerAt(past, [&] { order.push_back(2); });
    auto c = loop.scheduleTimerAt(past + 1ms, [&] { order.push_back(3); });
    auto far = loop.scheduleTimer(1h, [&] { order.push_back(4); });
    QVERIFY(a.ok() && b.ok() && c.ok() && far.ok());
    QVERIFY(loop.rescheduleTimer(a.value(), past).ok()); // staged: same deadline, now after b
    QVERIFY(loop.rescheduleTimer(far.value(), past - 1ms).ok()); // from far future to first
    QCOMPARE(loop.timerDeadline(far.value()).value(), past - 1ms);
    (void)loop.pendingTimers();
    QVERIFY(loop.runOnce(Duration(0)).ok());
    QCOMPARE(order, (std::vector<int>{4, 2, 1, 3}));
    QCOMPARE(loop.pendingTimers(), std::size_t(0));

    // In the heap (the loop has looked at the top since): move one later and one earlier.
    order.clear();
    auto x = loop.scheduleTimerAt(past, [&] { order.push_back(1); });
    auto y = loop.scheduleTimer(1h, [&] { order.push_back(2); });
    auto z = loop.scheduleTimer(1h, [&] { order.push_back(3); });
    QVERIFY(loop.runOnce(Duration(0)).ok()); // x fires; y and z are now heap nodes
    QCOMPARE(order, std::vector<int>{1});
    QVERIFY(loop.rescheduleTimer(z.value(), past).ok());
    QVERIFY(loop.rescheduleTimer(y.value(), Clock::now() + 2h).ok());
    QVERIFY(loop.runOnce(Duration(0)).ok());
    QCOMPARE(order, (std::vector<int>{1, 3}));
    QCOMPARE(loop.pendingTimers(), std::size_t(1));
    QVERIFY(loop.cancelTimer(y.value()));
    (void)x;
}

void TestTimers::rescheduleRefusals() {
    Loop loop;
    const TimePoint soon = Clock::now() + 1h;
    QCOMPARE(loop.rescheduleTimer(TimerId{}, soon).code(), Errc::NotFound);
    QCOMPARE(loop.rescheduleTimer(TimerId{12345}, soon).code(), Errc::NotFound);
    auto fired = loop.scheduleTimer(Duration(0), [] {});
    auto cancelled = loop.scheduleTimer(1h, [] {});
    QVERIFY(loop.cancelTimer(cancelled.value()));
    std::this_thread::sleep_for(1ms);
    QVERIFY(loop.runOnce(Duration(0)).ok());
    QCOMPARE(loop.rescheduleTimer(fired.value(), soon).code(), Errc::NotFound);
    QCOMPARE(loop.rescheduleTimer(cancelled.value(), soon).code(), Errc::NotFound);
    QCOMPARE(loop.pendingTimers(), std::size_t(0)); // refusals scheduled nothing
    auto live = loop.scheduleTimer(1h, [] {});
    libloop::Status fromOther;
    std::thread t([&] { fromOther = loop.rescheduleTimer(live.value(), soon); });
    t.join();
    QCOMPARE(fromOther.code(), Errc::WrongThread);
    // A timer scheduled from another thread and not yet taken in by the loop is refused.
    libloop::Result<TimerId> remote = Errc::NotFound;
    std::thread r([&] { remote = loop.scheduleTimer(1h, [] {}); });
    r.join();
    QCOMPARE(loop.rescheduleTimer(remote.value(), soon).code(), Errc::NotFound);
    QVERIFY(loop.runOnce(Duration(0)).ok()); // taken in now
    QVERIFY(loop.rescheduleTimer(remote.value(), soon).ok());
}

void TestTimers::maxTimersIsExact() {
    // The cap is the configured number, not the slab's chunk size.
    LoopOptions o;
    o.maxTimers = 3;
    Loop loop(o);
    std::vector<TimerId> ids;
    for (int i = 0; i < 3; ++i) {
        const auto r = loop.scheduleTimer(std::chrono::hours(1), [] {});
        QVERIFY(r.ok());
        ids.push_back(r.value());
    }
    QCOMPARE(loop.scheduleTimer(std::chrono::hours(1), [] {}).code(), Errc::TooManyTimers);
    libloop::Result<libloop::TimerId> remote = libloop::Errc::Ok;
    std::thread([&] { remote = loop.scheduleTimer(std::chrono::hours(1), [] {}); }).join();
    QCOMPARE(remote.code(), Errc::TooManyTimers);
    QCOMPARE(loop.pendingTimers(), std::size_t(3));
    QVERIFY(loop.cancelTimer(ids[1]));
    QVERIFY(loop.scheduleTimer(std::chrono::hours(1), [] {}).ok()); // a slot came back
    QCOMPARE(loop.scheduleTimer(std::chrono::hours(1), [] {}).code(), Errc::TooManyTimers);
}

void TestTimers::runningTimerDoesNotCountAgainstMaxTimers() {
    // Found by fuzz_js_timers: the running timer's slot was still held while its callback ran,
    // so at the cap a timer could not schedule its successor (and an interval died).
    libloop::ManualClock manual;
    LoopOptions o;
    o.maxTimers = 1;
    o.clock = &manual;
    Loop loop(o);
    int generations = 0;
    std::function<void()> next = [&] {
        if (++generations < 5)
            QVERIFY(loop.scheduleTimer(std::chrono::milliseconds(1), [&] { next(); }).ok());
    };
    QVERIFY(loop.scheduleTimer(std::chrono::milliseconds(1), [&] { next(); }).ok());
    for (int i = 0; i < 10 && generations < 5; ++i)
        QVERIFY(loop.runOnce(kForever).ok());
    QCOMPARE(generations, 5);
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

// The loop thread keeps freed slots for itself (no atomics on its own path). Slots it cached
// before another thread grew the storage to its final size must come back for other threads:
// at the latest after the loop's next iteration (found by review: they stayed cached until the
// loop next freed a slot, so another thread was refused with half the cap free).
void TestTimers::slotsCachedByTheLoopReturnAtTheCap() {
    LoopOptions o;
    o.maxTimers = 8192; // two chunks of slots
    Loop loop(o);
    std::vector<TimerId> ids;
    for (int i = 0; i < 4096; ++i) { // the loop thread fills the first chunk...
        const auto r = loop.scheduleTimer(std::chrono::hours(1), [] {});
        QVERIFY(r.ok());
        ids.push_back(r.value());
    }
    for (const TimerId id : ids) // ...and frees it: its slots are cached by the loop thread
        QVERIFY(loop.cancelTimer(id));
    int accepted = 0;
    std::thread([&] { // another thread takes the second chunk (the last one)
        for (int i = 0; i < 4096; ++i)
            accepted += loop.scheduleTimer(std::chrono::hours(1), [] {}).ok();
    })
        .join();
    QCOMPARE(accepted, 4096);
    QVERIFY(loop.runOnce(Duration(0)).ok()); // the loop's next iteration hands the cache back
    std::thread([&] {
        for (int i = 0; i < 4096; ++i)
            accepted += loop.scheduleTimer(std::chrono::hours(1), [] {}).ok();
    }).join();
    QCOMPARE(accepted, 8192);
    QCOMPARE(loop.pendingTimers(), std::size_t(8192));
    libloop::Result<TimerId> over = Errc::Ok;
    std::thread([&] { over = loop.scheduleTimer(std::chrono::hours(1), [] {}); }).join();
    QCOMPARE(over.code(), Errc::TooManyTimers); // and the cap is still exact
    QCOMPARE(loop.scheduleTimer(std::chrono::hours(1), [] {}).code(), Errc::TooManyTimers);
}

QTEST_APPLESS_MAIN(TestTimers)
#include "tst_timers.moc"
