// The inspector's Qt Quick UI (qml/Inspector + PlotItem + InspectorController), offscreen, on
// libloop's GUI dispatcher under a QApplication, attached to a live probe in this very process
// (a Loop on another thread doing varied work). Checks that the four headline plots received
// data and drew it (pixels of their series colour), that pause stops redrawing, exports (PNG
// loads and is not blank, CSV parses), record -> replay in the UI, hover values, wheel zoom /
// drag pan / double-click follow with real pointer events, and
// loop-inspector --screenshot against a child process.
#include "childprocess.h"
#include "workload.h"

#include <gui.h>
#include <inspectorcontroller.h>
#include <plotitem.h>
#include <plotscheduler.h>

#include <libloop/qt/loopguieventdispatcher.h>
#include <libloop/qt/probe.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qdir.h>
#include <QtCore/qfile.h>
#include <QtGui/qevent.h>
#include <QtQml/qqmlapplicationengine.h>
#include <QtQuick/qquickwindow.h>
#include <QtTest/qtest.h>
#include <QtWidgets/qapplication.h>

#include <memory>

using namespace libloop::inspector;
using namespace inspectortest;

namespace {

int countColour(const QImage& image, QColor colour) {
    const QImage img = image.convertToFormat(QImage::Format_RGB32);
    const QRgb want = colour.rgb();
    int n = 0;
    for (int y = 0; y < img.height(); ++y) {
        const QRgb* line = reinterpret_cast<const QRgb*>(img.constScanLine(y));
        for (int x = 0; x < img.width(); ++x)
            n += (line[x] & 0xffffff) == (want & 0xffffff) ? 1 : 0;
    }
    return n;
}

// Pixels that differ from the most common colour (the background).
int countNonBackground(const QImage& image) {
    const QImage img = image.convertToFormat(QImage::Format_RGB32);
    QHash<QRgb, int> histogram;
    for (int y = 0; y < img.height(); ++y) {
        const QRgb* line = reinterpret_cast<const QRgb*>(img.constScanLine(y));
        for (int x = 0; x < img.width(); ++x)
            ++histogram[line[x]];
    }
    int top = 0, total = 0;
    for (int c : std::as_const(histogram)) {
        top = std::max(top, c);
        total += c;
    }
    return total - top;
}

} // namespace

class tst_InspectorUi : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void cleanupTestCase();
    void headlinePlotsDrawLiveData();
    void hoverShowsValues();
    void pauseStopsRedrawing();
    void wheelZoomsAndDragPans();
    void exportsParseBack();
    void recordThenReplay();
    void screenshotOption();

private:
    PlotItem* plot(PlotItem::Kind kind) const;

    std::unique_ptr<RuntimeDir> runtime_;
    std::unique_ptr<Workload> workload_;
    std::unique_ptr<InspectorController> controller_;
    std::unique_ptr<QQmlApplicationEngine> engine_;
    QQuickWindow* window_ = nullptr;
};

PlotItem* tst_InspectorUi::plot(PlotItem::Kind kind) const {
    for (PlotItem* p : PlotScheduler::instance()->items())
        if (p->kind() == kind)
            return p;
    return nullptr;
}

void tst_InspectorUi::initTestCase() {
    QCOMPARE(QAbstractEventDispatcher::instance()->metaObject()->className(),
             "libloop::qt::LoopGuiEventDispatcher");
    runtime_ = std::make_unique<RuntimeDir>();
    QVERIFY(runtime_->isValid());
    workload_ = std::make_unique<Workload>("ui-workload");
    libloop::qt::ProbeOptions o;
    o.name = "tst_inspector_ui";
    o.directory = runtime_->probeDir().toStdString();
    const libloop::qt::ProbeResult r = libloop::qt::startProbe(o);
    QVERIFY2(r.ok, r.error.c_str());

    controller_ = std::make_unique<InspectorController>();
    controller_->setProbeDirectory(runtime_->probeDir());
    controller_->setPreferredLoop(QStringLiteral("ui-workload"));
    controller_->history()->setWindowSeconds(10);
    engine_ = std::make_unique<QQmlApplicationEngine>();
    window_ = loadInspectorUi(*engine_, controller_.get());
    QVERIFY(window_);
    QVERIFY(QTest::qWaitForWindowExposed(window_, kLong));
    for (PlotItem::Kind k :
         {PlotItem::TimerHeap, PlotItem::MicrotaskRing, PlotItem::FastPath, PlotItem::Latency,
          PlotItem::TasksPerSecond, PlotItem::Utilisation, PlotItem::QueueDepths})
        QVERIFY2(plot(k), qPrintable(PlotItem::kindName(k)));
}

