// Fault injection (src/faults.h): the loop's syscalls and allocations fail on demand, and the
// loop answers the caller with an error, drops nothing it had accepted and keeps running.
// Verdicts are counts and orders; time only guards against hangs (Watchdog).
#include <libloop/loop.h>

#include <QTest>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <poll.h>

#include "faults.h"
#include "testsupport.h"
#include "wakeup.h"

using namespace libloop;
using namespace testsupport;
using namespace std::chrono_literals;
namespace faults = libloop::detail::faults;
using faults::Site;

namespace {
bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// Waits (other thread) until the loop sleeps, then runs `f`.
template <class F> std::thread whenAsleep(Loop& loop, F f) {
    return std::thread([&loop, f] {
        waitFor([&] { return loop.state() == LoopState::Sleeping; });
        f();
    });
}
} // namespace

class TestFaults : public QObject {
    Q_OBJECT
private slots:
    void cleanup() { faults::reset(); }

    void unarmedSitesNeverFail();
    void armingSkipsThenFailsCountTimes();

    void epollCtlEintrIsRetried();
    void registerFdFailureChangesNothing();
    void modifyFdFailureKeepsTheOldEvents();
    void unregisterFdFailureKeepsTheRegistration();
    void epollWaitFailureIsAnEmptyWait();

    void eventFdWriteEintrIsRetried();
    void eventFdSaturatedCounterIsAWake();
    void eventFdWriteErrorLosesOnlyThatWake();
    void eventFdWriteErrorOnALoopIsRecoveredByTheNextNotify();
    void eventFdReadEintrIsRetried();
    void eventFdIsDrainedByOneRead();
    void returnOnWakeUpLeavesWorkThatArrivedWithTheWake();
    void eventFdReadErrorLeavesItReadable();

    void ingressBlockFailureRefusesAndLosesNothing();
    void timerChunkFailureIsNoMemoryNotTooManyTimers();
    void timerChunkFailureFromAnotherThread();
    void localQueueGrowFailure();
    void immediateQueueGrowFailure();
    void microtaskOverflowFailure();
    void fdTableFailureRestoresTheFdCount();

    void blockedCallbackDoesNotBlockSubmit();
    void blockedCallbackWithAllocationFailure();
};

void TestFaults::unarmedSitesNeverFail() {
    for (int s = 0; s < int(Site::Count); ++s)
        QCOMPARE(faults::check(Site(s)), 0);
}

void TestFaults::armingSkipsThenFailsCountTimes() {
    faults::arm(Site::EpollWait, EIO, 2, 3);
    std::vector<int> seen;
    for (int i = 0; i < 7; ++i)
        seen.push_back(faults::check(Site::EpollWait));
    QCOMPARE(seen, (std::vector<int>{0, 0, 0, EIO, EIO, 0, 0}));
    QCOMPARE(faults::triggered(Site::EpollWait), std::uint64_t(2));
    QCOMPARE(faults::triggered(Site::EpollCtl), std::uint64_t(0));
    QCOMPARE(faults::check(Site::EpollCtl), 0);
}

void TestFaults::epollCtlEintrIsRetried() {
    Loop loop;
    SocketPair sp;
    int calls = 0;
    faults::arm(Site::EpollCtl, EINTR, 3);
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned) {
                                drain(fd);
                                ++calls;
                            })
                .ok());
    QCOMPARE(faults::triggered(Site::EpollCtl), std::uint64_t(3));
    QVERIFY(writeByte(sp.b));
    QVERIFY(runUntil(loop, [&] { return calls == 1; }));
}

void TestFaults::registerFdFailureChangesNothing() {
    Loop loop;
    SocketPair sp;
    for (int err : {ENOMEM, ENOSPC, EAGAIN, EPERM}) {
        faults::arm(Site::EpollCtl, err);
        const Status s = loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {});
        QCOMPARE(s.code(), Errc::SystemError);
        QCOMPARE(s.sysErrno(), err);
        QCOMPARE(loop.registeredFds(), std::size_t(0));
    }
    faults::arm(Site::EpollCtl, EBADF);
    QCOMPARE(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).code(),
             Errc::InvalidArgument);
    QCOMPARE(loop.registeredFds(), std::size_t(0));
    // Nothing was left behind: Forced is allowed (no fd counted) and a later register works.
    QVERIFY(loop.setFastPathMode(FastPathMode::Forced).ok());
    QVERIFY(loop.setFastPathMode(FastPathMode::Auto).ok());
    int calls = 0;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned) {
                                drain(fd);
                                ++calls;
                            })
                .ok());
    QVERIFY(writeByte(sp.b));
    QVERIFY(runUntil(loop, [&] { return calls == 1; }));
}

