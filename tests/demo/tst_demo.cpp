// loop-demo: every scenario run in-process by a ScenarioController on the real libloop loop of
// this thread (libloop::qt::install()), its effect checked as counts in the loop's snapshot();
// and the app itself as a child process (bad command lines, the scripted tour with a screenshot).
//
// No assertion compares a duration with an upper bound: waits are QTRY_* with generous timeouts
// and the conditions are counts. The blocking test compares measured latencies with a lower bound
// only (a 200 ms block makes its witnesses at least 200 ms late on any machine).
#include "demooptions.h"
#include "scenariocontroller.h"

#include <libloop/loop.h>
#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>
#include <libloop/qt/install.h>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qeventloop.h>
#include <QtCore/qprocess.h>
#include <QtCore/qset.h>
#include <QtCore/qtemporarydir.h>
#include <QtCore/qtimer.h>
#include <QtGui/qimage.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

using libloop::FastPathMode;
using libloop::MetricsSnapshot;
using libloop::demo::DemoOptions;
using libloop::demo::ScenarioController;

namespace {

constexpr int kTimeoutMs = 20000;

constexpr std::uint64_t u64(std::uint64_t v) {
    return v;
}

libloop::Loop& theLoop() {
    libloop::Loop* loop = ScenarioController::currentThreadLoop();
    Q_ASSERT(loop);
    return *loop;
}

MetricsSnapshot snap() {
    return theLoop().snapshot();
}

// One pass of the dispatcher, without waiting. A stopped Qt timer (the controller's refresh
// timer, spin()'s own) may stay parked on the loop's heap until the dispatcher's next pass
// releases it (LoopEventDispatcher reuses it if the same id is started again): call this before
// counting the timers left.
void settle() {
    QCoreApplication::processEvents();
}

// Runs the Qt event loop (waiting for events, so the loop may sleep) for `ms`.
void spin(int ms) {
    QEventLoop e;
    QTimer::singleShot(ms, &e, &QEventLoop::quit);
    e.exec();
}

namespace proto = libloop::protocol;

// A blocking probe client (what an inspector does): hello, subscribe, then snapshots.
class ProbeReader {
public:
    ~ProbeReader() {
        if (fd_ >= 0)
            ::close(fd_);
    }

    bool connectTo(const QString& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const QByteArray p = path.toLocal8Bit();
        if (fd_ < 0 || p.size() >= qsizetype(sizeof addr.sun_path))
            return false;
        std::memcpy(addr.sun_path, p.constData(), std::size_t(p.size()));
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            return false;
        proto::ClientHello hello;
        hello.client = QStringLiteral("tst_demo");
        proto::Subscribe subscribe;
        subscribe.rate = 20;
        return send(hello.toCbor()) && send(subscribe.toCbor());
    }

    // The next snapshot's entry for the loop whose thread is `tid`, waiting up to `timeoutMs`.
    std::optional<proto::LoopMetrics> nextSnapshot(qint64 tid, int timeoutMs) {
        QDeadlineTimer deadline(timeoutMs);
        for (;;) {
            while (auto m = decoder_.next()) {
                const QString t = proto::messageType(*m);
                if (t == QLatin1String(proto::type::Loops)) {
                    if (auto loops = proto::LoopsMessage::fromCbor(*m))
                        for (const proto::LoopInfo& l : loops->loops)
                            if (l.tid == tid)
                                loopId_ = l.id;
                } else if (t == QLatin1String(proto::type::Snapshot) && loopId_) {
                    if (auto snap = proto::SnapshotMessage::fromCbor(*m))
                        for (const proto::LoopMetrics& l : snap->loops)
                            if (l.id == loopId_)
                                return l;
                }
            }
            if (decoder_.failed() || deadline.hasExpired())
                return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, int(std::max<qint64>(deadline.remainingTime(), 1))) <= 0)
                continue;
            char buf[65536];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return std::nullopt;
            if (n > 0)
                decoder_.feed(QByteArrayView(buf, n));
        }
    }

private:
    bool send(const QCborMap& m) {
        const QByteArray bytes = proto::encodeFrame(m);
        return ::send(fd_, bytes.constData(), std::size_t(bytes.size()), MSG_NOSIGNAL) ==
               ssize_t(bytes.size());
    }

    int fd_ = -1;
    std::uint64_t loopId_ = 0;
    proto::FrameDecoder decoder_;
};

} // namespace

