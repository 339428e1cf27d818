// The inspector window's replay bar and Browse buttons, offscreen, on libloop's GUI dispatcher
// under a QApplication. The Browse buttons are clicked with pointer events; the QFileDialog they
// open is found among QApplication::topLevelWidgets(), given a selection and accepted (or
// rejected) programmatically, and the controller's state is checked: export directory, recording
// to the chosen file, replay of the chosen file, nothing changed on cancel. The replay bar plays,
// pauses, changes speed and seeks; the player's clock is injected, so no assertion depends on
// how fast this machine is. And --replay FILE --play --speed X, including bad values.
#include "childprocess.h"
#include "sessionfixture.h"

#include <gui.h>
#include <inspectorcontroller.h>
#include <options.h>

#include <libloop/qt/loopguieventdispatcher.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qdir.h>
#include <QtCore/qfile.h>
#include <QtCore/qtimer.h>
#include <QtGui/qwindow.h>
#include <QtQml/qqmlapplicationengine.h>
#include <QtQuick/qquickitem.h>
#include <QtQuick/qquickwindow.h>
#include <QtQuickTest/quicktest.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>
#include <QtWidgets/qapplication.h>
#include <QtWidgets/qfiledialog.h>

#include <memory>

using namespace libloop::inspector;
using namespace inspectortest;

namespace {

// The visible QFileDialogs among the top-level widgets.
QList<QFileDialog*> visibleDialogs() {
    QList<QFileDialog*> found;
    for (QWidget* w : QApplication::topLevelWidgets())
        if (auto* d = qobject_cast<QFileDialog*>(w); d && d->isVisible())
            found << d;
    return found;
}

// What the dialog's Open/Save/Choose button does (QFileDialog::accept() is protected; it
// overrides QDialog's public slot).
void accept(QFileDialog* d) {
    static_cast<QDialog*>(d)->accept();
}

// What choosing `path` in the dialog does. selectFile() leaves the name field alone while it has
// the focus (it may hold what the user typed), and the shown dialog gave it the focus: the
// pointer chooses from the list, elsewhere.
void selectFile(QFileDialog* d, const QString& path) {
    if (QWidget* w = d->focusWidget())
        w->clearFocus();
    d->selectFile(path);
}

QString canonical(const QString& path) {
    return QFileInfo(path).canonicalFilePath();
}

} // namespace

class tst_InspectorControls : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void cleanupTestCase();
    void cleanup();
    void noReplayBarWhileNotReplaying();
    void exportBrowseSetsDirectory();
    void exportBrowseCancelChangesNothing();
    void recordBrowseStartsRecording();
    void recordBrowseCancelChangesNothing();
    void replayBrowseStartsReplay();
    void replayBrowseCancelChangesNothing();
    void oneDialogAtATime();
    void replayBarPlaysPausesAndSeeks();
    void attachingEndsPlayback();
    void playAndSpeedOptions();
    void badSpeedIsAUsageError_data();
    void badSpeedIsAUsageError();
    void playWithMalformedFileFails();

private:
    QQuickItem* item(const char* name) const;
    void click(const char* name, double fx = 0.5);
    // Clicks the Browse button `name` and returns the one dialog it opened (nullptr: failed).
    QFileDialog* browse(const char* name);

    std::unique_ptr<RuntimeDir> runtime_;
    QTemporaryDir dir_;
    SessionFixture fixture_;
    std::unique_ptr<InspectorController> controller_;
    std::unique_ptr<QQmlApplicationEngine> engine_;
    QQuickWindow* window_ = nullptr;
    qint64 now_ = 0; // the player's clock
};

QQuickItem* tst_InspectorControls::item(const char* name) const {
    return window_->findChild<QQuickItem*>(QLatin1String(name));
}

void tst_InspectorControls::click(const char* name, double fx) {
    // Laid out first (the replay bar, for one, appears with the replay).
    QVERIFY(QQuickTest::qWaitForPolish(window_, kLong));
    QQuickItem* i = item(name);
    QVERIFY2(i, name);
    QVERIFY2(i->isVisible() && i->isEnabled(), name);
    const QPoint p = i->mapToScene(QPointF(i->width() * fx, i->height() / 2)).toPoint();
    QVERIFY2(QRect(QPoint(), window_->size()).contains(p), name);
    QTest::mouseClick(window_, Qt::LeftButton, Qt::NoModifier, p);
}

