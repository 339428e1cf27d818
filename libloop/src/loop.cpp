// The loop: one iteration ("tick"), the sleep handshake, timers, fds and the lifecycle.
//
// Invariants (loop thread unless stated):
// - Every accepted unit of work is in exactly one place: the ingress, the local queue, the
//   microtask ring/overflow, the timer heap, the slab's remote insert list, or a local variable
//   of the frame that is running it. close() empties every place; nothing is run twice because a
//   callback is always moved out of its place before it is invoked.
// - A callback may re-enter (runOnce/run/close/shutdown/unregisterFd ...). Therefore no frame
//   keeps a reference into a container across a callback; it re-reads state afterwards, and
//   stops as soon as closed_ is set.
// - Timers: a slot is in the heap iff its phase is Pending or CancelledRemote and the loop has
//   processed its insert. pendingCount() counts Pending slots (in the heap or not yet inserted).
#include <libloop/loop.h>

#include "clock.h"
#include "faults.h"
#include "ingress.h"
#include "local_queue.h"
#include "metrics.h"
#include "microtask_ring.h"
#include "poller_epoll.h"
#include "promise_support.h"
#include "registry_internal.h"
#include "timer_heap.h"
#include "timer_slab.h"
#include "wakeup.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <new>
#include <thread>
#include <unistd.h>
#include <vector>

namespace libloop {

using namespace detail;

namespace {

constexpr std::uint64_t kWakeFdData = UINT64_MAX;
constexpr unsigned kWatchable = FdEvent::Readable | FdEvent::Writable | FdEvent::Priority;
constexpr int kMaxEvents = 256;

// mode (low 8 bits) and registered fd count (the rest) in one word, so "Forced" and "an fd is
// registered" can be refused against each other atomically from different threads.
constexpr std::uint64_t modeOf(std::uint64_t w) noexcept {
    return w & 0xff;
}
constexpr std::uint64_t fdsOf(std::uint64_t w) noexcept {
    return w >> 8;
}

std::uint32_t toEpoll(unsigned events) noexcept {
    std::uint32_t e = 0;
    if (events & FdEvent::Readable)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & FdEvent::Writable)
        e |= EPOLLOUT;
    if (events & FdEvent::Priority)
        e |= EPOLLPRI;
    return e;
}

unsigned fromEpoll(std::uint32_t e) noexcept {
    unsigned r = 0;
    if (e & EPOLLIN)
        r |= FdEvent::Readable;
    if (e & EPOLLPRI)
        r |= FdEvent::Priority;
    if (e & EPOLLOUT)
        r |= FdEvent::Writable;
    if (e & EPOLLERR)
        r |= FdEvent::Error;
    if (e & (EPOLLHUP | EPOLLRDHUP))
        r |= FdEvent::HangUp;
    return r;
}

void yieldSpin() noexcept {
    std::this_thread::yield();
}

std::atomic<std::uint64_t> nextLoopId{1};

// The loop whose run()/runOnce()/shutdown() the calling thread is inside (innermost), if any: it
// is alive and this thread is its loop thread, which promises use to settle without a lock.
thread_local Loop* tlsRunningLoop = nullptr;

} // namespace

struct Loop::Impl {
    struct FdEntry {
        FdCallback callback;
        unsigned events = 0;
        std::uint32_t gen = 0;
        bool registered = false;
        bool inEpoll = false;
        // Taken out of epoll by a nested iteration while its callback runs (see dispatchEvents).
        bool suspended = false;
        // FdReentry::Allow: the callback lives in `shared` (`callback` stays empty), so a nested
        // iteration can call it while an outer frame runs it.
        std::shared_ptr<FdCallback> shared;
    };

    explicit Impl(LoopOptions o)
        : opts(std::move(o)), micro(opts.microtaskRingCapacity), slab(opts.maxTimers),
          rate(opts.rateWindow.count()) {
        owner.store(std::this_thread::get_id(), std::memory_order_relaxed);
        ownerTid.store(int(::gettid()), std::memory_order_relaxed);
        modeAndFds.store(std::uint64_t(opts.fastPath), std::memory_order_relaxed);
        if (poller.valid() && wake.valid())
            poller.add(wake.eventFd(), EPOLLIN, kWakeFdData);
        const std::int64_t now = nowNs();
        lastMarkNs = now;
        rate.maybeSample(now, 0, 0, 0);
    }

    ~Impl() { closeNow(); }

    // ---- time ----
    // Every "now" of the loop: the test clock when one is set (LoopOptions::clock).
    std::int64_t nowNs() const noexcept { return opts.clock ? opts.clock->nowNs() : monotonicNs(); }

    // ---- threads ----
    bool isLoopThread() const noexcept {
        return owner.load(std::memory_order_acquire) == std::this_thread::get_id();
    }
    // shutdown/close: the loop thread, or anyone while nobody runs the loop.
    Status mayOperate() const noexcept {
        if (isLoopThread())
            return {};
        return runners.load(std::memory_order_acquire) == 0 ? Status{} : Status{Errc::Busy};
    }

    // ---- callbacks ----
    // Runs a one-shot callback and destroys it; only then is a failure reported, so the hook
    // sees a loop whose state is already consistent (see ErrorHook).
    void runOnceAndRelease(Task& task, CallbackKind kind) noexcept {
        std::exception_ptr failure;
        try {
            task();
        } catch (...) {
            failure = std::current_exception();
        }
        task.reset();
        if (failure) {
            callbackErrors.add();
            report(std::move(failure), kind);
        }
    }

