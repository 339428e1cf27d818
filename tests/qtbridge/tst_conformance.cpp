// Dispatcher conformance suite. One executable, run three times by CTest with
// LIBLOOP_TEST_DISPATCHER = qt-glib (Qt's QEventDispatcherGlib, Debian's default),
// qt-unix (Qt's QEventDispatcherUNIX, QT_NO_GLIB=1) or libloop (libloop::qt::install()).
// Every test must pass on all three: Qt's dispatchers are the reference, and a test that passes
// on them but fails on libloop's points at a bug in LoopEventDispatcher.
//
// The assertions follow what Qt's own autotests assert (tests/auto/corelib/kernel/{qtimer,
// qeventdispatcher,qsocketnotifier,qeventloop}), adapted. No test passes or fails on wall-clock
// time: they assert order, counts and states; waits have generous time-outs, and the only time
// bounds catch gross errors (a Precise timer firing early, remainingTime out of its range).
// Every test function cleans up after itself (timers, notifiers, threads, fds).
//
// "Nothing is delivered to a dead object" is checked without undefined behaviour: an
// EventNotifyCallback (QInternal, the hook QCoreApplication::notifyInternal2 runs before it
// touches the receiver) swallows, and counts, timer and socket events sent to addresses marked
// dead (DeadReceiverGuard).
#include <libloop/loop.h>
#include <libloop/qt/install.h>
#include <libloop/qt/loopeventdispatcher.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qeventloop.h>
#include <QtCore/qfile.h>
#include <QtCore/qhash.h>
#include <QtCore/qpointer.h>
#include <QtCore/qprocess.h>
#include <QtCore/qscopeguard.h>
#include <QtCore/qset.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/qthread.h>
#include <QtCore/qtimer.h>
#include <QtNetwork/qnetworkproxy.h>
#include <QtNetwork/qtcpserver.h>
#include <QtNetwork/qtcpsocket.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kTimedOut = -99; // exec() result of execWithTimeout() when the guard fired
constexpr int kLongMs = 10000; // "it happens at all" time-out

// ---- variant ----

QByteArray variant() {
    static const QByteArray v = qgetenv("LIBLOOP_TEST_DISPATCHER");
    return v;
}
bool isGlib() {
    return variant() == "qt-glib";
}
bool isLibloop() {
    return variant() == "libloop";
}

bool classMatchesVariant(const QByteArray& cls) {
    if (variant() == "libloop")
        return cls == "libloop::qt::LoopEventDispatcher";
    if (variant() == "qt-unix")
        return cls.contains("UNIX");
    if (variant() == "qt-glib")
        return cls.contains("Glib");
    return false;
}

QByteArray activeDispatcherClass() {
    QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance();
    return d ? QByteArray(d->metaObject()->className()) : QByteArray("(none)");
}

// A QThread gets the variant's dispatcher: libloop's is installed before start(), Qt's variants
// keep Qt's default (glib, or UNIX under QT_NO_GLIB).
bool prepareThread(QThread* thread) {
    if (isLibloop())
        return libloop::qt::installOn(thread);
    return true;
}

QAbstractEventDispatcher* dispatcher() {
    return QAbstractEventDispatcher::instance();
}

// Processes what is pending without waiting (bounded: a busy source must not hang the test).
void drainEvents() {
    for (int i = 0; i < 100 && dispatcher()->processEvents(QEventLoop::AllEvents); ++i) {
    }
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
}

// ---- event loop helpers ----

// Runs `loop` until something exits it, or for at most `timeoutMs` (then returns kTimedOut).
int execWithTimeout(QEventLoop& loop, int timeoutMs = kLongMs) {
    QTimer guard;
    guard.setSingleShot(true);
    QObject::connect(&guard, &QTimer::timeout, &loop, [&loop] { loop.exit(kTimedOut); });
    guard.start(timeoutMs);
    return loop.exec();
}

// Runs a QEventLoop (the waiting path, EventLoopExec) until pred() holds, checking it every
// 2 ms and after every quit; false on time-out.
bool execUntil(const std::function<bool()>& pred, int timeoutMs = kLongMs) {
    if (pred())
        return true;
    QEventLoop loop;
    QTimer poll;
    poll.setTimerType(Qt::PreciseTimer);
    poll.setInterval(2);
    QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
        if (pred())
            loop.quit();
    });
    poll.start();
    execWithTimeout(loop, timeoutMs);
    return pred();
}

// ---- dead receivers ----

std::mutex g_deadMutex;
QSet<quintptr> g_deadAddresses; // guarded by g_deadMutex
std::atomic<bool> g_deadArmed{false};
std::atomic<int> g_deadHits{0};

bool deadReceiverCallback(void** data) {
    if (!g_deadArmed.load(std::memory_order_acquire))
        return false;
    const auto* event = static_cast<const QEvent*>(data[1]);
    const QEvent::Type type = event->type();
    if (type != QEvent::Timer && type != QEvent::SockAct && type != QEvent::SockClose)
        return false;
    const auto receiver = reinterpret_cast<quintptr>(data[0]);
    std::lock_guard<std::mutex> lock(g_deadMutex);
    if (!g_deadAddresses.contains(receiver))
        return false;
    g_deadHits.fetch_add(1);
    *static_cast<bool*>(data[2]) = false;
    return true; // swallowed: the receiver no longer exists
}

// While alive, counts timer/socket events sent to addresses marked dead. Mark an address only
// after the object is deleted, and create no timer or notifier after that (the address could be
// reused by it) until the guard is gone.
class DeadReceiverGuard {
public:
    DeadReceiverGuard() {
        reset();
        g_deadArmed.store(true, std::memory_order_release);
    }
    ~DeadReceiverGuard() {
        g_deadArmed.store(false, std::memory_order_release);
        reset();
    }
    DeadReceiverGuard(const DeadReceiverGuard&) = delete;
    DeadReceiverGuard& operator=(const DeadReceiverGuard&) = delete;
    void markDead(const void* address) {
        std::lock_guard<std::mutex> lock(g_deadMutex);
        g_deadAddresses.insert(reinterpret_cast<quintptr>(address));
    }
    int hits() const { return g_deadHits.load(); }

private:
    static void reset() {
        std::lock_guard<std::mutex> lock(g_deadMutex);
        g_deadAddresses.clear();
        g_deadHits.store(0);
    }
};

// ---- fds ----

bool setNonBlocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// AF_UNIX, SOCK_STREAM, non-blocking. fd[0] is watched, fd[1] is the peer.
struct SocketPair {
    int fd[2] = {-1, -1};
    SocketPair() {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) != 0)
            fd[0] = fd[1] = -1;
    }
    ~SocketPair() {
        for (int f : fd)
            if (f >= 0)
                ::close(f);
    }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
    bool ok() const { return fd[0] >= 0 && fd[1] >= 0; }
    int watched() const { return fd[0]; }
    int peer() const { return fd[1]; }
};

bool writeByte(int fd, char c = 'x') {
    return ::write(fd, &c, 1) == 1;
}

// Reads until the fd would block; returns the number of bytes read.
qint64 drain(int fd) {
    char buf[4096];
    qint64 total = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0)
            total += n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return total;
    }
}

// Writes until the socket buffer is full (EAGAIN); returns the number of bytes written.
qint64 fill(int fd) {
    static const QByteArray chunk(4096, 'f');
    qint64 total = 0;
    for (;;) {
        const ssize_t n = ::write(fd, chunk.constData(), size_t(chunk.size()));
        if (n > 0)
            total += n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return total;
    }
}

// A connected TCP pair on 127.0.0.1 with plain POSIX sockets; `accepted` is non-blocking.
struct TcpPair {
    int listener = -1, client = -1, accepted = -1;
    ~TcpPair() {
        for (int f : {listener, client, accepted})
            if (f >= 0)
                ::close(f);
    }
    bool open() {
        listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listener < 0)
            return false;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof addr;
        if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener, 1) != 0 ||
            ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            return false;
        client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            return false;
        accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        return accepted >= 0 && setNonBlocking(client);
    }
};

// ---- helper objects ----

const QEvent::Type kValueEvent = static_cast<QEvent::Type>(QEvent::User + 100);

struct ValueEvent : QEvent {
    explicit ValueEvent(int v) : QEvent(kValueEvent), value(v) {}
    int value;
};

// Records the value of every ValueEvent and counts QEvent::User events.
class Recorder : public QObject {
public:
    QList<int> values;
    int userEvents = 0;
    bool event(QEvent* e) override {
        if (e->type() == kValueEvent) {
            values.append(static_cast<ValueEvent*>(e)->value);
            return true;
        }
        if (e->type() == QEvent::User) {
            ++userEvents;
            return true;
        }
        return QObject::event(e);
    }
};

// Records timer events in order.
class TimerLog : public QObject {
public:
    QList<int> fired; // timer ids, in order
    std::function<void(TimerLog*, int)> onTimer;
    void timerEvent(QTimerEvent* e) override {
        fired.append(e->timerId());
        if (onTimer)
            onTimer(this, e->timerId());
    }
};

} // namespace

// ===================================================================================

class Worker : public QObject {
    Q_OBJECT
public:
    struct Results {
        QByteArray dispatcherClass;
        int ticks = 0;
        bool timerOnWrongThread = false;
        QList<int> calls;
        bool callOnWrongThread = false;
    };
    explicit Worker(Results* r) : results(r) {}
    Results* results; // written on the worker thread, read after QThread::wait()

signals:
    void tickingDone();

public slots:
    void startTicking() {
        results->dispatcherClass = activeDispatcherClass();
        auto* timer = new QTimer(this);
        timer->setInterval(5);
        connect(timer, &QTimer::timeout, this, [this, timer] {
            if (QThread::currentThread() != thread())
                results->timerOnWrongThread = true;
            if (++results->ticks == 10) {
                timer->stop();
                timer->deleteLater();
                emit tickingDone();
            }
        });
        timer->start();
    }
    void call(int i) {
        if (QThread::currentThread() != thread())
            results->callOnWrongThread = true;
        results->calls.append(i);
    }
};

