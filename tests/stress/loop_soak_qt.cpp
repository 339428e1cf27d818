// loop-soak-qt: the soak at the Qt dispatcher level. A QCoreApplication (and worker QThreads) on
// libloop::qt::LoopEventDispatcher under a long mixed load, then proof that every unit of work
// was delivered exactly once (or cancelled), that RSS stayed flat after warm-up, and figures for
// latency drift. See tests/stress/README.md.
//
// Units (each one holds a ledger entry until it settles, see soak_common.h):
//   - single-shot QTimer armings (started, stopped and restarted at random, zero intervals too):
//     one timeout each, or cancelled by stop()/restart;
//   - raw QObject::startTimer() timers: the first QTimerEvent kills the timer (a second one, or
//     one for a killed timer, is a failure); killTimer() cancels;
//   - QTimer::singleShot(ms, context, functor);
//   - posted events of two custom types at three priorities, from producer threads, worker QThreads
//   and the main
//     thread, to the main thread and to the workers: delivered once, or discarded (destroyed
//     undelivered) when their receiver is deleted first;
//   - queued QMetaObject::invokeMethod calls between producers, workers and the main thread;
//   - deleteLater() (from the object's own thread and from producer threads): the destructor
//     runs once;
//   - worker QThreads on libloop (installOn) arming their own single-shot QTimers.
// Socket notifiers watch socketpairs written from producer and worker threads: every byte
// written is read by an activated() slot or still buffered when the pair closes.
// Repeating QTimers must never time out while stopped. Any Qt warning fails the run.
#include <libloop/qt/install.h>

#include "soak_common.h"

#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QEvent>
#include <QMetaObject>
#include <QObject>
#include <QSocketNotifier>
#include <QThread>
#include <QTimer>
#include <QTimerEvent>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using soak::format;
using soak::formatNs;
using soak::Ledger;
using soak::Rng;

constexpr const char* kDispatcherClass = "libloop::qt::LoopEventDispatcher";
constexpr int kWorkers = 2;

enum Kind : std::uint8_t {
    kQTimerArming,     // single-shot QTimer start() on the main thread
    kRawTimer,         // QObject::startTimer() on the main thread, killed at its first event
    kStaticSingleShot, // QTimer::singleShot(ms, context, functor)
    kEventProducer,    // postEvent from a producer thread to the main thread
    kEventWorker,      // postEvent from a worker QThread to the main thread
    kEventMain,        // postEvent on the main thread (also to short-lived receivers)
    kEventToWorker,    // postEvent from the main thread or a producer to a worker
    kCallProducer,     // queued invokeMethod from a producer thread to the main thread
    kCallWorker,       // ... from a worker QThread to the main thread
    kCallToWorker,     // ... from the main thread or a producer to a worker
    kWorkerTimer,      // single-shot QTimer start() inside a worker QThread
    kDeleteLater,      // deleteLater(): the destructor runs once
    kKindCount
};

constexpr const char* kKindNames[kKindCount] = {
    "QTimer single shot", "startTimer/killTimer", "QTimer::singleShot", "event producer->main",
    "event worker->main", "event main->main",     "event ->worker",     "call producer->main",
    "call worker->main",  "call ->worker",        "QTimer in worker",   "deleteLater",
};

class SoakQt;

// 24 bytes, trivially copyable: what every callback and event carries.
struct Unit {
    SoakQt* soak;
    std::uint64_t uid;
    std::uint32_t slot;
    Kind kind;
};

// Failures and warnings from any thread.
soak::Failures* gFailures = nullptr;
std::atomic<std::uint64_t> gQtWarnings{0};

void messageHandler(QtMsgType type, const QMessageLogContext&, const QString& msg) {
    if (type == QtDebugMsg || type == QtInfoMsg)
        return;
    gQtWarnings.fetch_add(1, std::memory_order_relaxed);
    const std::string text = msg.toStdString();
    std::fprintf(stderr, "Qt warning: %s\n", text.c_str());
    if (gFailures)
        gFailures->add("Qt warning: " + text);
    if (type == QtFatalMsg)
        std::abort();
}

// Same socketpair accounting as loop-soak: `written`/`writable` under `m`, the reader's side on
// the main thread; at close written == read + still buffered.
struct Pair {
    std::uint64_t id = 0;
    int rd = -1, wr = -1;
    std::mutex m;
    bool writable = true;      // m
    std::uint64_t written = 0; // m
    // main thread
    std::uint64_t readBytes = 0;
    QSocketNotifier* readN = nullptr;
    QSocketNotifier* writeN = nullptr;
    bool halfClosed = false;
    bool eof = false;
};

class Receiver;

class SoakQt;

// A posted event that is one unit: delivered once (deliver()), or destroyed undelivered.
class UnitEvent final : public QEvent {
public:
    // Two custom types (picked by the uid), so the receivers' dispatch on type is exercised too.
    explicit UnitEvent(const Unit& u) : QEvent(eventType(int(u.uid & 1))), u_(u) {}
    ~UnitEvent() override;
    UnitEvent(const UnitEvent&) = delete;
    UnitEvent& operator=(const UnitEvent&) = delete;
    void deliver(Ledger::Cache* cache);
    static QEvent::Type eventType(int which) {
        static const QEvent::Type types[2] = {QEvent::Type(QEvent::registerEventType()),
                                              QEvent::Type(QEvent::registerEventType())};
        return types[which];
    }
    static bool isUnitEvent(const QEvent* e) {
        return e->type() == eventType(0) || e->type() == eventType(1);
    }

private:
    Unit u_;
    bool delivered_ = false; // the receiver's thread only
};

