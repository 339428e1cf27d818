// The inspector's models without any GUI: the ring buffer, min/max decimation, the history's
// window, pause, zoom and pan, CSV export (parsed back), and record -> replay giving the same
// series.
#include <channels.h>
#include <decimate.h>
#include <historymodel.h>
#include <ringbuffer.h>
#include <session.h>

#include <QtCore/qfile.h>
#include <QtCore/qrandom.h>
#include <QtCore/qtemporarydir.h>
#include <QtTest/qtest.h>

#include <cmath>
#include <limits>

using namespace libloop::inspector;
namespace proto = libloop::protocol;

namespace {

constexpr std::uint64_t kT0 = 1'000'000'000'000ull; // an arbitrary CLOCK_MONOTONIC origin

// Snapshot `seq` of a process with two loops, taken at kT0 + seq * periodNs.
proto::SnapshotMessage snapshot(std::uint64_t seq, std::uint64_t periodNs = 50'000'000) {
    proto::SnapshotMessage s;
    s.seq = seq;
    s.at = kT0 + seq * periodNs;
    for (std::uint64_t id : {1u, 2u}) {
        proto::LoopMetrics m;
        m.id = id;
        m.takenAtNs = s.at;
        m.timerHeapSize = (seq * 7 + id * 100) % 1000;
        m.timerHeapMax = m.timerHeapSize + 3;
        m.microtaskRingCapacity = 64;
        m.microtaskRingUsed = seq % 65;
        m.microtaskOverflow = seq % 5 == 0 ? seq % 300 : 0;
        m.fastPathMode = fastPathModeFromLevel(int((seq / 40) % 3));
        m.fastPathActive = (seq / 10) % 2 == 0;
        m.taskLatency.count = seq;
        m.taskLatency.p50 = 1000 + seq;
        m.taskLatency.p90 = 2000 + seq;
        m.taskLatency.p99 = 5000 + seq * 3;
        m.taskLatency.max = 100000 + seq * 11;
        m.tasksPerSecond = 1000.5 + double(seq % 17);
        m.utilisation = double(seq % 100) / 100.0;
        m.externalQueue = seq % 13;
        m.internalQueue = seq % 3;
        m.state = QStringLiteral("running");
        s.loops.append(m);
    }
    return s;
}

bool sameValue(double a, double b) {
    return (std::isnan(a) && std::isnan(b)) || a == b;
}

QList<QStringList> readCsv(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly | QIODevice::Text))
        return {};
    QList<QStringList> rows;
    while (!f.atEnd()) {
        const QString line = QString::fromUtf8(f.readLine()).trimmed();
        if (!line.isEmpty())
            rows << line.split(QLatin1Char(','));
    }
    return rows;
}

} // namespace

class tst_InspectorModel : public QObject {
    Q_OBJECT
private slots:
    void ringBuffer();
    void decimationKeepsExtremes_data();
    void decimationKeepsExtremes();
    void decimationSmallInputPassesThrough();
    void decimationKeepsGaps();
    void historyWindow();
    void historyCapacity();
    void pauseFreezesView();
    void zoomAndPan();
    void latencyWithoutSamplesIsAGap();
    void csvExportParsesBack();
    void recordReplayRoundTrip();
    void replayRejectsGarbage();
};

void tst_InspectorModel::ringBuffer() {
    RingBuffer<int> r(4);
    QVERIFY(r.isEmpty());
    for (int i = 0; i < 3; ++i)
        r.push(i);
    QCOMPARE(r.size(), 3);
    QCOMPARE(r.first(), 0);
    QCOMPARE(r.last(), 2);
    for (int i = 3; i < 10; ++i)
        r.push(i);
    QCOMPARE(r.size(), 4); // overwrites the oldest
    for (int i = 0; i < 4; ++i)
        QCOMPARE(r.at(i), 6 + i);
    QCOMPARE(r.lowerBound(8, [](int v) { return v; }), 2);
    QCOMPARE(r.lowerBound(100, [](int v) { return v; }), 4);
    QCOMPARE(r.lowerBound(-1, [](int v) { return v; }), 0);
    r.setCapacity(2); // keeps the newest
    QCOMPARE(r.size(), 2);
    QCOMPARE(r.first(), 8);
    QCOMPARE(r.last(), 9);
    r.setCapacity(5);
    for (int i = 10; i < 14; ++i)
        r.push(i);
    QCOMPARE(r.size(), 5);
    QCOMPARE(r.first(), 9);
    QCOMPARE(r.last(), 13);
    r.clear();
    QCOMPARE(r.size(), 0);
    r.push(42);
    QCOMPARE(r.first(), 42);
}

