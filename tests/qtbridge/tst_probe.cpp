// The probe, live and in-process: a probe started with startProbe() (no QCoreApplication), Loops
// with known state on threads of their own, and raw socket clients (probe_test_client.h).
//
// Nothing here asserts on wall-clock time: waits have generous time-outs, and rates are compared
// as counts over the same span.
#include "probe_test_client.h"

#include <libloop/loop.h>
#include <libloop/protocol/discovery.h>
#include <libloop/qt/probe.h>

#include <QtCore/qfile.h>
#include <QtCore/qtemporarydir.h>
#include <QtTest/qtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <vector>

using probetest::Client;
namespace proto = libloop::protocol;
using namespace std::chrono_literals;

namespace {

constexpr int kLong = 20000; // ms: "it happens at all"

// A Loop running on a thread of its own until destroyed.
class RunningLoop {
public:
    explicit RunningLoop(libloop::LoopOptions o) {
        std::promise<void> ready;
        std::future<void> made = ready.get_future();
        thread_ = std::thread([this, o = std::move(o), ready = std::move(ready)]() mutable {
            loop_ = std::make_unique<libloop::Loop>(std::move(o));
            ready.set_value();
            while (!quit_.load(std::memory_order_acquire))
                (void)loop_->runOnce(libloop::kForever);
        });
        made.wait();
    }
    explicit RunningLoop(const char* name) : RunningLoop(options(name)) {}
    ~RunningLoop() {
        quit_.store(true, std::memory_order_release);
        loop_->wakeUp();
        thread_.join();
        loop_.reset();
    }

    static libloop::LoopOptions options(const char* name) {
        libloop::LoopOptions o;
        o.name = name;
        return o;
    }

    libloop::Loop& loop() { return *loop_; }
    std::uint64_t id() const { return loop_->id(); }
    bool quitting() const { return quit_.load(std::memory_order_acquire); }

    // Runs `f` on the loop thread and waits until it has run; false if it could not be queued.
    template <class F> bool exec(F f) {
        std::promise<void> done;
        std::future<void> finished = done.get_future();
        if (!loop_
                 ->submit([&] {
                     f();
                     done.set_value();
                 })
                 .ok())
            return false;
        finished.wait();
        return true;
    }

private:
    std::unique_ptr<libloop::Loop> loop_;
    std::atomic<bool> quit_{false};
    std::thread thread_;
};

std::optional<proto::LoopMetrics> entryFor(const QCborMap& snapshot, std::uint64_t id) {
    const auto s = proto::SnapshotMessage::fromCbor(snapshot);
    if (!s)
        return std::nullopt;
    for (const proto::LoopMetrics& l : s->loops)
        if (l.id == id)
            return l;
    return std::nullopt;
}

bool isType(const QCborMap& m, const char* t) {
    return proto::messageType(m) == QLatin1String(t);
}

// Reads every client until `done()` or the time-out, handing each message to `seen`.
template <class Done, class Seen>
bool pumpUntil(const std::vector<Client*>& clients, int timeoutMs, Done done, Seen seen) {
    QDeadlineTimer deadline(timeoutMs);
    for (;;) {
        for (std::size_t i = 0; i < clients.size(); ++i)
            while (auto m = clients[i]->next())
                seen(i, *m);
        if (done())
            return true;
        if (deadline.hasExpired())
            return false;
        std::vector<pollfd> fds;
        for (Client* c : clients)
            fds.push_back(pollfd{c->fd(), POLLIN, 0});
        ::poll(fds.data(), nfds_t(fds.size()), 20);
        for (std::size_t i = 0; i < clients.size(); ++i)
            if (fds[i].revents)
                clients[i]->pump(0);
    }
}

// A task that requeues itself forever (until the loop quits): a saturated loop.
struct Spinner {
    RunningLoop* rl;
    std::atomic<std::uint64_t>* count;
    void operator()() const {
        count->fetch_add(1, std::memory_order_relaxed);
        if (!rl->quitting())
            (void)rl->loop().submitInternal(Spinner{*this});
    }
};

} // namespace

class tst_Probe : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void cleanupTestCase();
    void socketIsPrivate();
    void handshake();
    void timerHeapSeen();
    void badClients_data();
    void badClients();
    void silentClientClosed();
    void rateHonoured();
    void subscribeClamped();
    void maximaAggregatedPerClient();
    void loopAddedAndRemoved();
    void fastPathChanged();
    void slowClientDoesNotStall();
    void manyClients();
    void forkedChildLeavesProbeAlone();
    void stopAndRestart();

