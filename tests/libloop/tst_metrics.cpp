// Tests for Loop::snapshot() (metrics.h, loop.h): gauges, counters, latency summaries, the
// max-since-previous-snapshot reset, concurrent snapshots, state / fast-path fields and rates.
//
// No assertion depends on how long anything takes: conditions are awaited by driving runOnce()
// under a generous deadline that only guards against hangs.
#include <libloop/loop.h>

#include <QTest>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include "testsupport.h"

using namespace std::chrono_literals;
using namespace testsupport;
using libloop::CallbackKind;
using libloop::Clock;
using libloop::Duration;
using libloop::Errc;
using libloop::FastPathMode;
using libloop::kForever;
using libloop::LatencySummary;
using libloop::Loop;
using libloop::LoopOptions;
using libloop::LoopState;
using libloop::MetricsSnapshot;
using libloop::Status;
using libloop::TimePoint;
using libloop::TimerId;
namespace FdEvent = libloop::FdEvent;

namespace {

// Percentiles ordered up to max; the exact mean may exceed the bucketed max by the histogram's
// relative error (below 1%).
bool percentilesOrdered(const LatencySummary& l) {
    return l.p50 <= l.p90 && l.p90 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max && l.mean >= 0 &&
           l.mean <= double(l.max) * 1.01 + 1;
}

QString describe(const LatencySummary& l) {
    return QString("count %1 p50 %2 p90 %3 p95 %4 p99 %5 max %6 mean %7")
        .arg(l.count)
        .arg(l.p50)
        .arg(l.p90)
        .arg(l.p95)
        .arg(l.p99)
        .arg(l.max)
        .arg(l.mean);
}

// Submits `external` tasks with submit(), `internal` with submitInternal() and schedules
// `timers` delay-0 timers; each task also queues one microtask. Runs until all ran.
struct Workload {
    int tasksRan = 0, microtasksRan = 0, timersRan = 0;
    bool run(Loop& loop, int external, int internal, int timers) {
        bool ok = true;
        for (int i = 0; i < external; ++i)
            ok = ok && loop.submit([this, &loop] {
                               ++tasksRan;
                               (void)loop.queueMicrotask([this] { ++microtasksRan; });
                           })
                           .ok();
        for (int i = 0; i < internal; ++i)
            ok = ok && loop.submitInternal([this] { ++tasksRan; }).ok();
        for (int i = 0; i < timers; ++i)
            ok = ok && loop.scheduleTimer(0ns, [this] { ++timersRan; }).ok();
        return ok && pollUntil(loop, [&] {
                   return tasksRan == external + internal && microtasksRan == external &&
                          timersRan == timers;
               });
    }
};

} // namespace

class TestMetrics : public QObject {
    Q_OBJECT

private slots:
    void timerHeapSizeTracksPendingTimers();
    void microtaskRingCapacityIsRoundedUp_data();
    void microtaskRingCapacityIsRoundedUp();
    void registeredFdsGauge();
    void countersMatchScriptedWorkload();
    void callbackErrorsCountsThrowingCallbacks();
    void iterationsIncreaseByOnePerRunOnce();
    void microtaskBudgetHitsCount();
    void latencyWithMetricsOn();
    void latencyIsSampledByDefault();
    void latencyStaysZeroWithMetricsOff();
    void externalQueueGaugeAndMaxReset();
    void externalQueueMaxSurvivesIntermediateSnapshot();
    void concurrentSnapshotsAreMonotonic();
    void stateField();
    void fastPathModeField();
    void utilisationInRange();
    void tasksPerSecondAfterWork();
    void takenAtIsMonotonicClock();
};