QFileDialog* tst_InspectorControls::browse(const char* name) {
    if (!visibleDialogs().isEmpty())
        return nullptr;
    click(name);
    if (QTest::currentTestFailed())
        return nullptr;
    // open(), not exec(): the click returned with the dialog up, and the loop keeps running.
    const QList<QFileDialog*> dialogs = visibleDialogs();
    if (dialogs.size() != 1)
        return nullptr;
    QFileDialog* d = dialogs.first();
    bool ran = false;
    QTimer::singleShot(0, this, [&ran] { ran = true; });
    if (!QTest::qWaitFor([&ran] { return ran; }, kLong) || !d->isVisible())
        return nullptr;
    if (d != controller_->files()->dialog())
        return nullptr;
    // Qt's own dialog, window-modal to the inspector's window.
    if (!d->testOption(QFileDialog::DontUseNativeDialog) ||
        d->windowModality() != Qt::WindowModal || !d->windowHandle() ||
        d->windowHandle()->transientParent() != window_)
        return nullptr;
    return d;
}

void tst_InspectorControls::initTestCase() {
    QCOMPARE(QAbstractEventDispatcher::instance()->metaObject()->className(),
             "libloop::qt::LoopGuiEventDispatcher");
    runtime_ = std::make_unique<RuntimeDir>();
    QVERIFY(runtime_->isValid());
    QVERIFY(dir_.isValid());
    fixture_ = writeFixture(dir_.path());
    QVERIFY(!fixture_.path.isEmpty());

    controller_ = std::make_unique<InspectorController>();
    controller_->setProbeDirectory(runtime_->probeDir()); // no process of anyone else's
    controller_->setExportDirectory(dir_.path());
    controller_->player()->setTimeSource([this] { return now_; });
    engine_ = std::make_unique<QQmlApplicationEngine>();
    window_ = loadInspectorUi(*engine_, controller_.get());
    QVERIFY(window_);
    QVERIFY(QTest::qWaitForWindowExposed(window_, kLong));
}

void tst_InspectorControls::cleanupTestCase() {
    engine_.reset();
    controller_.reset();
}

void tst_InspectorControls::cleanup() {
    // No dialog survives a test (a failed one may have left one open).
    for (QFileDialog* d : visibleDialogs())
        d->reject();
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
}

void tst_InspectorControls::noReplayBarWhileNotReplaying() {
    QVERIFY(!controller_->replaying());
    QVERIFY(item("playButton"));
    QVERIFY(!item("playButton")->isVisible());
    QVERIFY(!item("positionSlider")->isVisible());
    QVERIFY(visibleDialogs().isEmpty());
    QVERIFY(!controller_->files()->dialogOpen());
}

void tst_InspectorControls::exportBrowseSetsDirectory() {
    QTemporaryDir target;
    QFileDialog* d = browse("exportBrowseButton");
    QVERIFY(d);
    QCOMPARE(d->fileMode(), QFileDialog::Directory);
    QVERIFY(controller_->files()->dialogOpen());
    QCOMPARE(canonical(d->directory().absolutePath()), canonical(dir_.path())); // starts there
    QSignalSpy changed(controller_.get(), &InspectorController::exportDirectoryChanged);
    d->setDirectory(target.path());
    accept(d);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(canonical(controller_->exportDirectory()), canonical(target.path()));
    QVERIFY(!controller_->files()->dialogOpen());
    QTRY_VERIFY(visibleDialogs().isEmpty());
    // The folder field shows it; exports go there.
    QCOMPARE(canonical(item("exportDirectoryField")->property("text").toString()),
             canonical(target.path()));
    const QString csv = controller_->exportCsv();
    QCOMPARE(canonical(QFileInfo(csv).absolutePath()), canonical(target.path()));
    controller_->setExportDirectory(dir_.path());
}