private:
    QTemporaryDir runtime_;
    std::string path_;
};

void tst_Probe::initTestCase() {
    QVERIFY(runtime_.isValid());
    QCOMPARE(::chmod(QFile::encodeName(runtime_.path()).constData(), 0700), 0);
    qputenv("XDG_RUNTIME_DIR", QFile::encodeName(runtime_.path()));
    QVERIFY(!libloop::qt::probeRunning());
    libloop::qt::ProbeOptions o;
    o.name = "tst_probe";
    o.maxClientBuffer = 256 * 1024;
    o.stallTimeout = 2s;
    const libloop::qt::ProbeResult r = libloop::qt::startProbe(o);
    QVERIFY2(r.ok, r.error.c_str());
    path_ = r.socketPath;
    QVERIFY(libloop::qt::probeRunning());
    QCOMPARE(libloop::qt::probeSocketPath(), path_);
    QVERIFY(QString::fromStdString(path_).startsWith(runtime_.path() + "/libloop/probe-"));
    // Idempotent: the same probe, options ignored.
    o.name = "other";
    QCOMPARE(libloop::qt::startProbe(o).socketPath, path_);
}

void tst_Probe::cleanupTestCase() {
    libloop::qt::stopProbe();
}

void tst_Probe::socketIsPrivate() {
    struct stat st;
    QCOMPARE(::stat(path_.c_str(), &st), 0);
    QVERIFY(S_ISSOCK(st.st_mode));
    QCOMPARE(st.st_mode & 0777, 0600u);
    const QByteArray dir = QFile::encodeName(runtime_.path() + "/libloop");
    QCOMPARE(::stat(dir.constData(), &st), 0);
    QCOMPARE(st.st_mode & 0777, 0700u);
    const auto probes = proto::listProbes();
    QCOMPARE(probes.size(), 1);
    QCOMPARE(probes[0].pid, qint64(::getpid()));
    QCOMPARE(probes[0].name, QStringLiteral("tst_probe"));
    QCOMPARE(probes[0].path.toStdString(), path_);
}

void tst_Probe::handshake() {
    libloop::LoopOptions o;
    o.name = "handshake-loop";
    libloop::Loop here(o); // constructed on this thread: its tid is ours
    Client c(path_);
    QVERIFY(c.connected());
    QVERIFY(c.hello(QStringLiteral("handshake")));
    auto first = c.read(kLong);
    QVERIFY(first);
    QVERIFY(isType(*first, proto::type::Hello));
    QString error;
    auto h = proto::ServerHello::fromCbor(*first, &error);
    QVERIFY2(h, qPrintable(error));
    QCOMPARE(h->version, 1);
    QVERIFY(h->caps.contains(QStringLiteral("snapshots")));
    QVERIFY(h->caps.contains(QStringLiteral("events")));
    QCOMPARE(h->pid, qint64(::getpid()));
    QCOMPARE(h->name, QStringLiteral("tst_probe"));
    QCOMPARE(h->rate, 20);
    QVERIFY(h->started > 0);
    QVERIFY(h->started <= QDateTime::currentMSecsSinceEpoch() + 1000);

    auto second = c.read(kLong);
    QVERIFY(second);
    QVERIFY(isType(*second, proto::type::Loops));
    auto loops = proto::LoopsMessage::fromCbor(*second, &error);
    QVERIFY2(loops, qPrintable(error));
    bool found = false;
    for (const proto::LoopInfo& l : loops->loops) {
        QVERIFY2(l.name != QStringLiteral("libloop-probe"), "the probe's own loop is published");
        if (l.id == here.id()) {
            found = true;
            QCOMPARE(l.name, QStringLiteral("handshake-loop"));
            QCOMPARE(l.tid, qint64(::gettid()));
        }
    }
    QVERIFY(found);
    // Without a subscription no snapshot comes (events may).
    QVERIFY(!c.waitFor(proto::type::Snapshot, 300));
    QVERIFY(!c.eof());
}

