// Tests for the lifecycle of libloop::Loop (loop.h): states, shutdown() (graceful), close()
// (immediate), destruction, use after close, loop-thread ownership and WrongThread answers.
//
// No assertion depends on wall-clock time: waits are bounded by a generous deadline only to avoid
// hanging when something is broken.
#include <libloop/loop.h>

#include <QTest>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "testsupport.h"

using namespace std::chrono_literals;
using namespace testsupport;
using libloop::Errc;
using libloop::Loop;
using libloop::LoopOptions;
using libloop::LoopState;
using libloop::ShutdownReport;
using libloop::ShutdownTimers;
using libloop::Status;
using libloop::Task;
namespace FdEvent = libloop::FdEvent;

namespace {

// Runs `f` on a fresh thread and waits for it.
template <class F> void onOtherThread(F&& f) {
    std::thread t(std::forward<F>(f));
    t.join();
}

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
            r = fds[0];
            w = fds[1];
        }
    }
    ~Pipe() {
        if (r >= 0)
            ::close(r);
        if (w >= 0)
            ::close(w);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
};

bool fdIsOpen(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

// One tracker per kind of queued work that close()/~Loop must release without running.
struct Everything {
    Tracker extTask, extTaskThread, intTask, microRingOverflow, microThread, timerPending, timerDue,
        timerThread, fdCallback;
    static constexpr int kMicrotasks = 6; // ring capacity 2: 2 in the ring, 4 in the overflow

    std::vector<std::pair<const char*, Tracker*>> all() {
        return {{"external task", &extTask},
                {"external task (other thread)", &extTaskThread},
                {"internal task", &intTask},
                {"microtasks (ring + overflow)", &microRingOverflow},
                {"microtask (other thread)", &microThread},
                {"pending timer", &timerPending},
                {"due timer", &timerDue},
                {"timer (other thread)", &timerThread},
                {"fd callback", &fdCallback}};
    }
    static int expected(const Tracker* t, const Everything& e) {
        return t == &e.microRingOverflow ? kMicrotasks : 1;
    }
};

LoopOptions smallRing() {
    LoopOptions o;
    o.microtaskRingCapacity = 2;
    return o;
}

// Queues one of everything (from the loop thread, and some from another thread); nothing runs.
void queueEverything(Loop& loop, Everything& e, int readFd) {
    QVERIFY(loop.submit(probeTask(e.extTask)).ok());
    QVERIFY(loop.submitInternal(probeTask(e.intTask)).ok());
    for (int i = 0; i < Everything::kMicrotasks; ++i)
        QVERIFY(loop.queueMicrotask(probeTask(e.microRingOverflow)).ok());
    QVERIFY(loop.scheduleTimer(1h, probeTask(e.timerPending)).ok());
    QVERIFY(loop.scheduleTimer(0ns, probeTask(e.timerDue)).ok());
    QVERIFY(loop.registerFd(readFd, FdEvent::Readable,
                            [p = Probe(&e.fdCallback)](int, unsigned) { p(); })
                .ok());
    bool ok1 = false, ok2 = false, ok3 = false;
    onOtherThread([&] {
        ok1 = loop.submit(probeTask(e.extTaskThread)).ok();
        ok2 = loop.queueMicrotask(probeTask(e.microThread)).ok();
        ok3 = loop.scheduleTimer(1h, probeTask(e.timerThread)).ok();
    });
    QVERIFY(ok1);
    QVERIFY(ok2);
    QVERIFY(ok3);
    QVERIFY(loop.snapshot().microtaskOverflow > 0);
    for (auto [name, t] : e.all()) {
        QVERIFY2(t->finalDestroys.load() == 0, name);
        QVERIFY2(t->calls.load() == 0, name);
    }
}

void checkAllReleasedNoneRun(Everything& e) {
    for (auto [name, t] : e.all()) {
        QVERIFY2(t->calls.load() == 0,
                 qPrintable(QStringLiteral("%1 ran").arg(QLatin1String(name))));
        QVERIFY2(t->finalDestroys.load() == Everything::expected(t, e),
                 qPrintable(QStringLiteral("%1: %2 of %3 released")
                                .arg(QLatin1String(name))
                                .arg(t->finalDestroys.load())
                                .arg(Everything::expected(t, e))));
    }
}

} // namespace