    void report(std::exception_ptr ep, CallbackKind kind) noexcept {
        try {
            if (opts.errorHook) {
                opts.errorHook(ep, kind);
                return;
            }
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "libloop[%s]: a %s callback threw: %s\n", opts.name.c_str(),
                             callbackKindName(kind), e.what());
            } catch (...) {
                std::fprintf(stderr, "libloop[%s]: a %s callback threw a non-std exception\n",
                             opts.name.c_str(), callbackKindName(kind));
            }
        } catch (...) {
            // An exception escaping the hook is swallowed: the loop must go on.
        }
    }

    // ---- microtasks ----
    std::size_t checkpoint() {
        // The common case, after most callbacks and at every iteration's start: nothing to do.
        if (!checkpointHook && !rejections.pending() && !micro.pending())
            return 0;
        std::size_t n = drainMicrotasks();
        // A foreign job queue (setCheckpointHook) runs when ours is empty; what its jobs queue
        // runs before it is asked again. At most `budget` passes, like microtasks.
        if (checkpointHook && !inCheckpointHook) {
            const std::uint32_t budget = opts.microtaskBudget;
            inCheckpointHook = true;
            for (std::uint32_t pass = 0;
                 !closed && !micro.pending() && (budget == 0 || pass < budget); ++pass) {
                bool ran = true;
                try {
                    ran = checkpointHook();
                } catch (...) {
                    callbackErrors.add();
                    report(std::current_exception(), CallbackKind::Microtask);
                }
                if (!ran)
                    break;
                n += drainMicrotasks();
            }
            inCheckpointHook = false;
        }
        // HTML: "notify about rejected promises" ends a checkpoint that emptied the queue (one cut
        // short by the budget is not over: a handler may still be attached by what is left).
        if (rejections.pending() && !closed && !micro.pending())
            rejections.notify(*self);
        return n;
    }

    std::size_t drainMicrotasks() {
        const std::uint32_t budget = opts.microtaskBudget;
        std::size_t n = 0;
        Task t;
        while (!closed && (budget == 0 || n < budget) && micro.pop(t)) {
            if (n++ == 0) { // occupancy peaks just before a checkpoint drains it
                ringUsed.raiseMax(micro.ringUsed() + 1);
                overflow.raiseMax(micro.overflowSize());
            }
            runOnceAndRelease(t, CallbackKind::Microtask);
        }
        if (n) {
            microtasksRun.add(n);
            if (budget && n == budget && micro.pending())
                budgetHits.add();
        }
        return n;
    }

    // ---- tasks ----
    void runTask(QueuedTask& qt) {
        if (qt.enqueuedNs) { // a sampled task (see enqueueStamp)
            const std::int64_t start = nowNs();
            taskLatency.record(std::uint64_t(start > qt.enqueuedNs ? start - qt.enqueuedNs : 0));
        }
        runOnceAndRelease(qt.task, CallbackKind::Task);
        tasksRun.add();
        checkpoint();
    }

    // The tasks queued when the phase began, internal then external (later ones wait for the
    // next iteration, so a task that queues a task cannot keep one iteration going forever).
    // Bounded by push counts, not by how many to run: a nested iteration inside a task may run
    // some of them, and the tasks queued after it must still wait.
    std::size_t runTasks() {
        if (local.empty() && !ingress.headReady()) // (a task not yet published waits, as below)
            return 0;
        std::size_t n = 0;
        QueuedTask qt;
        const std::uint64_t localEnd = local.pushedCount();
        const std::uint64_t externalEnd = ingress.reservedCount();
        while (!closed && local.poppedCount() < localEnd && local.pop(qt)) {
            runTask(qt);
            ++n;
        }
        internalQueue.set(local.size());
        while (!closed && ingress.consumedCount() < externalEnd && ingress.pop(qt)) {
            runTask(qt);
            ++n;
        }
        return n;
    }

    // The check phase (setImmediate): the immediates queued before it began, each followed by a
    // checkpoint. Later ones wait for the next iteration's check phase.
    std::size_t runImmediates() {
        if (immediates.empty())
            return 0;
        std::size_t n = 0;
        QueuedTask qt;
        const std::uint64_t end = immediates.pushedCount();
        while (!closed && immediates.poppedCount() < end && immediates.pop(qt)) {
            runTask(qt);
            ++n;
        }
        return n;
    }

    // The enqueue time of a sampled task, 0 for the others. The counter is per producer thread
    // (shared by all loops: sampling only needs a steady 1-in-N, not an exact per-loop one).
    std::int64_t enqueueStamp() const noexcept {
        static thread_local std::uint32_t submitted = 0;
        return opts.metrics && (submitted++ & sampleMask) == 0 ? nowNs() : 0;
    }

    // ---- timers ----
    void heapChanged() noexcept { heapSize.set(heap.size()); }

    void insertTimer(std::uint32_t slot) {
        heap.push(slab.at(slot).deadline.load(std::memory_order_relaxed), slot);
        heapChanged();
    }

    // Cancels first, then inserts: an entry on the cancel list we take was pushed to the insert
    // list before it was cancelled, so it is in the insert list we take now or was inserted
    // earlier; freeing it cannot leave it linked in an insert list.
    void drainRemoteTimers() {
        slab.flushLocalAtCap();
        if (!slab.remotePending(std::memory_order_relaxed)) // a hint: see remotePending()
            return;
        const std::uint32_t cancels = slab.takeCancels();
        for (std::uint32_t s = slab.takeInserts(); s != TimerSlab::kNone;) {
            TimerSlab::Entry& e = slab.at(s - 1);
            const std::uint32_t next = e.nextInsert.load(std::memory_order_relaxed);
            if (TimerSlab::phaseOf(e.state.load(std::memory_order_acquire)) == TimerSlab::Pending)
                insertTimer(s - 1);
            s = next;
        }
        for (std::uint32_t s = cancels; s != TimerSlab::kNone;) {
            const std::uint32_t next = slab.at(s - 1).nextCancel.load(std::memory_order_relaxed);
            heap.remove(s - 1);
            slab.releaseLocal(s - 1);
            s = next;
        }
        heapChanged();
    }

    // The due timers scheduled before the phase began (seq < limit). Timers scheduled during it
    // stay staged in the heap; one that reaches the heap proper anyway (a nested iteration
    // flushes, a reschedule updates a heap node in place) is set aside again, so a timer
    // scheduled in the past during the phase never holds back the older due ones. If setting
    // it aside cannot allocate, the phase ends there: the older ones run in the next iteration
    // (the loop does not sleep meanwhile: the top is due).
    std::size_t runDueTimers(std::int64_t now) {
        if (heap.empty())
            return 0;
        const std::uint64_t limit = heap.beginPhase();
        std::size_t n = 0;
        while (!closed && !heap.heapEmpty()) {
            const TimerHeap::Node top = heap.heapTop();
            if (top.deadline > now)
                break;
            if (top.seq() >= limit) {
                if (!heap.restageTop())
                    break;
                continue;
            }
            heap.popHeapTop();
            heapChanged();
            TimerSlab::Entry& e = slab.at(top.slot());
            std::uint64_t st = e.state.load(std::memory_order_acquire);
            const std::uint64_t gen = TimerSlab::generationOf(st);
            if (TimerSlab::phaseOf(st) != TimerSlab::Pending ||
                !e.state.compare_exchange_strong(st, TimerSlab::word(gen, TimerSlab::Running),
                                                 std::memory_order_acq_rel)) {
                continue; // cancelled from another thread: the cancel list frees it
            }
            addPending(true, -1);
            Task task = std::move(e.task);
            // The slot is free before the callback runs: a started timer no longer counts
            // against maxTimers (an interval re-arming itself at the cap must fit), and its id
            // answers like a finished one (cancel false, deadline NotFound) from the callback on.
            slab.releaseLocal(top.slot());
            if (opts.metrics && (timersSampled++ & sampleMask) == 0) {
                const std::int64_t start = nowNs();
                // In unsigned arithmetic: a deadline far in the past (TimePoint::min()) would
                // overflow a signed difference.
                timerLateness.record(
                    start > top.deadline ? std::uint64_t(start) - std::uint64_t(top.deadline) : 0);
            }
            runOnceAndRelease(task, CallbackKind::Timer);
            timersRun.add();
            ++n;
            checkpoint();
        }
        return n;
    }

    Result<TimerId> schedule(std::int64_t deadline, Task& task) {
        if (!task)
            return Errc::NullCallable;
        const bool local = isLoopThread();
        if (!local) {
            // Counted so that shutdown/close can wait for cross-thread schedules in flight.
            remoteOps.fetch_add(1, std::memory_order_seq_cst);
        }
        struct Done {
            Impl* d;
            bool local;
            ~Done() {
                if (!local)
                    d->remoteOps.fetch_sub(1, std::memory_order_release);
            }
        } done{this, local};
        if (!accepting.load(std::memory_order_seq_cst))
            return Errc::NotAccepting;
        std::uint32_t slot;
        std::uint64_t gen;
        switch (local ? slab.allocateLocal(slot, gen) : slab.allocate(slot, gen)) {
        case TimerSlab::Alloc::Ok:
            break;
        case TimerSlab::Alloc::Full:
            return Errc::TooManyTimers;
        case TimerSlab::Alloc::NoMemory:
            return Status{Errc::SystemError, ENOMEM};
        }
        TimerSlab::Entry& e = slab.at(slot);
        e.task = std::move(task);
        // release: a timerDeadline() that reads this value also sees the slot's new generation.
        e.deadline.store(deadline, std::memory_order_release);
        addPending(local, 1);
        e.state.store(TimerSlab::word(gen, TimerSlab::Pending), std::memory_order_release);
        if (local) {
            try {
                insertTimer(slot);
            } catch (const std::bad_alloc&) { // the heap could not grow: refused, as a chunk
                addPending(true, -1);
                slab.releaseLocal(slot); // destroys the task; the id was never handed out
                return Status{Errc::SystemError, ENOMEM};
            }
        } else {
            slab.pushInsert(slot);
            wake.notify();
        }
        return TimerSlab::makeId(gen, slot);
    }

    Status reschedule(TimerId id, std::int64_t deadline) {
        if (!isLoopThread())
            return Errc::WrongThread;
        const std::uint64_t gen = TimerSlab::generationOf(id);
        const std::uint32_t slot = TimerSlab::slotOf(id);
        TimerSlab::Entry* e = gen ? slab.find(slot) : nullptr;
        // Pending and in the heap (a timer from another thread not taken in yet is refused).
        if (!e ||
            e->state.load(std::memory_order_acquire) != TimerSlab::word(gen, TimerSlab::Pending) ||
            !heap.contains(slot))
            return Errc::NotFound;
        e->deadline.store(deadline, std::memory_order_release);
        heap.update(slot, deadline);
        return {};
    }

    bool cancel(TimerId id) noexcept {
        const std::uint64_t gen = TimerSlab::generationOf(id);
        TimerSlab::Entry* e = gen ? slab.find(TimerSlab::slotOf(id)) : nullptr;
        if (!e)
            return false;
        const std::uint32_t slot = TimerSlab::slotOf(id);
        std::uint64_t expected = TimerSlab::word(gen, TimerSlab::Pending);
        const bool local = isLoopThread();
        if (local && heap.contains(slot)) {
            if (!e->state.compare_exchange_strong(expected,
                                                  TimerSlab::word(gen, TimerSlab::Cancelled),
                                                  std::memory_order_acq_rel))
                return false;
            addPending(true, -1);
            heap.remove(slot);
            heapChanged();
            slab.releaseLocal(slot);
            return true;
        }
        // Another thread, or a timer scheduled from another thread that the loop has not
        // inserted yet: the loop frees the slot when it processes the cancel list.
        if (!e->state.compare_exchange_strong(expected,
                                              TimerSlab::word(gen, TimerSlab::CancelledRemote),
                                              std::memory_order_acq_rel))
            return false;
        addPending(local, -1);
        slab.pushCancel(slot);
        wake.notify();
        return true;
    }

    // Cancels every pending timer and destroys every timer callback. Slots are not reused after
    // this (the loop is closed), so entries still linked in remote lists stay harmless.
    std::uint64_t releaseTimers() noexcept {
        std::uint64_t cancelled = 0;
        slab.takeCancels();
        slab.takeInserts();
        heap.clear();
        heapChanged();
        const std::uint32_t n = slab.slotCount();
        for (std::uint32_t s = 0; s < n; ++s) {
            TimerSlab::Entry& e = slab.at(s);
            std::uint64_t st = e.state.load(std::memory_order_acquire);
            for (;;) {
                const auto phase = TimerSlab::phaseOf(st);
                if (phase == TimerSlab::Pending) {
                    const std::uint64_t gen = TimerSlab::generationOf(st);
                    if (!e.state.compare_exchange_weak(st,
                                                       TimerSlab::word(gen, TimerSlab::Cancelled),
                                                       std::memory_order_acq_rel))
                        continue;
                    ++cancelled;
                    addPending(true, -1);
                    e.task.reset();
                } else if (phase == TimerSlab::Cancelled || phase == TimerSlab::CancelledRemote) {
                    e.task.reset();
                }
                break; // Running: its frame owns the moved-out callback
            }
        }
        return cancelled;
    }

    // ---- fds ----
    FdEntry* fdEntry(int fd) noexcept {
        return fd >= 0 && std::size_t(fd) < fds.size() && fds[std::size_t(fd)].registered
                   ? &fds[std::size_t(fd)]
                   : nullptr;
    }
    std::uint64_t fdData(int fd, std::uint32_t gen) const noexcept {
        return (std::uint64_t(gen) << 32) | std::uint32_t(fd);
    }

    std::size_t dispatchEvents(const epoll_event* evs, int count) {
        std::size_t n = 0;
        for (int i = 0; i < count && !closed; ++i) {
            const std::uint64_t data = evs[i].data.u64;
            if (data == kWakeFdData) {
                wake.drainEventFd();
                continue;
            }
            const int fd = int(std::uint32_t(data));
            const std::uint32_t gen = std::uint32_t(data >> 32);
            FdEntry* e = fdEntry(fd);
            if (!e || e->gen != gen || !e->inEpoll) // unregistered or re-registered meanwhile
                continue;
            const unsigned revents =
                fromEpoll(evs[i].events) & (e->events | FdEvent::Error | FdEvent::HangUp);
            if (e->shared) {
                // FdReentry::Allow: each frame holds the callback through its own reference, so
                // an unregisterFd() inside it (at any depth) destroys it after the last frame.
                if (!revents)
                    continue;
                const std::shared_ptr<FdCallback> cb = e->shared;
                callFd(*cb, fd, revents);
                ++n;
                checkpoint();
                continue;
            }
            if (!e->callback) {
                // Its callback is running: this is a nested iteration (the callback called
                // runOnce/run). It is not called re-entrantly; and since epoll is level-triggered
                // it would be reported again at once, so a nested wait would spin: it leaves
                // epoll until its callback returns (the frame that runs it puts it back).
                if (poller.remove(fd) == 0) {
                    e->inEpoll = false;
                    e->suspended = true;
                }
                continue;
            }
            if (!revents)
                continue;
            // Moved out while it runs: it may unregister (then it is destroyed right after it
            // returns) or re-register its fd; `fds` may also grow and move.
            FdCallback cb = std::move(e->callback);
            callFd(cb, fd, revents);
            e = fdEntry(fd);
            if (e && e->gen == gen) {
                if (!e->callback)
                    e->callback = std::move(cb);
                if (e->suspended)
                    resumeFd(fd, *e);
            }
            ++n;
            checkpoint();
        }
        return n;
    }

    // One fd callback. A throw goes to the error hook; the registration stays (the callback is
    // not destroyed).
    void callFd(FdCallback& cb, int fd, unsigned revents) {
        try {
            cb(fd, revents);
        } catch (...) {
            callbackErrors.add();
            report(std::current_exception(), CallbackKind::Fd);
        }
        fdCallbacksRun.add();
    }

    // Back into epoll after its callback returned, unless the callback changed that meanwhile
    // (modifyFd re-added it, or watches nothing). A failure (the callback closed the fd without
    // unregistering it) leaves it registered and unwatched, as a failed modifyFd would.
    void resumeFd(int fd, FdEntry& e) noexcept {
        e.suspended = false;
        if (!e.inEpoll && e.events != 0)
            e.inEpoll = poller.add(fd, toEpoll(e.events), fdData(fd, e.gen)) == 0;
    }

    void adjustFdCount(int delta) noexcept {
        modeAndFds.fetch_add(std::uint64_t(std::int64_t(delta) * 256), std::memory_order_acq_rel);
    }

    // ---- waiting ----
    bool fastPathNow() noexcept {
        const std::uint64_t w = modeAndFds.load(std::memory_order_acquire);
        const auto mode = FastPathMode(modeOf(w));
        const bool fast =
            mode == FastPathMode::Forced || (mode == FastPathMode::Auto && fdsOf(w) == 0);
        if (fast != fastActive.load(std::memory_order_relaxed)) {
            fastActive.store(fast, std::memory_order_relaxed);
            fastTransitions.add();
        }
        return fast;
    }

    // seq_cst loads: the loop's half of the sleep handshake (see wakeup.h).
    bool workPending(std::int64_t now, unsigned phases) noexcept {
        return micro.pending() || ingress.headReady() || !local.empty() || !immediates.empty() ||
               slab.remotePending() || stopRequested.load(std::memory_order_seq_cst) ||
               wakeRequested.load(std::memory_order_seq_cst) ||
               ((phases & RunPhase::Timers) && !heap.empty() && heap.top().deadline <= now);
    }

    void markBusy(std::int64_t now) noexcept {
        busyNs.add(std::uint64_t(now - lastMarkNs));
        lastMarkNs = now;
    }
    void markIdle(std::int64_t now) noexcept {
        idleNs.add(std::uint64_t(now - lastMarkNs));
        lastMarkNs = now;
    }

    // Non-blocking poll of fds (only when some are registered).
    std::size_t pollFds(unsigned phases) {
        if (!(phases & RunPhase::Fds) || fastPathNow() ||
            fdsOf(modeAndFds.load(std::memory_order_acquire)) == 0)
            return 0;
        epoll_event evs[kMaxEvents];
        const int count = poller.wait(evs, kMaxEvents, 0);
        return dispatchEvents(evs, count);
    }

    // Sleeps until work arrives, the deadline `end` passes (INT64_MAX: none), or a wake-up.
    // Timer deadlines end the wait only when `phases` includes timers; without fds in `phases`
    // the wait is on the futex, so fd readiness does not end it. Runs the fd callbacks that ended
    // it. True when it ended on a pending wakeUp() (and no fd callback ran).
    bool waitForWork(std::int64_t end, unsigned phases) {
        for (;;) {
            std::int64_t now = nowNs();
            std::int64_t until = end;
            if ((phases & RunPhase::Timers) && !heap.empty() && heap.top().deadline < until)
                until = heap.top().deadline;
            if (until <= now)
                return false;
            // On a manual clock a deadline is not slept towards: poll, then jump to it.
            const bool manual = opts.clock && until != INT64_MAX;
            const std::int64_t waitNs = until == INT64_MAX ? -1 : manual ? 0 : until - now;
            const bool fast = fastPathNow() || !(phases & RunPhase::Fds);
            std::size_t ran = 0;
            markBusy(now);
            setState(LoopState::Sleeping);
            if (fast) {
                const std::uint32_t seen = wake.futexValue();
                wake.beginSleep(Wakeup::Futex);
                if (!workPending(now, phases))
                    wake.futexWait(seen, waitNs);
                wake.endSleep();
                setState(LoopState::Running);
                markIdle(nowNs());
            } else {
                epoll_event evs[kMaxEvents];
                wake.beginSleep(Wakeup::Epoll);
                // Polled even when work is pending (then without blocking): otherwise a thread
                // that gets a wake-up before every wait (a stream of posts from another thread)
                // would never look at its fds again.
                const int count =
                    poller.wait(evs, kMaxEvents, workPending(now, phases) ? 0 : waitNs);
                wake.endSleep();
                setState(LoopState::Running);
                markIdle(nowNs());
                ran = dispatchEvents(evs, count);
            }
            if (ran || closed)
                return false;
            if (wakeRequested.exchange(false, std::memory_order_acq_rel))
                return true;
            if (workPending(nowNs(), phases))
                return false;
            if (manual) {
                opts.clock->advanceTo(fromNs(until));
                return false;
            }
        }
    }

    void setState(LoopState s) noexcept {
        const LoopState cur = state.load(std::memory_order_relaxed);
        if (cur != LoopState::ShuttingDown && cur != LoopState::Closed)
            state.store(s, std::memory_order_release);
    }

    // ---- one iteration ----
    // One iteration. `ran` only decides whether to wait; runOnce() counts the callbacks it
    // started from the counters (nested runs and checkpoints included).
    void iterate(std::int64_t timeoutNs, unsigned phases) {
        iterations.add();
        std::int64_t now = nowNs();
        sampleGauges(now);
        std::size_t ran = 0;
        drainRemoteTimers();
        ran += checkpoint(); // microtasks queued from other threads since the last checkpoint
        if (phases & RunPhase::Timers)
            ran += runDueTimers(now);
        ran += runTasks();
        // A non-blocking poll only when this iteration will not block: otherwise the wait below
        // is the poll (one epoll_wait per idle-to-ready cycle, not two).
        if (ran != 0 || timeoutNs == 0 || !immediates.empty())
            ran += pollFds(phases);
        ran += runImmediates();
        if (ran == 0 && timeoutNs != 0 && !closed) {
            const std::int64_t end = timeoutNs < 0 ? INT64_MAX : deadlineAfter(nowNs(), timeoutNs);
            const bool endedByWakeUp = waitForWork(end, phases);
            if (!closed && !(endedByWakeUp && (phases & RunFlag::ReturnOnWakeUp))) {
                runImmediates(); // the check phase follows the I/O that ended the wait
                now = nowNs();
                drainRemoteTimers();
                checkpoint();
                if (phases & RunPhase::Timers)
                    runDueTimers(now);
                runTasks();
            }
        }
    }

    void sampleGauges(std::int64_t now) noexcept {
        externalQueue.raiseMax(ingress.size());
        ringUsed.raiseMax(micro.ringUsed());
        overflow.raiseMax(micro.overflowSize());
        internalQueue.set(local.size());
        rate.maybeSample(now, callbacksTotal(), busyNs.get(), idleNs.get());
    }

    std::uint64_t callbacksTotal() const noexcept {
        return tasksRun.get() + microtasksRun.get() + timersRun.get() + fdCallbacksRun.get();
    }

    Result<std::size_t> runOnce(std::int64_t timeoutNs, unsigned phases) {
        if (phases & ~(RunPhase::All | RunFlag::ReturnOnWakeUp))
            return Errc::InvalidArgument;
        if (!isLoopThread())
            return Errc::WrongThread;
        if (closed)
            return Errc::NotAccepting;
        const std::uint64_t before = callbacksTotal();
        enter();
        iterate(timeoutNs, phases);
        // A runOnce() outside any run() consumes a stop request (it returned promptly).
        if (runDepth == 0)
            stopRequested.store(false, std::memory_order_relaxed);
        leave();
        return std::size_t(callbacksTotal() - before); // nested runs and checkpoints included
    }

    void enter() noexcept {
        if (depth++ == 0) {
            runners.store(1, std::memory_order_release);
            lastMarkNs = nowNs();
            setState(LoopState::Running);
            outerRunningLoop = tlsRunningLoop; // another loop this thread is inside, if any
            tlsRunningLoop = self;
        }
    }
    void leave() noexcept {
        if (--depth == 0) {
            markBusy(nowNs());
            runners.store(0, std::memory_order_release);
            setState(LoopState::Idle);
            tlsRunningLoop = outerRunningLoop;
        }
    }

    // ---- lifecycle ----
    void stopAccepting() noexcept {
        accepting.store(false, std::memory_order_seq_cst);
        ingress.close();
        micro.close();
        while (remoteOps.load(std::memory_order_acquire) != 0)
            yieldSpin();
    }

    Result<ShutdownReport> shutdown(ShutdownTimers policy) {
        if (Status s = mayOperate(); !s)
            return s;
        const LoopState cur = state.load(std::memory_order_acquire);
        if (cur == LoopState::Closed)
            return ShutdownReport{};
        if (cur == LoopState::ShuttingDown)
            return Errc::Busy;
        state.store(LoopState::ShuttingDown, std::memory_order_release);
        stopAccepting();
        enter();
        ShutdownReport rep;
        const std::uint64_t before = callbacksTotal();
        for (;;) {
            drainRemoteTimers();
            std::size_t n = checkpoint();
            n += runDueTimers(nowNs());
            n += runTasks();
            n += runImmediates();
            if (closed)
                break;
            if (n)
                continue;
            if (!ingress.drained()) {
                yieldSpin(); // a producer reserved a slot before the close and is writing it
                continue;
            }
            if (micro.pending() || !local.empty() || !immediates.empty() || slab.remotePending())
                continue;
            if (policy == ShutdownTimers::WaitForAll && pendingCount() != 0 && !heap.empty()) {
                const std::int64_t now = nowNs();
                if (heap.top().deadline > now && opts.clock) {
                    opts.clock->advanceTo(fromNs(heap.top().deadline));
                } else if (heap.top().deadline > now) {
                    const std::uint32_t seen = wake.futexValue();
                    wake.futexWait(seen, heap.top().deadline - now);
                }
                continue;
            }
            break;
        }
        leave();
        rep.tasksRun = callbacksTotal() - before;
        rep.timersCancelled = closeNow();
        return rep;
    }

    // Returns the number of timers that were pending.
    std::uint64_t closeNow() noexcept {
        if (closed)
            return 0;
        closed = true;
        state.store(LoopState::Closed, std::memory_order_release);
        stopAccepting();
        ingress.releaseAll();
        local.clear();
        immediates.clear();
        rejections.clear();
        internalQueue.set(0);
        micro.releaseAll();
        const std::uint64_t cancelled = releaseTimers();
        for (std::size_t fd = 0; fd < fds.size(); ++fd) {
            if (fds[fd].registered) {
                if (fds[fd].inEpoll)
                    poller.remove(int(fd));
                fds[fd] = FdEntry{};
                adjustFdCount(-1);
            }
        }
        return cancelled;
    }

    MetricsSnapshot snapshot() const {
        MetricsSnapshot s;
        const std::int64_t now = nowNs();
        s.takenAtNs = std::uint64_t(now);
        if (opts.metrics) {
            s.taskLatency = taskLatency.summarize();
            s.timerLateness = timerLateness.summarize();
        }
        s.busyNs = busyNs.get();
        s.idleNs = idleNs.get();
        rate.compute(now, callbacksTotal(), s.busyNs, s.idleNs, s);
        s.externalQueue = ingress.size();
        s.externalQueueMax = externalQueue.takeMax(s.externalQueue);
        s.internalQueue = internalQueue.value();
        s.internalQueueMax = internalQueue.takeMax(s.internalQueue);
        s.microtaskRingUsed = micro.ringUsed();
        s.microtaskRingMax = ringUsed.takeMax(s.microtaskRingUsed);
        s.microtaskRingCapacity = micro.capacity();
        s.microtaskOverflow = micro.overflowSize();
        s.microtaskOverflowMax = overflow.takeMax(s.microtaskOverflow);
        s.timerHeapSize = heapSize.value();
        s.timerHeapMax = heapSize.takeMax(s.timerHeapSize);
        const std::uint64_t w = modeAndFds.load(std::memory_order_acquire);
        s.registeredFds = fdsOf(w);
        s.fastPathMode = FastPathMode(modeOf(w));
        s.iterations = iterations.get();
        s.tasksRun = tasksRun.get();
        s.microtasksRun = microtasksRun.get();
        s.timersRun = timersRun.get();
        s.fdCallbacksRun = fdCallbacksRun.get();
        s.callbackErrors = callbackErrors.get();
        s.microtaskBudgetHits = budgetHits.get();
        s.wakeSyscalls = wake.syscalls();
        s.fastPathActive = fastActive.load(std::memory_order_relaxed);
        s.fastPathTransitions = fastTransitions.get();
        s.state = state.load(std::memory_order_acquire);
        return s;
    }

    // ---- data ----
    LoopOptions opts;
    std::atomic<std::thread::id> owner;
    std::atomic<int> ownerTid{0}; // the loop thread's Linux thread id (for the inspector)
    const std::uint64_t id = nextLoopId.fetch_add(1, std::memory_order_relaxed);
    std::atomic<int> runners{0}; // 1 while the loop thread is inside run()/runOnce()
    int depth = 0;               // nesting of run()/runOnce() (loop thread)
    int runDepth = 0;            // nesting of run() (loop thread)
    bool closed = false;         // loop thread (or the closing thread)
    std::atomic<LoopState> state{LoopState::Idle};
    std::atomic<bool> accepting{true};
    std::atomic<int> remoteOps{0};
    std::atomic<bool> stopRequested{false};
    std::atomic<bool> wakeRequested{false};

    Loop* self = nullptr;
    Loop* outerRunningLoop = nullptr; // tlsRunningLoop to restore when depth returns to 0
    std::shared_ptr<LoopAnchor> anchor = std::make_shared<LoopAnchor>();
    RejectionTracker rejections;
    Function<bool()> checkpointHook;
    bool inCheckpointHook = false;

    Ingress ingress;
    LocalQueue local;
    LocalQueue immediates; // the check phase's queue (queueImmediate)
    MicrotaskRing micro;
    TimerSlab slab;
    TimerHeap heap;
    // Pending timers = pendingLocal + pendingRemote. The loop thread (or the thread closing an
    // unrun loop) keeps its share in a single-writer counter (plain load + store); other threads
    // add theirs with read-modify-writes. Either part may be negative; the sum is not.
    std::atomic<std::int64_t> pendingLocal{0};
    std::atomic<std::int64_t> pendingRemote{0};
    void addPending(bool local, std::int64_t n) noexcept {
        if (local)
            pendingLocal.store(pendingLocal.load(std::memory_order_relaxed) + n,
                               std::memory_order_relaxed);
        else
            pendingRemote.fetch_add(n, std::memory_order_relaxed);
    }
    std::int64_t pendingCount() const noexcept {
        return pendingLocal.load(std::memory_order_relaxed) +
               pendingRemote.load(std::memory_order_relaxed);
    }

    PollerEpoll poller;
    Wakeup wake;
    std::vector<FdEntry> fds;
    std::atomic<std::uint64_t> modeAndFds{0};
    std::atomic<bool> fastActive{false};

    // metrics (written by the loop thread; see metrics.h)
    mutable Histogram taskLatency, timerLateness;
    mutable Gauge externalQueue, internalQueue, ringUsed, overflow, heapSize;
    Counter iterations, tasksRun, microtasksRun, timersRun, fdCallbacksRun, callbackErrors,
        budgetHits, fastTransitions, busyNs, idleNs;
    std::int64_t lastMarkNs = 0;
    const std::uint32_t sampleMask =
        std::bit_ceil(std::clamp(opts.latencySampleEvery, 1u, 1u << 20)) - 1;
    std::uint32_t timersSampled = 0;
    RateWindow rate;
};