// Receives UnitEvents on its thread; settles `deathUnit` (a deleteLater unit) when destroyed.
class Receiver : public QObject {
public:
    Receiver(SoakQt* soak, Ledger::Cache* cache) : soak_(soak), cache_(cache) {}
    ~Receiver() override;
    bool event(QEvent* e) override {
        if (UnitEvent::isUnitEvent(e)) {
            static_cast<UnitEvent*>(e)->deliver(cache_);
            return true;
        }
        return QObject::event(e);
    }
    // Set by the thread that calls deleteLater(), before the call.
    std::optional<Unit> deathUnit;

protected:
    SoakQt* soak_;
    Ledger::Cache* cache_; // the cache of the thread this object lives in
};

class Worker;

class SoakQt : public Receiver {
public:
    explicit SoakQt(const soak::Options& o);
    ~SoakQt() override;
    void start();
    int verdict();

    // [any thread] `cache` belongs to the calling thread, or null.
    void runUnit(Ledger::Cache* cache, const Unit& u);
    void discard(const Unit& u);
    // [any thread] A fresh unit, or false (back-pressure) when the ledger is full.
    bool issue(Ledger::Cache& cache, Kind kind, Unit& u);
    void accepted(Kind k) { stats_[k].accepted.fetch_add(1, std::memory_order_relaxed); }
    void cancelled(Ledger::Cache* cache, const Unit& u, const char* how);
    void violation(std::string msg) { failures_.add(std::move(msg)); }
    void writeSome(Rng& rng);
    // [any thread] False when the ledger is full (back-pressure).
    bool postEventTo(QObject* receiver, Ledger::Cache& cache, Kind kind);
    bool callMain(Ledger::Cache& cache, Kind kind);
    Ledger& ledger() { return ledger_; }
    Ledger::Cache& mainCache() { return mainCache_; }
    bool injectNow(const char* which) {
        return opt_.inject == which && !injected_.exchange(true, std::memory_order_relaxed);
    }

protected:
    void timerEvent(QTimerEvent* e) override;

private:
    struct TimerSlot {
        QTimer* t = nullptr;
        std::optional<Unit> armed; // the outstanding single-shot arming
        bool repeating = false;
        int zeroFires = 0;
    };

    void storm();
    void onQTimer(int i);
    void cancelArming(TimerSlot& s);
    void manageFds();
    void openPair();
    void onReadable(const std::shared_ptr<Pair>& p);
    void halfClose(const std::shared_ptr<Pair>& p);
    void closePair(std::shared_ptr<Pair> p);
    void tick();
    void stopLoad();
    void printWindow(int i);
    void producer(int index);
    bool act(Rng& rng, Ledger::Cache& cache);

    const soak::Options opt_;
    const std::int64_t durationNs_;
    const std::int64_t startNs_;
    soak::Failures failures_;
    Ledger ledger_;
    Ledger::Cache mainCache_;
    soak::KindCounters stats_[kKindCount];
    std::atomic<bool> injected_{false};
    Rng rng_;

    // main thread
    std::vector<TimerSlot> qtimers_;
    std::unordered_map<int, Unit> rawTimers_;
    std::uint64_t repeatingFires_ = 0, repeatingStarts_ = 0, rawKilled_ = 0;
    std::vector<Receiver*> ephemeral_;
    std::uint64_t ephemeralDeleted_ = 0, ephemeralDeletedLater_ = 0;
    std::vector<std::shared_ptr<Pair>> pairs_;
    std::uint64_t nextPairId_ = 0, pairsOpened_ = 0, pairsClosed_ = 0, pairsHalfClosed_ = 0,
                  pairsEof_ = 0, readActivations_ = 0, writeActivations_ = 0, toggles_ = 0;
    std::uint64_t bytesWritten_ = 0, bytesRead_ = 0, bytesDrained_ = 0;
    int fdTarget_ = 0;
    std::uint64_t managerTicks_ = 0;
    QTimer* stormTimer_ = nullptr;
    QTimer* fdTimer_ = nullptr;
    QTimer* tickTimer_ = nullptr;
    enum class Phase { Running, Draining } phase_ = Phase::Running;
    double nextRssSample_ = 0;
    int printedWindows_ = 0;
    std::uint64_t lastOutstanding_ = 0;
    std::int64_t lastProgressNs_ = 0;
    bool drainStalled_ = false;
    std::uint64_t windowUnits_[soak::LatencyWindows::kWindows + 1] = {};
    soak::LatencyWindows eventLat_, callLat_, timerLat_;
    soak::RssTracker rss_;
    soak::WarmupSaturation saturation_{rss_.warmupSeconds()};

    // shared with producers and workers
    std::mutex pairsMu_;
    std::vector<std::shared_ptr<Pair>> writablePairs_; // pairsMu_
    std::atomic<std::uint64_t> fdWrites_{0}, fdWriteFull_{0}, fdWriteLate_{0};
    std::mutex handoffMu_;
    std::vector<Receiver*> handoff_; // main-thread objects a producer will deleteLater()
    std::atomic<bool> stopProducers_{false};
    std::vector<std::thread> producers_;
    std::vector<QThread*> threads_;
    std::vector<Worker*> workers_;
    bool workersStopped_ = false;
};

// A worker QThread's object: it lives in the worker thread (on libloop via installOn), receives
// events and calls, arms its own single-shot QTimers and sends work to the main thread.
class Worker : public Receiver {
public:
    Worker(SoakQt* soak, int index)
        : Receiver(soak, &cache), index_(index), rng_(std::uint64_t(index) * 7717 + 11) {}