void TestMetrics::timerHeapSizeTracksPendingTimers() {
    Loop loop;
    constexpr int N = 40, K = 15;
    std::vector<TimerId> ids;
    for (int i = 0; i < N; ++i) {
        const auto r = loop.scheduleTimer(1h, [] {});
        QVERIFY(r.ok());
        ids.push_back(r.value());
    }
    QVERIFY(loop.runOnce(0ns).ok());
    auto s = loop.snapshot();
    QCOMPARE(s.timerHeapSize, std::uint64_t(N));
    QCOMPARE(s.timerHeapMax, std::uint64_t(N)); // first snapshot: max since start
    QCOMPARE(loop.pendingTimers(), std::size_t(N));

    for (int i = 0; i < K; ++i)
        QVERIFY(loop.cancelTimer(ids[i]));
    QVERIFY(loop.runOnce(0ns).ok());
    s = loop.snapshot();
    QCOMPARE(s.timerHeapSize, std::uint64_t(N - K));
    QVERIFY(s.timerHeapMax >= s.timerHeapSize);
    QCOMPARE(loop.pendingTimers(), std::size_t(N - K));

    // Timers from another thread are counted once the loop thread inserted them.
    std::atomic<int> failures{0};
    std::thread([&] {
        for (int i = 0; i < 10; ++i)
            if (!loop.scheduleTimer(1h, [] {}).ok())
                ++failures;
    }).join();
    QCOMPARE(failures.load(), 0);
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.snapshot().timerHeapSize, std::uint64_t(N - K + 10));
    QCOMPARE(loop.pendingTimers(), std::size_t(N - K + 10));
}

void TestMetrics::microtaskRingCapacityIsRoundedUp_data() {
    QTest::addColumn<uint>("option");
    QTest::addColumn<quint64>("expected");
    QTest::newRow("0") << 0u << quint64(2);
    QTest::newRow("1") << 1u << quint64(2);
    QTest::newRow("2") << 2u << quint64(2);
    QTest::newRow("3") << 3u << quint64(4);
    QTest::newRow("100") << 100u << quint64(128);
    QTest::newRow("1024") << 1024u << quint64(1024);
    QTest::newRow("1025") << 1025u << quint64(2048);
    QTest::newRow("default 4096") << 4096u << quint64(4096);
}

void TestMetrics::microtaskRingCapacityIsRoundedUp() {
    QFETCH(uint, option);
    QFETCH(quint64, expected);
    LoopOptions opt;
    opt.microtaskRingCapacity = option;
    Loop loop(std::move(opt));
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(quint64(loop.snapshot().microtaskRingCapacity), expected);
}

void TestMetrics::registeredFdsGauge() {
    SocketPair p1, p2;
    QVERIFY(p1.ok());
    QVERIFY(p2.ok());
    Loop loop;
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.snapshot().registeredFds, std::uint64_t(0));
    QVERIFY(loop.registerFd(p1.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    QVERIFY(loop.registerFd(p2.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.snapshot().registeredFds, std::uint64_t(2));
    QVERIFY(loop.unregisterFd(p1.a).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.snapshot().registeredFds, std::uint64_t(1));
    QVERIFY(loop.unregisterFd(p2.a).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.snapshot().registeredFds, std::uint64_t(0));
}

void TestMetrics::countersMatchScriptedWorkload() {
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    QVERIFY(loop.runOnce(0ns).ok());
    const MetricsSnapshot s0 = loop.snapshot();

    int tasks = 0, micro = 0, timers = 0, fdCalls = 0;
    for (int i = 0; i < 7; ++i)
        QVERIFY(loop.submit([&, i] {
                        ++tasks;
                        if (i < 2)
                            (void)loop.queueMicrotask([&micro] { ++micro; });
                    })
                    .ok());
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.submitInternal([&tasks] { ++tasks; }).ok());
    for (int i = 0; i < 5; ++i)
        QVERIFY(loop.queueMicrotask([&micro] { ++micro; }).ok());
    for (int i = 0; i < 4; ++i)
        QVERIFY(loop.scheduleTimer(0ns, [&timers] { ++timers; }).ok());
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned) {
                                ++fdCalls;
                                drain(fd);
                                (void)loop.unregisterFd(fd);
                            })
                .ok());
    QVERIFY(writeByte(sp.b));

    std::size_t started = 0;
    QVERIFY(pollUntil(
        loop, [&] { return tasks == 10 && micro == 7 && timers == 4 && fdCalls == 1; }, &started));
    for (int i = 0; i < 3; ++i) {
        const auto r = loop.runOnce(0ns);
        QVERIFY(r.ok());
        started += r.value();
    }
    const MetricsSnapshot s = loop.snapshot();
    QCOMPARE(s.tasksRun - s0.tasksRun, std::uint64_t(10));
    QCOMPARE(s.microtasksRun - s0.microtasksRun, std::uint64_t(7));
    QCOMPARE(s.timersRun - s0.timersRun, std::uint64_t(4));
    QCOMPARE(s.fdCallbacksRun - s0.fdCallbacksRun, std::uint64_t(1));
    QCOMPARE(s.callbackErrors - s0.callbackErrors, std::uint64_t(0));
    // runOnce reports the callbacks it started: the same 22.
    QCOMPARE(started, std::size_t(22));
}

