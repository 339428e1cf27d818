// Real-time playback of a recorded session (ReplayPlayer) without any GUI and without sleeping:
// time advances only through tick(ms) or an injected time source. Checks that playing feeds
// exactly the snapshots due by the position, speed scaling, pause, seeking backwards and forwards
// against a straight play, the end of the file, gaps and several session headers, and the errors
// of malformed files.
#include "sessionfixture.h"

#include <historymodel.h>
#include <replayplayer.h>
#include <session.h>

#include <QtCore/qfile.h>
#include <QtCore/qtemporarydir.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace libloop::inspector;
using namespace inspectortest;

namespace {

// A HistoryModel fed straight from the file, without the player: every entry up to `ms` (a
// snapshot when its time is <= ms, any other line with the snapshot before it).
void feedReference(const QString& path, double ms, HistoryModel* model) {
    std::vector<SessionEntry> entries;
    QString error;
    QVERIFY2(readSession(path, &entries, nullptr, &error), qPrintable(error));
    model->clear();
    std::uint64_t origin = 0;
    double last = 0;
    for (const SessionEntry& e : entries) {
        if (e.kind == SessionEntry::Kind::Snapshot) {
            if (origin == 0)
                origin = e.snapshot.at;
            last = double(e.snapshot.at - origin) / 1e6;
        }
        if (last > ms)
            break;
        feedSessionEntry(model, e);
    }
}

// Ticks a playing player forward to exactly `ms` in uneven steps, as a timer would.
void playTo(ReplayPlayer& p, double ms) {
    const double steps[] = {17, 40, 3, 61, 25};
    int i = 0;
    while (p.playing() && p.position() < ms) {
        const double step = std::min(steps[i++ % 5], (ms - p.position()) / p.speed());
        p.tick(step);
    }
}

} // namespace

class tst_InspectorReplay : public QObject {
    Q_OBJECT
private slots:
    void init();
    void openShowsTheWholeSession();
    void playFeedsSnapshotsUpToPosition();
    void speedScales_data();
    void speedScales();
    void invalidSpeedsAreRefused();
    void timeSourceDrivesTheTimer();
    void pauseStopsFeeding();
    void seekMatchesStraightPlay_data();
    void seekMatchesStraightPlay();
    void seekKeepsSelectedLoop();
    void endOfFileStops();
    void gapsAndSeveralHeaders();
    void malformedFileErrors();
    void failedOpenChangesNothing();
    void emptySessionDoesNotPlay();
    void formatAndParse();

private:
    QTemporaryDir dir_;
    SessionFixture f_;
};

void tst_InspectorReplay::init() {
    QVERIFY(dir_.isValid());
    f_ = writeFixture(dir_.path());
    QVERIFY(!f_.path.isEmpty());
}

void tst_InspectorReplay::openShowsTheWholeSession() {
    HistoryModel model, all;
    ReplayPlayer p(&model);
    QSignalSpy loaded(&p, &ReplayPlayer::loadedChanged);
    SessionInfo info;
    QString error;
    QVERIFY2(p.open(f_.path, &info, &error), qPrintable(error));
    QCOMPARE(loaded.count(), 1);
    QVERIFY(p.loaded());
    QCOMPARE(p.file(), f_.path);
    QCOMPARE(p.snapshotCount(), f_.snapshots);
    QCOMPARE(p.duration(), double(f_.durationMs()));
    QCOMPARE(p.position(), p.duration()); // standing at the end ...
    QVERIFY(p.atEnd());
    QVERIFY(!p.playing());
    QVERIFY(!p.timerActive());
    // ... showing what replaySession() shows.
    QVERIFY(replaySession(f_.path, &all));
    compareModels(model, all, "open");
    QCOMPARE(model.snapshotCount(), f_.snapshots);
    // The last header wins, as before.
    QCOMPARE(info.pid, 4243);
    QCOMPARE(info.name, QStringLiteral("app-restarted"));
}

