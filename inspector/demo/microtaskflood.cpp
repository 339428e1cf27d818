#include "scenarios.h"

namespace libloop::demo {

struct MicrotaskFlood::Core {
    explicit Core(Loop& l) : loop(l) {}
    Loop& loop;
    std::uint64_t generation = 0;
    bool running = false;
    std::uint64_t run = 0;
};

namespace {

// One flood microtask: counts itself and queues itself again, for as long as its generation is
// current. Nothing else ends it: only the loop's checkpoint budget lets other work in.
void hop(std::shared_ptr<MicrotaskFlood::Core> c, std::uint64_t gen) {
    if (c->generation != gen)
        return;
    ++c->run;
    Loop& loop = c->loop;
    (void)loop.queueMicrotask([c = std::move(c), gen]() mutable { hop(std::move(c), gen); });
}

} // namespace

MicrotaskFlood::MicrotaskFlood(Loop& loop) : core_(std::make_shared<Core>(loop)) {}

MicrotaskFlood::~MicrotaskFlood() {
    stop();
}

Status MicrotaskFlood::start(std::uint32_t size) {
    stop();
    Core& c = *core_;
    c.running = true;
    const std::uint64_t gen = c.generation;
    for (std::uint32_t i = 0; i < size; ++i) {
        Status s =
            c.loop.queueMicrotask([core = core_, gen]() mutable { hop(std::move(core), gen); });
        if (!s.ok()) {
            stop();
            return s;
        }
    }
    return {};
}

void MicrotaskFlood::stop() {
    ++core_->generation;
    core_->running = false;
}

bool MicrotaskFlood::running() const {
    return core_->running;
}

std::uint64_t MicrotaskFlood::microtasksRun() const {
    return core_->run;
}

} // namespace libloop::demo
