// Tests for the `phases` parameter of Loop::runOnce (RunPhase::Timers / Fds / All, and 0) and for
// FdEvent::Priority (EPOLLPRI, TCP urgent data) in libloop::Loop (loop.h).
//
// The contract under test: "`phases` leaves timers and/or fds out of this iteration: excluded
// timers neither run nor end the wait, excluded fds are neither polled nor waited on", "Tasks and
// microtasks always run", and registerFd accepts Readable|Writable|Priority (not 0).
//
// No assertion depends on how long anything takes: conditions are awaited by driving runOnce()
// under a generous deadline, and a blocking runOnce() runs under a watchdog that, only against
// hangs, stops the loop after a long limit (and the test then fails).
#include <libloop/loop.h>

#include <QTest>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testsupport.h"

using namespace std::chrono_literals;
using namespace testsupport;
using libloop::Clock;
using libloop::Duration;
using libloop::Errc;
using libloop::kForever;
using libloop::Loop;
using libloop::LoopState;
using libloop::Status;
using libloop::TimePoint;
namespace FdEvent = libloop::FdEvent;
namespace RunPhase = libloop::RunPhase;
namespace RunFlag = libloop::RunFlag;

namespace {

// n non-blocking iterations limited to `phases`; false if one of them failed.
bool spinRunOnce(Loop& loop, int n, unsigned phases = RunPhase::All) {
    for (int i = 0; i < n; ++i)
        if (!loop.runOnce(0ns, phases).ok())
            return false;
    return true;
}

void closeFd(int& fd) {
    if (fd >= 0)
        ::close(fd);
    fd = -1;
}

// A connected TCP pair over 127.0.0.1 made with plain POSIX sockets: `client` connected to
// `server` (the accepted end). Both ends non-blocking; the client has TCP_NODELAY. `error` says
// what failed when ok() is false.
struct TcpPair {
    int listener = -1, client = -1, server = -1;
    std::string error;

