// LoopGuiEventDispatcher under a QGuiApplication with Qt Quick windows on the offscreen platform.
// Run twice by CTest: LIBLOOP_TEST_DISPATCHER=libloop installs our dispatcher with installGui(),
// LIBLOOP_TEST_DISPATCHER=qt keeps Qt's own (the reference: every test must pass on both).
//
// Input is queued as window-system events with QWindowSystemInterface's *asynchronous* API:
// such events sit in Qt's window-system event queue until the dispatcher calls
// QWindowSystemInterface::sendWindowSystemEvents(), so a click or key press that reaches QML
// proves that the dispatcher delivers window-system events (QTest::mouseClick would not: it
// sends the event synchronously and bypasses the dispatcher). Exposure on offscreen is such an
// event too (QOffscreenWindow::setVisible queues it with the default, asynchronous, delivery).
// No test asserts on durations; waits are QTRY_* with generous timeouts.
#include <libloop/qt/install.h>
#include <libloop/qt/loopeventdispatcher.h>
#include <libloop/qt/loopguieventdispatcher.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qeventloop.h>
#include <QtCore/qfile.h>
#include <QtCore/qmutex.h>
#include <QtCore/qtemporarydir.h>
#include <QtCore/qthread.h>
#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtGui/qpointingdevice.h>
#include <QtQml/qqmlengine.h>
#include <QtQuick/qquickitem.h>
#include <QtQuick/qquickview.h>
#include <QtQuick/qquickwindow.h>
#include <QtQuick/qsgrendererinterface.h>
#include <QtTest/qtest.h>
#include <qpa/qwindowsysteminterface.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace {

constexpr int kTimeoutMs = 10000;

bool libloopVariant() {
    return qgetenv("LIBLOOP_TEST_DISPATCHER") == "libloop";
}

// Strictly increasing timestamps, far apart, so that two clicks are never merged into a
// double click (QGuiApplication compares press timestamps with the double-click interval).
ulong nextTimestamp() {
    static std::atomic<ulong> ts{100000};
    return ts.fetch_add(5000) + 5000;
}

// Queues a left click (press, then release) at `local` for asynchronous delivery. Thread-safe:
// the asynchronous handlers only append to Qt's window-system event queue and wake the GUI
// thread's dispatcher. `global` must be computed on the GUI thread by the caller.
void queueClick(QWindow* window, QPointF local, QPointF global) {
    using WSI = QWindowSystemInterface;
    WSI::handleMouseEvent<WSI::AsynchronousDelivery>(window, nextTimestamp(), local, global,
                                                     Qt::LeftButton, Qt::LeftButton,
                                                     QEvent::MouseButtonPress);
    WSI::handleMouseEvent<WSI::AsynchronousDelivery>(window, nextTimestamp(), local, global,
                                                     Qt::NoButton, Qt::LeftButton,
                                                     QEvent::MouseButtonRelease);
}

void queueKey(QWindow* window, int key, const QString& text) {
    using WSI = QWindowSystemInterface;
    WSI::handleKeyEvent<WSI::AsynchronousDelivery>(window, nextTimestamp(), QEvent::KeyPress, key,
                                                   Qt::NoModifier, text);
    WSI::handleKeyEvent<WSI::AsynchronousDelivery>(window, nextTimestamp(), QEvent::KeyRelease, key,
                                                   Qt::NoModifier, text);
}

int intProperty(QObject* o, const char* name) {
    return o->property(name).toInt();
}

} // namespace

class Tst : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void dispatcherClass();
    void quickWindowExposesAndQmlTimerTicks();
    void queuedClickReachesMouseArea();
    void queuedKeyReachesFocusedItem();
    void windowSystemEventsDeliveredWhileIdle();
    void coreVariantWorksInWorkerThread();

private:
    // Writes `qml` to a file and loads it into `view`; false (with the errors) on failure.
    bool load(QQuickView& view, const char* name, const QByteArray& qml);
    bool showAndWaitExposed(QQuickView& view);

    QTemporaryDir m_dir;
};

