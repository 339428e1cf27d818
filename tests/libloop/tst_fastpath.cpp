// Tests for the fast path of libloop::Loop (loop.h, metrics.h): FastPathMode rules, conflicts
// with registered fds, fastPathActive / fastPathTransitions in snapshots, cross-thread wake-ups in
// the futex fast path and in epoll, wake-up coalescing, and a mode-change hammer that checks no
// accepted work is ever stranded.
//
// No assertion depends on how long anything takes: conditions are awaited by driving runOnce()
// under a generous deadline that only guards against hangs.
#include <libloop/loop.h>

#include <QTest>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include "testsupport.h"

using namespace std::chrono_literals;
using namespace testsupport;
using libloop::Clock;
using libloop::Duration;
using libloop::Errc;
using libloop::FastPathMode;
using libloop::kForever;
using libloop::Loop;
using libloop::LoopOptions;
using libloop::LoopState;
using libloop::Status;
using libloop::TimePoint;
namespace FdEvent = libloop::FdEvent;

namespace {

// An iteration that finds nothing to do and therefore waits (briefly).
void idleIteration(Loop& loop) {
    (void)loop.runOnce(1ms);
}

} // namespace

class TestFastPath : public QObject {
    Q_OBJECT

private slots:
    void defaultModeIsAuto();
    void initialModeFromOptions();
    void forcedRefusedWhileFdRegistered();
    void registerFdRefusedWhileForced();
    void fastPathActiveWithoutFds();
    void fastPathInactiveWithFd();
    void fastPathInactiveWhenDisabled();
    void forcedUsesFastPath();
    void transitionsCountChanges();
    void crossThreadWakeInFastPath();
    void crossThreadWakeInEpoll();
    void crossThreadWakeWhenDisabled();
    void wakeSyscallsCoalesceWhileBusy_data();
    void wakeSyscallsCoalesceWhileBusy();
    void modeChangeHammer();

private:
    void runWakeRounds(Loop& loop, int rounds);
};

void TestFastPath::defaultModeIsAuto() {
    Loop loop;
    QCOMPARE(loop.fastPathMode(), FastPathMode::Auto);
    QCOMPARE(loop.snapshot().fastPathMode, FastPathMode::Auto);
    QCOMPARE(LoopOptions{}.fastPath, FastPathMode::Auto);
}

void TestFastPath::initialModeFromOptions() {
    for (FastPathMode m : {FastPathMode::Disabled, FastPathMode::Forced, FastPathMode::Auto}) {
        LoopOptions opt;
        opt.fastPath = m;
        Loop loop(std::move(opt));
        QCOMPARE(loop.fastPathMode(), m);
        QVERIFY(loop.runOnce(0ns).ok());
        QCOMPARE(loop.snapshot().fastPathMode, m);
    }
}

void TestFastPath::forcedRefusedWhileFdRegistered() {
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    QCOMPARE(loop.setFastPathMode(FastPathMode::Forced).code(), Errc::FastPathConflict);
    QCOMPARE(loop.fastPathMode(), FastPathMode::Auto);
    QVERIFY(loop.setFastPathMode(FastPathMode::Disabled).ok());
    QCOMPARE(loop.setFastPathMode(FastPathMode::Forced).code(), Errc::FastPathConflict);
    QCOMPARE(loop.fastPathMode(), FastPathMode::Disabled);
    // [any thread]: same answer from another thread.
    Errc otherCode = Errc::Ok;
    std::thread([&] { otherCode = loop.setFastPathMode(FastPathMode::Forced).code(); }).join();
    QCOMPARE(otherCode, Errc::FastPathConflict);
    QCOMPARE(loop.fastPathMode(), FastPathMode::Disabled);
    // Once the fd is gone, Forced is accepted.
    QVERIFY(loop.unregisterFd(sp.a).ok());
    QVERIFY(loop.setFastPathMode(FastPathMode::Forced).ok());
    QCOMPARE(loop.fastPathMode(), FastPathMode::Forced);
}