    TcpPair() { error = setUp(); }
    ~TcpPair() {
        closeFd(server);
        closeFd(client);
        closeFd(listener);
    }
    TcpPair(const TcpPair&) = delete;
    TcpPair& operator=(const TcpPair&) = delete;
    bool ok() const { return error.empty() && client >= 0 && server >= 0; }

private:
    static std::string sysError(const char* what) {
        return std::string(what) + ": " + std::strerror(errno);
    }
    // Waits (only against hangs) for `events` on fd.
    static bool pollFor(int fd, short events) {
        pollfd p{fd, events, 0};
        int n;
        do {
            n = ::poll(
                &p, 1,
                int(std::chrono::duration_cast<std::chrono::milliseconds>(kHangGuard).count()));
        } while (n < 0 && errno == EINTR);
        return n == 1 && (p.revents & events);
    }
    std::string setUp() {
        listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listener < 0)
            return sysError("socket(listener)");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = 0;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            return sysError("bind(127.0.0.1:0)");
        if (::listen(listener, 4) != 0)
            return sysError("listen");
        socklen_t len = sizeof addr;
        if (::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            return sysError("getsockname");

        client = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (client < 0)
            return sysError("socket(client)");
        const int one = 1;
        if (::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            return sysError("setsockopt(TCP_NODELAY)");
        if (::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
            errno != EINPROGRESS)
            return sysError("connect");

        if (!pollFor(listener, POLLIN))
            return "listener never became readable";
        server = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (server < 0)
            return sysError("accept4");

        if (!pollFor(client, POLLOUT))
            return "client never became writable";
        int soError = 0;
        len = sizeof soError;
        if (::getsockopt(client, SOL_SOCKET, SO_ERROR, &soError, &len) != 0)
            return sysError("getsockopt(SO_ERROR)");
        if (soError != 0)
            return std::string("connect: ") + std::strerror(soError);
        closeFd(listener);
        return {};
    }

public:
    // Waits (only against hangs) until normal data is readable on the server end, independently
    // of the loop, so that "nothing was reported" checks are meaningful.
    bool waitServerReadable() const { return pollFor(server, POLLIN); }
};

bool sendOob(int fd, char c = '!') {
    return ::send(fd, &c, 1, MSG_OOB | MSG_NOSIGNAL) == 1;
}

// The urgent byte, or -1 when there is none to read.
int recvOob(int fd) {
    char c = 0;
    return ::recv(fd, &c, 1, MSG_OOB) == 1 ? static_cast<unsigned char>(c) : -1;
}

enum class WakeKind { Submit, Microtask, WakeUp };

} // namespace

Q_DECLARE_METATYPE(WakeKind)

class TestPhases : public QObject {
    Q_OBJECT

private slots:
    void phaseConstants();
    void dueTimerNotRunWhenTimersExcluded_data();
    void dueTimerNotRunWhenTimersExcluded();
    void readableFdNotRunWhenFdsExcluded();
    void eachPhaseRunsOnlyItsOwnWork();
    void excludedTimerDoesNotEndWait_data();
    void excludedTimerDoesNotEndWait();
    void phasesZeroRunsTasksAndMicrotasks();
    void excludedReadableFdDoesNotEndWaitOrSpin();
    void crossThreadWakesWaitWithFdsExcluded_data();
    void crossThreadWakesWaitWithFdsExcluded();
    void priorityReportsTcpUrgentData();
    void priorityTogetherWithReadable();
    void registerFdRejectsBitsOutsideWatchable();
    void modifyFdToPriorityOnly();
    void unknownPhaseBitsAreRefused();
    void returnOnWakeUpLeavesTheRestForTheNextRunOnce_data();
    void returnOnWakeUpLeavesTheRestForTheNextRunOnce();
    void returnOnWakeUpStillRunsWhatElseEndedTheWait_data();
    void returnOnWakeUpStillRunsWhatElseEndedTheWait();
    void pendingWakeUpDoesNotHideReadyFds_data();
    void pendingWakeUpDoesNotHideReadyFds();
};

void TestPhases::phaseConstants() {
    QCOMPARE(RunPhase::All, RunPhase::Timers | RunPhase::Fds);
    QCOMPARE(RunPhase::Timers & RunPhase::Fds, 0u);
    QVERIFY(RunPhase::Timers != 0);
    QVERIFY(RunPhase::Fds != 0);
    QCOMPARE(RunFlag::ReturnOnWakeUp & RunPhase::All, 0u); // a modifier, not a phase
    // Priority is a distinct bit from every other FdEvent.
    QCOMPARE(FdEvent::Priority &
                 (FdEvent::Readable | FdEvent::Writable | FdEvent::Error | FdEvent::HangUp),
             0u);
    QVERIFY(FdEvent::Priority != 0);
}

void TestPhases::dueTimerNotRunWhenTimersExcluded_data() {
    // withFd: an idle fd is registered, so the loop is on epoll rather than the futex fast path.
    QTest::addColumn<bool>("withFd");
    QTest::newRow("fast path") << false;
    QTest::newRow("fd registered") << true;
}

void TestPhases::dueTimerNotRunWhenTimersExcluded() {
    QFETCH(bool, withFd);
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    int fdCalls = 0;
    if (withFd)
        QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [&fdCalls](int, unsigned) { ++fdCalls; })
                    .ok());
    int runs = 0;
    QVERIFY(loop.scheduleTimerAt(Clock::now() - 1ms, [&runs] { ++runs; }).ok());
    QCOMPARE(loop.pendingTimers(), std::size_t(1));

    const auto r0 = loop.runOnce(0ns, RunPhase::Fds);
    QVERIFY(r0.ok());
    QCOMPARE(r0.value(), std::size_t(0));
    QCOMPARE(runs, 0);
    QVERIFY(spinRunOnce(loop, 10, RunPhase::Fds));
    QCOMPARE(runs, 0);
    QCOMPARE(loop.pendingTimers(), std::size_t(1)); // still pending, not dropped

    const auto r1 = loop.runOnce(0ns); // All
    QVERIFY(r1.ok());
    QCOMPARE(runs, 1);
    QCOMPARE(r1.value(), std::size_t(1));
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
    QVERIFY(spinRunOnce(loop, 5));
    QVERIFY(spinRunOnce(loop, 5, RunPhase::Timers));
    QCOMPARE(runs, 1); // exactly once
    QCOMPARE(fdCalls, 0);
}