    // [worker thread]
    void init() {
        const QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance();
        dispatcherOk.store(d && std::strcmp(d->metaObject()->className(), kDispatcherClass) == 0,
                           std::memory_order_relaxed);
        if (d)
            dispatcherName = d->metaObject()->className();
        for (int i = 0; i < 8; ++i) {
            auto* t = new QTimer(this);
            t->setSingleShot(true);
            t->setTimerType(Qt::PreciseTimer);
            const int idx = i;
            QObject::connect(t, &QTimer::timeout, this, [this, idx] { onTimer(idx); });
            timers_.push_back(t);
            armed_.emplace_back();
        }
        driver_ = new QTimer(this);
        QObject::connect(driver_, &QTimer::timeout, this, [this] { drive(); });
        driver_->start(1);
        started.store(true, std::memory_order_release);
    }

    // [worker thread] Pending armings are cancelled; what was posted here before this call was
    // queued has been delivered (posted events are FIFO); then the thread's event loop ends.
    void finish() {
        driver_->stop();
        for (std::size_t i = 0; i < timers_.size(); ++i) {
            if (armed_[i]) {
                if (!timers_[i]->isActive())
                    soak_->violation("worker QTimer went inactive without timing out");
                timers_[i]->stop();
                soak_->cancelled(&cache, *armed_[i], "stop()");
                armed_[i].reset();
            }
        }
        QThread::currentThread()->quit();
    }

    Ledger::Cache cache; // the worker thread's; flushed by the main thread after wait()
    std::atomic<bool> dispatcherOk{false};
    std::atomic<bool> started{false};
    std::string dispatcherName; // written before `started`

private:
    void onTimer(int i) {
        if (!armed_[std::size_t(i)]) {
            soak_->violation("worker QTimer timed out with no arming outstanding");
            return;
        }
        const Unit u = *armed_[std::size_t(i)];
        armed_[std::size_t(i)].reset();
        soak_->runUnit(&cache, u);
    }

    // Every 1 ms: a little of everything.
    void drive() {
        const int n = int(rng_.below(8));
        for (int k = 0; k < n; ++k) {
            const std::uint64_t r = rng_.below(100);
            if (r < 35) {
                soak_->postEventTo(soak_, cache, kEventWorker);
            } else if (r < 60) {
                soak_->callMain(cache, kCallWorker);
            } else if (r < 80) {
                const std::size_t i = rng_.below(timers_.size());
                if (armed_[i]) { // restart: the pending arming is cancelled
                    soak_->cancelled(&cache, *armed_[i], "restart");
                    armed_[i].reset();
                }
                Unit u{};
                if (!soak_->issue(cache, kWorkerTimer, u))
                    continue;
                const int ms = rng_.chance(200) ? 0 : int(1 + rng_.below(10));
                armed_[i] = u;
                soak_->accepted(kWorkerTimer);
                timers_[i]->start(ms);
            } else if (r < 90) {
                Unit u{};
                if (!soak_->issue(cache, kDeleteLater, u))
                    continue;
                auto* obj = new Receiver(soak_, &cache);
                obj->deathUnit = u;
                soak_->accepted(kDeleteLater);
                obj->deleteLater();
            } else {
                soak_->writeSome(rng_);
            }
        }
    }

    int index_;
    Rng rng_;
    std::vector<QTimer*> timers_;
    std::vector<std::optional<Unit>> armed_;
    QTimer* driver_ = nullptr;
};

// ---------------------------------------------------------------------------------------------

UnitEvent::~UnitEvent() {
    if (!delivered_)
        u_.soak->discard(u_);
}

void UnitEvent::deliver(Ledger::Cache* cache) {
    if (delivered_) {
        u_.soak->violation(
            format("unit %llu: the same QEvent was delivered twice", (unsigned long long)u_.uid));
        return;
    }
    delivered_ = true;
    u_.soak->runUnit(cache, u_);
}

Receiver::~Receiver() {
    if (deathUnit)
        soak_->runUnit(cache_, *deathUnit);
}

SoakQt::SoakQt(const soak::Options& o)
    : Receiver(this, &mainCache_), opt_(o), durationNs_(std::int64_t(o.seconds * 1e9)),
      startNs_(soak::monoNs()), ledger_(o.maxOutstanding), rng_(o.seed * 7919 + 1),
      eventLat_("posted event latency", startNs_, durationNs_),
      callLat_("queued call latency", startNs_, durationNs_),
      timerLat_("QTimer lateness", startNs_, durationNs_), rss_(o.seconds) {
    gFailures = &failures_;
}

// The worker threads have finished (stopLoad), so their objects may go from here. Events still
// queued for this object (only after a stalled drain) are discarded while the ledger they settle
// in is still alive.
SoakQt::~SoakQt() {
    QCoreApplication::removePostedEvents(this);
    for (Worker* w : workers_)
        delete w;
    for (QThread* th : threads_) {
        th->wait();
        delete th;
    }
    gFailures = nullptr;
}

