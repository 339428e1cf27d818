#include "scenarios.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace libloop::demo {

struct FastPathSwitcher::Core {
    explicit Core(Loop& l) : loop(l) {}
    Loop& loop;
    std::uint64_t generation = 0;
    bool running = false;
    int fds[2] = {-1, -1}; // the idle socketpair; fds[0] is the one registered
    bool registered = false;
    std::uint32_t periodMs = 500;
    TimerId stepTimer;
    int nextStep = 0;
    std::uint64_t steps = 0;
    std::uint64_t refusals = 0;
    std::string lastStep;
    Notify notify;

    Status registerFd() {
        if (registered)
            return {};
        if (fds[0] < 0 &&
            ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
            return Status(Errc::SystemError, errno);
        // Nobody writes to the other end: the callback only drains, should anything arrive.
        Status s = loop.registerFd(fds[0], FdEvent::Readable, [](int fd, unsigned) {
            char buf[64];
            while (::read(fd, buf, sizeof buf) > 0) {
            }
        });
        if (s.ok())
            registered = true;
        else
            closeFds();
        if (s == Errc::FastPathConflict)
            ++refusals;
        return s;
    }

    Status unregisterFd() {
        Status s;
        if (registered)
            s = loop.unregisterFd(fds[0]);
        registered = false;
        closeFds();
        return s;
    }

    Status setMode(FastPathMode m) {
        Status s = loop.setFastPathMode(m);
        if (s == Errc::FastPathConflict)
            ++refusals;
        return s;
    }

    void closeFds() {
        for (int& fd : fds) {
            if (fd >= 0)
                ::close(fd);
            fd = -1;
        }
    }
};

namespace {

using CorePtr = std::shared_ptr<FastPathSwitcher::Core>;

std::string describe(const char* action, Status s, const char* effect) {
    if (s.ok())
        return std::string(action) + ": " + effect;
    return std::string(action) + " refused (" + s.message() + ")";
}

// One step of the cycle; see the class comment for the sequence.
void step(FastPathSwitcher::Core& c) {
    Status s;
    switch (c.nextStep) {
    case 0:
        s = c.registerFd();
        c.lastStep = describe("register an idle fd", s, "Auto now waits in epoll");
        break;
    case 1:
        s = c.setMode(FastPathMode::Forced);
        c.lastStep = describe("Forced with an fd registered", s, "fast path forced");
        break;
    case 2:
        s = c.unregisterFd();
        c.lastStep = describe("unregister the fd", s, "Auto takes the fast path again");
        break;
    case 3:
        s = c.setMode(FastPathMode::Disabled);
        c.lastStep = describe("Disabled", s, "always epoll, even without fds");
        break;
    case 4:
        s = c.setMode(FastPathMode::Auto);
        c.lastStep = describe("Auto", s, "fast path while no fd is registered");
        break;
    case 5:
        s = c.setMode(FastPathMode::Forced);
        c.lastStep = describe("Forced", s, "fast path always, fds refused");
        break;
    case 6:
        s = c.registerFd();
        c.lastStep = describe("register an fd while Forced", s, "registered");
        break;
    default:
        if (c.registered)
            (void)c.unregisterFd();
        s = c.setMode(FastPathMode::Auto);
        c.lastStep = describe("Auto", s, "back to the start");
        break;
    }
    c.nextStep = (c.nextStep + 1) % 8;
    ++c.steps;
}

void scheduleStep(const CorePtr& c, std::uint64_t gen) {
    auto r = c->loop.scheduleTimer(std::chrono::milliseconds(c->periodMs), [c, gen] {
        c->stepTimer = TimerId{};
        if (c->generation != gen || !c->running)
            return;
        step(*c);
        scheduleStep(c, gen);
        if (c->notify)
            c->notify();
    });
    c->stepTimer = r.value_or(TimerId{});
}

} // namespace

FastPathSwitcher::FastPathSwitcher(Loop& loop) : core_(std::make_shared<Core>(loop)) {}

FastPathSwitcher::~FastPathSwitcher() {
    stop();
}

void FastPathSwitcher::setNotify(Notify notify) {
    core_->notify = std::move(notify);
}

Status FastPathSwitcher::setFdRegistered(bool on) {
    return on ? core_->registerFd() : core_->unregisterFd();
}

bool FastPathSwitcher::fdRegistered() const {
    return core_->registered;
}

Status FastPathSwitcher::setMode(FastPathMode mode) {
    return core_->setMode(mode);
}

Status FastPathSwitcher::start(std::uint32_t periodMs) {
    stop();
    Core& c = *core_;
    c.running = true;
    c.periodMs = periodMs;
    c.nextStep = 0;
    step(c); // the first step at once: the effect shows without waiting a period
    scheduleStep(core_, c.generation);
    return {};
}

void FastPathSwitcher::stop() {
    Core& c = *core_;
    ++c.generation;
    c.running = false;
    if (c.stepTimer)
        c.loop.cancelTimer(c.stepTimer);
    c.stepTimer = TimerId{};
    (void)c.unregisterFd();
    (void)c.loop.setFastPathMode(FastPathMode::Auto);
}

bool FastPathSwitcher::running() const {
    return core_->running;
}

std::uint64_t FastPathSwitcher::steps() const {
    return core_->steps;
}

std::uint64_t FastPathSwitcher::refusals() const {
    return core_->refusals;
}

const std::string& FastPathSwitcher::lastStep() const {
    return core_->lastStep;
}

} // namespace libloop::demo