void tst_InspectorControls::exportBrowseCancelChangesNothing() {
    QTemporaryDir target;
    const QString before = controller_->exportDirectory();
    const QString message = controller_->message();
    QSignalSpy changed(controller_.get(), &InspectorController::exportDirectoryChanged);
    QSignalSpy chosen(controller_->files(), &FileChooser::exportDirectoryChosen);
    QFileDialog* d = browse("exportBrowseButton");
    QVERIFY(d);
    d->setDirectory(target.path());
    d->reject();
    QCOMPARE(chosen.count(), 0);
    QCOMPARE(changed.count(), 0);
    QCOMPARE(controller_->exportDirectory(), before);
    QCOMPARE(controller_->message(), message);
    QVERIFY(!controller_->files()->dialogOpen());
    QTRY_VERIFY(visibleDialogs().isEmpty());
}

void tst_InspectorControls::recordBrowseStartsRecording() {
    const QString first = QDir(dir_.path()).filePath(QStringLiteral("chosen-1.jsonl"));
    QFileDialog* d = browse("recordBrowseButton");
    QVERIFY(d);
    QCOMPARE(d->acceptMode(), QFileDialog::AcceptSave);
    selectFile(d, first);
    accept(d);
    QVERIFY(controller_->recording());
    QCOMPARE(canonical(controller_->recordingFile()), canonical(first));
    QVERIFY(controller_->statusText().contains(QStringLiteral("recording to")));
    // Another choice while recording: the first recording ends, the new one starts. A name
    // without a suffix gets ".jsonl".
    QFileDialog* d2 = browse("recordBrowseButton");
    QVERIFY(d2);
    selectFile(d2, QDir(dir_.path()).filePath(QStringLiteral("chosen-2")));
    accept(d2);
    QVERIFY(controller_->recording());
    const QString second = QDir(dir_.path()).filePath(QStringLiteral("chosen-2.jsonl"));
    QCOMPARE(canonical(controller_->recordingFile()), canonical(second));
    controller_->stopRecording();
    QVERIFY(!controller_->recording());
    // Both are sessions (a header each) that replay.
    for (const QString& file : {first, second}) {
        SessionInfo info;
        QString error;
        HistoryModel m;
        QVERIFY2(replaySession(file, &m, &info, &error), qPrintable(error));
    }
}

void tst_InspectorControls::recordBrowseCancelChangesNothing() {
    const QString file = QDir(dir_.path()).filePath(QStringLiteral("never.jsonl"));
    QSignalSpy recording(controller_.get(), &InspectorController::recordingChanged);
    QFileDialog* d = browse("recordBrowseButton");
    QVERIFY(d);
    selectFile(d, file);
    d->reject();
    QVERIFY(!controller_->recording());
    QCOMPARE(recording.count(), 0);
    QVERIFY(!QFile::exists(file));
}

void tst_InspectorControls::replayBrowseStartsReplay() {
    QFileDialog* d = browse("replayBrowseButton");
    QVERIFY(d);
    QCOMPARE(d->fileMode(), QFileDialog::ExistingFile);
    QCOMPARE(d->acceptMode(), QFileDialog::AcceptOpen);
    selectFile(d, fixture_.path);
    accept(d);
    QCOMPARE(controller_->status(), QStringLiteral("replay"));
    QVERIFY(controller_->replaying());
    QCOMPARE(canonical(controller_->replayFile()), canonical(fixture_.path));
    QCOMPARE(controller_->attachedPid(), 4243); // the last header's
    // The whole session at once, paused at its end.
    ReplayPlayer* p = controller_->player();
    QVERIFY(p->loaded());
    QVERIFY(!p->playing());
    QVERIFY(p->atEnd());
    QCOMPARE(controller_->history()->snapshotCount(), fixture_.snapshots);
    QVERIFY(item("playButton")->isVisible());
}

void tst_InspectorControls::replayBrowseCancelChangesNothing() {
    // Another valid session: cancelling its dialog must not load it.
    QTemporaryDir other;
    const SessionFixture f = writeFixture(other.path(), 20, 10);
    const QString before = controller_->replayFile();
    const qint64 snapshots = controller_->history()->snapshotCount();
    QFileDialog* d = browse("replayBrowseButton");
    QVERIFY(d);
    selectFile(d, f.path);
    d->reject();
    QCOMPARE(controller_->replayFile(), before);
    QCOMPARE(controller_->history()->snapshotCount(), snapshots);
    QCOMPARE(controller_->player()->file(), before);
}