bool SoakQt::issue(Ledger::Cache& cache, Kind kind, Unit& u) {
    std::uint32_t slot = 0;
    std::uint64_t uid = 0;
    if (!ledger_.issue(cache, kind, slot, uid)) {
        stats_[kind].noSlot.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    u = Unit{this, uid, slot, kind};
    ledger_.setStamp(slot, soak::monoNs());
    return true;
}

void SoakQt::runUnit(Ledger::Cache* cache, const Unit& u) {
    const std::int64_t stamp = ledger_.stamp(u.slot); // before settle: the slot is reused after
    std::uint64_t found = 0;
    if (!ledger_.settle(cache, u.slot, u.uid, Ledger::Ran, found)) {
        violation(std::string(kKindNames[u.kind]) + ": " +
                  Ledger::describe(u.uid, Ledger::Ran, found));
        return;
    }
    stats_[u.kind].ran.fetch_add(1, std::memory_order_relaxed);
    // Latency only for what is delivered on the main thread (the windows have one writer).
    const std::int64_t now = soak::monoNs();
    switch (u.kind) {
    case kEventProducer:
    case kEventWorker:
        eventLat_.record(now, now - stamp);
        break;
    case kCallProducer:
    case kCallWorker:
        callLat_.record(now, now - stamp);
        break;
    case kQTimerArming:
    case kRawTimer:
        timerLat_.record(now, now - stamp); // stamp = start + interval
        break;
    default:
        break;
    }
    if (QThread::currentThread() == thread())
        ++windowUnits_[eventLat_.windowAt(now)];
    // The faults that prove the checks can fail.
    if (u.kind == kEventProducer && injectNow("double-run"))
        runUnit(cache, u);
}

// A posted event destroyed undelivered: its receiver was deleted first.
void SoakQt::discard(const Unit& u) {
    std::uint64_t found = 0;
    if (!ledger_.settle(nullptr, u.slot, u.uid, Ledger::Cancelled, found)) {
        violation(std::string(kKindNames[u.kind]) + ": discarded event " +
                  Ledger::describe(u.uid, Ledger::Cancelled, found));
        return;
    }
    stats_[u.kind].cancelled.fetch_add(1, std::memory_order_relaxed);
}

void SoakQt::cancelled(Ledger::Cache* cache, const Unit& u, const char* how) {
    std::uint64_t found = 0;
    if (!ledger_.settle(cache, u.slot, u.uid, Ledger::Cancelled, found)) {
        violation(format("%s: %s: ", kKindNames[u.kind], how) +
                  Ledger::describe(u.uid, Ledger::Cancelled, found));
        return;
    }
    stats_[u.kind].cancelled.fetch_add(1, std::memory_order_relaxed);
    if (u.kind == kQTimerArming && injectNow("cancelled-run"))
        runUnit(cache, u);
}

bool SoakQt::postEventTo(QObject* receiver, Ledger::Cache& cache, Kind kind) {
    Unit u{};
    if (!issue(cache, kind, u))
        return false;
    accepted(kind);
    if (kind == kEventProducer && injectNow("lose"))
        return true; // counted as posted, never posted: the loss the check must see
    // Normal, high and low priority (by uid): each is still delivered exactly once.
    static constexpr int kPriorities[3] = {Qt::NormalEventPriority, Qt::HighEventPriority,
                                           Qt::LowEventPriority};
    QCoreApplication::postEvent(receiver, new UnitEvent(u), kPriorities[u.uid % 3]);
    return true;
}

bool SoakQt::callMain(Ledger::Cache& cache, Kind kind) {
    Unit u{};
    if (!issue(cache, kind, u))
        return false;
    accepted(kind);
    QMetaObject::invokeMethod(
        this, [u] { u.soak->runUnit(&u.soak->mainCache(), u); }, Qt::QueuedConnection);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Main thread

void SoakQt::start() {
    for (int i = 0; i < 48; ++i) {
        TimerSlot s;
        s.t = new QTimer(this);
        s.t->setTimerType(Qt::PreciseTimer);
        connect(s.t, &QTimer::timeout, this, [this, i] { onQTimer(i); });
        qtimers_.push_back(s);
    }
    stormTimer_ = new QTimer(this);
    connect(stormTimer_, &QTimer::timeout, this, [this] { storm(); });
    stormTimer_->start(1);
    fdTimer_ = new QTimer(this);
    connect(fdTimer_, &QTimer::timeout, this, [this] { manageFds(); });
    fdTimer_->start(4);
    tickTimer_ = new QTimer(this);
    connect(tickTimer_, &QTimer::timeout, this, [this] { tick(); });
    tickTimer_->start(50);

    for (int i = 0; i < kWorkers; ++i) {
        auto* th = new QThread;
        th->setObjectName(QStringLiteral("soak-worker-%1").arg(i));
        if (!libloop::qt::installOn(th))
            violation("installOn(worker) refused");
        auto* w = new Worker(this, i);
        w->moveToThread(th);
        th->start();
        QMetaObject::invokeMethod(
            w, [w] { w->init(); }, Qt::QueuedConnection);
        threads_.push_back(th);
        workers_.push_back(w);
    }
    for (int i = 0; i < opt_.producers; ++i)
        producers_.emplace_back([this, i] { producer(i); });
}

void SoakQt::onQTimer(int i) {
    TimerSlot& s = qtimers_[std::size_t(i)];
    if (s.repeating) {
        if (!s.t->isActive())
            violation(format("repeating QTimer %d timed out while stopped", i));
        ++repeatingFires_;
        if (s.t->interval() == 0 && ++s.zeroFires >= 20)
            s.t->stop(); // a zero-interval repeating timer fires every iteration: keep it short
        return;
    }
    if (!s.armed) {
        violation(format("single-shot QTimer %d timed out with no arming outstanding", i));
        return;
    }
    const Unit u = *s.armed;
    s.armed.reset();
    runUnit(&mainCache_, u);
}

void SoakQt::cancelArming(TimerSlot& s) {
    if (!s.armed)
        return;
    // An arming that neither timed out nor was stopped would be a lost timer.
    if (!s.t->isActive())
        violation("single-shot QTimer went inactive without timing out");
    cancelled(&mainCache_, *s.armed, "stop()/restart");
    s.armed.reset();
}

void SoakQt::timerEvent(QTimerEvent* e) {
    const auto it = rawTimers_.find(e->timerId());
    if (it == rawTimers_.end()) {
        violation(format("QTimerEvent for timer %d, which is not running", e->timerId()));
        return;
    }
    const Unit u = it->second;
    rawTimers_.erase(it);
    killTimer(e->timerId());
    runUnit(&mainCache_, u);
}

// Every 1 ms: timers armed, restarted, stopped and killed; events and calls; objects deleted.
void SoakQt::storm() {
    for (int n = int(rng_.below(6)); n > 0; --n) {
        TimerSlot& s = qtimers_[rng_.below(qtimers_.size())];
        const std::uint64_t r = rng_.below(100);
        if (r < 60) {
            cancelArming(s); // start() on an active timer restarts it
            s.t->stop();
            s.repeating = rng_.chance(200);
            s.zeroFires = 0;
            const int ms = rng_.chance(150) ? 0 : int(1 + rng_.below(20));
            s.t->setSingleShot(!s.repeating);
            if (s.repeating) {
                ++repeatingStarts_;
            } else {
                Unit u{};
                if (!issue(mainCache_, kQTimerArming, u))
                    continue;
                ledger_.setStamp(u.slot, soak::monoNs() + std::int64_t(ms) * 1'000'000);
                s.armed = u;
                accepted(kQTimerArming);
            }
            s.t->start(ms);
        } else if (r < 85) {
            cancelArming(s);
            s.t->stop();
        }
    }
    for (int n = int(rng_.below(4)); n > 0; --n) {
        Unit u{};
        if (!issue(mainCache_, kRawTimer, u))
            break;
        const int ms = rng_.chance(100) ? 0 : int(1 + rng_.below(20));
        ledger_.setStamp(u.slot, soak::monoNs() + std::int64_t(ms) * 1'000'000);
        const int id = startTimer(std::chrono::milliseconds(ms), Qt::PreciseTimer);
        if (id == 0 || rawTimers_.count(id)) {
            violation(
                format("startTimer answered %d (%s)", id, id ? "an id still running" : "refused"));
            std::uint64_t found = 0;
            (void)ledger_.settle(&mainCache_, u.slot, u.uid, Ledger::Refused, found);
            stats_[kRawTimer].refused.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        rawTimers_.emplace(id, u);
        accepted(kRawTimer);
    }
    if (!rawTimers_.empty() && rng_.chance(400)) {
        auto it = rawTimers_.begin();
        std::advance(it, std::ptrdiff_t(rng_.below(std::min<std::size_t>(rawTimers_.size(), 16))));
        killTimer(it->first);
        ++rawKilled_;
        const Unit u = it->second;
        rawTimers_.erase(it);
        cancelled(&mainCache_, u, "killTimer()");
    }
    for (int n = int(rng_.below(3)); n > 0; --n) {
        Unit u{};
        if (!issue(mainCache_, kStaticSingleShot, u))
            break;
        accepted(kStaticSingleShot);
        QTimer::singleShot(rng_.chance(300) ? 0 : int(rng_.below(15)), this,
                           [u] { u.soak->runUnit(&u.soak->mainCache(), u); });
    }
    for (int n = int(rng_.below(6)); n > 0; --n)
        postEventTo(this, mainCache_, kEventMain);
    // Short-lived receivers: deleted at once (their pending events are discarded) or later.
    if (ephemeral_.size() < 8 && rng_.chance(300))
        ephemeral_.push_back(new Receiver(this, &mainCache_));
    if (!ephemeral_.empty()) {
        for (int n = int(rng_.below(4)); n > 0; --n)
            postEventTo(ephemeral_[rng_.below(ephemeral_.size())], mainCache_, kEventMain);
        if (rng_.chance(100)) {
            const std::size_t i = rng_.below(ephemeral_.size());
            Receiver* r = ephemeral_[i];
            ephemeral_.erase(ephemeral_.begin() + std::ptrdiff_t(i));
            Unit u{};
            if (rng_.chance(500) && issue(mainCache_, kDeleteLater, u)) {
                r->deathUnit = u;
                accepted(kDeleteLater);
                r->deleteLater();
                ++ephemeralDeletedLater_;
            } else {
                delete r;
                ++ephemeralDeleted_;
            }
        }
    }
    if (!workersStopped_) {
        for (int n = int(rng_.below(3)); n > 0; --n) {
            Worker* w = workers_[rng_.below(workers_.size())];
            if (rng_.chance(500)) {
                postEventTo(w, mainCache_, kEventToWorker);
            } else {
                Unit u{};
                if (!issue(mainCache_, kCallToWorker, u))
                    break;
                accepted(kCallToWorker);
                QMetaObject::invokeMethod(
                    w, [u, w] { u.soak->runUnit(&w->cache, u); }, Qt::QueuedConnection);
            }
        }
    }
    for (int n = int(rng_.below(3)); n > 0; --n) {
        auto* obj = new Receiver(this, &mainCache_);
        std::unique_lock lock(handoffMu_);
        if (handoff_.size() < 256 && rng_.chance(500)) {
            handoff_.push_back(obj); // a producer thread will deleteLater() it
            continue;
        }
        lock.unlock();
        Unit u{};
        if (!issue(mainCache_, kDeleteLater, u)) {
            delete obj;
            break;
        }
        obj->deathUnit = u;
        accepted(kDeleteLater);
        obj->deleteLater();
    }
}

void SoakQt::manageFds() {
    if (managerTicks_++ % 100 == 0) {
        static constexpr int kTargets[] = {0, 1, 3, 6, 12};
        fdTarget_ = kTargets[rng_.below(std::size(kTargets))];
    }
    for (std::size_t i = 0; i < pairs_.size();) { // EOF seen by the reader: close now
        if (pairs_[i]->eof)
            closePair(pairs_[i]);
        else
            ++i;
    }
    if (int(pairs_.size()) < fdTarget_) {
        openPair();
    } else if (int(pairs_.size()) > fdTarget_) {
        const std::shared_ptr<Pair> p = pairs_[rng_.below(pairs_.size())];
        if (!p->halfClosed && rng_.chance(400))
            halfClose(p);
        else
            closePair(p);
    }
    if (!pairs_.empty() && rng_.chance(300)) {
        const std::shared_ptr<Pair>& p = pairs_[rng_.below(pairs_.size())];
        if (!p->halfClosed) {
            p->readN->setEnabled(!p->readN->isEnabled() || rng_.chance(500));
            ++toggles_;
        }
        if (!p->writeN && rng_.chance(300)) {
            // A Write notifier on the same fd as the Read one (one epoll registration shared);
            // a socket is always writable, so it fires once and deletes itself.
            p->writeN = new QSocketNotifier(p->rd, QSocketNotifier::Write, this);
            QSocketNotifier* wn = p->writeN;
            std::weak_ptr<Pair> weak = p;
            connect(wn, &QSocketNotifier::activated, this, [this, wn, weak] {
                ++writeActivations_;
                wn->setEnabled(false);
                wn->deleteLater();
                if (auto p = weak.lock(); p && p->writeN == wn)
                    p->writeN = nullptr;
            });
        }
    }
    if (rng_.chance(200))
        writeSome(rng_);
}

void SoakQt::openPair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        violation(format("socketpair failed: errno %d", errno));
        return;
    }
    auto p = std::make_shared<Pair>();
    p->id = ++nextPairId_;
    p->rd = sv[0];
    p->wr = sv[1];
    p->readN = new QSocketNotifier(p->rd, QSocketNotifier::Read, this);
    std::weak_ptr<Pair> weak = p;
    connect(p->readN, &QSocketNotifier::activated, this, [this, weak] {
        if (auto p = weak.lock())
            onReadable(p);
        else
            violation("a deleted socket notifier was activated");
    });
    ++pairsOpened_;
    pairs_.push_back(p);
    std::lock_guard lock(pairsMu_);
    writablePairs_.push_back(std::move(p));
}

void SoakQt::onReadable(const std::shared_ptr<Pair>& p) {
    ++readActivations_;
    if (!p->readN->isEnabled())
        violation(
            format("pair %llu: a disabled notifier was activated", (unsigned long long)p->id));
    char buf[8192];
    for (int i = 0; i < 2; ++i) { // at most 16 KiB: level-triggered readiness brings the rest
        const ssize_t r = ::recv(p->rd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            p->readBytes += std::uint64_t(r);
            continue;
        }
        if (r == 0) {
            if (!p->halfClosed)
                violation(format("pair %llu: EOF although its writer was never shut down",
                                 (unsigned long long)p->id));
            p->eof = true;
            p->readN->setEnabled(false); // closed by the manager, outside this slot
        }
        break;
    }
}

void SoakQt::halfClose(const std::shared_ptr<Pair>& p) {
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
    p->readN->setEnabled(true);
}

// By value: the caller's reference may point into pairs_, which this erases from.
void SoakQt::closePair(std::shared_ptr<Pair> p) {
    delete p->readN; // never from inside its own activated() slot (the manager calls this)
    p->readN = nullptr;
    delete p->writeN;
    p->writeN = nullptr;
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
        violation(format("pair %llu: %llu bytes written, but %llu read + %llu left at close",
                         (unsigned long long)p->id, (unsigned long long)written,
                         (unsigned long long)p->readBytes, (unsigned long long)drained));
    bytesWritten_ += written;
    bytesRead_ += p->readBytes;
    bytesDrained_ += drained;
    ++pairsClosed_;
    if (p->eof)
        ++pairsEof_;
    std::erase(pairs_, p);
}

// [any thread]
void SoakQt::writeSome(Rng& rng) {
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
        fdWriteFull_.fetch_add(1, std::memory_order_relaxed);
    } else {
        violation(format("send on pair %llu: errno %d", (unsigned long long)p->id, errno));
    }
}