void TestPhases::readableFdNotRunWhenFdsExcluded() {
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    int calls = 0;
    unsigned gotEvents = 0;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&](int fd, unsigned ev) {
                                ++calls;
                                gotEvents = ev;
                                drain(fd);
                            })
                .ok());
    QVERIFY(writeByte(sp.b)); // AF_UNIX: readable as soon as send() returns

    const auto r0 = loop.runOnce(0ns, RunPhase::Timers);
    QVERIFY(r0.ok());
    QCOMPARE(r0.value(), std::size_t(0));
    QCOMPARE(calls, 0);
    QVERIFY(spinRunOnce(loop, 5, RunPhase::Timers));
    QCOMPARE(calls, 0);

    const auto r1 = loop.runOnce(0ns); // All
    QVERIFY(r1.ok());
    QCOMPARE(calls, 1);
    QCOMPARE(r1.value(), std::size_t(1));
    QVERIFY(gotEvents & FdEvent::Readable);
    // Drained: no further calls under any phases.
    QVERIFY(spinRunOnce(loop, 3));
    QCOMPARE(calls, 1);
    QVERIFY(loop.unregisterFd(sp.a).ok());
}

void TestPhases::eachPhaseRunsOnlyItsOwnWork() {
    // A due timer and a readable fd at once: Fds runs the fd only, Timers the timer only.
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&log](int fd, unsigned) {
                                log.emplace_back("fd");
                                drain(fd);
                            })
                .ok());
    QVERIFY(writeByte(sp.b));
    QVERIFY(loop.scheduleTimerAt(Clock::now() - 1ms, [&log] { log.emplace_back("timer"); }).ok());

    const auto rf = loop.runOnce(0ns, RunPhase::Fds);
    QVERIFY(rf.ok());
    QCOMPARE(log, std::vector<std::string>{"fd"});
    QCOMPARE(rf.value(), std::size_t(1));

    QVERIFY(writeByte(sp.b)); // readable again
    const auto rt = loop.runOnce(0ns, RunPhase::Timers);
    QVERIFY(rt.ok());
    QCOMPARE(log, (std::vector<std::string>{"fd", "timer"}));
    QCOMPARE(rt.value(), std::size_t(1));

    const auto ra = loop.runOnce(0ns, RunPhase::All);
    QVERIFY(ra.ok());
    QCOMPARE(log, (std::vector<std::string>{"fd", "timer", "fd"}));
    QVERIFY(loop.unregisterFd(sp.a).ok());
}

void TestPhases::excludedTimerDoesNotEndWait_data() {
    QTest::addColumn<bool>("withFd");
    QTest::newRow("fast path") << false;
    QTest::newRow("fd registered") << true;
}

void TestPhases::excludedTimerDoesNotEndWait() {
    // A 1 ms timer is pending; runOnce(30ms, Fds) must still return (after its timeout at the
    // latest) and must not run the timer. How long it waited is not asserted.
    QFETCH(bool, withFd);
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    int fdCalls = 0;
    if (withFd)
        QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [&fdCalls](int, unsigned) { ++fdCalls; })
                    .ok());
    int runs = 0;
    QVERIFY(loop.scheduleTimer(1ms, [&runs] { ++runs; }).ok());
    {
        Watchdog wd(loop);
        const auto r = loop.runOnce(30ms, RunPhase::Fds);
        wd.dismiss();
        QVERIFY2(!wd.fired(), "runOnce(30ms, RunPhase::Fds) did not return");
        QVERIFY(r.ok());
        QCOMPARE(r.value(), std::size_t(0));
    }
    QCOMPARE(runs, 0);
    QCOMPARE(loop.pendingTimers(), std::size_t(1));
    // Repeated waits with timers excluded never run it either.
    for (int i = 0; i < 3; ++i) {
        Watchdog wd(loop);
        QVERIFY(loop.runOnce(2ms, RunPhase::Fds).ok());
        wd.dismiss();
        QVERIFY(!wd.fired());
    }
    QCOMPARE(runs, 0);
    // With timers included it runs (once).
    QVERIFY(runUntil(loop, [&] { return runs > 0; }));
    QVERIFY(spinRunOnce(loop, 3));
    QCOMPARE(runs, 1);
    QCOMPARE(loop.pendingTimers(), std::size_t(0));
    QCOMPARE(fdCalls, 0);
}

