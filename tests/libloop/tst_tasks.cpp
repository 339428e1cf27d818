// Tests for the task queues of libloop::Loop (loop.h): submit / submitInternal, iteration
// boundaries, re-entrancy, microtask checkpoints after tasks, error hook, stop() and wakeUp().
//
// No assertion depends on wall-clock time: waits are bounded by a generous deadline only to avoid
// hanging when something is broken.
#include <libloop/loop.h>

#include <QTest>

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "testsupport.h"

using namespace std::chrono_literals;
using namespace testsupport;
using libloop::CallbackKind;
using libloop::Errc;
using libloop::Loop;
using libloop::LoopOptions;
using libloop::LoopState;
using libloop::Status;
using libloop::Task;

class tst_Tasks : public QObject {
    Q_OBJECT

private slots:
    void submitRunsFifoSingleProducer();
    void submitFromFourThreadsExactlyOnceInOrder();
    void submitInternalFifo();
    void internalTasksRunBeforeExternal();
    void submitInternalFromOtherThreadIsWrongThread();
    void nullTaskRejected();
    void nullTaskRejectedFromOtherThread();
    void ranTaskReleasesCaptures();
    void taskSubmittedByTaskRunsInLaterIteration_data();
    void taskSubmittedByTaskRunsInLaterIteration();
    void nestedRunOnceInsideTask();
    void nestedRunEndsOnStop();
    void microtasksQueuedByTaskRunBeforeNextTask();
    void throwingTaskGoesToErrorHook();
    void taskIsDestroyedBeforeErrorHookRuns();
    void runOnceCountsEveryCallbackStarted();
    void setErrorHookReplacesHook();
    void throwingErrorHookIsSwallowed();
    void throwingTaskWithoutHookDoesNotStopLoop();
    void stopFromOtherThreadEndsSleepingRun();
    void stopFromOtherThreadEndsBusyRun();
    void wakeUpFromOtherThreadEndsRunOnceForever();
    void submitFromOtherThreadWakesRunOnceForever();
};

void tst_Tasks::submitRunsFifoSingleProducer() {
    Loop loop;
    std::vector<int> order;
    constexpr int kCount = 100;
    for (int i = 0; i < kCount; ++i)
        QVERIFY(loop.submit([&order, i] { order.push_back(i); }).ok());
    QVERIFY(order.empty()); // nothing runs synchronously

    // One iteration runs every task queued before it started.
    auto r = loop.runOnce(0ns);
    QVERIFY(r.ok());
    QCOMPARE(r.value(), std::size_t(kCount));
    QCOMPARE(int(order.size()), kCount);
    for (int i = 0; i < kCount; ++i)
        QCOMPARE(order[std::size_t(i)], i);

    // Nothing runs twice.
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));
    QCOMPARE(int(order.size()), kCount);
}

void tst_Tasks::submitFromFourThreadsExactlyOnceInOrder() {
    constexpr int kProducers = 4;
    constexpr int kPerProducer = 20000;
    Loop loop;
    std::vector<std::vector<int>> seen(kProducers); // touched on the loop thread only
    int total = 0;                                  // loop thread only
    std::atomic<int> refused{0};
    std::atomic<int> go{0};

    {
        std::vector<std::jthread> producers;
        for (int p = 0; p < kProducers; ++p) {
            producers.emplace_back([&, p] {
                go.fetch_add(1);
                while (go.load() < kProducers)
                    std::this_thread::yield();
                for (int i = 0; i < kPerProducer; ++i) {
                    Status st = loop.submit([&seen, &total, p, i] {
                        seen[std::size_t(p)].push_back(i);
                        ++total;
                    });
                    if (!st.ok())
                        refused.fetch_add(1);
                }
            });
        }
        // The loop runs concurrently with the producers.
        const bool done = pumpUntil(
            loop, [&] { return total >= kProducers * kPerProducer || refused.load() > 0; });
        producers.clear(); // join
        QCOMPARE(refused.load(), 0);
        QVERIFY2(done, qPrintable(QStringLiteral("only %1 tasks ran").arg(total)));
    }
    // A few more iterations must not run anything again.
    for (int k = 0; k < 3; ++k)
        QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));

    QCOMPARE(total, kProducers * kPerProducer);
    for (int p = 0; p < kProducers; ++p) {
        const auto& s = seen[std::size_t(p)];
        QCOMPARE(int(s.size()), kPerProducer);
        for (int i = 0; i < kPerProducer; ++i) {
            if (s[std::size_t(i)] != i)
                QFAIL(qPrintable(QStringLiteral("producer %1: position %2 holds item %3")
                                     .arg(p)
                                     .arg(i)
                                     .arg(s[std::size_t(i)])));
        }
    }
}