void TestMetrics::callbackErrorsCountsThrowingCallbacks() {
    SocketPair sp;
    QVERIFY(sp.ok());
    std::multiset<CallbackKind> kinds;
    LoopOptions opt;
    opt.errorHook = [&kinds](std::exception_ptr, CallbackKind k) { kinds.insert(k); };
    Loop loop(std::move(opt));
    QVERIFY(loop.runOnce(0ns).ok());
    const std::uint64_t e0 = loop.snapshot().callbackErrors;
    int fdCalls = 0;
    QVERIFY(loop.submit([] { throw std::runtime_error("task"); }).ok());
    QVERIFY(loop.queueMicrotask([] { throw std::runtime_error("microtask"); }).ok());
    QVERIFY(loop.scheduleTimer(0ns, [] { throw std::runtime_error("timer"); }).ok());
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned) {
                                ++fdCalls;
                                drain(fd);
                                (void)loop.unregisterFd(fd);
                                throw std::runtime_error("fd");
                            })
                .ok());
    QVERIFY(writeByte(sp.b));
    QVERIFY(runUntil(loop, [&] { return kinds.size() >= 4; }));
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(fdCalls, 1);
    QCOMPARE(kinds, (std::multiset<CallbackKind>{CallbackKind::Task, CallbackKind::Microtask,
                                                 CallbackKind::Timer, CallbackKind::Fd}));
    QCOMPARE(loop.snapshot().callbackErrors - e0, std::uint64_t(4));
}

void TestMetrics::iterationsIncreaseByOnePerRunOnce() {
    Loop loop;
    QVERIFY(loop.runOnce(0ns).ok());
    const std::uint64_t i0 = loop.snapshot().iterations;
    for (int i = 0; i < 10; ++i)
        QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.snapshot().iterations, i0 + 10);
    // Iterations that run work count the same.
    for (int i = 0; i < 5; ++i) {
        QVERIFY(loop.submit([] {}).ok());
        const auto r = loop.runOnce(0ns);
        QVERIFY(r.ok());
        QCOMPARE(r.value(), std::size_t(1));
    }
    QCOMPARE(loop.snapshot().iterations, i0 + 15);
}

void TestMetrics::microtaskBudgetHitsCount() {
    LoopOptions opt;
    opt.microtaskBudget = 10;
    Loop loop(std::move(opt));
    QVERIFY(loop.runOnce(0ns).ok());
    const MetricsSnapshot s0 = loop.snapshot();
    int ran = 0;
    QVERIFY(loop.submit([&] {
                    for (int i = 0; i < 25; ++i)
                        (void)loop.queueMicrotask([&ran] { ++ran; });
                })
                .ok());
    QVERIFY(pollUntil(loop, [&] { return ran == 25; }));
    QVERIFY(loop.runOnce(0ns).ok());
    const MetricsSnapshot s = loop.snapshot();
    QCOMPARE(s.microtasksRun - s0.microtasksRun, std::uint64_t(25));
    // Checkpoints of 10 (15 left: cut), 10 (5 left: cut), 5 (emptied the queue).
    QCOMPARE(s.microtaskBudgetHits - s0.microtaskBudgetHits, std::uint64_t(2));
}

void TestMetrics::latencyWithMetricsOn() {
    LoopOptions opt;
    opt.latencySampleEvery = 1; // every task and timer is a sample
    Loop loop(std::move(opt));
    Workload w;
    QVERIFY(w.run(loop, 100, 20, 20));
    QVERIFY(loop.runOnce(0ns).ok());
    const MetricsSnapshot s = loop.snapshot();
    QCOMPARE(s.tasksRun, std::uint64_t(120));
    QCOMPARE(s.taskLatency.count, s.tasksRun);
    QCOMPARE(s.timerLateness.count, std::uint64_t(20));
    QVERIFY2(percentilesOrdered(s.taskLatency), qPrintable(describe(s.taskLatency)));
    QVERIFY2(percentilesOrdered(s.timerLateness), qPrintable(describe(s.timerLateness)));
    QVERIFY2(s.taskLatency.max > 0, qPrintable(describe(s.taskLatency)));
}