class tst_Lifecycle : public QObject {
    Q_OBJECT

private slots:
    void idleAfterConstruction();
    void runningInsideCallbacks();
    void sleepingWhileWaiting();
    void closedAfterClose();
    void shuttingDownDuringDrain();
    void shutdownRefusesNewWork();
    void shutdownRefusesWorkQueuedDuringDrain();
    void shutdownAcceptsLoopThreadMicrotaskDuringDrain();
    void shutdownRefusesOtherThreadMicrotaskDuringDrain();
    void shutdownRunsEverythingAcceptedAndReports();
    void shutdownReportCountsWhatTheDrainRan();
    void shutdownCancelPendingCancelsNotYetDueTimers();
    void shutdownWaitForAllRunsPendingTimer();
    void shutdownWithConcurrentSubmitters();
    void shutdownFromOtherThreadWhenIdle();
    void shutdownFromOtherThreadWhileRunningIsBusy();
    void closeReleasesEverythingWithoutRunning();
    void closeIsIdempotent();
    void closeFromInsideTaskStopsEverything();
    void destructorReleasesWithoutClose();
    void runAfterCloseReturnsAndRunsNothing();
    void refusedAfterClose();
    void loopThreadIsConstructingThread();
    void attachToCurrentThreadMovesOwnership();
    void attachWhileRunningIsBusy();
    void wrongThreadForLoopThreadEntryPoints();
};

void tst_Lifecycle::idleAfterConstruction() {
    Loop loop;
    QCOMPARE(loop.state(), LoopState::Idle);
    QCOMPARE(loop.snapshot().state, LoopState::Idle);
    QCOMPARE(QString::fromStdString(loop.name()), QStringLiteral("loop"));

    LoopOptions o;
    o.name = "worker-7";
    Loop named(std::move(o));
    QCOMPARE(named.state(), LoopState::Idle);
    QCOMPARE(QString::fromStdString(named.name()), QStringLiteral("worker-7"));

    // Between runs the loop is Idle again.
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(loop.state(), LoopState::Idle);
}

void tst_Lifecycle::runningInsideCallbacks() {
    Loop loop;
    LoopState inTask = LoopState::Closed, inMicrotask = LoopState::Closed,
              inTimer = LoopState::Closed;
    std::atomic<int> seenFromOtherThread{-1};
    QVERIFY(loop.submit([&] {
                    inTask = loop.state();
                    // Another thread sees it too.
                    onOtherThread([&] { seenFromOtherThread = int(loop.state()); });
                    QVERIFY(loop.queueMicrotask([&] { inMicrotask = loop.state(); }).ok());
                })
                .ok());
    bool timerRan = false;
    QVERIFY(loop.scheduleTimer(0ns,
                               [&] {
                                   inTimer = loop.state();
                                   timerRan = true;
                               })
                .ok());
    QVERIFY(pumpUntil(loop, [&] { return timerRan && inMicrotask != LoopState::Closed; }));
    QCOMPARE(inTask, LoopState::Running);
    QCOMPARE(inMicrotask, LoopState::Running);
    QCOMPARE(inTimer, LoopState::Running);
    QCOMPARE(LoopState(seenFromOtherThread.load()), LoopState::Running);
    QCOMPARE(loop.state(), LoopState::Idle);
}

void tst_Lifecycle::sleepingWhileWaiting() {
    Loop loop;
    std::atomic<bool> sawSleeping{false}, returned{false};
    std::thread other([&] {
        sawSleeping = waitFor([&] { return loop.state() == LoopState::Sleeping; });
        while (!returned.load()) {
            loop.wakeUp();
            std::this_thread::sleep_for(5ms);
        }
    });
    auto r = loop.runOnce(libloop::kForever);
    returned = true;
    other.join();
    QVERIFY(r.ok());
    QVERIFY2(sawSleeping.load(), "state() never reported Sleeping while runOnce waited");
    QCOMPARE(loop.state(), LoopState::Idle);
}

void tst_Lifecycle::closedAfterClose() {
    Loop loop;
    QVERIFY(loop.close().ok());
    QCOMPARE(loop.state(), LoopState::Closed);
    QCOMPARE(loop.snapshot().state, LoopState::Closed);
}

