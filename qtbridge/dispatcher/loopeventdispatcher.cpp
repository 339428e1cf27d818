#include <libloop/qt/loopeventdispatcher.h>

#include "objectindex.h"
#include "qttimerrules.h"

#include <libloop/loop.h>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qhash.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/qthread.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <vector>

namespace libloop::qt {

using namespace detail;

namespace {

std::int64_t nowNs() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

TimePoint toTimePoint(std::int64_t ns) {
    return TimePoint(Duration(ns));
}

} // namespace

struct LoopEventDispatcher::Private {
    // One Qt timer. `generation` tells a registration from a later one with the same id, so a
    // loop callback of an unregistered timer (or one re-registered meanwhile) does nothing.
    struct QtTimer {
        QObject* object = nullptr;
        QtTimerRule rule;
        std::int64_t deadline = 0;
        libloop::TimerId loopTimer;
        std::uint64_t generation = 0;
        bool inEvent = false; // its QTimerEvent is being delivered (Qt's recursion guard)
        bool parked = false;  // listed in parkedIds (see removeTimer)
        // The object's timers form a doubly linked list through their ids (0 ends it), headed
        // in `firstTimerOf`: starting and killing timers allocates nothing per timer.
        int prevOfObject = 0;
        int nextOfObject = 0;
    };
    // Read, Write, Exception notifiers of one fd (QSocketNotifier::Type is the index).
    struct FdNotifiers {
        QSocketNotifier* notifier[3] = {nullptr, nullptr, nullptr};
        bool inLoop = false;
        bool empty() const { return !notifier[0] && !notifier[1] && !notifier[2]; }
        unsigned events() const {
            return (notifier[QSocketNotifier::Read] ? FdEvent::Readable : 0u) |
                   (notifier[QSocketNotifier::Write] ? FdEvent::Writable : 0u) |
                   (notifier[QSocketNotifier::Exception] ? FdEvent::Priority : 0u);
        }
    };

    explicit Private(const QString& name) : loop(options(name)) {}

    static LoopOptions options(const QString& name) {
        LoopOptions o;
        o.name = name.toStdString();
        return o;
    }

    void bindToCurrentThread() {
        if (!loop.isLoopThread())
            (void)loop.attachToCurrentThread();
    }

    // ---- timers ----
    void arm(int id, QtTimer& t) {
        const std::uint64_t gen = t.generation;
        auto r = loop.scheduleTimerAt(toTimePoint(t.deadline), [this, id, gen] { fire(id, gen); });
        t.loopTimer = r.value_or(libloop::TimerId{});
        if (!r)
            qWarning("LoopEventDispatcher: cannot schedule timer %d: %s", id, r.status().message());
    }

    // Qt order: the next deadline is computed (and armed) before the event is delivered, so
    // remainingTime() inside the handler already answers for the next period; a timer whose
    // event is still being delivered (a nested event loop inside its handler) is re-armed but
    // not delivered again — that firing is dropped, as Qt drops it.
    void fire(int id, std::uint64_t gen) {
        QtTimer* t = find(id);
        if (!t || t->generation != gen)
            return;
        t->deadline = nextDeadline(t->rule, t->deadline, nowNs());
        arm(id, *t);
        if (t->inEvent)
            return;
        t->inEvent = true;
        QObject* object = t->object;
        QTimerEvent event(id);
        QCoreApplication::sendEvent(object, &event);
        t = find(id); // the handler may have killed or restarted the timer; `timers` may grow
        if (t && t->generation == gen)
            t->inEvent = false;
    }

    // Qt's timer ids are small integers from Qt's own free list (the lowest free ones are
    // reused), so the timers live in a vector indexed by id; an entry is live while `object`
    // is set.
    QtTimer* find(int id) {
        return id > 0 && std::size_t(id) < timers.size() && timers[std::size_t(id)].object
                   ? &timers[std::size_t(id)]
                   : nullptr;
    }

    bool removeTimer(int id) {
        QtTimer* t = find(id);
        if (!t)
            return false;
        unlinkFromObject(*t);
        // Dead (find() answers null) and unlinked; registerTimer() sets every other field.
        t->object = nullptr;
        t->inEvent = false;
        t->prevOfObject = t->nextOfObject = 0;
        // Parked: the loop timer stays armed (fire() ignores a dead entry) until the next
        // processEvents() cancels it, so that the common kill-then-start of the same id (Qt
        // hands out the lowest free id again) only moves it: no slab or heap churn.
        if (t->loopTimer && !t->parked) {
            t->parked = true;
            parkedIds.push_back(id);
            if (parkedIds.size() > kMaxParked)
                releaseParked();
        }
        return true;
    }

    // Cancels the loop timers of the timers unregistered (and not registered again) since the
    // last call. Runs before every wait, so no wait ends for a dead timer.
    void releaseParked() noexcept {
        for (int id : parkedIds) {
            QtTimer& t = timers[std::size_t(id)];
            t.parked = false;
            if (!t.object && t.loopTimer) {
                loop.cancelTimer(t.loopTimer); // false if it fired meanwhile: fire() ignored it
                t.loopTimer = {};
            }
        }
        parkedIds.clear();
    }

