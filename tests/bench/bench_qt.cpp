// bench_qt: Qt 6's own event dispatchers (glib, Debian's default, and UNIX, QT_NO_GLIB=1) against
// libloop's LoopEventDispatcher, every scenario on all three in one invocation.
//
//   bench_qt [--quick] [--reps N] [--filter SUBSTR]
//   bench_qt --child SCENARIO --dispatcher qt-glib|qt-unix|libloop|raw --param N [--quick]
//
// The dispatcher is chosen when the QCoreApplication is created, and a process should create one
// application, so every (scenario, dispatcher) measurement runs in a child process: bench_qt
// re-executes itself (/proc/self/exe --child ...) with QT_NO_GLIB=1 for qt-unix and without it
// otherwise; a libloop child calls libloop::qt::install() before its QCoreApplication. A child
// checks that it got the dispatcher it was asked for, measures one scenario, prints one line
//   BENCHQT class=<dispatcher class> ops=<n> seconds=<s> allocs=<n> p50=<us> p99=<us>
// and exits. The parent runs each cell --reps times (3; --quick: 1, tiny counts; latency cells
// 3x that), takes the median and prints one table with the ratios measured in this run.
//
// Scenarios (throughput in operations per second unless noted):
//   churn      QObject::startTimer(1 h, Precise) + killTimer pairs while N other 1 h timers are
//              active (on another QObject, so QObject's own per-object timer list stays short);
//   pingpong   one byte bounced over a socketpair by two QSocketNotifiers through the event
//              loop, while N idle notifiers are registered (both ends of N/2 idle socketpairs:
//              the fd limit here is 20000); round trips per second;
//   zerotimer  timeouts per second of a 0 ms QTimer in app.exec();
//   posted     custom QEvents posted by a std::thread to an object of the main thread, delivered
//              per second (from the first post until the last delivery, after a warm-up batch
//              that was delivered first);
//   wakeup     latency of a queued call (QMetaObject::invokeMethod, Qt::QueuedConnection) from a
//              thread that slept 200 us first, so the main loop is blocked; p50/p99 in us;
//   floor      the same with a raw eventfd between the same two threads (no Qt): the floor;
//   postcost   the same queued call on one thread, then sendPostedEvents(): Qt's own cost, no
//              wake-up (what every dispatcher adds to the floor).
//              All three run with the child pinned to one CPU (the last one; --wakeup-cpu N picks
//              another, -1 none): across CPUs every wake-up here costs ~20 us whatever does it,
//              and where the two threads land varies from run to run (a bimodal p50).
// --pin CPU pins every child (all its threads) to one CPU: steadier single-threaded rows on a
// shared machine; the posted-events row then measures both threads time-sharing one CPU.
// Counts are bounded by time as well (about a second per measured window) so that Qt's O(N)
// rows do not take minutes.
//
// Rule of the project: nothing here passes or fails on time. The exit status is 0 unless a child
// crashed, hung, or did not get the dispatcher it asked for (a broken benchmark).
#include "alloc_counter.h"
#include "loadavg.h"

#include <libloop/qt/install.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qcoreevent.h>
#include <QtCore/qobject.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/qtimer.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

[[noreturn]] void childFail(const std::string& what) {
    std::fprintf(stderr, "bench_qt child: FAILED: %s\n", what.c_str());
    std::fflush(stderr);
    std::_Exit(4);
}

// ================================================================================================
// The child: one scenario on one dispatcher.
// ================================================================================================

struct ChildArgs {
    std::string scenario;
    std::string dispatcher;
    long long param = 0;
    bool quick = false;
    int pinCpu = -1; // >= 0: the whole child (every thread it starts) runs on this CPU only
};

struct ChildResult {
    std::uint64_t ops = 0;
    double seconds = 0;
    std::uint64_t allocs = 0;
    double p50 = -1, p99 = -1; // latency scenarios only, in us
};

// Counts and time bounds per scenario.
struct Limits {
    double warmSeconds; // a warm-up window before measuring (bounded by warmOps too)
    std::uint64_t warmOps;
    double budgetSeconds;     // a measured window ends at maxOps or after this long
    std::uint64_t churnPairs; // max start+kill pairs
    std::uint64_t pingTrips;  // max round trips
    std::uint64_t postedEvents;
    std::uint64_t postedWarm;
    int latencySamples;
    int latencyWarm;
};

Limits limitsFor(bool quick) {
    if (quick)
        return Limits{0.01, 50, 0.04, 5'000, 500, 5'000, 500, 100, 5};
    return Limits{0.1, 2'000, 1.0, 3'000'000, 300'000, 1'000'000, 100'000, 2'000, 50};
}

constexpr int kHourMs = 3'600'000;
constexpr auto kProducerSleep = std::chrono::microseconds(200);

// A measured window: the clock and the allocation counter (all threads) at start and stop.
struct Window {
    Clock::time_point t0{};
    std::uint64_t a0 = 0;
    void start() {
        a0 = bench::allocationCount();
        t0 = Clock::now();
    }
    ChildResult stop(std::uint64_t ops) const {
        const auto t1 = Clock::now();
        ChildResult r;
        r.allocs = bench::allocationCount() - a0;
        r.seconds = std::chrono::duration<double>(t1 - t0).count();
        r.ops = ops;
        return r;
    }
};