class TstDemo : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void init();
    void cleanup();

    void timerStorm();
    void microtaskFloodKeepsTheLoopResponsive();
    void promiseChains();
    void blockingTask();
    void fastPathSwitching();
    void fastPathCycle();
    void pingPong();
    void pingPongRefusedWhileForced();
    void calmReleasesEverything();
    void cycleVisitsEveryScenario();

    void options_data();
    void options();
    void badCommandLineExitsWith2_data();
    void badCommandLineExitsWith2();
    void cycleQuitAfterScreenshot();
    void probeShowsEachScenario_data();
    void probeShowsEachScenario();

private:
    QProcessEnvironment childEnvironment() const;

    std::unique_ptr<ScenarioController> c;
    QTemporaryDir runtimeDir; // XDG_RUNTIME_DIR of the children (their probe sockets), 0700
};

void TstDemo::initTestCase() {
    QVERIFY(ScenarioController::currentThreadLoop());
    QVERIFY(runtimeDir.isValid());
}

void TstDemo::init() {
    c = std::make_unique<ScenarioController>(theLoop());
}

void TstDemo::cleanup() {
    c.reset();
    // Nothing of a scenario survives its controller.
    spin(20);
    settle();
    const MetricsSnapshot s = snap();
    QCOMPARE(s.timerHeapSize, u64(0));
    QCOMPARE(s.registeredFds, u64(0));
    QCOMPARE(s.fastPathMode, FastPathMode::Auto);
}

// Timer storm, N = 5000: the heap holds at least N timers while it runs (they re-arm as they
// fire), and none after calm.
void TstDemo::timerStorm() {
    c->setTimerCount(5000);
    c->setTimerMaxDelayMs(50);
    QVERIFY(c->start(QStringLiteral("timers")));
    QVERIFY(c->timerStorm());
    QVERIFY(c->isRunning(QStringLiteral("timers")));
    QCOMPARE(c->stormTimers(), qint64(5000));
    QVERIFY(snap().timerHeapSize >= 5000);

    QTRY_VERIFY_WITH_TIMEOUT(c->timersFired() >= 10000, kTimeoutMs); // every slot re-armed twice
    QVERIFY(snap().timerHeapSize >= 5000);
    QCOMPARE(c->stormTimers(), qint64(5000));
    QVERIFY(c->timersPending() >= 5000);

    c->calm();
    settle();
    QVERIFY(!c->timerStorm());
    QCOMPARE(c->stormTimers(), qint64(0));
    QCOMPARE(snap().timerHeapSize, u64(0));
    QCOMPARE(c->timersPending(), qint64(0));
    const qint64 fired = c->timersFired();
    spin(100);
    QCOMPARE(c->timersFired(), fired);
}

// Microtask flood: checkpoints are cut short by the budget (budget hits grow), the queue holds
// the whole flood (more than the ring: overflow), and a task, a Qt timer and a posted event all
// still run while it goes on.
void TstDemo::microtaskFloodKeepsTheLoopResponsive() {
    const std::uint64_t hits0 = snap().microtaskBudgetHits;
    c->setFloodSize(3000);
    QVERIFY(c->start(QStringLiteral("flood")));

    QTRY_VERIFY_WITH_TIMEOUT(snap().microtaskBudgetHits >= hits0 + 10, kTimeoutMs);
    const MetricsSnapshot s = snap(); // taken between two checkpoints: the whole flood is queued
    QVERIFY2(s.microtaskRingUsed + s.microtaskOverflow >= 3000,
             qPrintable(QStringLiteral("ring %1 + overflow %2")
                            .arg(s.microtaskRingUsed)
                            .arg(s.microtaskOverflow)));
    QVERIFY(s.microtaskOverflow > 0);

    bool taskRan = false, timerRan = false, eventRan = false;
    QVERIFY(theLoop().submit([&taskRan] { taskRan = true; }).ok());
    QTimer::singleShot(0, this, [&timerRan] { timerRan = true; });
    QMetaObject::invokeMethod(
        this, [&eventRan] { eventRan = true; }, Qt::QueuedConnection);
    QTRY_VERIFY_WITH_TIMEOUT(taskRan && timerRan && eventRan, kTimeoutMs);
    // ... and the flood is still going.
    QVERIFY(c->microtaskFlood());
    const qint64 run = c->microtasksRun();
    QTRY_VERIFY_WITH_TIMEOUT(c->microtasksRun() > run + 10000, kTimeoutMs);

    c->calm();
    QVERIFY(!c->microtaskFlood());
    QTRY_VERIFY_WITH_TIMEOUT(snap().microtaskRingUsed + snap().microtaskOverflow == 0, kTimeoutMs);
    const qint64 after = c->microtasksRun();
    spin(50);
    QCOMPARE(c->microtasksRun(), after);
}