void Tst::initTestCase() {
    QVERIFY(m_dir.isValid());
    qInfo("variant %s, platform %s, dispatcher %s, graphics api %d",
          libloopVariant() ? "libloop" : "qt", qPrintable(QGuiApplication::platformName()),
          QAbstractEventDispatcher::instance()->metaObject()->className(),
          int(QQuickWindow::graphicsApi()));
}

bool Tst::load(QQuickView& view, const char* name, const QByteArray& qml) {
    const QString path = m_dir.filePath(QString::fromLatin1(name) + QStringLiteral(".qml"));
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) || f.write(qml) != qml.size()) {
        qWarning("cannot write %s", qPrintable(path));
        return false;
    }
    f.close();
    view.setResizeMode(QQuickView::SizeRootObjectToView);
    view.setSource(QUrl::fromLocalFile(path));
    if (view.status() != QQuickView::Ready || !view.rootObject()) {
        for (const QQmlError& e : view.errors())
            qWarning("%s", qPrintable(e.toString()));
        return false;
    }
    return true;
}

bool Tst::showAndWaitExposed(QQuickView& view) {
    view.setGeometry(100, 100, 200, 200);
    view.show();
    return QTest::qWaitForWindowExposed(&view, kTimeoutMs);
}

// 1. The main thread runs our GUI dispatcher in the libloop variant, and Qt's otherwise.
void Tst::dispatcherClass() {
    QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance();
    QVERIFY(d);
    QCOMPARE(d, QCoreApplication::instance()->thread()->eventDispatcher());
    const QByteArray name = d->metaObject()->className();
    if (libloopVariant()) {
        QCOMPARE(name, QByteArray("libloop::qt::LoopGuiEventDispatcher"));
        QVERIFY(qobject_cast<libloop::qt::LoopGuiEventDispatcher*>(d));
        QVERIFY(libloop::qt::LoopGuiEventDispatcher::runtimeQtMatches());
        // A second installation is refused: the application (and a dispatcher) exist.
        QTest::ignoreMessage(QtWarningMsg,
                             QRegularExpression(QStringLiteral("^libloop::qt::installGui\\(\\)")));
        QVERIFY(!libloop::qt::installGui());
        QCOMPARE(QAbstractEventDispatcher::instance(), d);
    } else {
        QVERIFY2(!qobject_cast<libloop::qt::LoopEventDispatcher*>(d), name.constData());
        QVERIFY2(!name.startsWith("libloop::"), name.constData());
    }
}

// 2. A Qt Quick window is exposed (an asynchronously queued expose event), renders frames, and a
// QML Timer keeps ticking and re-rendering.
void Tst::quickWindowExposesAndQmlTimerTicks() {
    QQuickView view;
    QVERIFY(load(view, "timer", R"(
import QtQuick
Item {
    width: 200; height: 200
    property int ticks: 0
    Rectangle { width: 10 + (parent.ticks % 100); height: 20; color: "steelblue" }
    Timer { interval: 10; repeat: true; running: true; onTriggered: parent.ticks++ }
}
)"));
    QQuickItem* root = view.rootObject();
    int frames = 0;
    connect(&view, &QQuickWindow::frameSwapped, this, [&frames] { ++frames; });

    QVERIFY(showAndWaitExposed(view));
    QTRY_VERIFY_WITH_TIMEOUT(view.isExposed(), kTimeoutMs);
    QTRY_VERIFY_WITH_TIMEOUT(intProperty(root, "ticks") >= 5, kTimeoutMs);
    // The timer changes the scene: the window keeps rendering (update requests are delivered).
    QTRY_VERIFY_WITH_TIMEOUT(frames >= 3, kTimeoutMs);
    const int ticksBefore = intProperty(root, "ticks");
    QTRY_VERIFY_WITH_TIMEOUT(intProperty(root, "ticks") >= ticksBefore + 5, kTimeoutMs);
}

static const char kClickQml[] = R"(
import QtQuick
Item {
    id: root
    width: 200; height: 200
    property int clicks: 0
    signal clickedOnce()
    MouseArea {
        anchors.fill: parent
        onClicked: { root.clicks++; root.clickedOnce() }
    }
}
)";