void tst_InspectorModel::decimationKeepsExtremes_data() {
    QTest::addColumn<int>("points");
    QTest::addColumn<int>("columns");
    QTest::newRow("12000 into 640") << 12000 << 640;
    QTest::newRow("5000 into 7") << 5000 << 7;
    QTest::newRow("1000 into 499") << 1000 << 499;
    QTest::newRow("100000 into 1") << 100000 << 1;
}

void tst_InspectorModel::decimationKeepsExtremes() {
    QFETCH(int, points);
    QFETCH(int, columns);
    QRandomGenerator rng(1234);
    QList<QPointF> in;
    double v = 0;
    for (int i = 0; i < points; ++i) {
        v += rng.bounded(2.0) - 1.0;
        if (i % 997 == 0)
            v += 50; // spikes
        in << QPointF(i * 0.05, v);
    }
    const double t0 = 0, t1 = (points - 1) * 0.05;
    const QList<QPointF> out = decimateMinMax(in, t0, t1, columns);
    QVERIFY(out.size() <= 2 * columns);
    QVERIFY(out.size() >= std::min(points, columns));
    // Every output point is an input point, in order.
    qsizetype j = 0;
    for (const QPointF& p : out) {
        while (j < in.size() && in[j] != p)
            ++j;
        QVERIFY2(j < in.size(), "an output point is not an input point (or out of order)");
    }
    // Each column's true min and max are present.
    const double scale = columns / (t1 - t0);
    QList<double> mins(columns, std::numeric_limits<double>::infinity());
    QList<double> maxs(columns, -std::numeric_limits<double>::infinity());
    for (const QPointF& p : in) {
        const int c = std::min(int((p.x() - t0) * scale), columns - 1);
        mins[c] = std::min(mins[c], p.y());
        maxs[c] = std::max(maxs[c], p.y());
    }
    QList<double> outMins(columns, std::numeric_limits<double>::infinity());
    QList<double> outMaxs(columns, -std::numeric_limits<double>::infinity());
    for (const QPointF& p : out) {
        const int c = std::min(int((p.x() - t0) * scale), columns - 1);
        outMins[c] = std::min(outMins[c], p.y());
        outMaxs[c] = std::max(outMaxs[c], p.y());
    }
    for (int c = 0; c < columns; ++c) {
        QCOMPARE(outMins[c], mins[c]);
        QCOMPARE(outMaxs[c], maxs[c]);
    }
}

void tst_InspectorModel::decimationSmallInputPassesThrough() {
    QList<QPointF> in;
    for (int i = 0; i < 20; ++i)
        in << QPointF(i, i % 3);
    QCOMPARE(decimateMinMax(in, 0, 19, 10), in);
    QCOMPARE(decimateMinMax({}, 0, 1, 10), QList<QPointF>());
    // Points outside the range pass through; the inside is decimated.
    QList<QPointF> wide;
    wide << QPointF(-5, 100);
    for (int i = 0; i < 1000; ++i)
        wide << QPointF(i * 0.01, i % 7);
    wide << QPointF(20, -100);
    const QList<QPointF> out = decimateMinMax(wide, 0, 9.99, 10);
    QCOMPARE(out.first(), QPointF(-5, 100));
    QCOMPARE(out.last(), QPointF(20, -100));
    QVERIFY(out.size() <= 2 * 10 + 2);
}