// Promise chains: one batch settles chains × (depth + 1) promises; the repeating scenario keeps
// finishing batches.
void TstDemo::promiseChains() {
    c->setPromiseChainCount(300);
    c->setPromiseChainDepth(10);
    const std::uint64_t microtasks0 = snap().microtasksRun;
    QSignalSpy finished(c.get(), &ScenarioController::promiseBatchFinished);
    QVERIFY(c->runPromiseBatch());
    QTRY_COMPARE_WITH_TIMEOUT(c->promiseBatches(), qint64(1), kTimeoutMs);
    QCOMPARE(c->promisesSettled(), qint64(300 * (10 + 1)));
    QCOMPARE(finished.count(), 1);
    QVERIFY(snap().microtasksRun >= microtasks0 + 300 * 10); // every then() was a microtask

    QVERIFY(c->start(QStringLiteral("promises")));
    QTRY_VERIFY_WITH_TIMEOUT(c->promiseBatches() >= 4, kTimeoutMs);
    c->calm();
    QVERIFY(!c->promiseChains());
    spin(50); // a batch in flight at calm is abandoned, never finished
    const qint64 batches = c->promiseBatches();
    const qint64 settled = c->promisesSettled();
    QCOMPARE(settled % (300 * 11), qint64(0));
    spin(300);
    QCOMPARE(c->promiseBatches(), batches);
    QCOMPARE(c->promisesSettled(), settled);
}

// Blocking: a 200 ms block makes its witness timers and tasks at least 200 ms late; the loop's
// histograms (relative error below 1%) record it.
void TstDemo::blockingTask() {
    using namespace std::chrono;
    c->setBlockMs(200);
    QSignalSpy done(c.get(), &ScenarioController::blockFinished);
    QVERIFY(c->blockOnce());
    QTRY_COMPARE_WITH_TIMEOUT(c->blocksDone(), qint64(1), kTimeoutMs);
    QCOMPARE(done.count(), 1);
    QVERIFY2(c->lastBlockLatenessMs() >= 200.0,
             qPrintable(QString::number(c->lastBlockLatenessMs())));

    const MetricsSnapshot s = snap();
    const std::uint64_t floorNs = duration_cast<nanoseconds>(milliseconds(198)).count();
    QVERIFY2(s.timerLateness.max >= floorNs, qPrintable(QString::number(s.timerLateness.max)));
    QVERIFY2(s.taskLatency.max >= floorNs, qPrintable(QString::number(s.taskLatency.max)));

    // Repeating: a block a second while on.
    c->setBlockMs(20);
    QVERIFY(c->start(QStringLiteral("blocking")));
    QTRY_VERIFY_WITH_TIMEOUT(c->blocksDone() >= 3, kTimeoutMs);
    c->calm();
    QVERIFY(!c->blocking());
}