void tst_Lifecycle::shuttingDownDuringDrain() {
    Loop loop;
    LoopState inTask = LoopState::Idle;
    QVERIFY(loop.submit([&] { inTask = loop.state(); }).ok());
    auto rep = loop.shutdown();
    QVERIFY(rep.ok());
    QCOMPARE(inTask, LoopState::ShuttingDown);
    QCOMPARE(loop.state(), LoopState::Closed);
}

void tst_Lifecycle::shutdownRefusesNewWork() {
    Loop loop;
    QVERIFY(loop.shutdown().ok());
    QCOMPARE(loop.state(), LoopState::Closed);

    Tracker a, b, c, d, e, f;
    QCOMPARE(loop.submit(probeTask(a)).code(), Errc::NotAccepting);
    QCOMPARE(loop.queueMicrotask(probeTask(b)).code(), Errc::NotAccepting);
    QCOMPARE(loop.scheduleTimer(0ns, probeTask(c)).code(), Errc::NotAccepting);
    QCOMPARE(loop.scheduleTimerAt(libloop::Clock::now(), probeTask(d)).code(), Errc::NotAccepting);
    Errc fromThread1 = Errc::Ok, fromThread2 = Errc::Ok;
    onOtherThread([&] {
        fromThread1 = loop.submit(probeTask(e)).code();
        fromThread2 = loop.queueMicrotask(probeTask(f)).code();
    });
    QCOMPARE(fromThread1, Errc::NotAccepting);
    QCOMPARE(fromThread2, Errc::NotAccepting);
    // Refused work is released right away and never runs.
    for (Tracker* t : {&a, &b, &c, &d, &e, &f}) {
        QCOMPARE(t->finalDestroys.load(), 1);
        QCOMPARE(t->calls.load(), 0);
    }
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void tst_Lifecycle::shutdownRefusesWorkQueuedDuringDrain() {
    // "from the call on, submit, queueMicrotask and scheduleTimer answer NotAccepting" — also
    // for the callbacks the drain itself runs.
    Loop loop;
    Tracker lateTask, lateTimer;
    Errc submitCode = Errc::Ok, timerCode = Errc::Ok;
    bool drained = false;
    QVERIFY(loop.submit([&] {
                    drained = true;
                    submitCode = loop.submit(probeTask(lateTask)).code();
                    timerCode = loop.scheduleTimer(0ns, probeTask(lateTimer)).code();
                })
                .ok());
    auto rep = loop.shutdown();
    QVERIFY(rep.ok());
    QVERIFY(drained);
    QCOMPARE(submitCode, Errc::NotAccepting);
    QCOMPARE(timerCode, Errc::NotAccepting);
    QCOMPARE(lateTask.calls.load(), 0);
    QCOMPARE(lateTimer.calls.load(), 0);
    QCOMPARE(lateTask.finalDestroys.load(), 1);
    QCOMPARE(lateTimer.finalDestroys.load(), 1);
    QCOMPARE(rep.value().tasksRun, std::uint64_t(1));
}

void tst_Lifecycle::shutdownAcceptsLoopThreadMicrotaskDuringDrain() {
    // shutdown(): microtasks that drained work queues on the loop thread belong to that work
    // (promise follow-ups): they are accepted and run before the drain ends.
    Loop loop;
    Tracker late;
    Errc code = Errc::NotAccepting;
    QVERIFY(loop.submit([&] { code = loop.queueMicrotask(probeTask(late)).code(); }).ok());
    auto rep = loop.shutdown();
    QVERIFY(rep.ok());
    QCOMPARE(code, Errc::Ok);
    QCOMPARE(late.calls.load(), 1);
    QCOMPARE(late.finalDestroys.load(), 1);
    // Once closed, the loop thread is refused too.
    Tracker after;
    QCOMPARE(loop.queueMicrotask(probeTask(after)).code(), Errc::NotAccepting);
    QCOMPARE(after.calls.load(), 0);
}

void tst_Lifecycle::shutdownRefusesOtherThreadMicrotaskDuringDrain() {
    // ... but another thread is refused from the call on, even while the drain still runs.
    Loop loop;
    Tracker remote;
    Errc code = Errc::Ok;
    QVERIFY(loop.submit([&] {
                    std::thread t([&] { code = loop.queueMicrotask(probeTask(remote)).code(); });
                    t.join();
                })
                .ok());
    auto rep = loop.shutdown();
    QVERIFY(rep.ok());
    QCOMPARE(code, Errc::NotAccepting);
    QCOMPARE(remote.calls.load(), 0);
    QCOMPARE(remote.finalDestroys.load(), 1); // the refused task was not stored: released by caller
}

void tst_Lifecycle::shutdownReportCountsWhatTheDrainRan() {
    // ShutdownReport::tasksRun: "tasks, microtasks, due timers run by the drain" — whatever the
    // drain ran, including microtasks queued by the callbacks it ran (if those are accepted).
    Loop loop;
    int ran = 0;
    int accepted = 0;
    auto queueChild = [&] {
        if (loop.queueMicrotask([&] { ++ran; }).ok())
            ++accepted;
    };
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.submit([&] {
                        ++ran;
                        queueChild();
                    })
                    .ok());
    QVERIFY(loop.scheduleTimer(0ns,
                               [&] {
                                   ++ran;
                                   queueChild();
                               })
                .ok());
    QVERIFY(loop.queueMicrotask([&] { ++ran; }).ok());
    auto rep = loop.shutdown();
    QVERIFY(rep.ok());
    QCOMPARE(ran, 5 + accepted);
    QCOMPARE(rep.value().tasksRun, std::uint64_t(ran));
}