void tst_InspectorUi::cleanupTestCase() {
    engine_.reset();
    controller_.reset();
    libloop::qt::stopProbe();
    workload_.reset();
}

void tst_InspectorUi::headlinePlotsDrawLiveData() {
    // The process list shows this process; attaching by clicking is attachRow().
    QTRY_COMPARE_WITH_TIMEOUT(controller_->probes()->count(), 1, kLong);
    QCOMPARE(controller_->probes()->pidAt(0), QCoreApplication::applicationPid());
    QVERIFY(controller_->attachRow(0));
    QTRY_COMPARE_WITH_TIMEOUT(controller_->status(), QStringLiteral("attached"), kLong);
    QCOMPARE(controller_->attachedPid(), QCoreApplication::applicationPid());
    QTRY_COMPARE_WITH_TIMEOUT(controller_->history()->currentLoopName(),
                              QStringLiteral("ui-workload"), kLong);
    // At least two seconds of data (the fast-path mode changes about once a second).
    QTRY_VERIFY_WITH_TIMEOUT(controller_->history()->latestTime() >= 2.5, kLong);

    for (PlotItem::Kind k :
         {PlotItem::TimerHeap, PlotItem::MicrotaskRing, PlotItem::FastPath, PlotItem::Latency}) {
        PlotItem* p = plot(k);
        const QString what = PlotItem::kindName(k);
        QTRY_VERIFY2_WITH_TIMEOUT(p->hasData() && p->pointCount() > 10, qPrintable(what), kLong);
        // Its headline series was drawn: pixels of exactly that colour (no antialiasing).
        QTRY_VERIFY2_WITH_TIMEOUT(countColour(p->image(), p->primaryColor()) > 20, qPrintable(what),
                                  kLong);
        QVERIFY2(countNonBackground(p->image()) > 1000, qPrintable(what));
    }
    // The whole window, grabbed while the loop runs, is not blank and shows the plots.
    const QImage shot = window_->grabWindow();
    QVERIFY(!shot.isNull());
    QVERIFY(countNonBackground(shot) > 10000);
    QVERIFY(countColour(shot, plot(PlotItem::TimerHeap)->primaryColor()) > 20);
    // The status line names the pid and the rate.
    QTRY_VERIFY_WITH_TIMEOUT(controller_->statusText().contains(QStringLiteral("/s")), kLong);
    QVERIFY(
        controller_->statusText().contains(QString::number(QCoreApplication::applicationPid())));
    QVERIFY(controller_->statusText().contains(QStringLiteral("lag")));
}

void tst_InspectorUi::hoverShowsValues() {
    PlotItem* p = plot(PlotItem::TimerHeap);
    QTRY_VERIFY_WITH_TIMEOUT(p->hasData(), kLong);
    const QPointF centre = p->mapToScene(QPointF(p->width() * 0.5, p->height() * 0.5));
    QTest::mouseMove(window_, centre.toPoint());
    QTest::mouseMove(window_, centre.toPoint() + QPoint(3, 0));
    QTRY_VERIFY_WITH_TIMEOUT(p->hovering(), kLong);
    QVERIFY2(p->hoverText().contains(QStringLiteral("pending")), qPrintable(p->hoverText()));
    QTest::mouseMove(window_, QPoint(2, 2)); // away again
}