// 3. A click queued as a window-system event reaches a MouseArea.
void Tst::queuedClickReachesMouseArea() {
    QQuickView view;
    QVERIFY(load(view, "click", kClickQml));
    QQuickItem* root = view.rootObject();
    QVERIFY(showAndWaitExposed(view));

    const QPointF local(50, 50);
    const QPointF global = view.mapToGlobal(local);
    queueClick(&view, local, global);
    // Queued, not delivered: only the dispatcher's sendWindowSystemEvents() delivers it.
    QVERIFY(QWindowSystemInterface::windowSystemEventsQueued() >= 2);
    QCOMPARE(intProperty(root, "clicks"), 0);
    QTRY_COMPARE_WITH_TIMEOUT(intProperty(root, "clicks"), 1, kTimeoutMs);

    // And a second one (not merged into a double click).
    queueClick(&view, QPointF(120, 80), view.mapToGlobal(QPointF(120, 80)));
    QTRY_COMPARE_WITH_TIMEOUT(intProperty(root, "clicks"), 2, kTimeoutMs);
    // Nothing more arrives.
    QTest::qWait(50);
    QCOMPARE(intProperty(root, "clicks"), 2);
}

// 3b. Key events queued as window-system events reach the focused TextInput and a
// Keys.onPressed handler.
void Tst::queuedKeyReachesFocusedItem() {
    QQuickView view;
    QVERIFY(load(view, "keys", R"(
import QtQuick
Item {
    width: 200; height: 200
    property int keys: 0
    property int lastKey: 0
    property alias text: input.text
    TextInput {
        id: input
        width: 200; height: 30
        focus: true
        Keys.onPressed: (event) => { parent.keys++; parent.lastKey = event.key; event.accepted = false }
    }
}
)"));
    QQuickItem* root = view.rootObject();
    QVERIFY(showAndWaitExposed(view));
    view.requestActivate();
    QVERIFY(QTest::qWaitForWindowActive(&view, kTimeoutMs));
    QTRY_VERIFY_WITH_TIMEOUT(view.activeFocusItem() != nullptr, kTimeoutMs);
    QCOMPARE(view.activeFocusItem()->metaObject()->className(), "QQuickTextInput");

    queueKey(&view, Qt::Key_A, QStringLiteral("a"));
    QVERIFY(QWindowSystemInterface::windowSystemEventsQueued() >= 2);
    QCOMPARE(intProperty(root, "keys"), 0);
    QTRY_COMPARE_WITH_TIMEOUT(intProperty(root, "keys"), 1, kTimeoutMs);
    QCOMPARE(intProperty(root, "lastKey"), int(Qt::Key_A));
    QTRY_COMPARE_WITH_TIMEOUT(root->property("text").toString(), QStringLiteral("a"), kTimeoutMs);

    queueKey(&view, Qt::Key_B, QStringLiteral("b"));
    QTRY_COMPARE_WITH_TIMEOUT(root->property("text").toString(), QStringLiteral("ab"), kTimeoutMs);
    QCOMPARE(intProperty(root, "keys"), 2);
}

// 4. With nothing else going on, the main thread blocks in QEventLoop::exec(); another thread
// queues a click (the asynchronous handlers wake the GUI thread's dispatcher). The click must
// be delivered while the loop sits there: it proves a cross-thread wakeUp() plus delivery of
// window-system events after a blocking wait. A 10 s safety timer ends the loop otherwise.
void Tst::windowSystemEventsDeliveredWhileIdle() {
    QQuickView view;
    QVERIFY(load(view, "idle", kClickQml));
    QQuickItem* root = view.rootObject();
    QVERIFY(showAndWaitExposed(view));
    // Let rendering settle: no timers or animations remain, the window is idle.
    QTest::qWait(100);
    // Created here, on the GUI thread, rather than lazily from the other thread.
    QVERIFY(QPointingDevice::primaryPointingDevice());

    const QPointF local(60, 70);
    const QPointF global = view.mapToGlobal(local);

    QEventLoop loop;
    connect(root, SIGNAL(clickedOnce()), &loop, SLOT(quit()));
    bool timedOut = false;
    QTimer safety;
    safety.setSingleShot(true);
    safety.setInterval(kTimeoutMs);
    connect(&safety, &QTimer::timeout, &loop, [&] {
        timedOut = true;
        loop.quit();
    });

    // The clicking thread starts once the loop is about to block (the dispatcher's aboutToBlock
    // signal, on the GUI thread), so the click comes from outside while the loop is waiting.
    std::mutex m;
    std::condition_variable cv;
    bool loopBlocking = false;
    bool stop = false;
    int blocksBeforeClick = 0;
    QAbstractEventDispatcher* dispatcher = QAbstractEventDispatcher::instance();
    QMetaObject::Connection blockConn =
        connect(dispatcher, &QAbstractEventDispatcher::aboutToBlock, this, [&] {
            if (intProperty(root, "clicks") == 0)
                ++blocksBeforeClick;
            std::lock_guard<std::mutex> lock(m);
            loopBlocking = true;
            cv.notify_all();
        });

    std::thread clicker([&] {
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, std::chrono::seconds(5), [&] { return loopBlocking || stop; });
        if (stop)
            return;
        lock.unlock();
        // Give the GUI thread time to actually enter its wait (correctness must not depend on
        // it: a wake-up racing with the start of the wait must not be lost either).
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        queueClick(&view, local, global);
    });

    safety.start();
    loop.exec();
    disconnect(blockConn);
    {
        std::lock_guard<std::mutex> lock(m);
        stop = true;
        cv.notify_all();
    }
    clicker.join();

    QVERIFY2(!timedOut, "the click queued from another thread was not delivered within 10 s");
    QCOMPARE(intProperty(root, "clicks"), 1);
    QVERIFY2(blocksBeforeClick >= 1, "the loop never reached aboutToBlock before the click");
}