void TestMetrics::latencyIsSampledByDefault() {
    // Default: one task in LoopOptions::latencySampleEvery (16) is a sample.
    QCOMPARE(LoopOptions{}.latencySampleEvery, 16u);
    Loop loop;
    Workload w;
    QVERIFY(w.run(loop, 1600, 0, 0));
    QVERIFY(loop.runOnce(0ns).ok());
    const MetricsSnapshot s = loop.snapshot();
    QCOMPARE(s.tasksRun, std::uint64_t(1600));
    QVERIFY2(s.taskLatency.count > 0 && s.taskLatency.count < s.tasksRun,
             qPrintable(describe(s.taskLatency)));
    QVERIFY2(percentilesOrdered(s.taskLatency), qPrintable(describe(s.taskLatency)));
}

void TestMetrics::latencyStaysZeroWithMetricsOff() {
    LoopOptions opt;
    opt.metrics = false;
    opt.latencySampleEvery = 1;
    Loop loop(std::move(opt));
    Workload w;
    QVERIFY(w.run(loop, 100, 20, 20));
    QVERIFY(loop.runOnce(0ns).ok());
    const MetricsSnapshot s = loop.snapshot();
    QCOMPARE(s.taskLatency.count, std::uint64_t(0));
    QCOMPARE(s.timerLateness.count, std::uint64_t(0));
    // Counters are always kept.
    QCOMPARE(s.tasksRun, std::uint64_t(120));
    QCOMPARE(s.microtasksRun, std::uint64_t(100));
    QCOMPARE(s.timersRun, std::uint64_t(20));
    QVERIFY(s.iterations > 0);
}

void TestMetrics::externalQueueGaugeAndMaxReset() {
    Loop loop; // never iterated, no snapshot taken yet
    int ran = 0;
    std::atomic<int> failures{0};
    std::thread([&] {
        for (int i = 0; i < 100; ++i)
            if (!loop.submit([&ran] { ++ran; }).ok())
                ++failures;
    }).join();
    QCOMPARE(failures.load(), 0);
    QVERIFY(pollUntil(loop, [&] { return ran == 100; }));
    const MetricsSnapshot s1 = loop.snapshot();
    QCOMPARE(s1.externalQueue, std::uint64_t(0));
    QVERIFY2(s1.externalQueueMax >= 100, qPrintable(QString::number(s1.externalQueueMax)));
    const MetricsSnapshot s2 = loop.snapshot();
    QCOMPARE(s2.externalQueue, std::uint64_t(0));
    QCOMPARE(s2.externalQueueMax, std::uint64_t(0)); // reset by s1, queue stayed empty
}

void TestMetrics::externalQueueMaxSurvivesIntermediateSnapshot() {
    // The producer takes a snapshot while its 100 tasks are queued (that snapshot resets the
    // max). The max since then is still 100: the queue held 100 at the start of the interval.
    Loop loop;
    int ran = 0;
    std::atomic<int> failures{0};
    std::uint64_t seenQueue = 0, seenMax = 0;
    std::thread([&] {
        for (int i = 0; i < 100; ++i)
            if (!loop.submit([&ran] { ++ran; }).ok())
                ++failures;
        const MetricsSnapshot s = loop.snapshot();
        seenQueue = s.externalQueue;
        seenMax = s.externalQueueMax;
    }).join();
    QCOMPARE(failures.load(), 0);
    QCOMPARE(seenQueue, std::uint64_t(100));
    QVERIFY(seenMax >= 100);
    QVERIFY(pollUntil(loop, [&] { return ran == 100; }));
    const MetricsSnapshot s1 = loop.snapshot();
    QCOMPARE(s1.externalQueue, std::uint64_t(0));
    QVERIFY2(s1.externalQueueMax >= 100, qPrintable(QString::number(s1.externalQueueMax)));
    const MetricsSnapshot s2 = loop.snapshot();
    QCOMPARE(s2.externalQueueMax, std::uint64_t(0));
}