void TestPhases::phasesZeroRunsTasksAndMicrotasks() {
    // phases 0: neither timers nor fds, but tasks and microtasks run.
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&log](int fd, unsigned) {
                                log.emplace_back("fd");
                                drain(fd);
                            })
                .ok());
    QVERIFY(writeByte(sp.b));
    QVERIFY(loop.scheduleTimerAt(Clock::now() - 1ms, [&log] { log.emplace_back("timer"); }).ok());
    QVERIFY(loop.submit([&log, &loop] {
                    log.emplace_back("task");
                    (void)loop.queueMicrotask([&log] { log.emplace_back("micro-from-task"); });
                })
                .ok());
    QVERIFY(loop.submitInternal([&log] { log.emplace_back("internal"); }).ok());
    QVERIFY(loop.queueMicrotask([&log] { log.emplace_back("micro"); }).ok());

    const auto r = loop.runOnce(0ns, 0u);
    QVERIFY(r.ok());
    // Four callbacks: two tasks and two microtasks. (Where the microtask queued before the
    // iteration runs relative to the tasks is not asserted.)
    QVERIFY2(std::count(log.begin(), log.end(), "timer") == 0, "timer ran with phases 0");
    QVERIFY2(std::count(log.begin(), log.end(), "fd") == 0, "fd callback ran with phases 0");
    QCOMPARE(std::count(log.begin(), log.end(), "task"), 1);
    QCOMPARE(std::count(log.begin(), log.end(), "internal"), 1);
    QCOMPARE(std::count(log.begin(), log.end(), "micro"), 1);
    QCOMPARE(std::count(log.begin(), log.end(), "micro-from-task"), 1);
    QCOMPARE(r.value(), std::size_t(4));
    // The microtask queued by the task ran right after it (checkpoint after every callback).
    const auto task = std::find(log.begin(), log.end(), "task");
    QVERIFY(task + 1 != log.end());
    QCOMPARE(*(task + 1), std::string("micro-from-task"));
    // Internal tasks before external ones.
    QVERIFY(std::find(log.begin(), log.end(), "internal") < task);

    // Waiting with phases 0 returns too (timeout), still running neither.
    {
        Watchdog wd(loop);
        const auto rw = loop.runOnce(5ms, 0u);
        wd.dismiss();
        QVERIFY(!wd.fired());
        QVERIFY(rw.ok());
        QCOMPARE(rw.value(), std::size_t(0));
    }
    QCOMPARE(log.size(), std::size_t(4));

    // Everything excluded is still there for a full iteration.
    QVERIFY(runUntil(loop, [&] { return log.size() >= 6; }));
    QCOMPARE(std::count(log.begin(), log.end(), "timer"), 1);
    QCOMPARE(std::count(log.begin(), log.end(), "fd"), 1);
    QVERIFY(loop.unregisterFd(sp.a).ok());
}