    void linkToObject(int id, QtTimer& t) {
        int& head = firstTimerOf.at(t.object);
        if (head) {
            t.nextOfObject = head;
            timers[std::size_t(head)].prevOfObject = id;
        }
        head = id;
    }

    void unlinkFromObject(const QtTimer& t) {
        if (t.prevOfObject)
            timers[std::size_t(t.prevOfObject)].nextOfObject = t.nextOfObject;
        else if (t.nextOfObject)
            firstTimerOf.at(t.object) = t.nextOfObject;
        else
            firstTimerOf.remove(t.object);
        if (t.nextOfObject)
            timers[std::size_t(t.nextOfObject)].prevOfObject = t.prevOfObject;
    }

    QList<int> timersOf(QObject* object) const {
        QList<int> ids;
        for (int id = firstTimerOf.value(object); id; id = timers[std::size_t(id)].nextOfObject)
            ids.append(id);
        return ids;
    }

    // ---- socket notifiers ----
    void syncFd(int fd, FdNotifiers& n) {
        const unsigned events = n.events();
        if (!events) {
            if (n.inLoop)
                (void)loop.unregisterFd(fd);
            n.inLoop = false;
            return;
        }
        Status s = n.inLoop ? loop.modifyFd(fd, events)
                            : loop.registerFd(
                                  fd, events, [this](int f, unsigned ev) { activate(f, ev); },
                                  // As Qt's dispatchers (UNIX, and glib's can_recurse sources): a
                                  // nested event loop inside a notifier's slot activates it again.
                                  FdReentry::Allow);
        if (!n.inLoop && s.ok())
            n.inLoop = true;
        if (!s.ok())
            qWarning("QSocketNotifier: Invalid socket %d and type '%s', disabling...", fd,
                     (events & FdEvent::Readable)   ? "Read"
                     : (events & FdEvent::Writable) ? "Write"
                                                    : "Exception");
    }

    // Read <- readable | hang-up | error, Write <- writable | hang-up | error,
    // Exception <- priority | hang-up | error (Qt's poll mapping). A notifier unregistered or
    // deleted while an earlier one of the same fd is being activated is not activated.
    void activate(int fd, unsigned revents) {
        static constexpr unsigned kTrigger[3] = {
            FdEvent::Readable | FdEvent::HangUp | FdEvent::Error,
            FdEvent::Writable | FdEvent::HangUp | FdEvent::Error,
            FdEvent::Priority | FdEvent::HangUp | FdEvent::Error,
        };
        QSocketNotifier* due[3] = {nullptr, nullptr, nullptr};
        auto it = sockets.constFind(fd);
        if (it == sockets.cend())
            return;
        for (int type = 0; type < 3; ++type)
            if (revents & kTrigger[type])
                due[type] = it->notifier[type];
        for (int type = 0; type < 3; ++type) {
            if (!due[type])
                continue;
            it = sockets.constFind(fd);
            if (it == sockets.cend() || it->notifier[type] != due[type])
                continue; // unregistered (or deleted) by an earlier handler
            QEvent event(QEvent::SockAct);
            QCoreApplication::sendEvent(due[type], &event);
        }
    }

