// loop-soak: a long mixed workload on one libloop::Loop (core only, no Qt), then proof that every
// accepted unit of work ran exactly once or was cancelled, that RSS stayed flat after warm-up, and
// figures for latency drift. See tests/stress/README.md.
//
// Threads:
//   main        the loop thread: run(), then shutdown(), teardown and the verdict;
//   producers   submit tasks, queue microtasks, schedule and cancel timers and write to the
//               socketpairs, in bursts, steady trickles and pauses (seeded);
//   flipper     setFastPathMode among Auto / Disabled / Forced (Forced is refused while an fd is
//               registered: counted, expected);
//   controller  samples RSS each second and ends the run (stops producers, then the loop);
//   racer       keeps submitting across the start of shutdown(): what was accepted must run,
//               what was refused must not.
// On the loop thread, units spawn more units (microtasks, submitInternal, queueImmediate,
// submit, timers), a timer storm schedules, reschedules and cancels timers, and an fd manager
// opens, pauses, half-closes and closes socketpairs.
//
// Every verdict is a count (or bytes): a slow machine makes the run do less, never fail. Only the
// latency drift check looks at time, and it fails the run only with --check-latency.
#include <libloop/loop.h>

#include "soak_common.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using libloop::CallbackKind;
using libloop::Duration;
using libloop::Errc;
using libloop::FastPathMode;
using libloop::Status;
using libloop::TimerId;
using soak::format;
using soak::formatNs;
using soak::Ledger;
using soak::Rng;
namespace FdEvent = libloop::FdEvent;

enum Kind : std::uint8_t {
    kProducerTask,      // submit() from a producer thread
    kProducerMicrotask, // queueMicrotask() from a producer thread
    kProducerTimer,     // scheduleTimer() from a producer thread
    kLoopTask,          // submit() from the loop thread
    kInternalTask,      // submitInternal()
    kImmediate,         // queueImmediate()
    kLoopMicrotask,     // queueMicrotask() from the loop thread
    kLoopTimer,         // scheduleTimer() from the loop thread (storm and spawned)
    kRacerTask,         // the shutdown racer's submit()
    kRacerMicrotask,    // ... queueMicrotask()
    kRacerTimer,        // ... scheduleTimer()
    kKindCount
};

constexpr const char* kKindNames[kKindCount] = {
    "task (producer submit)", "microtask (producer)",  "timer (producer)",
    "task (loop submit)",     "task (submitInternal)", "immediate",
    "microtask (loop)",       "timer (loop)",          "task (shutdown racer)",
    "microtask (racer)",      "timer (racer)",
};

constexpr bool isTimer(int k) {
    return k == kProducerTimer || k == kLoopTimer || k == kRacerTimer;
}

constexpr CallbackKind callbackKindOf(int k) {
    switch (k) {
    case kProducerMicrotask:
    case kLoopMicrotask:
    case kRacerMicrotask:
        return CallbackKind::Microtask;
    case kProducerTimer:
    case kLoopTimer:
    case kRacerTimer:
        return CallbackKind::Timer;
    default:
        return CallbackKind::Task;
    }
}

constexpr unsigned kThrowPerMille = 15;     // units and fd callbacks that throw
constexpr int kMaxSpawnDepth = 3;           // units spawned by units, at most this deep
constexpr std::uint64_t kRacerQuota = 2000; // racer units accepted before shutdown() starts

enum class Inject { None, DoubleRun, Lose, CancelledRun };

struct SoakError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Soak;

// What a unit's callback captures: 24 bytes, trivially copyable, so it lives in Task's inline
// buffer and the loop moves it as plain bytes.
struct Unit {
    Soak* soak;
    std::uint64_t uid;
    std::uint32_t slot;
    Kind kind;
    std::uint8_t depth;
    bool throws;
};

struct CancelEntry {
    TimerId id;
    std::uint64_t uid;
    std::uint32_t slot;
    Kind kind;
};

// Recently scheduled timers; any thread may cancel any of them (loop-local and cross-thread
// cancels, of timers the loop has or has not taken in yet). Full: a random old entry makes room.
class CancelPool {
public:
    void push(const CancelEntry& e, Rng& rng) {
        std::lock_guard lock(mu_);
        if (entries_.size() < kCap)
            entries_.push_back(e);
        else
            entries_[rng.below(kCap)] = e;
    }
    bool take(Rng& rng, CancelEntry& out) {
        std::lock_guard lock(mu_);
        if (entries_.empty())
            return false;
        const std::size_t i = rng.below(entries_.size());
        out = entries_[i];
        entries_[i] = entries_.back();
        entries_.pop_back();
        return true;
    }

private:
    static constexpr std::size_t kCap = 4096;
    std::mutex mu_;
    std::vector<CancelEntry> entries_;
};

// One socketpair: the loop watches `rd`, writers write to `wr`. `written` and `writable` are
// guarded by `m`, and the loop thread takes `m` to stop writes before it closes the pair, so at
// close written == readBytes + the bytes still buffered (drained under the lock), exactly.
struct Pair {
    std::uint64_t id = 0;
    int rd = -1, wr = -1;
    std::mutex m;
    bool writable = true;        // m
    std::uint64_t written = 0;   // m
    std::uint64_t readBytes = 0; // loop thread
    unsigned events = 0;         // loop thread: what is registered now
    bool halfClosed = false;     // loop thread: wr was shut down, the reader closes at EOF
};

class Soak {
public:
    explicit Soak(const soak::Options& o)
        : opt_(o), inject_(o.inject == "double-run"      ? Inject::DoubleRun
                           : o.inject == "lose"          ? Inject::Lose
                           : o.inject == "cancelled-run" ? Inject::CancelledRun
                                                         : Inject::None),
          durationNs_(std::int64_t(o.seconds * 1e9)), startNs_(soak::monoNs()),
          ledger_(o.maxOutstanding), loopRng_(o.seed * 7919 + 1),
          taskLat_("task latency", startNs_, durationNs_),
          microLat_("microtask latency", startNs_, durationNs_),
          timerLat_("timer lateness", startNs_, durationNs_), rss_(o.seconds),
          loop_(loopOptions()) {}