void tst_Lifecycle::shutdownRunsEverythingAcceptedAndReports() {
    Loop loop;
    Tracker tasks, internal, tasksThread, micro, dueTimers, pendingTimers;
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.submit(probeTask(tasks)).ok());
    for (int i = 0; i < 2; ++i)
        QVERIFY(loop.submitInternal(probeTask(internal)).ok());
    bool okThread = true;
    onOtherThread([&] {
        for (int i = 0; i < 2; ++i)
            okThread = loop.submit(probeTask(tasksThread)).ok() && okThread;
    });
    QVERIFY(okThread);
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.queueMicrotask(probeTask(micro)).ok());
    for (int i = 0; i < 2; ++i)
        QVERIFY(loop.scheduleTimer(0ns, probeTask(dueTimers)).ok());
    for (int i = 0; i < 2; ++i)
        QVERIFY(loop.scheduleTimer(1h, probeTask(pendingTimers)).ok());

    auto rep = loop.shutdown(ShutdownTimers::CancelPending);
    QVERIFY(rep.ok());
    QCOMPARE(loop.state(), LoopState::Closed);

    QCOMPARE(tasks.calls.load(), 3);
    QCOMPARE(internal.calls.load(), 2);
    QCOMPARE(tasksThread.calls.load(), 2);
    QCOMPARE(micro.calls.load(), 3);
    QCOMPARE(dueTimers.calls.load(), 2);
    QCOMPARE(pendingTimers.calls.load(), 0);
    // tasks, microtasks and due timers run by the drain
    QCOMPARE(rep.value().tasksRun, std::uint64_t(3 + 2 + 2 + 3 + 2));
    QCOMPARE(rep.value().timersCancelled, std::uint64_t(2));
    // Everything was released.
    for (Tracker* t : {&tasks, &internal, &tasksThread, &micro, &dueTimers, &pendingTimers})
        QCOMPARE(t->finalDestroys.load(), t->calls.load() + (t == &pendingTimers ? 2 : 0));
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void tst_Lifecycle::shutdownCancelPendingCancelsNotYetDueTimers() {
    Loop loop;
    Tracker pending, pendingThread, due;
    for (int i = 0; i < 2; ++i)
        QVERIFY(loop.scheduleTimer(1h, probeTask(pending)).ok());
    QVERIFY(loop.scheduleTimerAt(libloop::Clock::now() + 2h, probeTask(pending)).ok());
    // Scheduled from another thread: not in the heap yet until the loop thread inserts it.
    bool okThread = false;
    onOtherThread([&] { okThread = loop.scheduleTimer(1h, probeTask(pendingThread)).ok(); });
    QVERIFY(okThread);
    QVERIFY(loop.scheduleTimer(-5ms, probeTask(due)).ok()); // delay <= 0: due now

    auto rep = loop.shutdown(ShutdownTimers::CancelPending);
    QVERIFY(rep.ok());
    QCOMPARE(due.calls.load(), 1);
    QCOMPARE(pending.calls.load(), 0);
    QCOMPARE(pendingThread.calls.load(), 0);
    QCOMPARE(rep.value().timersCancelled, std::uint64_t(4));
    QCOMPARE(rep.value().tasksRun, std::uint64_t(1));
    QCOMPARE(pending.finalDestroys.load(), 3);
    QCOMPARE(pendingThread.finalDestroys.load(), 1);
    QCOMPARE(due.finalDestroys.load(), 1);
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void tst_Lifecycle::shutdownWaitForAllRunsPendingTimer() {
    Loop loop;
    Tracker timer;
    QVERIFY(loop.scheduleTimer(20ms, probeTask(timer)).ok());
    auto rep = loop.shutdown(ShutdownTimers::WaitForAll);
    QVERIFY(rep.ok());
    QCOMPARE(timer.calls.load(), 1);
    QCOMPARE(timer.finalDestroys.load(), 1);
    QCOMPARE(rep.value().tasksRun, std::uint64_t(1));
    QCOMPARE(rep.value().timersCancelled, std::uint64_t(0));
    QCOMPARE(loop.state(), LoopState::Closed);
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
}

void tst_Lifecycle::shutdownWithConcurrentSubmitters() {
    constexpr int kProducers = 4;
    // Memory cap: a producer that gets this far ahead (a fast machine) pauses until shutdown()
    // begins, then goes on; every producer stops at its first refusal.
    constexpr int kMaxPerProducer = 200000;
    constexpr int kBacklog = 250; // per producer, queued and not yet run at shutdown
    Loop loop;
    std::vector<std::vector<int>> ran(kProducers); // written by the loop thread (this one)
    int ranTotal = 0;
    std::vector<std::atomic<int>> accepted(kProducers);  // written by producer p only
    std::vector<Errc> refusedCode(kProducers, Errc::Ok); // written by producer p only
    std::vector<std::atomic<bool>> paused(kProducers);   // at the cap, waiting for shutdown
    std::atomic<bool> shuttingDown{false};

    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            for (int i = 0;; ++i) {
                if (i == kMaxPerProducer) {
                    paused[std::size_t(p)].store(true);
                    while (!shuttingDown.load())
                        std::this_thread::yield();
                }
                Status st = loop.submit([&ran, &ranTotal, p, i] {
                    ran[std::size_t(p)].push_back(i);
                    ++ranTotal;
                });
                if (!st.ok()) {
                    refusedCode[std::size_t(p)] = st.code();
                    break; // stop at the first refusal
                }
                accepted[std::size_t(p)].fetch_add(1);
            }
        });
    }
    // Phase 1: the loop runs concurrently with the producers.
    const bool phase1 = pumpUntil(loop, [&] { return ranTotal >= 500; });
    // Phase 2: without running the loop, let every producer queue a backlog (one paused at the
    // cap has one already: the loop ran ~500); the producers keep submitting while shutdown()
    // drains.
    std::vector<int> mark(kProducers);
    for (int p = 0; p < kProducers; ++p)
        mark[std::size_t(p)] = accepted[std::size_t(p)].load();
    const bool phase2 = waitFor([&] {
        for (int p = 0; p < kProducers; ++p)
            if (accepted[std::size_t(p)].load() < mark[std::size_t(p)] + kBacklog &&
                !paused[std::size_t(p)].load())
                return false;
        return true;
    });
    const int ranBefore = ranTotal;
    shuttingDown.store(true);
    auto rep = loop.shutdown();
    for (auto& t : producers)
        t.join();
    QVERIFY(phase1);
    QVERIFY(phase2);
    QVERIFY(rep.ok());
    QCOMPARE(loop.state(), LoopState::Closed);

    int acceptedTotal = 0, refusedTotal = 0;
    for (int p = 0; p < kProducers; ++p) {
        const int acc = accepted[std::size_t(p)].load();
        acceptedTotal += acc;
        // Every producer was stopped by the shutdown, with NotAccepting.
        QCOMPARE(refusedCode[std::size_t(p)], Errc::NotAccepting);
        ++refusedTotal;
        // Every accepted task ran exactly once (in order); the refused one (index acc) never ran.
        const auto& r = ran[std::size_t(p)];
        QCOMPARE(int(r.size()), acc);
        for (int i = 0; i < int(r.size()); ++i) {
            if (r[std::size_t(i)] != i)
                QFAIL(qPrintable(QStringLiteral("producer %1: position %2 holds %3")
                                     .arg(p)
                                     .arg(i)
                                     .arg(r[std::size_t(i)])));
        }
    }
    qInfo("accepted %d, refused %d, run by the drain %d", acceptedTotal, refusedTotal,
          ranTotal - ranBefore);
    QCOMPARE(ranTotal, acceptedTotal);
    QVERIFY(ranTotal - ranBefore >= kProducers * kBacklog);
    QCOMPARE(rep.value().tasksRun, std::uint64_t(ranTotal - ranBefore));

    // Nothing runs any more.
    (void)loop.runOnce(0ns);
    QCOMPARE(ranTotal, acceptedTotal);
}