void TestFastPath::registerFdRefusedWhileForced() {
    SocketPair sp;
    QVERIFY(sp.ok());
    {
        Loop loop;
        QVERIFY(loop.setFastPathMode(FastPathMode::Forced).ok());
        std::atomic<bool> released{false};
        QCOMPARE(
            loop.registerFd(sp.a, FdEvent::Readable, [tok = makeToken(released)](int, unsigned) {})
                .code(),
            Errc::FastPathConflict);
        QVERIFY(released);
        QCOMPARE(loop.registeredFds(), std::size_t(0));
        QCOMPARE(loop.fastPathMode(), FastPathMode::Forced);
        // Leaving Forced makes registration possible again.
        QVERIFY(loop.setFastPathMode(FastPathMode::Auto).ok());
        QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
        QVERIFY(loop.unregisterFd(sp.a).ok());
    }
    {
        LoopOptions opt;
        opt.fastPath = FastPathMode::Forced;
        Loop loop(std::move(opt));
        QCOMPARE(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).code(),
                 Errc::FastPathConflict);
        QCOMPARE(loop.registeredFds(), std::size_t(0));
    }
}

void TestFastPath::fastPathActiveWithoutFds() {
    Loop loop;
    idleIteration(loop);
    const auto s = loop.snapshot();
    QVERIFY(s.fastPathActive);
    QCOMPARE(s.fastPathMode, FastPathMode::Auto);
}

void TestFastPath::fastPathInactiveWithFd() {
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    idleIteration(loop);
    QVERIFY(!loop.snapshot().fastPathActive);
    QVERIFY(loop.unregisterFd(sp.a).ok());
    idleIteration(loop);
    QVERIFY(loop.snapshot().fastPathActive);
}

void TestFastPath::fastPathInactiveWhenDisabled() {
    Loop loop;
    QVERIFY(loop.setFastPathMode(FastPathMode::Disabled).ok());
    idleIteration(loop);
    QVERIFY(!loop.snapshot().fastPathActive);
}

void TestFastPath::forcedUsesFastPath() {
    Loop loop;
    QVERIFY(loop.setFastPathMode(FastPathMode::Forced).ok());
    idleIteration(loop);
    QVERIFY(loop.snapshot().fastPathActive);
}

void TestFastPath::transitionsCountChanges() {
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    idleIteration(loop);
    auto s = loop.snapshot();
    QVERIFY(s.fastPathActive);
    const std::uint64_t t0 = s.fastPathTransitions;

    idleIteration(loop);
    idleIteration(loop);
    QCOMPARE(loop.snapshot().fastPathTransitions, t0); // no change, no transition

    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    idleIteration(loop);
    s = loop.snapshot();
    QVERIFY(!s.fastPathActive);
    QCOMPARE(s.fastPathTransitions, t0 + 1);
    idleIteration(loop);
    QCOMPARE(loop.snapshot().fastPathTransitions, t0 + 1);

    QVERIFY(loop.unregisterFd(sp.a).ok());
    idleIteration(loop);
    s = loop.snapshot();
    QVERIFY(s.fastPathActive);
    QCOMPARE(s.fastPathTransitions, t0 + 2);

    QVERIFY(loop.setFastPathMode(FastPathMode::Disabled).ok());
    idleIteration(loop);
    s = loop.snapshot();
    QVERIFY(!s.fastPathActive);
    QCOMPARE(s.fastPathTransitions, t0 + 3);

    QVERIFY(loop.setFastPathMode(FastPathMode::Forced).ok());
    idleIteration(loop);
    s = loop.snapshot();
    QVERIFY(s.fastPathActive);
    QCOMPARE(s.fastPathTransitions, t0 + 4);

    // Forced -> Auto without fds: still the fast path, no transition.
    QVERIFY(loop.setFastPathMode(FastPathMode::Auto).ok());
    idleIteration(loop);
    s = loop.snapshot();
    QVERIFY(s.fastPathActive);
    QCOMPARE(s.fastPathTransitions, t0 + 4);
}