// Fast path by hand: an idle fd registered (registeredFds 1), Forced refused while it is there
// (status line, nothing changed), accepted without it; registering refused while Forced.
void TstDemo::fastPathSwitching() {
    QCOMPARE(snap().registeredFds, u64(0));
    QCOMPARE(c->fastPathMode(), QStringLiteral("Auto"));

    QVERIFY(c->setFdRegistered(true));
    QVERIFY(c->fdRegistered());
    QCOMPARE(snap().registeredFds, u64(1));
    QCOMPARE(c->registeredFds(), qint64(1));
    spin(20);
    QVERIFY(!snap().fastPathActive); // Auto with an fd: epoll

    const qint64 refusals0 = c->fastPathRefusals();
    QVERIFY(!c->switchFastPath(QStringLiteral("Forced")));
    QVERIFY2(c->status().contains(QStringLiteral("Forced refused")), qPrintable(c->status()));
    QCOMPARE(c->fastPathRefusals(), refusals0 + 1);
    QCOMPARE(snap().fastPathMode, FastPathMode::Auto);
    QCOMPARE(c->fastPathMode(), QStringLiteral("Auto"));

    QVERIFY(c->setFdRegistered(false));
    QCOMPARE(snap().registeredFds, u64(0));
    const std::uint64_t transitions0 = snap().fastPathTransitions;
    spin(20);
    QVERIFY(snap().fastPathActive); // Auto without fds: the fast path
    QVERIFY(snap().fastPathTransitions > transitions0);

    QVERIFY(c->switchFastPath(QStringLiteral("forced")));
    QCOMPARE(snap().fastPathMode, FastPathMode::Forced);
    QCOMPARE(c->fastPathMode(), QStringLiteral("Forced"));
    QVERIFY(!c->setFdRegistered(true));
    QVERIFY(!c->fdRegistered());
    QVERIFY2(c->status().contains(QStringLiteral("refused")), qPrintable(c->status()));
    QCOMPARE(snap().registeredFds, u64(0));

    QVERIFY(c->switchFastPath(QStringLiteral("Disabled")));
    QCOMPARE(snap().fastPathMode, FastPathMode::Disabled);
    spin(20);
    QVERIFY(!snap().fastPathActive); // Disabled: epoll even without fds

    QVERIFY(!c->switchFastPath(QStringLiteral("sideways")));
    QCOMPARE(snap().fastPathMode, FastPathMode::Disabled);

    c->calm();
    QCOMPARE(snap().fastPathMode, FastPathMode::Auto);
}

// The automatic fast-path cycle: mode and fd count change, and its Forced-with-an-fd step is
// refused every round, never fatal.
void TstDemo::fastPathCycle() {
    const std::uint64_t transitions0 = snap().fastPathTransitions;
    const qint64 refusals0 = c->fastPathRefusals();
    // The state after every step (statsChanged follows each one).
    QSet<int> modes;
    QSet<std::uint64_t> fds;
    connect(c.get(), &ScenarioController::statsChanged, this, [&] {
        const MetricsSnapshot s = snap();
        modes.insert(int(s.fastPathMode));
        fds.insert(s.registeredFds);
    });
    QVERIFY(c->start(QStringLiteral("fastpath")));
    QCOMPARE(snap().registeredFds, u64(1)); // the first step (register) is taken at once
    QTRY_VERIFY_WITH_TIMEOUT(
        modes.size() == 3 && fds.size() == 2 && c->fastPathRefusals() >= refusals0 + 2, kTimeoutMs);
    QVERIFY(snap().fastPathTransitions > transitions0);
    c->calm();
    disconnect(c.get(), &ScenarioController::statsChanged, this, nullptr);
    QCOMPARE(snap().fastPathMode, FastPathMode::Auto);
    QCOMPARE(snap().registeredFds, u64(0));
}

// Ping-pong: two fds registered, round trips grow (fd callbacks), nothing after calm.
void TstDemo::pingPong() {
    const std::uint64_t fdCallbacks0 = snap().fdCallbacksRun;
    c->setPingPongBalls(4);
    QVERIFY(c->start(QStringLiteral("pingpong")));
    QCOMPARE(snap().registeredFds, u64(2));
    QTRY_VERIFY_WITH_TIMEOUT(c->roundTrips() >= 1000, kTimeoutMs);
    // 4 balls in flight: one read takes at most 4 of them, so 1000 round trips need at least
    // 250 reads on each side (reads coalesce balls that arrived together: not 1 per trip).
    QVERIFY(snap().fdCallbacksRun >= fdCallbacks0 + 500);

    c->calm();
    QVERIFY(!c->pingPong());
    QCOMPARE(snap().registeredFds, u64(0));
    const qint64 trips = c->roundTrips();
    spin(50);
    QCOMPARE(c->roundTrips(), trips);
}

void TstDemo::pingPongRefusedWhileForced() {
    QVERIFY(c->switchFastPath(QStringLiteral("Forced")));
    QVERIFY(!c->start(QStringLiteral("pingpong")));
    QVERIFY(!c->pingPong());
    QVERIFY2(c->status().contains(QStringLiteral("refused")), qPrintable(c->status()));
    QCOMPARE(snap().registeredFds, u64(0));
    QVERIFY(c->switchFastPath(QStringLiteral("Auto")));
    QVERIFY(c->start(QStringLiteral("pingpong")));
    QTRY_VERIFY_WITH_TIMEOUT(c->roundTrips() >= 10, kTimeoutMs);
}