// ---------------------------------------------------------------------------------------------

Loop::Loop(LoopOptions options) : d_(std::make_unique<Impl>(std::move(options))) {
    d_->self = this;
    d_->anchor->loop = this;
    registerLoop(this);
}

// Leaves the registry first, so a probe visiting loops never sees one being torn down.
// Then detaches the anchor: resolvers on other threads learn the loop is gone (they wait for a
// queueMicrotask in progress, which holds the anchor).
Loop::~Loop() {
    unregisterLoop(this);
    std::lock_guard lock(d_->anchor->mutex);
    d_->anchor->loop = nullptr;
}

Status Loop::run() {
    if (!d_->isLoopThread())
        return Errc::WrongThread;
    if (d_->closed)
        return Errc::NotAccepting;
    ++d_->runDepth;
    while (!d_->closed) {
        (void)d_->runOnce(-1, RunPhase::All);
        if (d_->stopRequested.exchange(false, std::memory_order_acq_rel))
            break;
    }
    --d_->runDepth;
    return {};
}

Result<std::size_t> Loop::runOnce(Duration timeout, unsigned phases) {
    const std::int64_t ns = timeout == kForever ? -1 : (timeout.count() < 0 ? 0 : timeout.count());
    return d_->runOnce(ns, phases);
}