// Rounds of: the loop thread sleeps in runOnce(kForever); another thread waits until the loop is
// observed Sleeping and then submits a task / queues a microtask / schedules a delay-0 timer,
// which must wake the loop and run.
void TestFastPath::runWakeRounds(Loop& loop, int rounds) {
    std::vector<uint8_t> ran(rounds, 0); // loop thread only
    std::atomic<int> round{-1};
    std::atomic<bool> quit{false};
    std::atomic<int> failures{0};
    std::atomic<int> sawSleeping{0};
    const std::uint64_t wakesBefore = loop.snapshot().wakeSyscalls;
    std::thread producer([&] {
        bool sleepingObservable = true;
        for (int r = 0; r < rounds; ++r) {
            while (round.load() < r && !quit)
                std::this_thread::yield();
            if (quit)
                return;
            const TimePoint end = Clock::now() + 5s;
            bool slept = false;
            while (sleepingObservable && !quit) {
                if (loop.state() == LoopState::Sleeping) {
                    slept = true;
                    break;
                }
                if (Clock::now() > end) {
                    sleepingObservable = false;
                    break;
                }
                std::this_thread::yield();
            }
            if (slept) {
                ++sawSleeping;
                std::this_thread::sleep_for(1ms); // let it sink into the wait (not asserted)
            }
            Status s;
            switch (r % 3) {
            case 0:
                s = loop.submit([&ran, r] { ran[r] = 1; });
                break;
            case 1:
                s = loop.queueMicrotask([&ran, r] { ran[r] = 1; });
                break;
            default:
                s = loop.scheduleTimer(0ns, [&ran, r] { ran[r] = 1; }).status();
                break;
            }
            if (!s.ok())
                ++failures;
        }
    });
    Watchdog wd(loop);
    bool allRan = true;
    int failedRound = -1;
    for (int r = 0; r < rounds && allRan; ++r) {
        round = r;
        for (int i = 0; i < 1000 && !ran[r] && !wd.fired(); ++i)
            (void)loop.runOnce(kForever);
        if (!ran[r]) {
            allRan = false;
            failedRound = r;
        }
    }
    quit = true;
    producer.join();
    wd.dismiss();
    QVERIFY2(!wd.fired(), qPrintable(QString("the loop missed a wake-up in round %1 (kind %2)")
                                         .arg(failedRound)
                                         .arg(failedRound % 3)));
    QCOMPARE(failures.load(), 0);
    QVERIFY(allRan);
    QCOMPARE(sawSleeping.load(), rounds);
    // The loop was asleep every round: producers had to issue wake-ups.
    QVERIFY(loop.snapshot().wakeSyscalls > wakesBefore);
}

void TestFastPath::crossThreadWakeInFastPath() {
    Loop loop;
    runWakeRounds(loop, 30);
    if (QTest::currentTestFailed())
        return;
    QVERIFY(loop.snapshot().fastPathActive);
}

void TestFastPath::crossThreadWakeInEpoll() {
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    runWakeRounds(loop, 30);
    if (QTest::currentTestFailed())
        return;
    QVERIFY(!loop.snapshot().fastPathActive);
    QVERIFY(loop.unregisterFd(sp.a).ok());
}

void TestFastPath::crossThreadWakeWhenDisabled() {
    Loop loop;
    QVERIFY(loop.setFastPathMode(FastPathMode::Disabled).ok());
    runWakeRounds(loop, 30);
    if (QTest::currentTestFailed())
        return;
    QVERIFY(!loop.snapshot().fastPathActive);
}

void TestFastPath::wakeSyscallsCoalesceWhileBusy_data() {
    QTest::addColumn<bool>("withFd");
    QTest::newRow("fast path") << false;
    QTest::newRow("epoll") << true;
}