void TestPhases::excludedReadableFdDoesNotEndWaitOrSpin() {
    // The fd is readable (level-triggered, never drained by anyone) but fds are excluded: a
    // runOnce(20ms, Timers) must return without calling it, and must not be stuck reacting to
    // the readiness it is not allowed to dispatch.
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    int calls = 0;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [&calls](int, unsigned) { ++calls; }).ok());
    QVERIFY(writeByte(sp.b));
    {
        Watchdog wd(loop);
        const auto r = loop.runOnce(20ms, RunPhase::Timers);
        wd.dismiss();
        QVERIFY2(!wd.fired(), "runOnce(20ms, RunPhase::Timers) did not return");
        QVERIFY(r.ok());
        QCOMPARE(r.value(), std::size_t(0));
    }
    QCOMPARE(calls, 0);
    // Same with phases 0.
    {
        Watchdog wd(loop);
        const auto r = loop.runOnce(20ms, 0u);
        wd.dismiss();
        QVERIFY2(!wd.fired(), "runOnce(20ms, 0) did not return");
        QVERIFY(r.ok());
    }
    QCOMPARE(calls, 0);
    // Still readable: the next full iteration dispatches it.
    QVERIFY(loop.runOnce(0ns).ok());
    QCOMPARE(calls, 1);
    QVERIFY(loop.unregisterFd(sp.a).ok());
}

void TestPhases::crossThreadWakesWaitWithFdsExcluded_data() {
    QTest::addColumn<unsigned>("phases");
    QTest::addColumn<WakeKind>("kind");
    QTest::newRow("Timers, submit") << RunPhase::Timers << WakeKind::Submit;
    QTest::newRow("Timers, microtask") << RunPhase::Timers << WakeKind::Microtask;
    QTest::newRow("Timers, wakeUp") << RunPhase::Timers << WakeKind::WakeUp;
    QTest::newRow("0, submit") << 0u << WakeKind::Submit;
    QTest::newRow("0, wakeUp") << 0u << WakeKind::WakeUp;
}

void TestPhases::crossThreadWakesWaitWithFdsExcluded() {
    // A registered fd is readable but fds are excluded, so runOnce(kForever, phases) must sleep
    // (on the futex: fd readiness must not end it) until another thread's producer call wakes it.
    QFETCH(unsigned, phases);
    QFETCH(WakeKind, kind);
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    int fdCalls = 0;
    QVERIFY(
        loop.registerFd(sp.a, FdEvent::Readable, [&fdCalls](int, unsigned) { ++fdCalls; }).ok());
    QVERIFY(writeByte(sp.b));

    bool ran = false; // loop thread only
    std::atomic<bool> sawSleeping{false};
    std::atomic<bool> producerOk{true};
    Watchdog wd(loop);
    std::jthread producer([&] {
        const TimePoint end = Clock::now() + kHangGuard;
        while (Clock::now() < end) {
            if (loop.state() == LoopState::Sleeping) {
                sawSleeping = true;
                break;
            }
            std::this_thread::yield();
        }
        std::this_thread::sleep_for(1ms); // let it sink into the wait (not asserted)
        Status s;
        switch (kind) {
        case WakeKind::Submit:
            s = loop.submit([&ran] { ran = true; });
            break;
        case WakeKind::Microtask:
            s = loop.queueMicrotask([&ran] { ran = true; });
            break;
        case WakeKind::WakeUp:
            loop.wakeUp();
            break;
        }
        if (!s.ok())
            producerOk = false;
    });
    const auto r = loop.runOnce(kForever, phases);
    producer.join();
    wd.dismiss();
    QVERIFY2(!wd.fired(), "runOnce(kForever) with fds excluded was never woken by the producer");
    QVERIFY(r.ok());
    QVERIFY(producerOk.load());
    QVERIFY2(sawSleeping.load(), "the loop never slept (did the excluded readable fd end the "
                                 "wait, or was it spinning?)");
    if (kind != WakeKind::WakeUp) {
        QVERIFY(ran); // "then runs what woke it"
        QCOMPARE(r.value(), std::size_t(1));
    }
    QCOMPARE(fdCalls, 0);
    QVERIFY(loop.unregisterFd(sp.a).ok());
}