void tst_InspectorModel::decimationKeepsGaps() {
    QList<QPointF> in;
    for (int i = 0; i < 1000; ++i)
        in << QPointF(i, i == 500 ? std::numeric_limits<double>::quiet_NaN() : 1.0);
    const QList<QPointF> out = decimateMinMax(in, 0, 999, 20);
    int nans = 0;
    for (const QPointF& p : out)
        nans += std::isnan(p.y()) ? 1 : 0;
    QCOMPARE(nans, 1);
}

void tst_InspectorModel::historyWindow() {
    HistoryModel m;
    m.setWindowSeconds(60);
    // Before the window is full, the view is [0, window].
    for (std::uint64_t seq = 0; seq < 20; ++seq)
        m.addSnapshot(snapshot(seq));
    QCOMPARE(m.viewStart(), 0.0);
    QCOMPARE(m.viewEnd(), 60.0);
    // 120 s at 20 Hz.
    for (std::uint64_t seq = 20; seq <= 2400; ++seq)
        m.addSnapshot(snapshot(seq));
    QCOMPARE(m.snapshotCount(), 2401);
    QCOMPARE(m.latestTime(), 120.0);
    QCOMPARE(m.viewEnd(), 120.0);
    QCOMPARE(m.viewStart(), 60.0);
    QCOMPARE(m.histories().size(), std::size_t(2));
    QCOMPARE(m.currentLoopId(), 1); // the first loop is selected
    // The series covers the view (plus one sample either side), decimated to the columns.
    const QList<QPointF> s = m.series(1, Channel::TimerHeapSize, m.viewStart(), m.viewEnd(), 100);
    QVERIFY(!s.isEmpty());
    QVERIFY(s.size() <= 2 * 100 + 2);
    QVERIFY(s.first().x() <= 60.0 && s.first().x() >= 59.9);
    QCOMPARE(s.last().x(), 120.0);
    const QList<QPointF> raw = m.series(1, Channel::TimerHeapSize, 100, 101, 1000);
    QCOMPARE(raw.size(), 21 + 2); // 20 Hz over one second, both ends included, one either side
    QCOMPARE(raw[1], QPointF(100.0, double((2000 * 7 + 100) % 1000)));
    // The window is clamped to 1 s .. 10 min.
    m.setWindowSeconds(5000);
    QCOMPARE(m.windowSeconds(), 600.0);
    m.setWindowSeconds(0.1);
    QCOMPARE(m.windowSeconds(), 1.0);
    // Nearest sample for hover values.
    const std::optional<Sample> at = m.sampleAt(2, 50.02);
    QVERIFY(at);
    QCOMPARE(at->t, 50.0);
}

void tst_InspectorModel::historyCapacity() {
    HistoryModel m;
    m.setCapacity(100);
    for (std::uint64_t seq = 0; seq < 1000; ++seq)
        m.addSnapshot(snapshot(seq));
    const LoopHistory* h = m.history(1);
    QVERIFY(h);
    QCOMPARE(h->samples.size(), 100);
    QCOMPARE(h->samples.last().t, 999 * 0.05);
    QCOMPARE(h->samples.first().t, 900 * 0.05);
}

void tst_InspectorModel::pauseFreezesView() {
    HistoryModel m;
    m.setWindowSeconds(10);
    for (std::uint64_t seq = 0; seq <= 400; ++seq)
        m.addSnapshot(snapshot(seq));
    QCOMPARE(m.viewEnd(), 20.0);
    m.setPaused(true);
    const quint64 rev = m.revision();
    const QList<QPointF> before = m.series(1, Channel::LatencyP99, m.viewStart(), m.viewEnd(), 50);
    for (std::uint64_t seq = 401; seq <= 600; ++seq)
        m.addSnapshot(snapshot(seq));
    QCOMPARE(m.viewEnd(), 20.0); // the view stands still
    QCOMPARE(m.revision(), rev); // nothing to redraw
    QCOMPARE(
        m.series(1, Channel::LatencyP99, m.viewStart(), m.viewEnd(), 50).mid(0, before.size() - 1),
        before.mid(0, before.size() - 1));
    QCOMPARE(m.latestTime(), 30.0); // data kept coming
    m.setPaused(false);
    QCOMPARE(m.viewEnd(), 30.0);
    QVERIFY(m.revision() != rev);
}

