// Unit tests of the core's internal data structures against reference models.
#include "metrics.h"
#include "timer_heap.h"

#include <QTest>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <tuple>

using namespace libloop::detail;

class TstInternals : public QObject {
    Q_OBJECT
private slots:
    void timerHeapMatchesOrderedSetUnderRandomOps();
    void timerHeapEqualDeadlinesPopInSeqOrder();
    void timerHeapRemoveOfMissingSlotIsRejected();
    void timerHeapStagedRemoveNeverTouchesOrder();
    void timerHeapSeqWrapRenumbersInOrder();
    void timerHeapPhaseLimitSurvivesTheWrap();
    void histogramRelativeErrorBelowOnePercent();
    void histogramPercentilesOfKnownDistribution();
    void histogramEmptyAndExtremes();
    void gaugeMaxResetsOnTake();
};

void TstInternals::timerHeapMatchesOrderedSetUnderRandomOps() {
    TimerHeap heap;
    std::set<std::tuple<std::int64_t, std::uint64_t, std::uint32_t>> model;
    std::map<std::uint32_t, std::pair<std::int64_t, std::uint64_t>> bySlot;
    std::mt19937_64 rng(42);
    std::uint64_t seq = 0;
    std::uint32_t nextSlot = 0;
    std::vector<std::uint32_t> freeSlots;
    for (int op = 0; op < 200000; ++op) {
        const int kind = int(rng() % 10);
        if (kind < 5) { // push
            std::uint32_t slot;
            if (!freeSlots.empty()) {
                slot = freeSlots.back();
                freeSlots.pop_back();
            } else {
                slot = nextSlot++;
            }
            const std::int64_t deadline = std::int64_t(rng() % 1000); // many equal deadlines
            QCOMPARE(heap.push(deadline, slot), seq);
            model.emplace(deadline, seq, slot);
            bySlot[slot] = {deadline, seq};
            ++seq;
        } else if (kind < 8 && !bySlot.empty()) { // remove a random present slot
            auto it = bySlot.begin();
            std::advance(it, std::ptrdiff_t(rng() % bySlot.size()));
            const std::uint32_t slot = it->first;
            QVERIFY(heap.remove(slot));
            model.erase({it->second.first, it->second.second, slot});
            bySlot.erase(it);
            freeSlots.push_back(slot);
        } else if (!heap.empty()) { // pop
            const auto top = heap.top();
            const auto& [d, s, slot] = *model.begin();
            QCOMPARE(top.deadline, d);
            QCOMPARE(top.seq(), s);
            QCOMPARE(top.slot(), slot);
            heap.pop();
            bySlot.erase(slot);
            freeSlots.push_back(slot);
            model.erase(model.begin());
        }
        QCOMPARE(heap.size(), model.size());
    }
    while (!heap.empty()) {
        QCOMPARE(heap.top().seq(), std::get<1>(*model.begin()));
        heap.pop();
        model.erase(model.begin());
    }
    QVERIFY(model.empty());
}

void TstInternals::timerHeapEqualDeadlinesPopInSeqOrder() {
    TimerHeap heap;
    for (std::uint32_t i = 0; i < 1000; ++i)
        heap.push(7, 999 - i);
    for (std::uint32_t i = 0; i < 1000; ++i) {
        QCOMPARE(heap.top().seq(), std::uint64_t(i));
        QVERIFY(heap.contains(999 - i));
        heap.pop();
        QVERIFY(!heap.contains(999 - i));
    }
}

void TstInternals::timerHeapRemoveOfMissingSlotIsRejected() {
    TimerHeap heap;
    QVERIFY(!heap.remove(3));
    heap.push(1, 3);
    QVERIFY(heap.remove(3));
    QVERIFY(!heap.remove(3));
    QVERIFY(heap.empty());
}

void TstInternals::timerHeapStagedRemoveNeverTouchesOrder() {
    // Interleave pushes (staged) with removals of staged and of flushed nodes.
    TimerHeap heap;
    for (std::uint32_t i = 0; i < 100; ++i)
        heap.push(100 - std::int64_t(i), i);
    QCOMPARE(heap.top().slot(), 99u); // flushed: deadline 1
    for (std::uint32_t i = 100; i < 200; ++i)
        heap.push(5, i); // staged
    for (std::uint32_t i = 100; i < 200; i += 2)
        QVERIFY(heap.remove(i)); // staged removals
    QVERIFY(heap.remove(99));    // heap removal
    QCOMPARE(heap.size(), std::size_t(149));
    std::int64_t lastDeadline = INT64_MIN;
    std::uint64_t lastSeq = 0;
    std::size_t popped = 0;
    while (!heap.empty()) {
        const auto top = heap.top();
        QVERIFY(top.deadline > lastDeadline ||
                (top.deadline == lastDeadline && top.seq() > lastSeq));
        QVERIFY(top.slot() < 99 || (top.slot() >= 100 && top.slot() % 2 == 1));
        lastDeadline = top.deadline;
        lastSeq = top.seq();
        heap.pop();
        ++popped;
    }
    QCOMPARE(popped, std::size_t(149));
}