void TestFaults::modifyFdFailureKeepsTheOldEvents() {
    Loop loop;
    SocketPair sp;
    int calls = 0;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned) {
                                drain(fd);
                                ++calls;
                            })
                .ok());
    faults::arm(Site::EpollCtl, ENOMEM);
    QCOMPARE(loop.modifyFd(sp.a, 0).code(), Errc::SystemError); // removal from epoll failed
    faults::arm(Site::EpollCtl, ENOMEM);
    QCOMPARE(loop.modifyFd(sp.a, FdEvent::Writable).code(), Errc::SystemError);
    // Still watching Readable only: a readable fd is reported, a writable one is not spinning.
    QVERIFY(writeByte(sp.b));
    QVERIFY(runUntil(loop, [&] { return calls == 1; }));
    for (int i = 0; i < 5; ++i)
        QVERIFY(loop.runOnce(0ms).ok());
    QCOMPARE(calls, 1);
}

void TestFaults::unregisterFdFailureKeepsTheRegistration() {
    Loop loop;
    SocketPair sp;
    int calls = 0;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned) {
                                drain(fd);
                                ++calls;
                            })
                .ok());
    faults::arm(Site::EpollCtl, ENOMEM);
    const Status s = loop.unregisterFd(sp.a);
    QCOMPARE(s.code(), Errc::SystemError);
    QCOMPARE(s.sysErrno(), ENOMEM);
    QCOMPARE(loop.registeredFds(), std::size_t(1));
    QVERIFY(writeByte(sp.b));
    QVERIFY(runUntil(loop, [&] { return calls == 1; })); // still delivered
    QVERIFY(loop.unregisterFd(sp.a).ok());               // the retry works
    QCOMPARE(loop.registeredFds(), std::size_t(0));
    QVERIFY(writeByte(sp.b));
    for (int i = 0; i < 5; ++i)
        QVERIFY(loop.runOnce(0ms).ok());
    QCOMPARE(calls, 1);
}

void TestFaults::epollWaitFailureIsAnEmptyWait() {
    Loop loop;
    SocketPair sp;
    int calls = 0;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned) {
                                drain(fd);
                                ++calls;
                            })
                .ok());
    QVERIFY(writeByte(sp.b));
    faults::arm(Site::EpollWait, EINTR, 4);
    Watchdog dog(loop);
    while (calls == 0 && !dog.fired())
        QVERIFY(loop.runOnce(kForever).ok());
    dog.dismiss();
    QVERIFY(!dog.fired());
    QCOMPARE(calls, 1);
    QCOMPARE(faults::triggered(Site::EpollWait), std::uint64_t(4));
}

void TestFaults::eventFdWriteEintrIsRetried() {
    Loop loop;
    SocketPair sp; // an fd keeps the loop on the epoll path: its wake-ups use the eventfd
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    std::atomic<int> ran{0};
    std::thread producer = whenAsleep(loop, [&] {
        faults::arm(Site::EventFdWrite, EINTR, 2);
        QVERIFY(loop.submit([&] { ran.fetch_add(1); }).ok());
    });
    Watchdog dog(loop);
    while (ran.load() == 0 && !dog.fired())
        QVERIFY(loop.runOnce(kForever).ok());
    producer.join();
    dog.dismiss();
    QVERIFY(!dog.fired());
    QCOMPARE(faults::triggered(Site::EventFdWrite), std::uint64_t(2));
}

void TestFaults::eventFdSaturatedCounterIsAWake() {
    // A real EAGAIN: the counter is at its maximum, so the eventfd is readable already.
    detail::Wakeup w;
    QVERIFY(w.valid());
    const std::uint64_t nearMax = UINT64_MAX - 1;
    QCOMPARE(::write(w.eventFd(), &nearMax, sizeof nearMax), ssize_t(sizeof nearMax));
    w.beginSleep(detail::Wakeup::Epoll);
    w.notify(); // write(1) fails with EAGAIN
    QCOMPARE(w.syscalls(), std::uint64_t(1));
    QVERIFY(readable(w.eventFd()));
    w.endSleep();
    w.drainEventFd();
    QVERIFY(!readable(w.eventFd()));
}