void TestPhases::priorityReportsTcpUrgentData() {
    TcpPair tcp;
    QVERIFY2(tcp.ok(), tcp.error.c_str());
    Loop loop;
    int calls = 0;
    unsigned seen = 0;
    int oob = -1;
    QVERIFY(loop.registerFd(tcp.server, FdEvent::Priority,
                            [&](int fd, unsigned ev) {
                                ++calls;
                                seen |= ev;
                                if (ev & FdEvent::Priority)
                                    oob = recvOob(fd); // clears the urgent condition
                            })
                .ok());
    QVERIFY(spinRunOnce(loop, 3));
    QCOMPARE(calls, 0); // nothing urgent yet
    QVERIFY(sendOob(tcp.client, 'x'));
    QVERIFY(runUntil(loop, [&] { return (seen & FdEvent::Priority) != 0; }));
    QCOMPARE(oob, int('x'));
    QCOMPARE(seen & FdEvent::Readable, 0u); // not requested
    QCOMPARE(seen & FdEvent::Writable, 0u);
    // Urgent byte consumed: level-triggered readiness is gone.
    const int after = calls;
    QVERIFY(spinRunOnce(loop, 3));
    QCOMPARE(calls, after);
    QVERIFY(loop.unregisterFd(tcp.server).ok());
}

void TestPhases::priorityTogetherWithReadable() {
    TcpPair tcp;
    QVERIFY2(tcp.ok(), tcp.error.c_str());
    Loop loop;
    unsigned seen = 0;
    std::string normal;
    int oob = -1;
    QVERIFY(loop.registerFd(tcp.server, FdEvent::Priority | FdEvent::Readable,
                            [&](int fd, unsigned ev) {
                                seen |= ev;
                                if (ev & FdEvent::Priority) {
                                    const int c = recvOob(fd);
                                    if (c >= 0)
                                        oob = c;
                                }
                                if (ev & FdEvent::Readable)
                                    normal += drain(fd);
                            })
                .ok());
    QVERIFY(spinRunOnce(loop, 3));
    QCOMPARE(seen, 0u);
    QVERIFY(writeByte(tcp.client, 'a'));
    QVERIFY(runUntil(loop, [&] { return normal == "a"; }));
    QVERIFY(seen & FdEvent::Readable);
    QVERIFY(sendOob(tcp.client, 'x'));
    QVERIFY(runUntil(loop, [&] { return oob >= 0; }));
    QCOMPARE(oob, int('x'));
    QVERIFY(seen & FdEvent::Priority);
    QVERIFY(seen & FdEvent::Readable);
    QCOMPARE(seen & FdEvent::Writable, 0u);
    QCOMPARE(normal, std::string("a")); // the urgent byte is not in the normal stream
    QVERIFY(loop.unregisterFd(tcp.server).ok());
}

void TestPhases::registerFdRejectsBitsOutsideWatchable() {
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    const unsigned bad[] = {FdEvent::HangUp,
                            FdEvent::Error,
                            FdEvent::Readable | FdEvent::HangUp,
                            FdEvent::Priority | FdEvent::Error,
                            1u << 5,
                            FdEvent::Readable | (1u << 31)};
    for (unsigned events : bad) {
        std::atomic<bool> released{false};
        const Status s =
            loop.registerFd(sp.a, events, [tok = makeToken(released)](int, unsigned) {});
        QVERIFY2(s.code() == Errc::InvalidArgument,
                 qPrintable(QString("events 0x%1 answered %2")
                                .arg(events, 0, 16)
                                .arg(libloop::errcName(s.code()))));
        QVERIFY(released); // refused: nothing stored
        QCOMPARE(loop.registeredFds(), std::size_t(0));
    }
    // Nothing half-registered; every watchable combination is accepted.
    const unsigned good[] = {FdEvent::Priority, FdEvent::Priority | FdEvent::Readable,
                             FdEvent::Priority | FdEvent::Writable,
                             FdEvent::Readable | FdEvent::Writable | FdEvent::Priority};
    for (unsigned events : good) {
        QVERIFY2(loop.registerFd(sp.a, events, [](int, unsigned) {}).ok(),
                 qPrintable(QString("events 0x%1").arg(events, 0, 16)));
        QCOMPARE(loop.registeredFds(), std::size_t(1));
        QVERIFY(loop.unregisterFd(sp.a).ok());
    }
    QCOMPARE(loop.registeredFds(), std::size_t(0));
}