// Every 50 ms: RSS once a second, window lines, and the phases: load until the run time is up,
// then drain until every unit has settled.
void SoakQt::tick() {
    const std::int64_t now = soak::monoNs();
    const double t = double(now - startNs_) / 1e9;
    if (phase_ == Phase::Running) {
        saturation_.maybeStall(t, ledger_);
        if (t >= opt_.seconds || t >= nextRssSample_) {
            rss_.sample(t);
            nextRssSample_ += 1;
        }
        const int w = eventLat_.windowAt(now);
        while (printedWindows_ < w && printedWindows_ < soak::LatencyWindows::kWindows)
            printWindow(printedWindows_++);
        if (t >= opt_.seconds) {
            stopLoad();
            phase_ = Phase::Draining;
            lastOutstanding_ = ledger_.outstanding();
            lastProgressNs_ = now;
        }
        return;
    }
    // Draining: counts decide; the clock only guards against a unit that never comes (then the
    // verdict names it). Any progress restarts the guard.
    const std::uint64_t out = ledger_.outstanding();
    if (out == 0) {
        QCoreApplication::quit();
        return;
    }
    if (out != lastOutstanding_) {
        lastOutstanding_ = out;
        lastProgressNs_ = now;
    } else if (double(now - lastProgressNs_) > opt_.drainStallSeconds * 1e9) {
        drainStalled_ = true;
        QCoreApplication::quit();
    }
}

