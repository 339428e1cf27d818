// The benchmark harness: options, measured windows, rows, the report table, a watchdog.
//
// Rule of the project: nothing here passes or fails on wall-clock time. Timings are printed;
// only counts (allocations in steady state) may fail a run.
#pragma once

#include <libloop/loop.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

struct Options {
    bool quick = false; // tiny counts: a smoke run
    std::string filter; // run only rows whose "benchmark / impl" contains this
    int reps = 3;       // measured repetitions per row; the median is printed
};

// Operation counts per row, chosen by mode (see counts()).
struct Counts {
    std::uint64_t submitCross;     // rows 1, 2, metrics cross-thread
    std::uint64_t submitLoop;      // row 3, metrics loop-thread
    std::uint64_t microtasks;      // row 4 (total microtasks)
    std::uint64_t timerFire;       // row 5
    std::uint64_t cancelSmall;     // row 6, pairs per rep at 1k active
    std::uint64_t cancelLarge;     // row 6, pairs per rep at the large size
    std::uint64_t activeLarge;     // row 6, the large number of active timers
    std::uint64_t pingWarm, pingN; // row 7
    std::uint64_t snapshots;       // row 8
};
Counts countsFor(const Options& o);

// One measured repetition.
struct Sample {
    double seconds = 0;
    std::uint64_t ops = 0;
    std::uint64_t allocs = 0; // allocation calls in the window, all threads
    double syscalls = -1;     // wake syscalls in the window (libloop's wakeSyscalls); -1 = n/a
};

// A measured window: reads the allocation counter and the clock at start and stop. Callers take
// their own snapshot()s outside the window (before start(), after stop()).
class Window {
public:
    void start() noexcept;
    Sample stop(std::uint64_t ops) noexcept;

private:
    std::uint64_t allocs0_ = 0;
    Clock::time_point t0_{};
};

enum class Role { Subject, Naive, Peer };

struct Row {
    std::string bench;     // benchmark (the group that ratios are computed in)
    std::string impl;      // implementation label
    std::string shortName; // for the ratio column: "naive", "asio", "libuv"
    Role role = Role::Subject;
    bool mustBeAllocFree = false; // a libloop row whose steady state must not allocate
    std::vector<Sample> reps;
    std::string note; // printed in the ratio column when set

    // Median repetition by ops/s.
    const Sample& median() const;
    double opsPerSec() const;
    double nsPerOp() const;
    double allocsPerOpMax() const; // the largest over the repetitions (a count: be strict)
    std::uint64_t allocsTotal() const;
    double syscallsPerOp() const; // of the median repetition; <0 when n/a
};

class Report {
public:
    explicit Report(const Options& o) : opts_(o) {}
    bool wants(const std::string& bench, const std::string& impl) const;
    void add(Row row);
    const Row* find(const std::string& bench, const std::string& impl) const;
    // Prints the table and the targets footer; returns the number of must-be-allocation-free
    // rows that allocated.
    int print() const;
    // The label of the large timer row ("1M active"; smaller in quick mode), for the footer.
    void setLargeActiveLabel(std::string label) { largeActive_ = std::move(label); }

private:
    std::string ratioText(const Row& r) const;
    const Options& opts_;
    std::vector<Row> rows_;
    std::string largeActive_ = "1M active";
};

// Aborts the whole run (exit 2) with a message: a refused libloop call is a broken benchmark.
[[noreturn]] void fail(const std::string& what);
inline void must(libloop::Status s, const char* what) {
    if (!s.ok())
        fail(std::string(what) + ": " + s.message());
}
template <class T> T must(const libloop::Result<T>& r, const char* what) {
    if (!r.ok())
        fail(std::string(what) + ": " + r.status().message());
    return r.value();
}

// Pins the calling thread to the first CPU this process may use; false if that failed.
bool pinCallingThreadToFirstCpu();
int firstAllowedCpu();