class TstConformance : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void cleanup();
    void dispatcherClass();

    // aboutToBlock / awake (first, as in tst_QEventLoop: nothing of other tests pending)
    void aboutToBlockAndAwake();

    // timers
    void singleShotOrderDifferentIntervals_data();
    void singleShotOrderDifferentIntervals();
    void singleShotOrderEqualIntervals();
    void repeatingTimer();
    void stopAndRestartInSlot();
    void killTimerInTimerEvent();
    void timerDuringNestedLoop_data();
    void timerDuringNestedLoop();
    void zeroTimerOncePerProcessEvents_data();
    void zeroTimerOncePerProcessEvents();
    void timerStartedInHandlerWaitsForNextPass();
    void zeroTimerAndPostedChainBothProgress();
    void remainingTime();
    void remainingTimeAfterStart_data();
    void remainingTimeAfterStart();
    void remainingTimeWhileAnotherRuns();
    void remainingTimeDuringActivation_data();
    void remainingTimeDuringActivation();
    void registeredTimers();
    void deletionUnregistersTimers();
    void unregisterTimersExplicitly();
    void timerNeverEarly_data();
    void timerNeverEarly();
    void excludeTimers();

    // socket notifiers
    void readNotifier();
    void writeNotifier();
    void writeNotifierWhenSpaceFrees();
    void readAndWriteOnSameFd();
    void setEnabledStopsAndResumes();
    void notifierDeletedInOwnSlot();
    void notifierActivatedAgainInNestedLoopOfItsSlot();
    void deleteWriteNotifierFromReadSlot();
    void exceptionNotifierOutOfBand();
    void manyNotifiers();
    void excludeSocketNotifiers();

    // posted events
    void postedEventOrder();
    void eventsPostedDuringDeliveryWaitForNextPass();
    void deleteLaterRunsWhenControlReturns();
    void processEventsReturnsTrueAfterPostedEvent_data();
    void processEventsReturnsTrueAfterPostedEvent();

    // cross-thread
    void queuedCallFromThreadWakesExec_data();
    void queuedCallFromThreadWakesExec();
    void manyQueuedCallsInOrder();
    void notifierNotStarvedByStreamOfQueuedCalls();

    // interrupt / exit
    void exitFromOtherThread_data();
    void exitFromOtherThread();
    void interruptWakesBlockingProcessEvents();
    void interruptBeforeProcessEvents();
    void interruptTramplingOnThread();

    // nested loops
    void nestedLoopExitViaTimer();
    void deleteLaterNotRunInNestedLoop();

    // threads
    void workerThread();

    // Qt Network / QProcess
    void tcpEcho();
    void processEcho();
};

void TstConformance::initTestCase() {
    qInfo("variant %s, dispatcher %s", variant().constData(), activeDispatcherClass().constData());
    QVERIFY2(variant() == "qt-glib" || variant() == "qt-unix" || variant() == "libloop",
             "set LIBLOOP_TEST_DISPATCHER to qt-glib, qt-unix or libloop");
}

void TstConformance::cleanup() {
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
}

void TstConformance::dispatcherClass() {
    QAbstractEventDispatcher* d = dispatcher();
    QVERIFY(d);
    QCOMPARE(QCoreApplication::eventDispatcher(), d);
    QCOMPARE(QThread::currentThread()->eventDispatcher(), d);
    const QByteArray cls = activeDispatcherClass();
    QVERIFY2(classMatchesVariant(cls), cls.constData());
    if (isLibloop()) {
        auto* ours = qobject_cast<libloop::qt::LoopEventDispatcher*>(d);
        QVERIFY(ours);
        QCOMPARE(ours->loop().name(), std::string("qt:main")); // install() names it
        // installOn() names a thread's loop after the thread (the name the probe lists)
        QThread named;
        named.setObjectName(QStringLiteral("decoder"));
        QVERIFY(libloop::qt::installOn(&named));
        auto* namedOurs = qobject_cast<libloop::qt::LoopEventDispatcher*>(named.eventDispatcher());
        QVERIFY(namedOurs);
        QCOMPARE(namedOurs->loop().name(), std::string("qt:decoder"));
        QThread unnamed;
        QVERIFY(libloop::qt::installOn(&unnamed));
        auto* unnamedOurs =
            qobject_cast<libloop::qt::LoopEventDispatcher*>(unnamed.eventDispatcher());
        QVERIFY(unnamedOurs);
        QCOMPARE(unnamedOurs->loop().name(), std::string("qt:thread"));
        // Qt deletes a thread's dispatcher when the thread finishes, not when a QThread that
        // never ran is destroyed.
        for (QThread* t : {&named, &unnamed}) {
            t->start();
            t->quit();
            QVERIFY(t->wait(kLongMs));
        }
        QCOMPARE(libloop::qt::LoopEventDispatcher().loop().name(), std::string("qt"));
    } else {
        QVERIFY(!qobject_cast<libloop::qt::LoopEventDispatcher*>(d));
    }
}

// ---- aboutToBlock / awake (tst_QEventLoop::processEvents) ----

void TstConformance::aboutToBlockAndAwake() {
    drainEvents();
    QSignalSpy aboutToBlockSpy(dispatcher(), &QAbstractEventDispatcher::aboutToBlock);
    QSignalSpy awakeSpy(dispatcher(), &QAbstractEventDispatcher::awake);
    QVERIFY(aboutToBlockSpy.isValid());
    QVERIFY(awakeSpy.isValid());

    QEventLoop eventLoop;
    Recorder r;
    QCoreApplication::postEvent(&r, new QEvent(QEvent::User));
    QVERIFY(eventLoop.processEvents()); // not waiting: returns true after a posted event
    QCOMPARE(r.userEvents, 1);
    QCOMPARE(aboutToBlockSpy.size(), 0);
    QVERIFY2(awakeSpy.size() >= 1, qPrintable(QString::number(awakeSpy.size())));

    drainEvents();
    QTimer timer; // ends the wait below
    timer.setSingleShot(true);
    timer.setTimerType(Qt::PreciseTimer);
    bool fired = false;
    connect(&timer, &QTimer::timeout, this, [&] { fired = true; });
    timer.start(50);
    aboutToBlockSpy.clear();
    awakeSpy.clear();
    bool any = false;
    for (int i = 0; i < 1000 && !fired; ++i)
        any = eventLoop.processEvents(QEventLoop::WaitForMoreEvents) || any;
    QVERIFY(fired);
    QVERIFY(any);
    QVERIFY2(aboutToBlockSpy.size() >= 1, qPrintable(QString::number(aboutToBlockSpy.size())));
    QVERIFY2(awakeSpy.size() >= aboutToBlockSpy.size(),
             qPrintable(QStringLiteral("awake %1, aboutToBlock %2")
                            .arg(awakeSpy.size())
                            .arg(aboutToBlockSpy.size())));
}

// ---- timers ----

void TstConformance::singleShotOrderDifferentIntervals_data() {
    QTest::addColumn<Qt::TimerType>("type");
    QTest::newRow("precise") << Qt::PreciseTimer;
    QTest::newRow("coarse") << Qt::CoarseTimer;
}

void TstConformance::singleShotOrderDifferentIntervals() {
    QFETCH(Qt::TimerType, type);
    // Started in this order; 100 ms apart, so that neither Coarse rounding (<= 5%) nor a stall
    // between two starts can reorder the deadlines.
    const QList<int> intervals = {450, 50, 250, 150, 350};
    QList<int> order;
    QEventLoop loop;
    QObject context;
    for (int ms : intervals)
        QTimer::singleShot(ms, type, &context, [&order, &loop, ms, &intervals] {
            order.append(ms);
            if (order.size() == intervals.size())
                loop.quit();
        });
    QVERIFY(execWithTimeout(loop) != kTimedOut);
    QCOMPARE(order, QList<int>({50, 150, 250, 350, 450}));
}

void TstConformance::singleShotOrderEqualIntervals() {
    constexpr int kCount = 20;
    std::vector<std::unique_ptr<QTimer>> timers;
    QList<int> order;
    QEventLoop loop;
    for (int i = 0; i < kCount; ++i) {
        auto t = std::make_unique<QTimer>();
        t->setSingleShot(true);
        t->setTimerType(Qt::PreciseTimer);
        connect(t.get(), &QTimer::timeout, this, [&order, &loop, i] {
            order.append(i);
            if (order.size() == kCount)
                loop.quit();
        });
        timers.push_back(std::move(t));
    }
    for (auto& t : timers)
        t->start(30); // equal intervals, started in order: they fire in order
    QVERIFY(execWithTimeout(loop) != kTimedOut);
    QList<int> expected;
    for (int i = 0; i < kCount; ++i)
        expected.append(i);
    QCOMPARE(order, expected);
}

void TstConformance::repeatingTimer() {
    QTimer t;
    t.setTimerType(Qt::PreciseTimer);
    int count = 0;
    bool inactiveInSlot = false;
    connect(&t, &QTimer::timeout, this, [&] {
        ++count;
        if (!t.isActive())
            inactiveInSlot = true;
    });
    t.start(10);
    QVERIFY(t.isActive());
    QVERIFY(execUntil([&] { return count >= 5; }));
    QVERIFY(!inactiveInSlot);
    t.stop();
    const int stoppedAt = count;
    QTest::qWait(50);
    QCOMPARE(count, stoppedAt);
}