    Loop loop;
    std::vector<QtTimer> timers; // indexed by Qt timer id
    ObjectIndex firstTimerOf;    // object -> its most recently started timer
    QHash<int, FdNotifiers> sockets;
    std::uint64_t nextGeneration = 1;
    static constexpr std::size_t kMaxParked = 256;
    std::vector<int> parkedIds; // ids whose loop timer is parked (see removeTimer)
    std::atomic<bool> interrupted{false};
    std::atomic<bool> woken{false};
};

LoopEventDispatcher::LoopEventDispatcher(QObject* parent)
    : LoopEventDispatcher(QStringLiteral("qt"), parent) {}

LoopEventDispatcher::LoopEventDispatcher(const QString& loopName, QObject* parent)
    : QAbstractEventDispatcher(parent), d(std::make_unique<Private>(loopName)) {}

LoopEventDispatcher::~LoopEventDispatcher() = default;

QString LoopEventDispatcher::mainThreadLoopName() {
    return QStringLiteral("qt:main");
}

QString LoopEventDispatcher::threadLoopName(const QThread& thread) {
    const QString name = thread.objectName();
    return QStringLiteral("qt:") + (name.isEmpty() ? QStringLiteral("thread") : name);
}

libloop::Loop& LoopEventDispatcher::loop() {
    return d->loop;
}

bool LoopEventDispatcher::processEvents(QEventLoop::ProcessEventsFlags flags) {
    d->bindToCurrentThread();
    d->interrupted.store(false, std::memory_order_relaxed);
    emit awake();
    QCoreApplication::sendPostedEvents();

    // A wakeUp() from an event posted during that delivery (or from another thread) is pending
    // in the loop, so the wait below returns at once: nothing posted is left waiting.
    const bool canWait =
        (flags & QEventLoop::WaitForMoreEvents) && !d->interrupted.load(std::memory_order_acquire);
    if (canWait)
        emit aboutToBlock();
    if (d->interrupted.load(std::memory_order_acquire))
        return false;

    unsigned phases = RunPhase::All;
    if (flags & QEventLoop::ExcludeSocketNotifiers)
        phases &= ~RunPhase::Fds;
    if (flags & QEventLoop::X11ExcludeTimers)
        phases &= ~RunPhase::Timers;
    d->releaseParked();
    // A wake-up announces posted events: the wait it ends returns at once so that they are sent
    // below; the loop's work that arrived meanwhile runs at the start of the next call.
    const auto ran =
        d->loop.runOnce(canWait ? kForever : Duration::zero(), phases | RunFlag::ReturnOnWakeUp);
    if (canWait)
        emit awake();
    // As in Qt, a consumed wake-up counts as work: events were posted.
    const bool woken = d->woken.exchange(false, std::memory_order_acq_rel);
    // Events posted while this call waited are delivered by it, as the glib dispatcher's
    // post-event source does in the same iteration, rather than by the next call (saves the
    // round trip through QEventLoop on a wake-up's critical path). Not after an interrupt().
    if (woken && canWait && !d->interrupted.load(std::memory_order_acquire))
        QCoreApplication::sendPostedEvents();
    return (ran.ok() && ran.value() > 0) || woken;
}

void LoopEventDispatcher::registerSocketNotifier(QSocketNotifier* notifier) {
    Q_ASSERT(notifier);
    const int fd = int(notifier->socket());
    const int type = int(notifier->type());
    Private::FdNotifiers& n = d->sockets[fd];
    if (n.notifier[type] && n.notifier[type] != notifier)
        qWarning("%s: Multiple socket notifiers for same socket %d and type %s", Q_FUNC_INFO, fd,
                 type == 0   ? "Read"
                 : type == 1 ? "Write"
                             : "Exception");
    n.notifier[type] = notifier;
    d->syncFd(fd, n);
}

void LoopEventDispatcher::unregisterSocketNotifier(QSocketNotifier* notifier) {
    Q_ASSERT(notifier);
    const int fd = int(notifier->socket());
    const int type = int(notifier->type());
    auto it = d->sockets.find(fd);
    if (it == d->sockets.end() || it->notifier[type] != notifier)
        return;
    it->notifier[type] = nullptr;
    d->syncFd(fd, *it);
    if (it->empty())
        d->sockets.erase(it);
}

void LoopEventDispatcher::registerTimer(int timerId, qint64 interval, Qt::TimerType timerType,
                                        QObject* object) {
    Q_ASSERT(timerId > 0 && interval >= 0 && object);
    d->removeTimer(timerId); // a re-registration replaces the old one
    if (std::size_t(timerId) >= d->timers.size())
        d->timers.resize(std::max<std::size_t>(std::size_t(timerId) + 1, d->timers.size() * 2));
    Private::QtTimer& t = d->timers[std::size_t(timerId)];
    t.object = object;
    t.rule = normalizeTimer(interval, timerType);
    t.deadline = firstDeadline(t.rule, interval, nowNs());
    d->linkToObject(timerId, t);
    // The id's parked loop timer (if it is still pending) is moved to the new deadline; its
    // callback carries the generation, which therefore stays.
    if (t.loopTimer && d->loop.rescheduleTimer(t.loopTimer, toTimePoint(t.deadline)).ok())
        return;
    t.generation = d->nextGeneration++;
    d->arm(timerId, t);
}

bool LoopEventDispatcher::unregisterTimer(int timerId) {
    return d->removeTimer(timerId);
}

bool LoopEventDispatcher::unregisterTimers(QObject* object) {
    const QList<int> ids = d->timersOf(object);
    for (int id : ids)
        d->removeTimer(id);
    return !ids.isEmpty();
}

QList<QAbstractEventDispatcher::TimerInfo>
LoopEventDispatcher::registeredTimers(QObject* object) const {
    QList<TimerInfo> list;
    for (int id : d->timersOf(object)) {
        const Private::QtTimer& t = d->timers[std::size_t(id)];
        list.append(TimerInfo(id, int(reportedInterval(t.rule)), t.rule.type));
    }
    return list;
}

int LoopEventDispatcher::remainingTime(int timerId) {
    const Private::QtTimer* t = d->find(timerId);
    return t ? remainingMs(t->deadline, nowNs()) : -1;
}

// Coalesced as Qt's own wakeUp() is: only the first wake-up after processEvents() last took
// `woken` reaches the loop. Enough, because every processEvents() sends the posted events before
// it may wait, and takes `woken` only after its wait.
void LoopEventDispatcher::wakeUp() {
    if (!d->woken.exchange(true, std::memory_order_acq_rel))
        d->loop.wakeUp();
}

// Never coalesced: an interrupt must end the current (or next) wait even when a wake-up is
// already pending in `woken` but was consumed by the loop.
void LoopEventDispatcher::interrupt() {
    d->interrupted.store(true, std::memory_order_release);
    d->woken.store(true, std::memory_order_release);
    d->loop.wakeUp();
}

void LoopEventDispatcher::startingUp() {
    d->bindToCurrentThread();
}

void LoopEventDispatcher::closingDown() {}

} // namespace libloop::qt