void TestPhases::modifyFdToPriorityOnly() {
    TcpPair tcp;
    QVERIFY2(tcp.ok(), tcp.error.c_str());
    Loop loop;
    int calls = 0;
    unsigned seen = 0;
    int oob = -1;
    QVERIFY(loop.registerFd(tcp.server, FdEvent::Readable,
                            [&](int fd, unsigned ev) {
                                ++calls;
                                seen |= ev;
                                if (ev & FdEvent::Priority)
                                    oob = recvOob(fd);
                            })
                .ok());
    QVERIFY(loop.modifyFd(tcp.server, FdEvent::Priority).ok());

    // A normal byte: the fd is readable (checked independently), but Readable is not watched.
    QVERIFY(writeByte(tcp.client, 'a'));
    QVERIFY(tcp.waitServerReadable());
    QVERIFY(spinRunOnce(loop, 5));
    {
        Watchdog wd(loop);
        QVERIFY(loop.runOnce(5ms).ok());
        wd.dismiss();
        QVERIFY(!wd.fired());
    }
    QCOMPARE(calls, 0);

    // Urgent data: reported, as Priority only.
    QVERIFY(sendOob(tcp.client, 'x'));
    QVERIFY(runUntil(loop, [&] { return calls > 0; }));
    QVERIFY(seen & FdEvent::Priority);
    QCOMPARE(seen & FdEvent::Readable, 0u);
    QCOMPARE(oob, int('x'));
    const int after = calls;
    QVERIFY(spinRunOnce(loop, 3));
    QCOMPARE(calls, after); // urgent byte consumed; the unread normal byte is still not watched
    QVERIFY(loop.unregisterFd(tcp.server).ok());
    QCOMPARE(drain(tcp.server), std::string("a"));
}

QTEST_APPLESS_MAIN(TestPhases)
void TestPhases::unknownPhaseBitsAreRefused() {
    // Bits that are neither RunPhase nor RunFlag: InvalidArgument, and nothing runs.
    Loop loop;
    int ran = 0;
    QVERIFY(loop.submit([&ran] { ++ran; }).ok());
    for (const unsigned bad : {1u << 2, 1u << 7, 1u << 9, 1u << 31, ~0u}) {
        const auto r = loop.runOnce(0ns, bad);
        QVERIFY(!r.ok());
        QCOMPARE(r.code(), Errc::InvalidArgument);
    }
    QCOMPARE(ran, 0);
    const auto r = loop.runOnce(0ns, RunPhase::All | RunFlag::ReturnOnWakeUp);
    QVERIFY(r.ok());
    QCOMPARE(ran, 1);
}

void TestPhases::returnOnWakeUpLeavesTheRestForTheNextRunOnce_data() {
    QTest::addColumn<bool>("withFd"); // an idle fd puts the loop on epoll, not the futex
    QTest::newRow("fast path") << false;
    QTest::newRow("epoll") << true;
}