    int run();

private:
    enum Driver { kStorm, kFdManager, kTick, kDriverCount };

    libloop::LoopOptions loopOptions() {
        libloop::LoopOptions o;
        o.name = "soak";
        // Small ring and budget: the overflow list and budget cut-offs are part of the soak.
        o.microtaskRingCapacity = 256;
        o.microtaskBudget = 256;
        o.errorHook = [this](std::exception_ptr e, CallbackKind k) { onError(e, k); };
        return o;
    }

    // ---- units ----
    libloop::Task task(const Unit& u) {
        return [u] {
            u.soak->runUnit(u);
            if (u.kind == kProducerTask && !u.throws && u.soak->injectNow(Inject::DoubleRun))
                u.soak->runUnit(u); // the fault the ledger must catch
        };
    }
    bool injectNow(Inject which) {
        return inject_ == which && !injected_.exchange(true, std::memory_order_relaxed);
    }
    bool issue(Ledger::Cache& cache, Rng& rng, Kind kind, std::uint8_t depth, Unit& u);
    void conclude(Ledger::Cache& cache, const Unit& u, Status st);
    void runUnit(const Unit& u);
    void spawn(std::uint8_t depth);
    Status scheduleUnitTimer(const Unit& u, Rng& rng);
    void cancelOne(Ledger::Cache& cache, Rng& rng);
    void onError(std::exception_ptr e, CallbackKind k);

    // ---- fds ----
    void openPair();
    void onFd(const std::shared_ptr<Pair>& p, int fd, unsigned ev);
    void halfClose(const std::shared_ptr<Pair>& p);
    void closePair(std::shared_ptr<Pair> p, bool byEof);
    void writeSome(Rng& rng);

    // ---- loop-thread drivers ----
    void arm(Driver which);
    void onDriver(Driver which);
    void storm();
    void manageFds();
    void tick();
    void printWindow(int i);

    // ---- other threads ----
    void controller();
    void producer(int index);
    bool act(Rng& rng, Ledger::Cache& cache);
    void flipper();
    void racer();

    int verdict(const libloop::Result<libloop::ShutdownReport>& shut, Status runStatus);

    const soak::Options opt_;
    const Inject inject_;
    const std::int64_t durationNs_;
    const std::int64_t startNs_;
    soak::Failures failures_;
    Ledger ledger_;
    soak::KindCounters stats_[kKindCount];
    std::atomic<std::uint64_t> caught_[4] = {}; // by CallbackKind
    std::atomic<std::uint64_t> fdThrown_{0};
    std::atomic<bool> injected_{false};
    CancelPool cancelPool_;
    std::atomic<std::uint64_t> cancelTrue_{0}, cancelFalse_{0};

    // fds shared with writers
    std::mutex pairsMu_;
    std::vector<std::shared_ptr<Pair>> writablePairs_; // pairsMu_
    std::atomic<std::uint64_t> fdWrites_{0}, fdWriteFull_{0}, fdWriteLate_{0};

    // loop thread only
    Ledger::Cache loopCache_;
    Rng loopRng_;
    std::vector<std::shared_ptr<Pair>> pairs_; // every pair whose fds are open
    std::uint64_t nextPairId_ = 0, pairsOpened_ = 0, pairsClosedAbrupt_ = 0, pairsClosedEof_ = 0,
                  pairsHalfClosed_ = 0, registerConflicts_ = 0, fdCallbacks_ = 0,
                  writableEvents_ = 0, modifies_ = 0;
    std::uint64_t bytesWritten_ = 0, bytesRead_ = 0, bytesDrained_ = 0;
    int fdTarget_ = 0;
    std::uint64_t managerTicks_ = 0;
    struct LocalTimer {
        TimerId id;
        std::uint32_t slot;
    };
    std::vector<LocalTimer> recentLoopTimers_;
    std::uint64_t rescheduleOk_ = 0, rescheduleNotFound_ = 0;
    TimerId drivers_[kDriverCount] = {};
    std::uint64_t driverRuns_ = 0;
    bool draining_ = false;
    int printedWindows_ = 0;
    std::uint64_t windowUnits_[soak::LatencyWindows::kWindows + 1] = {};
    std::uint64_t peakExternal_ = 0, peakInternal_ = 0, peakRing_ = 0, peakOverflow_ = 0,
                  peakHeap_ = 0;
    soak::LatencyWindows taskLat_, microLat_, timerLat_;

    // other threads
    std::atomic<bool> stopProducers_{false};
    std::atomic<std::uint64_t> flips_[3] = {}; // by FastPathMode
    std::atomic<std::uint64_t> forcedRefused_{0};
    std::atomic<long> lastRssKiB_{0};
    soak::RssTracker rss_; // controller thread, read after it is joined (warm-up: any thread)
    soak::WarmupSaturation saturation_{rss_.warmupSeconds()}; // loop thread
    std::atomic<std::uint64_t> racerAccepted_{0};

    // Last: destroyed first, while everything its callbacks reach is still alive.
    libloop::Loop loop_;
};

// ---------------------------------------------------------------------------------------------
// Units