void TestFastPath::wakeSyscallsCoalesceWhileBusy() {
    // The producer submits 10k tasks while the loop thread is inside a task (busy, not
    // sleeping) that waits for the producer to finish: the loop needs no wake-up at all, so the
    // producer must not pay a syscall per task. Allow a tiny constant for implementations that
    // wake once per batch.
    QFETCH(bool, withFd);
    constexpr int N = 10000;
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    if (withFd)
        QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    (void)loop.runOnce(1ms);

    std::atomic<bool> go{false}, done{false}, abort{false};
    std::atomic<int> submitFailures{0};
    int ran = 0; // loop thread only
    std::thread producer([&] {
        while (!go && !abort)
            std::this_thread::yield();
        for (int i = 0; i < N && !abort; ++i)
            if (!loop.submit([&ran] { ++ran; }).ok())
                ++submitFailures;
        done = true;
    });
    std::uint64_t before = 0, during = 0;
    bool finishedWhileBusy = false;
    bool longRan = false;
    const Status st = loop.submitInternal([&] {
        longRan = true;
        before = loop.snapshot().wakeSyscalls;
        go = true;
        const TimePoint end = Clock::now() + 60s;
        while (!done && Clock::now() < end)
            std::this_thread::yield();
        finishedWhileBusy = done;
        during = loop.snapshot().wakeSyscalls;
    });
    if (st.ok())
        (void)loop.runOnce(0ns);
    abort = !longRan; // never leave the producer waiting for `go`
    producer.join();
    QVERIFY(st.ok());
    QVERIFY(longRan);
    QVERIFY(finishedWhileBusy);
    QCOMPARE(submitFailures.load(), 0);
    // Drain without ever sleeping (timeout 0): no wake-up is needed here either.
    for (int i = 0; i < 100000 && ran < N; ++i)
        QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(ran, N);
    const std::uint64_t after = loop.snapshot().wakeSyscalls;
    qInfo("wakeSyscalls: before %llu, after the producer %llu, after draining %llu",
          (unsigned long long)before, (unsigned long long)during, (unsigned long long)after);
    QVERIFY(after >= during);
    QVERIFY(during >= before);
    QVERIFY2(after - before <= 2,
             qPrintable(QString("%1 wake syscalls for %2 tasks submitted to a busy loop")
                            .arg(after - before)
                            .arg(N)));
    if (withFd)
        QVERIFY(loop.unregisterFd(sp.a).ok());
}