void TestPhases::returnOnWakeUpLeavesTheRestForTheNextRunOnce() {
    // Another thread calls wakeUp() and then submits a task while the loop waits. The wait ends
    // with the wake-up pending, so with ReturnOnWakeUp runOnce returns without running the task
    // (whenever the task arrives); the next runOnce runs it without waiting.
    QFETCH(bool, withFd);
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    if (withFd)
        QVERIFY(loop.registerFd(sp.a, FdEvent::Readable, [](int, unsigned) {}).ok());
    std::atomic<int> ran{0};
    std::atomic<bool> submitted{false};
    Watchdog wd(loop);
    std::jthread producer([&] {
        if (!waitFor([&] { return loop.state() == LoopState::Sleeping; }))
            return; // the loop never slept: `submitted` stays false
        loop.wakeUp();
        submitted = loop.submit([&ran] { ran.fetch_add(1); }).ok();
    });
    const auto first = loop.runOnce(kForever, RunPhase::All | RunFlag::ReturnOnWakeUp);
    producer.join();
    QVERIFY(first.ok());
    QCOMPARE(first.value(), std::size_t(0));
    QCOMPARE(ran.load(), 0);
    QVERIFY(submitted.load());
    // The task is there: this call does not wait for it (the watchdog guards against a hang).
    const auto second = loop.runOnce(kForever, RunPhase::All | RunFlag::ReturnOnWakeUp);
    wd.dismiss();
    QVERIFY(!wd.fired());
    QVERIFY(second.ok());
    QCOMPARE(second.value(), std::size_t(1));
    QCOMPARE(ran.load(), 1);
}

void TestPhases::returnOnWakeUpStillRunsWhatElseEndedTheWait_data() {
    QTest::addColumn<int>("what"); // 0: a task from another thread, 1: a timer, 2: an fd
    QTest::newRow("task") << 0;
    QTest::newRow("timer") << 1;
    QTest::newRow("fd") << 2;
}

void TestPhases::returnOnWakeUpStillRunsWhatElseEndedTheWait() {
    // Without a wakeUp(), the flag changes nothing: what ended the wait runs in the same call.
    QFETCH(int, what);
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    std::atomic<int> ran{0};
    std::atomic<bool> producerOk{true};
    Watchdog wd(loop);
    std::jthread producer;
    if (what == 0) {
        producer = std::jthread([&] {
            producerOk = waitFor([&] { return loop.state() == LoopState::Sleeping; }) &&
                         loop.submit([&ran] { ran.fetch_add(1); }).ok();
        });
    } else if (what == 1) {
        QVERIFY(loop.scheduleTimer(5ms, [&ran] { ran.fetch_add(1); }).ok());
    } else {
        QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                                [&ran](int fd, unsigned) {
                                    drain(fd);
                                    ran.fetch_add(1);
                                })
                    .ok());
        producer = std::jthread([&] {
            producerOk =
                waitFor([&] { return loop.state() == LoopState::Sleeping; }) && writeByte(sp.b);
        });
    }
    const auto r = loop.runOnce(kForever, RunPhase::All | RunFlag::ReturnOnWakeUp);
    if (producer.joinable())
        producer.join();
    wd.dismiss();
    QVERIFY(!wd.fired());
    QVERIFY(producerOk.load());
    QVERIFY(r.ok());
    QCOMPARE(r.value(), std::size_t(1));
    QCOMPARE(ran.load(), 1);
}

void TestPhases::pendingWakeUpDoesNotHideReadyFds_data() {
    QTest::addColumn<unsigned>("flags");
    QTest::newRow("plain") << 0u;
    QTest::newRow("ReturnOnWakeUp") << RunFlag::ReturnOnWakeUp;
}

void TestPhases::pendingWakeUpDoesNotHideReadyFds() {
    // A wake-up is pending before every wait (as for a thread that receives a stream of posts):
    // the iteration still polls its fds, so a readable fd's callback runs in each such runOnce.
    QFETCH(unsigned, flags);
    SocketPair sp;
    QVERIFY(sp.ok());
    Loop loop;
    int calls = 0;
    QVERIFY(loop.registerFd(sp.a, FdEvent::Readable,
                            [&calls](int fd, unsigned) {
                                drain(fd);
                                ++calls;
                            })
                .ok());
    Watchdog wd(loop);
    for (int round = 1; round <= 3; ++round) {
        QVERIFY(writeByte(sp.b));
        loop.wakeUp();
        const auto r = loop.runOnce(kForever, RunPhase::All | flags);
        QVERIFY(r.ok());
        QCOMPARE(calls, round);
        QCOMPARE(r.value(), std::size_t(1));
    }
    wd.dismiss();
    QVERIFY(!wd.fired());
}

#include "tst_phases.moc"