void Loop::stop() noexcept {
    d_->stopRequested.store(true, std::memory_order_seq_cst);
    d_->wake.notify();
}

void Loop::wakeUp() noexcept {
    d_->wakeRequested.store(true, std::memory_order_seq_cst);
    d_->wake.notify();
}

Result<ShutdownReport> Loop::shutdown(ShutdownTimers timers) {
    return d_->shutdown(timers);
}

Status Loop::close() {
    if (Status s = d_->mayOperate(); !s)
        return s;
    d_->closeNow();
    return {};
}

LoopState Loop::state() const noexcept {
    return d_->state.load(std::memory_order_acquire);
}

Status Loop::attachToCurrentThread() {
    if (d_->isLoopThread())
        return {};
    if (d_->runners.load(std::memory_order_acquire) != 0)
        return Errc::Busy;
    d_->owner.store(std::this_thread::get_id(), std::memory_order_release);
    d_->ownerTid.store(int(::gettid()), std::memory_order_release);
    return {};
}

bool Loop::isLoopThread() const noexcept {
    return d_->isLoopThread();
}
const std::string& Loop::name() const noexcept {
    return d_->opts.name;
}

std::uint64_t Loop::id() const noexcept {
    return d_->id;
}

int Loop::loopThreadTid() const noexcept {
    return d_->ownerTid.load(std::memory_order_acquire);
}