// Everything at once, then calm: no timer, no fd, no queued microtask, fast path Auto, no
// counter moves any more, and the loop goes back to sleeping (idle time grows).
void TstDemo::calmReleasesEverything() {
    c->setTimerCount(2000);
    c->setTimerMaxDelayMs(20);
    c->setFloodSize(1500);
    c->setBlockMs(10);
    c->setPromiseChainCount(50);
    c->setPromiseChainDepth(5);
    const QStringList all = {QStringLiteral("timers"), QStringLiteral("flood"),
                             QStringLiteral("promises"), QStringLiteral("blocking"),
                             QStringLiteral("pingpong")};
    for (const QString& name : all)
        QVERIFY2(c->start(name), qPrintable(name + QStringLiteral(": ") + c->status()));
    QCOMPARE(c->runningScenarios(), all);
    QVERIFY(c->active());
    QTRY_VERIFY_WITH_TIMEOUT(c->timersFired() > 0 && c->microtasksRun() > 0 &&
                                 c->promiseBatches() > 0 && c->blocksDone() > 0 &&
                                 c->roundTrips() > 0,
                             kTimeoutMs);
    QVERIFY(c->start(QStringLiteral("fastpath")));

    QSignalSpy changed(c.get(), &ScenarioController::scenariosChanged);
    QVERIFY(c->start(QStringLiteral("calm")));
    QVERIFY(changed.count() >= 1);
    QVERIFY(!c->active());
    QVERIFY(c->runningScenarios().isEmpty());
    QVERIFY2(c->status().startsWith(QStringLiteral("Calm")), qPrintable(c->status()));

    spin(50); // the flood's last queued microtasks run (as no-ops)
    settle();
    MetricsSnapshot s = snap();
    QCOMPARE(s.timerHeapSize, u64(0));
    QCOMPARE(s.registeredFds, u64(0));
    QCOMPARE(s.microtaskRingUsed, u64(0));
    QCOMPARE(s.microtaskOverflow, u64(0));
    QCOMPARE(s.fastPathMode, FastPathMode::Auto);
    QCOMPARE(c->stormTimers(), qint64(0));
    QVERIFY(!c->fdRegistered());

    const qint64 fired = c->timersFired(), run = c->microtasksRun(), settled = c->promisesSettled(),
                 blocks = c->blocksDone(), trips = c->roundTrips();
    const std::uint64_t idle0 = s.idleNs;
    spin(200);
    s = snap();
    QVERIFY(s.idleNs > idle0); // it waited: nothing keeps it busy
    QVERIFY(s.fastPathActive); // and it waited on the fast path (no fd left)
    QCOMPARE(c->timersFired(), fired);
    QCOMPARE(c->microtasksRun(), run);
    QCOMPARE(c->promisesSettled(), settled);
    QCOMPARE(c->blocksDone(), blocks);
    QCOMPARE(c->roundTrips(), trips);
}

// The tour: every scenario in turn, calm between them.
void TstDemo::cycleVisitsEveryScenario() {
    c->setBlockMs(10);
    QStringList seen;
    connect(c.get(), &ScenarioController::cycleChanged, this, [&] {
        if (c->cycling() && !seen.contains(c->cycleScenario()))
            seen << c->cycleScenario();
    });
    c->startCycle(0.1);
    QVERIFY(c->cycling());
    QTRY_COMPARE_WITH_TIMEOUT(seen, ScenarioController::scenarioNames(), kTimeoutMs);
    c->calm();
    QVERIFY(!c->cycling());
    QVERIFY(!c->active());
}

void TstDemo::options_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<bool>("ok");
    QTest::addColumn<QStringList>("scenarios");
    QTest::addColumn<double>("quitAfter");

    QTest::newRow("none") << QStringList{} << true << QStringList{} << 0.0;
    QTest::newRow("list") << QStringList{"--scenario", "timers,flood", "--scenario=pingpong"}
                          << true << QStringList{"timers", "flood", "pingpong"} << 0.0;
    QTest::newRow("screenshot implies quit")
        << QStringList{"--screenshot", "x.png"} << true << QStringList{}
        << libloop::demo::kDefaultScreenshotQuitSeconds;
    QTest::newRow("quit") << QStringList{"--quit-after=1.5", "--cycle", "2"} << true
                          << QStringList{} << 1.5;
    QTest::newRow("unknown scenario")
        << QStringList{"--scenario", "timers,bogus"} << false << QStringList{} << 0.0;
    QTest::newRow("empty scenario")
        << QStringList{"--scenario", ","} << false << QStringList{} << 0.0;
    QTest::newRow("missing value") << QStringList{"--cycle"} << false << QStringList{} << 0.0;
    QTest::newRow("zero seconds") << QStringList{"--quit-after", "0"} << false << QStringList{}
                                  << 0.0;
    QTest::newRow("cycle and scenario")
        << QStringList{"--cycle", "1", "--scenario", "timers"} << false << QStringList{} << 0.0;
    QTest::newRow("timers range") << QStringList{"--timers", "0"} << false << QStringList{} << 0.0;
    QTest::newRow("unknown option") << QStringList{"--frobnicate"} << false << QStringList{} << 0.0;
}