void tst_Tasks::submitInternalFifo() {
    Loop loop;
    std::vector<int> order;
    constexpr int kCount = 100;
    for (int i = 0; i < kCount; ++i)
        QVERIFY(loop.submitInternal([&order, i] { order.push_back(i); }).ok());
    QVERIFY(order.empty());
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(kCount));
    QCOMPARE(int(order.size()), kCount);
    for (int i = 0; i < kCount; ++i)
        QCOMPARE(order[std::size_t(i)], i);
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));
}

void tst_Tasks::internalTasksRunBeforeExternal() {
    // "the tasks queued before the iteration started: internal ones, then external ones"
    Loop loop;
    std::vector<std::string> order;
    QVERIFY(loop.submit([&] { order.push_back("ext1"); }).ok());
    QVERIFY(loop.submitInternal([&] { order.push_back("int1"); }).ok());
    QVERIFY(loop.submit([&] { order.push_back("ext2"); }).ok());
    QVERIFY(loop.submitInternal([&] { order.push_back("int2"); }).ok());
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(4));
    const std::vector<std::string> expected{"int1", "int2", "ext1", "ext2"};
    QVERIFY2(order == expected, qPrintable(QString::fromStdString([&] {
                 std::string s;
                 for (auto& o : order)
                     s += o + " ";
                 return s;
             }())));
}

void tst_Tasks::submitInternalFromOtherThreadIsWrongThread() {
    Loop loop;
    Tracker tr;
    Errc code = Errc::Ok;
    int destroyedAfterCall = -1;
    std::thread t([&] {
        code = loop.submitInternal([p = Probe(&tr)] { p(); }).code();
        destroyedAfterCall = tr.finalDestroys.load();
    });
    t.join();
    QCOMPARE(code, Errc::WrongThread);
    // A refused call stores nothing: the callable was released and never runs.
    QCOMPARE(destroyedAfterCall, 1);
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));
    QCOMPARE(tr.calls.load(), 0);
}

void tst_Tasks::nullTaskRejected() {
    Loop loop;
    QCOMPARE(loop.submit(Task{}).code(), Errc::NullCallable);
    QCOMPARE(loop.submit(nullptr).code(), Errc::NullCallable);
    QCOMPARE(loop.submit(std::function<void()>{}).code(), Errc::NullCallable);
    void (*fp)() = nullptr;
    QCOMPARE(loop.submit(fp).code(), Errc::NullCallable);

    QCOMPARE(loop.submitInternal(Task{}).code(), Errc::NullCallable);
    QCOMPARE(loop.submitInternal(std::function<void()>{}).code(), Errc::NullCallable);

    // Nothing was queued (running an empty Task would crash, so this also checks "not run").
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));

    // The loop still accepts real work afterwards.
    bool ran = false;
    QVERIFY(loop.submit([&] { ran = true; }).ok());
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(1));
    QVERIFY(ran);
}

void tst_Tasks::nullTaskRejectedFromOtherThread() {
    Loop loop;
    Errc a = Errc::Ok, b = Errc::Ok;
    std::thread t([&] {
        a = loop.submit(Task{}).code();
        b = loop.submit(std::function<void()>{}).code();
    });
    t.join();
    QCOMPARE(a, Errc::NullCallable);
    QCOMPARE(b, Errc::NullCallable);
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));
}

void tst_Tasks::ranTaskReleasesCaptures() {
    Loop loop;
    Tracker small, big;
    std::array<char, 100> pad{};
    QVERIFY(loop.submit([p = Probe(&small)] { p(); }).ok());
    QVERIFY(loop.submit([p = Probe(&big), pad] {
                    (void)pad;
                    p();
                })
                .ok());
    QCOMPARE(small.finalDestroys.load(), 0);
    QCOMPARE(big.finalDestroys.load(), 0);
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(2));
    QCOMPARE(small.calls.load(), 1);
    QCOMPARE(big.calls.load(), 1);
    // Once run, a task is destroyed: the loop keeps no captured object alive.
    QCOMPARE(small.finalDestroys.load(), 1);
    QCOMPARE(big.finalDestroys.load(), 1);
}