// The end of the load: producers joined, main-thread timers stopped (armings cancelled), workers
// finished and joined, pairs closed. What is still outstanding then must be delivered.
void SoakQt::stopLoad() {
    stopProducers_.store(true, std::memory_order_relaxed);
    for (auto& t : producers_)
        t.join();
    stormTimer_->stop();
    fdTimer_->stop();
    for (TimerSlot& s : qtimers_) {
        cancelArming(s);
        s.t->stop();
    }
    for (const auto& [id, u] : rawTimers_) {
        killTimer(id);
        cancelled(&mainCache_, u, "killTimer()");
    }
    rawTimers_.clear();
    workersStopped_ = true;
    for (Worker* w : workers_)
        QMetaObject::invokeMethod(
            w, [w] { w->finish(); }, Qt::QueuedConnection);
    for (QThread* th : threads_)
        th->wait();
    for (Worker* w : workers_)
        ledger_.flush(w->cache);
    while (!pairs_.empty())
        closePair(pairs_.back());
    for (Receiver* r : ephemeral_)
        delete r;
    ephemeral_.clear();
    std::lock_guard lock(handoffMu_);
    for (Receiver* obj : handoff_) {
        Unit u{};
        if (issue(mainCache_, kDeleteLater, u)) {
            obj->deathUnit = u;
            accepted(kDeleteLater);
            obj->deleteLater();
        } else {
            delete obj;
        }
    }
    handoff_.clear();
}

