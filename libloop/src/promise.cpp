// The non-template half of promises: identity, the route to the loop thread, and HTML's
// rejection tracking (see promise.h for the semantics).
//
// Threads: a PromiseCore's fields are touched on its loop's thread only, except `claimed`
// (an atomic exchange decides the first resolve/reject) and anchor_ (immutable after
// construction; the anchor's own mutex guards its loop pointer).
#include <libloop/promise.h>

#include "promise_support.h"

#include <cstdio>

namespace libloop {

namespace {
std::atomic<std::uint64_t> nextPromiseId{1};
} // namespace

const char* promiseStateName(PromiseState s) noexcept {
    switch (s) {
    case PromiseState::Pending:
        return "pending";
    case PromiseState::Fulfilled:
        return "fulfilled";
    case PromiseState::Rejected:
        return "rejected";
    }
    return "?";
}

AggregateError::AggregateError(std::vector<std::exception_ptr> errors)
    : std::runtime_error("AggregateError: all promises were rejected"), errors_(std::move(errors)) {
}

void setRejectionHook(Loop& loop, RejectionHook hook) {
    detail::rejectionTrackerOf(loop).hook = std::move(hook);
}

namespace detail {

PromiseCore::PromiseCore(Loop& l)
    : loop(l), id(nextPromiseId.fetch_add(1, std::memory_order_relaxed)), anchor_(anchorOf(l)) {}

PromiseCore::~PromiseCore() = default;

bool PromiseCore::onLoopThread(Task fn) {
    // Inside the loop's own run (every reaction, and any callback of that loop): the loop is
    // alive and this is its thread, so no lock is needed.
    if (runningLoop() == &loop) {
        if (loop.state() == LoopState::Closed)
            return false;
        fn();
        return true;
    }
    std::unique_lock lock(anchor_->mutex);
    Loop* l = anchor_->loop;
    if (!l)
        return false;
    if (l->isLoopThread()) {
        lock.unlock(); // the loop cannot go away under its own thread
        if (l->state() == LoopState::Closed)
            return false;
        fn();
        return true;
    }
    // Queued while the anchor is held: the Loop cannot be destroyed meanwhile.
    return l->queueMicrotask(std::move(fn)).ok();
}

bool PromiseCore::queue(Task job) {
    return loop.queueMicrotask(std::move(job)).ok();
}

void PromiseCore::noteRejected() {
    rejectionTrackerOf(loop).rejected(shared_from_this());
}

void PromiseCore::noteHandled() {
    // Still in the about-to-be-notified list: notify() skips it (handled is set by the caller).
    if (notified)
        rejectionTrackerOf(loop).handledLater(loop, shared_from_this());
}

void RejectionTracker::notify(Loop& loop) {
    std::vector<std::shared_ptr<PromiseCore>> list;
    list.swap(aboutToNotify_);
    for (auto& p : list) {
        if (p->handled)
            continue;
        p->notified = true;
        report(loop, {RejectionEvent::Unhandled, p->id, p->reason});
    }
}

void RejectionTracker::handledLater(Loop& loop, std::shared_ptr<PromiseCore> p) {
    p->notified = false;
    (void)loop.submitInternal([this, &loop, p = std::move(p)] {
        report(loop, {RejectionEvent::HandledLater, p->id, p->reason});
    });
}

void RejectionTracker::report(Loop& loop, const RejectionInfo& info) noexcept {
    try {
        if (hook) {
            hook(info);
            return;
        }
        const char* what = "a non-std exception";
        std::string text;
        try {
            std::rethrow_exception(info.reason);
        } catch (const std::exception& e) {
            text = e.what();
            what = text.c_str();
        } catch (...) {
        }
        if (info.event == RejectionEvent::Unhandled)
            std::fprintf(stderr, "libloop[%s]: unhandled promise rejection (promise %llu): %s\n",
                         loop.name().c_str(), static_cast<unsigned long long>(info.promiseId),
                         what);
        else
            std::fprintf(stderr, "libloop[%s]: promise %llu's rejection was handled after all\n",
                         loop.name().c_str(), static_cast<unsigned long long>(info.promiseId));
    } catch (...) {
        // An exception escaping the hook is swallowed: the loop must go on.
    }
}

} // namespace detail
} // namespace libloop