void TestMetrics::concurrentSnapshotsAreMonotonic() {
    Loop loop;
    // A busy loop: a self-resubmitting task that also queues microtasks and timers.
    struct Busy {
        Loop* loop;
        int* n;
        void operator()() const {
            ++*n;
            (void)loop->queueMicrotask([] {});
            if (*n % 8 == 0)
                (void)loop->scheduleTimer(0ns, [] {});
            (void)loop->submitInternal(Busy{*this});
        }
    };
    int n = 0;
    QVERIFY(loop.submitInternal(Busy{&loop, &n}).ok());

    std::atomic<bool> done{false};
    std::atomic<int> violations{0}, outOfRange{0};
    std::atomic<int> taken{0};
    QString firstViolation, firstOutOfRange; // written by the snapshot thread, read after join
    std::thread snapshotter([&] {
        MetricsSnapshot prev = loop.snapshot();
        auto check = [&](bool ok, const char* what) {
            if (!ok && violations++ == 0)
                firstViolation = QString::fromLatin1(what);
        };
        for (int i = 0; i < 1000; ++i) {
            const MetricsSnapshot s = loop.snapshot();
            check(s.takenAtNs >= prev.takenAtNs, "takenAtNs");
            check(s.iterations >= prev.iterations, "iterations");
            check(s.tasksRun >= prev.tasksRun, "tasksRun");
            check(s.microtasksRun >= prev.microtasksRun, "microtasksRun");
            check(s.timersRun >= prev.timersRun, "timersRun");
            check(s.fdCallbacksRun >= prev.fdCallbacksRun, "fdCallbacksRun");
            check(s.callbackErrors >= prev.callbackErrors, "callbackErrors");
            check(s.microtaskBudgetHits >= prev.microtaskBudgetHits, "microtaskBudgetHits");
            check(s.wakeSyscalls >= prev.wakeSyscalls, "wakeSyscalls");
            check(s.busyNs >= prev.busyNs, "busyNs");
            check(s.idleNs >= prev.idleNs, "idleNs");
            check(s.fastPathTransitions >= prev.fastPathTransitions, "fastPathTransitions");
            check(s.taskLatency.count >= prev.taskLatency.count, "taskLatency.count");
            check(s.timerLateness.count >= prev.timerLateness.count, "timerLateness.count");
            // (A snapshot taken while the loop records is not promised to be a consistent cut,
            // so the latency summaries are checked only in the quiescent tests.)
            if (!(s.utilisation >= 0.0 && s.utilisation <= 1.0)) {
                if (outOfRange++ == 0)
                    firstOutOfRange = QString("utilisation %1").arg(s.utilisation);
            }
            prev = s;
            ++taken;
        }
        done = true;
    });
    const TimePoint end = Clock::now() + 60s;
    int runErrors = 0;
    while (!done && Clock::now() < end)
        if (!loop.runOnce(0ns).ok())
            ++runErrors;
    snapshotter.join();
    QCOMPARE(runErrors, 0);
    QCOMPARE(taken.load(), 1000);
    QVERIFY2(
        violations.load() == 0,
        qPrintable(
            QString("%1 regressions, first in %2").arg(violations.load()).arg(firstViolation)));
    QVERIFY2(outOfRange.load() == 0, qPrintable(QString("%1 snapshots out of range, first: %2")
                                                    .arg(outOfRange.load())
                                                    .arg(firstOutOfRange)));
    QVERIFY(n > 0);
    (void)loop.close(); // stop the self-resubmitting chain
}

