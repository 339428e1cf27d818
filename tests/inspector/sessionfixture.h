// A recorded session with a known timeline for the replay tests: snapshots every 50 ms (the
// first at time 0), a reconnect in the middle (a gap, then a second session header and a new
// loops message with a third loop), and helpers comparing two HistoryModels.
#pragma once

#include <historymodel.h>
#include <session.h>

#include <QtCore/qdir.h>
#include <QtTest/qtest.h>

#include <cmath>

namespace inspectortest {

namespace proto = libloop::protocol;
using libloop::inspector::Channel;
using libloop::inspector::HistoryModel;
using libloop::inspector::kChannelCount;

inline constexpr std::uint64_t kSessionT0 = 2'000'000'000'000ull; // CLOCK_MONOTONIC of the start
inline constexpr qint64 kPeriodMs = 50;

// Snapshot `seq` (1-based), taken at (seq - 1) * 50 ms; loop 3 exists from `thirdLoopFrom` on.
inline proto::SnapshotMessage fixtureSnapshot(std::uint64_t seq, std::uint64_t thirdLoopFrom) {
    proto::SnapshotMessage s;
    s.seq = seq;
    s.at = kSessionT0 + (seq - 1) * std::uint64_t(kPeriodMs) * 1'000'000ull;
    for (std::uint64_t id : {1u, 2u, 3u}) {
        if (id == 3 && seq < thirdLoopFrom)
            continue;
        proto::LoopMetrics m;
        m.id = id;
        m.takenAtNs = s.at;
        m.timerHeapSize = (seq * 13 + id * 100) % 700;
        m.timerHeapMax = m.timerHeapSize + 1;
        m.microtaskRingCapacity = 128;
        m.microtaskRingUsed = (seq * id) % 129;
        m.fastPathMode = libloop::inspector::fastPathModeFromLevel(int((seq / 25) % 3));
        m.taskLatency.count = seq;
        m.taskLatency.p50 = 500 + seq * id;
        m.taskLatency.p90 = 900 + seq * id;
        m.taskLatency.p99 = 4000 + seq * 5;
        m.taskLatency.max = 50000 + seq * 17;
        m.tasksPerSecond = 200.25 * double(id) + double(seq % 31);
        m.utilisation = double((seq * id) % 100) / 100.0;
        m.externalQueue = seq % 11;
        m.internalQueue = (seq + id) % 4;
        m.state = QStringLiteral("running");
        s.loops.append(m);
    }
    return s;
}

struct SessionFixture {
    QString path;
    int snapshots = 0;
    int gapAfter = 0;   // the gap and the second header follow this snapshot
    QList<qint64> atMs; // each snapshot's time since the first one
    qint64 durationMs() const { return atMs.isEmpty() ? 0 : atMs.last(); }
    // Snapshots with at <= ms.
    qint64 snapshotsUntil(double ms) const {
        qint64 n = 0;
        for (qint64 t : atMs)
            n += double(t) <= ms ? 1 : 0;
        return n;
    }
};

// header, loops(1, 2), snapshots 1..gapAfter, gap, header (pid + 1, "app-restarted"),
// loops(1, 2, 3), snapshots gapAfter+1..n (loop 3 from gapAfter+1).
inline SessionFixture writeFixture(const QString& dir, int n = 200, int gapAfter = 120) {
    SessionFixture f;
    f.path = QDir(dir).filePath(QStringLiteral("fixture.jsonl"));
    f.snapshots = n;
    f.gapAfter = gapAfter;
    libloop::inspector::SessionRecorder rec;
    if (!rec.open(f.path))
        return {};
    rec.writeHeader(4242, QStringLiteral("app"), 1700000000000);
    rec.writeLoops({{1, QStringLiteral("main"), 100}, {2, QStringLiteral("worker"), 101}});
    for (int seq = 1; seq <= n; ++seq) {
        rec.writeSnapshot(fixtureSnapshot(std::uint64_t(seq), std::uint64_t(gapAfter + 1)));
        f.atMs << qint64(seq - 1) * kPeriodMs;
        if (seq == gapAfter) {
            rec.writeGap();
            rec.writeHeader(4243, QStringLiteral("app-restarted"), 1700000100000);
            rec.writeLoops({{1, QStringLiteral("main"), 200},
                            {2, QStringLiteral("worker"), 201},
                            {3, QStringLiteral("extra"), 202}});
        }
    }
    return f;
}

inline bool sameValue(double a, double b) {
    return (std::isnan(a) && std::isnan(b)) || a == b;
}

// The same loops, samples, latest values, selection and decimated series. QCOMPARE inside: the
// caller checks QTest::currentTestFailed().
inline void compareModels(const HistoryModel& a, const HistoryModel& b, const char* what) {
    const QByteArray w(what);
    QVERIFY2(a.snapshotCount() == b.snapshotCount(),
             (w + ": snapshots " + QByteArray::number(a.snapshotCount()) + " vs " +
              QByteArray::number(b.snapshotCount()))
                 .constData());
    QCOMPARE(a.origin(), b.origin());
    QCOMPARE(a.latestTime(), b.latestTime());
    QCOMPARE(a.currentLoopId(), b.currentLoopId());
    QCOMPARE(a.histories().size(), b.histories().size());
    for (std::size_t i = 0; i < a.histories().size(); ++i) {
        const auto& x = *a.histories()[i];
        const auto& y = *b.histories()[i];
        QCOMPARE(x.id, y.id);
        QCOMPARE(x.name, y.name);
        QCOMPARE(x.tid, y.tid);
        QCOMPARE(x.alive, y.alive);
        QCOMPARE(x.last, y.last);
        QCOMPARE(x.samples.size(), y.samples.size());
        for (qsizetype k = 0; k < x.samples.size(); ++k) {
            QCOMPARE(x.samples.time(k), y.samples.time(k));
            for (int c = 0; c < kChannelCount; ++c)
                QVERIFY2(sameValue(x.samples.value(Channel(c), k), y.samples.value(Channel(c), k)),
                         (w + ": sample " + QByteArray::number(k)).constData());
        }
        // What the plots read.
        for (int c = 0; c < kChannelCount; ++c) {
            const double end = std::max(a.latestTime(), 1.0);
            const QList<QPointF> sa = a.series(x.id, Channel(c), 0, end, 64);
            const QList<QPointF> sb = b.series(y.id, Channel(c), 0, end, 64);
            QCOMPARE(sa.size(), sb.size());
            for (qsizetype k = 0; k < sa.size(); ++k) {
                QCOMPARE(sa[k].x(), sb[k].x());
                QVERIFY(sameValue(sa[k].y(), sb[k].y()));
            }
        }
    }
}

} // namespace inspectortest