void TstDemo::options() {
    QFETCH(QStringList, args);
    QFETCH(bool, ok);
    QFETCH(QStringList, scenarios);
    QFETCH(double, quitAfter);
    args.prepend(QStringLiteral("loop-demo"));
    DemoOptions o;
    QString error;
    QCOMPARE(libloop::demo::parseDemoOptions(args, false, &o, &error), ok);
    QCOMPARE(error.isEmpty(), ok);
    if (ok) {
        QCOMPARE(o.scenarios, scenarios);
        QCOMPARE(o.quitAfterSeconds, quitAfter);
    }
}

QProcessEnvironment TstDemo::childEnvironment() const {
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    env.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtimeDir.path());
    return env;
}

void TstDemo::badCommandLineExitsWith2_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("message");
    QTest::newRow("unknown scenario")
        << QStringList{"--scenario", "bogus"}
        << QStringLiteral("unknown scenario 'bogus' (valid: timers, flood, promises, blocking, "
                          "fastpath, pingpong, calm)");
    QTest::newRow("bad seconds") << QStringList{"--cycle", "soon"}
                                 << QStringLiteral("--cycle needs a number of seconds");
    QTest::newRow("unknown option")
        << QStringList{"--frobnicate"} << QStringLiteral("unknown argument '--frobnicate'");
}

void TstDemo::badCommandLineExitsWith2() {
    QFETCH(QStringList, args);
    QFETCH(QString, message);
    QProcess p;
    p.setProcessEnvironment(childEnvironment());
    p.start(QStringLiteral(LOOP_DEMO_BIN), args);
    QVERIFY2(p.waitForFinished(60000), "loop-demo did not exit");
    const QString err = QString::fromLocal8Bit(p.readAllStandardError());
    QCOMPARE(p.exitStatus(), QProcess::NormalExit);
    QVERIFY2(p.exitCode() == 2, qPrintable(QString::number(p.exitCode()) + QLatin1Char(' ') + err));
    QVERIFY2(err.contains(message), qPrintable(err));
    // Nothing was started: no window, no probe socket left behind.
    QVERIFY(!err.contains(QStringLiteral("probe at")));
}

// The headless README run: the tour, a screenshot shortly before quitting, exit 0. The PNG
// loads and is not one colour.
void TstDemo::cycleQuitAfterScreenshot() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString shot = dir.filePath(QStringLiteral("demo.png"));
    QProcess p;
    p.setProcessEnvironment(childEnvironment());
    p.start(QStringLiteral(LOOP_DEMO_BIN),
            {QStringLiteral("--cycle"), QStringLiteral("0.3"), QStringLiteral("--quit-after"),
             QStringLiteral("3"), QStringLiteral("--screenshot"), shot});
    QVERIFY2(p.waitForFinished(120000), "loop-demo did not quit");
    const QString err = QString::fromLocal8Bit(p.readAllStandardError());
    QCOMPARE(p.exitStatus(), QProcess::NormalExit);
    QVERIFY2(p.exitCode() == 0, qPrintable(QString::number(p.exitCode()) + QLatin1Char(' ') + err));
    QVERIFY2(err.contains(QStringLiteral("probe at")), qPrintable(err));
    QVERIFY2(err.contains(QStringLiteral("screenshot ")), qPrintable(err));

    QImage image;
    QVERIFY2(image.load(shot, "PNG"), qPrintable(shot));
    QVERIFY(image.width() >= 200 && image.height() >= 200);
    QSet<QRgb> colours;
    for (int y = 0; y < image.height() && colours.size() < 16; y += 7)
        for (int x = 0; x < image.width() && colours.size() < 16; x += 7)
            colours.insert(image.pixel(x, y));
    QVERIFY2(colours.size() >= 16, qPrintable(QString::number(colours.size())));
}