// Warm-up then measure, for scenarios driven by one callback per operation (ping-pong, zero
// timer): op() returns true when the run is over.
class Phases {
public:
    explicit Phases(const Limits& l, std::uint64_t maxOps) : l_(l), maxOps_(maxOps) {
        warm0_ = Clock::now();
    }
    bool op() {
        ++n_;
        if (!measuring_) {
            if (n_ >= l_.warmOps || secondsSince(warm0_) >= l_.warmSeconds) {
                measuring_ = true;
                n_ = 0;
                w_.start();
            }
            return false;
        }
        if (n_ >= maxOps_ || secondsSince(w_.t0) >= l_.budgetSeconds) {
            result_ = w_.stop(n_);
            return true;
        }
        return false;
    }
    const ChildResult& result() const { return result_; }

private:
    const Limits& l_;
    std::uint64_t maxOps_;
    Clock::time_point warm0_;
    bool measuring_ = false;
    std::uint64_t n_ = 0;
    Window w_;
    ChildResult result_;
};

// 1. startTimer + killTimer pairs with N other timers active.
ChildResult runChurn(QCoreApplication& app, const ChildArgs& a, const Limits& l) {
    ChildResult result;
    QMetaObject::invokeMethod(
        &app,
        [&] {
            QObject holder;  // the N active timers
            QObject churner; // the measured pairs (its own timer list stays at 0..1)
            for (long long i = 0; i < a.param; ++i)
                if (holder.startTimer(kHourMs, Qt::PreciseTimer) <= 0)
                    childFail("startTimer refused while filling");
            // Batches of 64 pairs between clock reads.
            auto pairs = [&](std::uint64_t maxPairs, double maxSeconds) {
                const auto t0 = Clock::now();
                std::uint64_t done = 0;
                while (done < maxPairs && secondsSince(t0) < maxSeconds) {
                    for (int k = 0; k < 64; ++k) {
                        const int id = churner.startTimer(kHourMs, Qt::PreciseTimer);
                        if (id <= 0)
                            childFail("startTimer refused");
                        churner.killTimer(id);
                    }
                    done += 64;
                }
                return done;
            };
            (void)pairs(l.warmOps, l.warmSeconds);
            Window w;
            w.start();
            const std::uint64_t n = pairs(l.churnPairs, l.budgetSeconds);
            result = w.stop(n);
            app.quit();
        },
        Qt::QueuedConnection);
    app.exec();
    return result;
}

