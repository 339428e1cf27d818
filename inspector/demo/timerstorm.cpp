#include "scenarios.h"

#include <algorithm>
#include <random>
#include <vector>

namespace libloop::demo {

struct TimerStorm::Core {
    explicit Core(Loop& l) : loop(l) {}
    Loop& loop;
    std::uint64_t generation = 0;
    bool running = false;
    std::uint32_t maxDelayUs = 1000;
    // ids[i] is slot i's pending timer; a slot is re-armed by its own callback.
    std::vector<TimerId> ids;
    std::size_t pending = 0;
    std::uint64_t fired = 0;
    std::mt19937_64 rng{20240601}; // a fixed seed: a storm is the same storm on every run

    Duration randomDelay() {
        std::uniform_int_distribution<std::uint32_t> us(1000, maxDelayUs);
        return std::chrono::microseconds(us(rng));
    }
};

namespace {

// Schedules slot `i` of the storm (generation `gen`) with a fresh random delay.
Status arm(const std::shared_ptr<TimerStorm::Core>& c, std::uint64_t gen, std::uint32_t i) {
    auto r = c->loop.scheduleTimer(c->randomDelay(), [c, gen, i] {
        if (c->generation != gen)
            return;
        ++c->fired;
        c->ids[i] = TimerId{};
        --c->pending;
        if (arm(c, gen, i).ok())
            return;
        // Refused (the loop is shutting down): the slot stays empty.
    });
    if (!r)
        return r.status();
    c->ids[i] = r.value();
    ++c->pending;
    return {};
}

} // namespace

TimerStorm::TimerStorm(Loop& loop) : core_(std::make_shared<Core>(loop)) {}

TimerStorm::~TimerStorm() {
    stop();
}

Status TimerStorm::start(std::uint32_t count, std::uint32_t maxDelayMs) {
    stop();
    Core& c = *core_;
    c.running = true;
    c.maxDelayUs = std::max<std::uint32_t>(maxDelayMs, 1) * 1000;
    c.ids.assign(count, TimerId{});
    for (std::uint32_t i = 0; i < count; ++i) {
        if (Status s = arm(core_, c.generation, i); !s.ok()) {
            stop();
            return s;
        }
    }
    return {};
}

void TimerStorm::stop() {
    Core& c = *core_;
    ++c.generation;
    c.running = false;
    for (TimerId id : c.ids)
        if (id)
            c.loop.cancelTimer(id);
    c.ids.clear();
    c.ids.shrink_to_fit();
    c.pending = 0;
}

bool TimerStorm::running() const {
    return core_->running;
}

std::size_t TimerStorm::pending() const {
    return core_->pending;
}

std::uint64_t TimerStorm::fired() const {
    return core_->fired;
}

} // namespace libloop::demo