void tst_InspectorModel::zoomAndPan() {
    HistoryModel m;
    m.setWindowSeconds(60);
    for (std::uint64_t seq = 0; seq <= 4000; ++seq) // 200 s
        m.addSnapshot(snapshot(seq));
    m.zoom(0.5); // anchored at the right edge: still following
    QCOMPARE(m.windowSeconds(), 30.0);
    QVERIFY(m.following());
    QCOMPARE(m.viewEnd(), 200.0);
    m.pan(-50);
    QVERIFY(!m.following());
    QCOMPARE(m.viewEnd(), 150.0);
    m.addSnapshot(snapshot(4001)); // the view stays in the past
    QCOMPARE(m.viewEnd(), 150.0);
    m.zoom(2.0, 0.5); // centred: keeps the middle (135 s) in place
    QCOMPARE(m.windowSeconds(), 60.0);
    QCOMPARE(m.viewStart() + m.windowSeconds() / 2, 135.0);
    m.pan(1000); // past the newest sample: follows again
    QVERIFY(m.following());
    QCOMPARE(m.viewEnd(), m.latestTime());
    m.pan(-10);
    m.follow();
    QVERIFY(m.following());
    QCOMPARE(m.viewEnd(), m.latestTime());
}

void tst_InspectorModel::latencyWithoutSamplesIsAGap() {
    HistoryModel m;
    proto::SnapshotMessage s = snapshot(1);
    s.loops[0].taskLatency = {};
    m.addSnapshot(s);
    QVERIFY(std::isnan(m.history(1)->samples.last().v[std::size_t(Channel::LatencyP50)]));
    QCOMPARE(m.history(1)->samples.last().v[std::size_t(Channel::FastPathMode)],
             double(fastPathModeLevel(s.loops[0].fastPathMode)));
}

void tst_InspectorModel::csvExportParsesBack() {
    QTemporaryDir dir;
    HistoryModel m;
    m.setWindowSeconds(10);
    for (std::uint64_t seq = 0; seq <= 600; ++seq) // 30 s
        m.addSnapshot(snapshot(seq));
    const QString path = dir.filePath(QStringLiteral("series.csv"));
    QVERIFY(m.exportCsv(path, true));
    const QList<QStringList> rows = readCsv(path);
    QVERIFY(!rows.isEmpty());
    const QStringList header = rows.first();
    QCOMPARE(header.size(), 3 + kChannelCount);
    QCOMPARE(header.mid(0, 3), QStringList({QStringLiteral("time"), QStringLiteral("loopId"),
                                            QStringLiteral("loopName")}));
    QCOMPARE(header.at(3 + int(Channel::TimerHeapSize)), QStringLiteral("timerHeapSize"));
    QCOMPARE(header.at(3 + int(Channel::LatencyP99)), QStringLiteral("taskLatency.p99"));
    // The visible 10 s (20 s .. 30 s inclusive) of both loops.
    QCOMPARE(rows.size() - 1, 2 * 201);
    for (qsizetype r = 1; r < rows.size(); ++r) {
        const QStringList& row = rows[r];
        QCOMPARE(row.size(), header.size());
        const double t = row[0].toDouble();
        QVERIFY(t >= 20.0 - 1e-9 && t <= 30.0 + 1e-9);
        const std::uint64_t seq = std::uint64_t(std::llround(t / 0.05));
        const std::uint64_t id = row[1].toULongLong();
        const proto::LoopMetrics want = snapshot(seq).loops[int(id - 1)];
        for (Channel c : allChannels()) {
            const QString field = row[3 + int(c)];
            const double expected = channelValue(want, c);
            if (std::isnan(expected))
                QVERIFY(field.isEmpty());
            else
                QCOMPARE(field.toDouble(), expected);
        }
    }
    // Everything, not just the view.
    QVERIFY(m.exportCsv(path, false));
    QCOMPARE(readCsv(path).size() - 1, 2 * 601);
    // An unwritable path fails with a message.
    QVERIFY(!m.exportCsv(dir.filePath(QStringLiteral("no/such/dir/x.csv"))));
    QVERIFY(!m.lastError().isEmpty());
}