void TestFaults::eventFdWriteErrorLosesOnlyThatWake() {
    detail::Wakeup w;
    w.beginSleep(detail::Wakeup::Epoll);
    faults::arm(Site::EventFdWrite, EBADF);
    w.notify();
    QVERIFY(!readable(w.eventFd())); // lost
    w.notify();                      // same sleep: not de-duplicated against the failed one
    QVERIFY(readable(w.eventFd()));
    QCOMPARE(w.syscalls(), std::uint64_t(2));
    w.notify(); // delivered once for this sleep: later producers skip the syscall
    QCOMPARE(w.syscalls(), std::uint64_t(2));
    w.endSleep();
}

void TestFaults::eventFdWriteErrorOnALoopIsRecoveredByTheNextNotify() {
    Loop loop;
    SocketPair sp;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    std::atomic<int> ran{0};
    std::thread producer = whenAsleep(loop, [&] {
        faults::arm(Site::EventFdWrite, EIO);
        QVERIFY(loop.submit([&] { ran.fetch_add(1); }).ok()); // its wake-up is lost
        QVERIFY(loop.submit([&] { ran.fetch_add(1); }).ok()); // this one wakes the loop
    });
    Watchdog dog(loop);
    while (ran.load() < 2 && !dog.fired())
        QVERIFY(loop.runOnce(kForever).ok());
    producer.join();
    dog.dismiss();
    QVERIFY(!dog.fired());
    QCOMPARE(ran.load(), 2);
    QCOMPARE(faults::triggered(Site::EventFdWrite), std::uint64_t(1));
}

void TestFaults::eventFdReadEintrIsRetried() {
    detail::Wakeup w;
    const std::uint64_t one = 1;
    QCOMPARE(::write(w.eventFd(), &one, sizeof one), ssize_t(sizeof one));
    faults::arm(Site::EventFdRead, EINTR, 3);
    w.drainEventFd();
    QVERIFY(!readable(w.eventFd()));
    QCOMPARE(faults::triggered(Site::EventFdRead), std::uint64_t(3));
}

void TestFaults::eventFdIsDrainedByOneRead() {
    // One read empties a (non-semaphore) eventfd, so a drain is one syscall: a second read
    // would hit the armed fault.
    detail::Wakeup w;
    const std::uint64_t one = 1;
    for (int i = 0; i < 3; ++i)
        QCOMPARE(::write(w.eventFd(), &one, sizeof one), ssize_t(sizeof one));
    faults::arm(Site::EventFdRead, EIO, 1, /*skip*/ 1);
    w.drainEventFd();
    QVERIFY(!readable(w.eventFd()));
    QCOMPARE(faults::triggered(Site::EventFdRead), std::uint64_t(0));
}

void TestFaults::returnOnWakeUpLeavesWorkThatArrivedWithTheWake() {
    // The wakeUp()'s eventfd write fails, so the loop sleeps on with the wake-up pending; a
    // submit then wakes it, and it finds both: with ReturnOnWakeUp that runOnce returns at once
    // (without the flag it would run the task), and the next one runs the task without waiting.
    SocketPair sp; // an idle fd: the loop waits in epoll on the eventfd
    QVERIFY(sp.ok());
    Loop loop;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    std::atomic<int> ran{0};
    std::atomic<bool> submitted{false};
    std::thread producer = whenAsleep(loop, [&] {
        faults::arm(Site::EventFdWrite, EIO);
        loop.wakeUp();                                              // lost: the loop sleeps on
        submitted = loop.submit([&ran] { ran.fetch_add(1); }).ok(); // wakes it
    });
    Watchdog dog(loop);
    const unsigned phases = RunPhase::All | RunFlag::ReturnOnWakeUp;
    const auto first = loop.runOnce(kForever, phases);
    producer.join();
    QVERIFY(first.ok());
    QVERIFY(submitted.load());
    QCOMPARE(faults::triggered(Site::EventFdWrite), std::uint64_t(1));
    QCOMPARE(first.value(), std::size_t(0));
    QCOMPARE(ran.load(), 0);
    const auto second = loop.runOnce(kForever, phases); // the task is there: no wait
    dog.dismiss();
    QVERIFY(!dog.fired());
    QVERIFY(second.ok());
    QCOMPARE(second.value(), std::size_t(1));
    QCOMPARE(ran.load(), 1);
}