void tst_InspectorReplay::playFeedsSnapshotsUpToPosition() {
    HistoryModel model;
    ReplayPlayer p(&model);
    QVERIFY(p.open(f_.path));
    p.play(); // at the end: from the start again
    QVERIFY(p.playing());
    QVERIFY(p.timerActive());
    QCOMPARE(p.position(), 0.0);
    QCOMPARE(model.snapshotCount(), 1); // the first snapshot is at time 0
    QCOMPARE(model.latestTime(), 0.0);
    // Uneven ticks: after each, exactly the snapshots with at <= position are in the model.
    const double ticks[] = {1, 48, 1, 0.5, 49.5, 120, 7, 333, 12.25, 1000, 2};
    for (double t : ticks) {
        const double before = p.position();
        p.tick(t);
        QCOMPARE(p.position(), before + t);
        QCOMPARE(model.snapshotCount(), f_.snapshotsUntil(p.position()));
        const qint64 n = model.snapshotCount();
        QCOMPARE(model.latestTime(), double(f_.atMs.at(n - 1)) / 1000.0);
    }
    // Each loop got one sample per fed snapshot (no gap passed yet).
    QVERIFY(p.position() < double(f_.atMs.at(f_.gapAfter - 1)));
    QCOMPARE(model.history(1)->samples.size(), model.snapshotCount());
    QVERIFY(!model.history(3)); // loop 3 appears only after the reconnect
    // Zero, negative and NaN ticks change nothing.
    const double at = p.position();
    p.tick(0);
    p.tick(-100);
    p.tick(std::numeric_limits<double>::quiet_NaN());
    QCOMPARE(p.position(), at);
}

void tst_InspectorReplay::speedScales_data() {
    QTest::addColumn<double>("speed");
    for (double s : ReplayPlayer::kSpeeds)
        QTest::addRow("%gx", s) << s;
}

void tst_InspectorReplay::speedScales() {
    QFETCH(double, speed);
    HistoryModel model;
    ReplayPlayer p(&model);
    // A clock that stands still: trySetSpeed() below first plays the time since the last tick
    // at the old speed, and on the real clock a slow run (a sanitizer build) had 1 ms of it.
    p.setTimeSource([] { return qint64(0); });
    QVERIFY(p.open(f_.path));
    QSignalSpy changed(&p, &ReplayPlayer::speedChanged);
    p.setSpeed(speed);
    QCOMPARE(p.speed(), speed);
    QCOMPARE(changed.count(), speed == 1.0 ? 0 : 1);
    p.play();
    for (int i = 1; i <= 8; ++i) {
        p.tick(100); // 100 ms of real time ...
        const double want = std::min(100.0 * i * speed, p.duration());
        QCOMPARE(p.position(), want); // ... is 100 * speed ms of the session
        QCOMPARE(model.snapshotCount(), f_.snapshotsUntil(want));
    }
    // Changing the speed while playing applies from then on.
    p.seek(0);
    p.tick(40);
    QVERIFY(p.trySetSpeed(speed == 10 ? 0.5 : 10));
    const double next = p.speed();
    p.tick(20);
    QCOMPARE(p.position(), 40 * speed + 20 * next);
}