// A timer phase takes its limit from beginPhase(): the pushes that follow
// (timers scheduled by its callbacks) must get seqs above it, even next to the 40-bit wrap.
void TstInternals::timerHeapPhaseLimitSurvivesTheWrap() {
    TimerHeap heap;
    heap.setNextSeqForTest(TimerHeap::kMaxSeq - 5);
    for (std::uint32_t i = 0; i < 4; ++i)
        heap.push(0, i);
    const std::uint64_t limit = heap.beginPhase();
    QCOMPARE(limit, std::uint64_t(4));     // renumbered early: 0..3 are the pending ones
    for (std::uint32_t i = 4; i < 24; ++i) // scheduled during the phase
        QVERIFY(heap.push(0, i) >= limit);
    std::size_t before = 0;
    while (!heap.heapEmpty()) { // what the phase sees: the four older nodes only
        QVERIFY(heap.heapTop().seq() < limit);
        heap.popHeapTop();
        ++before;
    }
    QCOMPARE(before, std::size_t(4));
    // Far from the wrap it changes nothing.
    TimerHeap far;
    far.setNextSeqForTest(TimerHeap::kMaxSeq - TimerHeap::kPhaseSeqHeadroom);
    (void)far.beginPhase();
    QCOMPARE(far.nextSeq(), TimerHeap::kMaxSeq - TimerHeap::kPhaseSeqHeadroom);
}

void TstInternals::timerHeapSeqWrapRenumbersInOrder() {
    TimerHeap heap;
    heap.setNextSeqForTest(TimerHeap::kMaxSeq - 5);
    for (std::uint32_t i = 0; i < 20; ++i)
        heap.push(std::int64_t(i % 3), i); // crosses the wrap after 6 pushes
    QVERIFY(heap.nextSeq() < 100);         // renumbered
    // Order is (deadline, scheduling order) across the wrap.
    std::vector<std::uint32_t> got;
    while (!heap.empty()) {
        got.push_back(heap.top().slot());
        heap.pop();
    }
    std::vector<std::uint32_t> want;
    for (int d = 0; d < 3; ++d)
        for (std::uint32_t i = 0; i < 20; ++i)
            if (int(i % 3) == d)
                want.push_back(i);
    QCOMPARE(got, want);
}

void TstInternals::histogramRelativeErrorBelowOnePercent() {
    // Every value maps to a bucket whose midpoint is within 1% of it.
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200000; ++i) {
        const int exp = int(rng() % 47);
        const std::uint64_t v = (std::uint64_t(1) << exp) + (rng() % (std::uint64_t(1) << exp));
        const unsigned b = Histogram::bucketOf(v);
        const std::uint64_t lo = Histogram::lowerBound(b), w = Histogram::width(b);
        QVERIFY2(lo <= v && v < lo + w, qPrintable(QString::number(v)));
        const double mid = double(lo) + double(w / 2);
        QVERIFY2(std::abs(mid - double(v)) / double(v) < 0.01, qPrintable(QString::number(v)));
    }
    for (std::uint64_t v = 0; v < 4096; ++v) { // contiguous, no gaps or overlaps
        const unsigned b = Histogram::bucketOf(v);
        QVERIFY(Histogram::lowerBound(b) <= v &&
                v < Histogram::lowerBound(b) + Histogram::width(b));
    }
}

void TstInternals::histogramPercentilesOfKnownDistribution() {
    Histogram h;
    for (std::uint64_t v = 1; v <= 100000; ++v)
        h.record(v * 1000); // 1 us .. 100 ms uniformly
    const auto s = h.summarize();
    QCOMPARE(s.count, std::uint64_t(100000));
    auto near = [](std::uint64_t got, double want) {
        return std::abs(double(got) - want) / want < 0.01;
    };
    QVERIFY2(near(s.p50, 50e6), qPrintable(QString::number(s.p50)));
    QVERIFY2(near(s.p90, 90e6), qPrintable(QString::number(s.p90)));
    QVERIFY2(near(s.p95, 95e6), qPrintable(QString::number(s.p95)));
    QVERIFY2(near(s.p99, 99e6), qPrintable(QString::number(s.p99)));
    QCOMPARE(s.max, std::uint64_t(100000000));
    QVERIFY(std::abs(s.mean - 50000500.0) < 1.0);
}

void TstInternals::histogramEmptyAndExtremes() {
    Histogram h;
    auto s = h.summarize();
    QCOMPARE(s.count, std::uint64_t(0));
    QCOMPARE(s.p99, std::uint64_t(0));
    h.record(0);
    h.record(UINT64_MAX); // clamped into the top bucket, max still exact
    s = h.summarize();
    QCOMPARE(s.count, std::uint64_t(2));
    QCOMPARE(s.max, UINT64_MAX);
    QCOMPARE(s.p50, std::uint64_t(0));
}

void TstInternals::gaugeMaxResetsOnTake() {
    Gauge g;
    g.set(5);
    g.set(50);
    g.set(3);
    QCOMPARE(g.value(), std::uint64_t(3));
    QCOMPARE(g.takeMax(g.value()), std::uint64_t(50));
    QCOMPARE(g.takeMax(g.value()), std::uint64_t(3));
}

QTEST_APPLESS_MAIN(TstInternals)
#include "tst_internals.moc"