void tst_InspectorUi::pauseStopsRedrawing() {
    HistoryModel* h = controller_->history();
    PlotItem* p = plot(PlotItem::TimerHeap);
    h->setPaused(true);
    // The paused view is drawn once; after that nothing changes what the plot shows.
    QTRY_VERIFY_WITH_TIMEOUT(!p->needsRender(), kLong);
    const int renders = p->renderCount();
    const double end = h->viewEnd();
    const qint64 seen = h->snapshotCount();
    QTRY_VERIFY_WITH_TIMEOUT(h->snapshotCount() >= seen + 10, kLong); // data keeps coming
    QCOMPARE(p->renderCount(), renders);                              // ... but nothing is redrawn
    QCOMPARE(h->viewEnd(), end);
    h->setPaused(false);
    QTRY_VERIFY_WITH_TIMEOUT(p->renderCount() > renders, kLong);
    QVERIFY(h->following()); // back to the newest data
    QCOMPARE(h->viewEnd(), std::max(h->latestTime(), h->windowSeconds()));
}

void tst_InspectorUi::wheelZoomsAndDragPans() {
    // Real pointer events through the window (not model calls): the wheel zooms the time axis
    // around the cursor, a drag pans it, a double click goes back to following.
    HistoryModel* h = controller_->history();
    PlotItem* p = plot(PlotItem::TimerHeap);
    const double saved = h->windowSeconds();
    // A view narrower than the data so far, so there is a past to pan into.
    h->setWindowSeconds(2);
    QTRY_VERIFY_WITH_TIMEOUT(p->hasData() && h->latestTime() > 3, kLong);
    h->follow();
    const double window = h->windowSeconds();
    const QPoint centre = p->mapToScene(QPointF(p->width() * 0.5, p->height() * 0.5)).toPoint();

    QWheelEvent wheel(centre, window_->mapToGlobal(centre), QPoint(), QPoint(0, 120), Qt::NoButton,
                      Qt::NoModifier, Qt::NoScrollPhase, false);
    QCoreApplication::sendEvent(window_, &wheel);
    QVERIFY(wheel.isAccepted());
    QVERIFY2(qAbs(h->windowSeconds() - window * 0.8) < 1e-6,
             qPrintable(QString::number(h->windowSeconds())));
    QVERIFY(!h->following()); // anchored mid-view: the view no longer ends at the newest sample

    const double end = h->viewEnd();
    QTest::mousePress(window_, Qt::LeftButton, Qt::NoModifier, centre);
    QTest::mouseMove(window_, centre + QPoint(60, 0)); // drag right: into the past
    QTest::mouseRelease(window_, Qt::LeftButton, Qt::NoModifier, centre + QPoint(60, 0));
    QVERIFY2(h->viewEnd() < end - 1e-6,
             qPrintable(QStringLiteral("%1 -> %2").arg(end).arg(h->viewEnd())));
    QVERIFY(!h->following());

    QTest::mouseDClick(window_, Qt::LeftButton, Qt::NoModifier, centre);
    QVERIFY(h->following());
    h->setWindowSeconds(saved);
}

void tst_InspectorUi::exportsParseBack() {
    QTemporaryDir dir;
    const QStringList pngs = controller_->exportPng(dir.path());
    QCOMPARE(pngs.size(), 7);
    for (const QString& file : pngs) {
        QImage img;
        QVERIFY2(img.load(file, "PNG"), qPrintable(file));
        QVERIFY(img.width() >= 100 && img.height() >= 100);
        QVERIFY2(countNonBackground(img) > 500, qPrintable(file)); // axes, labels, series
    }
    const QImage heap(QDir(dir.path()).filePath(QStringLiteral("plot-timer-heap.png")));
    QVERIFY(countColour(heap, plot(PlotItem::TimerHeap)->primaryColor()) > 20);

    const QString csv = controller_->exportCsv(QDir(dir.path()).filePath(QStringLiteral("s.csv")));
    QVERIFY(!csv.isEmpty());
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly | QIODevice::Text));
    const QList<QByteArray> lines = f.readAll().trimmed().split('\n');
    QVERIFY(lines.size() > 10);
    const QList<QByteArray> header = lines.first().split(',');
    QCOMPARE(header.size(), 3 + kChannelCount);
    QCOMPARE(header.at(3), QByteArray("timerHeapSize"));
    for (const QByteArray& line : lines.mid(1))
        QCOMPARE(line.count(','), header.size() - 1);
}