Status Loop::submit(Task task) {
    if (!task)
        return Errc::NullCallable;
    const bool own = d_->isLoopThread();
    switch (d_->ingress.push(task, d_->enqueueStamp(), own)) {
    case Ingress::PushResult::Ok:
        if (!own) // the loop thread cannot be asleep while it submits
            d_->wake.notify();
        return {};
    case Ingress::PushResult::Closed:
        return Errc::NotAccepting;
    case Ingress::PushResult::NoMemory:
        break;
    }
    return {Errc::SystemError, ENOMEM};
}

Status Loop::submitInternal(Task task) {
    if (!task)
        return Errc::NullCallable;
    if (!d_->isLoopThread())
        return Errc::WrongThread;
    // Accepted while a shutdown drains (it runs before the drain ends), refused once closed.
    if (d_->closed)
        return Errc::NotAccepting;
    if (!d_->local.push(std::move(task), d_->enqueueStamp()))
        return {Errc::SystemError, ENOMEM};
    d_->internalQueue.raiseMax(d_->local.size());
    return {};
}

Status Loop::queueMicrotask(Task task) {
    if (!task)
        return Errc::NullCallable;
    // During a graceful drain the loop thread may still queue microtasks (they belong to the
    // work being drained); other threads are refused.
    const bool own = d_->isLoopThread();
    const bool force =
        own && !d_->closed && d_->state.load(std::memory_order_acquire) == LoopState::ShuttingDown;
    switch (d_->micro.push(task, force, own)) {
    case MicrotaskRing::PushResult::Ok:
        break;
    case MicrotaskRing::PushResult::Closed:
        return Errc::NotAccepting;
    case MicrotaskRing::PushResult::NoMemory:
        return {Errc::SystemError, ENOMEM};
    }
    if (!own) // the loop thread cannot be asleep while it queues
        d_->wake.notify();
    return {};
}

