// The fuzz_loop harness's input language and its reference model of libloop::Loop.
//
// Input bytes decode into a Program: a Config (two bytes) and up to kMaxOps operations. An
// operation that hands the loop a callback (submit, queueMicrotask, scheduleTimer, registerFd ...)
// carries a script: a short list of operations the callback performs when it runs (nested up to
// kMaxScriptDepth). Callbacks are numbered in creation order (1, 2, ...) by both the model and the
// driver; every callback logs its number when it starts, every API call logs its result.
//
// The Model is the specification, written as plainly as possible: FIFO std::deques for the task
// queues, a std::deque for microtasks, a vector of timers searched linearly for the earliest
// (deadline, seq), and a vector for the kernel's epoll ready list. It predicts, for one operation,
// the exact log the real loop must produce and the observable state afterwards. It never looks at
// the real loop.
//
// Time is virtual: the loop runs on a ManualClock, so a wait that would end at a deadline moves
// the clock to it (the model does the same). A wait with no deadline would block in real time: the
// model detects it and answers Unsafe, and the driver then skips that operation (it is not run on
// the real loop). The same for operations that would run too many callbacks (kMaxCallbacksPerOp)
// or a run() that would not stop by itself (kMaxRunIterations).
//
// fds: kFds AF_UNIX stream socketpairs; the loop watches the "a" end, the harness writes to,
// half-closes or closes the peer "b" end; the loop-side end is read only by callbacks (or a
// harness read) and never written, so its readiness is exactly: Readable when bytes are pending or
// the peer shut its write side, HangUp (EPOLLRDHUP) on that half-close when Readable is watched,
// EPOLLHUP once the peer is closed, Writable always, Priority never. With several fds ready in
// one poll the callbacks run in the order of the kernel's ready list, which the model keeps
// (see Fd/rdl below): an item is appended when it becomes ready through a wake-up (data for
// Readable/Priority watchers, any shutdown/close of the peer for every watcher), on EPOLL_CTL_ADD
// or MOD when ready and not yet listed; a poll re-lists the reported items in order and drops the
// others; DEL and closing the fd unlist it. (Checked empirically on Linux 6.x.) An fd whose
// callback is running and that a nested poll reports leaves epoll (DEL) until that callback
// returns, then is added again (ADD).
//
// What the model pins down exactly: the order of every callback (timers by (deadline, seq) among
// the due ones scheduled before the timer phase; internal then external tasks and the check
// phase's immediates queued before their phase; fd callbacks in ready-list order; a checkpoint
// after each callback, FIFO, up to the budget); when fds are polled (only when the iteration ran
// something, has a zero timeout or immediates are queued; otherwise the wait is the poll); when
// and how far the virtual clock jumps; every API result (Status codes, sysErrno of fd calls,
// TimerId handles, cancelTimer's bool, runOnce's count, shutdown's report, WrongThread / Busy /
// NotAccepting / NullCallable / TooManyTimers / FastPathConflict ...); which timer ids are
// pending and their deadlines; the exact counters and gauges of snapshot() (internalQueue as the
// sample it is); the number of live callback objects, also inside the error hook (a throwing
// task/microtask/timer is destroyed before the hook runs, an fd callback stays registered).
//
// What it deliberately leaves out: latency histograms, rates, utilisation, busy/idle time and the
// max-since-last-snapshot gauges; fastPathActive/fastPathTransitions; setCheckpointHook, promises
// and rejection tracking, setErrorHook at run time; real concurrency (a helper-thread operation
// is joined before the next step, so cross-thread paths run but never race); waits without a
// deadline (skipped as Unsafe instead of being woken from another thread); fd errors (EPOLLERR),
// urgent data, the loop-side end writing, full socket buffers (kMaxPendingBytes), more than 256
// ready fds per poll; the fault-injection seam (faults.h).
//
// The deviations this harness found (struct Quirks) are fixed; each has a regression input in
// corpus/loop/regress-*. LIBLOOP_FUZZ_LOOP_QUIRKS=all (or a comma-separated list of the names in
// Quirks) makes the model expect the old behaviour, for runs against older revisions; by
// default the model is the documented behaviour. Set LIBLOOP_FUZZ_LOOP_PRINT=1 to print the trace
// of a passing input.
#pragma once

#include <libloop/loop.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <sys/epoll.h>
#include <vector>