void TestFaults::eventFdReadErrorLeavesItReadable() {
    detail::Wakeup w;
    const std::uint64_t one = 1;
    QCOMPARE(::write(w.eventFd(), &one, sizeof one), ssize_t(sizeof one));
    faults::arm(Site::EventFdRead, EIO);
    w.drainEventFd();
    QVERIFY(readable(w.eventFd())); // the next poll returns at once...
    w.drainEventFd();               // ...and drains it
    QVERIFY(!readable(w.eventFd()));
}

void TestFaults::ingressBlockFailureRefusesAndLosesNothing() {
    Loop loop;
    faults::arm(Site::IngressBlock, ENOMEM);
    std::vector<int> accepted, ran;
    int refused = -1;
    for (int i = 0; i < 400; ++i) {
        const Status s = loop.submit([&ran, i] { ran.push_back(i); });
        if (s.ok()) {
            accepted.push_back(i);
        } else {
            QCOMPARE(s.code(), Errc::SystemError);
            QCOMPARE(s.sysErrno(), ENOMEM);
            QCOMPARE(refused, -1); // armed once: one refusal
            refused = i;
        }
    }
    QVERIFY(refused > 0); // the first block is preallocated: a new one was needed later
    QCOMPARE(faults::triggered(Site::IngressBlock), std::uint64_t(1));
    QVERIFY(pollUntil(loop, [&] { return ran.size() == accepted.size(); }));
    QCOMPARE(ran, accepted); // every accepted task once, in order; the refused one never
}

void TestFaults::timerChunkFailureIsNoMemoryNotTooManyTimers() {
    ManualClock clock;
    LoopOptions o;
    o.clock = &clock;
    o.maxTimers = 1;
    Loop loop(o);
    faults::arm(Site::TimerChunk, ENOMEM);
    int ran = 0;
    const auto r = loop.scheduleTimer(1ms, [&] { ++ran; });
    QCOMPARE(r.code(), Errc::SystemError);
    QCOMPARE(r.status().sysErrno(), ENOMEM);
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
    QVERIFY(loop.scheduleTimer(1ms, [&] { ++ran; }).ok());
    QCOMPARE(loop.scheduleTimer(1ms, [&] { ++ran; }).code(), Errc::TooManyTimers); // the cap
    QVERIFY(loop.runOnce(kForever).ok());
    QCOMPARE(ran, 1);
}

void TestFaults::timerChunkFailureFromAnotherThread() {
    Loop loop;
    faults::arm(Site::TimerChunk, ENOMEM);
    std::atomic<int> ran{0};
    Result<TimerId> first = Errc::Ok, second = Errc::Ok;
    std::thread([&] {
        first = loop.scheduleTimer(0ms, [&] { ran.fetch_add(1); });
        second = loop.scheduleTimer(0ms, [&] { ran.fetch_add(1); });
    }).join();
    QCOMPARE(first.code(), Errc::SystemError);
    QVERIFY(second.ok());
    QVERIFY(pollUntil(loop, [&] { return ran.load() == 1; }));
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.runOnce(0ms).ok());
    QCOMPARE(ran.load(), 1);
}

void TestFaults::localQueueGrowFailure() {
    Loop loop;
    std::vector<int> ran, accepted;
    faults::arm(Site::LocalQueueGrow, ENOMEM, 1, 1); // the first growth works, the second fails
    for (int i = 0; i < 100; ++i) {
        const Status s = loop.submitInternal([&ran, i] { ran.push_back(i); });
        if (s.ok())
            accepted.push_back(i);
        else
            QCOMPARE(s.sysErrno(), ENOMEM);
    }
    QCOMPARE(accepted.size(), std::size_t(99)); // 64 fit, the 65th failed to grow the queue
    QCOMPARE(accepted[64], 65);
    QVERIFY(pollUntil(loop, [&] { return ran.size() == accepted.size(); }));
    QCOMPARE(ran, accepted);
}

