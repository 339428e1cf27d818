// Fuzz harness: a Loop driven by a decoded sequence of operations, every step checked against a
// reference model (loop_model.h).
//
// Input: two config bytes (microtask budget and ring size, metrics, maxTimers, initial fast-path
// mode, whether the error hook throws), then operations (see K in loop_model.h): submit,
// submitInternal, queueMicrotask, queueImmediate, scheduleTimer / scheduleTimerAt with small and
// equal delays, cancelTimer / rescheduleTimer / timerDeadline on valid, fired, cancelled and
// never-issued ids, registerFd / modifyFd / unregisterFd on socketpairs (also closing the fd while
// registered, writing to / half-closing / closing the peer), fast-path mode changes, runOnce with
// every timeout and phase mask, run(), stop, wakeUp, shutdown, close, attachToCurrentThread, empty
// callables, and clock advances. Callbacks carry scripts of the same operations (throwing, nested
// runOnce/run up to kMaxNest, close/shutdown from inside ...). Any operation may be performed from
// a helper thread instead (the fuzzer thread waits for it, so the run stays deterministic): that
// exercises the cross-thread paths (ingress, remote timer insert/cancel lists, WrongThread/Busy).
//
// The loop runs on a ManualClock (LoopOptions::clock), so nothing sleeps: a wait that would end at
// a deadline moves the clock there. After every top-level operation the harness compares with
// the model: the log (callbacks started, in order, with the events fd callbacks received and what
// they read; every API result; the error hook's calls and how many callbacks were alive then),
// pendingTimers(), timerDeadline() of every id ever issued, registeredFds(), state(),
// fastPathMode(), now(), isLoopThread(), the exact snapshot() counters and gauges (timer heap,
// queues, microtask ring/overflow, callbacks run per kind, errors, iterations, budget hits, wake
// syscalls), the number of live callback objects (captured state is released when documented),
// and the bytes pending on every socket. Any difference prints the whole operation trace with
// both logs and aborts.
//
// Properties the model does not cover are listed in loop_model.h (and the report that came with
// this harness): latency/rate metrics, max gauges, checkpoint hooks, concurrency that is not
// joined.
#include "loop_model.h"

#include <libloop/loop.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace fuzzloop;
using libloop::Errc;

namespace {

// A persistent helper thread: run() hands it a job and waits until it is done (runs the job
// inline when called on the helper itself). Never destroyed (it outlives every input).
class Helper {
public:
    Helper() : thread_([this] { loop(); }) { thread_.detach(); }
    void run(const std::function<void()>& job) {
        if (std::this_thread::get_id() == id()) {
            job();
            return;
        }
        std::unique_lock lock(m_);
        job_ = &job;
        done_ = false;
        cv_.notify_all();
        cv_.wait(lock, [this] { return done_; });
    }
    std::thread::id id() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [this] { return started_; });
        return tid_;
    }