void tst_Probe::timerHeapSeen() {
    libloop::LoopOptions o = RunningLoop::options("timers-5000");
    o.microtaskRingCapacity = 256;
    RunningLoop rl(o);
    for (int i = 0; i < 5000; ++i)
        QVERIFY(rl.loop().scheduleTimer(1h, [] {}).ok());
    QTRY_COMPARE_WITH_TIMEOUT(rl.loop().pendingTimers(), std::size_t(5000), kLong);

    Client c(path_);
    QVERIFY(c.handshake());
    QVERIFY(c.subscribe(100));
    auto ack = c.waitFor(proto::type::Subscribed, kLong);
    QVERIFY(ack);
    QCOMPARE(proto::Subscribed::fromCbor(*ack)->rate, 100);
    QCOMPARE(proto::Subscribed::fromCbor(*ack)->clamped, false);

    const std::uint64_t id = rl.id();
    auto snap = c.waitFor(proto::type::Snapshot, kLong, [&](const QCborMap& m) {
        auto e = entryFor(m, id);
        return e && e->timerHeapSize == 5000;
    });
    QVERIFY(snap);
    const auto e = *entryFor(*snap, id);
    QCOMPARE(e.timerHeapSize, 5000u);
    QVERIFY(e.timerHeapMax >= 5000);
    QCOMPARE(e.microtaskRingCapacity, 256u);
    QCOMPARE(e.fastPathMode, QStringLiteral("auto"));
    QVERIFY2(e.state == QStringLiteral("sleeping") || e.state == QStringLiteral("running"),
             qPrintable(e.state));
    QCOMPARE(e.registeredFds, 0u);
    QVERIFY(e.takenAtNs > 0);
    // Every field travels, under its C++ name.
    const QCborArray raw = snap->value(QLatin1String("loops")).toArray();
    for (const QCborValue& v : raw) {
        if (std::uint64_t(v.toMap().value(QLatin1String("id")).toInteger()) != id)
            continue;
        for (const QString& name : proto::LoopMetrics::fieldNames())
            QVERIFY2(v.toMap().contains(name), qPrintable(name));
    }
    // seq counts up by one.
    const std::uint64_t seq = proto::SnapshotMessage::fromCbor(*snap)->seq;
    auto next = c.waitFor(proto::type::Snapshot, kLong);
    QVERIFY(next);
    QCOMPARE(proto::SnapshotMessage::fromCbor(*next)->seq, seq + 1);
    QVERIFY(proto::SnapshotMessage::fromCbor(*next)->at >=
            proto::SnapshotMessage::fromCbor(*snap)->at);
}

void tst_Probe::badClients_data() {
    QTest::addColumn<bool>("helloFirst");
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("code"); // empty: no error message expected (just closed)

    auto frame = [](const QCborMap& m) { return proto::encodeFrame(m); };
    proto::ClientHello v2;
    v2.version = 2;
    QCborMap hello1 = proto::ClientHello{}.toCbor();
    QCborMap illTyped = hello1;
    illTyped.insert(QLatin1String("v"), QStringLiteral("one"));
    QCborMap bogus;
    bogus.insert(QLatin1String("t"), QStringLiteral("bogus"));
    QCborMap fractional = proto::Subscribe{}.toCbor();
    fractional.insert(QLatin1String("rate"), 2.5);

    QTest::newRow("version mismatch") << false << frame(v2.toCbor()) << "version";
    QTest::newRow("message before hello")
        << false << frame(proto::Subscribe{}.toCbor()) << "unexpected";
    QTest::newRow("garbage") << false << QByteArray("\x00\x00\x00\x05\xff\xff\xff\xff\xff", 9)
                             << "malformed";
    QTest::newRow("oversized length prefix")
        << false << QByteArray("\x7f\xff\xff\xff", 4) << "oversized";
    QTest::newRow("zero length") << false << QByteArray(4, '\0') << "malformed";
    QTest::newRow("not a map") << false << QByteArray("\x00\x00\x00\x01\x01", 5) << "malformed";
    QTest::newRow("ill-typed hello") << false << frame(illTyped) << "malformed";
    QTest::newRow("second hello") << true << frame(hello1) << "unexpected";
    QTest::newRow("unknown type") << true << frame(bogus) << "unexpected";
    QTest::newRow("fractional rate") << true << frame(fractional) << "malformed";
    QTest::newRow("truncated frame then close")
        << true << QByteArray("\x00\x00\x00\x64", 4) + QByteArray(10, '\xa1') << QString();
}

