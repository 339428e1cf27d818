// Tests for libloop::Loop microtasks (loop.h): FIFO order across the ring and its overflow list,
// concurrent producers, null rejection, the checkpoint budget, HTML checkpoint semantics and the
// error hook.
//
// No assertion depends on wall-clock time: waits are bounded by a generous deadline only to avoid
// hanging when something is broken.
#include <libloop/loop.h>

#include <QTest>

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
using libloop::MetricsSnapshot;
using libloop::Status;
using libloop::Task;

namespace {

std::vector<int> iota(int from, int to) {
    std::vector<int> v;
    for (int i = from; i < to; ++i)
        v.push_back(i);
    return v;
}

LoopOptions ringOptions(std::uint32_t capacity, std::uint32_t budget = 1024) {
    LoopOptions o;
    o.microtaskRingCapacity = capacity;
    o.microtaskBudget = budget;
    return o;
}

} // namespace

class tst_Microtasks : public QObject {
    Q_OBJECT

private slots:
    void ringCapacityRoundedUp_data();
    void ringCapacityRoundedUp();
    void fifoAcrossRingAndOverflowFromLoopThread();
    void queueDuringDrainGoesAfterOverflow();
    void fifoAcrossRingAndOverflowFromProducerThread();
    void concurrentProducersExactlyOnceInOrder();
    void queuedOutsideCallbackRuns();
    void microtaskFromOtherThreadWakesSleepingLoop();
    void nullRejected();
    void budgetLimitsOneCheckpoint();
    void budgetDoesNotStarveTasks();
    void budgetZeroIsUnlimited();
    void microtaskQueuedByMicrotaskRunsInSameCheckpoint();
    void throwingMicrotaskGoesToErrorHook();
    void microtaskIsDestroyedBeforeErrorHookRuns();
    void checkpointHookRunsAfterMicrotasksUntilIdle();
    void checkpointHookBoundedByBudgetAndNotReentrant();
    void checkpointHookExceptionGoesToErrorHook();
    void checkpointHookOnlyOnLoopThread();
};

void tst_Microtasks::ringCapacityRoundedUp_data() {
    QTest::addColumn<uint>("requested");
    QTest::addColumn<uint>("expected");
    QTest::newRow("0") << 0u << 2u;
    QTest::newRow("1") << 1u << 2u;
    QTest::newRow("2") << 2u << 2u;
    QTest::newRow("5") << 5u << 8u;
    QTest::newRow("8") << 8u << 8u;
    QTest::newRow("100") << 100u << 128u;
}

void tst_Microtasks::ringCapacityRoundedUp() {
    QFETCH(uint, requested);
    QFETCH(uint, expected);
    Loop loop(ringOptions(requested));
    QCOMPARE(loop.snapshot().microtaskRingCapacity, std::uint64_t(expected));
}