// 5. Worker threads: installOn() gives them the core LoopEventDispatcher (the GUI class is only
// for the main thread) and a QTimer ticks there while the GUI application runs.
void Tst::coreVariantWorksInWorkerThread() {
    QThread worker;
    if (libloopVariant())
        QVERIFY(libloop::qt::installOn(&worker));

    std::atomic<int> ticks{0};
    QMutex mutex;
    QByteArray workerDispatcherClass;
    bool workerIsGuiDispatcher = false;

    auto* timer = new QTimer;
    timer->setInterval(10);
    timer->moveToThread(&worker);
    connect(timer, &QTimer::timeout, timer, [&ticks] { ticks.fetch_add(1); });
    connect(&worker, &QThread::started, timer, [&, timer] {
        QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance();
        {
            QMutexLocker lock(&mutex);
            workerDispatcherClass = d ? QByteArray(d->metaObject()->className()) : QByteArray();
            workerIsGuiDispatcher = qobject_cast<libloop::qt::LoopGuiEventDispatcher*>(d);
        }
        timer->start();
    });
    connect(&worker, &QThread::finished, timer, &QObject::deleteLater);
    worker.start();

    QTRY_VERIFY_WITH_TIMEOUT(ticks.load() >= 5, kTimeoutMs);
    worker.quit();
    QVERIFY(worker.wait(kTimeoutMs));

    QMutexLocker lock(&mutex);
    QVERIFY(!workerIsGuiDispatcher);
    if (libloopVariant())
        QCOMPARE(workerDispatcherClass, QByteArray("libloop::qt::LoopEventDispatcher"));
    else
        QVERIFY2(!workerDispatcherClass.startsWith("libloop::"), workerDispatcherClass.constData());
}

int main(int argc, char** argv) {
    if (libloopVariant() && !libloop::qt::installGui())
        return 2;
    // Offscreen has no GL context for Qt Quick: render with the software backend (both variants).
    QQuickWindow::setGraphicsApi(QSGRendererInterface::Software);
    QGuiApplication app(argc, argv);
    Tst t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_guidispatcher.moc"
