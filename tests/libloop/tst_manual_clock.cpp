// The time test seam: a Loop on a ManualClock (LoopOptions::clock) reads every "now" from it and
// auto-advances it instead of sleeping until a deadline (manual_clock.h).
#include <libloop/loop.h>

#include <QTest>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "testsupport.h"

using namespace libloop;
using namespace std::chrono_literals;

namespace {
LoopOptions onClock(ManualClock& c) {
    LoopOptions o;
    o.clock = &c;
    return o;
}
} // namespace

class TestManualClock : public QObject {
    Q_OBJECT
private slots:
    void clockNeverGoesBackwards();
    void loopNowFollowsTheClock();
    void timerWaitsForTheClockNotForRealTime();
    void runOnceForeverJumpsToTheNextDeadline();
    void runOnceTimeoutAdvancesExactlyThatFar();
    void readyWorkIsNotSkippedByAJump();
    void readyFdEndsTheWaitWithoutAJump();
    void equalDeadlinesKeepSchedulingOrder();
    void crossThreadScheduleUsesTheManualClock();
    void shutdownWaitForAllAdvancesTheClock();
    void deadlineLessWaitStillWakesOnSubmit();
};

void TestManualClock::clockNeverGoesBackwards() {
    ManualClock c(TimePoint(10s));
    c.advance(-5s);
    QCOMPARE(c.now(), TimePoint(10s));
    c.advanceTo(TimePoint(3s));
    QCOMPARE(c.now(), TimePoint(10s));
    c.advance(2s);
    c.advanceTo(TimePoint(20s));
    QCOMPARE(c.now(), TimePoint(20s));
}

void TestManualClock::loopNowFollowsTheClock() {
    ManualClock c;
    Loop loop(onClock(c));
    QCOMPARE(loop.now(), c.now());
    c.advance(90min);
    QCOMPARE(loop.now(), c.now());
    const auto id = loop.scheduleTimer(5s, [] {});
    QVERIFY(id.ok());
    QCOMPARE(loop.timerDeadline(id.value()).value(), c.now() + 5s);
    QCOMPARE(loop.snapshot().takenAtNs, std::uint64_t(c.nowNs()));
}

void TestManualClock::timerWaitsForTheClockNotForRealTime() {
    ManualClock c;
    Loop loop(onClock(c));
    int ran = 0;
    QVERIFY(loop.scheduleTimer(10s, [&] { ++ran; }).ok());
    for (int i = 0; i < 5; ++i)
        QVERIFY(loop.runOnce(0ms).ok());
    QCOMPARE(ran, 0);
    c.advance(10s - 1ns);
    QVERIFY(loop.runOnce(0ms).ok());
    QCOMPARE(ran, 0);
    c.advance(1ns);
    QCOMPARE(loop.runOnce(0ms).value(), std::size_t(1));
    QCOMPARE(ran, 1);
}

void TestManualClock::runOnceForeverJumpsToTheNextDeadline() {
    ManualClock c;
    Loop loop(onClock(c));
    const TimePoint start = c.now();
    std::vector<int> order;
    QVERIFY(loop.scheduleTimer(1h, [&] { order.push_back(2); }).ok());
    QVERIFY(loop.scheduleTimer(30min, [&] { order.push_back(1); }).ok());
    // Nothing is ready: the wait jumps to the earliest deadline and that timer runs.
    QCOMPARE(loop.runOnce(kForever).value(), std::size_t(1));
    QCOMPARE(order, std::vector<int>{1});
    QCOMPARE(c.now(), start + 30min);
    QCOMPARE(loop.runOnce(kForever).value(), std::size_t(1));
    QCOMPARE(order, (std::vector<int>{1, 2}));
    QCOMPARE(c.now(), start + 1h);
}

void TestManualClock::runOnceTimeoutAdvancesExactlyThatFar() {
    ManualClock c;
    Loop loop(onClock(c));
    const TimePoint start = c.now();
    int ran = 0;
    QVERIFY(loop.scheduleTimer(10s, [&] { ++ran; }).ok());
    QCOMPARE(loop.runOnce(3s).value(), std::size_t(0)); // the timeout comes first
    QCOMPARE(c.now(), start + 3s);
    QCOMPARE(ran, 0);
    QCOMPARE(loop.runOnce(20s).value(), std::size_t(1)); // now the timer does
    QCOMPARE(c.now(), start + 10s);
    QCOMPARE(ran, 1);
    QCOMPARE(loop.runOnce(0ms).value(), std::size_t(0)); // a zero timeout never moves time
    QCOMPARE(c.now(), start + 10s);
}