void tst_Tasks::taskSubmittedByTaskRunsInLaterIteration_data() {
    QTest::addColumn<bool>("internal");
    QTest::newRow("submit") << false;
    QTest::newRow("submitInternal") << true;
}

void tst_Tasks::taskSubmittedByTaskRunsInLaterIteration() {
    QFETCH(bool, internal);
    Loop loop;
    int firstRuns = 0, secondRuns = 0;
    Status inner;
    QVERIFY(loop.submit([&] {
                    ++firstRuns;
                    Task next([&] { ++secondRuns; });
                    inner = internal ? loop.submitInternal(std::move(next))
                                     : loop.submit(std::move(next));
                })
                .ok());

    // An iteration runs only the tasks queued before it started.
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(1));
    QVERIFY(inner.ok());
    QCOMPARE(firstRuns, 1);
    QCOMPARE(secondRuns, 0);

    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(1));
    QCOMPARE(firstRuns, 1);
    QCOMPARE(secondRuns, 1);

    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));
}

void tst_Tasks::nestedRunOnceInsideTask() {
    Loop loop;
    std::vector<int> order;
    std::vector<int> orderWhenNestedReturned;
    bool nestedOk = false;
    std::size_t nestedCount = 0;

    QVERIFY(loop.submit([&] {
                    order.push_back(1);
                    auto r = loop.runOnce(0ns); // re-entrant
                    nestedOk = r.ok();
                    nestedCount = value(r);
                    orderWhenNestedReturned = order;
                    order.push_back(-1); // end of task 1
                })
                .ok());
    for (int k = 2; k <= 4; ++k)
        QVERIFY(loop.submit([&order, k] { order.push_back(k); }).ok());

    QVERIFY(loop.runOnce(0ns).ok());
    // Drain whatever may be left; nothing may run twice.
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.runOnce(0ns).ok());

    QVERIFY(nestedOk);
    // Tasks 2..4 were queued before the nested iteration started: it runs them.
    const std::vector<int> expectedNested{1, 2, 3, 4};
    QCOMPARE(orderWhenNestedReturned, expectedNested);
    QCOMPARE(nestedCount, std::size_t(3));
    // The outer iteration neither loses nor repeats a task.
    const std::vector<int> expected{1, 2, 3, 4, -1};
    QCOMPARE(order, expected);
}

void tst_Tasks::nestedRunEndsOnStop() {
    Loop loop;
    std::vector<int> order;
    Status nested(Errc::SystemError);

    QVERIFY(loop.submit([&] {
                    order.push_back(1);
                    QVERIFY(loop.submit([&] {
                                    order.push_back(3);
                                    loop.stop(); // ends the innermost run(): the nested one
                                })
                                .ok());
                    nested = loop.run();
                    order.push_back(-1);
                })
                .ok());
    QVERIFY(loop.submit([&] { order.push_back(2); }).ok());

    // If stop() were ignored, the nested run() would never return: a watchdog stops it after the
    // hang guard so the test fails instead of hanging.
    std::atomic<bool> finished{false}, watchdogFired{false};
    std::thread watchdog([&] {
        if (!waitFor([&] { return finished.load(); })) {
            watchdogFired = true;
            while (!finished.load()) {
                loop.stop();
                std::this_thread::sleep_for(10ms);
            }
        }
    });
    auto r = loop.runOnce(0ns);
    finished = true;
    watchdog.join();
    QVERIFY(r.ok());
    QVERIFY(!watchdogFired.load());
    QVERIFY(nested.ok());
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.runOnce(0ns).ok());
    const std::vector<int> expected{1, 2, 3, -1};
    QCOMPARE(order, expected);
}

