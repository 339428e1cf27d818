// Helpers shared by the libloop core Qt Test suites (tests/libloop/tst_*.cpp).
//
// Nothing here asserts anything: deadlines only guard against hangs and are never part of a
// test's verdict.
#pragma once

#include <libloop/loop.h>

#include <QTest>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <sys/socket.h>
#include <unistd.h>

// Readable QCOMPARE failure output for libloop enums (found by ADL from QTest).
namespace libloop {
inline char* toString(Errc e) {
    return qstrdup(errcName(e));
}
inline char* toString(CallbackKind k) {
    return qstrdup(callbackKindName(k));
}
inline char* toString(LoopState s) {
    return qstrdup(loopStateName(s));
}
inline char* toString(FastPathMode m) {
    return qstrdup(fastPathModeName(m));
}
} // namespace libloop

namespace testsupport {

// Only a guard against hangs; no test asserts on elapsed time.
inline constexpr libloop::Duration kHangGuard = std::chrono::seconds(10);

// What driveUntil() answers when its hang guard expires before pred() held.
enum class OnExpiry {
    Fail,    // once strictly past the deadline: false
    Recheck, // once at or past the deadline: pred() (it may have become true meanwhile)
};

// Parameters of driveUntil(); the defaults are those of runUntil().
struct Drive {
    libloop::Duration step = std::chrono::milliseconds(2); // runOnce() timeout per iteration
    unsigned phases = libloop::RunPhase::All;              // runOnce() phases per iteration
    libloop::Duration limit = kHangGuard;                  // hang guard
    long maxIterations = -1;        // iterations allowed before giving up; -1: unlimited
    std::size_t* started = nullptr; // when set, runOnce()'s callback counts are added here
    OnExpiry onExpiry = OnExpiry::Recheck;
};

// Runs loop iterations on the calling (loop) thread until pred() holds. False if the guard
// expired (see OnExpiry), maxIterations were used up or runOnce failed.
template <class Pred> bool driveUntil(libloop::Loop& loop, Pred& pred, const Drive& d) {
    const auto deadline = std::chrono::steady_clock::now() + d.limit;
    long n = 0;
    while (!pred()) {
        const auto now = std::chrono::steady_clock::now();
        if (d.onExpiry == OnExpiry::Fail ? now > deadline : now >= deadline)
            return d.onExpiry == OnExpiry::Fail ? false : pred();
        if (d.maxIterations >= 0 && n++ >= d.maxIterations)
            return false;
        const auto r = loop.runOnce(d.step, d.phases);
        if (!r.ok())
            return false;
        if (d.started)
            *d.started += r.value();
    }
    return true;
}

// driveUntil() with 2 ms steps; at the deadline answers pred().
template <class Pred>
bool runUntil(libloop::Loop& loop, Pred pred, libloop::Duration limit = kHangGuard,
              unsigned phases = libloop::RunPhase::All) {
    Drive d;
    d.limit = limit;
    d.phases = phases;
    return driveUntil(loop, pred, d);
}

// driveUntil() with 5 ms steps and at most maxIterations iterations (-1: unlimited); past the
// deadline answers false.
template <class Pred> bool pumpUntil(libloop::Loop& loop, Pred pred, long maxIterations = -1) {
    Drive d;
    d.step = std::chrono::milliseconds(5);
    d.maxIterations = maxIterations;
    d.onExpiry = OnExpiry::Fail;
    return driveUntil(loop, pred, d);
}

// Like runUntil, but never waits (runOnce(0)) and adds up runOnce's callback counts.
template <class Pred>
bool pollUntil(libloop::Loop& loop, Pred pred, std::size_t* started = nullptr) {
    Drive d;
    d.step = libloop::Duration::zero();
    d.started = started;
    return driveUntil(loop, pred, d);
}

// Polls pred() from a non-loop thread; false if the guard expired.
template <class Pred> bool waitFor(Pred pred, std::chrono::nanoseconds guard = kHangGuard) {
    const auto deadline = std::chrono::steady_clock::now() + guard;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// Only against hangs: unsticks a runOnce(kForever) that never returns. After `limit` it keeps
// calling stop() and wakeUp() until dismissed, and remembers that it had to (fired()).
class Watchdog {
public:
    explicit Watchdog(libloop::Loop& loop, libloop::Duration limit = std::chrono::seconds(20))
        : loop_(loop) {
        thread_ = std::thread([this, limit] {
            std::unique_lock lk(m_);
            if (cv_.wait_for(lk, limit, [this] { return done_; }))
                return;
            fired_ = true;
            while (!done_) {
                loop_.stop();
                loop_.wakeUp();
                cv_.wait_for(lk, std::chrono::milliseconds(50), [this] { return done_; });
            }
        });
    }
    ~Watchdog() { dismiss(); }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    void dismiss() {
        {
            std::lock_guard lk(m_);
            done_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable())
            thread_.join();
    }
    bool fired() const { return fired_.load(); }

private:
    libloop::Loop& loop_;
    std::mutex m_;
    std::condition_variable cv_;
    bool done_ = false;
    std::atomic<bool> fired_{false};
    std::thread thread_;
};

// A non-blocking AF_UNIX stream socketpair; closes what is still open on destruction.
struct SocketPair {
    int a = -1, b = -1;
    SocketPair() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0) {
            a = fds[0];
            b = fds[1];
        }
    }
    ~SocketPair() {
        closeA();
        closeB();
    }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
    bool ok() const { return a >= 0 && b >= 0; }
    void closeA() {
        if (a >= 0)
            ::close(a);
        a = -1;
    }
    void closeB() {
        if (b >= 0)
            ::close(b);
        b = -1;
    }
};

inline bool writeByte(int fd, char c = 'x') {
    return ::send(fd, &c, 1, MSG_NOSIGNAL) == 1;
}

// Reads fd until nothing is left; answers what was read.
inline std::string drain(int fd) {
    std::string got;
    char buf[256];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
        got.append(buf, std::size_t(n));
    return got;
}

// A shared token whose destruction (= release of the callable that captured it) sets a flag.
inline std::shared_ptr<int> makeToken(std::atomic<bool>& destroyed) {
    return std::shared_ptr<int>(new int(0), [&destroyed](int* p) {
        destroyed = true;
        delete p;
    });
}

struct Tracker {
    std::atomic<int> finalDestroys{0};
    std::atomic<int> calls{0};
};

// Move-only object whose active instance's destruction is counted once.
struct Probe {
    Tracker* t;
    bool active = true;
    explicit Probe(Tracker* tracker) noexcept : t(tracker) {}
    Probe(Probe&& o) noexcept : t(o.t), active(std::exchange(o.active, false)) {}
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;
    Probe& operator=(Probe&&) = delete;
    ~Probe() {
        if (active)
            t->finalDestroys.fetch_add(1);
    }
    void operator()() const { t->calls.fetch_add(1); }
};

inline libloop::Task probeTask(Tracker& t) {
    return libloop::Task([p = Probe(&t)] { p(); });
}

// The value of a Result<size_t>, or size_t(-1) for an error.
inline std::size_t value(const libloop::Result<std::size_t>& r) {
    return r.ok() ? r.value() : std::size_t(-1);
}

} // namespace testsupport
