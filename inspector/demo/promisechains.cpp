#include "scenarios.h"

#include <libloop/promise.h>

#include <chrono>
#include <vector>

namespace libloop::demo {

struct PromiseChains::Core {
    explicit Core(Loop& l) : loop(l) {}
    Loop& loop;
    std::uint64_t generation = 0;
    bool running = false;
    std::uint64_t settled = 0;
    std::uint64_t batches = 0;
    Notify notify;
    // Timers of this generation: start guns of batches not yet fired, the pause before the next
    // batch. Cancelling a start gun drops its resolvers, and with them the whole pending batch.
    std::vector<TimerId> timers;
    std::function<std::uint32_t()> chains, depth; // while repeating
};

namespace {

using CorePtr = std::shared_ptr<PromiseChains::Core>;

constexpr auto kStartGunDelay = std::chrono::milliseconds(10);
constexpr auto kPauseBetweenBatches = std::chrono::milliseconds(100);

void forgetTimer(PromiseChains::Core& c, TimerId id) {
    std::erase(c.timers, id);
}

Status batch(const CorePtr& c, std::uint32_t chains, std::uint32_t depth, bool repeat);

void scheduleNextBatch(const CorePtr& c, std::uint64_t gen) {
    auto id = std::make_shared<TimerId>();
    auto r = c->loop.scheduleTimer(kPauseBetweenBatches, [c, gen, id] {
        forgetTimer(*c, *id);
        if (c->generation == gen && c->running)
            (void)batch(c, c->chains(), c->depth(), true);
    });
    if (r) {
        *id = r.value();
        c->timers.push_back(r.value());
    }
}

Status batch(const CorePtr& c, std::uint32_t chains, std::uint32_t depth, bool repeat) {
    const std::uint64_t gen = c->generation;
    std::vector<Resolver<int>> roots;
    std::vector<Promise<int>> tails;
    roots.reserve(chains);
    tails.reserve(chains);
    for (std::uint32_t i = 0; i < chains; ++i) {
        auto [p, r] = makePromise<int>(c->loop);
        roots.push_back(std::move(r));
        Promise<int> q = p;
        for (std::uint32_t d = 0; d < depth; ++d) {
            q = q.then([c, gen](int v) {
                if (c->generation == gen)
                    ++c->settled;
                return v + 1;
            });
        }
        tails.push_back(std::move(q));
    }
    (void)all(c->loop, tails).then([c, gen, repeat](const std::vector<int>&) {
        if (c->generation != gen)
            return;
        ++c->batches;
        if (c->notify)
            c->notify();
        if (repeat && c->running)
            scheduleNextBatch(c, gen);
    });
    // The start gun: every root resolves in one timer callback, so the first reactions of all
    // chains are queued together at that callback's microtask checkpoint.
    auto id = std::make_shared<TimerId>();
    auto r = c->loop.scheduleTimer(kStartGunDelay, [c, gen, id, roots = std::move(roots)] {
        forgetTimer(*c, *id);
        if (c->generation != gen)
            return;
        for (const Resolver<int>& root : roots)
            if (root.resolve(0))
                ++c->settled;
    });
    if (!r)
        return r.status();
    *id = r.value();
    c->timers.push_back(r.value());
    return {};
}

} // namespace

PromiseChains::PromiseChains(Loop& loop) : core_(std::make_shared<Core>(loop)) {}

PromiseChains::~PromiseChains() {
    stop();
}

void PromiseChains::setNotify(Notify notify) {
    core_->notify = std::move(notify);
}

Status PromiseChains::runBatch(std::uint32_t chains, std::uint32_t depth) {
    return batch(core_, chains, depth, false);
}

Status PromiseChains::start(std::function<std::uint32_t()> chains,
                            std::function<std::uint32_t()> depth) {
    stop();
    core_->chains = std::move(chains);
    core_->depth = std::move(depth);
    core_->running = true;
    Status s = batch(core_, core_->chains(), core_->depth(), true);
    if (!s.ok())
        stop();
    return s;
}

void PromiseChains::stop() {
    Core& c = *core_;
    ++c.generation;
    c.running = false;
    c.chains = nullptr;
    c.depth = nullptr;
    std::vector<TimerId> timers;
    timers.swap(c.timers);
    for (TimerId id : timers)
        c.loop.cancelTimer(id);
}

bool PromiseChains::running() const {
    return core_->running;
}

std::uint64_t PromiseChains::settled() const {
    return core_->settled;
}

std::uint64_t PromiseChains::batches() const {
    return core_->batches;
}

} // namespace libloop::demo