void TestFaults::immediateQueueGrowFailure() {
    Loop loop;
    std::vector<int> ran;
    faults::arm(Site::LocalQueueGrow, ENOMEM);
    QCOMPARE(loop.queueImmediate([&] { ran.push_back(0); }).code(), Errc::SystemError);
    QVERIFY(loop.queueImmediate([&] { ran.push_back(1); }).ok());
    QVERIFY(pollUntil(loop, [&] { return !ran.empty(); }));
    QCOMPARE(ran, std::vector<int>{1});
}

void TestFaults::microtaskOverflowFailure() {
    LoopOptions o;
    o.microtaskRingCapacity = 2;
    Loop loop(o);
    std::vector<int> ran;
    QVERIFY(loop.queueMicrotask([&] { ran.push_back(1); }).ok());
    QVERIFY(loop.queueMicrotask([&] { ran.push_back(2); }).ok());
    faults::arm(Site::MicrotaskOverflow, ENOMEM);
    const Status s = loop.queueMicrotask([&] { ran.push_back(3); }); // ring full → overflow
    QCOMPARE(s.code(), Errc::SystemError);
    QCOMPARE(s.sysErrno(), ENOMEM);
    QVERIFY(loop.queueMicrotask([&] { ran.push_back(4); }).ok());
    QVERIFY(loop.runOnce(0ms).ok());
    QCOMPARE(ran, (std::vector<int>{1, 2, 4}));
}

void TestFaults::fdTableFailureRestoresTheFdCount() {
    Loop loop;
    SocketPair sp;
    faults::arm(Site::FdTable, ENOMEM);
    const Status s = loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {});
    QCOMPARE(s.code(), Errc::SystemError);
    QCOMPARE(s.sysErrno(), ENOMEM);
    QCOMPARE(loop.registeredFds(), std::size_t(0));
    QVERIFY(loop.setFastPathMode(FastPathMode::Forced).ok()); // no fd is counted
    QVERIFY(loop.setFastPathMode(FastPathMode::Auto).ok());
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
}

void TestFaults::blockedCallbackDoesNotBlockSubmit() {
    // The ingress is unbounded: a callback that never returns does not make submit() block or
    // fail on other threads; the work waits in memory (and submit answers ENOMEM when memory
    // runs out, see ingressBlockFailureRefusesAndLosesNothing).
    Loop loop;
    constexpr int kTasks = 200'000;
    std::atomic<bool> release{false};
    std::atomic<int> ran{0};
    std::atomic<int> accepted{0};
    QVERIFY(loop.submit([&] {
                    while (!release.load())
                        std::this_thread::yield();
                })
                .ok());
    std::thread producer([&] {
        waitFor([&] { return loop.state() == LoopState::Running; });
        for (int i = 0; i < kTasks; ++i)
            if (loop.submit([&] { ran.fetch_add(1, std::memory_order_relaxed); }).ok())
                accepted.fetch_add(1);
        release = true;
    });
    QVERIFY(pollUntil(loop, [&] { return ran.load() == kTasks; }));
    producer.join();
    QCOMPARE(accepted.load(), kTasks);
    QCOMPARE(ran.load(), kTasks);
}

void TestFaults::blockedCallbackWithAllocationFailure() {
    Loop loop;
    std::atomic<bool> release{false};
    std::atomic<int> accepted{0}, refused{0}, ran{0};
    QVERIFY(loop.submit([&] {
                    while (!release.load())
                        std::this_thread::yield();
                })
                .ok());
    std::thread producer([&] {
        waitFor([&] { return loop.state() == LoopState::Running; });
        faults::arm(Site::IngressBlock, ENOMEM, 3, 2); // blocks 3 and 4 fail, then memory is back
        for (int i = 0; i < 2000; ++i) {
            const Status s = loop.submit([&] { ran.fetch_add(1); });
            (s.ok() ? accepted : refused).fetch_add(1);
        }
        release = true;
    });
    QVERIFY(pollUntil(loop, [&] { return release.load() && ran.load() == accepted.load(); }));
    producer.join();
    QCOMPARE(refused.load(), 3);
    QCOMPARE(accepted.load(), 2000 - 3);
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.runOnce(0ms).ok());
    QCOMPARE(ran.load(), accepted.load());
}

QTEST_APPLESS_MAIN(TestFaults)
#include "tst_faults.moc"