void tst_Microtasks::fifoAcrossRingAndOverflowFromLoopThread() {
    Loop loop(ringOptions(8));
    std::vector<int> order;
    MetricsSnapshot inside;

    // Round 1: 50 microtasks into a ring of 8 -> 8 in the ring, the rest in the overflow list.
    QVERIFY(loop.submit([&] {
                    for (int i = 0; i < 50; ++i)
                        QVERIFY(loop.queueMicrotask([&order, i] { order.push_back(i); }).ok());
                    inside = loop.snapshot();
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(order, iota(0, 50));
    QCOMPARE(inside.microtaskRingCapacity, std::uint64_t(8));
    QVERIFY2(inside.microtaskOverflow > 0, "the overflow list was not used");
    QCOMPARE(inside.microtaskRingUsed + inside.microtaskOverflow, std::uint64_t(50));

    MetricsSnapshot after = loop.snapshot();
    QCOMPARE(after.microtaskOverflow, std::uint64_t(0));
    QCOMPARE(after.microtaskRingUsed, std::uint64_t(0));

    // Round 2: the overflow drained, so new microtasks go to the ring again.
    order.clear();
    QVERIFY(loop.submit([&] {
                    for (int i = 0; i < 5; ++i)
                        QVERIFY(loop.queueMicrotask([&order, i] { order.push_back(i); }).ok());
                    inside = loop.snapshot();
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(order, iota(0, 5));
    QCOMPARE(inside.microtaskOverflow, std::uint64_t(0));
    QCOMPARE(inside.microtaskRingUsed, std::uint64_t(5));

    // Round 3: ring -> overflow again, order still kept.
    order.clear();
    QVERIFY(loop.submit([&] {
                    for (int i = 0; i < 50; ++i)
                        QVERIFY(loop.queueMicrotask([&order, i] { order.push_back(i); }).ok());
                    inside = loop.snapshot();
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(order, iota(0, 50));
    QVERIFY(inside.microtaskOverflow > 0);
    QCOMPARE(loop.snapshot().microtaskOverflow, std::uint64_t(0));
}

void tst_Microtasks::queueDuringDrainGoesAfterOverflow() {
    // While the overflow list is non-empty the ring gets free slots as microtasks run; a
    // microtask queued then must still run after everything queued before it.
    Loop loop(ringOptions(8));
    std::vector<int> order;
    QVERIFY(loop.submit([&] {
                    for (int i = 0; i < 20; ++i) {
                        QVERIFY(loop.queueMicrotask([&, i] {
                                        order.push_back(i);
                                        if (i == 0 || i == 5 || i == 12 || i == 19)
                                            QVERIFY(loop.queueMicrotask(
                                                            [&, i] { order.push_back(100 + i); })
                                                        .ok());
                                    })
                                    .ok());
                    }
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    std::vector<int> expected = iota(0, 20);
    for (int v : {100, 105, 112, 119})
        expected.push_back(v);
    QCOMPARE(order, expected);
}

void tst_Microtasks::fifoAcrossRingAndOverflowFromProducerThread() {
    Loop loop(ringOptions(8));
    std::vector<int> order; // loop thread only
    std::atomic<int> refused{0};

    auto produce = [&](int from, int to) {
        std::thread t([&, from, to] {
            for (int i = from; i < to; ++i)
                if (!loop.queueMicrotask([&order, i] { order.push_back(i); }).ok())
                    refused.fetch_add(1);
        });
        t.join();
    };

    // Nobody runs the loop while the producer queues.
    produce(0, 50);
    QCOMPARE(refused.load(), 0);
    MetricsSnapshot queued = loop.snapshot();
    QVERIFY2(queued.microtaskOverflow > 0, "the overflow list was not used");
    QCOMPARE(queued.microtaskRingUsed + queued.microtaskOverflow, std::uint64_t(50));
    QVERIFY(pumpUntil(loop, [&] { return order.size() >= 50; }));
    QCOMPARE(order, iota(0, 50));
    QCOMPARE(loop.snapshot().microtaskOverflow, std::uint64_t(0));

    // The ring is used again once the overflow drained.
    order.clear();
    produce(0, 5);
    MetricsSnapshot small = loop.snapshot();
    QCOMPARE(small.microtaskOverflow, std::uint64_t(0));
    QCOMPARE(small.microtaskRingUsed, std::uint64_t(5));
    QVERIFY(pumpUntil(loop, [&] { return order.size() >= 5; }));
    QCOMPARE(order, iota(0, 5));

    // And overflow again.
    order.clear();
    produce(0, 50);
    QVERIFY(loop.snapshot().microtaskOverflow > 0);
    QVERIFY(pumpUntil(loop, [&] { return order.size() >= 50; }));
    QCOMPARE(order, iota(0, 50));
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(int(order.size()), 50);
    QCOMPARE(refused.load(), 0);
}

void tst_Microtasks::concurrentProducersExactlyOnceInOrder() {
    constexpr int kProducers = 4;
    constexpr int kPerProducer = 20000;
    constexpr int kHeadStart = 1000; // per producer, queued before the loop starts draining
    Loop loop(ringOptions(64));
    std::vector<std::vector<int>> seen(kProducers); // loop thread only
    int total = 0;                                  // loop thread only
    std::atomic<int> refused{0};
    std::vector<std::atomic<int>> progress(kProducers);

    {
        std::vector<std::jthread> producers;
        for (int p = 0; p < kProducers; ++p) {
            producers.emplace_back([&, p] {
                for (int i = 0; i < kPerProducer; ++i) {
                    if (!loop.queueMicrotask([&seen, &total, p, i] {
                                 seen[std::size_t(p)].push_back(i);
                                 ++total;
                             })
                             .ok())
                        refused.fetch_add(1);
                    progress[std::size_t(p)].store(i + 1, std::memory_order_relaxed);
                }
            });
        }
        // Let the producers get ahead of the ring (64) so the overflow list is certainly used,
        // then drain concurrently with them.
        const bool headStart = waitFor([&] {
            for (auto& pr : progress)
                if (pr.load(std::memory_order_relaxed) < kHeadStart)
                    return false;
            return true;
        });
        const bool done = pumpUntil(
            loop, [&] { return total >= kProducers * kPerProducer || refused.load() > 0; });
        producers.clear(); // join
        QVERIFY(headStart);
        QCOMPARE(refused.load(), 0);
        QVERIFY2(done, qPrintable(QStringLiteral("only %1 microtasks ran").arg(total)));
    }
    for (int k = 0; k < 3; ++k)
        QVERIFY(loop.runOnce(0ns).ok());

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
    // First snapshot: the maxima since the loop started.
    MetricsSnapshot s = loop.snapshot();
    QVERIFY2(s.microtaskOverflowMax > 0, "the overflow list was never used");
    QCOMPARE(s.microtaskOverflow, std::uint64_t(0));
    QCOMPARE(s.microtaskRingUsed, std::uint64_t(0));
}

void tst_Microtasks::queuedOutsideCallbackRuns() {
    // From the loop thread while no callback runs: it runs at the next checkpoint.
    Loop loop;
    std::vector<int> order;
    for (int i = 0; i < 3; ++i)
        QVERIFY(loop.queueMicrotask([&order, i] { order.push_back(i); }).ok());
    QVERIFY(order.empty()); // never synchronously
    QVERIFY(pumpUntil(
        loop, [&] { return order.size() >= 3; }, 10));
    QCOMPARE(order, iota(0, 3));
}

void tst_Microtasks::microtaskFromOtherThreadWakesSleepingLoop() {
    Loop loop;
    std::atomic<bool> ran{false}, returned{false}, fellBack{false};
    std::thread other([&] {
        waitFor([&] { return loop.state() == LoopState::Sleeping; });
        (void)loop.queueMicrotask([&] { ran = true; });
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
    QVERIFY2(!fellBack.load(), "queueMicrotask from another thread did not wake the waiting loop");
    QVERIFY(r.ok());
    // The loop does not sleep while microtasks are left: it ran in this call or runs right away.
    QVERIFY(pumpUntil(
        loop, [&] { return ran.load(); }, 2));
}

void tst_Microtasks::nullRejected() {
    Loop loop;
    QCOMPARE(loop.queueMicrotask(Task{}).code(), Errc::NullCallable);
    QCOMPARE(loop.queueMicrotask(nullptr).code(), Errc::NullCallable);
    QCOMPARE(loop.queueMicrotask(std::function<void()>{}).code(), Errc::NullCallable);
    Errc fromTask = Errc::Ok;
    QVERIFY(loop.submit([&] { fromTask = loop.queueMicrotask(Task{}).code(); }).ok());
    Errc fromThread = Errc::Ok;
    std::thread t([&] { fromThread = loop.queueMicrotask(Task{}).code(); });
    t.join();
    // Only the submitted task runs: no empty microtask was stored.
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(1));
    QCOMPARE(fromTask, Errc::NullCallable);
    QCOMPARE(fromThread, Errc::NullCallable);
    QCOMPARE(value(loop.runOnce(0ns)), std::size_t(0));
    QCOMPARE(loop.snapshot().microtaskRingUsed, std::uint64_t(0));
}

void tst_Microtasks::budgetLimitsOneCheckpoint() {
    // Budget 16: the checkpoint after T0 runs 16 microtasks of an endless chain, then T1 (the next
    // callback of the same iteration) runs and sees exactly 16.
    Loop loop(ringOptions(64, 16));
    int runs = 0;
    bool stopChain = false;
    int runsWhenT1Ran = -1;
    std::function<void()> chain = [&] {
        ++runs;
        if (!stopChain && runs < 1000000)
            QVERIFY(loop.queueMicrotask([&] { chain(); }).ok());
    };
    QVERIFY(loop.submit([&] { QVERIFY(loop.queueMicrotask([&] { chain(); }).ok()); }).ok());
    QVERIFY(loop.submit([&] {
                    runsWhenT1Ran = runs;
                    stopChain = true;
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(runsWhenT1Ran, 16);
    QVERIFY(loop.snapshot().microtaskBudgetHits > 0);
    QVERIFY(pumpUntil(
        loop, [&] { return value(loop.runOnce(0ns)) == 0; }, 20));
    QVERIFY(runs < 1000000);
}

void tst_Microtasks::budgetDoesNotStarveTasks() {
    Loop loop(ringOptions(64, 16));
    int runs = 0;
    bool flag = false;
    bool taskRan = false;
    bool runaway = false;
    std::function<void()> chain = [&] {
        ++runs;
        if (flag)
            return;
        if (runs >= 1000000) { // safety net: keeps a broken budget from hanging the test
            runaway = true;
            return;
        }
        QVERIFY(loop.queueMicrotask([&] { chain(); }).ok());
    };
    QVERIFY(loop.submit([&] { QVERIFY(loop.queueMicrotask([&] { chain(); }).ok()); }).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QVERIFY(runs > 0);
    QVERIFY(!flag);

    // The microtask re-queues itself forever; a task submitted now must still get to run.
    QVERIFY(loop.submit([&] {
                    flag = true;
                    taskRan = true;
                })
                .ok());
    QVERIFY(pumpUntil(
        loop, [&] { return taskRan; }, 100));
    QVERIFY(taskRan);
    QVERIFY(!runaway);
    QVERIFY(loop.snapshot().microtaskBudgetHits > 0);

    // With the flag set the chain ends: the loop becomes idle.
    QVERIFY(pumpUntil(
        loop, [&] { return value(loop.runOnce(0ns)) == 0; }, 20));
    QVERIFY(!runaway);
}

void tst_Microtasks::budgetZeroIsUnlimited() {
    constexpr int kChain = 10000;
    Loop loop(ringOptions(64, 0));
    int runs = 0;
    int runsWhenT1Ran = -1;
    std::function<void()> chain = [&] {
        ++runs;
        if (runs < kChain)
            QVERIFY(loop.queueMicrotask([&] { chain(); }).ok());
    };
    QVERIFY(loop.submit([&] { QVERIFY(loop.queueMicrotask([&] { chain(); }).ok()); }).ok());
    QVERIFY(loop.submit([&] { runsWhenT1Ran = runs; }).ok());
    // The whole chain runs in the checkpoint after T0, before T1.
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(runs, kChain);
    QCOMPARE(runsWhenT1Ran, kChain);
    QCOMPARE(loop.snapshot().microtaskBudgetHits, std::uint64_t(0));
}

void tst_Microtasks::microtaskQueuedByMicrotaskRunsInSameCheckpoint() {
    Loop loop;
    std::vector<std::string> order;
    QVERIFY(loop.submit([&] {
                    order.push_back("T0");
                    QVERIFY(loop.queueMicrotask([&] {
                                    order.push_back("A");
                                    QVERIFY(loop.queueMicrotask([&] {
                                                    order.push_back("C");
                                                    QVERIFY(loop.queueMicrotask(
                                                                    [&] { order.push_back("D"); })
                                                                .ok());
                                                })
                                                .ok());
                                })
                                .ok());
                    QVERIFY(loop.queueMicrotask([&] { order.push_back("B"); }).ok());
                })
                .ok());
    QVERIFY(loop.submit([&] { order.push_back("T1"); }).ok());
    QVERIFY(loop.runOnce(0ns).ok());
    const std::vector<std::string> expected{"T0", "A", "B", "C", "D", "T1"};
    QVERIFY2(order == expected, qPrintable(QString::fromStdString([&] {
                 std::string s;
                 for (auto& o : order)
                     s += o + " ";
                 return s;
             }())));
}

void tst_Microtasks::throwingMicrotaskGoesToErrorHook() {
    std::vector<CallbackKind> kinds;
    std::vector<std::string> messages;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr e, CallbackKind k) {
        kinds.push_back(k);
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            messages.emplace_back(ex.what());
        } catch (...) {
            messages.emplace_back("<unexpected exception type>");
        }
    };
    Loop loop(std::move(opt));
    std::vector<std::string> order;
    QVERIFY(loop.submit([&] {
                    order.push_back("T0");
                    QVERIFY(loop.queueMicrotask([&] {
                                    order.push_back("M1");
                                    throw std::runtime_error("microtask boom");
                                })
                                .ok());
                    QVERIFY(loop.queueMicrotask([&] { order.push_back("M2"); }).ok());
                    QVERIFY(loop.queueMicrotask([&] { order.push_back("M3"); }).ok());
                })
                .ok());
    QVERIFY(loop.submit([&] { order.push_back("T1"); }).ok());
    QVERIFY(loop.runOnce(0ns).ok());

    QCOMPARE(int(kinds.size()), 1);
    QCOMPARE(kinds[0], CallbackKind::Microtask);
    QCOMPARE(QString::fromStdString(messages.at(0)), QStringLiteral("microtask boom"));
    // The following microtasks still run, in the same checkpoint (before T1).
    const std::vector<std::string> expected{"T0", "M1", "M2", "M3", "T1"};
    QVERIFY2(order == expected, qPrintable(QString::fromStdString([&] {
                 std::string s;
                 for (auto& o : order)
                     s += o + " ";
                 return s;
             }())));
}

void tst_Microtasks::microtaskIsDestroyedBeforeErrorHookRuns() {
    // "The loop has already restored its invariants (... the task is destroyed)".
    Tracker tr;
    int destroyedWhenHookRan = -1;
    int hookCalls = 0;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr, CallbackKind) {
        ++hookCalls;
        destroyedWhenHookRan = tr.finalDestroys.load();
    };
    Loop loop(std::move(opt));
    QVERIFY(loop.submit([&] {
                    QVERIFY(loop.queueMicrotask([p = Probe(&tr)] {
                                    p();
                                    throw std::runtime_error("boom");
                                })
                                .ok());
                })
                .ok());
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(hookCalls, 1);
    QCOMPARE(tr.calls.load(), 1);
    QCOMPARE(destroyedWhenHookRan, 1);
    QCOMPARE(tr.finalDestroys.load(), 1);
}

// The hook runs when a checkpoint emptied the queue; what its jobs queue runs before it is asked
// again; it stops being asked once a pass ran nothing.
void tst_Microtasks::checkpointHookRunsAfterMicrotasksUntilIdle() {
    Loop loop;
    std::vector<std::string> log;
    int foreignJobs = 0; // a foreign queue: the task puts three jobs in it
    int asked = 0;
    QVERIFY(loop.setCheckpointHook([&]() -> bool {
                    ++asked;
                    if (foreignJobs == 0)
                        return false;
                    log.push_back("foreign" + std::to_string(foreignJobs));
                    (void)loop.queueMicrotask([&, n = foreignJobs] {
                        log.push_back("micro-from-foreign" + std::to_string(n));
                    });
                    --foreignJobs;
                    return true;
                })
                .ok());
    QVERIFY(loop.submit([&] {
                    log.push_back("task");
                    foreignJobs = 3;
                    (void)loop.queueMicrotask([&] { log.push_back("micro"); });
                })
                .ok());
    QVERIFY(loop.runOnce(libloop::Duration(0)).ok());
    const std::vector<std::string> expected{"task",     "micro",
                                            "foreign3", "micro-from-foreign3",
                                            "foreign2", "micro-from-foreign2",
                                            "foreign1", "micro-from-foreign1"};
    QCOMPARE(log, expected);
    QVERIFY(asked >= 4); // three passes that ran something, then one that did not
    QVERIFY(loop.setCheckpointHook(nullptr).ok());
    const int before = asked;
    QVERIFY(loop.submit([] {}).ok());
    QVERIFY(loop.runOnce(libloop::Duration(0)).ok());
    QCOMPARE(asked, before); // removed
}

void tst_Microtasks::checkpointHookBoundedByBudgetAndNotReentrant() {
    LoopOptions o;
    o.microtaskBudget = 8;
    Loop loop(o);
    int passes = 0, nested = 0;
    bool inHook = false, busyInside = false;
    QVERIFY(loop.setCheckpointHook([&]() -> bool {
                    if (inHook)
                        ++nested;
                    inHook = true;
                    ++passes;
                    (void)loop.runOnce(
                        libloop::Duration(0)); // a nested iteration must not re-enter
                    busyInside = loop.setCheckpointHook(nullptr).code() == Errc::Busy;
                    inHook = false;
                    return true; // a foreign queue that never empties
                })
                .ok());
    QVERIFY(loop.submit([] {}).ok());
    passes = 0;
    QVERIFY(loop.runOnce(libloop::Duration(0)).ok());
    QCOMPARE(nested, 0);
    QVERIFY(passes > 0);
    QVERIFY(busyInside); // the hook cannot be replaced from inside itself
    // One top-level checkpoint asks at most `budget` times; runOnce has several checkpoints
    // (start of the iteration, after the task), so the count is bounded by a small multiple.
    QVERIFY2(passes <= 8 * 4, qPrintable(QString::number(passes)));
    QVERIFY(loop.setCheckpointHook(nullptr).ok());
}

void tst_Microtasks::checkpointHookExceptionGoesToErrorHook() {
    std::vector<CallbackKind> kinds;
    LoopOptions o;
    o.errorHook = [&](std::exception_ptr, CallbackKind k) { kinds.push_back(k); };
    Loop loop(o);
    int calls = 0;
    QVERIFY(loop.setCheckpointHook([&]() -> bool {
                    if (++calls == 1)
                        throw std::runtime_error("foreign job failed");
                    return false;
                })
                .ok());
    QVERIFY(loop.submit([] {}).ok());
    QVERIFY(loop.runOnce(libloop::Duration(0)).ok());
    QCOMPARE(kinds, std::vector<CallbackKind>{CallbackKind::Microtask});
    QVERIFY(calls >= 2); // a throwing pass counts as having run something: asked again
    QCOMPARE(loop.snapshot().callbackErrors, std::uint64_t(1));
}

void tst_Microtasks::checkpointHookOnlyOnLoopThread() {
    Loop loop;
    Status s;
    std::thread t([&] { s = loop.setCheckpointHook([] { return false; }); });
    t.join();
    QCOMPARE(s.code(), Errc::WrongThread);
}

QTEST_APPLESS_MAIN(tst_Microtasks)
#include "tst_microtasks.moc"