Status Loop::queueImmediate(Task task) {
    if (!task)
        return Errc::NullCallable;
    if (!d_->isLoopThread())
        return Errc::WrongThread;
    if (d_->closed)
        return Errc::NotAccepting;
    if (!d_->immediates.push(std::move(task), d_->enqueueStamp()))
        return {Errc::SystemError, ENOMEM};
    return {};
}

struct detail::LoopAccess {
    static Loop::Impl& of(Loop& loop) noexcept { return *loop.d_; }
};

std::shared_ptr<LoopAnchor> detail::anchorOf(Loop& loop) {
    return LoopAccess::of(loop).anchor;
}

Loop* detail::runningLoop() noexcept {
    return tlsRunningLoop;
}

RejectionTracker& detail::rejectionTrackerOf(Loop& loop) {
    return LoopAccess::of(loop).rejections;
}

Result<TimerId> Loop::scheduleTimer(Duration delay, Task task) {
    return d_->schedule(deadlineAfter(d_->nowNs(), delay.count()), task);
}

Result<TimerId> Loop::scheduleTimerAt(TimePoint deadline, Task task) {
    return d_->schedule(toNs(deadline), task);
}

Status Loop::rescheduleTimer(TimerId id, TimePoint deadline) {
    return d_->reschedule(id, toNs(deadline));
}