namespace fuzzloop {

inline constexpr int kFds = 3;              // socketpairs per input
inline constexpr std::size_t kMaxOps = 200; // top-level operations per input
inline constexpr std::size_t kMaxTemplates = 96;
inline constexpr int kMaxScriptDepth = 3; // scripts within scripts
inline constexpr int kMaxNest = 4;        // runOnce/run calls active at once (top level too)
inline constexpr int kMaxRemote = 48;     // operations handed to the helper thread per input
inline constexpr int kMaxCallbacksPerOp = 400;
inline constexpr int kMaxRunIterations = 24;
inline constexpr std::int64_t kStartNs = 3'600'000'000'000; // ManualClock's default start (1 h)
// The harness writes to a peer only while fewer bytes than this are pending on the pair: every
// write is one skb charged to the peer's send buffer, and an unread pair would eventually make
// send() fail with EAGAIN (the model does not model socket buffer sizes).
inline constexpr std::int64_t kMaxPendingBytes = 64;

// ---- quirks: documented behaviour vs what the loop does (tolerated on request) ----
struct Quirks {
    // The task phase runs as many internal/external tasks (and the check phase as many
    // immediates) as were queued when it began, counted, not identified: with a nested runOnce
    // the outer phase then runs tasks queued after it began; and the external count is taken
    // after the internal tasks ran, so external tasks they submit run in the same phase.
    bool phaseSnapshot = false;
    // The timer phase stops at the first heap entry that is not eligible (scheduled during the
    // phase), even when older due timers sort after it (scheduleTimerAt / rescheduleTimer to a
    // deadline in the past from inside a timer callback).
    bool timerPhaseBreak = false;
    // scheduleTimer from another thread takes slots only from the slab's shared free list; slots
    // freed by the loop thread stay in its private cache, so with a small maxTimers a remote
    // schedule answers TooManyTimers while (almost) no timer is pending.
    bool remoteSlab = false;
    // A nested iteration (runOnce from inside an fd callback) that finds the same fd ready calls
    // its callback, which is moved out while it runs: an empty Function is invoked (a crash).
    // Not tolerable: under this quirk the model refuses (Unsafe) operations that reach it.
    bool fdReentry = false;
    // A timer whose deadline is far in the past (TimePoint::min()) overflows the lateness
    // metric (start - deadline, signed). Under this quirk such deadlines are refused (Unsafe).
    bool farPastDeadline = false;
    // A manual clock moved (by the loop's own auto-advance) to a deadline near INT64_MAX
    // overflows RateWindow::sample (now + window / 8, signed) at the next iteration. Under this
    // quirk such deadlines (other than INT64_MAX, "never") are refused (Unsafe).
    bool farFutureDeadline = false;
};

inline Quirks quirksFromEnv() {
    Quirks q;
    const char* env = std::getenv("LIBLOOP_FUZZ_LOOP_QUIRKS");
    if (!env)
        return q;
    const std::string s = env;
    const bool all = s == "all";
    auto has = [&](const char* name) { return all || s.find(name) != std::string::npos; };
    q.phaseSnapshot = has("phase-snapshot");
    q.timerPhaseBreak = has("timer-phase-break");
    q.remoteSlab = has("remote-slab");
    q.fdReentry = has("fd-reentry");
    q.farPastDeadline = has("far-past-deadline");
    q.farFutureDeadline = has("far-future-deadline");
    return q;
}

// ---- the input language ----
enum class K : std::uint8_t {
    Submit,         // submit(task)
    SubmitInternal, // submitInternal(task)
    Microtask,      // queueMicrotask(task)
    Immediate,      // queueImmediate(task)
    Timer,          // scheduleTimer(kDelays[a], task)
    TimerAt,        // scheduleTimerAt(absDeadline(a), task)
    Cancel,         // cancelTimer(handle(a))
    Reschedule,     // rescheduleTimer(handle(a), absDeadline(b))
    Deadline,       // timerDeadline(handle(a)) (logged)
    NullTask,       // one of the APIs with an empty callable (a)
    RegisterFd,     // registerFd(fd(a), events(b), callback reading per c)
    ModifyFd,       // modifyFd(fd(a), events(b))
    UnregisterFd,   // unregisterFd(fd(a))
    CloseFd,        // ::close the loop-side end of pair a (registered or not)
    PeerWrite,      // write 1 + b%4 bytes to the peer of pair a
    PeerShutWr,     // shutdown(peer, SHUT_WR)
    PeerClose,      // close the peer
    ReadFd,         // read up to b bytes (0: all) from the loop-side end of pair a
    SetFastPath,    // setFastPathMode(a % 3)
    Advance,        // clock.advance(kAdvances[a])
    RunOnce,        // runOnce(kTimeouts[a & 7], phases from a >> 3)
    Run,            // run() (until stop())
    Stop,           // stop()
    WakeUp,         // wakeUp()
    Shutdown,       // shutdown(a & 1 ? WaitForAll : CancelPending)
    Close,          // close()
    Throw,          // (scripts only) throw from the callback; the rest of the script is skipped
    State,          // state() (logged)
    Attach,         // attachToCurrentThread()
    Count
};

inline const char* kindName(K k) {
    static const char* const names[] = {"submit",
                                        "submitInternal",
                                        "queueMicrotask",
                                        "queueImmediate",
                                        "scheduleTimer",
                                        "scheduleTimerAt",
                                        "cancelTimer",
                                        "rescheduleTimer",
                                        "timerDeadline",
                                        "nullTask",
                                        "registerFd",
                                        "modifyFd",
                                        "unregisterFd",
                                        "closeFd",
                                        "peerWrite",
                                        "peerShutWr",
                                        "peerClose",
                                        "readFd",
                                        "setFastPathMode",
                                        "advance",
                                        "runOnce",
                                        "run",
                                        "stop",
                                        "wakeUp",
                                        "shutdown",
                                        "close",
                                        "throw",
                                        "state",
                                        "attachToCurrentThread"};
    static_assert(sizeof(names) / sizeof(names[0]) == std::size_t(K::Count));
    return names[std::size_t(k)];
}

inline bool createsCallback(K k) {
    return k == K::Submit || k == K::SubmitInternal || k == K::Microtask || k == K::Immediate ||
           k == K::Timer || k == K::TimerAt || k == K::RegisterFd;
}

struct Op {
    K k = K::Stop;
    bool remote = false; // performed on the helper thread (joined before going on)
    std::uint8_t a = 0, b = 0, c = 0;
    std::uint16_t tmpl = 0; // the script of the callback it creates (0: empty)
};

struct Config {
    std::uint32_t budget = 0, ringCapacity = 4, maxTimers = 8, sampleEvery = 16;
    libloop::FastPathMode fastPath = libloop::FastPathMode::Auto;
    bool metrics = true, hookThrows = false;
};

struct Program {
    Config cfg;
    std::vector<std::vector<Op>> tmpls{std::vector<Op>{}}; // tmpls[0]: the empty script
    std::vector<Op> ops;
};

// Parameter tables (nanoseconds of the virtual clock).
inline constexpr std::int64_t kDelays[] = {0, 1, 1, 2, 3, 5, 8, -1, -5, 1000, INT64_MAX};
inline constexpr std::int64_t kTimeoutForever = -1;
inline constexpr std::int64_t kTimeouts[8] = {
    0, 1, 2, 5, kTimeoutForever, kTimeoutForever, -3, INT64_MAX - 1};
inline constexpr std::int64_t kAdvances[8] = {0, 1, 2, 3, 5, 8, 1000, 1'000'000'000};
inline constexpr int kAbsCount = 14;

// An absolute deadline relative to `now` (selector % kAbsCount): small offsets (also in the
// past), the epoch, and the extremes.
inline std::int64_t absDeadline(std::uint8_t sel, std::int64_t now) {
    static constexpr std::int64_t offs[10] = {-3, -2, -1, 0, 0, 1, 2, 3, 5, 8};
    const int s = sel % kAbsCount;
    if (s < 10) { // saturating: the clock may stand near either end of the range
        const std::int64_t o = offs[s];
        if (o > 0 && now > INT64_MAX - o)
            return INT64_MAX;
        if (o < 0 && now < INT64_MIN - o)
            return INT64_MIN;
        return now + o;
    }
    if (s == 10)
        return 0;
    if (s == 11)
        return INT64_MIN;
    if (s == 12)
        return INT64_MAX;
    return INT64_MAX - 1;
}

inline unsigned phasesOf(std::uint8_t a) {
    const unsigned p = a >> 3;
    return ((p & 4) ? (p & 3) : unsigned(libloop::RunPhase::All)) |
           ((p & 8) ? libloop::RunFlag::ReturnOnWakeUp : 0u);
}

inline unsigned eventsOf(std::uint8_t b) {
    using namespace libloop::FdEvent;
    static constexpr unsigned valid[8] = {Readable,
                                          Writable,
                                          Readable | Writable,
                                          Priority,
                                          Readable | Priority,
                                          0,
                                          Readable | Writable | Priority,
                                          Writable | Priority};
    if (b & 0x80)
        return b & 0x3f; // raw bits: Error, HangUp and 1 << 5 are invalid
    return valid[b & 7];
}

// fd selector: the loop-side end of pair 0..kFds-1, then -1, then a number that is not open.
inline int fdIndexOf(std::uint8_t a) {
    return a % (kFds + 2);
}

inline std::int64_t deadlineAfter(std::int64_t now, std::int64_t delay) {
    if (delay <= 0)
        return now;
    if (delay > INT64_MAX - now)
        return INT64_MAX;
    return now + delay;
}

class Reader {
public:
    Reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
    bool more() const { return i_ < n_; }
    std::uint8_t next() { return i_ < n_ ? p_[i_++] : 0; }

private:
    const std::uint8_t* p_;
    std::size_t n_, i_ = 0;
};

std::uint16_t decodeScript(Reader& r, Program& P, int depth);

inline bool decodeOp(Reader& r, Program& P, int depth, Op& op) {
    const std::uint8_t x = r.next();
    op.remote = (x >> 5) == 7;
    unsigned kind = x & 31;
    if (kind >= unsigned(K::Count))
        kind = unsigned(K::RunOnce);
    op.k = K(kind);
    switch (op.k) {
    case K::Timer:
    case K::TimerAt:
    case K::Cancel:
    case K::Deadline:
    case K::NullTask:
    case K::UnregisterFd:
    case K::CloseFd:
    case K::PeerShutWr:
    case K::PeerClose:
    case K::SetFastPath:
    case K::Advance:
    case K::RunOnce:
    case K::Shutdown:
        op.a = r.next();
        break;
    case K::Reschedule:
    case K::ModifyFd:
    case K::PeerWrite:
    case K::ReadFd:
        op.a = r.next();
        op.b = r.next();
        break;
    case K::RegisterFd:
        op.a = r.next();
        op.b = r.next();
        op.c = r.next() % 3;
        break;
    default:
        break;
    }
    if (createsCallback(op.k))
        op.tmpl = decodeScript(r, P, depth + 1);
    return depth > 0 || op.k != K::Throw; // a top-level throw means nothing
}

inline std::uint16_t decodeScript(Reader& r, Program& P, int depth) {
    if (depth > kMaxScriptDepth || P.tmpls.size() >= kMaxTemplates)
        return 0;
    const unsigned len = r.next() % 4;
    std::vector<Op> script;
    for (unsigned i = 0; i < len; ++i) {
        Op op;
        if (decodeOp(r, P, depth, op))
            script.push_back(op);
    }
    if (script.empty())
        return 0;
    P.tmpls.push_back(std::move(script));
    return std::uint16_t(P.tmpls.size() - 1);
}

inline Program decode(const std::uint8_t* data, std::size_t size) {
    Reader r(data, size);
    Program P;
    const std::uint8_t c0 = r.next(), c1 = r.next();
    static constexpr std::uint32_t budgets[8] = {0, 1, 2, 3, 5, 8, 1024, 0};
    static constexpr std::uint32_t rings[4] = {1, 2, 4, 1024};
    static constexpr std::uint32_t maxTimers[8] = {1, 2, 3, 4, 6, 8, 16, 64};
    static constexpr libloop::FastPathMode modes[4] = {
        libloop::FastPathMode::Auto, libloop::FastPathMode::Auto, libloop::FastPathMode::Disabled,
        libloop::FastPathMode::Forced};
    P.cfg.budget = budgets[c0 & 7];
    P.cfg.ringCapacity = rings[(c0 >> 3) & 3];
    P.cfg.metrics = !(c0 & 0x20);
    P.cfg.sampleEvery = (c0 & 0x40) ? 1 : 16;
    P.cfg.hookThrows = c0 & 0x80;
    P.cfg.maxTimers = maxTimers[c1 & 7];
    P.cfg.fastPath = modes[(c1 >> 3) & 3];
    while (r.more() && P.ops.size() < kMaxOps) {
        Op op;
        if (decodeOp(r, P, 0, op))
            P.ops.push_back(op);
    }
    return P;
}

// ---- the log ----
enum class E : std::uint8_t {
    Run,   // a callback started: a = id, b = kind (CallbackKind)
    FdRun, // an fd callback started: a = id, b = pair, c = events
    Read,  // a read: a = pair, b = bytes (0: EOF, -1: error / nothing to read)
    Res,   // an API result: a = K, b = Errc, c, d = values
    Hook,  // the error hook: a = CallbackKind, b = live callbacks at that moment
    Skip,  // the harness did not perform an operation (nesting / helper-thread budget / overflow)
};

struct Ev {
    E t = E::Run;
    std::int64_t a = 0, b = 0, c = 0, d = 0;
    bool operator==(const Ev&) const = default;
};

inline std::string fdEventsName(std::int64_t ev) {
    using namespace libloop::FdEvent;
    std::string s;
    if (ev & Readable)
        s += "R";
    if (ev & Writable)
        s += "W";
    if (ev & Error)
        s += "E";
    if (ev & HangUp)
        s += "H";
    if (ev & Priority)
        s += "P";
    if (ev & ~std::int64_t(0x1f))
        s += "+" + std::to_string(ev & ~std::int64_t(0x1f));
    return s.empty() ? "0" : s;
}

inline std::string evText(const Ev& e) {
    static const char* const kinds[] = {"task", "microtask", "timer", "fd"};
    auto kind = [&](std::int64_t k) { return k >= 0 && k < 4 ? kinds[k] : "?"; };
    switch (e.t) {
    case E::Run:
        return "run #" + std::to_string(e.a) + " (" + kind(e.b) + ")";
    case E::FdRun:
        return "run #" + std::to_string(e.a) + " (fd, pair " + std::to_string(e.b) + ", events " +
               fdEventsName(e.c) + ")";
    case E::Read:
        return "read pair " + std::to_string(e.a) + " -> " + std::to_string(e.b);
    case E::Res:
        return std::string(kindName(K(e.a))) + " -> " +
               libloop::errcName(libloop::Errc(std::uint8_t(e.b))) + " " + std::to_string(e.c) +
               " " + std::to_string(e.d);
    case E::Hook:
        return std::string("errorHook(") + kind(e.a) + ") live=" + std::to_string(e.b);
    case E::Skip:
        return std::string("skipped ") + kindName(K(e.a));
    }
    return "?";
}

// Everything the driver compares after each top-level operation besides the log.
struct Observed {
    std::int64_t pendingTimers = 0, registeredFds = 0, state = 0, fastPathMode = 0, now = 0;
    std::int64_t isLoopThread = 0, heapSize = 0, tasksRun = 0, microtasksRun = 0, timersRun = 0;
    std::int64_t fdCallbacksRun = 0, callbackErrors = 0, iterations = 0, budgetHits = 0;
    std::int64_t externalQueue = 0, internalQueue = 0, ringUsed = 0, overflow = 0, ringCap = 0;
    std::int64_t snapRegisteredFds = 0, snapState = 0, wakeSyscalls = 0, live = 0;
    std::vector<std::int64_t> deadlines; // per handle: the deadline, or INT64_MIN for NotFound
    std::vector<std::int64_t> pending;   // per pair: FIONREAD of the loop-side end (-1: closed)
};

// Helper-thread or nesting refusal decided by the harness itself (both sides decide alike).
struct Unsafe {};

// ---- the model ----
class Model {
public:
    enum Thread { Main = 0, Worker = 1 };

    Model(const Program& p, const Quirks& q) : P_(&p), Q_(&q), cfg_(p.cfg) {
        mode_ = cfg_.fastPath;
        ringCap_ = 2;
        while (ringCap_ < cfg_.ringCapacity)
            ringCap_ *= 2;
    }

    std::vector<Ev> log;

    // One top-level operation. Throws Unsafe (and must then be discarded) when the real loop
    // would block in real time or the operation would not stay small.
    void top(const Op& op) {
        cbThisOp_ = 0;
        exec(op);
    }

    Observed observe() const {
        Observed o;
        for (const Tm& t : timers_)
            o.pendingTimers += t.st == Pending;
        o.registeredFds = nfds();
        o.state = std::int64_t(state_);
        o.fastPathMode = std::int64_t(mode_);
        o.now = clock_;
        o.isLoopThread = owner_ == Main;
        o.heapSize = heapSize();
        o.tasksRun = std::int64_t(tasksRun_);
        o.microtasksRun = std::int64_t(microRun_);
        o.timersRun = std::int64_t(timersRun_);
        o.fdCallbacksRun = std::int64_t(fdRun_);
        o.callbackErrors = std::int64_t(errors_);
        o.iterations = std::int64_t(iterations_);
        o.budgetHits = std::int64_t(budgetHits_);
        o.externalQueue = std::int64_t(externalQ_.size());
        // A sample, not a live count (unlike externalQueue): set at the start of every iteration,
        // after the internal task phase and by close(); submitInternal does not update it.
        o.internalQueue = std::int64_t(internalGauge_);
        o.ringUsed = std::int64_t(ringCnt_);
        o.overflow = std::int64_t(ovfCnt_);
        o.ringCap = std::int64_t(ringCap_);
        o.snapRegisteredFds = o.registeredFds;
        o.snapState = o.state;
        o.wakeSyscalls = 0; // nothing ever waits while another thread produces
        o.live = liveCount();
        for (const Tm& t : timers_)
            o.deadlines.push_back(t.st == Pending ? t.deadline : INT64_MIN);
        for (const Fd& f : fds_)
            o.pending.push_back(f.aOpen ? f.pending : -1);
        return o;
    }

private:
    enum TimerState : std::uint8_t { Pending, Running, CancelledRemote, Gone };
    struct Tm {
        int cb = 0;
        std::int64_t deadline = 0;
        std::uint64_t seq = 0;
        TimerState st = Pending;
        bool inHeap = false;
    };
    struct Item {
        int cb;
        std::uint64_t serial; // creation order across all queues (the phase snapshots)
    };
    struct Cb {
        std::uint16_t tmpl = 0;
        std::uint8_t kind = 0; // libloop::CallbackKind
        std::int8_t pair = -1; // fd callbacks
        std::uint8_t readMode = 0;
    };
    struct Fd {
        // the socketpair
        bool aOpen = true, bOpen = true, shutWr = false;
        std::int64_t pending = 0;
        // the loop's registration
        bool registered = false, inEpoll = false, cbPresent = false;
        bool suspended = false; // out of epoll while its callback runs (a nested poll saw it)
        unsigned events = 0;
        std::uint32_t gen = 0;
        int cb = 0;
        // the kernel's ready list
        bool linked = false;
    };
    struct Batch {
        int pair;
        std::uint32_t gen;
        std::uint32_t kev; // epoll events reported
    };

    const Program* P_;
    const Quirks* Q_;
    Config cfg_;
    std::int64_t clock_ = kStartNs;
    bool closed_ = false, accepting_ = true;
    libloop::LoopState state_ = libloop::LoopState::Idle;
    int depth_ = 0, runDepth_ = 0;
    bool stopReq_ = false, wakeReq_ = false;
    libloop::FastPathMode mode_;
    int owner_ = Main, cur_ = Main;

    std::vector<Cb> cbs_{Cb{}};
    std::vector<int> running_;
    std::deque<Item> internalQ_, externalQ_, immQ_;
    std::deque<int> micro_;
    std::uint64_t ringCnt_ = 0, ovfCnt_ = 0, ringCap_ = 2, serial_ = 0;
    std::vector<Tm> timers_;
    std::uint64_t nextSeq_ = 0;
    std::vector<int> remoteInserts_, remoteCancels_;
    std::uint32_t localFree_ = 0, sharedFree_ = 0;
    bool grown_ = false;
    std::array<Fd, kFds> fds_{};
    std::vector<int> rdl_;

    std::uint64_t iterations_ = 0, tasksRun_ = 0, microRun_ = 0, timersRun_ = 0, fdRun_ = 0;
    std::uint64_t errors_ = 0, budgetHits_ = 0, internalGauge_ = 0;
    int nest_ = 0, remoteLeft_ = kMaxRemote, cbThisOp_ = 0;

    // ---- helpers ----
    void emit(E t, std::int64_t a = 0, std::int64_t b = 0, std::int64_t c = 0, std::int64_t d = 0) {
        log.push_back(Ev{t, a, b, c, d});
    }
    void res(K k, libloop::Errc e, std::int64_t c = 0, std::int64_t d = 0) {
        emit(E::Res, std::int64_t(k), std::int64_t(e), c, d);
    }
    bool onLoop() const { return cur_ == owner_; }
    static bool counted(int id) { return id % 3 != 0; } // the driver's callables with a token
    std::uint64_t total() const { return tasksRun_ + microRun_ + timersRun_ + fdRun_; }
    std::int64_t nfds() const {
        std::int64_t n = 0;
        for (const Fd& f : fds_)
            n += f.registered;
        return n;
    }
    std::int64_t heapSize() const {
        std::int64_t n = 0;
        for (const Tm& t : timers_)
            n += t.inHeap;
        return n;
    }
    std::int64_t liveCount() const {
        std::int64_t n = 0;
        for (const Item& i : internalQ_)
            n += counted(i.cb);
        for (const Item& i : externalQ_)
            n += counted(i.cb);
        for (const Item& i : immQ_)
            n += counted(i.cb);
        for (int id : micro_)
            n += counted(id);
        for (const Tm& t : timers_)
            n += (t.st == Pending || t.st == CancelledRemote) && counted(t.cb);
        for (const Fd& f : fds_)
            n += f.registered && f.cbPresent && counted(f.cb);
        for (int id : running_)
            n += counted(id);
        return n;
    }
    int newCb(std::uint16_t tmpl, libloop::CallbackKind kind, int pair = -1,
              std::uint8_t readMode = 0) {
        Cb c;
        c.tmpl = tmpl;
        c.kind = std::uint8_t(kind);
        c.pair = std::int8_t(pair);
        c.readMode = readMode;
        cbs_.push_back(c);
        return int(cbs_.size() - 1);
    }
    void setState(libloop::LoopState s) {
        if (state_ != libloop::LoopState::ShuttingDown && state_ != libloop::LoopState::Closed)
            state_ = s;
    }
    void enter() {
        if (depth_++ == 0)
            setState(libloop::LoopState::Running);
    }
    void leave() {
        if (--depth_ == 0)
            setState(libloop::LoopState::Idle);
    }

    // ---- microtasks: FIFO; the ring/overflow split only for the gauges ----
    void pushMicro(int id) {
        micro_.push_back(id);
        if (ovfCnt_ != 0 || ringCnt_ == ringCap_)
            ++ovfCnt_;
        else
            ++ringCnt_;
    }
    int popMicro() {
        const int id = micro_.front();
        micro_.pop_front();
        if (ringCnt_ > 0)
            --ringCnt_;
        else
            --ovfCnt_;
        return id;
    }

    // ---- timers ----
    int heapMin() const { // the earliest (deadline, seq) in the heap, or -1
        int best = -1;
        for (std::size_t i = 0; i < timers_.size(); ++i) {
            const Tm& t = timers_[i];
            if (!t.inHeap)
                continue;
            if (best < 0 || t.deadline < timers_[best].deadline ||
                (t.deadline == timers_[best].deadline && t.seq < timers_[best].seq))
                best = int(i);
        }
        return best;
    }
    void insertHeap(int h) {
        timers_[h].inHeap = true;
        timers_[h].seq = nextSeq_++;
    }
    bool allocSlot(bool local) {
        if (!Q_->remoteSlab || local) {
            std::int64_t used = 0; // a started timer no longer holds its slot
            for (const Tm& t : timers_)
                used += t.st == Pending || t.st == CancelledRemote;
            if (used >= std::int64_t(std::max<std::uint32_t>(cfg_.maxTimers, 1)))
                return false;
        }
        // The slab's free lists (only decisive for remote schedules under the quirk).
        if (local && localFree_ > 0) {
            --localFree_;
            return true;
        }
        if (sharedFree_ > 0) {
            --sharedFree_;
            return true;
        }
        if (!grown_) {
            grown_ = true;
            sharedFree_ = std::max<std::uint32_t>(cfg_.maxTimers, 1) - 1;
            return true;
        }
        return !Q_->remoteSlab || local; // strict: the count above decided
    }
    void releaseSlot() { ++localFree_; }
    std::int64_t absChecked(std::uint8_t sel) const {
        const std::int64_t at = absDeadline(sel, clock_);
        if (Q_->farPastDeadline && at < 0)
            throw Unsafe{};
        if (Q_->farFutureDeadline && at > INT64_MAX - (std::int64_t(1) << 40) && at != INT64_MAX)
            throw Unsafe{};
        return at;
    }
    int handleOf(std::uint8_t sel) const { // -1: an id the loop never issued
        const std::size_t n = timers_.size();
        const std::size_t i = sel % (n + 3);
        return i < n ? int(i) : -1;
    }

    void drainRemote() {
        std::vector<int> cancels, inserts;
        cancels.swap(remoteCancels_);
        inserts.swap(remoteInserts_);
        for (int h : inserts)
            if (timers_[h].st == Pending)
                insertHeap(h);
        for (int h : cancels) {
            timers_[h].inHeap = false;
            timers_[h].st = Gone;
            releaseSlot();
        }
    }

    // ---- fds: the kernel side ----
    static std::uint32_t toEpoll(unsigned ev) {
        std::uint32_t e = 0;
        if (ev & libloop::FdEvent::Readable)
            e |= EPOLLIN | EPOLLRDHUP;
        if (ev & libloop::FdEvent::Writable)
            e |= EPOLLOUT;
        if (ev & libloop::FdEvent::Priority)
            e |= EPOLLPRI;
        return e;
    }
    static unsigned fromEpoll(std::uint32_t e) {
        unsigned r = 0;
        if (e & EPOLLIN)
            r |= libloop::FdEvent::Readable;
        if (e & EPOLLPRI)
            r |= libloop::FdEvent::Priority;
        if (e & EPOLLOUT)
            r |= libloop::FdEvent::Writable;
        if (e & EPOLLERR)
            r |= libloop::FdEvent::Error;
        if (e & (EPOLLHUP | EPOLLRDHUP))
            r |= libloop::FdEvent::HangUp;
        return r;
    }
    std::uint32_t kready(int i) const {
        const Fd& f = fds_[i];
        if (!f.aOpen)
            return 0;
        std::uint32_t r = EPOLLOUT;
        if (f.pending > 0 || f.shutWr)
            r |= EPOLLIN;
        if (f.shutWr)
            r |= EPOLLRDHUP;
        if (!f.bOpen)
            r |= EPOLLHUP;
        return r;
    }
    std::uint32_t kmask(int i) const { return toEpoll(fds_[i].events) | EPOLLERR | EPOLLHUP; }
    bool kernelItem(int i) const { return fds_[i].registered && fds_[i].inEpoll && fds_[i].aOpen; }
    void link(int i) {
        if (!fds_[i].linked) {
            rdl_.push_back(i);
            fds_[i].linked = true;
        }
    }
    void unlink(int i) {
        if (fds_[i].linked) {
            rdl_.erase(std::find(rdl_.begin(), rdl_.end(), i));
            fds_[i].linked = false;
        }
    }
    void linkIfReady(int i) {
        if (kernelItem(i) && (kready(i) & kmask(i)))
            link(i);
    }
    std::vector<Batch> scan() {
        std::vector<Batch> batch;
        std::vector<int> old;
        old.swap(rdl_);
        for (int i : old) {
            fds_[i].linked = false;
            const std::uint32_t r = kready(i) & kmask(i);
            if (r) {
                batch.push_back(Batch{i, fds_[i].gen, r});
                link(i);
            }
        }
        return batch;
    }

    // ---- callbacks ----
    void countCallback() {
        if (++cbThisOp_ > kMaxCallbacksPerOp)
            throw Unsafe{};
    }
    // Runs a script; true when it threw.
    bool runScript(int id) {
        for (const Op& op : P_->tmpls[cbs_[id].tmpl]) {
            if (op.k == K::Throw)
                return true;
            exec(op);
        }
        return false;
    }
    void hook(libloop::CallbackKind kind) {
        ++errors_;
        emit(E::Hook, std::int64_t(kind), liveCount());
    }
    void runOneShot(int id, libloop::CallbackKind kind) {
        countCallback();
        running_.push_back(id);
        emit(E::Run, id, cbs_[id].kind);
        const bool threw = runScript(id);
        running_.pop_back(); // destroyed before the hook runs
        if (threw)
            hook(kind);
    }
    void runTask(int id) {
        runOneShot(id, libloop::CallbackKind::Task);
        ++tasksRun_;
        checkpoint();
    }
    std::int64_t readPair(int i, std::int64_t max) { // max 0: everything
        Fd& f = fds_[i];
        if (!f.aOpen)
            return -1;
        if (f.pending == 0)
            return f.shutWr ? 0 : -1;
        const std::int64_t n = max == 0 ? f.pending : std::min(max, f.pending);
        f.pending -= n;
        return n;
    }

    // ---- one iteration ----
    std::size_t drainMicro() {
        const std::uint32_t budget = cfg_.budget;
        std::size_t n = 0;
        while (!closed_ && (budget == 0 || n < budget) && !micro_.empty()) {
            const int id = popMicro();
            ++n;
            runOneShot(id, libloop::CallbackKind::Microtask);
        }
        if (n) {
            microRun_ += n;
            if (budget && n == budget && !micro_.empty())
                ++budgetHits_;
        }
        return n;
    }
    std::size_t checkpoint() { return drainMicro(); }

    std::size_t runDueTimers(std::int64_t now) {
        const std::uint64_t limit = nextSeq_; // timers scheduled from now on wait
        std::size_t n = 0;
        while (!closed_) {
            int h = -1;
            if (Q_->timerPhaseBreak) {
                h = heapMin();
                if (h < 0 || timers_[h].deadline > now || timers_[h].seq >= limit)
                    break;
            } else { // the earliest among the due timers scheduled before the phase began
                for (std::size_t i = 0; i < timers_.size(); ++i) {
                    const Tm& t = timers_[i];
                    if (!t.inHeap || t.deadline > now || t.seq >= limit)
                        continue;
                    if (h < 0 || t.deadline < timers_[h].deadline ||
                        (t.deadline == timers_[h].deadline && t.seq < timers_[h].seq))
                        h = int(i);
                }
                if (h < 0)
                    break;
            }
            timers_[h].inHeap = false;
            if (timers_[h].st != Pending)
                continue; // cancelled from another thread: released by the next drain
            timers_[h].st = Running;
            releaseSlot(); // free before the callback runs (its id answers like a finished one)
            runOneShot(timers_[h].cb, libloop::CallbackKind::Timer);
            timers_[h].st = Gone;
            ++timersRun_;
            ++n;
            checkpoint();
        }
        return n;
    }

    // The items of `q` the phase may run: those queued before `snap` (identity), or the first
    // `count` (the quirk).
    template <class Q> std::size_t runQueue(Q& q, std::uint64_t snap, std::size_t count) {
        std::size_t n = 0;
        for (;;) {
            if (closed_ || q.empty())
                break;
            if (Q_->phaseSnapshot ? n == count : q.front().serial >= snap)
                break;
            const int id = q.front().cb;
            q.pop_front();
            ++n;
            runTask(id);
        }
        return n;
    }
    std::size_t runTasks() {
        const std::uint64_t snap = serial_;
        std::size_t n = runQueue(internalQ_, snap, internalQ_.size());
        internalGauge_ = internalQ_.size();
        n += runQueue(externalQ_, snap, externalQ_.size());
        return n;
    }
    std::size_t runImmediates() { return runQueue(immQ_, serial_, immQ_.size()); }

    bool fastPath() const {
        return mode_ == libloop::FastPathMode::Forced ||
               (mode_ == libloop::FastPathMode::Auto && nfds() == 0);
    }
    std::size_t dispatch(const std::vector<Batch>& batch) {
        std::size_t n = 0;
        for (const Batch& ev : batch) {
            if (closed_)
                break;
            Fd& f = fds_[ev.pair];
            if (!f.registered || f.gen != ev.gen || !f.inEpoll)
                continue;
            const unsigned revents =
                fromEpoll(ev.kev) & (f.events | libloop::FdEvent::Error | libloop::FdEvent::HangUp);
            if (!revents)
                continue;
            if (!f.cbPresent) { // its callback is running (a nested iteration): not re-entered
                if (Q_->fdReentry)
                    throw Unsafe{};
                // ...and not watched until it returns (EPOLL_CTL_DEL: unlisted)
                unlink(ev.pair);
                f.inEpoll = false;
                f.suspended = true;
                continue;
            }
            const int id = f.cb;
            countCallback();
            f.cbPresent = false; // moved out while it runs
            running_.push_back(id);
            emit(E::FdRun, id, ev.pair, revents);
            if (cbs_[id].readMode != 2) {
                const std::int64_t r = readPair(ev.pair, cbs_[id].readMode == 0 ? 0 : 1);
                emit(E::Read, ev.pair, r);
            }
            const bool threw = runScript(id);
            if (threw)
                hook(libloop::CallbackKind::Fd); // a throwing fd callback stays registered
            Fd& g = fds_[ev.pair];
            const bool restored = g.registered && g.gen == ev.gen && !g.cbPresent;
            if (restored) {
                g.cbPresent = true;
                running_.pop_back();
            }
            if (g.registered && g.gen == ev.gen && g.suspended) {
                // Back into epoll (EPOLL_CTL_ADD: listed at the back when ready), unless the
                // callback re-added it (modifyFd) or watches nothing; a closed fd: EBADF, stays
                // out.
                g.suspended = false;
                if (!g.inEpoll && g.events != 0 && g.aOpen) {
                    g.inEpoll = true;
                    linkIfReady(ev.pair);
                }
            }
            ++fdRun_;
            ++n;
            checkpoint();
            if (!restored)
                running_.pop_back(); // destroyed after the checkpoint
        }
        return n;
    }
    std::size_t pollFds(unsigned phases) {
        if (!(phases & libloop::RunPhase::Fds) || fastPath() || nfds() == 0)
            return 0;
        return dispatch(scan());
    }

    bool workPending(std::int64_t now, unsigned phases) const {
        if (!micro_.empty() || !externalQ_.empty() || !internalQ_.empty() || !immQ_.empty() ||
            !remoteInserts_.empty() || !remoteCancels_.empty() || stopReq_ || wakeReq_)
            return true;
        const int h = heapMin();
        return (phases & libloop::RunPhase::Timers) && h >= 0 && timers_[h].deadline <= now;
    }

    // True when it ended on a pending wakeUp() (and no fd callback ran), as the loop's.
    bool waitForWork(std::int64_t end, unsigned phases) {
        for (int guard = 0; guard < 8; ++guard) {
            const std::int64_t now = clock_;
            std::int64_t until = end;
            const int h = heapMin();
            if ((phases & libloop::RunPhase::Timers) && h >= 0 && timers_[h].deadline < until)
                until = timers_[h].deadline;
            if (until <= now)
                return false;
            const bool manual = until != INT64_MAX; // a deadline: poll, then jump to it
            const bool fast = fastPath() || !(phases & libloop::RunPhase::Fds);
            std::size_t ran = 0;
            if (fast) {
                if (!workPending(now, phases) && !manual)
                    throw Unsafe{}; // a futex wait nobody would end
            } else { // epoll is polled even when work is pending (then without blocking)
                const bool pending = workPending(now, phases);
                const std::vector<Batch> batch = scan();
                if (batch.empty() && !pending && !manual)
                    throw Unsafe{}; // an epoll wait nothing would end
                ran = dispatch(batch);
            }
            if (ran || closed_)
                return false;
            if (wakeReq_) {
                wakeReq_ = false;
                return true;
            }
            if (workPending(clock_, phases))
                return false;
            if (manual) {
                clock_ = std::max(clock_, until);
                return false;
            }
        }
        throw Unsafe{};
    }

    void iterate(std::int64_t timeout, unsigned phases) {
        ++iterations_;
        std::int64_t now = clock_;
        internalGauge_ = internalQ_.size();
        std::size_t ran = 0;
        drainRemote();
        ran += checkpoint(); // microtasks queued outside callbacks
        if (phases & libloop::RunPhase::Timers)
            ran += runDueTimers(now);
        ran += runTasks();
        // fds are polled without blocking only when this iteration will not wait
        if (ran != 0 || timeout == 0 || !immQ_.empty())
            ran += pollFds(phases);
        ran += runImmediates();
        if (ran == 0 && timeout != 0 && !closed_) {
            const std::int64_t end = timeout < 0 ? INT64_MAX : deadlineAfter(clock_, timeout);
            const bool endedByWakeUp = waitForWork(end, phases); // runs what ended the wait
            if (!closed_ && !(endedByWakeUp && (phases & libloop::RunFlag::ReturnOnWakeUp))) {
                runImmediates();
                now = clock_;
                drainRemote();
                checkpoint();
                if (phases & libloop::RunPhase::Timers)
                    runDueTimers(now);
                runTasks();
            }
        }
    }

    // The loop's runOnce() body (the harness's nesting limit is checked by the caller).
    void runOnceBody(std::int64_t timeout, unsigned phases) {
        enter();
        iterate(timeout, phases);
        if (runDepth_ == 0)
            stopReq_ = false; // a runOnce outside run() consumes a stop request
        leave();
    }

    std::uint64_t closeNow() {
        if (closed_)
            return 0;
        closed_ = true;
        accepting_ = false;
        state_ = libloop::LoopState::Closed;
        internalQ_.clear();
        externalQ_.clear();
        immQ_.clear();
        micro_.clear();
        ringCnt_ = ovfCnt_ = 0;
        internalGauge_ = 0;
        std::uint64_t cancelled = 0;
        remoteInserts_.clear();
        remoteCancels_.clear();
        for (Tm& t : timers_) {
            if (t.st == Pending) {
                ++cancelled;
                t.st = Gone;
            } else if (t.st == CancelledRemote) {
                t.st = Gone;
            }
            t.inHeap = false;
        }
        for (int i = 0; i < kFds; ++i) {
            Fd& f = fds_[i];
            if (f.registered) {
                unlink(i);
                f.registered = f.inEpoll = f.cbPresent = false;
                f.events = 0;
                f.gen = 0;
            }
        }
        return cancelled;
    }

    void shutdown(bool waitForAll) {
        if (!onLoop() && depth_ > 0)
            return res(K::Shutdown, libloop::Errc::Busy);
        if (state_ == libloop::LoopState::Closed)
            return res(K::Shutdown, libloop::Errc::Ok, 0, 0);
        if (state_ == libloop::LoopState::ShuttingDown)
            return res(K::Shutdown, libloop::Errc::Busy);
        state_ = libloop::LoopState::ShuttingDown;
        accepting_ = false;
        enter();
        const std::uint64_t before = total();
        for (int guard = 0;; ++guard) {
            if (guard > 10000)
                throw Unsafe{};
            drainRemote();
            std::size_t n = checkpoint();
            n += runDueTimers(clock_);
            n += runTasks();
            n += runImmediates();
            if (closed_)
                break;
            if (n)
                continue;
            if (!micro_.empty() || !internalQ_.empty() || !immQ_.empty() ||
                !remoteInserts_.empty() || !remoteCancels_.empty())
                continue;
            std::int64_t pending = 0;
            for (const Tm& t : timers_)
                pending += t.st == Pending;
            const int h = heapMin();
            if (waitForAll && pending != 0 && h >= 0) {
                if (Q_->farFutureDeadline &&
                    timers_[h].deadline > INT64_MAX - (std::int64_t(1) << 40))
                    throw Unsafe{};
                clock_ = std::max(clock_, timers_[h].deadline);
                continue;
            }
            break;
        }
        leave();
        const std::uint64_t ran = total() - before;
        const std::uint64_t cancelled = closeNow();
        res(K::Shutdown, libloop::Errc::Ok, std::int64_t(ran), std::int64_t(cancelled));
    }

    // ---- operations ----
    void exec(const Op& op) {
        using libloop::Errc;
        if (op.remote) {
            if (remoteLeft_ == 0)
                return emit(E::Skip, std::int64_t(op.k));
            --remoteLeft_;
            const int saved = cur_;
            cur_ = Worker;
            Op o = op;
            o.remote = false;
            exec(o);
            cur_ = saved;
            return;
        }
        const bool loopThread = onLoop();
        switch (op.k) {
        case K::Submit: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Task);
            if (!accepting_)
                return res(op.k, Errc::NotAccepting);
            externalQ_.push_back(Item{id, serial_++});
            return res(op.k, Errc::Ok);
        }
        case K::SubmitInternal: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Task);
            if (!loopThread)
                return res(op.k, Errc::WrongThread);
            if (closed_)
                return res(op.k, Errc::NotAccepting);
            internalQ_.push_back(Item{id, serial_++});
            return res(op.k, Errc::Ok);
        }
        case K::Microtask: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Microtask);
            const bool force = loopThread && !closed_ && state_ == libloop::LoopState::ShuttingDown;
            if (!accepting_ && !force)
                return res(op.k, Errc::NotAccepting);
            pushMicro(id);
            return res(op.k, Errc::Ok);
        }
        case K::Immediate: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Task);
            if (!loopThread)
                return res(op.k, Errc::WrongThread);
            if (closed_)
                return res(op.k, Errc::NotAccepting);
            immQ_.push_back(Item{id, serial_++});
            return res(op.k, Errc::Ok);
        }
        case K::Timer:
        case K::TimerAt: {
            const std::int64_t deadline =
                op.k == K::Timer
                    ? deadlineAfter(clock_, kDelays[op.a % (sizeof(kDelays) / sizeof(kDelays[0]))])
                    : absChecked(op.a);
            const int id = newCb(op.tmpl, libloop::CallbackKind::Timer);
            if (!accepting_)
                return res(op.k, Errc::NotAccepting, -1);
            if (!allocSlot(loopThread))
                return res(op.k, Errc::TooManyTimers, -1);
            Tm t;
            t.cb = id;
            t.deadline = deadline;
            timers_.push_back(t);
            const int h = int(timers_.size() - 1);
            if (loopThread)
                insertHeap(h);
            else
                remoteInserts_.push_back(h);
            return res(op.k, Errc::Ok, h);
        }
        case K::Cancel: {
            const int h = handleOf(op.a);
            if (h < 0)
                return res(op.k, Errc::Ok, 0);
            Tm& t = timers_[h];
            if (t.st != Pending)
                return res(op.k, Errc::Ok, 0);
            if (loopThread && t.inHeap) {
                t.st = Gone;
                t.inHeap = false;
                releaseSlot();
            } else {
                t.st = CancelledRemote; // released by the loop at its next drain
                remoteCancels_.push_back(h);
            }
            return res(op.k, Errc::Ok, 1);
        }
        case K::Reschedule: {
            if (!loopThread)
                return res(op.k, Errc::WrongThread);
            const int h = handleOf(op.a);
            if (h < 0 || timers_[h].st != Pending || !timers_[h].inHeap)
                return res(op.k, Errc::NotFound);
            timers_[h].deadline = absChecked(op.b);
            timers_[h].seq = nextSeq_++; // counts as scheduled now
            return res(op.k, Errc::Ok);
        }
        case K::Deadline: {
            const int h = handleOf(op.a);
            if (h < 0 || timers_[h].st != Pending)
                return res(op.k, Errc::NotFound);
            return res(op.k, Errc::Ok, timers_[h].deadline);
        }
        case K::NullTask: {
            switch (op.a % 7) {
            case 0: // submit
            case 2: // queueMicrotask
            case 3: // queueImmediate
            case 4: // scheduleTimer
            case 5: // scheduleTimerAt
                return res(op.k, Errc::NullCallable);
            case 1: // submitInternal
                return res(op.k, Errc::NullCallable);
            default: // registerFd(pair 0, Readable, {})
                return res(op.k, loopThread ? Errc::NullCallable : Errc::WrongThread);
            }
        }
        case K::RegisterFd: {
            const int sel = fdIndexOf(op.a);
            const unsigned ev = eventsOf(op.b);
            const int id = newCb(op.tmpl, libloop::CallbackKind::Fd, sel < kFds ? sel : -1, op.c);
            if (!loopThread)
                return res(op.k, Errc::WrongThread);
            constexpr unsigned watchable = libloop::FdEvent::Readable | libloop::FdEvent::Writable |
                                           libloop::FdEvent::Priority;
            if (sel == kFds || ev == 0 || (ev & ~watchable))
                return res(op.k, Errc::InvalidArgument);
            if (closed_)
                return res(op.k, Errc::NotAccepting);
            if (sel < kFds && fds_[sel].registered)
                return res(op.k, Errc::AlreadyExists);
            if (mode_ == libloop::FastPathMode::Forced)
                return res(op.k, Errc::FastPathConflict);
            if (sel > kFds || !fds_[sel].aOpen)
                return res(op.k, Errc::InvalidArgument, EBADF);
            Fd& f = fds_[sel];
            f.registered = f.inEpoll = f.cbPresent = true;
            f.suspended = false;
            f.events = ev;
            f.gen += 1;
            f.cb = id;
            linkIfReady(sel);
            return res(op.k, Errc::Ok);
        }
        case K::ModifyFd: {
            if (!loopThread)
                return res(op.k, Errc::WrongThread);
            const int sel = fdIndexOf(op.a);
            const unsigned ev = eventsOf(op.b);
            constexpr unsigned watchable = libloop::FdEvent::Readable | libloop::FdEvent::Writable |
                                           libloop::FdEvent::Priority;
            if (ev & ~watchable)
                return res(op.k, Errc::InvalidArgument);
            if (sel >= kFds || !fds_[sel].registered)
                return res(op.k, Errc::NotFound);
            Fd& f = fds_[sel];
            if (ev == 0) { // leaves epoll (a closed fd is already gone: fine)
                unlink(sel);
                f.inEpoll = false;
                f.events = 0;
                return res(op.k, Errc::Ok);
            }
            if (!f.aOpen) // EPOLL_CTL_MOD / ADD on a closed fd: EBADF, nothing changes
                return res(op.k, Errc::SystemError, EBADF);
            f.inEpoll = true;
            f.events = ev;
            linkIfReady(sel); // ADD or MOD: listed when ready and not listed yet
            return res(op.k, Errc::Ok);
        }
        case K::UnregisterFd: {
            if (!loopThread)
                return res(op.k, Errc::WrongThread);
            const int sel = fdIndexOf(op.a);
            if (sel >= kFds || !fds_[sel].registered)
                return res(op.k, Errc::NotFound);
            Fd& f = fds_[sel];
            unlink(sel);
            f.registered = f.inEpoll = f.cbPresent = false;
            f.suspended = false;
            f.events = 0;
            return res(op.k, Errc::Ok);
        }
        case K::CloseFd: {
            const int i = op.a % kFds;
            if (fds_[i].aOpen) {
                unlink(i); // the kernel forgets a closed fd's epoll item
                fds_[i].aOpen = false;
            }
            return;
        }
        case K::PeerWrite: {
            const int i = op.a % kFds;
            Fd& f = fds_[i];
            const std::int64_t n = 1 + op.b % 4;
            if (!f.bOpen)
                return res(op.k, Errc::Ok, -2);
            if (f.aOpen && f.pending >= kMaxPendingBytes)
                return res(op.k, Errc::Ok, -3); // not written (see kMaxPendingBytes)
            if (f.shutWr || !f.aOpen)
                return res(op.k, Errc::Ok, -1); // EPIPE
            f.pending += n;
            // data wake-up: lists watchers of EPOLLIN or EPOLLPRI
            if (kernelItem(i) && (kmask(i) & (EPOLLIN | EPOLLPRI)))
                link(i);
            return res(op.k, Errc::Ok, n);
        }
        case K::PeerShutWr:
        case K::PeerClose: {
            const int i = op.a % kFds;
            Fd& f = fds_[i];
            if (!f.bOpen)
                return;
            f.shutWr = true;
            if (op.k == K::PeerClose)
                f.bOpen = false;
            if (kernelItem(i)) // a state-change wake-up lists every watcher
                link(i);
            return;
        }
        case K::ReadFd:
            return emit(E::Read, op.a % kFds, readPair(op.a % kFds, op.b % 9));
        case K::SetFastPath: {
            const auto m = libloop::FastPathMode(op.a % 3);
            if (m == libloop::FastPathMode::Forced && nfds() != 0)
                return res(op.k, Errc::FastPathConflict);
            mode_ = m;
            return res(op.k, Errc::Ok);
        }
        case K::Advance: {
            const std::int64_t d = kAdvances[op.a & 7];
            if (clock_ > INT64_MAX - d)
                return emit(E::Skip, std::int64_t(op.k));
            clock_ += d;
            return;
        }
        case K::RunOnce:
        case K::Run: {
            if (nest_ >= kMaxNest)
                return emit(E::Skip, std::int64_t(op.k));
            if (!loopThread)
                return res(op.k, Errc::WrongThread);
            if (closed_)
                return res(op.k, Errc::NotAccepting);
            ++nest_;
            if (op.k == K::RunOnce) {
                const std::uint64_t before = total();
                const std::int64_t t = kTimeouts[op.a & 7];
                runOnceBody(t == kTimeoutForever ? -1 : std::max<std::int64_t>(t, 0),
                            phasesOf(op.a));
                --nest_;
                return res(op.k, Errc::Ok, std::int64_t(total() - before));
            }
            ++runDepth_;
            for (int i = 0; !closed_; ++i) {
                if (i == kMaxRunIterations)
                    throw Unsafe{};
                runOnceBody(-1, libloop::RunPhase::All);
                if (stopReq_) {
                    stopReq_ = false;
                    break;
                }
            }
            --runDepth_;
            --nest_;
            return res(op.k, Errc::Ok);
        }
        case K::Stop:
            stopReq_ = true;
            return;
        case K::WakeUp:
            wakeReq_ = true;
            return;
        case K::Shutdown:
            return shutdown(op.a & 1);
        case K::Close:
            if (!loopThread && depth_ > 0)
                return res(op.k, Errc::Busy);
            closeNow();
            return res(op.k, Errc::Ok);
        case K::Throw: // handled by runScript
            return;
        case K::State:
            return res(op.k, Errc::Ok, std::int64_t(state_));
        case K::Attach:
            if (loopThread)
                return res(op.k, Errc::Ok);
            if (depth_ > 0)
                return res(op.k, Errc::Busy);
            owner_ = cur_;
            return res(op.k, Errc::Ok);
        case K::Count:
            break;
        }
    }
};