int makePair(int sv[2]) {
    return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

// 2. socketpair ping-pong through two QSocketNotifiers, N idle notifiers registered.
ChildResult runPingPong(QCoreApplication& app, const ChildArgs& a, const Limits& l) {
    std::vector<int> idleFds;
    std::vector<std::unique_ptr<QSocketNotifier>> idle;
    for (long long i = 0; i < a.param / 2; ++i) {
        int sv[2];
        if (makePair(sv) != 0)
            childFail(std::string("socketpair for idle notifiers: ") + std::strerror(errno));
        for (int fd : sv) {
            idleFds.push_back(fd);
            idle.push_back(std::make_unique<QSocketNotifier>(fd, QSocketNotifier::Read));
        }
    }
    int sv[2];
    if (makePair(sv) != 0)
        childFail(std::string("socketpair: ") + std::strerror(errno));
    QSocketNotifier na(sv[0], QSocketNotifier::Read);
    QSocketNotifier nb(sv[1], QSocketNotifier::Read);
    auto bounce = [](int fd) {
        char buf[16];
        if (::read(fd, buf, sizeof buf) <= 0)
            return false; // a spurious activation: nothing to send back
        if (::write(fd, "x", 1) != 1)
            childFail("write");
        return true;
    };
    std::optional<Phases> phases;
    QObject::connect(&nb, &QSocketNotifier::activated, [&] { (void)bounce(sv[1]); });
    QObject::connect(&na, &QSocketNotifier::activated, [&] {
        char buf[16];
        if (::read(sv[0], buf, sizeof buf) <= 0)
            return;
        if (phases->op()) {
            app.quit();
            return;
        }
        if (::write(sv[0], "x", 1) != 1)
            childFail("write");
    });
    QMetaObject::invokeMethod(
        &app,
        [&] {
            phases.emplace(l, l.pingTrips);
            if (::write(sv[0], "x", 1) != 1)
                childFail("write");
        },
        Qt::QueuedConnection);
    app.exec();
    const ChildResult r = phases->result();
    idle.clear();
    for (int fd : idleFds)
        ::close(fd);
    ::close(sv[0]);
    ::close(sv[1]);
    return r;
}

// 3. zero-timer iterations per second.
ChildResult runZeroTimer(QCoreApplication& app, const ChildArgs&, const Limits& l) {
    QTimer t;
    t.setInterval(0);
    std::optional<Phases> phases;
    QObject::connect(&t, &QTimer::timeout, [&] {
        if (phases->op()) {
            t.stop();
            app.quit();
        }
    });
    QMetaObject::invokeMethod(
        &app,
        [&] {
            phases.emplace(l, ~std::uint64_t{0});
            t.start();
        },
        Qt::QueuedConnection);
    app.exec();
    return phases->result();
}

constexpr auto kBenchEvent = QEvent::Type(QEvent::User + 17);

class Counter : public QObject {
public:
    std::uint64_t n = 0;
    std::uint64_t warm = 0, target = 0;
    std::function<void()> onWarm, onDone;
    bool event(QEvent* e) override {
        if (e->type() == kBenchEvent) {
            ++n;
            if (n == warm)
                onWarm();
            if (n == target)
                onDone();
            return true;
        }
        return QObject::event(e);
    }
};

// 4. posted-event throughput from another thread. A warm-up batch first (delivered before the
// measured one starts), so that the producer's malloc arena has grown already: otherwise its page
// faults are a large, erratic part of the window.
ChildResult runPosted(QCoreApplication& app, const ChildArgs&, const Limits& l) {
    Counter counter;
    const std::uint64_t warm = l.postedWarm;
    counter.target = warm + l.postedEvents;
    Window w;
    ChildResult result;
    std::atomic<int> warmDone{0};
    std::thread producer;
    counter.onWarm = [&] {
        warmDone.store(1, std::memory_order_release);
        warmDone.notify_one();
    };
    counter.warm = warm;
    counter.onDone = [&] {
        result = w.stop(l.postedEvents); // w was started by the producer before its first post
        app.quit();
    };
    QMetaObject::invokeMethod(
        &app,
        [&] {
            producer = std::thread([&] {
                for (std::uint64_t i = 0; i < warm; ++i)
                    QCoreApplication::postEvent(&counter, new QEvent(kBenchEvent));
                while (!warmDone.load(std::memory_order_acquire))
                    warmDone.wait(0, std::memory_order_acquire);
                w.start();
                for (std::uint64_t i = 0; i < l.postedEvents; ++i)
                    QCoreApplication::postEvent(&counter, new QEvent(kBenchEvent));
            });
        },
        Qt::QueuedConnection);
    app.exec();
    producer.join();
    return result;
}

void percentiles(std::vector<double> v, ChildResult& r) {
    std::sort(v.begin(), v.end());
    r.p50 = v[v.size() / 2];
    r.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

// 5. wake-up latency of a queued call from another thread.
ChildResult runWakeup(QCoreApplication& app, const ChildArgs&, const Limits& l) {
    const int total = l.latencyWarm + l.latencySamples;
    std::vector<double> lat(static_cast<std::size_t>(total));
    std::atomic<int> acked{0};
    QObject ctx;
    Window w;
    ChildResult result;
    std::thread producer;
    QMetaObject::invokeMethod(
        &app,
        [&] {
            producer = std::thread([&] {
                for (int i = 0; i < total; ++i) {
                    std::this_thread::sleep_for(kProducerSleep);
                    const auto t0 = Clock::now();
                    QMetaObject::invokeMethod(
                        &ctx,
                        [&, i, t0] {
                            lat[static_cast<std::size_t>(i)] = micros(Clock::now() - t0);
                            if (i + 1 == l.latencyWarm)
                                w.start();
                            if (i + 1 == total) {
                                result = w.stop(static_cast<std::uint64_t>(l.latencySamples));
                                app.quit();
                            }
                            acked.store(i + 1, std::memory_order_release);
                            acked.notify_one();
                        },
                        Qt::QueuedConnection);
                    while (acked.load(std::memory_order_acquire) != i + 1)
                        acked.wait(i, std::memory_order_acquire);
                }
            });
        },
        Qt::QueuedConnection);
    app.exec();
    producer.join();
    percentiles(std::vector<double>(lat.begin() + l.latencyWarm, lat.end()), result);
    return result;
}

// Qt's own share of a queued call, without any wake-up: on one thread, invokeMethod(Queued)
// (allocations, postEvent, wakeUp()) then sendPostedEvents() (delivery), one call at a time, after
// a 200 us sleep as in runWakeup (cold caches alike). Every dispatcher pays this on top of the
// floor's thread switch.
ChildResult runPostCost(QCoreApplication& app, const Limits& l) {
    const int total = l.latencyWarm + l.latencySamples;
    std::vector<double> lat(static_cast<std::size_t>(total));
    QObject ctx;
    Window w;
    ChildResult result;
    QMetaObject::invokeMethod(
        &app,
        [&] {
            for (int i = 0; i < total; ++i) {
                std::this_thread::sleep_for(kProducerSleep);
                if (i == l.latencyWarm)
                    w.start();
                const auto t0 = Clock::now();
                QMetaObject::invokeMethod(
                    &ctx,
                    [&, i, t0] { lat[static_cast<std::size_t>(i)] = micros(Clock::now() - t0); },
                    Qt::QueuedConnection);
                QCoreApplication::sendPostedEvents(&ctx);
            }
            result = w.stop(static_cast<std::uint64_t>(l.latencySamples));
            app.quit();
        },
        Qt::QueuedConnection);
    app.exec();
    percentiles(std::vector<double>(lat.begin() + l.latencyWarm, lat.end()), result);
    return result;
}

// The floor: the same two threads and the same hand-shake, with a blocking eventfd read instead
// of an event loop.
ChildResult runFloor(const Limits& l) {
    const int total = l.latencyWarm + l.latencySamples;
    std::vector<double> lat(static_cast<std::size_t>(total));
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    if (efd < 0)
        childFail("eventfd");
    std::atomic<int> acked{0};
    std::atomic<Clock::rep> sent{0};
    std::thread producer([&] {
        for (int i = 0; i < total; ++i) {
            std::this_thread::sleep_for(kProducerSleep);
            sent.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
            const std::uint64_t one = 1;
            if (::write(efd, &one, sizeof one) != sizeof one)
                childFail("eventfd write");
            while (acked.load(std::memory_order_acquire) != i + 1)
                acked.wait(i, std::memory_order_acquire);
        }
    });
    Window w;
    ChildResult result;
    for (int i = 0; i < total; ++i) {
        std::uint64_t v = 0;
        if (::read(efd, &v, sizeof v) != sizeof v)
            childFail("eventfd read");
        const auto t1 = Clock::now();
        const auto t0 = Clock::time_point(Clock::duration(sent.load(std::memory_order_relaxed)));
        lat[static_cast<std::size_t>(i)] = micros(t1 - t0);
        if (i + 1 == l.latencyWarm)
            w.start();
        acked.store(i + 1, std::memory_order_release);
        acked.notify_one();
    }
    result = w.stop(static_cast<std::uint64_t>(l.latencySamples));
    producer.join();
    ::close(efd);
    percentiles(std::vector<double>(lat.begin() + l.latencyWarm, lat.end()), result);
    return result;
}

const char* expectedClass(const std::string& dispatcher) {
    if (dispatcher == "qt-glib")
        return "QEventDispatcherGlib";
    if (dispatcher == "qt-unix")
        return "QEventDispatcherUNIX";
    if (dispatcher == "libloop")
        return "libloop::qt::LoopEventDispatcher";
    return nullptr;
}

int childMain(const ChildArgs& a) {
    const Limits l = limitsFor(a.quick);
    ChildResult r;
    std::string cls = "none";
    // Before any thread exists, so that every thread (Qt's, the producer) inherits the mask.
    if (a.pinCpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(a.pinCpu, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0)
            childFail(std::string("sched_setaffinity: ") + std::strerror(errno));
    }
    if (a.scenario == "floor") {
        r = runFloor(l);
    } else {
        const char* expected = expectedClass(a.dispatcher);
        if (!expected)
            childFail("unknown dispatcher '" + a.dispatcher + "'");
        // The parent sets the environment; enforce it here too, so that a child started by hand
        // (perf record bench_qt --child ...) gets the dispatcher it names. Single-threaded here.
        if (a.dispatcher == "qt-unix")
            ::setenv("QT_NO_GLIB", "1", 1);
        else
            ::unsetenv("QT_NO_GLIB");
        if (a.dispatcher == "libloop" && !libloop::qt::install())
            childFail("libloop::qt::install() refused");
        int argc = 1;
        char arg0[] = "bench_qt";
        char* argv[] = {arg0, nullptr};
        QCoreApplication app(argc, argv);
        auto* d = QAbstractEventDispatcher::instance();
        cls = d ? d->metaObject()->className() : "none";
        if (cls != expected)
            childFail("dispatcher is " + cls + ", expected " + expected);
        if (a.scenario == "churn")
            r = runChurn(app, a, l);
        else if (a.scenario == "pingpong")
            r = runPingPong(app, a, l);
        else if (a.scenario == "zerotimer")
            r = runZeroTimer(app, a, l);
        else if (a.scenario == "posted")
            r = runPosted(app, a, l);
        else if (a.scenario == "wakeup")
            r = runWakeup(app, a, l);
        else if (a.scenario == "postcost")
            r = runPostCost(app, l);
        else
            childFail("unknown scenario '" + a.scenario + "'");
    }
    std::printf("BENCHQT class=%s ops=%llu seconds=%.9f allocs=%llu p50=%.3f p99=%.3f\n",
                cls.c_str(), static_cast<unsigned long long>(r.ops), r.seconds,
                static_cast<unsigned long long>(r.allocs), r.p50, r.p99);
    std::fflush(stdout);
    return 0;
}

// ================================================================================================
// The parent: runs the children and prints the table.
// ================================================================================================

struct ParentOptions {
    bool quick = false;
    int reps = 3;
    int pinCpu = -1;    // --pin: every child on this CPU
    int wakeupCpu = -2; // --wakeup-cpu: wake-up and floor children (-2: the last CPU, -1: none)
    std::string filter;
};

constexpr const char* kDispatchers[] = {"qt-glib", "qt-unix", "libloop"};
constexpr int kNumDispatchers = 3;

struct Run {
    bool ok = false;
    std::string error;
    std::string cls;
    ChildResult r;
    double rate() const { return r.seconds > 0 ? double(r.ops) / r.seconds : 0; }
    double allocsPerOp() const { return r.ops ? double(r.allocs) / double(r.ops) : -1; }
};

// Spawns /proc/self/exe --child ..., reads its one result line; kills it (by its pid) after
// `timeoutSeconds`.
Run runChild(const std::string& scenario, const std::string& dispatcher, long long param,
             bool quick, int pinCpu, double timeoutSeconds) {
    Run run;
    std::vector<std::string> args = {"bench_qt",           "--child",  scenario,
                                     "--dispatcher",       dispatcher, "--param",
                                     std::to_string(param)};
    if (quick)
        args.push_back("--quick");
    if (pinCpu >= 0) {
        args.push_back("--pin");
        args.push_back(std::to_string(pinCpu));
    }
    std::vector<char*> argv;
    for (auto& s : args)
        argv.push_back(s.data());
    argv.push_back(nullptr);

    std::vector<std::string> envStore;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "QT_NO_GLIB=", 11) != 0)
            envStore.emplace_back(*e);
    if (dispatcher == "qt-unix")
        envStore.emplace_back("QT_NO_GLIB=1");
    std::vector<char*> envp;
    for (auto& s : envStore)
        envp.push_back(s.data());
    envp.push_back(nullptr);

    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
        run.error = "pipe";
        return run;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(pipefd[1]);
    if (rc != 0) {
        ::close(pipefd[0]);
        run.error = std::string("posix_spawn: ") + std::strerror(rc);
        return run;
    }
    std::string out;
    const auto t0 = Clock::now();
    bool timedOut = false;
    for (;;) {
        const double left = timeoutSeconds - secondsSince(t0);
        if (left <= 0) {
            timedOut = true;
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{pipefd[0], POLLIN, 0};
        const int pr = ::poll(&p, 1, static_cast<int>(std::min(left, 1.0) * 1000) + 1);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        char buf[4096];
        const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipefd[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timedOut) {
        run.error = "timed out";
        return run;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        run.error = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                        : "exit status " + std::to_string(WEXITSTATUS(status));
        return run;
    }
    const auto at = out.find("BENCHQT ");
    if (at == std::string::npos) {
        run.error = "no result line";
        return run;
    }
    std::map<std::string, std::string> kv;
    std::string line = out.substr(at + 8, out.find('\n', at) - at - 8);
    std::size_t pos = 0;
    while (pos < line.size()) {
        auto end = line.find(' ', pos);
        if (end == std::string::npos)
            end = line.size();
        const std::string tok = line.substr(pos, end - pos);
        const auto eq = tok.find('=');
        if (eq != std::string::npos)
            kv[tok.substr(0, eq)] = tok.substr(eq + 1);
        pos = end + 1;
    }
    run.cls = kv["class"];
    run.r.ops = std::strtoull(kv["ops"].c_str(), nullptr, 10);
    run.r.seconds = std::strtod(kv["seconds"].c_str(), nullptr);
    run.r.allocs = std::strtoull(kv["allocs"].c_str(), nullptr, 10);
    run.r.p50 = std::strtod(kv["p50"].c_str(), nullptr);
    run.r.p99 = std::strtod(kv["p99"].c_str(), nullptr);
    run.ok = run.r.ops > 0;
    if (!run.ok)
        run.error = "no operations measured";
    return run;
}

// One cell: the runs of one (scenario, param, dispatcher).
struct Cell {
    std::vector<Run> runs;
    std::string error;
    bool ok() const { return error.empty() && !runs.empty(); }
    static double median(std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0 : v[v.size() / 2];
    }
    double rate() const {
        std::vector<double> v;
        for (const auto& r : runs)
            v.push_back(r.rate());
        return median(v);
    }
    double p50() const {
        std::vector<double> v;
        for (const auto& r : runs)
            v.push_back(r.r.p50);
        return median(v);
    }
    double p99() const {
        std::vector<double> v;
        for (const auto& r : runs)
            v.push_back(r.r.p99);
        return median(v);
    }
    double allocsPerOp() const { // of the median-rate run
        std::vector<const Run*> v;
        for (const auto& r : runs)
            v.push_back(&r);
        std::sort(v.begin(), v.end(),
                  [](const Run* a, const Run* b) { return a->rate() < b->rate(); });
        return v.empty() ? -1 : v[v.size() / 2]->allocsPerOp();
    }
    std::uint64_t opsMin() const {
        std::uint64_t m = ~std::uint64_t{0};
        for (const auto& r : runs)
            m = std::min(m, r.r.ops);
        return runs.empty() ? 0 : m;
    }
};

struct Scenario {
    std::string id;
    std::string title;
    std::string unit;
    std::vector<long long> params;
    bool latency = false;
};

// A printed row. value[d] < 0: not available.
struct Line {
    std::string title, param, unit;
    double value[kNumDispatchers] = {-1, -1, -1};
    double allocs[kNumDispatchers] = {-1, -1, -1};
    bool latency = false;  // lower is better
    bool ratioRow = false; // values are ratios already
    std::string note;
};

Line makeLine(std::string title, std::string param, std::string unit) {
    Line l;
    l.title = std::move(title);
    l.param = std::move(param);
    l.unit = std::move(unit);
    return l;
}

std::string fmtValue(double v, bool latency) {
    char buf[32];
    if (v < 0)
        return "-";
    if (latency)
        std::snprintf(buf, sizeof buf, "%.1f us", v);
    else if (v >= 1e6)
        std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
    else if (v >= 1e3)
        std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

std::string fmtRatio(double v) {
    char buf[32];
    if (!(v > 0) || !std::isfinite(v))
        return "-";
    std::snprintf(buf, sizeof buf, v >= 10 ? "%.1fx" : "%.2fx", v);
    return buf;
}

std::string fmtAllocs(double v) {
    char buf[32];
    if (v < 0)
        return "-";
    std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : "%.2f", v);
    return buf;
}

std::string paramLabel(const Scenario& s, long long p) {
    if (s.id == "churn")
        return std::to_string(p) + " active";
    if (s.id == "pingpong")
        return std::to_string(p) + " idle";
    return "";
}

void usage() {
    std::printf("usage: bench_qt [--quick] [--reps N] [--filter SUBSTR]\n"
                "       bench_qt --child churn|pingpong|zerotimer|posted|wakeup|floor|postcost\n"
                "                --dispatcher qt-glib|qt-unix|libloop|raw --param N [--quick]\n"
                "  --quick          tiny counts, 1 run per cell (CTest bench_qt_smoke)\n"
                "  --reps N         child runs per cell (default 3, latency cells 3x; the median\n"
                "                   is shown)\n"
                "  --filter SUBSTR  run only scenarios whose id contains SUBSTR\n"
                "  --pin CPU        run every child on that CPU only (all its threads)\n"
                "  --wakeup-cpu N   CPU of the wake-up and floor children (default: the last\n"
                "                   CPU, both threads on it; -1: not pinned)\n"
                "  --child ...      one measurement in this process (prints a BENCHQT line)\n");
}

int parentMain(const ParentOptions& o) {
    const std::vector<Scenario> scenarios = {
        {"churn", "QTimer start+kill, N timers active", "pairs/s", {10, 1000, 10000, 100000}},
        {"pingpong", "socketpair ping-pong, N idle notifiers", "trips/s", {0, 100, 1000, 10000}},
        {"zerotimer", "zero-timer iterations", "iter/s", {0}},
        {"posted", "posted QEvents from a thread", "events/s", {0}},
        {"wakeup", "queued-call wake-up latency", "us", {0}, true},
    };
    const Limits l = limitsFor(o.quick);
    const double childTimeout = o.quick ? 60 : 90;

    std::printf("bench_qt (%s build, %s mode): Qt %s, %u hardware threads, load average %s\n",
                BENCH_BUILD_TYPE, o.quick ? "quick" : "default", qVersion(),
                std::thread::hardware_concurrency(), loadAverage(3).c_str());
    std::printf("each cell: median of %d child process(es) (latency cells: %d); measured windows "
                "end after %.2f s or "
                "at the count (churn %llu pairs, ping-pong %llu trips, posted %llu events after "
                "%llu warm-up, wake-up %d samples)\n\n",
                o.reps, 3 * o.reps, l.budgetSeconds, static_cast<unsigned long long>(l.churnPairs),
                static_cast<unsigned long long>(l.pingTrips),
                static_cast<unsigned long long>(l.postedEvents),
                static_cast<unsigned long long>(l.postedWarm), l.latencySamples);
    // Wake-ups are compared with both threads on one CPU (a cross-CPU wake-up costs ~20 us here
    // for everything, a raw futex included, and which CPU each thread lands on varies run to
    // run), unless --wakeup-cpu -1 or --pin says otherwise.
    const int wakeupCpu = o.pinCpu >= 0       ? o.pinCpu
                          : o.wakeupCpu == -2 ? int(std::thread::hardware_concurrency()) - 1
                                              : o.wakeupCpu;
    std::printf("pinning: %s; wake-up and floor children: %s\n\n",
                o.pinCpu >= 0 ? ("every child on CPU " + std::to_string(o.pinCpu)).c_str() : "none",
                wakeupCpu >= 0 ? ("both threads on CPU " + std::to_string(wakeupCpu)).c_str()
                               : "not pinned");
    std::fflush(stdout);

    const auto tStart = Clock::now();
    int failures = 0;
    std::vector<Line> lines;
    std::optional<Cell> floorCell;
    std::string classes[kNumDispatchers];

    auto runCell = [&](const std::string& scen, const std::string& disp, long long param,
                       Cell& cell, int rep) {
        const bool wakeupRow = scen == "wakeup" || scen == "floor" || scen == "postcost";
        Run r =
            runChild(scen, disp, param, o.quick, wakeupRow ? wakeupCpu : o.pinCpu, childTimeout);
        if (!r.ok) {
            cell.error = r.error;
            ++failures;
            std::fprintf(stderr, "  %-10s %-8s param %-7lld rep %d: FAILED (%s)\n", scen.c_str(),
                         disp.c_str(), param, rep + 1, r.error.c_str());
            return;
        }
        std::fprintf(
            stderr, "  %-10s %-8s param %-7lld rep %d: %s (%llu ops in %.3f s)\n", scen.c_str(),
            disp.c_str(), param, rep + 1,
            r.r.p50 >= 0
                ? (fmtValue(r.r.p50, true) + " p50, " + fmtValue(r.r.p99, true) + " p99").c_str()
                : (fmtValue(r.rate(), false) + "/s").c_str(),
            static_cast<unsigned long long>(r.r.ops), r.r.seconds);
        cell.runs.push_back(std::move(r));
    };

    for (const auto& s : scenarios) {
        if (!o.filter.empty() && s.id.find(o.filter) == std::string::npos)
            continue;
        for (long long p : s.params) {
            Cell cells[kNumDispatchers];
            Cell fc; // latency rows: the floor, a raw eventfd between the same two threads
            Cell pc[kNumDispatchers]; // latency rows: the same queued call without a wake-up
            // Interleave the dispatchers (and the floor) within each repetition: a burst of
            // load from other builds then hits all of them rather than one. Each repetition
            // starts one place further along, so no column always runs right after another
            // (a child's start and exit disturb the next one's first milliseconds).
            // Latency rows run 3x the repetitions: one run's p99 hinges on whether a burst of
            // host noise (~15 us per wake-up for ~10 ms on these VMs) hit it, so the median
            // needs more runs to settle (each run takes ~0.6 s).
            const int reps = s.latency ? 3 * o.reps : o.reps;
            const int members = kNumDispatchers + (s.latency ? 1 : 0); // + the floor
            for (int rep = 0; rep < reps; ++rep) {
                for (int k = 0; k < members; ++k) {
                    const int d = (k + rep) % members;
                    if (d == kNumDispatchers) {
                        if (fc.error.empty())
                            runCell("floor", "raw", 0, fc, rep);
                    } else if (cells[d].error.empty()) {
                        runCell(s.id, kDispatchers[d], p, cells[d], rep);
                    }
                }
                for (int d = 0; s.latency && d < kNumDispatchers; ++d)
                    if (pc[d].error.empty())
                        runCell("postcost", kDispatchers[d], p, pc[d], rep);
            }
            for (int d = 0; d < kNumDispatchers; ++d)
                if (cells[d].ok())
                    classes[d] = cells[d].runs.front().cls;
            if (!s.latency) {
                Line line = makeLine(s.title, paramLabel(s, p), s.unit);
                for (int d = 0; d < kNumDispatchers; ++d)
                    if (cells[d].ok()) {
                        line.value[d] = cells[d].rate();
                        line.allocs[d] = cells[d].allocsPerOp();
                    }
                lines.push_back(line);
            } else {
                Line p50 = makeLine(s.title, "p50", s.unit);
                Line p99 = makeLine(s.title, "p99", s.unit);
                p50.latency = p99.latency = true;
                for (int d = 0; d < kNumDispatchers; ++d)
                    if (cells[d].ok()) {
                        p50.value[d] = cells[d].p50();
                        p99.value[d] = cells[d].p99();
                        p50.allocs[d] = p99.allocs[d] = cells[d].allocsPerOp();
                    }
                lines.push_back(p50);
                lines.push_back(p99);
                if (fc.ok()) {
                    Line f50 = makeLine("wake-up floor: raw eventfd", "p50", "us");
                    Line f99 = makeLine("wake-up floor: raw eventfd", "p99", "us");
                    f50.latency = f99.latency = true;
                    for (int d = 0; d < kNumDispatchers; ++d) {
                        f50.value[d] = fc.p50();
                        f99.value[d] = fc.p99();
                    }
                    f50.note = f99.note = "same value in each column: no Qt";
                    Line r50 = makeLine("wake-up p50 / floor p50", "ratio", "x");
                    r50.ratioRow = true;
                    for (int d = 0; d < kNumDispatchers; ++d)
                        if (p50.value[d] > 0 && fc.p50() > 0)
                            r50.value[d] = p50.value[d] / fc.p50();
                    r50.note = "lower is better; 1.00x = the floor";
                    // What the wake-up adds to Qt's own post+deliver cost, against the floor.
                    Line c50 = makeLine("queued call, same thread, no wake-up", "p50", "us");
                    c50.latency = true;
                    c50.note = "Qt's invokeMethod + sendPostedEvents alone";
                    Line x50 = makeLine("(wake-up p50 - that) / floor p50", "ratio", "x");
                    x50.ratioRow = true;
                    x50.note = "the thread switch each dispatcher adds; 1.00x = the floor";
                    for (int d = 0; d < kNumDispatchers; ++d)
                        if (pc[d].ok()) {
                            c50.value[d] = pc[d].p50();
                            if (p50.value[d] > 0 && fc.p50() > 0)
                                x50.value[d] = (p50.value[d] - pc[d].p50()) / fc.p50();
                        }

                    lines.push_back(f50);
                    lines.push_back(f99);
                    lines.push_back(r50);
                    lines.push_back(c50);
                    lines.push_back(x50);
                    floorCell = fc;
                }
            }
        }
    }
    const double total = secondsSince(tStart);

    // ---- the table ----
    const std::vector<std::string> head = {"scenario",        "param",          "unit",
                                           "qt-glib",         "qt-unix",        "libloop",
                                           "libloop/qt-unix", "libloop/qt-glib"};
    std::vector<std::vector<std::string>> cells;
    for (const auto& ln : lines) {
        std::vector<std::string> c = {ln.title, ln.param, ln.unit};
        for (int d = 0; d < kNumDispatchers; ++d)
            c.push_back(ln.ratioRow ? fmtRatio(ln.value[d]) : fmtValue(ln.value[d], ln.latency));
        if (ln.ratioRow || ln.note.size()) {
            c.push_back("");
            c.push_back("");
        } else {
            c.push_back(ln.value[1] > 0 && ln.value[2] > 0 ? fmtRatio(ln.value[2] / ln.value[1])
                                                           : "-");
            c.push_back(ln.value[0] > 0 && ln.value[2] > 0 ? fmtRatio(ln.value[2] / ln.value[0])
                                                           : "-");
        }
        cells.push_back(c);
    }
    std::vector<std::size_t> w(head.size());
    for (std::size_t i = 0; i < head.size(); ++i) {
        w[i] = head[i].size();
        for (const auto& c : cells)
            w[i] = std::max(w[i], c[i].size());
    }
    auto printRow = [&](const std::vector<std::string>& c, const std::string& note) {
        std::string s;
        for (std::size_t i = 0; i < c.size(); ++i) {
            const bool left = i < 3;
            char buf[128];
            std::snprintf(buf, sizeof buf, left ? "%-*s" : "%*s", static_cast<int>(w[i]),
                          c[i].c_str());
            s += buf;
            if (i + 1 < c.size())
                s += " | ";
        }
        if (!note.empty())
            s += "  " + note;
        std::printf("%s\n", s.c_str());
    };
    std::size_t ruleLen = 0;
    for (auto x : w)
        ruleLen += x + 3;
    const std::string rule(ruleLen - 3, '-');
    std::printf("\n");
    printRow(head, "");
    std::printf("%s\n", rule.c_str());
    std::string prevTitle;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i && lines[i].title != prevTitle && lines[i].title.rfind("wake-up", 0) != 0)
            std::printf("%s\n", rule.c_str());
        prevTitle = lines[i].title;
        printRow(cells[i], lines[i].note);
    }
    std::printf("%s\n", rule.c_str());
    std::printf("Ratios are plain value ratios: for ops/s rows > 1 means libloop is faster, for "
                "latency (us) rows < 1 means libloop is faster.\n");

    // ---- allocations per operation ----
    std::printf("\nAllocations per operation (all threads, median run; malloc family%s counted):\n",
                bench::countsMalloc() ? " and operator new" : " NOT");
    for (const auto& ln : lines) {
        if (ln.ratioRow || ln.title.rfind("wake-up floor", 0) == 0 || ln.param == "p99")
            continue;
        std::printf("  %-*s %-13s  qt-glib %8s  qt-unix %8s  libloop %8s\n", static_cast<int>(w[0]),
                    ln.title.c_str(),
                    (ln.param == "p50" ? std::string("per call") : ln.param).c_str(),
                    fmtAllocs(ln.allocs[0]).c_str(), fmtAllocs(ln.allocs[1]).c_str(),
                    fmtAllocs(ln.allocs[2]).c_str());
    }

    // ---- the footer ----
    auto find = [&](const std::string& titlePrefix, const std::string& param) -> const Line* {
        for (const auto& ln : lines)
            if (ln.title.rfind(titlePrefix, 0) == 0 && ln.param == param)
                return &ln;
        return nullptr;
    };
    std::printf("\nTargets (informative; nothing here is asserted):\n");
    auto speedTarget = [&](const char* what, const Line* ln, double target) {
        if (!ln || ln->value[1] <= 0 || ln->value[2] <= 0) {
            std::printf("  %-52s (not run)\n", what);
            return;
        }
        const double v = ln->value[2] / ln->value[1];
        std::printf("  %-52s %8.2fx  (target >= %.0fx: %s)\n", what, v, target,
                    v >= target ? "met" : "MISSED");
    };
    speedTarget("churn, 10000 active: libloop / qt-unix", find("QTimer", "10000 active"), 10);
    speedTarget("ping-pong, 1000 idle notifiers: libloop / qt-unix",
                find("socketpair", "1000 idle"), 20);
    {
        std::vector<std::string> losers;
        int compared = 0;
        for (const auto& ln : lines) {
            if (ln.ratioRow || ln.note.size() || ln.value[1] <= 0 || ln.value[2] <= 0)
                continue;
            ++compared;
            // As speed: ops/s ratio, or the inverse latency ratio.
            const double speed = ln.latency ? ln.value[1] / ln.value[2] : ln.value[2] / ln.value[1];
            if (speed < 0.9) {
                char buf[160];
                std::snprintf(buf, sizeof buf, "%s%s%s: %.2fx as fast as qt-unix", ln.title.c_str(),
                              ln.param.empty() ? "" : ", ", ln.param.c_str(), speed);
                losers.push_back(buf);
            }
        }
        std::printf("  %-52s %d of %d rows below  (target 0: %s)\n",
                    "libloop never < 0.9x qt-unix (speed, any row)",
                    static_cast<int>(losers.size()), compared, losers.empty() ? "met" : "MISSED");
        for (const auto& s : losers)
            std::printf("    BELOW: %s\n", s.c_str());
    }
    {
        const Line* r50 = find("wake-up p50 / floor", "ratio");
        if (!r50 || r50->value[2] <= 0)
            std::printf("  %-52s (not run)\n", "wake-up p50: libloop / eventfd floor");
        else
            std::printf("  %-52s %8.2fx  (target <= 1.5x: %s; floor p50 %.1f us)\n",
                        "wake-up p50: libloop / eventfd floor", r50->value[2],
                        r50->value[2] <= 1.5 ? "met" : "MISSED", floorCell ? floorCell->p50() : 0);
    }
    std::printf("\ndispatchers: qt-glib = %s, qt-unix = %s, libloop = %s\n",
                classes[0].empty() ? "?" : classes[0].c_str(),
                classes[1].empty() ? "?" : classes[1].c_str(),
                classes[2].empty() ? "?" : classes[2].c_str());
    std::printf("total run time %.1f s; load average at the end %s (the machine is shared: "
                "compare columns of one run, not runs)\n",
                total, loadAverage(3).c_str());
    if (failures) {
        std::printf("FAILED: %d child run(s) failed (see stderr)\n", failures);
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    ParentOptions o;
    ChildArgs c;
    bool child = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool hasNext = i + 1 < argc;
        if (a == "--quick") {
            o.quick = c.quick = true;
        } else if (a == "--reps" && hasNext) {
            o.reps = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--filter" && hasNext) {
            o.filter = argv[++i];
        } else if (a == "--pin" && hasNext) {
            o.pinCpu = c.pinCpu = std::atoi(argv[++i]);
        } else if (a == "--wakeup-cpu" && hasNext) {
            o.wakeupCpu = std::atoi(argv[++i]);
        } else if (a == "--child" && hasNext) {
            child = true;
            c.scenario = argv[++i];
        } else if (a == "--dispatcher" && hasNext) {
            c.dispatcher = argv[++i];
        } else if (a == "--param" && hasNext) {
            c.param = std::atoll(argv[++i]);
        } else if (a == "--help" || a == "-h") {
            usage();
            return 0;
        } else {
            usage();
            return 64;
        }
    }
    if (child)
        return childMain(c);
    if (o.quick)
        o.reps = 1;
    return parentMain(o);
}