void TestFastPath::modeChangeHammer() {
    constexpr int kProducers = 2;
    constexpr int kPerProducer = 3000;
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;

    struct Producer {
        std::vector<uint8_t> taskAcc, microAcc, timerAcc; // written by the producer
        std::vector<uint8_t> taskRan, microRan, timerRan; // written on the loop thread
        bool finalAcc = false;
    };
    std::array<Producer, kProducers> ps;
    for (Producer& p : ps) {
        p.taskAcc.assign(kPerProducer, 0);
        p.microAcc.assign(kPerProducer, 0);
        p.timerAcc.assign(kPerProducer, 0);
        p.taskRan.assign(kPerProducer, 0);
        p.microRan.assign(kPerProducer, 0);
        p.timerRan.assign(kPerProducer, 0);
    }
    std::size_t ranTotal = 0; // loop thread only
    int finalRan = 0;         // loop thread only

    std::atomic<bool> stopFlipper{false};
    std::atomic<long> flips{0}, forcedAccepted{0}, forcedRefused{0};
    std::atomic<int> flipErrors{0};
    std::thread flipper([&] {
        const FastPathMode modes[] = {FastPathMode::Auto, FastPathMode::Disabled,
                                      FastPathMode::Forced};
        for (unsigned i = 0; !stopFlipper.load(std::memory_order_relaxed); ++i) {
            const FastPathMode m = modes[i % 3];
            const Status s = loop.setFastPathMode(m);
            if (m == FastPathMode::Forced) {
                if (s.ok())
                    ++forcedAccepted;
                else if (s.code() == Errc::FastPathConflict)
                    ++forcedRefused;
                else
                    ++flipErrors;
            } else if (!s.ok()) {
                ++flipErrors;
            }
            ++flips;
        }
    });
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            Producer& st = ps[p];
            for (int i = 0; i < kPerProducer; ++i) {
                st.taskAcc[i] = loop.submit([&st, &ranTotal, i] {
                                        ++st.taskRan[i];
                                        ++ranTotal;
                                    })
                                    .ok();
                st.microAcc[i] = loop.queueMicrotask([&st, &ranTotal, i] {
                                         ++st.microRan[i];
                                         ++ranTotal;
                                     })
                                     .ok();
                st.timerAcc[i] = loop.scheduleTimer(std::chrono::microseconds((i % 4) * 100),
                                                    [&st, &ranTotal, i] {
                                                        ++st.timerRan[i];
                                                        ++ranTotal;
                                                    })
                                     .ok();
                if (i % 16 == 15)
                    std::this_thread::yield(); // interleave with the loop thread more often
            }
            // FIFO per producer: when this runs, all of this producer's tasks have run.
            st.finalAcc = loop.submit([&finalRan] { ++finalRan; }).ok();
        });
    }

    // The loop thread: runOnce(kForever) and runOnce(2ms) alternately, registering and
    // unregistering an fd now and then (refused while Forced: allowed).
    Watchdog wd(loop, 60s);
    bool registered = false;
    int registrations = 0, fdErrors = 0, runErrors = 0, violations = 0;
    unsigned iterations = 0;
    const TimePoint end = Clock::now() + 60s;
    for (unsigned iter = 1; finalRan < kProducers && Clock::now() < end && !wd.fired(); ++iter) {
        iterations = iter;
        if (iter % 4 == 0) {
            if (!registered) {
                const Status s = loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {});
                if (s.ok()) {
                    registered = true;
                    ++registrations;
                } else if (s.code() != Errc::FastPathConflict) {
                    ++fdErrors;
                }
            } else {
                if (!loop.unregisterFd(sp.a).ok())
                    ++fdErrors;
                registered = false;
            }
        }
        // Forced and a registered fd must never coexist.
        if (registered && loop.fastPathMode() == FastPathMode::Forced)
            ++violations;
        const auto r = (iter % 3 == 0) ? loop.runOnce(kForever) : loop.runOnce(2ms);
        if (!r.ok())
            ++runErrors;
    }
    for (std::thread& t : producers)
        t.join();
    stopFlipper = true;
    flipper.join();

    std::size_t accepted = 0;
    for (const Producer& p : ps)
        for (int i = 0; i < kPerProducer; ++i)
            accepted += p.taskAcc[i] + p.microAcc[i] + p.timerAcc[i];
    // After the producers are done, a bounded number of iterations drains everything.
    int drainCalls = 0;
    while (ranTotal < accepted && drainCalls < 2000) {
        if (!loop.runOnce(5ms).ok())
            ++runErrors;
        ++drainCalls;
    }
    for (int i = 0; i < 3; ++i)
        (void)loop.runOnce(0ns);
    if (registered)
        (void)loop.unregisterFd(sp.a);
    wd.dismiss();

    qInfo("iterations %u, flips %ld (Forced accepted %ld, refused %ld), fd registrations %d, "
          "drain calls %d",
          iterations, flips.load(), forcedAccepted.load(), forcedRefused.load(), registrations,
          drainCalls);
    QVERIFY(!wd.fired());
    QCOMPARE(runErrors, 0);
    QCOMPARE(fdErrors, 0);
    QCOMPARE(flipErrors.load(), 0);
    QCOMPARE(violations, 0);
    QVERIFY(flips.load() > 0);
    QCOMPARE(finalRan, kProducers);
    QCOMPARE(accepted, std::size_t(3) * kProducers * kPerProducer);
    QCOMPARE(ranTotal, accepted);
    for (int p = 0; p < kProducers; ++p) {
        QVERIFY(ps[p].finalAcc);
        for (int i = 0; i < kPerProducer; ++i) {
            const Producer& st = ps[p];
            if (st.taskRan[i] != st.taskAcc[i] || st.microRan[i] != st.microAcc[i] ||
                st.timerRan[i] != st.timerAcc[i])
                QFAIL(qPrintable(QString("producer %1 item %2: task %3/%4 microtask %5/%6 "
                                         "timer %7/%8 (ran/accepted)")
                                     .arg(p)
                                     .arg(i)
                                     .arg(st.taskRan[i])
                                     .arg(st.taskAcc[i])
                                     .arg(st.microRan[i])
                                     .arg(st.microAcc[i])
                                     .arg(st.timerRan[i])
                                     .arg(st.timerAcc[i])));
        }
    }
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

QTEST_APPLESS_MAIN(TestFastPath)
#include "tst_fastpath.moc"