void tst_InspectorControls::oneDialogAtATime() {
    QSignalSpy chosen(controller_->files(), &FileChooser::exportDirectoryChosen);
    const QString before = controller_->exportDirectory();
    controller_->files()->chooseExportDirectory();
    controller_->files()->chooseReplayFile(); // replaces the first, delivering nothing for it
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    const QList<QFileDialog*> dialogs = visibleDialogs();
    QCOMPARE(dialogs.size(), 1);
    QCOMPARE(dialogs.first()->fileMode(), QFileDialog::ExistingFile);
    QCOMPARE(controller_->files()->purpose(), FileChooser::Purpose::ReplayFile);
    dialogs.first()->reject();
    QCOMPARE(chosen.count(), 0);
    QCOMPARE(controller_->exportDirectory(), before);
}

void tst_InspectorControls::replayBarPlaysPausesAndSeeks() {
    ReplayPlayer* p = controller_->player();
    HistoryModel* h = controller_->history();
    QVERIFY(controller_->replay(fixture_.path));
    QVERIFY(item("playButton")->isVisible());
    QCOMPARE(item("durationLabel")->property("text").toString(),
             ReplayPlayer::formatTime(fixture_.durationMs()));
    QCOMPARE(item("positionLabel")->property("text").toString(),
             ReplayPlayer::formatTime(fixture_.durationMs()));
    QCOMPARE(item("playButton")->property("text").toString(), QStringLiteral("Play"));

    // Play (at the end: from the start). The clock stands still: nothing moves by itself.
    click("playButton");
    QVERIFY(p->playing());
    QCOMPARE(p->position(), 0.0);
    QCOMPARE(h->snapshotCount(), 1);
    QCOMPARE(item("playButton")->property("text").toString(), QStringLiteral("Pause"));
    // The player's own QTimer reads the clock: 500 ms later the model holds the first 11.
    now_ += 500;
    QTRY_COMPARE_WITH_TIMEOUT(p->position(), 500.0, kLong);
    QCOMPARE(h->snapshotCount(), fixture_.snapshotsUntil(500));
    QTRY_COMPARE_WITH_TIMEOUT(item("positionLabel")->property("text").toString(),
                              QStringLiteral("0:00.5"), kLong);
    QVERIFY(controller_->statusText().contains(QStringLiteral("playing 1x")));

    // Speed 2x from the speed box (what the arrow keys do).
    QQuickItem* speedBox = item("speedBox");
    QVERIFY(speedBox);
    QVERIFY(QMetaObject::invokeMethod(speedBox, "incrementCurrentIndex"));
    QCOMPARE(p->speed(), 2.0);
    QCOMPARE(speedBox->property("displayText").toString(), QStringLiteral("2x"));
    now_ += 100;
    QTRY_COMPARE_WITH_TIMEOUT(p->position(), 700.0, kLong);
    QCOMPARE(h->snapshotCount(), fixture_.snapshotsUntil(700));

    // Pause: time passing changes nothing.
    click("playButton");
    QVERIFY(!p->playing());
    QCOMPARE(item("playButton")->property("text").toString(), QStringLiteral("Play"));
    now_ += 10'000;
    QTest::qWait(50); // let a timer fire if one were (wrongly) running
    QCOMPARE(p->position(), 700.0);
    QCOMPARE(h->snapshotCount(), fixture_.snapshotsUntil(700));

    // A click on the slider at three quarters seeks forwards, one at a quarter seeks back.
    QQuickItem* slider = item("positionSlider");
    QVERIFY(slider);
    for (double at : {0.75, 0.25}) {
        click("positionSlider", at);

        const double pos = p->position();
        const double want = at * p->duration();
        QVERIFY2(std::abs(pos - want) < 0.1 * p->duration(),
                 qPrintable(QStringLiteral("%1 vs %2").arg(pos).arg(want)));
        QCOMPARE(h->snapshotCount(), fixture_.snapshotsUntil(pos));
        QCOMPARE(slider->property("value").toDouble(), pos);
        QCOMPARE(item("positionLabel")->property("text").toString(), ReplayPlayer::formatTime(pos));
        QVERIFY(!p->playing());
    }
    // The same as a straight feed of the file to that point.
    HistoryModel straight;
    ReplayPlayer sp(&straight);
    QVERIFY(sp.open(fixture_.path));
    sp.seek(0);
    sp.seek(p->position());
    straight.setCurrentLoopId(h->currentLoopId());
    compareModels(*h, straight, "slider");
    if (QTest::currentTestFailed())
        return;

    // A drag while playing: the handle stays with the pointer (the playback does not pull it
    // back), the release seeks there and playing goes on.
    click("playButton");
    QVERIFY(p->playing());
    const auto at = [slider](double fx) {
        return slider->mapToScene(QPointF(slider->width() * fx, slider->height() / 2)).toPoint();
    };
    QTest::mousePress(window_, Qt::LeftButton, Qt::NoModifier, at(0.5));
    QTest::mouseMove(window_, at(0.55));
    QTest::mouseMove(window_, at(0.6));
    QVERIFY(slider->property("pressed").toBool());
    const double held = slider->property("position").toDouble();
    const double before = p->position();
    now_ += 200;
    QTRY_COMPARE_WITH_TIMEOUT(p->position(), before + 200 * p->speed(), kLong);
    QCOMPARE(slider->property("position").toDouble(), held);
    QTest::mouseRelease(window_, Qt::LeftButton, Qt::NoModifier, at(0.6));
    QVERIFY2(std::abs(p->position() - 0.6 * p->duration()) < 0.1 * p->duration(),
             qPrintable(QString::number(p->position())));
    QVERIFY(p->playing());
    QCOMPARE(h->snapshotCount(), fixture_.snapshotsUntil(p->position()));

    // Play to the end: it stops there and the button offers Play again.
    now_ += 60'000;
    QTRY_VERIFY_WITH_TIMEOUT(!p->playing(), kLong);
    QVERIFY(p->atEnd());
    QCOMPARE(h->snapshotCount(), fixture_.snapshots);
    QCOMPARE(item("playButton")->property("text").toString(), QStringLiteral("Play"));
    p->setSpeed(1);
}