void TstConformance::stopAndRestartInSlot() {
    // A repeating timer restarted with a new interval, then as a single shot, from its slot.
    QTimer t;
    t.setTimerType(Qt::PreciseTimer);
    int fired = 0;
    bool restartState = true;
    connect(&t, &QTimer::timeout, this, [&] {
        ++fired;
        if (fired == 1) {
            t.stop();
            restartState = restartState && !t.isActive() && t.remainingTime() == -1;
            t.start(20);
            restartState = restartState && t.isActive() && t.interval() == 20;
        } else if (fired == 2) {
            t.setSingleShot(true);
            t.start(10);
        }
    });
    t.start(10);
    QVERIFY(execUntil([&] { return fired >= 3; }));
    QVERIFY(restartState);
    QVERIFY(!t.isActive()); // the single shot ran
    QTest::qWait(60);
    QCOMPARE(fired, 3);

    // A repeating zero timer and a repeating 5 ms timer, each stopped in its first slot: they
    // fire exactly once.
    QTimer zero, five;
    int zeroCount = 0, fiveCount = 0;
    connect(&zero, &QTimer::timeout, this, [&] {
        ++zeroCount;
        zero.stop();
    });
    connect(&five, &QTimer::timeout, this, [&] {
        ++fiveCount;
        five.stop();
    });
    zero.start(0);
    five.start(5);
    QVERIFY(execUntil([&] { return zeroCount >= 1 && fiveCount >= 1; }));
    QTest::qWait(50);
    QCOMPARE(zeroCount, 1);
    QCOMPARE(fiveCount, 1);
}

void TstConformance::killTimerInTimerEvent() {
    // Two timers due in the same pass; the first handler kills both: one event in total.
    {
        TimerLog o;
        QList<int> ids;
        ids << o.startTimer(5, Qt::PreciseTimer) << o.startTimer(5, Qt::PreciseTimer);
        o.onTimer = [&ids](TimerLog* self, int) {
            for (int id : ids)
                self->killTimer(id);
            ids.clear();
        };
        QThread::msleep(30); // both are due when events are processed next
        QVERIFY(execUntil([&] { return !o.fired.isEmpty(); }));
        QTest::qWait(50);
        QCOMPARE(o.fired.size(), 1);
        QVERIFY(dispatcher()->registeredTimers(&o).isEmpty());
    }
    // Two repeating timers due in the same pass; the first handler kills the other and goes on
    // firing; the killed one is never delivered again.
    {
        TimerLog o;
        const int a = o.startTimer(5, Qt::PreciseTimer);
        const int b = o.startTimer(5, Qt::PreciseTimer);
        int survivor = 0, victim = 0, killedAt = -1;
        o.onTimer = [&](TimerLog* self, int id) {
            if (!survivor) {
                survivor = id;
                victim = id == a ? b : a;
                self->killTimer(victim);
                killedAt = int(self->fired.size());
            }
        };
        QThread::msleep(30);
        QVERIFY(execUntil([&] { return o.fired.size() >= 5; }));
        o.killTimer(survivor);
        QCOMPARE(killedAt, 1);
        for (int i = killedAt; i < o.fired.size(); ++i)
            QCOMPARE(o.fired.at(i), survivor);
        QVERIFY(dispatcher()->registeredTimers(&o).isEmpty());
    }
}

namespace {
// A repeating timer whose first event runs a nested event loop, ended by a single shot; a
// third, repeating timer runs meanwhile. Qt: the nested loop delivers other timers, but never
// re-enters the handler of the timer whose event is being delivered (timerInfiniteRecursion).
class NestedTimerObject : public QObject {
public:
    int outerId = 0;
    int outerEvents = 0;
    bool inHandler = false;
    bool recursed = false;
    bool innerFired = false;
    bool nestedTimedOut = false;
    int otherDuringNested = 0;
    int otherTotal = 0;
    void timerEvent(QTimerEvent* e) override {
        if (e->timerId() != outerId)
            return;
        if (inHandler) {
            recursed = true;
            return;
        }
        ++outerEvents;
        if (outerEvents != 1)
            return;
        inHandler = true;
        QTimer other;
        other.setTimerType(Qt::PreciseTimer);
        QObject::connect(&other, &QTimer::timeout, this, [this] {
            ++otherTotal;
            if (inHandler)
                ++otherDuringNested;
        });
        other.start(7);
        QEventLoop nested;
        QTimer::singleShot(60, Qt::PreciseTimer, &nested, [this, &nested] {
            innerFired = true;
            nested.quit();
        });
        nestedTimedOut = execWithTimeout(nested) == kTimedOut;
        inHandler = false;
        killTimer(outerId);
    }
};
} // namespace

void TstConformance::timerDuringNestedLoop_data() {
    QTest::addColumn<int>("interval");
    QTest::newRow("zero timer") << 0;
    QTest::newRow("1 ms timer") << 1;
    QTest::newRow("10 ms timer") << 10;
}

void TstConformance::timerDuringNestedLoop() {
    QFETCH(int, interval);
    NestedTimerObject o;
    o.outerId = o.startTimer(interval, Qt::PreciseTimer);
    QVERIFY(execUntil([&] { return o.outerEvents >= 1 && !o.inHandler; }));
    QVERIFY(!o.nestedTimedOut);
    QVERIFY(o.innerFired);
    QVERIFY2(!o.recursed, "the timer's event was delivered again while its handler ran");
    QCOMPARE(o.outerEvents, 1);
    QVERIFY2(o.otherDuringNested > 0, "another repeating timer did not fire in the nested loop");
    QTest::qWait(30);
    QCOMPARE(o.outerEvents, 1); // killed after the nested loop
    QVERIFY(dispatcher()->registeredTimers(&o).isEmpty());
}

void TstConformance::zeroTimerOncePerProcessEvents_data() {
    QTest::addColumn<bool>("wait");
    QTest::newRow("AllEvents") << false;
    QTest::newRow("WaitForMoreEvents") << true;
}

void TstConformance::zeroTimerOncePerProcessEvents() {
    // tst_QTimer::timerFiresOnlyOncePerProcessEvents / dontBlockEvents: a zero timer fires once
    // per processEvents call. A posted event in each call keeps a waiting call from blocking.
    QFETCH(bool, wait);
    drainEvents();
    Recorder r;
    QTimer zero;
    int fired = 0;
    connect(&zero, &QTimer::timeout, this, [&] { ++fired; });
    zero.start(0);
    constexpr int kCalls = 20;
    const auto flags = wait ? QEventLoop::WaitForMoreEvents : QEventLoop::AllEvents;
    for (int i = 0; i < kCalls; ++i) {
        QCoreApplication::postEvent(&r, new QEvent(QEvent::User));
        dispatcher()->processEvents(flags);
    }
    zero.stop();
    QCOMPARE(r.userEvents, kCalls);
    QCOMPARE(fired, kCalls);
}

void TstConformance::timerStartedInHandlerWaitsForNextPass() {
    // tst_QTimer::livelock: a timer started in a timer handler is not activated in the same
    // pass, even when it is due at once.
    drainEvents();
    int pass = 0, aPass = -1, bPass = -1;
    QTimer a, b;
    a.setSingleShot(true);
    b.setSingleShot(true);
    connect(&a, &QTimer::timeout, this, [&] {
        aPass = pass;
        b.start(0);
    });
    connect(&b, &QTimer::timeout, this, [&] { bPass = pass; });
    a.start(0);
    for (pass = 1; pass <= 5; ++pass)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(aPass, 1);
    QCOMPARE(bPass, 2);
}

void TstConformance::zeroTimerAndPostedChainBothProgress() {
    // tst_QTimer::postedEventsShouldNotStarveTimers and the reverse: a zero timer and an
    // endless chain of queued calls both progress in QEventLoop::exec.
    struct Chain : QObject {
        int n = 0;
        bool running = true;
        std::function<void()> onStep;
        void next() {
            QMetaObject::invokeMethod(
                this,
                [this] {
                    ++n;
                    if (onStep)
                        onStep();
                    if (running)
                        next();
                },
                Qt::QueuedConnection);
        }
    } chain;
    QTimer zero;
    int fired = 0;
    QEventLoop loop;
    constexpr int kTarget = 100;
    auto check = [&] {
        if (fired >= kTarget && chain.n >= kTarget)
            loop.quit();
    };
    chain.onStep = check;
    connect(&zero, &QTimer::timeout, this, [&] {
        ++fired;
        check();
    });
    zero.start(0);
    chain.next();
    const int rc = execWithTimeout(loop);
    chain.running = false;
    zero.stop();
    drainEvents();
    QVERIFY2(rc != kTimedOut,
             qPrintable(QStringLiteral("zero timer fired %1 times, chain ran %2 times")
                            .arg(fired)
                            .arg(chain.n)));
    QVERIFY(fired >= kTarget);
    QVERIFY(chain.n >= kTarget);
}

void TstConformance::remainingTime() {
    QAbstractEventDispatcher* d = dispatcher();
    // An id that is no longer registered: -1.
    QObject o;
    const int id = o.startTimer(10000);
    QVERIFY(id > 0);
    QVERIFY(d->remainingTime(id) > 0);
    o.killTimer(id);
    QCOMPARE(d->remainingTime(id), -1);
    // An inactive QTimer: -1.
    QTimer t;
    QCOMPARE(t.remainingTime(), -1);
    t.setInterval(100);
    QCOMPARE(t.remainingTime(), -1);
    t.start();
    QVERIFY(t.remainingTime() >= 0);
    t.stop();
    QCOMPARE(t.remainingTime(), -1);
    // A single shot, from inside its own slot: no longer running.
    QTimer single;
    single.setSingleShot(true);
    int inSlot = 0;
    bool firedOnce = false;
    connect(&single, &QTimer::timeout, this, [&] {
        inSlot = single.remainingTime();
        firedOnce = true;
    });
    single.start(5);
    QVERIFY(execUntil([&] { return firedOnce; }));
    QCOMPARE(inSlot, -1);
}

void TstConformance::remainingTimeAfterStart_data() {
    QTest::addColumn<Qt::TimerType>("type");
    QTest::addColumn<int>("interval");
    QTest::addColumn<int>("minimum");
    QTest::addColumn<int>("maximum");
    // Qt: Precise is exact; Coarse may move the deadline by 5% either way; VeryCoarse rounds
    // to whole seconds (up to +1 s); Coarse <= 20 ms is Precise (remainingTimeInitial: [0, start]).
    QTest::newRow("precise 10000") << Qt::PreciseTimer << 10000 << 1 << 10000;
    QTest::newRow("coarse 10000") << Qt::CoarseTimer << 10000 << 1 << 10501;
    QTest::newRow("coarse 1000") << Qt::CoarseTimer << 1000 << 1 << 1051;
    QTest::newRow("very coarse 30000") << Qt::VeryCoarseTimer << 30000 << 1 << 31000;
    QTest::newRow("coarse 30000") << Qt::CoarseTimer << 30000 << 1 << 31000;
    QTest::newRow("precise 10") << Qt::PreciseTimer << 10 << 0 << 10;
    QTest::newRow("coarse 10") << Qt::CoarseTimer << 10 << 0 << 10;
    QTest::newRow("precise 0") << Qt::PreciseTimer << 0 << 0 << 0;
}