bool Loop::cancelTimer(TimerId id) noexcept {
    return d_->cancel(id);
}

Result<TimePoint> Loop::timerDeadline(TimerId id) const noexcept {
    const std::uint64_t gen = TimerSlab::generationOf(id);
    TimerSlab::Entry* e = gen ? d_->slab.find(TimerSlab::slotOf(id)) : nullptr;
    if (!e)
        return Errc::NotFound;
    const std::uint64_t want = TimerSlab::word(gen, TimerSlab::Pending);
    if (e->state.load(std::memory_order_acquire) != want)
        return Errc::NotFound;
    // Re-check the state after reading the deadline (acquire keeps the order): the slot may
    // have been freed and reused in between.
    const std::int64_t deadline = e->deadline.load(std::memory_order_acquire);
    if (e->state.load(std::memory_order_relaxed) != want)
        return Errc::NotFound;
    return fromNs(deadline);
}

TimePoint Loop::now() const noexcept {
    return fromNs(d_->nowNs());
}

std::size_t Loop::pendingTimers() const noexcept {
    const std::int64_t n = d_->pendingCount();
    return n > 0 ? std::size_t(n) : 0;
}

Status Loop::registerFd(int fd, unsigned events, FdCallback callback, FdReentry reentry) {
    if (!d_->isLoopThread())
        return Errc::WrongThread;
    if (fd < 0 || events == 0 || (events & ~kWatchable))
        return Errc::InvalidArgument;
    if (!callback)
        return Errc::NullCallable;
    if (d_->closed)
        return Errc::NotAccepting;
    if (d_->fdEntry(fd))
        return Errc::AlreadyExists;
    std::shared_ptr<FdCallback> shared;
    if (reentry == FdReentry::Allow) {
        try {
            if (faults::check(faults::Site::FdTable))
                throw std::bad_alloc();
            shared = std::make_shared<FdCallback>(std::move(callback));
        } catch (const std::bad_alloc&) {
            return {Errc::SystemError, ENOMEM};
        }
    }
    std::uint64_t w = d_->modeAndFds.load(std::memory_order_acquire);
    do {
        if (FastPathMode(modeOf(w)) == FastPathMode::Forced)
            return Errc::FastPathConflict;
    } while (!d_->modeAndFds.compare_exchange_weak(w, w + 256, std::memory_order_acq_rel));
    if (std::size_t(fd) >= d_->fds.size()) {
        try {
            if (faults::check(faults::Site::FdTable))
                throw std::bad_alloc();
            d_->fds.resize(std::size_t(fd) + 1);
        } catch (const std::bad_alloc&) {
            d_->adjustFdCount(-1);
            return {Errc::SystemError, ENOMEM};
        }
    }
    Impl::FdEntry& e = d_->fds[std::size_t(fd)];
    const std::uint32_t gen = e.gen + 1;
    if (int err = d_->poller.add(fd, toEpoll(events), d_->fdData(fd, gen)); err != 0) {
        d_->adjustFdCount(-1);
        return err == EBADF ? Status{Errc::InvalidArgument, err} : Status{Errc::SystemError, err};
    }
    if (reentry == FdReentry::Allow)
        e.shared = std::move(shared);
    else
        e.callback = std::move(callback);
    e.events = events;
    e.gen = gen;
    e.registered = true;
    e.inEpoll = true;
    e.suspended = false;
    return {};
}

