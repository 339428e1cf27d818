#include "scenarios.h"

#include <atomic>
#include <chrono>

namespace libloop::demo {

struct Blocker::Core {
    explicit Core(Loop& l) : loop(l) {}
    Loop& loop;
    std::uint64_t generation = 0;
    bool running = false;
    std::uint64_t blocks = 0;
    double lastLatenessMs = 0;
    Notify notify;
    std::function<std::uint32_t()> ms; // while repeating
    std::uint32_t periodMs = 1000;
    TimerId repeatTimer;
};

namespace {

using CorePtr = std::shared_ptr<Blocker::Core>;

// Where the busy work's result goes, so that the compiler cannot drop the work.
std::atomic<std::uint64_t> blockSink{0};

// Busy work on the loop thread until `until` (CPU-bound, like a real long task; a sleep would
// block the loop just the same).
std::uint64_t spinUntil(TimePoint until) {
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    while (Clock::now() < until) {
        for (int i = 0; i < 256; ++i)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    return x;
}

// The block itself, as one task.
Status block(const CorePtr& c, std::uint32_t ms) {
    const std::uint64_t gen = c->generation;
    return c->loop.submit([c, gen, ms] {
        if (c->generation != gen)
            return;
        const TimePoint begin = Clock::now();
        // The witnesses. Timers due at `begin` (one deadline: they run consecutively, FIFO), then
        // tasks queued now; both wait behind the block.
        for (int i = 0; i < Blocker::kWitnesses; ++i) {
            (void)c->loop.scheduleTimerAt(begin, [c, gen, begin, i] {
                if (i == 0 && c->generation == gen)
                    c->lastLatenessMs =
                        std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
            });
        }
        for (int i = 0; i < Blocker::kWitnesses; ++i) {
            (void)c->loop.submit([c, gen, i] {
                if (i != Blocker::kWitnesses - 1 || c->generation != gen)
                    return;
                ++c->blocks;
                if (c->notify)
                    c->notify();
            });
        }
        blockSink.store(spinUntil(begin + std::chrono::milliseconds(ms)),
                        std::memory_order_relaxed);
    });
}

void repeat(const CorePtr& c, std::uint64_t gen) {
    auto r = c->loop.scheduleTimer(std::chrono::milliseconds(c->periodMs), [c, gen] {
        c->repeatTimer = TimerId{};
        if (c->generation != gen || !c->running)
            return;
        (void)block(c, c->ms());
        repeat(c, gen);
    });
    c->repeatTimer = r.value_or(TimerId{});
}

} // namespace

Blocker::Blocker(Loop& loop) : core_(std::make_shared<Core>(loop)) {}

Blocker::~Blocker() {
    stop();
}

void Blocker::setNotify(Notify notify) {
    core_->notify = std::move(notify);
}

Status Blocker::blockOnce(std::uint32_t ms) {
    return block(core_, ms);
}

Status Blocker::start(std::function<std::uint32_t()> ms, std::uint32_t periodMs) {
    stop();
    Core& c = *core_;
    c.ms = std::move(ms);
    c.periodMs = periodMs;
    c.running = true;
    Status s = block(core_, c.ms());
    if (!s.ok()) {
        stop();
        return s;
    }
    repeat(core_, c.generation);
    return {};
}

void Blocker::stop() {
    Core& c = *core_;
    ++c.generation;
    c.running = false;
    c.ms = nullptr;
    if (c.repeatTimer)
        c.loop.cancelTimer(c.repeatTimer);
    c.repeatTimer = TimerId{};
}

bool Blocker::running() const {
    return core_->running;
}

std::uint64_t Blocker::blocks() const {
    return core_->blocks;
}

double Blocker::lastLatenessMs() const {
    return core_->lastLatenessMs;
}

} // namespace libloop::demo
