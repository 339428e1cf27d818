// What promises need from a Loop: a lifetime anchor for resolvers on other threads, and HTML's
// rejection tracker, notified at the end of every microtask checkpoint that empties the queue.
#pragma once

#include <libloop/promise.h>

#include <memory>
#include <mutex>
#include <vector>

namespace libloop::detail {

// Shared by a Loop and every promise state on it. `loop` is cleared (under `mutex`) when the Loop
// is destroyed, so a Resolver on another thread either reaches a live loop or learns it is gone.
struct LoopAnchor {
    std::mutex mutex;
    Loop* loop = nullptr;
};

// HTML's "about-to-be-notified rejected promises list" for one loop. [loop thread]
class RejectionTracker {
public:
    // A promise was rejected with no handler.
    void rejected(std::shared_ptr<PromiseCore> p) { aboutToNotify_.push_back(std::move(p)); }
    bool pending() const noexcept { return !aboutToNotify_.empty(); }
    // End of a microtask checkpoint: reports the promises still unhandled.
    void notify(Loop& loop);
    // A handler was attached to a promise already reported: "handled after all", from a task.
    void handledLater(Loop& loop, std::shared_ptr<PromiseCore> p);
    void clear() noexcept { aboutToNotify_.clear(); }

    RejectionHook hook;

private:
    void report(Loop& loop, const RejectionInfo& info) noexcept;

    std::vector<std::shared_ptr<PromiseCore>> aboutToNotify_;
};

std::shared_ptr<LoopAnchor> anchorOf(Loop& loop);
// The loop the calling thread is running (inside run()/runOnce()/shutdown()), or null.
Loop* runningLoop() noexcept;
RejectionTracker& rejectionTrackerOf(Loop& loop);

} // namespace libloop::detail
