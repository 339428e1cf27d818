// loop-console-demo: runs a libloop Loop under a mixed workload and prints its live metrics
// once a second. The workload: two producer threads submitting tasks in bursts, a timer storm
// (short timers rescheduling themselves, long ones cancelled), microtask chains, and a
// socketpair ping-pong on the loop's epoll.
//
//   loop-console-demo [--seconds N]
#include <libloop/loop.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using libloop::Loop;

namespace {

void printSnapshot(int second, const libloop::MetricsSnapshot& s) {
    std::printf("[%2ds] %-9s %-8s tasks/s %9.0f util %5.1f%%  latency p50 %7.1fus p99 %8.1fus "
                "max %8.1fus | timers %5llu (max %5llu) lateness p99 %7.1fus | ring %4llu/%llu "
                "overflow %llu | external %llu | fds %llu | wakes %llu\n",
                second, libloop::loopStateName(s.state), libloop::fastPathModeName(s.fastPathMode),
                s.tasksPerSecond, s.utilisation * 100, s.taskLatency.p50 / 1e3,
                s.taskLatency.p99 / 1e3, s.taskLatency.max / 1e3,
                (unsigned long long)s.timerHeapSize, (unsigned long long)s.timerHeapMax,
                s.timerLateness.p99 / 1e3, (unsigned long long)s.microtaskRingMax,
                (unsigned long long)s.microtaskRingCapacity,
                (unsigned long long)s.microtaskOverflowMax, (unsigned long long)s.externalQueueMax,
                (unsigned long long)s.registeredFds, (unsigned long long)s.wakeSyscalls);
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    int seconds = 5;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: %s [--seconds N]\n", argv[0]);
            return 2;
        }
    }
    if (seconds <= 0) {
        std::fprintf(stderr, "--seconds must be a positive number\n");
        return 2;
    }

    libloop::LoopOptions opts;
    opts.name = "console-demo";
    opts.microtaskRingCapacity = 256;
    Loop loop(std::move(opts));
    std::atomic<bool> running{true};

    // Timer storm: 200 short timers that reschedule themselves, plus long ones cancelled.
    std::function<void()> rearm; // the recursion needs a named function
    rearm = [&] {
        if (running)
            (void)loop.scheduleTimer(std::chrono::milliseconds(1 + std::rand() % 20),
                                     [&] { rearm(); });
    };
    for (int i = 0; i < 200; ++i)
        rearm();
    (void)loop.scheduleTimer(10ms, [&] {
        for (int i = 0; i < 1000; ++i) {
            auto id = loop.scheduleTimer(1h, [] {});
            if (i % 2 && id)
                loop.cancelTimer(id.value());
        }
    });

    // Socketpair ping-pong.
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        std::perror("socketpair");
        return 1;
    }
    auto pong = [&](int fd, unsigned) {
        char buf[64];
        while (::read(fd, buf, sizeof buf) > 0) {
        }
        if (running)
            (void)loop.scheduleTimer(
                2ms, [&, fd] { (void)!::write(fd == sv[0] ? sv[1] : sv[0], "p", 1); });
    };
    (void)loop.registerFd(sv[0], libloop::FdEvent::Readable, pong);
    (void)loop.registerFd(sv[1], libloop::FdEvent::Readable, pong);
    (void)!::write(sv[1], "p", 1);

    // Producers: bursts of tasks, each burst ending in a microtask chain.
    std::vector<std::thread> producers;
    for (int p = 0; p < 2; ++p) {
        producers.emplace_back([&, p] {
            while (running) {
                for (int i = 0; i < 2000 && running; ++i)
                    (void)loop.submit([&loop] {
                        (void)loop.queueMicrotask([&loop] { (void)loop.queueMicrotask([] {}); });
                    });
                // A microtask flood larger than the ring: the overflow list takes the rest.
                (void)loop.submit([&loop] {
                    for (int i = 0; i < 400; ++i)
                        (void)loop.queueMicrotask([] {});
                });
                std::this_thread::sleep_for(std::chrono::milliseconds(5 + 10 * p));
            }
        });
    }

    // The reporter: a 1 s timer on the loop itself (snapshots may be taken from any thread).
    int second = 0;
    std::function<void()> report;
    report = [&] {
        printSnapshot(++second, loop.snapshot());
        if (second >= seconds) {
            running = false;
            loop.stop();
            return;
        }
        (void)loop.scheduleTimer(1s, [&] { report(); });
    };
    (void)loop.scheduleTimer(1s, [&] { report(); });

    std::printf("libloop console demo: %d s of mixed load on loop \"%s\"\n", seconds,
                loop.name().c_str());
    (void)loop.run();
    for (auto& t : producers)
        t.join();
    auto rep = loop.shutdown();
    std::printf("shutdown: %llu callbacks drained, %llu pending timers released\n",
                (unsigned long long)rep.value().tasksRun,
                (unsigned long long)rep.value().timersCancelled);
    ::close(sv[0]);
    ::close(sv[1]);
    return 0;
}