void tst_InspectorUi::recordThenReplay() {
    QTemporaryDir dir;
    const QString file = QDir(dir.path()).filePath(QStringLiteral("session.jsonl"));
    QVERIFY(controller_->startRecording(file));
    QVERIFY(controller_->recording());
    const qint64 start = controller_->history()->snapshotCount();
    QTRY_VERIFY_WITH_TIMEOUT(controller_->history()->snapshotCount() >= start + 20, kLong);
    controller_->stopRecording();
    QVERIFY(!controller_->recording());

    QVERIFY2(controller_->replay(file), qPrintable(controller_->message()));
    QCOMPARE(controller_->status(), QStringLiteral("replay"));
    QCOMPARE(controller_->attachedPid(), QCoreApplication::applicationPid());
    QVERIFY(controller_->history()->snapshotCount() >= 20);
    // The replayed series reach the plots too.
    controller_->history()->setCurrentLoopId(controller_->history()->loops()->loopIdAt([&] {
        for (int row = 0; row < controller_->history()->loops()->rowCount(); ++row)
            if (controller_->history()->loops()->data(controller_->history()->loops()->index(row),
                                                      LoopListModel::NameRole) ==
                QStringLiteral("ui-workload"))
                return row;
        return 0;
    }()));
    PlotItem* p = plot(PlotItem::Latency);
    const int renders = p->renderCount();
    QTRY_VERIFY_WITH_TIMEOUT(p->renderCount() > renders && p->hasData(), kLong);
    QTRY_VERIFY_WITH_TIMEOUT(countColour(p->image(), p->primaryColor()) > 10, kLong);
    controller_->detach();
}

void tst_InspectorUi::screenshotOption() {
    RuntimeDir rt;
    Child c;
    QVERIFY(c.start(QStringLiteral(INSPECTOR_CHILD),
                    {QStringLiteral("work"), QStringLiteral("insp-shot")}, rt.env()));
    QTemporaryDir out;
    Run r;
    QVERIFY(run(QStringLiteral(LOOP_INSPECTOR),
                {QStringLiteral("--pid"), QString::number(c.pid()), QStringLiteral("--screenshot"),
                 out.path(), QStringLiteral("--screenshot-after"), QStringLiteral("1.5"),
                 QStringLiteral("--window"), QStringLiteral("10"), QStringLiteral("--loop"),
                 QStringLiteral("workload")},
                rt.env(), &r));
    QVERIFY2(r.exitCode == 0 && !r.crashed, (r.out + r.err).constData());
    QImage window(QDir(out.path()).filePath(QStringLiteral("inspector.png")));
    QVERIFY(!window.isNull());
    QVERIFY(countNonBackground(window) > 10000);
    for (const char* kind : {"timer-heap", "microtask-ring", "fast-path", "latency",
                             "tasks-per-second", "utilisation", "queues"}) {
        const QString file =
            QDir(out.path()).filePath(QStringLiteral("plot-%1.png").arg(QLatin1String(kind)));
        QImage img(file);
        QVERIFY2(!img.isNull(), qPrintable(file));
        QVERIFY2(countNonBackground(img) > 500, qPrintable(file));
    }
    QVERIFY(c.finish());
}

int main(int argc, char** argv) {
    // The inspector's own setup: libloop's GUI dispatcher, a QApplication (QCustomPlot).
    libloop::qt::installGui();
    QApplication app(argc, argv);
    tst_InspectorUi t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_inspector_ui.moc"
