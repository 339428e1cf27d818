#include "scenarios.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace libloop::demo {

struct PingPong::Core {
    explicit Core(Loop& l) : loop(l) {}
    Loop& loop;
    std::uint64_t generation = 0;
    bool running = false;
    int fds[2] = {-1, -1};
    bool registered[2] = {false, false};
    std::uint64_t roundTrips = 0;

    void release() {
        for (int side = 0; side < 2; ++side) {
            if (registered[side])
                (void)loop.unregisterFd(fds[side]);
            registered[side] = false;
            if (fds[side] >= 0)
                ::close(fds[side]);
            fds[side] = -1;
        }
    }
};

namespace {

// One end's callback: read what arrived and send it straight back. Side 0 started the game, so a
// byte arriving there completes a round trip.
void onReadable(PingPong::Core& c, int side, int fd, unsigned events) {
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
        if (side == 0)
            c.roundTrips += std::uint64_t(n);
        ssize_t off = 0;
        while (off < n) {
            const ssize_t w = ::write(fd, buf + off, std::size_t(n - off));
            if (w <= 0)
                break; // a full buffer cannot happen with a few balls in flight; drop the rest
            off += w;
        }
        return;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || (events & FdEvent::HangUp)) {
        // The other end is gone: end the game (unregistering from inside the callback is fine).
        c.running = false;
        ++c.generation;
        c.release();
    }
}

} // namespace

PingPong::PingPong(Loop& loop) : core_(std::make_shared<Core>(loop)) {}

PingPong::~PingPong() {
    stop();
}

Status PingPong::start(std::uint32_t balls) {
    stop();
    Core& c = *core_;
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c.fds) != 0) {
        c.fds[0] = c.fds[1] = -1;
        return Status(Errc::SystemError, errno);
    }
    const std::uint64_t gen = c.generation;
    for (int side = 0; side < 2; ++side) {
        Status s = c.loop.registerFd(c.fds[side], FdEvent::Readable,
                                     [core = core_, side, gen](int fd, unsigned events) {
                                         if (core->generation == gen)
                                             onReadable(*core, side, fd, events);
                                     });
        if (!s.ok()) {
            c.release();
            return s;
        }
        c.registered[side] = true;
    }
    const std::vector<char> serve(std::max<std::uint32_t>(balls, 1), 'x');
    if (::write(c.fds[0], serve.data(), serve.size()) < 0) {
        const int err = errno;
        c.release();
        return Status(Errc::SystemError, err);
    }
    c.running = true;
    return {};
}

void PingPong::stop() {
    Core& c = *core_;
    ++c.generation;
    c.running = false;
    c.release();
}

bool PingPong::running() const {
    return core_->running;
}

std::uint64_t PingPong::roundTrips() const {
    return core_->roundTrips;
}

} // namespace libloop::demo