// What an inspector sees: loop-demo --scenario NAME as a child, its probe read like an inspector
// reads it, until the main loop's snapshots show the scenario's effect (as counts). How many
// snapshots that took is printed, not asserted.
using Effect = std::function<bool(const proto::LoopMetrics& first, const proto::LoopMetrics& now)>;
Q_DECLARE_METATYPE(Effect)

void TstDemo::probeShowsEachScenario_data() {
    using namespace std::chrono;
    QTest::addColumn<QString>("scenario");
    QTest::addColumn<Effect>("effect");
    QTest::newRow("timers") << QStringLiteral("timers")
                            << Effect([](auto&, auto& m) { return m.timerHeapSize >= 5000; });
    QTest::newRow("flood") << QStringLiteral("flood") << Effect([](auto& f, auto& m) {
        return m.microtaskBudgetHits >= f.microtaskBudgetHits + 10 && m.microtaskOverflowMax > 0;
    });
    QTest::newRow("promises") << QStringLiteral("promises") << Effect([](auto& f, auto& m) {
        return m.microtasksRun >= f.microtasksRun + 500 * 20 && m.microtaskRingMax >= 500;
    });
    QTest::newRow("blocking") << QStringLiteral("blocking") << Effect([](auto&, auto& m) {
        return m.timerLateness.max >=
                   std::uint64_t(duration_cast<nanoseconds>(milliseconds(198)).count()) &&
               m.taskLatency.max >=
                   std::uint64_t(duration_cast<nanoseconds>(milliseconds(198)).count());
    });
    QTest::newRow("fastpath") << QStringLiteral("fastpath") << Effect([](auto&, auto& m) {
        return m.registeredFds == 1 && !m.fastPathActive; // its first step: an fd, epoll
    });
    QTest::newRow("pingpong") << QStringLiteral("pingpong") << Effect([](auto& f, auto& m) {
        return m.registeredFds == 2 && m.fdCallbacksRun >= f.fdCallbacksRun + 1000;
    });
}

void TstDemo::probeShowsEachScenario() {
    QFETCH(QString, scenario);
    QFETCH(Effect, effect);
    QProcess p;
    p.setProcessEnvironment(childEnvironment());
    p.setReadChannel(QProcess::StandardError);
    p.start(QStringLiteral(LOOP_DEMO_BIN), {QStringLiteral("--scenario"), scenario,
                                            QStringLiteral("--quit-after"), QStringLiteral("60")});
    auto killChild = qScopeGuard([&p] {
        p.kill();
        p.waitForFinished(10000);
    });
    QString err, path;
    QDeadlineTimer started(60000);
    while (path.isEmpty() && !started.hasExpired() && p.state() != QProcess::NotRunning) {
        p.waitForReadyRead(100);
        err += QString::fromLocal8Bit(p.readAllStandardError());
        const qsizetype at = err.indexOf(QStringLiteral("probe at "));
        const qsizetype end = err.indexOf(QStringLiteral(" (attach"), at);
        if (at >= 0 && end > at)
            path = err.mid(at + 9, end - at - 9);
    }
    QVERIFY2(!path.isEmpty(), qPrintable(err));

    ProbeReader reader;
    QVERIFY2(reader.connectTo(path), qPrintable(path));
    const qint64 tid = p.processId(); // the main thread's id is the pid
    std::optional<proto::LoopMetrics> first = reader.nextSnapshot(tid, 30000);
    QVERIFY2(first, "no snapshot of the demo's main loop");
    int snapshots = 1;
    std::optional<proto::LoopMetrics> now = first;
    while (now && !effect(*first, *now)) {
        now = reader.nextSnapshot(tid, 30000);
        ++snapshots;
        QVERIFY2(snapshots < 20 * 60, "the effect never showed");
    }
    QVERIFY2(now, "the probe stopped sending snapshots");
    qInfo("%s: visible in snapshot %d (%.0f ms after the first one)", qPrintable(scenario),
          snapshots, double(now->takenAtNs - first->takenAtNs) / 1e6);
}

int main(int argc, char** argv) {
    if (!libloop::qt::install())
        return 2;
    QCoreApplication app(argc, argv);
    TstDemo t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_demo.moc"