private:
    void loop() {
        std::unique_lock lock(m_);
        tid_ = std::this_thread::get_id();
        started_ = true;
        cv_.notify_all();
        for (;;) {
            cv_.wait(lock, [this] { return job_ != nullptr; });
            const std::function<void()>* job = job_;
            lock.unlock();
            (*job)();
            lock.lock();
            job_ = nullptr;
            done_ = true;
            cv_.notify_all();
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    const std::function<void()>* job_ = nullptr;
    bool done_ = false, started_ = false;
    std::thread::id tid_;
    std::thread thread_;
};

Helper& helper() {
    static Helper* h = new Helper; // intentionally never destroyed
    return *h;
}

// An fd number that is not open (registerFd must answer InvalidArgument/EBADF).
int unopenedFd() {
    static const int fd = [] {
        for (int n = 700;; ++n)
            if (::fcntl(n, F_GETFD) < 0)
                return n;
    }();
    return fd;
}

struct Boom : std::runtime_error {
    Boom() : std::runtime_error("boom") {}
};

class Real;

// Counts live callback objects (the model knows which callbacks are stored where).
struct Token {
    Real* r;
    explicit Token(Real* real);
    Token(Token&& o) noexcept : r(o.r) { o.r = nullptr; }
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
    Token& operator=(Token&&) = delete;
    ~Token();
};

// The real side: a Loop on a ManualClock, the socketpairs, and the callbacks' behaviour.
class Real {
public:
    explicit Real(const Program& p) : P_(p) {
        for (int i = 0; i < kFds; ++i) {
            int sv[2];
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
                std::perror("fuzz_loop: socketpair");
                std::abort();
            }
            a_[i] = sv[0];
            b_[i] = sv[1];
        }
        libloop::LoopOptions o;
        o.name = "fuzz";
        o.microtaskRingCapacity = p.cfg.ringCapacity;
        o.microtaskBudget = p.cfg.budget;
        o.fastPath = p.cfg.fastPath;
        o.metrics = p.cfg.metrics;
        o.latencySampleEvery = p.cfg.sampleEvery;
        o.maxTimers = p.cfg.maxTimers;
        o.clock = &clock_;
        const bool hookThrows = p.cfg.hookThrows;
        o.errorHook = [this, hookThrows](std::exception_ptr, libloop::CallbackKind k) {
            emit(E::Hook, std::int64_t(k), live);
            if (hookThrows)
                throw 42;
        };
        loop_ = std::make_unique<libloop::Loop>(std::move(o));
    }
    ~Real() {
        loop_.reset();
        for (int i = 0; i < kFds; ++i) {
            if (aOpen_[i])
                ::close(a_[i]);
            if (bOpen_[i])
                ::close(b_[i]);
        }
    }
    Real(const Real&) = delete;
    Real& operator=(const Real&) = delete;

    std::vector<Ev> log;
    std::int64_t live = 0;

    void top(const Op& op) { exec(op); }
    void destroyLoop() { loop_.reset(); }

    Observed observe() {
        libloop::Loop& L = *loop_;
        Observed o;
        o.pendingTimers = std::int64_t(L.pendingTimers());
        o.registeredFds = std::int64_t(L.registeredFds());
        o.state = std::int64_t(L.state());
        o.fastPathMode = std::int64_t(L.fastPathMode());
        o.now = L.now().time_since_epoch().count();
        o.isLoopThread = L.isLoopThread();
        const libloop::MetricsSnapshot s = L.snapshot();
        o.heapSize = std::int64_t(s.timerHeapSize);
        o.tasksRun = std::int64_t(s.tasksRun);
        o.microtasksRun = std::int64_t(s.microtasksRun);
        o.timersRun = std::int64_t(s.timersRun);
        o.fdCallbacksRun = std::int64_t(s.fdCallbacksRun);
        o.callbackErrors = std::int64_t(s.callbackErrors);
        o.iterations = std::int64_t(s.iterations);
        o.budgetHits = std::int64_t(s.microtaskBudgetHits);
        o.externalQueue = std::int64_t(s.externalQueue);
        o.internalQueue = std::int64_t(s.internalQueue);
        o.ringUsed = std::int64_t(s.microtaskRingUsed);
        o.overflow = std::int64_t(s.microtaskOverflow);
        o.ringCap = std::int64_t(s.microtaskRingCapacity);
        o.snapRegisteredFds = std::int64_t(s.registeredFds);
        o.snapState = std::int64_t(s.state);
        o.wakeSyscalls = std::int64_t(s.wakeSyscalls);
        o.live = live;
        for (libloop::TimerId id : handles_) {
            const auto d = L.timerDeadline(id);
            o.deadlines.push_back(d.ok() ? d.value().time_since_epoch().count() : INT64_MIN);
        }
        for (int i = 0; i < kFds; ++i) {
            int n = -1;
            if (aOpen_[i] && ::ioctl(a_[i], FIONREAD, &n) != 0)
                n = -2;
            o.pending.push_back(n);
        }
        return o;
    }

    // ---- callbacks ----
    void runTask(int id) {
        emit(E::Run, id, cbs_[id].kind);
        runScript(id);
    }
    void runFd(int id, int fd, unsigned events) {
        const int pair = cbs_[id].pair;
        emit(E::FdRun, id, fd == a_[pair] ? pair : -100 - fd, events);
        if (cbs_[id].readMode != 2)
            emit(E::Read, pair, readPair(pair, cbs_[id].readMode == 0 ? 0 : 1));
        runScript(id);
    }

private:
    struct Cb {
        std::uint16_t tmpl = 0;
        std::uint8_t kind = 0;
        int pair = -1;
        std::uint8_t readMode = 0;
    };

    // The callables: plain (trivially copyable), with a token (inline, non-trivial), and big
    // (boxed on the heap), by id % 3 (the model counts ids % 3 != 0 as live objects).
    struct TaskPlain {
        Real* r;
        int id;
        void operator()() { r->runTask(id); }
    };
    struct TaskTok {
        Token t;
        int id;
        void operator()() { t.r->runTask(id); }
    };
    struct TaskBig {
        Token t;
        int id;
        unsigned char pad[64];
        void operator()() { t.r->runTask(id); }
    };
    struct FdPlain {
        Real* r;
        int id;
        void operator()(int fd, unsigned ev) { r->runFd(id, fd, ev); }
    };
    struct FdTok {
        Token t;
        int id;
        void operator()(int fd, unsigned ev) { t.r->runFd(id, fd, ev); }
    };
    struct FdBig {
        Token t;
        int id;
        unsigned char pad[64];
        void operator()(int fd, unsigned ev) { t.r->runFd(id, fd, ev); }
    };

    int newCb(std::uint16_t tmpl, libloop::CallbackKind kind, int pair = -1,
              std::uint8_t readMode = 0) {
        Cb c;
        c.tmpl = tmpl;
        c.kind = std::uint8_t(kind);
        c.pair = pair;
        c.readMode = readMode;
        cbs_.push_back(c);
        return int(cbs_.size() - 1);
    }
    libloop::Task makeTask(int id) {
        switch (id % 3) {
        case 0:
            return TaskPlain{this, id};
        case 1:
            return TaskTok{Token(this), id};
        default:
            return TaskBig{Token(this), id, {}};
        }
    }
    libloop::FdCallback makeFd(int id) {
        switch (id % 3) {
        case 0:
            return FdPlain{this, id};
        case 1:
            return FdTok{Token(this), id};
        default:
            return FdBig{Token(this), id, {}};
        }
    }

    void emit(E t, std::int64_t a = 0, std::int64_t b = 0, std::int64_t c = 0, std::int64_t d = 0) {
        log.push_back(Ev{t, a, b, c, d});
    }
    void res(K k, libloop::Status s, std::int64_t c = 0, std::int64_t d = 0) {
        emit(E::Res, std::int64_t(k), std::int64_t(s.code()), c, d);
    }
    void runScript(int id) {
        for (const Op& op : P_.tmpls[cbs_[id].tmpl]) {
            if (op.k == K::Throw) {
                if (id & 1)
                    throw Boom{};
                throw id; // not a std::exception
            }
            exec(op);
        }
    }

    std::int64_t readPair(int i, std::int64_t max) {
        if (!aOpen_[i])
            return -1;
        std::int64_t total = 0;
        for (;;) {
            const std::int64_t want = max == 0 ? 64 : std::min<std::int64_t>(max - total, 64);
            if (want <= 0)
                break;
            char buf[64];
            const ssize_t r = ::read(a_[i], buf, std::size_t(want));
            if (r > 0) {
                total += r;
                continue;
            }
            if (total == 0)
                return r == 0 ? 0 : -1;
            break;
        }
        return total;
    }

    libloop::TimerId idOf(std::uint8_t sel) const {
        const std::size_t n = handles_.size();
        const std::size_t i = sel % (n + 3);
        if (i < n)
            return handles_[i];
        if (i == n)
            return libloop::TimerId{0};
        if (i == n + 1)
            return libloop::TimerId{std::uint64_t(1) << 63};      // a generation never reached
        return libloop::TimerId{(std::uint64_t(1) << 24) | 4095}; // a slot never used
    }
    int fdOf(std::uint8_t a) const {
        const int i = fdIndexOf(a);
        return i < kFds ? a_[i] : i == kFds ? -1 : unopenedFd();
    }

    void exec(const Op& op) {
        if (op.remote) {
            if (remoteLeft_ == 0)
                return emit(E::Skip, std::int64_t(op.k));
            --remoteLeft_;
            Op o = op;
            o.remote = false;
            helper().run([&] { exec(o); });
            return;
        }
        libloop::Loop& L = *loop_;
        switch (op.k) {
        case K::Submit: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Task);
            return res(op.k, L.submit(makeTask(id)));
        }
        case K::SubmitInternal: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Task);
            return res(op.k, L.submitInternal(makeTask(id)));
        }
        case K::Microtask: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Microtask);
            return res(op.k, L.queueMicrotask(makeTask(id)));
        }
        case K::Immediate: {
            const int id = newCb(op.tmpl, libloop::CallbackKind::Task);
            return res(op.k, L.queueImmediate(makeTask(id)));
        }
        case K::Timer:
        case K::TimerAt: {
            libloop::Result<libloop::TimerId> r = libloop::Errc::Ok;
            if (op.k == K::Timer) {
                const std::int64_t d = kDelays[op.a % (sizeof(kDelays) / sizeof(kDelays[0]))];
                const int id = newCb(op.tmpl, libloop::CallbackKind::Timer);
                r = L.scheduleTimer(
                    d == INT64_MAX ? libloop::Duration::max() : libloop::Duration(d), makeTask(id));
            } else {
                const std::int64_t at = absDeadline(op.a, clock_.nowNs());
                const int id = newCb(op.tmpl, libloop::CallbackKind::Timer);
                r = L.scheduleTimerAt(libloop::TimePoint(libloop::Duration(at)), makeTask(id));
            }
            if (!r.ok())
                return res(op.k, r.status(), -1);
            handles_.push_back(r.value());
            return res(op.k, r.status(), std::int64_t(handles_.size() - 1));
        }
        case K::Cancel:
            return res(op.k, Errc::Ok, L.cancelTimer(idOf(op.a)) ? 1 : 0);
        case K::Reschedule: {
            const std::int64_t at = absDeadline(op.b, clock_.nowNs());
            return res(op.k,
                       L.rescheduleTimer(idOf(op.a), libloop::TimePoint(libloop::Duration(at))));
        }
        case K::Deadline: {
            const auto d = L.timerDeadline(idOf(op.a));
            return res(op.k, d.status(), d.ok() ? d.value().time_since_epoch().count() : 0);
        }
        case K::NullTask:
            switch (op.a % 7) {
            case 0:
                return res(op.k, L.submit(libloop::Task{}));
            case 1:
                return res(op.k, L.submitInternal(libloop::Task{}));
            case 2:
                return res(op.k, L.queueMicrotask(libloop::Task{}));
            case 3:
                return res(op.k, L.queueImmediate(libloop::Task{}));
            case 4:
                return res(op.k, L.scheduleTimer(libloop::Duration(1), libloop::Task{}).status());
            case 5:
                return res(op.k, L.scheduleTimerAt(clock_.now(), libloop::Task{}).status());
            default:
                return res(op.k,
                           L.registerFd(a_[0], libloop::FdEvent::Readable, libloop::FdCallback{}));
            }
        case K::RegisterFd: {
            const int sel = fdIndexOf(op.a);
            const int id = newCb(op.tmpl, libloop::CallbackKind::Fd, sel < kFds ? sel : -1, op.c);
            const libloop::Status s = L.registerFd(fdOf(op.a), eventsOf(op.b), makeFd(id));
            return res(op.k, s, s.sysErrno());
        }
        case K::ModifyFd: {
            const libloop::Status s = L.modifyFd(fdOf(op.a), eventsOf(op.b));
            return res(op.k, s, s.sysErrno());
        }
        case K::UnregisterFd: {
            const libloop::Status s = L.unregisterFd(fdOf(op.a));
            return res(op.k, s, s.sysErrno());
        }
        case K::CloseFd: {
            const int i = op.a % kFds;
            if (aOpen_[i]) {
                ::close(a_[i]);
                aOpen_[i] = false;
            }
            return;
        }
        case K::PeerWrite: {
            const int i = op.a % kFds;
            if (!bOpen_[i])
                return res(op.k, Errc::Ok, -2);
            int queued = 0;
            if (aOpen_[i] && ::ioctl(a_[i], FIONREAD, &queued) == 0 && queued >= kMaxPendingBytes)
                return res(op.k, Errc::Ok, -3); // not written (see kMaxPendingBytes)
            const char bytes[4] = {'a', 'b', 'c', 'd'};
            const ssize_t n =
                ::send(b_[i], bytes, std::size_t(1 + op.b % 4), MSG_NOSIGNAL | MSG_DONTWAIT);
            return res(op.k, Errc::Ok, n < 0 ? -1 : std::int64_t(n));
        }
        case K::PeerShutWr: {
            const int i = op.a % kFds;
            if (bOpen_[i])
                ::shutdown(b_[i], SHUT_WR);
            return;
        }
        case K::PeerClose: {
            const int i = op.a % kFds;
            if (bOpen_[i]) {
                ::close(b_[i]);
                bOpen_[i] = false;
            }
            return;
        }
        case K::ReadFd:
            return emit(E::Read, op.a % kFds, readPair(op.a % kFds, op.b % 9));
        case K::SetFastPath:
            return res(op.k, L.setFastPathMode(libloop::FastPathMode(op.a % 3)));
        case K::Advance: {
            const std::int64_t d = kAdvances[op.a & 7];
            if (clock_.nowNs() > INT64_MAX - d)
                return emit(E::Skip, std::int64_t(op.k));
            clock_.advance(libloop::Duration(d));
            return;
        }
        case K::RunOnce:
        case K::Run: {
            if (nest_ >= kMaxNest)
                return emit(E::Skip, std::int64_t(op.k));
            ++nest_;
            if (op.k == K::RunOnce) {
                const std::int64_t t = kTimeouts[op.a & 7];
                const auto r =
                    L.runOnce(t == kTimeoutForever ? libloop::kForever : libloop::Duration(t),
                              phasesOf(op.a));
                --nest_;
                return res(op.k, r.status(), r.ok() ? std::int64_t(r.value()) : 0);
            }
            const libloop::Status s = L.run();
            --nest_;
            return res(op.k, s);
        }
        case K::Stop:
            L.stop();
            return;
        case K::WakeUp:
            L.wakeUp();
            return;
        case K::Shutdown: {
            const auto r = L.shutdown((op.a & 1) ? libloop::ShutdownTimers::WaitForAll
                                                 : libloop::ShutdownTimers::CancelPending);
            if (!r.ok())
                return res(op.k, r.status());
            return res(op.k, r.status(), std::int64_t(r.value().tasksRun),
                       std::int64_t(r.value().timersCancelled));
        }
        case K::Close:
            return res(op.k, L.close());
        case K::Throw:
            return;
        case K::State:
            return res(op.k, Errc::Ok, std::int64_t(L.state()));
        case K::Attach:
            return res(op.k, L.attachToCurrentThread());
        case K::Count:
            break;
        }
    }

    const Program& P_;
    libloop::ManualClock clock_;
    std::unique_ptr<libloop::Loop> loop_;
    int a_[kFds] = {}, b_[kFds] = {};
    bool aOpen_[kFds] = {true, true, true}, bOpen_[kFds] = {true, true, true};
    std::vector<Cb> cbs_{Cb{}};
    std::vector<libloop::TimerId> handles_;
    int nest_ = 0, remoteLeft_ = kMaxRemote;
};