void tst_InspectorControls::attachingEndsPlayback() {
    ReplayPlayer* p = controller_->player();
    QVERIFY(controller_->replay(fixture_.path));
    p->play();
    QVERIFY(p->playing());
    controller_->detach(); // pauses the playback
    QVERIFY(!p->playing());
    QVERIFY(p->loaded());
    // Attaching to a live process ends the replay: the player feeds nothing any more.
    QVERIFY(controller_->replay(fixture_.path));
    p->play();
    Child c;
    QVERIFY(
        c.start(QStringLiteral(INSPECTOR_CHILD),
                {QStringLiteral("timers"), QStringLiteral("controls-child"), QStringLiteral("3")},
                runtime_->env()));
    QVERIFY2(controller_->attachPid(c.pid()), qPrintable(controller_->message()));
    QVERIFY(!controller_->replaying());
    QVERIFY(!p->playing());
    QVERIFY(!p->loaded());
    QVERIFY(!item("playButton")->isVisible());
    QTRY_COMPARE_WITH_TIMEOUT(controller_->status(), QStringLiteral("attached"), kLong);
    controller_->detach();
    QVERIFY(c.finish());
}

void tst_InspectorControls::playAndSpeedOptions() {
    QString error;
    const auto o =
        parseOptions({QStringLiteral("loop-inspector"), QStringLiteral("--replay"), fixture_.path,
                      QStringLiteral("--play"), QStringLiteral("--speed"), QStringLiteral("5")},
                     &error);
    QVERIFY2(o, qPrintable(error));
    QVERIFY(o->play);
    QCOMPARE(o->speed, 5.0);
    InspectorController c;
    c.setProbeDirectory(runtime_->probeDir());
    qint64 clock = 0;
    c.player()->setTimeSource([&clock] { return clock; });
    QVERIFY2(startFromOptions(&c, *o, &error), qPrintable(error));
    QVERIFY(c.replaying());
    QVERIFY(c.player()->playing()); // at once, from the start
    QCOMPARE(c.player()->position(), 0.0);
    QCOMPARE(c.player()->speed(), 5.0);
    QCOMPARE(c.history()->snapshotCount(), 1);
    clock += 100;
    c.player()->tickFromClock();
    QCOMPARE(c.player()->position(), 500.0);

    // "2x" works too; without --play the whole session shows, not playing.
    const auto o2 = parseOptions({QStringLiteral("loop-inspector"), QStringLiteral("--replay"),
                                  fixture_.path, QStringLiteral("--speed"), QStringLiteral("2x")},
                                 &error);
    QVERIFY2(o2, qPrintable(error));
    QVERIFY(!o2->play);
    InspectorController c2;
    c2.setProbeDirectory(runtime_->probeDir());
    QVERIFY(startFromOptions(&c2, *o2, &error));
    QVERIFY(!c2.player()->playing());
    QVERIFY(c2.player()->atEnd());
    QCOMPARE(c2.player()->speed(), 2.0);
    QCOMPARE(c2.history()->snapshotCount(), fixture_.snapshots);

    // In-process, the errors of the next test.
    QVERIFY(!parseOptions({QStringLiteral("loop-inspector"), QStringLiteral("--replay"),
                           fixture_.path, QStringLiteral("--speed"), QStringLiteral("3")},
                          &error));
    QVERIFY2(error.startsWith(QStringLiteral("--speed: expected one of 0.5, 1, 2, 5, 10")),
             qPrintable(error));
    QVERIFY(!parseOptions({QStringLiteral("loop-inspector"), QStringLiteral("--play")}, &error));
    QVERIFY2(error.contains(QStringLiteral("need --replay")), qPrintable(error));
}

