// A libloop Loop on its own thread doing a known, varied workload for the inspector tests:
// timers piling up and firing, microtask bursts larger than the ring (overflow), tasks from
// another thread, and the fast-path mode cycling auto -> disabled -> forced.
#pragma once

#include <libloop/loop.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>

namespace inspectortest {

class Workload {
public:
    explicit Workload(std::string name = "workload") {
        libloop::LoopOptions o;
        o.name = std::move(name);
        o.microtaskRingCapacity = 64;
        o.latencySampleEvery = 1;
        o.rateWindow = std::chrono::milliseconds(500);
        std::promise<void> started;
        auto ready = started.get_future();
        thread_ = std::thread([this, o, &started] {
            loop_ = std::make_unique<libloop::Loop>(o);
            started.set_value();
            tick();
            (void)loop_->run();
            (void)loop_->close();
        });
        ready.wait();
        producer_ = std::thread([this] {
            while (!stop_.load()) {
                for (int i = 0; i < 50; ++i)
                    (void)loop_->submit([] {});
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        });
    }
    ~Workload() {
        stop_.store(true);
        producer_.join();
        loop_->stop();
        thread_.join();
    }
    Workload(const Workload&) = delete;
    Workload& operator=(const Workload&) = delete;

    libloop::Loop& loop() { return *loop_; }

private:
    // Every 5 ms on the loop thread.
    void tick() {
        ++ticks_;
        // Timers: a changing number pending (deadlines 10..400 ms out).
        const int add = 20 + int(ticks_ % 40);
        for (int i = 0; i < add; ++i)
            (void)loop_->scheduleTimer(std::chrono::milliseconds(10 + (i * 37 + ticks_) % 390),
                                       [] {});
        // Microtasks: a burst past the ring's 64 slots every few ticks.
        const int burst = (ticks_ % 4 == 0) ? 150 : 20;
        for (int i = 0; i < burst; ++i)
            (void)loop_->queueMicrotask([] {});
        // Fast path: auto -> disabled -> forced every ~1 s.
        if (ticks_ % 200 == 0) {
            static constexpr libloop::FastPathMode modes[] = {libloop::FastPathMode::Auto,
                                                              libloop::FastPathMode::Disabled,
                                                              libloop::FastPathMode::Forced};
            (void)loop_->setFastPathMode(modes[(ticks_ / 200) % 3]);
        }
        // Some work that takes time (utilisation, latency).
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
        while (std::chrono::steady_clock::now() < until) {
        }
        (void)loop_->scheduleTimer(std::chrono::milliseconds(5), [this] { tick(); });
    }

    std::unique_ptr<libloop::Loop> loop_;
    std::thread thread_;
    std::thread producer_;
    std::atomic<bool> stop_{false};
    std::uint64_t ticks_ = 0;
};

} // namespace inspectortest