void tst_Probe::badClients() {
    QFETCH(bool, helloFirst);
    QFETCH(QByteArray, bytes);
    QFETCH(QString, code);

    // A well-behaved client that must not notice.
    Client good(path_);
    QVERIFY(good.handshake(QStringLiteral("good")));
    QVERIFY(good.subscribe(50));
    QVERIFY(good.waitFor(proto::type::Snapshot, kLong));

    const auto before = libloop::qt::probeStats();
    Client bad(path_);
    QVERIFY(bad.connected());
    if (helloFirst)
        QVERIFY(bad.handshake(QStringLiteral("bad")));
    QVERIFY(bad.sendRaw(bytes));
    if (code.isEmpty()) {
        bad.close(); // the frame ends early: the probe closes its side and counts an error
    } else {
        auto err = bad.waitFor(proto::type::Error, kLong);
        QVERIFY2(err, "no error message");
        auto e = proto::ErrorMessage::fromCbor(*err);
        QVERIFY(e);
        QCOMPARE(e->code, code);
        QVERIFY(!e->msg.isEmpty());
        QCOMPARE(e->supported, QList<int>{1});
        QVERIFY2(bad.waitEof(kLong), "the probe did not close the connection");
    }
    QTRY_VERIFY_WITH_TIMEOUT(libloop::qt::probeStats().protocolErrors > before.protocolErrors,
                             kLong);

    // The good client keeps receiving snapshots.
    int more = 0;
    QVERIFY(pumpUntil(
        {&good}, kLong, [&] { return more >= 3; },
        [&](std::size_t, const QCborMap& m) { more += isType(m, proto::type::Snapshot); }));
    QVERIFY(!good.eof());
}

void tst_Probe::silentClientClosed() {
    // Connected, never says hello: closed after the stall time-out (2 s in this test).
    Client c(path_);
    QVERIFY(c.connected());
    auto err = c.waitFor(proto::type::Error, kLong);
    QVERIFY(err);
    QCOMPARE(proto::ErrorMessage::fromCbor(*err)->code, QStringLiteral("unexpected"));
    QVERIFY(c.waitEof(kLong));
}

void tst_Probe::rateHonoured() {
    Client fast(path_), slow(path_);
    QVERIFY(fast.handshake(QStringLiteral("fast")));
    QVERIFY(slow.handshake(QStringLiteral("slow")));
    QVERIFY(fast.subscribe(100));
    QVERIFY(slow.subscribe(10));
    int nFast = 0, nSlow = 0;
    QVERIFY(pumpUntil(
        {&fast, &slow}, 60000, [&] { return nSlow >= 12; },
        [&](std::size_t i, const QCborMap& m) {
            if (isType(m, proto::type::Snapshot))
                ++(i == 0 ? nFast : nSlow);
        }));
    qInfo("over the same span: %d snapshots at 100 Hz, %d at 10 Hz", nFast, nSlow);
    QVERIFY2(nFast > 3 * nSlow, qPrintable(QStringLiteral("%1 vs %2").arg(nFast).arg(nSlow)));

    // unsubscribe stops snapshots; the connection stays.
    QVERIFY(fast.send(proto::Unsubscribe{}.toCbor()));
    int afterUnsub = 0, slowMore = 0;
    // Snapshots already in flight may still arrive: let some slow ones pass, then count.
    QVERIFY(pumpUntil(
        {&fast, &slow}, kLong, [&] { return slowMore >= 2; },
        [&](std::size_t i, const QCborMap& m) {
            if (isType(m, proto::type::Snapshot) && i == 1)
                ++slowMore;
        }));
    slowMore = 0;
    QVERIFY(pumpUntil(
        {&fast, &slow}, kLong, [&] { return slowMore >= 3; },
        [&](std::size_t i, const QCborMap& m) {
            if (isType(m, proto::type::Snapshot))
                ++(i == 0 ? afterUnsub : slowMore);
        }));
    QCOMPARE(afterUnsub, 0);
    QVERIFY(!fast.eof());
}