void tst_Lifecycle::shutdownFromOtherThreadWhenIdle() {
    // Nobody runs the loop: any thread may shut it down; the drain runs on that thread.
    Loop loop;
    std::atomic<int> runs{0};
    std::atomic<bool> ranOnOtherThread{true};
    std::thread::id otherId;
    for (int i = 0; i < 10; ++i)
        QVERIFY(loop.submit([&] {
                        runs.fetch_add(1);
                        if (std::this_thread::get_id() != otherId)
                            ranOnOtherThread = false;
                    })
                    .ok());
    bool ok = false;
    std::uint64_t reported = 0;
    std::thread t([&] {
        otherId = std::this_thread::get_id(); // before any task can run
        auto rep = loop.shutdown();
        ok = rep.ok();
        if (ok)
            reported = rep.value().tasksRun;
    });
    t.join();
    QVERIFY(ok);
    QCOMPARE(runs.load(), 10);
    QVERIFY2(ranOnOtherThread.load(), "the drain did not run on the thread that called shutdown()");
    QCOMPARE(reported, std::uint64_t(10));
    QCOMPARE(loop.state(), LoopState::Closed);
}

void tst_Lifecycle::shutdownFromOtherThreadWhileRunningIsBusy() {
    Loop loop;
    std::atomic<bool> running{false};
    Errc code = Errc::Ok;
    LoopState stateAfter = LoopState::Closed;
    bool acceptsAfter = false;
    QVERIFY(loop.submit([&] { running = true; }).ok());
    std::thread other([&] {
        waitFor([&] { return running.load(); });
        code = loop.shutdown().code();
        stateAfter = loop.state();
        // A refused call has no effect: the loop still accepts work.
        acceptsAfter = loop.submit([&] { loop.stop(); }).ok();
        if (!acceptsAfter)
            loop.stop();
    });
    Status st = loop.run();
    other.join();
    QVERIFY(st.ok());
    QCOMPARE(code, Errc::Busy);
    QVERIFY(stateAfter != LoopState::ShuttingDown && stateAfter != LoopState::Closed);
    QVERIFY(acceptsAfter);
}