bool Soak::issue(Ledger::Cache& cache, Rng& rng, Kind kind, std::uint8_t depth, Unit& u) {
    std::uint32_t slot = 0;
    std::uint64_t uid = 0;
    if (!ledger_.issue(cache, kind, slot, uid)) {
        stats_[kind].noSlot.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    u = Unit{this, uid, slot, kind, depth, rng.chance(kThrowPerMille)};
    ledger_.setStamp(slot, soak::monoNs());
    return true;
}

// After the submission: accepted, or refused and then it must never run.
void Soak::conclude(Ledger::Cache& cache, const Unit& u, Status st) {
    if (st) {
        stats_[u.kind].accepted.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    stats_[u.kind].refused.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t found = 0;
    if (!ledger_.settle(&cache, u.slot, u.uid, Ledger::Refused, found))
        failures_.add(std::string(kKindNames[u.kind]) + ": " +
                      Ledger::describe(u.uid, Ledger::Refused, found));
    // NotAccepting is the only refusal this workload can meet (shutdown has begun).
    if (st.code() != Errc::NotAccepting)
        failures_.add(format("%s: unexpected refusal %s (errno %d)", kKindNames[u.kind],
                             st.message(), st.sysErrno()));
}

void Soak::runUnit(const Unit& u) {
    const std::int64_t stamp = ledger_.stamp(u.slot); // before settle: the slot is reused after
    std::uint64_t found = 0;
    if (!ledger_.settle(&loopCache_, u.slot, u.uid, Ledger::Ran, found)) {
        failures_.add(std::string(kKindNames[u.kind]) + ": " +
                      Ledger::describe(u.uid, Ledger::Ran, found));
        return;
    }
    stats_[u.kind].ran.fetch_add(1, std::memory_order_relaxed);
    const std::int64_t now = soak::monoNs();
    ++windowUnits_[taskLat_.windowAt(now)];
    if (u.kind == kProducerTask)
        taskLat_.record(now, now - stamp);
    else if (u.kind == kProducerMicrotask)
        microLat_.record(now, now - stamp);
    else if (isTimer(u.kind))
        timerLat_.record(now, now - stamp); // stamp = deadline
    if (u.depth < kMaxSpawnDepth) {
        if (loopRng_.chance(300))
            spawn(std::uint8_t(u.depth + 1));
        if (loopRng_.chance(60))
            spawn(std::uint8_t(u.depth + 1));
    }
    if (u.throws) {
        stats_[u.kind].thrown.fetch_add(1, std::memory_order_relaxed);
        throw SoakError("a unit throws on purpose");
    }
}

// [loop thread] Units queue units through every loop-thread entry point.
void Soak::spawn(std::uint8_t depth) {
    const std::uint64_t r = loopRng_.below(100);
    const Kind kind = r < 35   ? kLoopMicrotask
                      : r < 55 ? kInternalTask
                      : r < 75 ? kImmediate
                      : r < 88 ? kLoopTask
                               : kLoopTimer;
    Unit u{};
    if (!issue(loopCache_, loopRng_, kind, depth, u))
        return;
    Status st;
    switch (kind) {
    case kLoopMicrotask:
        st = loop_.queueMicrotask(task(u));
        break;
    case kInternalTask:
        st = loop_.submitInternal(task(u));
        break;
    case kImmediate:
        st = loop_.queueImmediate(task(u));
        break;
    case kLoopTask:
        st = loop_.submit(task(u));
        break;
    default:
        st = scheduleUnitTimer(u, loopRng_);
        break;
    }
    conclude(loopCache_, u, st);
}

// [any thread] A timer due in 0-15 ms (a tenth due at once, a twentieth with a negative delay);
// about a third become cancel candidates.
Status Soak::scheduleUnitTimer(const Unit& u, Rng& rng) {
    const std::uint64_t r = rng.below(100);
    const std::int64_t delayNs = r < 10   ? 0
                                 : r < 15 ? -1'000'000
                                          : std::int64_t(rng.below(15'000)) * 1000;
    // The deadline is the stamp: it must be in place before the timer can run.
    ledger_.setStamp(u.slot, soak::monoNs() + std::max<std::int64_t>(delayNs, 0));
    const auto res = loop_.scheduleTimer(Duration(delayNs), task(u));
    if (!res)
        return res.status();
    if (rng.chance(350))
        cancelPool_.push(CancelEntry{res.value(), u.uid, u.slot, u.kind}, rng);
    if (u.kind == kLoopTimer) {
        if (recentLoopTimers_.size() < 64)
            recentLoopTimers_.push_back({res.value(), u.slot});
        else
            recentLoopTimers_[rng.below(64)] = {res.value(), u.slot};
    }
    return {};
}

// [any thread] cancelTimer() == true means the callback never starts: the unit leaves the
// ledger as Cancelled, and a run before or after that is caught.
void Soak::cancelOne(Ledger::Cache& cache, Rng& rng) {
    CancelEntry e{};
    if (!cancelPool_.take(rng, e))
        return;
    if (!loop_.cancelTimer(e.id)) {
        cancelFalse_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    cancelTrue_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t found = 0;
    if (!ledger_.settle(&cache, e.slot, e.uid, Ledger::Cancelled, found)) {
        failures_.add(std::string(kKindNames[e.kind]) + ": cancelTimer answered true, but " +
                      Ledger::describe(e.uid, Ledger::Cancelled, found));
        return;
    }
    stats_[e.kind].cancelled.fetch_add(1, std::memory_order_relaxed);
    if (injectNow(Inject::CancelledRun))
        runUnit(Unit{this, e.uid, e.slot, e.kind, kMaxSpawnDepth, false}); // the fault to catch
}

// [loop thread] Every exception a callback let escape. Only SoakError is ever thrown.
void Soak::onError(std::exception_ptr e, CallbackKind k) {
    try {
        std::rethrow_exception(e);
    } catch (const SoakError&) {
        caught_[int(k)].fetch_add(1, std::memory_order_relaxed);
    } catch (...) {
        failures_.add(format("the error hook got an exception nobody threw (%s callback)",
                             libloop::callbackKindName(k)));
    }
}

// ---------------------------------------------------------------------------------------------
// fds (loop thread, except writeSome)

void Soak::openPair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        failures_.add(format("socketpair failed: errno %d", errno));
        return;
    }
    auto p = std::make_shared<Pair>();
    p->id = ++nextPairId_;
    p->rd = sv[0];
    p->wr = sv[1];
    p->events = FdEvent::Readable;
    const Status s = loop_.registerFd(p->rd, FdEvent::Readable,
                                      [this, p](int fd, unsigned ev) { onFd(p, fd, ev); });
    if (!s) {
        // Forced fast path refuses fds: expected while the flipper holds it there.
        if (s == Errc::FastPathConflict)
            ++registerConflicts_;
        else
            failures_.add(
                format("registerFd: unexpected %s (errno %d)", s.message(), s.sysErrno()));
        ::close(sv[0]);
        ::close(sv[1]);
        return;
    }
    ++pairsOpened_;
    pairs_.push_back(p);
    std::lock_guard lock(pairsMu_);
    writablePairs_.push_back(std::move(p));
}

void Soak::onFd(const std::shared_ptr<Pair>& p, int fd, unsigned ev) {
    ++fdCallbacks_;
    if (fd != p->rd)
        failures_.add(format("fd callback of pair %llu got fd %d, registered %d",
                             (unsigned long long)p->id, fd, p->rd));
    if (ev & FdEvent::Writable) {
        // Writable on a socket is always ready: switch it off again at once (modifyFd from
        // inside the fd's own callback).
        ++writableEvents_;
        const unsigned want = p->events & ~FdEvent::Writable;
        if (const Status s = loop_.modifyFd(fd, want); s)
            p->events = want;
        else
            failures_.add(format("modifyFd in callback: %s", s.message()));
    }
    if (ev & (FdEvent::Readable | FdEvent::HangUp | FdEvent::Error)) {
        // At most 16 KiB per callback: level-triggered readiness must bring the rest.
        char buf[8192];
        bool eof = false;
        for (int i = 0; i < 2; ++i) {
            const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) {
                p->readBytes += std::uint64_t(r);
                continue;
            }
            eof = r == 0;
            break;
        }
        if (eof) {
            if (!p->halfClosed)
                failures_.add(format("pair %llu: EOF although its writer was never shut down",
                                     (unsigned long long)p->id));
            closePair(p, true); // unregisters the fd from inside its own callback
        }
    }
    if (loopRng_.chance(kThrowPerMille)) {
        fdThrown_.fetch_add(1, std::memory_order_relaxed);
        throw SoakError("an fd callback throws on purpose");
    }
}

// The writer side goes away: the reader must still get every byte, then EOF, then close.
void Soak::halfClose(const std::shared_ptr<Pair>& p) {
    {
        std::lock_guard lock(pairsMu_);
        std::erase(writablePairs_, p);
    }
    {
        std::lock_guard g(p->m);
        p->writable = false;
        ::shutdown(p->wr, SHUT_WR);
    }
    p->halfClosed = true;
    ++pairsHalfClosed_;
    if (!(p->events & FdEvent::Readable)) {
        if (const Status s = loop_.modifyFd(p->rd, FdEvent::Readable); s)
            p->events = FdEvent::Readable;
        else
            failures_.add(format("modifyFd before half-close: %s", s.message()));
    }
}

// By value: the caller's reference may point into pairs_, which this erases from.
void Soak::closePair(std::shared_ptr<Pair> p, bool byEof) {
    // NotFound once the loop is closed (close() already forgot every fd).
    if (const Status s = loop_.unregisterFd(p->rd); !s && !(s == Errc::NotFound))
        failures_.add(format("unregisterFd: %s", s.message()));
    {
        std::lock_guard lock(pairsMu_);
        std::erase(writablePairs_, p);
    }
    std::uint64_t drained = 0, written = 0;
    {
        std::lock_guard g(p->m);
        p->writable = false;
        char buf[8192];
        for (;;) {
            const ssize_t r = ::recv(p->rd, buf, sizeof buf, MSG_DONTWAIT);
            if (r <= 0)
                break;
            drained += std::uint64_t(r);
        }
        written = p->written;
        ::close(p->rd);
        ::close(p->wr);
    }
    if (written != p->readBytes + drained)
        failures_.add(format("pair %llu: %llu bytes written, but %llu read + %llu left at close",
                             (unsigned long long)p->id, (unsigned long long)written,
                             (unsigned long long)p->readBytes, (unsigned long long)drained));
    bytesWritten_ += written;
    bytesRead_ += p->readBytes;
    bytesDrained_ += drained;
    ++(byEof ? pairsClosedEof_ : pairsClosedAbrupt_);
    std::erase(pairs_, p);
}

// [any thread]
void Soak::writeSome(Rng& rng) {
    std::shared_ptr<Pair> p;
    {
        std::lock_guard lock(pairsMu_);
        if (writablePairs_.empty())
            return;
        p = writablePairs_[rng.below(writablePairs_.size())];
    }
    static const char zeros[512] = {};
    const std::size_t n = 1 + rng.below(sizeof zeros);
    std::lock_guard g(p->m);
    if (!p->writable) {
        fdWriteLate_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const ssize_t w = ::send(p->wr, zeros, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
        p->written += std::uint64_t(w);
        fdWrites_.fetch_add(1, std::memory_order_relaxed);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        fdWriteFull_.fetch_add(1, std::memory_order_relaxed); // the reader is paused or behind
    } else {
        failures_.add(format("send on pair %llu: errno %d", (unsigned long long)p->id, errno));
    }
}

// ---------------------------------------------------------------------------------------------
// Loop-thread drivers: timers that re-arm themselves until the drain begins.

void Soak::arm(Driver which) {
    if (draining_)
        return;
    const Duration d =
        which == kStorm       ? Duration(std::chrono::microseconds(500 + loopRng_.below(2500)))
        : which == kFdManager ? Duration(std::chrono::milliseconds(2 + loopRng_.below(6)))
                              : Duration(50ms);
    const auto r = loop_.scheduleTimer(d, [this, which] { onDriver(which); });
    if (r)
        drivers_[which] = r.value();
    else
        failures_.add(format("driver timer refused: %s", r.status().message()));
}

void Soak::onDriver(Driver which) {
    ++driverRuns_;
    drivers_[which] = {};
    switch (which) {
    case kStorm:
        storm();
        break;
    case kFdManager:
        manageFds();
        break;
    default:
        tick();
        break;
    }
    arm(which);
}

// Up to 24 timers at once, cancels of any recent timer (from any thread), and reschedules.
void Soak::storm() {
    const int n = int(loopRng_.below(24));
    for (int i = 0; i < n; ++i) {
        Unit u{};
        if (!issue(loopCache_, loopRng_, kLoopTimer, 1, u))
            break;
        conclude(loopCache_, u, scheduleUnitTimer(u, loopRng_));
    }
    for (int i = int(loopRng_.below(8)); i > 0; --i)
        cancelOne(loopCache_, loopRng_);
    for (int i = 0; i < 2 && !recentLoopTimers_.empty(); ++i) {
        const LocalTimer t = recentLoopTimers_[loopRng_.below(recentLoopTimers_.size())];
        const std::int64_t deadline = soak::monoNs() + std::int64_t(loopRng_.below(10'000)) * 1000;
        const Status s = loop_.rescheduleTimer(t.id, libloop::TimePoint(Duration(deadline)));
        if (s) {
            ++rescheduleOk_; // still pending, so its slot is still its own: move the stamp too
            ledger_.setStamp(t.slot, deadline);
        } else if (s == Errc::NotFound) {
            ++rescheduleNotFound_; // already ran or cancelled
        } else {
            failures_.add(format("rescheduleTimer: unexpected %s", s.message()));
        }
    }
}

// Pairs come and go around a target that changes every ~100 ticks (0 included, so Forced can
// succeed); some are paused (events 0), some watch Writable or Priority for a while.
void Soak::manageFds() {
    if (managerTicks_++ % 100 == 0) {
        static constexpr int kTargets[] = {0, 0, 1, 3, 6, 12};
        fdTarget_ = kTargets[loopRng_.below(std::size(kTargets))];
    }
    if (int(pairs_.size()) < fdTarget_) {
        openPair();
    } else if (int(pairs_.size()) > fdTarget_) {
        const std::shared_ptr<Pair> p = pairs_[loopRng_.below(pairs_.size())];
        if (!p->halfClosed && loopRng_.chance(400))
            halfClose(p);
        else
            closePair(p, false);
    }
    if (!pairs_.empty() && loopRng_.chance(300)) {
        const std::shared_ptr<Pair>& p = pairs_[loopRng_.below(pairs_.size())];
        if (!p->halfClosed) {
            const std::uint64_t r = loopRng_.below(100);
            const unsigned ev = r < 55   ? FdEvent::Readable
                                : r < 70 ? 0u
                                : r < 85 ? FdEvent::Readable | FdEvent::Writable
                                         : FdEvent::Readable | FdEvent::Priority;
            if (const Status s = loop_.modifyFd(p->rd, ev); s) {
                p->events = ev;
                ++modifies_;
            } else {
                failures_.add(format("modifyFd: unexpected %s", s.message()));
            }
        }
    }
    if (loopRng_.chance(200))
        writeSome(loopRng_);
}

void Soak::tick() {
    saturation_.maybeStall(double(soak::monoNs() - startNs_) / 1e9, ledger_);
    const libloop::MetricsSnapshot s = loop_.snapshot();
    peakExternal_ = std::max(peakExternal_, s.externalQueueMax);
    peakInternal_ = std::max(peakInternal_, s.internalQueueMax);
    peakRing_ = std::max(peakRing_, s.microtaskRingMax);
    peakOverflow_ = std::max(peakOverflow_, s.microtaskOverflowMax);
    peakHeap_ = std::max(peakHeap_, s.timerHeapMax);
    const int w = taskLat_.windowAt(soak::monoNs());
    while (printedWindows_ < w && printedWindows_ < soak::LatencyWindows::kWindows)
        printWindow(printedWindows_++);
}

void Soak::printWindow(int i) {
    auto pp = [&](const soak::LatencyWindows& l) {
        return formatNs(l.window(i).quantile(0.5)) + " / " + formatNs(l.window(i).quantile(0.99));
    };
    std::printf("[loop-soak] window %d/%d: %llu units | task %s | microtask %s | timer %s | RSS "
                "%s\n",
                i + 1, soak::LatencyWindows::kWindows, (unsigned long long)windowUnits_[i],
                pp(taskLat_).c_str(), pp(microLat_).c_str(), pp(timerLat_).c_str(),
                soak::formatKiB(lastRssKiB_.load(std::memory_order_relaxed)).c_str());
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// Other threads

void Soak::controller() {
    std::vector<std::thread> producers;
    for (int i = 0; i < opt_.producers; ++i)
        producers.emplace_back([this, i] { producer(i); });
    std::thread flip([this] { flipper(); });
    double nextSample = 0;
    for (;;) {
        const double t = double(soak::monoNs() - startNs_) / 1e9;
        if (t >= opt_.seconds || t >= nextSample) {
            rss_.sample(t);
            lastRssKiB_.store(rss_.samples().back().kib, std::memory_order_relaxed);
            nextSample += 1;
        }
        if (t >= opt_.seconds)
            break; // the last sample is the "end" one, taken before the load stops
        std::this_thread::sleep_for(
            std::chrono::duration<double>(std::min({0.05, nextSample - t, opt_.seconds - t})));
    }
    stopProducers_.store(true, std::memory_order_relaxed);
    for (auto& t : producers)
        t.join();
    flip.join();
    loop_.stop();
}

void Soak::producer(int index) {
    Rng rng(opt_.seed * 1000003 + std::uint64_t(index) + 1);
    Ledger::Cache cache;
    while (!stopProducers_.load(std::memory_order_relaxed)) {
        // A phase of 5-155 ms: a burst (as fast as it can), a trickle, or a pause.
        const std::uint64_t mode = rng.below(100);
        const std::int64_t until = soak::monoNs() + std::int64_t(5 + rng.below(150)) * 1'000'000;
        while (!stopProducers_.load(std::memory_order_relaxed) && soak::monoNs() < until) {
            if (mode >= 80) {
                std::this_thread::sleep_for(1ms);
                continue;
            }
            const int batch = int(mode < 35 ? 16 + rng.below(112) : 1 + rng.below(8));
            bool backOff = false;
            for (int b = 0; b < batch && !backOff; ++b)
                backOff = !act(rng, cache);
            if (backOff)
                std::this_thread::sleep_for(200us); // every ledger slot is outstanding
            else if (mode >= 35)
                std::this_thread::sleep_for(std::chrono::microseconds(50 + rng.below(450)));
            else
                std::this_thread::yield();
        }
    }
    ledger_.flush(cache);
}

// One producer action. False when the ledger has no free slot.
bool Soak::act(Rng& rng, Ledger::Cache& cache) {
    const std::uint64_t r = rng.below(100);
    if (r >= 94) {
        writeSome(rng);
        return true;
    }
    if (r >= 88) {
        cancelOne(cache, rng);
        return true;
    }
    const Kind kind = r < 45 ? kProducerTask : r < 75 ? kProducerMicrotask : kProducerTimer;
    Unit u{};
    if (!issue(cache, rng, kind, 0, u))
        return false;
    if (kind == kProducerTask && injectNow(Inject::Lose)) {
        // Counted as accepted, never handed to the loop: the loss the check must see.
        stats_[kind].accepted.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    const Status st = kind == kProducerTask        ? loop_.submit(task(u))
                      : kind == kProducerMicrotask ? loop_.queueMicrotask(task(u))
                                                   : scheduleUnitTimer(u, rng);
    conclude(cache, u, st);
    return true;
}

void Soak::flipper() {
    Rng rng(opt_.seed * 31 + 7);
    while (!stopProducers_.load(std::memory_order_relaxed)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng.below(25)));
        const std::uint64_t r = rng.below(100);
        const FastPathMode m = r < 45   ? FastPathMode::Auto
                               : r < 80 ? FastPathMode::Disabled
                                        : FastPathMode::Forced;
        const Status s = loop_.setFastPathMode(m);
        if (s)
            flips_[int(m)].fetch_add(1, std::memory_order_relaxed);
        else if (m == FastPathMode::Forced && s == Errc::FastPathConflict)
            forcedRefused_.fetch_add(1, std::memory_order_relaxed); // fds are registered
        else
            failures_.add(format("setFastPathMode(%s): unexpected %s", libloop::fastPathModeName(m),
                                 s.message()));
    }
}

// Submits until each of its three kinds has been refused once: the first refusals come from
// the shutdown() the loop thread starts after kRacerQuota acceptances.
void Soak::racer() {
    Rng rng(opt_.seed * 131 + 3);
    Ledger::Cache cache;
    bool refused[3] = {};
    while (!(refused[0] && refused[1] && refused[2])) {
        if (rng.chance(50)) {
            cancelOne(cache, rng);
            continue;
        }
        const int which = int(rng.below(3));
        if (refused[which])
            continue;
        const Kind kind = which == 0 ? kRacerTask : which == 1 ? kRacerMicrotask : kRacerTimer;
        Unit u{};
        if (!issue(cache, rng, kind, 1, u)) {
            std::this_thread::yield();
            continue;
        }
        const Status st = kind == kRacerTask        ? loop_.submit(task(u))
                          : kind == kRacerMicrotask ? loop_.queueMicrotask(task(u))
                                                    : scheduleUnitTimer(u, rng);
        if (st)
            racerAccepted_.fetch_add(1, std::memory_order_relaxed);
        else if (st == Errc::NotAccepting)
            refused[which] = true;
        conclude(cache, u, st);
    }
    ledger_.flush(cache);
}

// ---------------------------------------------------------------------------------------------

int Soak::run() {
    std::printf("[loop-soak] %.1f s, seed %llu, %d producers, shutdown %s%s%s\n", opt_.seconds,
                (unsigned long long)opt_.seed, opt_.producers,
                opt_.shutdownCancel ? "CancelPending" : "WaitForAll",
                opt_.inject.empty() ? "" : ", INJECTED FAULT: ", opt_.inject.c_str());
    std::fflush(stdout);
    for (int d = 0; d < kDriverCount; ++d)
        arm(Driver(d));
    std::thread ctl([this] { controller(); });
    const Status runStatus = loop_.run();
    ctl.join();

    // Drain: the drivers stop (no re-arming, the pending ones cancelled), so only units are
    // left in the timer heap; then the racer pushes work across the start of shutdown().
    draining_ = true;
    for (TimerId& id : drivers_)
        if (id)
            (void)loop_.cancelTimer(id);
    std::thread race([this] { racer(); });
    while (racerAccepted_.load(std::memory_order_relaxed) < kRacerQuota)
        (void)loop_.runOnce(Duration(1ms));
    const auto shut = loop_.shutdown(opt_.shutdownCancel ? libloop::ShutdownTimers::CancelPending
                                                         : libloop::ShutdownTimers::WaitForAll);
    race.join();
    while (!pairs_.empty())
        closePair(pairs_.back(), false);
    ledger_.flush(loopCache_);
    while (printedWindows_ < soak::LatencyWindows::kWindows)
        printWindow(printedWindows_++);
    return verdict(shut, runStatus);
}

int Soak::verdict(const libloop::Result<libloop::ShutdownReport>& shut, Status runStatus) {
    soak::Report rep;
    const libloop::MetricsSnapshot snap = loop_.snapshot();
    rep.line("==================== loop-soak report ====================");
    rep.line(format("run: %.1f s, seed %llu, %d producers, shutdown %s, ledger capacity %u%s%s",
                    opt_.seconds, (unsigned long long)opt_.seed, opt_.producers,
                    opt_.shutdownCancel ? "CancelPending" : "WaitForAll", ledger_.capacity(),
                    soak::kSanitizedMemory ? ", sanitizer build" : "",
                    opt_.inject.empty() ? "" : (", injected fault: " + opt_.inject).c_str()));
    if (!runStatus)
        rep.fail(format("run() answered %s", runStatus.message()));
    if (!shut)
        rep.fail(format("shutdown() answered %s", shut.status().message()));
    if (loop_.state() != libloop::LoopState::Closed)
        rep.fail(format("loop state after shutdown: %s", libloop::loopStateName(loop_.state())));
    const libloop::ShutdownReport sr = shut.value_or({});

    // Units still Issued: lost, or (CancelPending only) timers the shutdown released.
    std::uint64_t outstanding[kKindCount] = {};
    std::vector<std::string> lost;
    ledger_.forEachOutstanding([&](std::uint32_t, std::uint64_t uid, std::uint8_t tag) {
        ++outstanding[tag];
        if (!(opt_.shutdownCancel && isTimer(tag)) && lost.size() < 10)
            lost.push_back(format("unit %llu (%s)", (unsigned long long)uid, kKindNames[tag]));
    });

    rep.line("");
    rep.line("units                    accepted        ran  cancelled  shutdown-  refused  "
             "no-slot   thrown");
    rep.line("                                                         cancelled");
    std::uint64_t total[6] = {}, thrownBy[4] = {}, ranBy[4] = {}, shutdownCancelled = 0;
    for (int k = 0; k < kKindCount; ++k) {
        const auto& s = stats_[k];
        const std::uint64_t acc = s.accepted.load(), ran = s.ran.load(), can = s.cancelled.load(),
                            ref = s.refused.load(), ns = s.noSlot.load(), thr = s.thrown.load();
        const std::uint64_t atShutdown = opt_.shutdownCancel && isTimer(k) ? outstanding[k] : 0;
        shutdownCancelled += atShutdown;
        rep.line(format("  %-22s %10llu %10llu %10llu %10llu %8llu %8llu %8llu", kKindNames[k],
                        (unsigned long long)acc, (unsigned long long)ran, (unsigned long long)can,
                        (unsigned long long)atShutdown, (unsigned long long)ref,
                        (unsigned long long)ns, (unsigned long long)thr));
        const std::uint64_t row[6] = {acc, ran, can, ref, ns, thr};
        for (int i = 0; i < 6; ++i)
            total[i] += row[i];
        thrownBy[int(callbackKindOf(k))] += thr;
        ranBy[int(callbackKindOf(k))] += ran;
        if (acc != ran + can + atShutdown)
            rep.fail(format("%s: %llu accepted != %llu ran + %llu cancelled + %llu cancelled by "
                            "shutdown",
                            kKindNames[k], (unsigned long long)acc, (unsigned long long)ran,
                            (unsigned long long)can, (unsigned long long)atShutdown));
    }
    rep.line(format("  %-22s %10llu %10llu %10llu %10llu %8llu %8llu %8llu", "total",
                    (unsigned long long)total[0], (unsigned long long)total[1],
                    (unsigned long long)total[2], (unsigned long long)shutdownCancelled,
                    (unsigned long long)total[3], (unsigned long long)total[4],
                    (unsigned long long)total[5]));
    rep.line(format("  ledger: %llu units issued; no-slot = back-pressure (all %u slots "
                    "outstanding), not a failure",
                    (unsigned long long)ledger_.issued(), ledger_.capacity()));
    rep.line("  refused = NotAccepting once shutdown() began (loop submit() and timers during the "
             "drain, the racer): expected, and the ledger proves none of them ran");

    // Exactly once.
    const std::uint64_t violations = failures_.count();
    for (const std::string& m : failures_.messages())
        rep.fail(m);
    if (violations > 20)
        rep.fail(format("... and %llu more", (unsigned long long)(violations - 20)));
    for (const std::string& m : lost)
        rep.fail("lost: " + m + " was accepted and neither ran nor was cancelled");
    std::uint64_t lostCount = 0;
    for (int k = 0; k < kKindCount; ++k)
        if (!(opt_.shutdownCancel && isTimer(k)))
            lostCount += outstanding[k];
    if (lostCount > lost.size())
        rep.fail(format("... %llu lost units in all", (unsigned long long)lostCount));
    if (opt_.shutdownCancel && shutdownCancelled != sr.timersCancelled)
        rep.fail(format("shutdown reported %llu timers cancelled, the ledger has %llu pending",
                        (unsigned long long)sr.timersCancelled,
                        (unsigned long long)shutdownCancelled));
    rep.line(format("  shutdown(): %llu callbacks run by the drain, %llu timers cancelled; racer "
                    "had %llu units accepted",
                    (unsigned long long)sr.tasksRun, (unsigned long long)sr.timersCancelled,
                    (unsigned long long)racerAccepted_.load()));

    // The loop's own counters agree with ours (drivers are timers too).
    const std::uint64_t ourTasks = ranBy[int(CallbackKind::Task)];
    const std::uint64_t ourMicro = ranBy[int(CallbackKind::Microtask)];
    const std::uint64_t ourTimers = ranBy[int(CallbackKind::Timer)] + driverRuns_;
    if (snap.tasksRun != ourTasks || snap.microtasksRun != ourMicro ||
        snap.timersRun != ourTimers || snap.fdCallbacksRun != fdCallbacks_)
        rep.fail(format("loop counters (tasks %llu, microtasks %llu, timers %llu, fd %llu) != "
                        "ours (%llu, %llu, %llu incl. %llu driver runs, %llu)",
                        (unsigned long long)snap.tasksRun, (unsigned long long)snap.microtasksRun,
                        (unsigned long long)snap.timersRun, (unsigned long long)snap.fdCallbacksRun,
                        (unsigned long long)ourTasks, (unsigned long long)ourMicro,
                        (unsigned long long)ourTimers, (unsigned long long)driverRuns_,
                        (unsigned long long)fdCallbacks_));

    // Errors.
    thrownBy[int(CallbackKind::Fd)] = fdThrown_.load();
    rep.line("");
    std::string errs = "errors thrown / caught by the hook:";
    std::uint64_t caughtTotal = 0;
    for (int k = 0; k < 4; ++k) {
        const std::uint64_t c = caught_[k].load();
        caughtTotal += c;
        errs += format(" %s %llu/%llu", libloop::callbackKindName(CallbackKind(k)),
                       (unsigned long long)thrownBy[k], (unsigned long long)c);
        if (c != thrownBy[k])
            rep.fail(format("%s callbacks: %llu threw, the error hook saw %llu",
                            libloop::callbackKindName(CallbackKind(k)),
                            (unsigned long long)thrownBy[k], (unsigned long long)c));
    }
    rep.line(errs);
    if (snap.callbackErrors != caughtTotal)
        rep.fail(format("loop counted %llu callback errors, the hook saw %llu",
                        (unsigned long long)snap.callbackErrors, (unsigned long long)caughtTotal));

    // Timers, fds, fast path.
    rep.line(format("timers: cancelTimer true %llu / false %llu; rescheduleTimer ok %llu / "
                    "NotFound %llu; driver runs %llu",
                    (unsigned long long)cancelTrue_.load(), (unsigned long long)cancelFalse_.load(),
                    (unsigned long long)rescheduleOk_, (unsigned long long)rescheduleNotFound_,
                    (unsigned long long)driverRuns_));
    rep.line(format("fds: %llu pairs opened, %llu closed (%llu abrupt, %llu at EOF after "
                    "half-close of %llu), registerFd refused (Forced) %llu",
                    (unsigned long long)pairsOpened_,
                    (unsigned long long)(pairsClosedAbrupt_ + pairsClosedEof_),
                    (unsigned long long)pairsClosedAbrupt_, (unsigned long long)pairsClosedEof_,
                    (unsigned long long)pairsHalfClosed_, (unsigned long long)registerConflicts_));
    rep.line(format("     %llu fd callbacks, %llu writable events, %llu modifyFd; writes ok %llu "
                    "/ buffer full %llu / after close %llu",
                    (unsigned long long)fdCallbacks_, (unsigned long long)writableEvents_,
                    (unsigned long long)modifies_, (unsigned long long)fdWrites_.load(),
                    (unsigned long long)fdWriteFull_.load(),
                    (unsigned long long)fdWriteLate_.load()));
    rep.line(format("     bytes written %llu = read %llu + left unread at close %llu: %s",
                    (unsigned long long)bytesWritten_, (unsigned long long)bytesRead_,
                    (unsigned long long)bytesDrained_,
                    bytesWritten_ == bytesRead_ + bytesDrained_ ? "ok" : "MISMATCH"));
    if (bytesWritten_ != bytesRead_ + bytesDrained_)
        rep.fail("fd bytes: written != read + left at close");
    rep.line(format("fast path: set Auto %llu, Disabled %llu, Forced %llu; Forced refused "
                    "(FastPathConflict) %llu; loop transitions %llu",
                    (unsigned long long)flips_[int(FastPathMode::Auto)].load(),
                    (unsigned long long)flips_[int(FastPathMode::Disabled)].load(),
                    (unsigned long long)flips_[int(FastPathMode::Forced)].load(),
                    (unsigned long long)forcedRefused_.load(),
                    (unsigned long long)snap.fastPathTransitions));
    rep.line(format("loop: %llu iterations, %llu budget hits, %llu wake syscalls; peaks: external "
                    "queue %llu, internal %llu, ring %llu, overflow %llu, timer heap %llu",
                    (unsigned long long)snap.iterations,
                    (unsigned long long)snap.microtaskBudgetHits,
                    (unsigned long long)snap.wakeSyscalls, (unsigned long long)peakExternal_,
                    (unsigned long long)peakInternal_, (unsigned long long)peakRing_,
                    (unsigned long long)peakOverflow_, (unsigned long long)peakHeap_));
    rep.line(format("loop snapshot (cumulative, sampled): task latency p50 %s p99 %s max %s; "
                    "timer lateness p50 %s p99 %s max %s",
                    formatNs(double(snap.taskLatency.p50)).c_str(),
                    formatNs(double(snap.taskLatency.p99)).c_str(),
                    formatNs(double(snap.taskLatency.max)).c_str(),
                    formatNs(double(snap.timerLateness.p50)).c_str(),
                    formatNs(double(snap.timerLateness.p99)).c_str(),
                    formatNs(double(snap.timerLateness.max)).c_str()));

    // Coverage: a run that exercised nothing proves nothing (any machine gets past these).
    for (int k : {kProducerTask, kProducerMicrotask, kProducerTimer, kLoopTimer})
        if (stats_[k].ran.load() == 0)
            rep.fail(format("coverage: no %s ran", kKindNames[k]));

    // RSS.
    rep.line("");
    bool rssOk = true;
    rep.rssLines(rss_, rssOk);
    if (!rssOk)
        rep.fail("RSS grew past the bound after warm-up");
    std::string series = "  RSS samples (MiB):";
    const auto& samples = rss_.samples();
    const std::size_t step = std::max<std::size_t>(1, samples.size() / 20);
    for (std::size_t i = 0; i < samples.size(); i += step)
        series += format(" %.0fs=%.1f", samples[i].at, double(samples[i].kib) / 1024);
    rep.line(series);
    rep.line(format("  RSS after shutdown and teardown: %s; warm-up back-pressure episodes: %d, "
                    "peak %llu of %u units outstanding",
                    soak::formatKiB(soak::rssKiB()).c_str(), saturation_.episodes(),
                    (unsigned long long)saturation_.peakOutstanding(), ledger_.capacity()));

    // Latency.
    rep.line("");
    rep.line("latency per window (own measurement, every unit: submit -> start; timers: start - "
             "deadline)");
    const std::vector<const soak::LatencyWindows*> metrics = {&taskLat_, &microLat_, &timerLat_};
    rep.latencyTable(metrics);
    rep.line(format("latency drift (%s):", opt_.checkLatency
                                               ? "checked: --check-latency"
                                               : "info only; --check-latency to enforce"));
    if (rep.driftLines(metrics, opt_.checkLatency) && opt_.checkLatency)
        rep.fail("latency drifted upward (see drift lines)");
    return rep.finish(opt_.reportFile);
}

} // namespace

int main(int argc, char** argv) {
    soak::Options opt;
    if (!soak::parseOptions(argc, argv, opt, true))
        return 2;
    auto s = std::make_unique<Soak>(opt);
    return s->run();
}
