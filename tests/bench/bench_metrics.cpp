// Row 8: what metrics cost. Recording: the same submit+run benchmark with LoopOptions::metrics
// off and on. Reading: snapshot() from another thread, with the loop busy and idle.
#include "harness.h"

#include <libloop/loop.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace bench {
namespace {

libloop::LoopOptions withMetrics(bool on) {
    libloop::LoopOptions opt;
    opt.metrics = on;
    return opt;
}

// Sets the "on" row's note: the difference in ns/op against the "off" row.
void noteDifference(Row& off, Row& on, bool noisy) {
    char buf[128];
    const double d = on.nsPerOp() - off.nsPerOp();
    std::snprintf(buf, sizeof buf, "on-off: %+.2f ns/op (%+.1f%% time)%s", d,
                  off.nsPerOp() > 0 ? 100.0 * d / off.nsPerOp() : 0.0,
                  noisy ? " - cross-thread rows vary more than this between runs" : "");
    on.note = buf;
    off.note = "reference";
}

void recordingRows(const Options& o, const Counts& c, Report& rep, const char* bench,
                   bool crossThread) {
    Row rows[2];
    bool have[2] = {false, false};
    for (int on = 0; on < 2; ++on) {
        const std::string impl = on ? "libloop metrics=on" : "libloop metrics=off";
        if (!rep.wants(bench, impl))
            continue;
        RowGuard g(std::string(bench) + " / " + impl);
        libloop::Loop loop(withMetrics(on != 0));
        std::vector<Sample> reps;
        if (crossThread) {
            const auto n = c.submitCross;
            reps = repeat(
                o, [&] { libloopCrossThread(loop, 1, n, true); },
                [&] { return libloopCrossThread(loop, 1, n, false); });
        } else {
            const auto n = c.submitLoop;
            reps = repeat(
                o, [&] { libloopLoopThread(loop, n); }, [&] { return libloopLoopThread(loop, n); });
        }
        rows[on] = makeRow(bench, impl, "libloop", Role::Subject, true, std::move(reps));
        have[on] = true;
    }
    if (have[0] && have[1])
        noteDifference(rows[0], rows[1], crossThread);
    for (int on = 0; on < 2; ++on)
        if (have[on])
            rep.add(std::move(rows[on]));
}

// Keeps a loop busy with batches of tiny tasks until told to stop.
struct BusyDriver {
    libloop::Loop& loop;
    std::atomic<bool>& quit;
    std::uint64_t counter = 0;
    void step() {
        for (int i = 0; i < 256; ++i)
            must(loop.submitInternal([c = &counter] { ++*c; }), "submitInternal");
        if (!quit.load(std::memory_order_relaxed))
            must(loop.submitInternal([this] { step(); }), "submitInternal");
        else
            loop.stop();
    }
};

std::vector<Sample> snapshotCost(const Options& o, const Counts& c, bool busy) {
    libloop::Loop loop;
    std::atomic<bool> quit{false};
    std::atomic<bool> attached{false};
    std::atomic<bool> finished{false};
    BusyDriver driver{loop, quit};
    std::thread t([&] {
        must(loop.attachToCurrentThread(), "attachToCurrentThread");
        attached.store(true);
        must(loop.run(), "run");
        finished.store(true);
    });
    while (!attached.load())
        std::this_thread::yield();
    if (busy) {
        must(loop.submit([&driver] { driver.step(); }), "submit");
        while (loop.snapshot().tasksRun < 10'000)
            std::this_thread::yield();
    } else {
        while (loop.state() != libloop::LoopState::Sleeping)
            std::this_thread::yield();
    }
    std::uint64_t sink = 0;
    const auto m = c.snapshots;
    auto reps = repeat(
        o,
        [&] {
            for (std::uint64_t i = 0; i < m / 4 + 100; ++i)
                sink += loop.snapshot().tasksRun;
        },
        [&] {
            Window w;
            w.start();
            for (std::uint64_t i = 0; i < m; ++i)
                sink += loop.snapshot().tasksRun;
            return w.stop(m);
        });
    if (busy) {
        quit.store(true);
    } else {
        // stop() on a sleeping loop: it must return promptly (the header says so for runOnce).
        loop.stop();
        const auto until = Clock::now() + std::chrono::seconds(2);
        while (!finished.load() && Clock::now() < until)
            std::this_thread::yield();
        if (!finished.load()) {
            std::fprintf(stderr, "  warning: stop() from another thread did not end a sleeping "
                                 "run() within 2 s; calling wakeUp()\n");
            loop.wakeUp();
        }
    }
    t.join();
    if (sink == 1)
        std::fprintf(stderr, " "); // keep `sink` observable
    return reps;
}

void snapshotRows(const Options& o, const Counts& c, Report& rep, const char* bench, bool busy) {
    if (!rep.wants(bench, names::kLibloop))
        return;
    RowGuard g(std::string(bench) + " / libloop");
    Row r =
        makeRow(bench, names::kLibloop, "libloop", Role::Subject, false, snapshotCost(o, c, busy));
    r.note = busy ? "snapshot() from another thread; loop running tiny tasks"
                  : "snapshot() from another thread; loop sleeping in run()";
    rep.add(std::move(r));
}

} // namespace

void benchMetrics(const Options& o, const Counts& c, Report& rep) {
    recordingRows(o, c, rep, names::kMetricsLoop, false);
    recordingRows(o, c, rep, names::kMetricsCross, true);
    snapshotRows(o, c, rep, names::kSnapshotBusy, true);
    snapshotRows(o, c, rep, names::kSnapshotIdle, false);
}

} // namespace bench