void tst_Lifecycle::closeReleasesEverythingWithoutRunning() {
    Pipe pipe;
    QVERIFY(pipe.r >= 0);
    Everything e;
    Loop loop(smallRing());
    queueEverything(loop, e, pipe.r);
    if (QTest::currentTestFailed())
        return;
    QCOMPARE(loop.registeredFds(), std::size_t(1));

    QVERIFY(loop.close().ok());
    checkAllReleasedNoneRun(e);
    QCOMPARE(loop.state(), LoopState::Closed);
    QCOMPARE(loop.registeredFds(), std::size_t(0));
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
    QVERIFY2(fdIsOpen(pipe.r), "close() must unregister fds, not close them");

    // And nothing runs afterwards either.
    (void)loop.runOnce(0ns);
    checkAllReleasedNoneRun(e);
}

void tst_Lifecycle::closeIsIdempotent() {
    Loop loop;
    Tracker t;
    QVERIFY(loop.submit(probeTask(t)).ok());
    QVERIFY(loop.close().ok());
    QCOMPARE(t.finalDestroys.load(), 1);
    QVERIFY(loop.close().ok());
    QVERIFY(loop.close().ok());
    QCOMPARE(loop.state(), LoopState::Closed);
    QCOMPARE(t.finalDestroys.load(), 1);
    QCOMPARE(t.calls.load(), 0);
    // After shutdown too.
    Loop loop2;
    QVERIFY(loop2.shutdown().ok());
    QVERIFY(loop2.close().ok());
    QCOMPARE(loop2.state(), LoopState::Closed);
}