void tst_InspectorReplay::invalidSpeedsAreRefused() {
    HistoryModel model;
    ReplayPlayer p(&model);
    QSignalSpy changed(&p, &ReplayPlayer::speedChanged);
    for (double bad : {0.0, -1.0, 3.0, 0.25, 100.0, std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
        QVERIFY(!p.trySetSpeed(bad));
        p.setSpeed(bad);
        QCOMPARE(p.speed(), 1.0);
    }
    QCOMPARE(changed.count(), 0);
    QVERIFY(p.trySetSpeed(5));
    QCOMPARE(p.speed(), 5.0);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(p.speedList().size(), int(ReplayPlayer::kSpeeds.size()));
}

void tst_InspectorReplay::timeSourceDrivesTheTimer() {
    // What the QTimer calls (tickFromClock) reads the injected time source: no sleeping.
    HistoryModel model;
    ReplayPlayer p(&model);
    qint64 now = 1'000'000;
    p.setTimeSource([&now] { return now; });
    QVERIFY(p.open(f_.path));
    p.play();
    QCOMPARE(p.position(), 0.0);
    now += 230;
    p.tickFromClock();
    QCOMPARE(p.position(), 230.0);
    QCOMPARE(model.snapshotCount(), f_.snapshotsUntil(230));
    p.tickFromClock(); // no time passed
    QCOMPARE(p.position(), 230.0);
    // A speed change first counts the time so far at the old speed.
    now += 100;
    p.setSpeed(2);
    QCOMPARE(p.position(), 330.0);
    now += 100;
    p.tickFromClock();
    QCOMPARE(p.position(), 530.0);
    // Pausing also takes the time up to the pause.
    now += 10;
    p.pause();
    QCOMPARE(p.position(), 550.0);
    QVERIFY(!p.timerActive());
    // Playing again starts counting at the moment of play(), not at the pause.
    now += 5000;
    p.play();
    QVERIFY(p.timerActive());
    now += 50;
    p.tickFromClock();
    QCOMPARE(p.position(), 650.0);
    // The interval of the timer can be set (it only decides how often the clock is read).
    p.setTickInterval(40);
    QCOMPARE(p.tickInterval(), 40);
}

void tst_InspectorReplay::pauseStopsFeeding() {
    HistoryModel model;
    ReplayPlayer p(&model);
    qint64 now = 0;
    p.setTimeSource([&now] { return now; });
    QVERIFY(p.open(f_.path));
    QSignalSpy playing(&p, &ReplayPlayer::playingChanged);
    p.play();
    p.tick(420);
    QCOMPARE(playing.count(), 1);
    p.pause();
    QCOMPARE(playing.count(), 2);
    QVERIFY(!p.playing());
    QVERIFY(!p.timerActive());
    const qint64 fed = model.snapshotCount();
    const quint64 revision = model.revision();
    QCOMPARE(fed, f_.snapshotsUntil(420));
    // Neither ticks nor time passing feed anything while paused.
    p.tick(1000);
    now += 60'000;
    p.tickFromClock();
    QCOMPARE(p.position(), 420.0);
    QCOMPARE(model.snapshotCount(), fed);
    QCOMPARE(model.revision(), revision);
    // Play resumes where it paused (not from the start).
    p.play();
    QCOMPARE(p.position(), 420.0);
    p.tick(80);
    QCOMPARE(p.position(), 500.0);
    QCOMPARE(model.snapshotCount(), f_.snapshotsUntil(500));
    // togglePlaying / the playing property do the same.
    p.togglePlaying();
    QVERIFY(!p.playing());
    p.setPlaying(true);
    QVERIFY(p.playing());
}

void tst_InspectorReplay::seekMatchesStraightPlay_data() {
    QTest::addColumn<double>("target");
    QTest::newRow("start") << 0.0;
    QTest::newRow("between snapshots") << 1234.5;
    QTest::newRow("on a snapshot") << 2500.0;
    QTest::newRow("just before the gap") << double((120 - 1) * kPeriodMs) - 0.5;
    QTest::newRow("at the last snapshot before the gap") << double((120 - 1) * kPeriodMs);
    QTest::newRow("just after the reconnect") << double(120 * kPeriodMs);
    QTest::newRow("late") << 9001.0;
    QTest::newRow("end") << double(199 * kPeriodMs);
}

void tst_InspectorReplay::seekMatchesStraightPlay() {
    QFETCH(double, target);
    // A: a straight play from the start to the target.
    HistoryModel a;
    ReplayPlayer pa(&a);
    QVERIFY(pa.open(f_.path));
    pa.setSpeed(2);
    pa.play();
    playTo(pa, target);
    QCOMPARE(pa.position(), target);
    // B: opened (at the end), then seeking backwards.
    HistoryModel b;
    ReplayPlayer pb(&b);
    QVERIFY(pb.open(f_.path));
    pb.seek(target);
    QCOMPARE(pb.position(), target);
    // C: from the start, seeking forwards in two jumps.
    HistoryModel c;
    ReplayPlayer pc(&c);
    QVERIFY(pc.open(f_.path));
    pc.seek(0);
    pc.seek(target / 3);
    pc.seek(target);
    // D: back and forth and back again, while playing.
    HistoryModel d;
    ReplayPlayer pd(&d);
    QVERIFY(pd.open(f_.path));
    pd.play();
    pd.tick(7000);
    pd.seek(target + 1500);
    pd.seek(target / 2);
    pd.seek(target);
    // R: the file fed straight into a fresh model.
    HistoryModel r;
    feedReference(f_.path, target, &r);
    if (QTest::currentTestFailed())
        return;

    QCOMPARE(r.snapshotCount(), f_.snapshotsUntil(target));
    for (auto [m, what] : {std::pair{&a, "play"}, std::pair{&b, "seek back"},
                           std::pair{&c, "seek forward"}, std::pair{&d, "back and forth"}}) {
        compareModels(*m, r, what);
        if (QTest::currentTestFailed())
            return;
    }
}

void tst_InspectorReplay::seekKeepsSelectedLoop() {
    HistoryModel model;
    ReplayPlayer p(&model);
    QVERIFY(p.open(f_.path));
    QCOMPARE(model.currentLoopId(), 1);
    model.setCurrentLoopId(2);
    p.seek(3000); // back: the model is rebuilt
    QCOMPARE(model.currentLoopId(), 2);
    QCOMPARE(model.snapshotCount(), f_.snapshotsUntil(3000));
    p.seek(0);
    QCOMPARE(model.currentLoopId(), 2);
    // Opening a session starts afresh.
    QVERIFY(p.open(f_.path));
    QCOMPARE(model.currentLoopId(), 1);
}

void tst_InspectorReplay::endOfFileStops() {
    HistoryModel model, all;
    ReplayPlayer p(&model);
    QVERIFY(replaySession(f_.path, &all));
    QVERIFY(p.open(f_.path));
    QSignalSpy finished(&p, &ReplayPlayer::finished);
    QSignalSpy playing(&p, &ReplayPlayer::playingChanged);
    p.play();
    p.tick(p.duration() - 10);
    QVERIFY(p.playing());
    QCOMPARE(finished.count(), 0);
    p.tick(60'000); // past the end: clamped, stops
    QCOMPARE(p.position(), p.duration());
    QVERIFY(p.atEnd());
    QVERIFY(!p.playing());
    QVERIFY(!p.timerActive());
    QCOMPARE(finished.count(), 1);
    QCOMPARE(playing.count(), 2);
    compareModels(model, all, "end");
    p.tick(100); // stopped: nothing moves
    QCOMPARE(p.position(), p.duration());
    // Play at the end starts again from the start.
    p.play();
    QVERIFY(p.playing());
    QCOMPARE(p.position(), 0.0);
    QCOMPARE(model.snapshotCount(), 1);
    // Seeking to the end while playing stops too.
    p.tick(500);
    p.seek(p.duration() + 1000);
    QVERIFY(!p.playing());
    QCOMPARE(p.position(), p.duration());
    QCOMPARE(finished.count(), 2);
    compareModels(model, all, "seek to end");
}

void tst_InspectorReplay::gapsAndSeveralHeaders() {
    HistoryModel model;
    ReplayPlayer p(&model);
    QVERIFY(p.open(f_.path));
    const double gapAt = double(f_.atMs.at(f_.gapAfter - 1)); // the last snapshot before it
    p.seek(gapAt - 1);
    QCOMPARE(model.history(1)->samples.size(), f_.gapAfter - 1);
    QVERIFY(model.history(1)->alive);
    QCOMPARE(model.history(1)->tid, 100); // the first session's loops message
    // The gap (and the second header and loops) come with the snapshot before them.
    p.seek(gapAt);
    const auto& s1 = model.history(1)->samples;
    QCOMPARE(s1.size(), f_.gapAfter + 1); // + the NaN that breaks the line
    QVERIFY(std::isnan(s1.value(Channel::TimerHeapSize, s1.size() - 1)));
    QVERIFY(!model.history(1)->alive);
    QCOMPARE(model.history(1)->tid, 200);                      // the second loops message
    QCOMPARE(model.history(3)->name, QStringLiteral("extra")); // announced ...
    QCOMPARE(model.history(3)->samples.size(), 0);             // ... but no sample yet
    // After the reconnect: loop 3's series starts, the others continue after the NaN.
    p.seek(gapAt + kPeriodMs);
    QVERIFY(model.history(1)->alive);
    QCOMPARE(model.history(1)->samples.size(), f_.gapAfter + 2);
    QCOMPARE(model.history(3)->samples.size(), 1);
    // A decimated series shows the gap as NaN.
    const QList<QPointF> s = model.series(1, Channel::TimerHeapSize, 0, model.latestTime(), 1000);
    QVERIFY(std::any_of(s.begin(), s.end(), [](QPointF pt) { return std::isnan(pt.y()); }));
}

void tst_InspectorReplay::malformedFileErrors() {
    HistoryModel model;
    ReplayPlayer p(&model);
    QString error;
    QVERIFY(!p.open(dir_.filePath(QStringLiteral("missing")), nullptr, &error));
    QVERIFY2(error.contains(QStringLiteral("cannot read")), qPrintable(error));
    QVERIFY(!p.loaded());

    struct Case {
        const char* text;
        const char* expect;
    };
    const Case cases[] = {
        {"{\"t\":\"session\",\"v\":1}\n{\"t\":\"snapshot\",\"seq\":\"x\"}\n", ":2:"},
        {"not json\n", ":1: not a JSON object"},
        {"{\"t\":\"snapshot\",\"at\":1,\"seq\":1,\"loops\":[]}\n", "no header line"},
        {"{\"t\":\"session\",\"v\":99}\n", "session format 99"},
        {"\n\n", "empty, not a loop-inspector session"},
    };
    const QString bad = dir_.filePath(QStringLiteral("bad.jsonl"));
    for (const Case& c : cases) {
        QFile f(bad);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(c.text);
        f.close();
        // The same messages as replaySession() gives.
        QString fromPlayer, fromReplay;
        QVERIFY(!p.open(bad, nullptr, &fromPlayer));
        QVERIFY(!replaySession(bad, &model, nullptr, &fromReplay));
        QCOMPARE(fromPlayer, fromReplay);
        QVERIFY2(fromPlayer.contains(QLatin1String(c.expect)), qPrintable(fromPlayer));
        QVERIFY(!p.loaded());
    }
}

void tst_InspectorReplay::failedOpenChangesNothing() {
    HistoryModel model, copy;
    ReplayPlayer p(&model);
    QVERIFY(p.open(f_.path));
    p.seek(2000);
    QVERIFY(replaySession(f_.path, &copy));
    ReplayPlayer pc(&copy);
    QVERIFY(pc.open(f_.path));
    pc.seek(2000);
    const QString bad = dir_.filePath(QStringLiteral("bad.jsonl"));
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("{\"t\":\"session\",\"v\":1}\ngarbage\n");
    f.close();
    QString error;
    QVERIFY(!p.open(bad, nullptr, &error));
    QVERIFY(p.loaded());
    QCOMPARE(p.file(), f_.path);
    QCOMPARE(p.position(), 2000.0);
    compareModels(model, copy, "after a failed open");
}

void tst_InspectorReplay::emptySessionDoesNotPlay() {
    // A header and nothing else: duration 0, play does nothing.
    const QString path = dir_.filePath(QStringLiteral("empty.jsonl"));
    {
        SessionRecorder rec;
        QVERIFY(rec.open(path));
        rec.writeHeader(1, QStringLiteral("x"), 0);
    }
    HistoryModel model;
    ReplayPlayer p(&model);
    QVERIFY(p.open(path));
    QCOMPARE(p.duration(), 0.0);
    p.play();
    QVERIFY(!p.playing());
    QCOMPARE(model.snapshotCount(), 0);
    p.close();
    QVERIFY(!p.loaded());
    p.play();
    QVERIFY(!p.playing());
}

void tst_InspectorReplay::formatAndParse() {
    QCOMPARE(ReplayPlayer::formatTime(0), QStringLiteral("0:00.0"));
    QCOMPARE(ReplayPlayer::formatTime(999), QStringLiteral("0:00.9"));
    QCOMPARE(ReplayPlayer::formatTime(61'250), QStringLiteral("1:01.2"));
    QCOMPARE(ReplayPlayer::formatTime(600'000), QStringLiteral("10:00.0"));
    QCOMPARE(ReplayPlayer::formatTime(3'723'400), QStringLiteral("1:02:03.4"));
    QCOMPARE(ReplayPlayer::formatTime(-5), QStringLiteral("0:00.0"));
    QCOMPARE(ReplayPlayer::parseSpeed(QStringLiteral("0.5")), std::optional<double>(0.5));
    QCOMPARE(ReplayPlayer::parseSpeed(QStringLiteral("2x")), std::optional<double>(2));
    QCOMPARE(ReplayPlayer::parseSpeed(QStringLiteral(" 10X ")), std::optional<double>(10));
    for (const char* bad : {"3", "0", "-1", "abc", "", "x", "1.5", "inf", "nan", "2xx"})
        QVERIFY2(!ReplayPlayer::parseSpeed(QLatin1String(bad)), bad);
    QCOMPARE(ReplayPlayer::speedChoices(), QStringLiteral("0.5, 1, 2, 5, 10"));
}

QTEST_GUILESS_MAIN(tst_InspectorReplay)
#include "tst_inspector_replay.moc"