// Watchdog: a row that hangs (a lost wake-up, say) ends the run with exit 3 and its name instead
// of hanging forever.
void watchdogStart();
void watchdogArm(const std::string& rowName, std::chrono::seconds limit);
void watchdogDisarm();
void watchdogStop();
// Arms the watchdog for one row's lifetime.
struct RowGuard {
    explicit RowGuard(const std::string& name,
                      std::chrono::seconds limit = std::chrono::seconds(180)) {
        watchdogArm(name, limit);
    }
    ~RowGuard() { watchdogDisarm(); }
    RowGuard(const RowGuard&) = delete;
    RowGuard& operator=(const RowGuard&) = delete;
};

// Deterministic pseudo-random numbers (xorshift64*), the same sequence for every implementation.
struct Rng {
    std::uint64_t s = 0x9E3779B97F4A7C15ull;
    std::uint64_t next() noexcept {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
    // In [lo, hi).
    std::uint64_t range(std::uint64_t lo, std::uint64_t hi) noexcept {
        return lo + next() % (hi - lo);
    }
};

// Runs `rep` (returning one Sample) options.reps times after one unmeasured warm-up call of
// `warm`.
template <class Warm, class Rep>
std::vector<Sample> repeat(const Options& o, Warm&& warm, Rep&& rep) {
    warm();
    std::vector<Sample> out;
    out.reserve(static_cast<std::size_t>(o.reps));
    for (int i = 0; i < o.reps; ++i)
        out.push_back(rep());
    return out;
}

// Benchmark (group) names, shared by the groups and the report's footer.
namespace names {
inline constexpr const char* kSubmit1 = "submit, 1 producer thread";
inline constexpr const char* kSubmit2 = "submit, 2 producer threads";
inline constexpr const char* kSubmitLoop = "submit on the loop thread";
inline constexpr const char* kMicrotasks = "microtasks, 1000 per checkpoint";
inline constexpr const char* kTimerFire = "timer delay 0: schedule+fire";
// + activeLabel(n): "1k active"
inline constexpr const char* kTimerCancelPrefix = "timer sched+cancel at once, ";
inline constexpr const char* kTimerCancelHeapPrefix = "timer sched, cancel next tick, ";
inline constexpr const char* kPingPong = "wake-up ping-pong, 2 CPUs";
inline constexpr const char* kPingPongPinned = "wake-up ping-pong, pinned 1 CPU";
inline constexpr const char* kMetricsLoop = "metrics cost: submit on loop thread";
inline constexpr const char* kMetricsCross = "metrics cost: submit, 1 producer";
inline constexpr const char* kSnapshotBusy = "snapshot(), loop busy";
inline constexpr const char* kSnapshotIdle = "snapshot(), loop idle";
inline constexpr const char* kLibloop = "libloop";
} // namespace names
std::string activeLabel(std::uint64_t n); // "1k active", "1M active"

inline Row makeRow(std::string bench, std::string impl, std::string shortName, Role role,
                   bool mustBeAllocFree, std::vector<Sample> reps) {
    Row r;
    r.bench = std::move(bench);
    r.impl = std::move(impl);
    r.shortName = std::move(shortName);
    r.role = role;
    r.mustBeAllocFree = mustBeAllocFree;
    r.reps = std::move(reps);
    return r;
}

// Shared between groups (bench_tasks.cpp): one repetition of the submit benchmarks on a given
// loop. warm = true: the unmeasured warm-up (queue everything first, then run).
Sample libloopCrossThread(libloop::Loop& loop, int producers, std::uint64_t n, bool warm);
Sample libloopLoopThread(libloop::Loop& loop, std::uint64_t n);

// The benchmark groups (one file each).
void benchTasks(const Options& o, const Counts& c, Report& r);   // rows 1-4
void benchTimers(const Options& o, const Counts& c, Report& r);  // rows 5-6
void benchWakeup(const Options& o, const Counts& c, Report& r);  // row 7
void benchMetrics(const Options& o, const Counts& c, Report& r); // row 8

} // namespace bench