void tst_Lifecycle::closeFromInsideTaskStopsEverything() {
    Loop loop(smallRing());
    Tracker laterTask, micro, timer;
    Status closeStatus(Errc::SystemError);
    bool closerRan = false;
    QVERIFY(loop.submit([&] {
                    closerRan = true;
                    QVERIFY(loop.queueMicrotask(probeTask(micro)).ok());
                    closeStatus = loop.close(); // "Immediate: nothing more runs"
                })
                .ok());
    QVERIFY(loop.submit(probeTask(laterTask)).ok());
    QVERIFY(loop.scheduleTimer(1h, probeTask(timer)).ok());
    (void)loop.runOnce(0ns);
    QVERIFY(closerRan);
    QVERIFY(closeStatus.ok());
    QCOMPARE(loop.state(), LoopState::Closed);
    QCOMPARE(laterTask.calls.load(), 0);
    QCOMPARE(micro.calls.load(), 0);
    QCOMPARE(timer.calls.load(), 0);
    QCOMPARE(laterTask.finalDestroys.load(), 1);
    QCOMPARE(micro.finalDestroys.load(), 1);
    QCOMPARE(timer.finalDestroys.load(), 1);
}

void tst_Lifecycle::destructorReleasesWithoutClose() {
    Pipe pipe;
    QVERIFY(pipe.r >= 0);
    Everything e;
    {
        Loop loop(smallRing());
        queueEverything(loop, e, pipe.r);
        if (QTest::currentTestFailed())
            return;
    }
    checkAllReleasedNoneRun(e);
    QVERIFY2(fdIsOpen(pipe.r), "~Loop must unregister fds, not close them");
}

void tst_Lifecycle::runAfterCloseReturnsAndRunsNothing() {
    Loop loop;
    Tracker t;
    QVERIFY(loop.submit(probeTask(t)).ok());
    QVERIFY(loop.close().ok());

    // run(): "Iterates until stop() or the loop is closed" -> returns at once.
    (void)loop.run();
    // runOnce: the returned value is unspecified for a closed loop; if it reports success it
    // must report that nothing was started.
    auto r0 = loop.runOnce(0ns);
    if (r0.ok())
        QCOMPARE(r0.value(), std::size_t(0));

    // Even an unbounded runOnce must not wait forever on a closed loop. (Guard: if it does,
    // wake it after the hang guard and fail instead of hanging.)
    std::atomic<bool> returned{false}, fellBack{false};
    std::thread guard([&] {
        if (!waitFor([&] { return returned.load(); })) {
            fellBack = true;
            while (!returned.load()) {
                loop.wakeUp();
                loop.stop();
                std::this_thread::sleep_for(10ms);
            }
        }
    });
    auto rf = loop.runOnce(libloop::kForever);
    returned = true;
    guard.join();
    QVERIFY2(!fellBack.load(), "runOnce(kForever) waited on a closed loop");
    if (rf.ok())
        QCOMPARE(rf.value(), std::size_t(0));
    QCOMPARE(t.calls.load(), 0);
    QCOMPARE(loop.state(), LoopState::Closed);
}

void tst_Lifecycle::refusedAfterClose() {
    Loop loop;
    QVERIFY(loop.close().ok());
    Tracker a, b, c;
    QCOMPARE(loop.submit(probeTask(a)).code(), Errc::NotAccepting);
    QCOMPARE(loop.queueMicrotask(probeTask(b)).code(), Errc::NotAccepting);
    QCOMPARE(loop.scheduleTimer(0ns, probeTask(c)).code(), Errc::NotAccepting);
    for (Tracker* t : {&a, &b, &c}) {
        QCOMPARE(t->finalDestroys.load(), 1);
        QCOMPARE(t->calls.load(), 0);
    }
}

void tst_Lifecycle::loopThreadIsConstructingThread() {
    Loop loop;
    QVERIFY(loop.isLoopThread());
    bool other = true;
    onOtherThread([&] { other = loop.isLoopThread(); });
    QVERIFY(!other);
}