// ---- rendering ----
inline std::string opText(const Op& op) {
    std::string s = kindName(op.k);
    auto num = [](std::int64_t v) {
        if (v == INT64_MAX)
            return std::string("max");
        if (v == INT64_MAX - 1)
            return std::string("max-1");
        if (v == kTimeoutForever)
            return std::string("forever");
        return std::to_string(v);
    };
    auto fd = [](std::uint8_t a) {
        const int i = fdIndexOf(a);
        return i < kFds    ? "pair " + std::to_string(i)
               : i == kFds ? std::string("fd -1")
                           : std::string("fd <unopened>");
    };
    auto abs = [](std::uint8_t a) {
        static const char* const names[kAbsCount] = {"now-3", "now-2", "now-1", "now",   "now",
                                                     "now+1", "now+2", "now+3", "now+5", "now+8",
                                                     "epoch", "min",   "max",   "max-1"};
        return std::string(names[a % kAbsCount]);
    };
    switch (op.k) {
    case K::Timer:
        s += "(" + num(kDelays[op.a % (sizeof(kDelays) / sizeof(kDelays[0]))]) + ")";
        break;
    case K::TimerAt:
        s += "(" + abs(op.a) + ")";
        break;
    case K::Cancel:
    case K::Deadline:
        s += "(handle sel " + std::to_string(op.a) + ")";
        break;
    case K::Reschedule:
        s += "(handle sel " + std::to_string(op.a) + ", " + abs(op.b) + ")";
        break;
    case K::NullTask: {
        static const char* const apis[7] = {"submit",         "submitInternal", "queueMicrotask",
                                            "queueImmediate", "scheduleTimer",  "scheduleTimerAt",
                                            "registerFd"};
        s += "(" + std::string(apis[op.a % 7]) + ")";
        break;
    }
    case K::RegisterFd:
        s += "(" + fd(op.a) + ", " + fdEventsName(eventsOf(op.b)) + ", reads " +
             (op.c == 0   ? "all"
              : op.c == 1 ? "1 byte"
                          : "nothing") +
             ")";
        break;
    case K::ModifyFd:
        s += "(" + fd(op.a) + ", " + fdEventsName(eventsOf(op.b)) + ")";
        break;
    case K::UnregisterFd:
        s += "(" + fd(op.a) + ")";
        break;
    case K::CloseFd:
    case K::PeerShutWr:
    case K::PeerClose:
        s += "(pair " + std::to_string(op.a % kFds) + ")";
        break;
    case K::PeerWrite:
        s += "(pair " + std::to_string(op.a % kFds) + ", " + std::to_string(1 + op.b % 4) +
             " bytes)";
        break;
    case K::ReadFd:
        s += "(pair " + std::to_string(op.a % kFds) + ", max " + std::to_string(op.b % 9) + ")";
        break;
    case K::SetFastPath:
        s += std::string("(") + libloop::fastPathModeName(libloop::FastPathMode(op.a % 3)) + ")";
        break;
    case K::Advance:
        s += "(" + num(kAdvances[op.a & 7]) + ")";
        break;
    case K::RunOnce: {
        s += "(" + num(kTimeouts[op.a & 7]);
        const unsigned p = phasesOf(op.a);
        const unsigned ph = p & libloop::RunPhase::All;
        if (ph != libloop::RunPhase::All)
            s += std::string(", phases ") + ((ph & libloop::RunPhase::Timers) ? "T" : "") +
                 ((ph & libloop::RunPhase::Fds) ? "F" : "") + (ph == 0 ? "none" : "");
        if (p & libloop::RunFlag::ReturnOnWakeUp)
            s += ", ReturnOnWakeUp";
        s += ")";
        break;
    }
    case K::Shutdown:
        s += (op.a & 1) ? "(WaitForAll)" : "(CancelPending)";
        break;
    default:
        break;
    }
    if (createsCallback(op.k) && op.tmpl)
        s += " script t" + std::to_string(op.tmpl);
    if (op.remote)
        s = "[helper thread] " + s;
    return s;
}

} // namespace fuzzloop