Status Loop::modifyFd(int fd, unsigned events) {
    if (!d_->isLoopThread())
        return Errc::WrongThread;
    if (events & ~kWatchable)
        return Errc::InvalidArgument;
    Impl::FdEntry* e = d_->fdEntry(fd);
    if (!e)
        return Errc::NotFound;
    // Watching nothing leaves epoll entirely: epoll reports errors and hang-ups even for an
    // empty mask, which would spin a level-triggered loop.
    int err = 0;
    if (events == 0) {
        if (e->inEpoll)
            err = d_->poller.remove(fd);
        e->inEpoll = e->inEpoll && err != 0; // still in epoll when the removal failed
    } else if (e->inEpoll) {
        err = d_->poller.modify(fd, toEpoll(events), d_->fdData(fd, e->gen));
    } else {
        err = d_->poller.add(fd, toEpoll(events), d_->fdData(fd, e->gen));
        e->inEpoll = err == 0;
    }
    if (err != 0)
        return {Errc::SystemError, err};
    e->events = events;
    return {};
}

Status Loop::unregisterFd(int fd) {
    if (!d_->isLoopThread())
        return Errc::WrongThread;
    Impl::FdEntry* e = d_->fdEntry(fd);
    if (!e)
        return Errc::NotFound;
    // A failed removal changes nothing: the fd stays registered (and watched), the caller may
    // retry. (An fd that was already closed is not a failure: see PollerEpoll::remove.)
    if (const int err = e->inEpoll ? d_->poller.remove(fd) : 0; err != 0)
        return {Errc::SystemError, err};
    FdCallback dying = std::move(e->callback); // destroyed after the entry is consistent
    const std::shared_ptr<FdCallback> dyingShared = std::move(e->shared);
    e->registered = false;
    e->inEpoll = false;
    e->suspended = false;
    e->events = 0;
    d_->adjustFdCount(-1);
    return {};
}

std::size_t Loop::registeredFds() const noexcept {
    return fdsOf(d_->modeAndFds.load(std::memory_order_acquire));
}

Status Loop::setFastPathMode(FastPathMode mode) {
    std::uint64_t w = d_->modeAndFds.load(std::memory_order_acquire);
    std::uint64_t next;
    do {
        if (mode == FastPathMode::Forced && fdsOf(w) != 0)
            return Errc::FastPathConflict;
        next = (w & ~std::uint64_t(0xff)) | std::uint64_t(mode);
    } while (!d_->modeAndFds.compare_exchange_weak(w, next, std::memory_order_acq_rel));
    // Let a sleeping loop re-evaluate how it waits (a spurious wake; it sleeps again).
    d_->wake.notify();
    return {};
}

FastPathMode Loop::fastPathMode() const noexcept {
    return FastPathMode(modeOf(d_->modeAndFds.load(std::memory_order_acquire)));
}

MetricsSnapshot Loop::snapshot() const {
    return d_->snapshot();
}

void Loop::setErrorHook(ErrorHook hook) {
    d_->opts.errorHook = std::move(hook);
}

Status Loop::setCheckpointHook(Function<bool()> hook) {
    if (!d_->isLoopThread())
        return Errc::WrongThread;
    if (d_->inCheckpointHook)
        return Errc::Busy;
    d_->checkpointHook = std::move(hook);
    return {};
}

} // namespace libloop