void tst_Lifecycle::attachToCurrentThreadMovesOwnership() {
    Loop loop;
    bool attached = false, isLoopThere = false, internalOk = false, ranThere = false;
    std::size_t ranCount = 0;
    onOtherThread([&] {
        attached = loop.attachToCurrentThread().ok();
        isLoopThere = loop.isLoopThread();
        internalOk = loop.submitInternal([&] { ranThere = true; }).ok();
        auto r = loop.runOnce(0ns);
        ranCount = r.ok() ? r.value() : 0;
    });
    QVERIFY(attached);
    QVERIFY(isLoopThere);
    QVERIFY(internalOk);
    QVERIFY(ranThere);
    QCOMPARE(ranCount, std::size_t(1));

    // The original thread is no longer the loop thread.
    QVERIFY(!loop.isLoopThread());
    QCOMPARE(loop.submitInternal([] {}).code(), Errc::WrongThread);
    QCOMPARE(loop.runOnce(0ns).code(), Errc::WrongThread);

    // Attach back (nobody runs the loop), then it works here again.
    QVERIFY(loop.attachToCurrentThread().ok());
    QVERIFY(loop.isLoopThread());
    bool ranHere = false;
    QVERIFY(loop.submitInternal([&] { ranHere = true; }).ok());
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(1));
    QVERIFY(ranHere);
}

void tst_Lifecycle::attachWhileRunningIsBusy() {
    Loop loop;
    std::atomic<bool> running{false};
    Errc code = Errc::Ok;
    bool isLoopThere = true;
    QVERIFY(loop.submit([&] { running = true; }).ok());
    std::thread other([&] {
        waitFor([&] { return running.load(); });
        code = loop.attachToCurrentThread().code();
        isLoopThere = loop.isLoopThread();
        loop.stop();
    });
    (void)loop.run();
    other.join();
    QCOMPARE(code, Errc::Busy);
    QVERIFY(!isLoopThere);
    QVERIFY(loop.isLoopThread());
}

void tst_Lifecycle::wrongThreadForLoopThreadEntryPoints() {
    Pipe pipe;
    QVERIFY(pipe.r >= 0);
    Loop loop;
    // One fd registered from the loop thread, for modify/unregister from elsewhere.
    Tracker registered;
    QVERIFY(
        loop.registerFd(pipe.r, FdEvent::Readable, [p = Probe(&registered)](int, unsigned) { p(); })
            .ok());

    Tracker internal, fdCb;
    Errc cSubmitInternal = Errc::Ok, cRegisterFd = Errc::Ok, cModifyFd = Errc::Ok,
         cUnregisterFd = Errc::Ok, cRunOnce = Errc::Ok, cRun = Errc::Ok;
    onOtherThread([&] {
        cSubmitInternal = loop.submitInternal(probeTask(internal)).code();
        cRegisterFd =
            loop.registerFd(pipe.w, FdEvent::Writable, [p = Probe(&fdCb)](int, unsigned) { p(); })
                .code();
        cModifyFd = loop.modifyFd(pipe.r, FdEvent::Readable | FdEvent::Writable).code();
        cUnregisterFd = loop.unregisterFd(pipe.r).code();
        cRunOnce = loop.runOnce(0ns).code();
        cRun = loop.run().code();
    });
    QCOMPARE(cSubmitInternal, Errc::WrongThread);
    QCOMPARE(cRegisterFd, Errc::WrongThread);
    QCOMPARE(cModifyFd, Errc::WrongThread);
    QCOMPARE(cUnregisterFd, Errc::WrongThread);
    QCOMPARE(cRunOnce, Errc::WrongThread);
    QCOMPARE(cRun, Errc::WrongThread);

    // Refused calls had no effect: callables released, nothing registered or unregistered.
    QCOMPARE(internal.finalDestroys.load(), 1);
    QCOMPARE(fdCb.finalDestroys.load(), 1);
    QCOMPARE(loop.registeredFds(), std::size_t(1));
    QCOMPARE(registered.finalDestroys.load(), 0);
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));
    QCOMPARE(internal.calls.load(), 0);
    QCOMPARE(fdCb.calls.load(), 0);
    QCOMPARE(registered.calls.load(), 0); // the pipe is empty: not readable

    QVERIFY(loop.unregisterFd(pipe.r).ok());
    QCOMPARE(registered.finalDestroys.load(), 1);
}

QTEST_APPLESS_MAIN(tst_Lifecycle)
#include "tst_lifecycle.moc"
