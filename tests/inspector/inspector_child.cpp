// Helper process for the inspector tests. Prints "ready <probe socket path>" once its workload is
// in place, then waits until stdin reaches EOF and exits normally.
//
//   inspector_child timers NAME N   probe named NAME; a Loop "timers" holding exactly N pending
//                                   timers (an hour out), otherwise idle
//   inspector_child work NAME       probe named NAME; a Loop "workload" doing varied work
//   inspector_child noprobe         no probe at all (prints "ready")
#include "workload.h"

#include <libloop/loop.h>
#include <libloop/qt/probe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <thread>
#include <unistd.h>

namespace {

void waitForStdinEof() {
    char buf[256];
    while (::read(0, buf, sizeof buf) > 0) {
    }
}

bool startProbe(const char* name) {
    libloop::qt::ProbeOptions o;
    o.name = name;
    const libloop::qt::ProbeResult r = libloop::qt::startProbe(o);
    if (!r.ok) {
        std::fprintf(stderr, "inspector_child: %s\n", r.error.c_str());
        return false;
    }
    return true;
}

void ready() {
    std::printf("ready %s\n", libloop::qt::probeSocketPath().c_str());
    std::fflush(stdout);
}

// A loop on its own thread that holds `n` timers, scheduled from the loop thread.
int holdTimers(std::size_t n) {
    libloop::LoopOptions o;
    o.name = "timers";
    std::unique_ptr<libloop::Loop> loop;
    std::promise<void> scheduled;
    auto done = scheduled.get_future();
    std::thread t([&] {
        loop = std::make_unique<libloop::Loop>(o);
        (void)loop->submit([&] {
            for (std::size_t i = 0; i < n; ++i)
                (void)loop->scheduleTimer(std::chrono::hours(1), [] {});
            scheduled.set_value();
        });
        (void)loop->run();
        (void)loop->close();
    });
    done.wait();
    while (loop->pendingTimers() != n)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ready();
    waitForStdinEof();
    loop->stop();
    t.join();
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 4 && std::strcmp(argv[1], "timers") == 0) {
        if (!startProbe(argv[2]))
            return 1;
        return holdTimers(std::size_t(std::strtoull(argv[3], nullptr, 10)));
    }
    if (argc >= 3 && std::strcmp(argv[1], "work") == 0) {
        if (!startProbe(argv[2]))
            return 1;
        inspectortest::Workload w;
        ready();
        waitForStdinEof();
        return 0;
    }
    if (argc >= 2 && std::strcmp(argv[1], "noprobe") == 0) {
        ready();
        waitForStdinEof();
        return 0;
    }
    std::fprintf(stderr, "usage: inspector_child timers NAME N | work NAME | noprobe\n");
    return 2;
}