void SoakQt::printWindow(int i) {
    auto pp = [&](const soak::LatencyWindows& l) {
        return formatNs(l.window(i).quantile(0.5)) + " / " + formatNs(l.window(i).quantile(0.99));
    };
    const auto& samples = rss_.samples();
    std::printf("[loop-soak-qt] window %d/%d: %llu units on main | event %s | call %s | QTimer %s "
                "| RSS %s\n",
                i + 1, soak::LatencyWindows::kWindows, (unsigned long long)windowUnits_[i],
                pp(eventLat_).c_str(), pp(callLat_).c_str(), pp(timerLat_).c_str(),
                soak::formatKiB(samples.empty() ? 0 : samples.back().kib).c_str());
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// Producer threads (plain std::threads: Qt adopts them when they post)

void SoakQt::producer(int index) {
    Rng rng(opt_.seed * 1000003 + std::uint64_t(index) + 1);
    Ledger::Cache cache;
    while (!stopProducers_.load(std::memory_order_relaxed)) {
        const std::uint64_t mode = rng.below(100); // <35 burst, <80 trickle, else pause
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
                std::this_thread::sleep_for(200us);
            else if (mode >= 35)
                std::this_thread::sleep_for(std::chrono::microseconds(50 + rng.below(450)));
            else
                std::this_thread::yield();
        }
    }
    ledger_.flush(cache);
}

bool SoakQt::act(Rng& rng, Ledger::Cache& cache) {
    const std::uint64_t r = rng.below(100);
    if (r < 35)
        return postEventTo(this, cache, kEventProducer);
    if (r < 50)
        return postEventTo(workers_[rng.below(workers_.size())], cache, kEventToWorker);
    if (r < 70)
        return callMain(cache, kCallProducer);
    if (r < 80) {
        Worker* w = workers_[rng.below(workers_.size())];
        Unit u{};
        if (!issue(cache, kCallToWorker, u))
            return false;
        accepted(kCallToWorker);
        QMetaObject::invokeMethod(
            w, [u, w] { u.soak->runUnit(&w->cache, u); }, Qt::QueuedConnection);
        return true;
    }
    if (r < 88) {
        Receiver* obj = nullptr;
        {
            std::lock_guard lock(handoffMu_);
            if (!handoff_.empty()) {
                obj = handoff_.back();
                handoff_.pop_back();
            }
        }
        if (!obj)
            return true;
        Unit u{};
        if (!issue(cache, kDeleteLater, u)) {
            std::lock_guard lock(handoffMu_);
            handoff_.push_back(obj); // give it back; the main thread deletes it at the end
            return false;
        }
        obj->deathUnit = u; // published to the object's thread by deleteLater's posted event
        accepted(kDeleteLater);
        obj->deleteLater(); // from another thread than the object's
        return true;
    }
    writeSome(rng);
    return true;
}

// ---------------------------------------------------------------------------------------------