void tst_Probe::subscribeClamped() {
    Client c(path_);
    QVERIFY(c.handshake());
    struct Case {
        std::optional<qint64> asked;
        int rate;
        bool clamped;
    };
    for (const Case& k : {Case{1000, 100, true}, Case{0, 1, true}, Case{-5, 1, true},
                          Case{std::nullopt, 20, false}, Case{1, 1, false}}) {
        QVERIFY(c.subscribe(k.asked));
        auto ack = c.waitFor(proto::type::Subscribed, kLong);
        QVERIFY(ack);
        const auto s = proto::Subscribed::fromCbor(*ack);
        QVERIFY(s);
        QCOMPARE(s->rate, k.rate);
        QCOMPARE(s->clamped, k.clamped);
    }
}

void tst_Probe::maximaAggregatedPerClient() {
    // A fast client's ticks reset the loop's own "max since the previous snapshot" gauges; a slow
    // client must still see a peak that happened between two of its snapshots.
    RunningLoop rl("peaks");
    const std::uint64_t id = rl.id();
    for (int i = 0; i < 100; ++i)
        QVERIFY(rl.loop().scheduleTimer(1h, [] {}).ok());
    Client fast(path_), slow(path_);
    QVERIFY(fast.handshake(QStringLiteral("fast")));
    QVERIFY(slow.handshake(QStringLiteral("slow")));
    QVERIFY(fast.subscribe(100));
    QVERIFY(slow.subscribe(1));

    bool proved = false;
    for (int attempt = 0; attempt < 3 && !proved; ++attempt) {
        // The peak: +1000 timers, seen by the fast client, then cancelled and seen gone.
        const std::uint64_t peakStart = std::uint64_t(
            std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1));
        std::vector<libloop::TimerId> extra;
        for (int i = 0; i < 1000; ++i)
            extra.push_back(rl.loop().scheduleTimer(1h, [] {}).value());
        std::uint64_t goneAt = 0, slowMax = 0;
        bool peakSeen = false, cancelled = false, slowDuringPeak = false, slowAfter = false;
        QVERIFY(pumpUntil(
            {&fast, &slow}, kLong,
            [&] {
                if (peakSeen && !cancelled) {
                    for (libloop::TimerId t : extra)
                        rl.loop().cancelTimer(t);
                    cancelled = true;
                }
                return slowAfter;
            },
            [&](std::size_t i, const QCborMap& m) {
                if (!isType(m, proto::type::Snapshot))
                    return;
                const auto e = entryFor(m, id);
                if (!e)
                    return;
                const std::uint64_t at = proto::SnapshotMessage::fromCbor(m)->at;
                if (i == 0 && e->timerHeapSize == 1100)
                    peakSeen = true;
                if (i == 0 && cancelled && !goneAt && e->timerHeapSize == 100)
                    goneAt = at;
                if (i == 1 && at >= peakStart && (!goneAt || at <= goneAt))
                    slowDuringPeak = true;
                if (i == 1 && goneAt && at > goneAt && !slowAfter) {
                    slowAfter = true;
                    slowMax = e->timerHeapMax;
                }
            }));
        // Conclusive only when no slow snapshot was taken during the peak (the slow client
        // then saw the peak only through the probe's per-client maxima).
        if (!slowDuringPeak) {
            QVERIFY2(slowMax >= 1100, qPrintable(QString::number(slowMax)));
            proved = true;
        }
    }
    QVERIFY2(proved, "never managed to fit a peak between two slow snapshots");
}

void tst_Probe::loopAddedAndRemoved() {
    Client c(path_);
    QVERIFY(c.handshake());
    std::uint64_t id = 0;
    {
        libloop::LoopOptions o;
        o.name = "ev-added";
        libloop::Loop added(o);
        id = added.id();
        auto ev = c.waitFor(proto::type::Event, kLong, [&](const QCborMap& m) {
            auto e = proto::EventMessage::fromCbor(m);
            return e && e->kind == QLatin1String("loopAdded") && e->loop == id;
        });
        QVERIFY(ev);
        const auto e = *proto::EventMessage::fromCbor(*ev);
        QCOMPARE(e.name, QStringLiteral("ev-added"));
        QCOMPARE(e.tid, qint64(::gettid()));
        // Followed by the new set.
        auto list = c.waitFor(proto::type::Loops, kLong);
        QVERIFY(list);
        const auto loops = proto::LoopsMessage::fromCbor(*list);
        QVERIFY(std::any_of(loops->loops.begin(), loops->loops.end(),
                            [&](const proto::LoopInfo& l) { return l.id == id; }));
    }
    auto gone = c.waitFor(proto::type::Event, kLong, [&](const QCborMap& m) {
        auto e = proto::EventMessage::fromCbor(m);
        return e && e->kind == QLatin1String("loopRemoved") && e->loop == id;
    });
    QVERIFY(gone);
    auto list = c.waitFor(proto::type::Loops, kLong);
    QVERIFY(list);
    const auto loops = proto::LoopsMessage::fromCbor(*list);
    QVERIFY(std::none_of(loops->loops.begin(), loops->loops.end(),
                         [&](const proto::LoopInfo& l) { return l.id == id; }));
}