void TstConformance::remainingTimeAfterStart() {
    QFETCH(Qt::TimerType, type);
    QFETCH(int, interval);
    QFETCH(int, minimum);
    QFETCH(int, maximum);
    QTimer t;
    t.setTimerType(type);
    t.start(interval);
    const int viaTimer = t.remainingTime();
    const int viaDispatcher = dispatcher()->remainingTime(t.timerId());
    t.stop();
    QVERIFY2(viaTimer >= minimum && viaTimer <= maximum, qPrintable(QString::number(viaTimer)));
    QVERIFY2(viaDispatcher >= minimum && viaDispatcher <= maximum,
             qPrintable(QString::number(viaDispatcher)));
}

void TstConformance::remainingTimeWhileAnotherRuns() {
    // tst_QTimer::remainingTime, with more slack: a 1000 ms timer asked from a 50 ms single shot
    // started together with it answers (0, 950].
    QTimer tested, tester;
    tested.setTimerType(Qt::PreciseTimer);
    tester.setTimerType(Qt::PreciseTimer);
    tester.setSingleShot(true);
    int remaining = -2;
    connect(&tester, &QTimer::timeout, this, [&] { remaining = tested.remainingTime(); });
    tested.start(1000);
    tester.start(50);
    QVERIFY(execUntil([&] { return remaining != -2; }));
    tested.stop();
    QVERIFY2(remaining > 0 && remaining <= 950, qPrintable(QString::number(remaining)));
}

void TstConformance::remainingTimeDuringActivation_data() {
    QTest::addColumn<Qt::TimerType>("type");
    QTest::addColumn<int>("maximum");
    QTest::newRow("precise") << Qt::PreciseTimer << 200;
    QTest::newRow("coarse") << Qt::CoarseTimer << 211; // Coarse: the deadline may move by 5%
}

void TstConformance::remainingTimeDuringActivation() {
    // tst_QTimer::remainingTimeDuringActivation (QTBUG-46940): the next deadline is computed
    // before the event is delivered, so a repeating timer asked from its own slot answers its
    // next period, (0, interval]. Qt's test uses 20 ms; 200 ms here, so that a late delivery on
    // a loaded machine cannot eat the whole next period. Twice.
    QFETCH(Qt::TimerType, type);
    QFETCH(int, maximum);
    constexpr int kInterval = 200;
    QTimer timer;
    timer.setTimerType(type);
    QList<int> viaTimer, viaDispatcher;
    connect(&timer, &QTimer::timeout, this, [&] {
        viaTimer.append(timer.remainingTime());
        viaDispatcher.append(dispatcher()->remainingTime(timer.timerId()));
    });
    timer.start(kInterval);
    QVERIFY(execUntil([&] { return viaTimer.size() >= 2; }));
    timer.stop();
    for (int i = 0; i < 2; ++i) {
        QVERIFY2(viaTimer.at(i) > 0 && viaTimer.at(i) <= maximum,
                 qPrintable(QString::number(viaTimer.at(i))));
        QVERIFY2(viaDispatcher.at(i) > 0 && viaDispatcher.at(i) <= maximum,
                 qPrintable(QString::number(viaDispatcher.at(i))));
    }
}

void TstConformance::registeredTimers() {
    struct Expect {
        int interval;
        Qt::TimerType type;
        int reportedInterval;
        Qt::TimerType reportedType;
    };
    const Expect expect[] = {
        {10, Qt::PreciseTimer, 10, Qt::PreciseTimer},
        {20, Qt::CoarseTimer, 20, Qt::PreciseTimer}, // Coarse <= 20 ms is Precise
        {21, Qt::CoarseTimer, 21, Qt::CoarseTimer},
        {200, Qt::CoarseTimer, 200, Qt::CoarseTimer},
        {30000, Qt::CoarseTimer, 30000, Qt::VeryCoarseTimer}, // Coarse >= 20 s is VeryCoarse
        {1000, Qt::VeryCoarseTimer, 1000, Qt::VeryCoarseTimer},
        {1500, Qt::VeryCoarseTimer, 2000, Qt::VeryCoarseTimer}, // whole seconds, half up
        {60000, Qt::PreciseTimer, 60000, Qt::PreciseTimer},
    };
    QObject o, other;
    const int otherId = other.startTimer(500);
    QHash<int, const Expect*> byId;
    for (const Expect& e : expect) {
        const int id = o.startTimer(e.interval, e.type);
        QVERIFY(id > 0);
        byId.insert(id, &e);
    }
    const QList<QAbstractEventDispatcher::TimerInfo> list = dispatcher()->registeredTimers(&o);
    QCOMPARE(list.size(), byId.size());
    QSet<int> seen;
    for (const auto& info : list) {
        QVERIFY2(byId.contains(info.timerId), qPrintable(QString::number(info.timerId)));
        QVERIFY(!seen.contains(info.timerId));
        seen.insert(info.timerId);
        const Expect* e = byId.value(info.timerId);
        QCOMPARE(info.interval, e->reportedInterval);
        QCOMPARE(info.timerType, e->reportedType);
    }
    const auto otherList = dispatcher()->registeredTimers(&other);
    QCOMPARE(otherList.size(), 1);
    QCOMPARE(otherList.first().timerId, otherId);

    // killTimer removes exactly that one.
    const int firstId = byId.begin().key();
    o.killTimer(firstId);
    const auto after = dispatcher()->registeredTimers(&o);
    QCOMPARE(after.size(), byId.size() - 1);
    for (const auto& info : after)
        QVERIFY(info.timerId != firstId);
    for (auto it = byId.begin(); it != byId.end(); ++it)
        if (it.key() != firstId)
            o.killTimer(it.key());
    QVERIFY(dispatcher()->registeredTimers(&o).isEmpty());
    other.killTimer(otherId);
    QVERIFY(dispatcher()->registeredTimers(&other).isEmpty());
}

void TstConformance::deletionUnregistersTimers() {
    // A QObject deleted by another object's timer handler, in the pass in which its own timers
    // are due: none of them is delivered afterwards, and the dispatcher forgets them.
    DeadReceiverGuard guard;
    TimerLog killer;
    auto* victim = new TimerLog;
    const void* victimAddress = victim;
    killer.startTimer(0, Qt::PreciseTimer);
    victim->startTimer(0, Qt::PreciseTimer);
    victim->startTimer(1, Qt::PreciseTimer);
    victim->startTimer(2, Qt::PreciseTimer);
    QList<int> victimFired;
    killer.onTimer = [&](TimerLog* self, int id) {
        if (!victim)
            return;
        QThread::msleep(5); // every victim timer is due when this pass goes on
        victimFired = victim->fired;
        delete victim;
        victim = nullptr;
        guard.markDead(victimAddress);
        self->killTimer(id);
    };
    QThread::msleep(5);
    QVERIFY(execUntil([&] { return victim == nullptr; }));
    QTest::qWait(30);
    QCOMPARE(guard.hits(), 0);
    QVERIFY(dispatcher()
                ->registeredTimers(static_cast<QObject*>(const_cast<void*>(victimAddress)))
                .isEmpty());
    QVERIFY(dispatcher()->registeredTimers(&killer).isEmpty());
}

void TstConformance::unregisterTimersExplicitly() {
    TimerLog o;
    o.startTimer(0);
    o.startTimer(5, Qt::PreciseTimer);
    o.startTimer(100);
    QCOMPARE(dispatcher()->registeredTimers(&o).size(), 3);
    QVERIFY(dispatcher()->unregisterTimers(&o));
    QVERIFY(dispatcher()->registeredTimers(&o).isEmpty());
    QVERIFY(!dispatcher()->unregisterTimers(&o));
    QTest::qWait(30);
    QVERIFY(o.fired.isEmpty());
    // unregisterTimer of a single id
    TimerLog p;
    const int keep = p.startTimer(1, Qt::PreciseTimer);
    const int drop = p.startTimer(1, Qt::PreciseTimer);
    QVERIFY(dispatcher()->unregisterTimer(drop));
    QVERIFY(!dispatcher()->unregisterTimer(drop));
    QCOMPARE(dispatcher()->registeredTimers(&p).size(), 1);
    QVERIFY(execUntil([&] { return p.fired.size() >= 3; }));
    QVERIFY(!p.fired.contains(drop));
    QVERIFY(p.fired.contains(keep));
    QVERIFY(dispatcher()->unregisterTimers(&p));
}

void TstConformance::timerNeverEarly_data() {
    QTest::addColumn<Qt::TimerType>("type");
    QTest::addColumn<int>("interval");
    QTest::addColumn<qint64>("earliestNs"); // per period
    QTest::newRow("precise 50") << Qt::PreciseTimer << 50 << qint64(50'000'000);
    QTest::newRow("precise 7") << Qt::PreciseTimer << 7 << qint64(7'000'000);
    // Coarse may be up to 5% early (qtimer.cpp); catch gross errors only.
    QTest::newRow("coarse 50") << Qt::CoarseTimer << 50 << qint64(44'000'000);
    QTest::newRow("coarse 100") << Qt::CoarseTimer << 100 << qint64(90'000'000);
}