Token::Token(Real* real) : r(real) {
    ++r->live;
}
Token::~Token() {
    if (r)
        --r->live;
}

// ---- reporting ----
std::string configText(const Config& c) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "budget=%u ringCapacity=%u maxTimers=%u metrics=%d sampleEvery=%u "
                  "fastPath=%s hookThrows=%d",
                  c.budget, c.ringCapacity, c.maxTimers, int(c.metrics), c.sampleEvery,
                  libloop::fastPathModeName(c.fastPath), int(c.hookThrows));
    return buf;
}

void printTrace(const Program& P, const std::vector<int>& skipped, std::size_t upTo,
                const std::vector<std::size_t>& modelStarts, const std::vector<Ev>& modelLog,
                const std::vector<std::size_t>& realStarts, const std::vector<Ev>& realLog) {
    std::fprintf(stderr, "config: %s\n", configText(P.cfg).c_str());
    std::fprintf(stderr, "scripts:\n");
    for (std::size_t t = 1; t < P.tmpls.size(); ++t) {
        std::fprintf(stderr, "  t%zu:", t);
        for (const Op& op : P.tmpls[t])
            std::fprintf(stderr, " [%s]", opText(op).c_str());
        std::fprintf(stderr, "\n");
    }
    std::fprintf(stderr, "operations (callbacks are numbered in creation order):\n");
    for (std::size_t i = 0; i <= upTo && i < P.ops.size(); ++i)
        std::fprintf(stderr, "  #%zu %s%s\n", i, skipped[i] ? "(skipped: would block) " : "",
                     opText(P.ops[i]).c_str());
    auto dump = [&](const char* title, const std::vector<std::size_t>& starts,
                    const std::vector<Ev>& log) {
        std::fprintf(stderr, "%s:\n", title);
        for (std::size_t i = 0; i < starts.size(); ++i) {
            const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : log.size();
            if (starts[i] == end)
                continue;
            std::fprintf(stderr, "  after op #%zu:\n", i);
            for (std::size_t j = starts[i]; j < end; ++j)
                std::fprintf(stderr, "    %s\n", evText(log[j]).c_str());
        }
    };
    dump("expected (model) log", modelStarts, modelLog);
    dump("actual (loop) log", realStarts, realLog);
}