void tst_Probe::fastPathChanged() {
    RunningLoop rl("ev-fastpath");
    const std::uint64_t id = rl.id();
    Client c(path_);
    QVERIFY(c.handshake());
    QVERIFY(c.subscribe(20));
    // Idle with no fd: it waits on the fast path.
    QVERIFY(c.waitFor(proto::type::Snapshot, kLong, [&](const QCborMap& m) {
        auto e = entryFor(m, id);
        return e && e->fastPathActive;
    }));
    auto fastPathEvent = [&](bool active, const char* mode) {
        return c.waitFor(proto::type::Event, kLong, [&](const QCborMap& m) {
            auto e = proto::EventMessage::fromCbor(m);
            return e && e->kind == QLatin1String("fastPathChanged") && e->loop == id &&
                   e->active == active && e->mode == QLatin1String(mode);
        });
    };
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    QVERIFY(efd >= 0);
    bool ok = false;
    QVERIFY(rl.exec([&] {
        ok = rl.loop().registerFd(efd, libloop::FdEvent::Readable, [](int, unsigned) {}).ok();
    }));
    QVERIFY(ok);
    QVERIFY2(fastPathEvent(false, "auto"), "no fastPathChanged after registerFd");
    QVERIFY(rl.exec([&] { ok = rl.loop().unregisterFd(efd).ok(); }));
    QVERIFY(ok);
    QVERIFY2(fastPathEvent(true, "auto"), "no fastPathChanged after unregisterFd");
    QVERIFY(rl.loop().setFastPathMode(libloop::FastPathMode::Disabled).ok());
    rl.loop().wakeUp();
    QVERIFY2(fastPathEvent(false, "disabled"), "no fastPathChanged after setFastPathMode");
    ::close(efd);
}

void tst_Probe::slowClientDoesNotStall() {
    // Forty idle loops make each snapshot ~40 KB, so a client that never reads fills its socket
    // and then its 256 KiB buffer within a few ticks at 100 Hz.
    std::vector<std::unique_ptr<libloop::Loop>> idle;
    for (int i = 0; i < 40; ++i) {
        libloop::LoopOptions o;
        o.name = "idle-" + std::to_string(i);
        idle.push_back(std::make_unique<libloop::Loop>(o));
    }
    // The application's loop, saturated.
    std::atomic<std::uint64_t> ran{0};
    RunningLoop app("busy-app");
    QVERIFY(app.loop().submit(Spinner{&app, &ran}).ok());

    const auto before = libloop::qt::probeStats();
    Client stuck(path_), good(path_);
    QVERIFY(stuck.handshake(QStringLiteral("stuck")));
    QVERIFY(stuck.subscribe(100));
    QVERIFY(good.handshake(QStringLiteral("good")));
    QVERIFY(good.subscribe(20));
    // From here on `stuck` is never read until the end.

    int goodSnapshots = 0;
    auto countGood = [&](std::size_t, const QCborMap& m) {
        goodSnapshots += isType(m, proto::type::Snapshot);
    };
    QVERIFY2(
        pumpUntil(
            {&good}, 60000,
            [&] { return libloop::qt::probeStats().snapshotsDropped > before.snapshotsDropped; },
            countGood),
        "no snapshot was ever dropped for the client that does not read");

    // While it is blocked: the application loop runs and the other client is served.
    const std::uint64_t ran1 = ran.load();
    const int good1 = goodSnapshots;
    QVERIFY(pumpUntil(
        {&good}, kLong, [&] { return goodSnapshots >= good1 + 5; }, countGood));
    QVERIFY(ran.load() > ran1);

    // Blocked for longer than the stall time-out (2 s here): disconnected.
    QVERIFY2(pumpUntil(
                 {&good}, 60000,
                 [&] { return libloop::qt::probeStats().stalledClosed > before.stalledClosed; },
                 countGood),
             "the stuck client was never disconnected");
    int backlog = 0;
    QVERIFY(stuck.waitEof(kLong, &backlog));
    QVERIFY(backlog > 0);
    // The other client still receives snapshots.
    const int good2 = goodSnapshots;
    QVERIFY(pumpUntil(
        {&good}, kLong, [&] { return goodSnapshots >= good2 + 3; }, countGood));
    QVERIFY(!good.eof());
}