void TstConformance::timerNeverEarly() {
    QFETCH(Qt::TimerType, type);
    QFETCH(int, interval);
    QFETCH(qint64, earliestNs);
    // A single shot, three times, then the first four periods of a repeating timer: the k-th
    // firing never comes before k periods (missed periods are skipped, never compressed).
    for (int round = 0; round < 3; ++round) {
        QTimer t;
        t.setSingleShot(true);
        t.setTimerType(type);
        qint64 at = -1;
        QElapsedTimer clock;
        connect(&t, &QTimer::timeout, this, [&] { at = clock.nsecsElapsed(); });
        clock.start();
        t.start(interval);
        QVERIFY(execUntil([&] { return at >= 0; }));
        QVERIFY2(at >= earliestNs, qPrintable(QStringLiteral("fired after %1 ns").arg(at)));
    }
    QTimer t;
    t.setTimerType(type);
    QList<qint64> at;
    QElapsedTimer clock;
    connect(&t, &QTimer::timeout, this, [&] { at.append(clock.nsecsElapsed()); });
    clock.start();
    t.start(interval);
    QVERIFY(execUntil([&] { return at.size() >= 4; }));
    t.stop();
    for (int k = 0; k < at.size(); ++k)
        QVERIFY2(at.at(k) >= (k + 1) * earliestNs,
                 qPrintable(QStringLiteral("firing %1 after %2 ns").arg(k + 1).arg(at.at(k))));
}

void TstConformance::excludeTimers() {
    // tst_QEventLoop::processEventsExcludeTimers. Qt's test expects the strict behaviour from
    // its UNIX and glib dispatchers; ours honours the flag too.
    drainEvents();
    TimerLog o;
    const int id = o.startTimer(0);
    QEventLoop eventLoop;
    eventLoop.processEvents();
    QCOMPARE(o.fired, QList<int>({id}));
    o.fired.clear();
    for (int i = 0; i < 3; ++i)
        eventLoop.processEvents(QEventLoop::X11ExcludeTimers);
    QVERIFY(o.fired.isEmpty());
    eventLoop.processEvents();
    QCOMPARE(o.fired, QList<int>({id}));
    o.killTimer(id);
}

// ---- socket notifiers ----