void tst_Tasks::microtasksQueuedByTaskRunBeforeNextTask() {
    Loop loop;
    std::vector<std::string> order;
    QVERIFY(loop.submit([&] {
                    order.push_back("T1");
                    QVERIFY(loop.queueMicrotask([&] {
                                    order.push_back("M1");
                                    QVERIFY(
                                        loop.queueMicrotask([&] { order.push_back("M3"); }).ok());
                                })
                                .ok());
                    QVERIFY(loop.queueMicrotask([&] { order.push_back("M2"); }).ok());
                    order.push_back("T1 end");
                })
                .ok());
    QVERIFY(loop.submit([&] {
                    order.push_back("T2");
                    QVERIFY(loop.queueMicrotask([&] { order.push_back("M4"); }).ok());
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    const std::vector<std::string> expected{"T1", "T1 end", "M1", "M2", "M3", "T2", "M4"};
    QVERIFY2(order == expected, qPrintable(QString::fromStdString([&] {
                 std::string s;
                 for (auto& o : order)
                     s += o + ", ";
                 return s;
             }())));
}

void tst_Tasks::throwingTaskGoesToErrorHook() {
    std::vector<CallbackKind> kinds;
    std::vector<std::string> messages;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr e, CallbackKind k) {
        kinds.push_back(k);
        try {
            std::rethrow_exception(e);
        } catch (const std::runtime_error& ex) {
            messages.emplace_back(ex.what());
        } catch (...) {
            messages.emplace_back("<unexpected exception type>");
        }
    };
    Loop loop(std::move(opt));

    std::vector<int> order;
    QVERIFY(loop.submit([&] {
                    order.push_back(1);
                    throw std::runtime_error("boom");
                })
                .ok());
    QVERIFY(loop.submit([&] { order.push_back(2); }).ok());

    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(int(kinds.size()), 1);
    QCOMPARE(kinds[0], CallbackKind::Task);
    QCOMPARE(int(messages.size()), 1);
    QCOMPARE(QString::fromStdString(messages[0]), QStringLiteral("boom"));
    // Later tasks still run (in the same iteration).
    QCOMPARE(order, (std::vector<int>{1, 2}));

    // The loop keeps working.
    QVERIFY(loop.submit([&] { order.push_back(3); }).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(order, (std::vector<int>{1, 2, 3}));
    QCOMPARE(int(kinds.size()), 1);
}

void tst_Tasks::taskIsDestroyedBeforeErrorHookRuns() {
    // "The loop has already restored its invariants (... the task is destroyed) and goes on
    // after the hook returns."
    Tracker tr;
    int destroyedWhenHookRan = -1;
    int hookCalls = 0;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr, CallbackKind) {
        ++hookCalls;
        destroyedWhenHookRan = tr.finalDestroys.load();
    };
    Loop loop(std::move(opt));
    QVERIFY(loop.submit([p = Probe(&tr)] {
                    p();
                    throw std::runtime_error("boom");
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(hookCalls, 1);
    QCOMPARE(tr.calls.load(), 1);
    QCOMPARE(destroyedWhenHookRan, 1);
    QCOMPARE(tr.finalDestroys.load(), 1);
}

void tst_Tasks::runOnceCountsEveryCallbackStarted() {
    // "Returns the number of callbacks started (tasks, timers, fd callbacks, microtasks)."
    // Here: 1 microtask queued up front, 1 timer queueing 1 microtask, 1 external task queueing
    // 2 microtasks, 1 internal task = 7 callbacks, all in one iteration.
    Loop loop;
    int ran = 0;
    auto micro = [&] { ++ran; };
    QVERIFY(loop.queueMicrotask(micro).ok());
    auto timer = [&] {
        ++ran;
        QVERIFY(loop.queueMicrotask(micro).ok());
    };
    QVERIFY(loop.scheduleTimer(0ns, timer).ok());
    auto task = [&] {
        ++ran;
        QVERIFY(loop.queueMicrotask(micro).ok());
        QVERIFY(loop.queueMicrotask(micro).ok());
    };
    QVERIFY(loop.submit(task).ok());
    QVERIFY(loop.submitInternal([&] { ++ran; }).ok());
    auto r = loop.runOnce(0ns);
    QVERIFY(r.ok());
    QCOMPARE(ran, 7);
    QCOMPARE(r.value(), std::size_t(7));
}

void tst_Tasks::setErrorHookReplacesHook() {
    Loop loop;
    int firstHook = 0, secondHook = 0;
    int seenValue = 0;
    loop.setErrorHook([&](std::exception_ptr e, CallbackKind k) {
        ++firstHook;
        QCOMPARE(k, CallbackKind::Task);
        try {
            std::rethrow_exception(e);
        } catch (int v) {
            seenValue = v;
        } catch (...) {
        }
    });
    QVERIFY(loop.submit([] { throw 42; }).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(firstHook, 1);
    QCOMPARE(seenValue, 42);

    loop.setErrorHook([&](std::exception_ptr, CallbackKind) { ++secondHook; });
    QVERIFY(loop.submit([] { throw 43; }).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(firstHook, 1);
    QCOMPARE(secondHook, 1);
}

void tst_Tasks::throwingErrorHookIsSwallowed() {
    int hookCalls = 0;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr, CallbackKind) {
        ++hookCalls;
        throw std::logic_error("hook fails too");
    };
    Loop loop(std::move(opt));
    bool afterRan = false;
    QVERIFY(loop.submit([] { throw std::runtime_error("task fails"); }).ok());
    QVERIFY(loop.submit([&] { afterRan = true; }).ok());
    auto r = loop.runOnce(0ns); // must not throw
    QVERIFY(r.ok());
    QCOMPARE(hookCalls, 1);
    QVERIFY(afterRan);
}

void tst_Tasks::throwingTaskWithoutHookDoesNotStopLoop() {
    Loop loop; // empty hook: one line on stderr
    bool afterRan = false;
    QVERIFY(
        loop.submit([] { throw std::runtime_error("expected test exception (no hook)"); }).ok());
    QVERIFY(loop.submit([&] { afterRan = true; }).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QVERIFY(afterRan);
}

void tst_Tasks::stopFromOtherThreadEndsSleepingRun() {
    Loop loop;
    std::atomic<bool> started{false}, returned{false}, fellBack{false};
    QVERIFY(loop.submit([&] { started = true; }).ok());

    std::thread other([&] {
        waitFor([&] { return started.load(); });
        // Stop it while it waits for work (bounded: proceed anyway after the guard).
        waitFor([&] { return loop.state() == LoopState::Sleeping; });
        loop.stop();
        if (!waitFor([&] { return returned.load(); })) {
            // stop() from this thread did not work: end run() from inside so the test fails
            // instead of hanging.
            fellBack = true;
            (void)loop.submit([&] { loop.stop(); });
        }
    });
    Status st = loop.run();
    returned = true;
    other.join();
    QVERIFY(!fellBack.load());
    QVERIFY(started.load());
    QVERIFY(st.ok());

    // The loop is still usable after run() returned.
    bool ran = false;
    QVERIFY(loop.submit([&] { ran = true; }).ok());
    QVERIFY(pumpUntil(loop, [&] { return ran; }));
}

void tst_Tasks::stopFromOtherThreadEndsBusyRun() {
    Loop loop;
    std::atomic<int> runs{0};
    std::atomic<bool> returned{false}, fellBack{false};
    // A task that keeps resubmitting itself: the loop never runs out of work.
    std::function<void()> spin = [&] {
        runs.fetch_add(1);
        (void)loop.submit([&] { spin(); });
    };
    QVERIFY(loop.submit([&] { spin(); }).ok());

    std::thread other([&] {
        waitFor([&] { return runs.load() >= 200; });
        loop.stop();
        if (!waitFor([&] { return returned.load(); })) {
            fellBack = true;
            (void)loop.submit([&] { loop.stop(); });
        }
    });
    Status st = loop.run();
    returned = true;
    other.join();
    QVERIFY(!fellBack.load());
    QVERIFY(st.ok());
    QVERIFY(runs.load() >= 200);
}

void tst_Tasks::wakeUpFromOtherThreadEndsRunOnceForever() {
    Loop loop;
    std::atomic<bool> returned{false}, fellBack{false};
    std::thread other([&] {
        waitFor([&] { return loop.state() == LoopState::Sleeping; });
        loop.wakeUp();
        if (!waitFor([&] { return returned.load(); })) {
            fellBack = true;
            while (!returned.load()) {
                (void)loop.submit([] {});
                std::this_thread::sleep_for(10ms);
            }
        }
    });
    auto r = loop.runOnce(libloop::kForever);
    returned = true;
    other.join();
    QVERIFY(!fellBack.load());
    QVERIFY(r.ok());
    QCOMPARE(r.value(), std::size_t(0)); // woken, nothing to run
}

void tst_Tasks::submitFromOtherThreadWakesRunOnceForever() {
    Loop loop;
    std::atomic<bool> returned{false}, fellBack{false}, ran{false};
    std::thread other([&] {
        waitFor([&] { return loop.state() == LoopState::Sleeping; });
        (void)loop.submit([&] { ran = true; });
        if (!waitFor([&] { return returned.load(); })) {
            fellBack = true;
            while (!returned.load()) {
                loop.wakeUp();
                std::this_thread::sleep_for(10ms);
            }
        }
    });
    auto r = loop.runOnce(libloop::kForever);
    returned = true;
    other.join();
    QVERIFY(!fellBack.load());
    QVERIFY(r.ok());
    // "then runs what woke it"
    QVERIFY(ran.load());
    QCOMPARE(r.value(), std::size_t(1));
}

QTEST_APPLESS_MAIN(tst_Tasks)
#include "tst_tasks.moc"