void tst_InspectorModel::recordReplayRoundTrip() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("session.jsonl"));
    HistoryModel live;
    {
        SessionRecorder rec;
        QVERIFY(rec.open(path));
        rec.writeHeader(4242, QStringLiteral("app"), 1700000000000);
        const QList<proto::LoopInfo> loops{{1, QStringLiteral("main"), 100},
                                           {2, QStringLiteral("worker"), 101}};
        rec.writeLoops(loops);
        live.setLoopInfo(loops);
        for (std::uint64_t seq = 1; seq <= 500; ++seq) {
            const proto::SnapshotMessage s = snapshot(seq);
            live.addSnapshot(s);
            rec.writeSnapshot(s);
            if (seq == 250) { // a reconnect in the middle
                live.addGap();
                rec.writeGap();
            }
        }
        QCOMPARE(rec.snapshots(), 500);
    }
    HistoryModel replayed;
    SessionInfo info;
    QString error;
    QVERIFY2(replaySession(path, &replayed, &info, &error), qPrintable(error));
    QCOMPARE(info.pid, 4242);
    QCOMPARE(info.name, QStringLiteral("app"));
    QCOMPARE(info.snapshots, 500);
    QCOMPARE(replayed.origin(), live.origin());
    QCOMPARE(replayed.histories().size(), live.histories().size());
    for (std::size_t i = 0; i < live.histories().size(); ++i) {
        const LoopHistory& a = *live.histories()[i];
        const LoopHistory& b = *replayed.histories()[i];
        QCOMPARE(b.id, a.id);
        QCOMPARE(b.name, a.name);
        QCOMPARE(b.tid, a.tid);
        QCOMPARE(b.samples.size(), a.samples.size());
        QCOMPARE(a.samples.size(), 501); // 500 snapshots + the gap
        for (qsizetype k = 0; k < a.samples.size(); ++k) {
            QCOMPARE(b.samples.at(k).t, a.samples.at(k).t);
            for (int c = 0; c < kChannelCount; ++c)
                QVERIFY2(
                    sameValue(b.samples.at(k).v[c], a.samples.at(k).v[c]),
                    qPrintable(QStringLiteral("sample %1 %2").arg(k).arg(channelName(Channel(c)))));
        }
        QCOMPARE(b.last, a.last);
    }
    // The decimated series the plots read are the same too.
    const QList<QPointF> a = live.series(2, Channel::LatencyMax, 0, 30, 64);
    const QList<QPointF> b = replayed.series(2, Channel::LatencyMax, 0, 30, 64);
    QCOMPARE(b.size(), a.size());
    for (qsizetype k = 0; k < a.size(); ++k) {
        QCOMPARE(b[k].x(), a[k].x());
        QVERIFY(sameValue(b[k].y(), a[k].y()));
    }
}

void tst_InspectorModel::replayRejectsGarbage() {
    QTemporaryDir dir;
    HistoryModel m;
    QString error;
    QVERIFY(!replaySession(dir.filePath(QStringLiteral("missing")), &m, nullptr, &error));
    QVERIFY(error.contains(QStringLiteral("cannot read")));
    const QString bad = dir.filePath(QStringLiteral("bad.jsonl"));
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("{\"t\":\"session\",\"v\":1}\n{\"t\":\"snapshot\",\"seq\":\"x\"}\n");
    f.close();
    QVERIFY(!replaySession(bad, &m, nullptr, &error));
    QVERIFY2(error.contains(QStringLiteral(":2:")), qPrintable(error));
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write("not json\n");
    f.close();
    QVERIFY(!replaySession(bad, &m, nullptr, &error));
}

QTEST_GUILESS_MAIN(tst_InspectorModel)
#include "tst_inspector_model.moc"