int SoakQt::verdict() {
    soak::Report rep;
    rep.line("==================== loop-soak-qt report ====================");
    rep.line(format("run: %.1f s, seed %llu, %d producers, %d worker QThreads, ledger capacity "
                    "%u%s%s",
                    opt_.seconds, (unsigned long long)opt_.seed, opt_.producers, kWorkers,
                    ledger_.capacity(), soak::kSanitizedMemory ? ", sanitizer build" : "",
                    opt_.inject.empty() ? "" : (", injected fault: " + opt_.inject).c_str()));
    for (const Worker* w : workers_) {
        if (!w->started.load(std::memory_order_acquire))
            rep.fail("a worker QThread never started its event loop");
        else if (!w->dispatcherOk.load(std::memory_order_relaxed))
            rep.fail("worker QThread dispatcher is " + w->dispatcherName + ", not " +
                     kDispatcherClass);
    }
    rep.line(format("dispatchers: main and %d workers are %s", kWorkers, kDispatcherClass));
    if (drainStalled_)
        rep.fail(format("the drain made no progress for %.0f s with %llu units outstanding",
                        opt_.drainStallSeconds, (unsigned long long)ledger_.outstanding()));

    std::uint64_t outstanding[kKindCount] = {};
    std::vector<std::string> lost;
    ledger_.forEachOutstanding([&](std::uint32_t, std::uint64_t uid, std::uint8_t tag) {
        ++outstanding[tag];
        if (lost.size() < 10)
            lost.push_back(format("unit %llu (%s)", (unsigned long long)uid, kKindNames[tag]));
    });

    rep.line("");
    rep.line("units                    accepted        ran  cancelled  refused  no-slot");
    std::uint64_t total[5] = {};
    for (int k = 0; k < kKindCount; ++k) {
        const auto& s = stats_[k];
        const std::uint64_t row[5] = {s.accepted.load(), s.ran.load(), s.cancelled.load(),
                                      s.refused.load(), s.noSlot.load()};
        rep.line(format("  %-22s %10llu %10llu %10llu %8llu %8llu", kKindNames[k],
                        (unsigned long long)row[0], (unsigned long long)row[1],
                        (unsigned long long)row[2], (unsigned long long)row[3],
                        (unsigned long long)row[4]));
        for (int i = 0; i < 5; ++i)
            total[i] += row[i];
        if (row[0] != row[1] + row[2])
            rep.fail(format("%s: %llu accepted != %llu ran + %llu cancelled", kKindNames[k],
                            (unsigned long long)row[0], (unsigned long long)row[1],
                            (unsigned long long)row[2]));
    }
    rep.line(format("  %-22s %10llu %10llu %10llu %8llu %8llu", "total",
                    (unsigned long long)total[0], (unsigned long long)total[1],
                    (unsigned long long)total[2], (unsigned long long)total[3],
                    (unsigned long long)total[4]));
    rep.line("  cancelled: QTimer stop()/restart, killTimer(), events discarded with a deleted "
             "receiver");
    rep.line(format("  ledger: %llu units issued", (unsigned long long)ledger_.issued()));

    const std::uint64_t violations = failures_.count();
    for (const std::string& m : failures_.messages())
        rep.fail(m);
    if (violations > 20)
        rep.fail(format("... and %llu more", (unsigned long long)(violations - 20)));
    for (const std::string& m : lost)
        rep.fail("lost: " + m + " was accepted and neither delivered nor cancelled");
    std::uint64_t lostCount = 0;
    for (std::uint64_t n : outstanding)
        lostCount += n;
    if (lostCount > lost.size())
        rep.fail(format("... %llu lost units in all", (unsigned long long)lostCount));

    rep.line("");
    rep.line(format("timers: repeating QTimer starts %llu, timeouts %llu; raw timers killed "
                    "before firing %llu",
                    (unsigned long long)repeatingStarts_, (unsigned long long)repeatingFires_,
                    (unsigned long long)rawKilled_));
    rep.line(format("receivers: %llu short-lived deleted at once, %llu with deleteLater",
                    (unsigned long long)ephemeralDeleted_,
                    (unsigned long long)ephemeralDeletedLater_));
    rep.line(format("socket notifiers: %llu pairs opened, %llu closed (%llu at EOF after "
                    "half-close of %llu); read activations %llu, write activations %llu, "
                    "setEnabled toggles %llu",
                    (unsigned long long)pairsOpened_, (unsigned long long)pairsClosed_,
                    (unsigned long long)pairsEof_, (unsigned long long)pairsHalfClosed_,
                    (unsigned long long)readActivations_, (unsigned long long)writeActivations_,
                    (unsigned long long)toggles_));
    rep.line(format("     writes ok %llu / buffer full %llu / after close %llu; bytes written %llu "
                    "= read %llu + left unread at close %llu: %s",
                    (unsigned long long)fdWrites_.load(), (unsigned long long)fdWriteFull_.load(),
                    (unsigned long long)fdWriteLate_.load(), (unsigned long long)bytesWritten_,
                    (unsigned long long)bytesRead_, (unsigned long long)bytesDrained_,
                    bytesWritten_ == bytesRead_ + bytesDrained_ ? "ok" : "MISMATCH"));
    if (bytesWritten_ != bytesRead_ + bytesDrained_)
        rep.fail("socket bytes: written != read + left at close");
    rep.line(format("Qt warnings: %llu", (unsigned long long)gQtWarnings.load()));
    for (int k : {kQTimerArming, kRawTimer, kEventProducer, kEventWorker, kCallWorker,
                  kEventToWorker, kWorkerTimer, kDeleteLater})
        if (stats_[k].ran.load() == 0)
            rep.fail(format("coverage: no %s was delivered", kKindNames[k]));
    if (readActivations_ == 0)
        rep.fail("coverage: no socket notifier was activated");

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
    rep.line(format("  warm-up back-pressure episodes: %d, peak %llu of %u units outstanding",
                    saturation_.episodes(), (unsigned long long)saturation_.peakOutstanding(),
                    ledger_.capacity()));

    rep.line("");
    rep.line("latency per window, main thread (posted/invoked -> delivered; QTimer: timeout - "
             "(start + interval))");
    const std::vector<const soak::LatencyWindows*> metrics = {&eventLat_, &callLat_, &timerLat_};
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
    if (!soak::parseOptions(argc, argv, opt, false))
        return 2;
    qInstallMessageHandler(messageHandler);
    if (!libloop::qt::install()) {
        std::fprintf(stderr, "FAIL: libloop::qt::install() refused\n");
        return 1;
    }
    int code = 0;
    {
        QCoreApplication app(argc, argv);
        const QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance();
        const char* name = d ? d->metaObject()->className() : "(none)";
        if (std::strcmp(name, kDispatcherClass) != 0) {
            std::fprintf(stderr, "FAIL: the main thread's dispatcher is %s, not %s\n", name,
                         kDispatcherClass);
            return 1;
        }
        std::printf("[loop-soak-qt] %.1f s, seed %llu, %d producers, %d worker QThreads, "
                    "dispatcher %s%s%s\n",
                    opt.seconds, (unsigned long long)opt.seed, opt.producers, kWorkers, name,
                    opt.inject.empty() ? "" : ", INJECTED FAULT: ", opt.inject.c_str());
        std::fflush(stdout);
        auto soakObj = std::make_unique<SoakQt>(opt);
        soakObj->start();
        (void)QCoreApplication::exec();
        // Deferred deletes queued by the last iteration (exec() returns before running them).
        QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
        code = soakObj->verdict();
        soakObj.reset();
    }
    return code;
}