[[noreturn]] void diverge(const Program& P, const std::vector<int>& skipped, std::size_t upTo,
                          const std::vector<std::size_t>& modelStarts,
                          const std::vector<Ev>& modelLog,
                          const std::vector<std::size_t>& realStarts,
                          const std::vector<Ev>& realLog, const std::string& what) {
    std::fprintf(stderr, "\n==== fuzz_loop: the loop diverged from the model at op #%zu: %s\n",
                 upTo, what.c_str());
    printTrace(P, skipped, upTo, modelStarts, modelLog, realStarts, realLog);
    std::fprintf(stderr, "==== %s\n", what.c_str());
    std::abort();
}

std::string compareObserved(const Observed& m, const Observed& r) {
    std::string out;
    auto cmp = [&](const char* name, std::int64_t want, std::int64_t got) {
        if (want != got)
            out += std::string(name) + ": expected " + std::to_string(want) + ", got " +
                   std::to_string(got) + "; ";
    };
    cmp("pendingTimers()", m.pendingTimers, r.pendingTimers);
    cmp("registeredFds()", m.registeredFds, r.registeredFds);
    cmp("state()", m.state, r.state);
    cmp("fastPathMode()", m.fastPathMode, r.fastPathMode);
    cmp("now()", m.now, r.now);
    cmp("isLoopThread()", m.isLoopThread, r.isLoopThread);
    cmp("snapshot.timerHeapSize", m.heapSize, r.heapSize);
    cmp("snapshot.tasksRun", m.tasksRun, r.tasksRun);
    cmp("snapshot.microtasksRun", m.microtasksRun, r.microtasksRun);
    cmp("snapshot.timersRun", m.timersRun, r.timersRun);
    cmp("snapshot.fdCallbacksRun", m.fdCallbacksRun, r.fdCallbacksRun);
    cmp("snapshot.callbackErrors", m.callbackErrors, r.callbackErrors);
    cmp("snapshot.iterations", m.iterations, r.iterations);
    cmp("snapshot.microtaskBudgetHits", m.budgetHits, r.budgetHits);
    cmp("snapshot.externalQueue", m.externalQueue, r.externalQueue);
    cmp("snapshot.internalQueue", m.internalQueue, r.internalQueue);
    cmp("snapshot.microtaskRingUsed", m.ringUsed, r.ringUsed);
    cmp("snapshot.microtaskOverflow", m.overflow, r.overflow);
    cmp("snapshot.microtaskRingCapacity", m.ringCap, r.ringCap);
    cmp("snapshot.registeredFds", m.snapRegisteredFds, r.snapRegisteredFds);
    cmp("snapshot.state", m.snapState, r.snapState);
    cmp("snapshot.wakeSyscalls", m.wakeSyscalls, r.wakeSyscalls);
    cmp("live callback objects", m.live, r.live);
    for (std::size_t h = 0; h < m.deadlines.size() && h < r.deadlines.size(); ++h)
        cmp(("timerDeadline(handle " + std::to_string(h) + ") (INT64_MIN: NotFound)").c_str(),
            m.deadlines[h], r.deadlines[h]);
    cmp("timer ids issued", std::int64_t(m.deadlines.size()), std::int64_t(r.deadlines.size()));
    for (std::size_t i = 0; i < m.pending.size(); ++i)
        cmp(("bytes pending on pair " + std::to_string(i)).c_str(), m.pending[i], r.pending[i]);
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    static const Quirks quirks = quirksFromEnv();
    (void)helper().id(); // started before the first input
    const Program P = decode(data, size);
    Model model(P, quirks); // its log holds the current operation's entries only
    std::vector<Ev> modelLog;
    std::vector<int> skipped(P.ops.size(), 0);
    std::vector<std::size_t> modelStarts, realStarts;
    if (std::getenv("LIBLOOP_FUZZ_LOOP_PRINT")) {
        std::fprintf(stderr, "config: %s\n", configText(P.cfg).c_str());
        for (std::size_t t = 1; t < P.tmpls.size(); ++t) {
            std::fprintf(stderr, "  t%zu:", t);
            for (const Op& op : P.tmpls[t])
                std::fprintf(stderr, " [%s]", opText(op).c_str());
            std::fprintf(stderr, "\n");
        }
        for (std::size_t i = 0; i < P.ops.size(); ++i)
            std::fprintf(stderr, "  #%zu %s\n", i, opText(P.ops[i]).c_str());
    }
    {
        Real real(P);
        for (std::size_t i = 0; i < P.ops.size(); ++i) {
            modelStarts.push_back(modelLog.size());
            realStarts.push_back(real.log.size());
            Model trial = model;
            try {
                trial.top(P.ops[i]);
            } catch (const Unsafe&) {
                skipped[i] = 1; // the loop would block in real time (or run too long)
                continue;
            }
            modelLog.insert(modelLog.end(), trial.log.begin(), trial.log.end());
            trial.log.clear();
            model = std::move(trial);
            real.top(P.ops[i]);
            const std::size_t from = modelStarts.back();
            if (modelLog.size() != real.log.size() ||
                !std::equal(modelLog.begin() + std::ptrdiff_t(from), modelLog.end(),
                            real.log.begin() + std::ptrdiff_t(from))) {
                std::size_t j = from;
                while (j < modelLog.size() && j < real.log.size() && modelLog[j] == real.log[j])
                    ++j;
                diverge(P, skipped, i, modelStarts, modelLog, realStarts, real.log,
                        "the logs differ at entry " + std::to_string(j - from) + " of op #" +
                            std::to_string(i) + ": expected '" +
                            (j < modelLog.size() ? evText(modelLog[j]) : "(nothing)") + "', got '" +
                            (j < real.log.size() ? evText(real.log[j]) : "(nothing)") + "'");
            }
            if (std::getenv("LIBLOOP_FUZZ_LOOP_PRINT"))
                std::fprintf(stderr, "op #%zu %s: done, clock %lld\n", i, opText(P.ops[i]).c_str(),
                             static_cast<long long>(model.observe().now));
            const std::string diff = compareObserved(model.observe(), real.observe());
            if (!diff.empty())
                diverge(P, skipped, i, modelStarts, modelLog, realStarts, real.log,
                        "state after op #" + std::to_string(i) + ": " + diff);
        }
        if (std::getenv("LIBLOOP_FUZZ_LOOP_PRINT")) // a readable trace of a passing input
            printTrace(P, skipped, P.ops.size(), modelStarts, modelLog, realStarts, real.log);
        real.destroyLoop();
        if (real.live != 0)
            diverge(P, skipped, P.ops.size(), modelStarts, modelLog, realStarts, real.log,
                    "callbacks still alive after the loop was destroyed: " +
                        std::to_string(real.live));
    }
    return 0;
}