void TstConformance::readNotifier() {
    SocketPair sp;
    QVERIFY(sp.ok());
    QSocketNotifier n(sp.watched(), QSocketNotifier::Read);
    QVERIFY(n.isEnabled());
    int count = 0;
    int gotFd = -1;
    QSocketNotifier::Type gotType = QSocketNotifier::Exception;
    connect(&n, &QSocketNotifier::activated, this,
            [&](QSocketDescriptor fd, QSocketNotifier::Type type) {
                ++count;
                gotFd = int(fd);
                gotType = type;
                drain(sp.watched());
            });
    for (int i = 0; i < 3; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(count, 0); // nothing to read yet
    for (int round = 1; round <= 10; ++round) {
        QVERIFY(writeByte(sp.peer()));
        QTRY_VERIFY_WITH_TIMEOUT(count >= round, kLongMs);
        QCOMPARE(count, round); // drained in the slot: once per write
    }
    QCOMPARE(gotFd, sp.watched());
    QCOMPARE(gotType, QSocketNotifier::Read);
    for (int i = 0; i < 3; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(count, 10);
    // through a waiting QEventLoop too
    QVERIFY(writeByte(sp.peer()));
    QVERIFY(execUntil([&] { return count >= 11; }));
}

void TstConformance::writeNotifier() {
    SocketPair sp;
    QVERIFY(sp.ok());
    QSocketNotifier n(sp.watched(), QSocketNotifier::Write);
    int count = 0;
    QSocketNotifier::Type gotType = QSocketNotifier::Exception;
    connect(&n, &QSocketNotifier::activated, this,
            [&](QSocketDescriptor, QSocketNotifier::Type type) {
                ++count;
                gotType = type;
                n.setEnabled(false); // it would fire on every pass
            });
    QTRY_VERIFY_WITH_TIMEOUT(count >= 1, kLongMs);
    QCOMPARE(gotType, QSocketNotifier::Write);
    QTest::qWait(20);
    QCOMPARE(count, 1);
    n.setEnabled(true);
    QTRY_VERIFY_WITH_TIMEOUT(count >= 2, kLongMs);
    QTest::qWait(20);
    QCOMPARE(count, 2);
}

void TstConformance::writeNotifierWhenSpaceFrees() {
    SocketPair sp;
    QVERIFY(sp.ok());
    QVERIFY(fill(sp.watched()) > 0);
    QSocketNotifier n(sp.watched(), QSocketNotifier::Write);
    int count = 0;
    connect(&n, &QSocketNotifier::activated, this, [&] {
        ++count;
        n.setEnabled(false);
    });
    for (int i = 0; i < 5; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(count, 0); // buffer full
    QVERIFY(drain(sp.peer()) > 0);
    QVERIFY(execUntil([&] { return count >= 1; }));
    QCOMPARE(count, 1);
}

void TstConformance::readAndWriteOnSameFd() {
    DeadReceiverGuard guard;
    SocketPair sp;
    QVERIFY(sp.ok());
    auto read = std::make_unique<QSocketNotifier>(sp.watched(), QSocketNotifier::Read);
    QSocketNotifier write(sp.watched(), QSocketNotifier::Write);
    int reads = 0, writes = 0;
    connect(read.get(), &QSocketNotifier::activated, this, [&] {
        ++reads;
        drain(sp.watched());
    });
    connect(&write, &QSocketNotifier::activated, this, [&] { ++writes; });

    // Write fires (always writable); Read does not until the peer writes.
    QTRY_VERIFY_WITH_TIMEOUT(writes >= 1, kLongMs);
    QCOMPARE(reads, 0);
    QVERIFY(writeByte(sp.peer()));
    QTRY_VERIFY_WITH_TIMEOUT(reads >= 1, kLongMs);
    QCOMPARE(reads, 1);

    // Write disabled: Read still works, Write is silent.
    write.setEnabled(false);
    writes = 0;
    QVERIFY(writeByte(sp.peer()));
    QTRY_VERIFY_WITH_TIMEOUT(reads >= 2, kLongMs);
    for (int i = 0; i < 3; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(reads, 2);
    QCOMPARE(writes, 0);

    // Write enabled again; then Read deleted: Write goes on, nothing reaches the dead Read,
    // even with unread data on the fd.
    write.setEnabled(true);
    QTRY_VERIFY_WITH_TIMEOUT(writes >= 1, kLongMs);
    const void* readAddress = read.get();
    read.reset();
    guard.markDead(readAddress);
    QVERIFY(writeByte(sp.peer()));
    writes = 0;
    QTRY_VERIFY_WITH_TIMEOUT(writes >= 3, kLongMs);
    QCOMPARE(reads, 2);
    QCOMPARE(guard.hits(), 0);
    write.setEnabled(false);
}

void TstConformance::setEnabledStopsAndResumes() {
    SocketPair sp;
    QVERIFY(sp.ok());
    QVERIFY(writeByte(sp.peer())); // stays unread: the fd remains readable
    QSocketNotifier n(sp.watched(), QSocketNotifier::Read);
    int count = 0;
    connect(&n, &QSocketNotifier::activated, this, [&] { ++count; });
    QTRY_VERIFY_WITH_TIMEOUT(count >= 3, kLongMs); // level-triggered: fires on every pass
    n.setEnabled(false);
    QVERIFY(!n.isEnabled());
    const int stoppedAt = count;
    for (int i = 0; i < 5; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QTest::qWait(20);
    QCOMPARE(count, stoppedAt);
    n.setEnabled(true);
    QTRY_VERIFY_WITH_TIMEOUT(count >= stoppedAt + 3, kLongMs);
    // disabled from its own slot
    connect(&n, &QSocketNotifier::activated, this, [&] { n.setEnabled(false); });
    QTRY_VERIFY_WITH_TIMEOUT(!n.isEnabled(), kLongMs);
    const int selfStopped = count;
    for (int i = 0; i < 5; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(count, selfStopped);
}

// Qt's dispatchers activate a notifier again from a nested event loop that runs inside its own
// slot (the UNIX one polls every enabled notifier; glib's socket source is can_recurse): data
// that arrives while a slot shows a modal loop is read meanwhile. The slot leaves the byte
// unread at the outer level, so the nested loop must see the fd still readable.
void TstConformance::notifierActivatedAgainInNestedLoopOfItsSlot() {
    SocketPair sp;
    QVERIFY(sp.ok());
    QSocketNotifier n(sp.watched(), QSocketNotifier::Read);
    int depth = 0, maxDepth = 0, calls = 0;
    int nestedRc = 0;
    connect(&n, &QSocketNotifier::activated, this, [&] {
        ++calls;
        maxDepth = std::max(maxDepth, ++depth);
        if (depth == 1) {
            QEventLoop nested;
            // Quits once the inner activation has drained the fd (or the guard fires).
            QTimer poll;
            connect(&poll, &QTimer::timeout, &nested, [&] {
                if (maxDepth >= 2)
                    nested.quit();
            });
            poll.start(1);
            nestedRc = execWithTimeout(nested, kLongMs);
        } else {
            drain(sp.watched());
        }
        --depth;
    });
    QVERIFY(writeByte(sp.peer()));
    QTRY_VERIFY_WITH_TIMEOUT(calls >= 1 && depth == 0, kLongMs);
    QVERIFY(nestedRc != kTimedOut);
    QCOMPARE(maxDepth, 2);
    QCOMPARE(calls, 2);
}

void TstConformance::notifierDeletedInOwnSlot() {
    SocketPair sp;
    QVERIFY(sp.ok());
    QVERIFY(writeByte(sp.peer())); // stays unread
    {
        DeadReceiverGuard guard;
        auto* n = new QSocketNotifier(sp.watched(), QSocketNotifier::Read);
        const void* address = n;
        int count = 0;
        connect(n, &QSocketNotifier::activated, this, [&] {
            ++count;
            delete n;
            n = nullptr;
            guard.markDead(address);
        });
        QTRY_VERIFY_WITH_TIMEOUT(count >= 1, kLongMs);
        for (int i = 0; i < 5; ++i)
            dispatcher()->processEvents(QEventLoop::AllEvents);
        QTest::qWait(20);
        QCOMPARE(count, 1);
        QCOMPARE(guard.hits(), 0);
    }
    // A new notifier on the same fd works.
    QSocketNotifier again(sp.watched(), QSocketNotifier::Read);
    int count = 0;
    connect(&again, &QSocketNotifier::activated, this, [&] {
        ++count;
        drain(sp.watched());
    });
    QVERIFY(execUntil([&] { return count >= 1; }));
    QCOMPARE(count, 1);
}

void TstConformance::deleteWriteNotifierFromReadSlot() {
    // Both ready in the same pass (Read is activated first by all three dispatchers: Qt UNIX
    // walks Read, Write, Exception per fd; glib walks its notifiers in registration order).
    // The Write notifier deleted by the Read slot is not activated afterwards.
    DeadReceiverGuard guard;
    SocketPair sp;
    QVERIFY(sp.ok());
    QVERIFY(writeByte(sp.peer()));
    QSocketNotifier read(sp.watched(), QSocketNotifier::Read);
    auto* write = new QSocketNotifier(sp.watched(), QSocketNotifier::Write);
    int reads = 0, writes = 0;
    connect(write, &QSocketNotifier::activated, this, [&] { ++writes; });
    connect(&read, &QSocketNotifier::activated, this, [&] {
        ++reads;
        if (write) {
            const void* address = write;
            delete write;
            write = nullptr;
            guard.markDead(address);
        }
        drain(sp.watched());
    });
    QTRY_VERIFY_WITH_TIMEOUT(reads >= 1, kLongMs);
    for (int i = 0; i < 5; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(guard.hits(), 0);
    QCOMPARE(writes, 0);
    QCOMPARE(reads, 1);
    QVERIFY(writeByte(sp.peer())); // Read still works
    QTRY_VERIFY_WITH_TIMEOUT(reads >= 2, kLongMs);
    QCOMPARE(guard.hits(), 0);
}

void TstConformance::exceptionNotifierOutOfBand() {
    // Qt UNIX: Exception <- POLLPRI (|POLLHUP|POLLERR); glib: G_IO_PRI | G_IO_ERR. TCP urgent
    // data (MSG_OOB) raises it on both; ordinary data does not.
    TcpPair tcp;
    QVERIFY2(tcp.open(), strerror(errno));
    QSocketNotifier read(tcp.accepted, QSocketNotifier::Read);
    QSocketNotifier exception(tcp.accepted, QSocketNotifier::Exception);
    int reads = 0, exceptions = 0;
    QSocketNotifier::Type gotType = QSocketNotifier::Read;
    char oob = 0;
    connect(&read, &QSocketNotifier::activated, this, [&] {
        ++reads;
        drain(tcp.accepted);
    });
    connect(&exception, &QSocketNotifier::activated, this,
            [&](QSocketDescriptor, QSocketNotifier::Type type) {
                ++exceptions;
                gotType = type;
                char c = 0;
                if (::recv(tcp.accepted, &c, 1, MSG_OOB) == 1)
                    oob = c;
            });
    QVERIFY(::send(tcp.client, "a", 1, 0) == 1);
    QTRY_VERIFY_WITH_TIMEOUT(reads >= 1, kLongMs);
    for (int i = 0; i < 3; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(exceptions, 0); // ordinary data
    QVERIFY(::send(tcp.client, "!", 1, MSG_OOB) == 1);
    QTRY_VERIFY_WITH_TIMEOUT(exceptions >= 1, kLongMs);
    QCOMPARE(gotType, QSocketNotifier::Exception);
    QCOMPARE(oob, '!');
    for (int i = 0; i < 5; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(exceptions, 1); // read: no longer pending
}

void TstConformance::manyNotifiers() {
    constexpr int kPairs = 200;
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < rlim_t(2 * kPairs + 100))
        QSKIP("RLIMIT_NOFILE too low for 200 socketpairs");
    std::vector<std::unique_ptr<SocketPair>> pairs;
    std::vector<std::unique_ptr<QSocketNotifier>> notifiers;
    std::vector<int> counts(kPairs, 0);
    for (int i = 0; i < kPairs; ++i) {
        pairs.push_back(std::make_unique<SocketPair>());
        QVERIFY(pairs.back()->ok());
        const int fd = pairs.back()->watched();
        notifiers.push_back(std::make_unique<QSocketNotifier>(fd, QSocketNotifier::Read));
        connect(notifiers.back().get(), &QSocketNotifier::activated, this, [&counts, i, fd] {
            ++counts[size_t(i)];
            drain(fd);
        });
    }
    auto total = [&] {
        int t = 0;
        for (int c : counts)
            t += c;
        return t;
    };
    for (auto& p : pairs)
        QVERIFY(writeByte(p->peer()));
    QVERIFY(execUntil([&] { return total() >= kPairs; }));
    for (int i = 0; i < 3; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    for (int i = 0; i < kPairs; ++i)
        QVERIFY2(counts[size_t(i)] == 1,
                 qPrintable(QStringLiteral("pair %1: %2").arg(i).arg(counts[size_t(i)])));
    // second round: even pairs only
    for (int i = 0; i < kPairs; i += 2)
        QVERIFY(writeByte(pairs[size_t(i)]->peer()));
    QVERIFY(execUntil([&] { return total() >= kPairs + kPairs / 2; }));
    for (int i = 0; i < 3; ++i)
        dispatcher()->processEvents(QEventLoop::AllEvents);
    for (int i = 0; i < kPairs; ++i)
        QVERIFY2(counts[size_t(i)] == (i % 2 == 0 ? 2 : 1),
                 qPrintable(QStringLiteral("pair %1: %2").arg(i).arg(counts[size_t(i)])));
    notifiers.clear();
    pairs.clear();
}

void TstConformance::excludeSocketNotifiers() {
    // tst_QEventLoop::processEventsExcludeSocket: a ready Read notifier is not activated by
    // processEvents(ExcludeSocketNotifiers). Qt's test marks this QEXPECT_FAIL for its glib
    // dispatcher ("ExcludeSocketNotifiers is currently broken in the Glib dispatchers": its
    // socket GSource ignores the flag), so it is expected to fail there.
    SocketPair sp;
    QVERIFY(sp.ok());
    QVERIFY(writeByte(sp.peer())); // stays unread
    QSocketNotifier n(sp.watched(), QSocketNotifier::Read);
    int count = 0;
    connect(&n, &QSocketNotifier::activated, this, [&] { ++count; });
    for (int i = 0; i < 3; ++i)
        dispatcher()->processEvents(QEventLoop::ExcludeSocketNotifiers);
    if (isGlib())
        QEXPECT_FAIL("",
                     "ExcludeSocketNotifiers is broken in Qt's glib dispatcher (as in "
                     "tst_QEventLoop::processEventsExcludeSocket)",
                     Continue);
    QCOMPARE(count, 0);
    const int before = count;
    dispatcher()->processEvents(QEventLoop::AllEvents);
    QTRY_VERIFY_WITH_TIMEOUT(count > before, kLongMs);
    n.setEnabled(false);
}

// ---- posted events ----

void TstConformance::postedEventOrder() {
    drainEvents();
    Recorder r;
    constexpr int kCount = 1000;
    for (int i = 0; i < kCount; ++i) {
        if (i % 3 == 0)
            QMetaObject::invokeMethod(
                &r, [&r, i] { r.values.append(i); }, Qt::QueuedConnection);
        else
            QCoreApplication::postEvent(&r, new ValueEvent(i));
    }
    QVERIFY(r.values.isEmpty()); // nothing is delivered by posting
    dispatcher()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(r.values.size(), kCount); // all in one pass
    for (int i = 0; i < kCount; ++i)
        QCOMPARE(r.values.at(i), i);
}

namespace {
// tst_QEventDispatcher::processEventsOnlySendsQueuedEvents
class ReposterObject : public QObject {
public:
    int eventsReceived = 0;
    bool event(QEvent* e) override {
        ++eventsReceived;
        if (e->type() == QEvent::User)
            QCoreApplication::postEvent(this, new QEvent(QEvent::Type(QEvent::User + 1)));
        return QObject::event(e);
    }
    void timerFired() {
        QCoreApplication::postEvent(this, new QEvent(QEvent::Type(QEvent::User + 1)));
    }
};
} // namespace

void TstConformance::eventsPostedDuringDeliveryWaitForNextPass() {
    drainEvents();
    {
        ReposterObject object;
        QCoreApplication::postEvent(&object, new QEvent(QEvent::User));
        QCoreApplication::processEvents();
        QCOMPARE(object.eventsReceived, 1);
        QCoreApplication::processEvents();
        QCOMPARE(object.eventsReceived, 2);
        // QTimer::singleShot(0) is a queued call (a posted event)
        QTimer::singleShot(0, &object, [&object] { object.timerFired(); });
        QCoreApplication::processEvents();
        QCOMPARE(object.eventsReceived, 3);
        QCoreApplication::processEvents();
        QCOMPARE(object.eventsReceived, 4);
    }
    {
        // from a real zero timer: its posted event waits for the next pass too
        ReposterObject object;
        QTimer zero;
        zero.setSingleShot(true);
        bool fired = false;
        connect(&zero, &QTimer::timeout, &object, [&] {
            fired = true;
            object.timerFired();
        });
        zero.start(0);
        QCoreApplication::processEvents();
        QVERIFY(fired);
        QCOMPARE(object.eventsReceived, 0);
        QCoreApplication::processEvents();
        QCOMPARE(object.eventsReceived, 1);
    }
}

void TstConformance::deleteLaterRunsWhenControlReturns() {
    {
        // posted outside any loop: runs once a loop runs
        QEventLoop loop;
        auto* obj = new QObject;
        QPointer<QObject> p(obj);
        bool destroyed = false;
        connect(obj, &QObject::destroyed, &loop, [&] {
            destroyed = true;
            loop.quit();
        });
        const auto cleanup = qScopeGuard([&] { delete p.data(); });
        obj->deleteLater();
        QVERIFY(p);
        QVERIFY(execWithTimeout(loop) != kTimedOut);
        QVERIFY(destroyed);
        QVERIFY(!p);
    }
    {
        // posted from a slot: not synchronously, but once the slot returns to the loop
        QEventLoop loop;
        auto* obj = new QObject;
        QPointer<QObject> p(obj);
        bool aliveAfterCall = false, destroyed = false;
        connect(obj, &QObject::destroyed, &loop, [&] {
            destroyed = true;
            loop.quit();
        });
        const auto cleanup = qScopeGuard([&] { delete p.data(); });
        QMetaObject::invokeMethod(
            this,
            [&] {
                obj->deleteLater();
                aliveAfterCall = !p.isNull();
            },
            Qt::QueuedConnection);
        QVERIFY(execWithTimeout(loop) != kTimedOut);
        QVERIFY(aliveAfterCall);
        QVERIFY(destroyed);
        QVERIFY(!p);
    }
    {
        // ... and not by a processEvents() called inside that slot. (Qt re-posts the
        // DeferredDelete it may not run there without a wake-up, so Qt's own dispatchers only
        // run it at the next wake-up of the loop; a queued call posted afterwards provides one.
        // A timer does not do for glib: its posted-event source runs on wake-ups only.)
        QEventLoop loop;
        QObject context;
        auto* obj = new QObject;
        QPointer<QObject> p(obj);
        bool aliveAfterInnerProcessEvents = false, destroyed = false;
        connect(obj, &QObject::destroyed, &loop, [&] {
            destroyed = true;
            loop.quit();
        });
        const auto cleanup = qScopeGuard([&] { delete p.data(); });
        QMetaObject::invokeMethod(
            this,
            [&] {
                obj->deleteLater();
                QCoreApplication::processEvents();
                aliveAfterInnerProcessEvents = !p.isNull();
                QMetaObject::invokeMethod(
                    &context, [] {}, Qt::QueuedConnection);
            },
            Qt::QueuedConnection);
        QVERIFY(execWithTimeout(loop) != kTimedOut);
        QVERIFY(aliveAfterInnerProcessEvents);
        QVERIFY(destroyed);
        QVERIFY(!p);
    }
}

void TstConformance::processEventsReturnsTrueAfterPostedEvent_data() {
    QTest::addColumn<bool>("wait");
    QTest::newRow("AllEvents") << false;
    QTest::newRow("WaitForMoreEvents") << true;
}

void TstConformance::processEventsReturnsTrueAfterPostedEvent() {
    // tst_QEventDispatcher::sendPostedEvents: with a posted event pending, processEvents
    // delivers it, does not block, and returns true.
    QFETCH(bool, wait);
    drainEvents();
    const auto flags = wait ? QEventLoop::WaitForMoreEvents : QEventLoop::AllEvents;
    Recorder r;
    for (int i = 1; i <= 50; ++i) {
        QCoreApplication::postEvent(&r, new QEvent(QEvent::User));
        QCOMPARE(r.userEvents, i - 1);
        QVERIFY(dispatcher()->processEvents(flags));
        QCOMPARE(r.userEvents, i);
    }
    QEventLoop eventLoop;
    QCoreApplication::postEvent(&r, new QEvent(QEvent::User));
    QVERIFY(eventLoop.processEvents(flags));
    QCOMPARE(r.userEvents, 51);
}

// ---- cross-thread ----

void TstConformance::queuedCallFromThreadWakesExec_data() {
    QTest::addColumn<bool>("qthread");
    QTest::newRow("std::thread") << false;
    QTest::newRow("QThread") << true;
}

void TstConformance::queuedCallFromThreadWakesExec() {
    QFETCH(bool, qthread);
    drainEvents();
    QEventLoop loop;
    QObject receiver;
    QThread* ranOn = nullptr;
    auto post = [&] {
        QThread::msleep(50); // the main thread is (most likely) blocked in exec by now
        QMetaObject::invokeMethod(
            &receiver,
            [&] {
                ranOn = QThread::currentThread();
                loop.quit();
            },
            Qt::QueuedConnection);
    };
    int rc = 0;
    if (qthread) {
        std::unique_ptr<QThread> t(QThread::create(post));
        t->start();
        rc = execWithTimeout(loop);
        QVERIFY(t->wait(kLongMs));
    } else {
        std::thread t(post);
        rc = execWithTimeout(loop);
        t.join();
    }
    QVERIFY(rc != kTimedOut);
    QCOMPARE(ranOn, QThread::currentThread());
}

void TstConformance::notifierNotStarvedByStreamOfQueuedCalls() {
    // Another thread keeps queued calls flowing (at most 32 in flight, so a wake-up is almost
    // always pending when the main thread is about to wait) while a notifier's fd becomes
    // readable: the notifier is still activated, because every pass polls the fds, whether or
    // not a wake-up is pending (a dispatcher that skipped the poll whenever it had no reason to
    // wait would starve every socket of a thread that receives a stream of signals). No timer
    // runs on this thread meanwhile but the 10 s guard, so no timer pass polls the fds instead.
    SocketPair sp;
    QVERIFY(sp.ok());
    QSocketNotifier n(sp.watched(), QSocketNotifier::Read);
    QEventLoop loop;
    int activated = 0;
    connect(&n, &QSocketNotifier::activated, this, [&] {
        drain(sp.watched());
        ++activated;
        loop.quit();
    });
    QObject receiver;
    std::atomic<int> inFlight{0};
    std::atomic<long> delivered{0};
    std::atomic<bool> stop{false};
    std::thread poster([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            if (inFlight.load(std::memory_order_acquire) >= 32) {
                std::this_thread::yield();
                continue;
            }
            inFlight.fetch_add(1, std::memory_order_acq_rel);
            QMetaObject::invokeMethod(
                &receiver,
                [&] {
                    // the first one delivered writes the byte: the stream is flowing by then
                    if (delivered.fetch_add(1, std::memory_order_relaxed) == 0)
                        writeByte(sp.peer());
                    inFlight.fetch_sub(1, std::memory_order_acq_rel);
                },
                Qt::QueuedConnection);
        }
    });
    const int rc = execWithTimeout(loop);
    const long during = delivered.load();
    stop = true;
    poster.join();
    QVERIFY2(rc != kTimedOut,
             qPrintable(QStringLiteral("the notifier was not activated in %1 ms while %2 queued "
                                       "calls were delivered")
                            .arg(kLongMs)
                            .arg(during)));
    QCOMPARE(activated, 1);
}

void TstConformance::manyQueuedCallsInOrder() {
    constexpr int kCalls = 10000;
    QEventLoop loop;
    QObject receiver;
    QList<int> got;
    got.reserve(kCalls);
    bool wrongThread = false;
    QThread* const mainThread = QThread::currentThread();
    std::thread sender([&] {
        for (int i = 0; i < kCalls; ++i)
            QMetaObject::invokeMethod(
                &receiver,
                [&, i] {
                    if (QThread::currentThread() != mainThread)
                        wrongThread = true;
                    got.append(i);
                    if (got.size() == kCalls)
                        loop.quit();
                },
                Qt::QueuedConnection);
    });
    const int rc = execWithTimeout(loop, 60000);
    sender.join();
    QVERIFY2(rc != kTimedOut, qPrintable(QString::number(got.size())));
    QVERIFY(!wrongThread);
    QCOMPARE(got.size(), kCalls);
    for (int i = 0; i < kCalls; ++i)
        if (got.at(i) != i)
            QFAIL(
                qPrintable(QStringLiteral("call %1 arrived at position %2").arg(got.at(i)).arg(i)));
}

// ---- interrupt / exit ----

void TstConformance::exitFromOtherThread_data() {
    QTest::addColumn<bool>("direct");
    QTest::newRow("queued exit()") << false;
    QTest::newRow("direct exit() (interrupt)") << true;
}

void TstConformance::exitFromOtherThread() {
    QFETCH(bool, direct);
    drainEvents();
    QEventLoop loop;
    std::thread t([&] {
        QThread::msleep(50);
        if (direct)
            loop.exit(43); // atomics + dispatcher->interrupt(), as QThread::exit does
        else
            QMetaObject::invokeMethod(&loop, "exit", Qt::QueuedConnection, Q_ARG(int, 42));
    });
    const int rc = execWithTimeout(loop);
    t.join();
    QCOMPARE(rc, direct ? 43 : 42);
}

namespace {
// Calls `action` on another thread after a short delay; if the main thread has not reported
// `returned` within kLongMs, it is rescued with wake-ups (so a failure does not hang the suite)
// and `rescued` is set.
class Rescuer {
public:
    explicit Rescuer(std::function<void()> action) {
        thread_ = std::thread([this, action = std::move(action)] {
            QThread::msleep(50);
            action();
            for (int i = 0; i < kLongMs / 10 && !returned_.load(); ++i)
                QThread::msleep(10);
            if (returned_.load())
                return;
            rescued_.store(true);
            while (!returned_.load()) {
                dispatcher_->wakeUp();
                QThread::msleep(10);
            }
        });
    }
    ~Rescuer() { finish(); }
    Rescuer(const Rescuer&) = delete;
    Rescuer& operator=(const Rescuer&) = delete;
    void finish() {
        returned_.store(true);
        if (thread_.joinable())
            thread_.join();
    }
    bool rescued() const { return rescued_.load(); }

private:
    QAbstractEventDispatcher* dispatcher_ = QAbstractEventDispatcher::instance();
    std::atomic<bool> returned_{false};
    std::atomic<bool> rescued_{false};
    std::thread thread_;
};
} // namespace

void TstConformance::interruptWakesBlockingProcessEvents() {
    // A waiting processEvents with nothing to do but a far timer returns when another thread
    // calls interrupt().
    drainEvents();
    QTimer far;
    far.start(60000);
    QAbstractEventDispatcher* d = dispatcher();
    std::atomic<bool> sent{false};
    Rescuer rescuer([&] {
        sent.store(true);
        d->interrupt();
    });
    do {
        d->processEvents(QEventLoop::WaitForMoreEvents);
    } while (!sent.load()); // an earlier return (of any cause) is not the one under test
    rescuer.finish();
    far.stop();
    QVERIFY2(!rescuer.rescued(), "processEvents(WaitForMoreEvents) did not return on interrupt()");
    QVERIFY(sent.load());
}

void TstConformance::interruptBeforeProcessEvents() {
    // tst_QEventDispatcher::interruptTrampling: an interrupt issued before processEvents still
    // makes the next waiting processEvents return.
    drainEvents();
    QAbstractEventDispatcher* d = dispatcher();
    d->interrupt();
    Rescuer rescuer([] {});
    d->processEvents(QEventLoop::WaitForMoreEvents);
    rescuer.finish();
    QVERIFY2(!rescuer.rescued(), "an earlier interrupt() did not end the next waiting call");
}

namespace {
class TramplingThread : public QThread {
public:
    std::atomic<int> stage{0};
    QByteArray dispatcherClass;
    void run() override {
        QAbstractEventDispatcher* d = eventDispatcher();
        dispatcherClass = d->metaObject()->className();
        d->processEvents(QEventLoop::AllEvents);
        stage = 1;
        QTimer::singleShot(0, d, [d] { d->wakeUp(); });
        d->processEvents(QEventLoop::WaitForMoreEvents);
        stage = 2;
        d->interrupt();
        d->processEvents(QEventLoop::WaitForMoreEvents);
        stage = 3;
    }
};
} // namespace

void TstConformance::interruptTramplingOnThread() {
    TramplingThread thread;
    QVERIFY(prepareThread(&thread));
    thread.start();
    bool rescued = false;
    int stuckAfter = 3;
    if (!thread.wait(kLongMs)) {
        rescued = true;
        stuckAfter = thread.stage.load();
        QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance(&thread);
        while (!thread.wait(20))
            if (d)
                d->wakeUp();
    }
    QVERIFY2(classMatchesVariant(thread.dispatcherClass), thread.dispatcherClass.constData());
    QVERIFY2(!rescued, qPrintable(QStringLiteral("stuck after stage %1").arg(stuckAfter)));
    QCOMPARE(thread.stage.load(), 3);
}

// ---- nested loops ----

void TstConformance::nestedLoopExitViaTimer() {
    QEventLoop outer;
    QObject context;
    QStringList log;
    QTimer::singleShot(0, &context, [&] {
        log << "slot";
        QEventLoop nested;
        QMetaObject::invokeMethod(
            &context, [&] { log << "queued"; }, Qt::QueuedConnection);
        QTimer::singleShot(20, Qt::PreciseTimer, &nested, [&] {
            log << "nested-timer";
            nested.quit();
        });
        const int rc = execWithTimeout(nested, kLongMs);
        log << (rc == kTimedOut ? "nested-timed-out" : "nested-returned");
        QMetaObject::invokeMethod(
            &context,
            [&] {
                log << "outer-queued";
                outer.quit();
            },
            Qt::QueuedConnection);
    });
    QVERIFY(execWithTimeout(outer) != kTimedOut);
    QCOMPARE(log,
             QStringList({"slot", "queued", "nested-timer", "nested-returned", "outer-queued"}));
}

void TstConformance::deleteLaterNotRunInNestedLoop() {
    // Qt: a deleteLater() posted at an outer loop level is not run by a nested loop (that loop
    // could be running inside one of the object's slots); it runs once control is back.
    QEventLoop outer;
    QObject context;
    auto* obj = new QObject;
    QPointer<QObject> p(obj);
    bool aliveAfterNested = false, nestedTimedOut = false, destroyed = false;
    int nestedPasses = 0;
    connect(obj, &QObject::destroyed, &outer, [&] {
        destroyed = true;
        outer.quit();
    });
    const auto cleanup = qScopeGuard([&] { delete p.data(); });
    QTimer::singleShot(0, &context, [&] {
        obj->deleteLater();
        QEventLoop nested;
        // many passes of the nested loop: a chain of queued calls, then a timer ends it
        std::function<void()> step = [&] {
            if (++nestedPasses < 20)
                QMetaObject::invokeMethod(&context, step, Qt::QueuedConnection);
            else
                QTimer::singleShot(20, &nested, &QEventLoop::quit);
        };
        step();
        nestedTimedOut = execWithTimeout(nested) == kTimedOut;
        aliveAfterNested = !p.isNull();
    });
    QVERIFY(execWithTimeout(outer) != kTimedOut);
    QVERIFY(!nestedTimedOut);
    QCOMPARE(nestedPasses, 20);
    QVERIFY(aliveAfterNested);
    QVERIFY(destroyed);
    QVERIFY(!p);
}

// ---- threads ----

void TstConformance::workerThread() {
    Worker::Results results;
    QThread thread;
    QVERIFY(prepareThread(&thread));
    auto* worker = new Worker(&results);
    QPointer<Worker> wp(worker);
    worker->moveToThread(&thread);
    connect(&thread, &QThread::finished, worker, &QObject::deleteLater);
    thread.start();

    QByteArray threadDispatcher;
    QMetaObject::invokeMethod(
        worker, [&] { threadDispatcher = activeDispatcherClass(); }, Qt::BlockingQueuedConnection);
    QVERIFY2(classMatchesVariant(threadDispatcher), threadDispatcher.constData());
    QCOMPARE(QByteArray(QAbstractEventDispatcher::instance(&thread)->metaObject()->className()),
             threadDispatcher);

    QEventLoop loop;
    bool ticked = false;
    connect(worker, &Worker::tickingDone, &loop, [&] {
        ticked = true;
        loop.quit();
    });
    QMetaObject::invokeMethod(worker, "startTicking", Qt::QueuedConnection);
    constexpr int kCalls = 1000;
    for (int i = 0; i < kCalls; ++i)
        QMetaObject::invokeMethod(worker, "call", Qt::QueuedConnection, Q_ARG(int, i));
    QVERIFY(execWithTimeout(loop) != kTimedOut);
    QVERIFY(ticked);
    // the calls were queued before startTicking's timer finished; flush with a blocking call
    QMetaObject::invokeMethod(
        worker, [] {}, Qt::BlockingQueuedConnection);

    thread.quit();
    QVERIFY(thread.wait(kLongMs));
    QVERIFY(wp.isNull()); // deleteLater on finished ran in the thread
    QCOMPARE(results.dispatcherClass, threadDispatcher);
    QCOMPARE(results.ticks, 10);
    QVERIFY(!results.timerOnWrongThread);
    QVERIFY(!results.callOnWrongThread);
    QCOMPARE(results.calls.size(), kCalls);
    for (int i = 0; i < kCalls; ++i)
        QCOMPARE(results.calls.at(i), i);
}

// ---- Qt Network / QProcess ----

void TstConformance::tcpEcho() {
    constexpr int kMessages = 100;
    auto message = [](int i) {
        return QByteArray::number(i).rightJustified(8, '0') + "-payload\n";
    };
    const int messageSize = int(message(0).size());

    QTcpServer server;
    server.setProxy(QNetworkProxy::NoProxy);
    QVERIFY(server.listen(QHostAddress::LocalHost, 0));
    connect(&server, &QTcpServer::newConnection, this, [&server] {
        while (QTcpSocket* s = server.nextPendingConnection()) {
            connect(s, &QTcpSocket::readyRead, s, [s] { s->write(s->readAll()); });
            connect(s, &QTcpSocket::disconnected, s, &QObject::deleteLater);
        }
    });

    QTcpSocket client;
    client.setProxy(QNetworkProxy::NoProxy);
    QEventLoop loop;
    QByteArray buffer;
    int sent = 0, received = 0;
    bool mismatch = false;
    connect(&client, &QTcpSocket::connected, this, [&] { client.write(message(sent++)); });
    connect(&client, &QTcpSocket::readyRead, this, [&] {
        buffer += client.readAll();
        while (buffer.size() >= messageSize) {
            const QByteArray m = buffer.left(messageSize);
            buffer.remove(0, messageSize);
            if (m != message(received)) {
                mismatch = true;
                loop.quit();
                return;
            }
            ++received;
            if (received == kMessages) {
                loop.quit();
                return;
            }
            if (received == sent)
                client.write(message(sent++));
        }
    });
    connect(&client, &QTcpSocket::errorOccurred, this, [&] { loop.exit(1); });
    client.connectToHost(QHostAddress::LocalHost, server.serverPort());
    const int rc = execWithTimeout(loop, 30000);
    QVERIFY2(rc == 0, qPrintable(QStringLiteral("rc %1, received %2, error %3")
                                     .arg(rc)
                                     .arg(received)
                                     .arg(client.errorString())));
    QVERIFY(!mismatch);
    QCOMPARE(received, kMessages);
    client.disconnectFromHost();
    if (client.state() != QAbstractSocket::UnconnectedState)
        QVERIFY(client.waitForDisconnected(kLongMs) ||
                client.state() == QAbstractSocket::UnconnectedState);
    server.close();
    QTest::qWait(10);
}

void TstConformance::processEcho() {
    if (!QFile::exists(QStringLiteral("/bin/echo")))
        QSKIP("/bin/echo not found");
    QProcess process;
    QEventLoop loop;
    bool finished = false;
    connect(&process, &QProcess::finished, this, [&] {
        finished = true;
        loop.quit();
    });
    connect(&process, &QProcess::errorOccurred, this, [&] { loop.exit(1); });
    process.start(QStringLiteral("/bin/echo"), {QStringLiteral("hello")});
    const int rc = execWithTimeout(loop);
    QVERIFY2(rc == 0,
             qPrintable(QStringLiteral("rc %1, error %2").arg(rc).arg(process.errorString())));
    QVERIFY(finished);
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(process.exitCode(), 0);
    QCOMPARE(process.readAllStandardOutput(), QByteArray("hello\n"));
}

// ===================================================================================

int main(int argc, char** argv) {
    // Before any event is sent: swallows and counts events to objects marked dead.
    QInternal::registerCallback(QInternal::EventNotifyCallback, deadReceiverCallback);
    const QByteArray which = qgetenv("LIBLOOP_TEST_DISPATCHER");
    if (which == "libloop" && !libloop::qt::install())
        return 2;
    QCoreApplication app(argc, argv);
    qInfo("LIBLOOP_TEST_DISPATCHER=%s: %s", which.constData(), activeDispatcherClass().constData());
    TstConformance t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_conformance.moc"