void tst_Probe::manyClients() {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 30; ++i) {
        clients.push_back(std::make_unique<Client>(path_));
        QVERIFY(clients.back()->handshake(QStringLiteral("c%1").arg(i)));
        QVERIFY(clients.back()->subscribe(50));
    }
    QTRY_VERIFY_WITH_TIMEOUT(libloop::qt::probeStats().clients >= 30, kLong);
    std::vector<Client*> raw;
    for (auto& c : clients)
        raw.push_back(c.get());
    std::vector<int> got(clients.size(), 0);
    QVERIFY(pumpUntil(
        raw, 60000, [&] { return *std::min_element(got.begin(), got.end()) >= 3; },
        [&](std::size_t i, const QCborMap& m) { got[i] += isType(m, proto::type::Snapshot); }));
    const auto before = libloop::qt::probeStats();
    clients.clear(); // all hang up at once
    QTRY_VERIFY_WITH_TIMEOUT(libloop::qt::probeStats().closed >= before.closed + 30, kLong);
    QCOMPARE(libloop::qt::probeStats().protocolErrors, before.protocolErrors);
}

void tst_Probe::forkedChildLeavesProbeAlone() {
    // A forked child has no probe thread: there the probe reads as stopped, and stopping it (as
    // its atexit handler does) neither hangs on the parent's thread nor removes the parent's
    // socket.
    const pid_t pid = ::fork();
    if (pid == 0) {
        const bool running = libloop::qt::probeRunning();
        libloop::qt::stopProbe();
        ::_exit(running || !libloop::qt::probeSocketPath().empty() ? 3 : 0);
    }
    QVERIFY(pid > 0);
    int status = -1;
    QDeadlineTimer deadline(kLong);
    while (::waitpid(pid, &status, WNOHANG) == 0 && !deadline.hasExpired())
        QTest::qSleep(10);
    if (deadline.hasExpired()) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        QFAIL("the forked child hung in stopProbe()");
    }
    QVERIFY(WIFEXITED(status));
    QCOMPARE(WEXITSTATUS(status), 0);
    QVERIFY(QFile::exists(QString::fromStdString(path_)));
    QVERIFY(libloop::qt::probeRunning());
    Client c(path_);
    QVERIFY(c.handshake());
}

void tst_Probe::stopAndRestart() {
    Client c(path_);
    QVERIFY(c.handshake());
    libloop::qt::stopProbe();
    QVERIFY(!libloop::qt::probeRunning());
    QVERIFY(libloop::qt::probeSocketPath().empty());
    QVERIFY(!QFile::exists(QString::fromStdString(path_)));
    QVERIFY(c.waitEof(kLong)); // connections are closed
    QCOMPARE(libloop::qt::probeStats().clients, 0u);
    libloop::qt::stopProbe(); // idempotent

    // An unusable directory is an error, not a crash.
    QTemporaryDir open;
    ::chmod(QFile::encodeName(open.path()).constData(), 0755);
    libloop::qt::ProbeOptions bad;
    bad.directory = open.path().toStdString();
    const auto refused = libloop::qt::startProbe(bad);
    QVERIFY(!refused.ok);
    QVERIFY2(refused.error.find("refusing") != std::string::npos, refused.error.c_str());
    QVERIFY(!libloop::qt::probeRunning());

    libloop::qt::ProbeOptions o;
    o.name = "tst_probe";
    const auto again = libloop::qt::startProbe(o);
    QVERIFY2(again.ok, again.error.c_str());
    QCOMPARE(again.socketPath, path_); // same pid, start time and name
    Client d(path_);
    QVERIFY(d.handshake());
    libloop::qt::stopProbe();
    QVERIFY(!QFile::exists(QString::fromStdString(path_)));
}

QTEST_APPLESS_MAIN(tst_Probe)
#include "tst_probe.moc"