void tst_InspectorControls::badSpeedIsAUsageError_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("message");
    const QString speedError = QStringLiteral("--speed: expected one of 0.5, 1, 2, 5, 10, got");
    for (const char* bad : {"3", "0", "-1", "abc", "", "1.5", "fast"})
        QTest::addRow("--speed '%s'", bad)
            << QStringList{QStringLiteral("--replay"), fixture_.path, QStringLiteral("--play"),
                           QStringLiteral("--speed"), QLatin1String(bad)}
            << speedError;
    QTest::newRow("--play without --replay")
        << QStringList{QStringLiteral("--play")} << QStringLiteral("need --replay");
    QTest::newRow("--speed without --replay")
        << QStringList{QStringLiteral("--speed"), QStringLiteral("2")}
        << QStringLiteral("need --replay");
}

void tst_InspectorControls::badSpeedIsAUsageError() {
    QFETCH(QStringList, args);
    QFETCH(QString, message);
    Run r;
    QVERIFY(run(QStringLiteral(LOOP_INSPECTOR), args, runtime_->env(), &r));
    QVERIFY(!r.crashed);
    QCOMPARE(r.exitCode, 2); // a usage error, before any window
    QVERIFY2(QString::fromLocal8Bit(r.err).contains(message), r.err.constData());
    QVERIFY(r.out.isEmpty());
}

void tst_InspectorControls::playWithMalformedFileFails() {
    const QString bad = QDir(dir_.path()).filePath(QStringLiteral("bad.jsonl"));
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("{\"t\":\"session\",\"v\":1}\n{\"t\":\"snapshot\",\"seq\":\"x\"}\n");
    f.close();
    Run r;
    QVERIFY(run(QStringLiteral(LOOP_INSPECTOR),
                {QStringLiteral("--replay"), bad, QStringLiteral("--play")}, runtime_->env(), &r));
    QVERIFY(!r.crashed);
    QCOMPARE(r.exitCode, 1);
    QVERIFY2(r.err.contains(":2:"), r.err.constData());
}

int main(int argc, char** argv) {
    // The inspector's own setup: libloop's GUI dispatcher, a QApplication (QCustomPlot and
    // QFileDialog are widgets).
    libloop::qt::installGui();
    QApplication app(argc, argv);
    tst_InspectorControls t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_inspector_controls.moc"