void TestMetrics::stateField() {
    Loop loop;
    QCOMPARE(loop.snapshot().state, LoopState::Idle);
    QCOMPARE(loop.state(), LoopState::Idle);

    LoopState inTask = LoopState::Closed, inTaskSnap = LoopState::Closed;
    QVERIFY(loop.submit([&] {
                    inTask = loop.state();
                    inTaskSnap = loop.snapshot().state;
                })
                .ok());
    QVERIFY(pollUntil(loop, [&] { return inTask != LoopState::Closed; }));
    QCOMPARE(inTask, LoopState::Running);
    QCOMPARE(inTaskSnap, LoopState::Running);
    QCOMPARE(loop.snapshot().state, LoopState::Idle);

    // Sleeping, as seen from another thread; then wake it with a task.
    std::atomic<bool> sawSleeping{false}, quit{false};
    bool woke = false;
    std::atomic<int> failures{0};
    std::thread observer([&] {
        const TimePoint end = Clock::now() + kHangGuard;
        while (!quit && Clock::now() < end) {
            if (loop.snapshot().state == LoopState::Sleeping) {
                sawSleeping = true;
                break;
            }
            std::this_thread::yield();
        }
        if (!loop.submit([&woke] { woke = true; }).ok())
            ++failures;
    });
    Watchdog wd(loop);
    for (int i = 0; i < 1000 && !woke && !wd.fired(); ++i)
        (void)loop.runOnce(kForever);
    quit = true;
    observer.join();
    wd.dismiss();
    QVERIFY(!wd.fired());
    QCOMPARE(failures.load(), 0);
    QVERIFY(woke);
    QVERIFY(sawSleeping);
    QCOMPARE(loop.snapshot().state, LoopState::Idle);

    // ShuttingDown while the drain runs accepted work; Closed afterwards.
    LoopState inDrain = LoopState::Idle;
    QVERIFY(loop.submit([&] { inDrain = loop.snapshot().state; }).ok());
    const auto report = loop.shutdown();
    QVERIFY(report.ok());
    QCOMPARE(inDrain, LoopState::ShuttingDown);
    QCOMPARE(loop.snapshot().state, LoopState::Closed);
    QCOMPARE(loop.state(), LoopState::Closed);
}

void TestMetrics::fastPathModeField() {
    LoopOptions opt;
    opt.fastPath = FastPathMode::Disabled;
    Loop loop(std::move(opt));
    QCOMPARE(loop.snapshot().fastPathMode, FastPathMode::Disabled);
    QVERIFY(loop.setFastPathMode(FastPathMode::Forced).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.snapshot().fastPathMode, FastPathMode::Forced);
    QVERIFY(loop.setFastPathMode(FastPathMode::Auto).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    FastPathMode fromOther = FastPathMode::Disabled;
    std::thread([&] { fromOther = loop.snapshot().fastPathMode; }).join();
    QCOMPARE(fromOther, FastPathMode::Auto);
    QCOMPARE(loop.snapshot().fastPathMode, FastPathMode::Auto);
}

void TestMetrics::utilisationInRange() {
    Loop loop;
    Workload w;
    QVERIFY(w.run(loop, 500, 0, 50));
    for (int i = 0; i < 5; ++i)
        QVERIFY(loop.runOnce(1ms).ok()); // idle waits
    QVERIFY(w.run(loop, 500, 0, 50));
    const MetricsSnapshot s = loop.snapshot();
    QVERIFY2(s.utilisation >= 0.0 && s.utilisation <= 1.0,
             qPrintable(QString::number(s.utilisation)));
    QVERIFY(s.windowNs <=
            std::uint64_t(std::chrono::nanoseconds(LoopOptions{}.rateWindow).count()));
    QVERIFY(s.busyNs > 0);
    QVERIFY(s.idleNs > 0);
}

void TestMetrics::tasksPerSecondAfterWork() {
    LoopOptions opt;
    opt.rateWindow = 60s; // the work surely falls inside the window, however slow the machine
    Loop loop(std::move(opt));
    QCOMPARE(loop.snapshot().tasksPerSecond, 0.0);
    Workload w;
    QVERIFY(w.run(loop, 1000, 0, 0));
    QVERIFY(loop.runOnce(0ns).ok());
    const MetricsSnapshot s = loop.snapshot();
    QVERIFY2(s.tasksPerSecond > 0, qPrintable(QString::number(s.tasksPerSecond)));
    QVERIFY(s.windowNs > 0);
}

void TestMetrics::takenAtIsMonotonicClock() {
    Loop loop;
    const auto ns = [] {
        return std::uint64_t(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
                .count());
    };
    const std::uint64_t before = ns();
    const MetricsSnapshot s = loop.snapshot();
    const std::uint64_t after = ns();
    QVERIFY(s.takenAtNs >= before);
    QVERIFY(s.takenAtNs <= after);
}

QTEST_APPLESS_MAIN(TestMetrics)
#include "tst_metrics.moc"