void TestManualClock::readyWorkIsNotSkippedByAJump() {
    ManualClock c;
    Loop loop(onClock(c));
    const TimePoint start = c.now();
    int task = 0, timer = 0;
    QVERIFY(loop.scheduleTimer(1h, [&] { ++timer; }).ok());
    QVERIFY(loop.submit([&] { ++task; }).ok());
    QCOMPARE(loop.runOnce(kForever).value(), std::size_t(1));
    QCOMPARE(task, 1);
    QCOMPARE(timer, 0);
    QCOMPARE(c.now(), start); // the task was ready: no wait, no jump
}

void TestManualClock::readyFdEndsTheWaitWithoutAJump() {
    ManualClock c;
    Loop loop(onClock(c));
    const TimePoint start = c.now();
    int sv[2];
    QCOMPARE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int reads = 0, timer = 0;
    QVERIFY(loop.registerFd(sv[0], FdEvent::Readable,
                            [&](int fd, unsigned) {
                                char b[16];
                                while (::read(fd, b, sizeof b) > 0) {
                                }
                                ++reads;
                            })
                .ok());
    QVERIFY(loop.scheduleTimer(1s, [&] { ++timer; }).ok());
    QCOMPARE(::write(sv[1], "x", 1), ssize_t(1));
    QVERIFY(loop.runOnce(kForever).ok());
    QCOMPARE(reads, 1);
    QCOMPARE(timer, 0);
    QCOMPARE(c.now(), start);
    QVERIFY(loop.runOnce(kForever).ok()); // nothing readable now: jump to the timer
    QCOMPARE(timer, 1);
    QCOMPARE(c.now(), start + 1s);
    QVERIFY(loop.unregisterFd(sv[0]).ok());
    ::close(sv[0]);
    ::close(sv[1]);
}

void TestManualClock::equalDeadlinesKeepSchedulingOrder() {
    ManualClock c;
    Loop loop(onClock(c));
    std::vector<int> order;
    for (int i = 0; i < 8; ++i)
        QVERIFY(loop.scheduleTimer(5ms, [&order, i] { order.push_back(i); }).ok());
    QVERIFY(loop.runOnce(kForever).ok());
    QCOMPARE(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

void TestManualClock::crossThreadScheduleUsesTheManualClock() {
    ManualClock c;
    Loop loop(onClock(c));
    const TimePoint start = c.now();
    Result<TimerId> id = Errc::NotFound;
    std::atomic<int> ran{0};
    std::thread([&] { id = loop.scheduleTimer(2s, [&] { ran.fetch_add(1); }); }).join();
    QVERIFY(id.ok());
    QCOMPARE(loop.timerDeadline(id.value()).value(), start + 2s);
    QCOMPARE(loop.runOnce(kForever).value(), std::size_t(1));
    QCOMPARE(ran.load(), 1);
    QCOMPARE(c.now(), start + 2s);
}

void TestManualClock::shutdownWaitForAllAdvancesTheClock() {
    ManualClock c;
    Loop loop(onClock(c));
    const TimePoint start = c.now();
    int ran = 0;
    QVERIFY(loop.scheduleTimer(24h, [&] { ++ran; }).ok());
    QVERIFY(loop.scheduleTimer(1h, [&] { ++ran; }).ok());
    const auto rep = loop.shutdown(ShutdownTimers::WaitForAll);
    QVERIFY(rep.ok());
    QCOMPARE(ran, 2);
    QCOMPARE(rep.value().timersCancelled, std::uint64_t(0));
    QCOMPARE(c.now(), start + 24h);
}

void TestManualClock::deadlineLessWaitStillWakesOnSubmit() {
    ManualClock c;
    Loop loop(onClock(c));
    const TimePoint start = c.now();
    std::atomic<bool> ran{false};
    std::thread producer([&] {
        std::this_thread::sleep_for(20ms);
        (void)loop.submit([&] { ran = true; });
    });
    // No timer and no timeout: a real wait, ended by the submit.
    while (!ran.load())
        QVERIFY(loop.runOnce(kForever).ok());
    producer.join();
    QCOMPARE(c.now(), start);
}

QTEST_APPLESS_MAIN(TestManualClock)
#include "tst_manual_clock.moc"
