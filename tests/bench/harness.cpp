#include "harness.h"

#include "alloc_counter.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sched.h>
#include <thread>

namespace bench {

Counts countsFor(const Options& o) {
    if (o.quick) {
        return Counts{
            .submitCross = 20'000,
            .submitLoop = 50'000,
            .microtasks = 100'000,
            .timerFire = 10'000,
            .cancelSmall = 20'000,
            .cancelLarge = 20'000,
            .activeLarge = 100'000,
            .pingWarm = 400, // > 2 ingress blocks (127 slots): the block pool fills up
            .pingN = 500,
            .snapshots = 2'000,
        };
    }
    return Counts{
        .submitCross = 1'000'000,
        .submitLoop = 2'000'000,
        .microtasks = 4'000'000,
        .timerFire = 200'000,
        .cancelSmall = 1'000'000,
        .cancelLarge = 500'000,
        .activeLarge = 1'000'000,
        .pingWarm = 1'000,
        .pingN = 10'000,
        .snapshots = 20'000,
    };
}

std::string activeLabel(std::uint64_t n) {
    char buf[32];
    if (n >= 1'000'000 && n % 1'000'000 == 0)
        std::snprintf(buf, sizeof buf, "%lluM active",
                      static_cast<unsigned long long>(n / 1'000'000));
    else if (n >= 1'000 && n % 1'000 == 0)
        std::snprintf(buf, sizeof buf, "%lluk active", static_cast<unsigned long long>(n / 1'000));
    else
        std::snprintf(buf, sizeof buf, "%llu active", static_cast<unsigned long long>(n));
    return buf;
}

// ---- Window ----

void Window::start() noexcept {
    allocs0_ = allocationCount();
    t0_ = Clock::now();
}

Sample Window::stop(std::uint64_t ops) noexcept {
    const auto t1 = Clock::now();
    const auto a1 = allocationCount();
    Sample s;
    s.seconds = std::chrono::duration<double>(t1 - t0_).count();
    s.ops = ops;
    s.allocs = a1 - allocs0_;
    return s;
}

// ---- Row ----

const Sample& Row::median() const {
    static const Sample empty{};
    if (reps.empty())
        return empty;
    std::vector<const Sample*> v;
    for (const auto& s : reps)
        v.push_back(&s);
    std::sort(v.begin(), v.end(), [](const Sample* a, const Sample* b) {
        return a->ops / a->seconds < b->ops / b->seconds;
    });
    return *v[v.size() / 2];
}
double Row::opsPerSec() const {
    const auto& m = median();
    return m.seconds > 0 ? static_cast<double>(m.ops) / m.seconds : 0;
}
double Row::nsPerOp() const {
    const auto& m = median();
    return m.ops ? m.seconds * 1e9 / static_cast<double>(m.ops) : 0;
}
double Row::allocsPerOpMax() const {
    double worst = 0;
    for (const auto& s : reps)
        if (s.ops)
            worst = std::max(worst, static_cast<double>(s.allocs) / static_cast<double>(s.ops));
    return worst;
}
std::uint64_t Row::allocsTotal() const {
    std::uint64_t t = 0;
    for (const auto& s : reps)
        t += s.allocs;
    return t;
}
double Row::syscallsPerOp() const {
    const auto& m = median();
    if (m.syscalls < 0 || !m.ops)
        return -1;
    return m.syscalls / static_cast<double>(m.ops);
}

// ---- Report ----

bool Report::wants(const std::string& bench, const std::string& impl) const {
    if (opts_.filter.empty())
        return true;
    return (bench + " / " + impl).find(opts_.filter) != std::string::npos;
}

void Report::add(Row row) {
    std::fprintf(stderr, "  done: %-38s %-24s %10.3f Mops/s\n", row.bench.c_str(), row.impl.c_str(),
                 row.opsPerSec() / 1e6);
    rows_.push_back(std::move(row));
}

const Row* Report::find(const std::string& bench, const std::string& impl) const {
    for (const auto& r : rows_)
        if (r.bench == bench && r.impl == impl)
            return &r;
    return nullptr;
}

namespace {

std::string fmtRate(double v) {
    char buf[32];
    if (v >= 1e6)
        std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
    else if (v >= 1e3)
        std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.0f  ", v);
    return buf;
}

std::string fmtNs(double v) {
    char buf[32];
    if (v >= 100)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

std::string fmtCount(double v) {
    char buf[32];
    if (v < 0)
        return "-";
    if (v == 0)
        return "0";
    if (v >= 0.01)
        std::snprintf(buf, sizeof buf, "%.3f", v);
    else
        std::snprintf(buf, sizeof buf, "%.2e", v);
    return buf;
}

std::string fmtRatio(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, v >= 10 ? "%.1fx" : "%.2fx", v);
    return buf;
}

} // namespace

std::string Report::ratioText(const Row& r) const {
    if (!r.note.empty())
        return r.note;
    if (r.role != Role::Subject)
        return "-";
    std::string out;
    for (const auto& o : rows_) {
        if (o.bench != r.bench || o.role == Role::Subject || o.opsPerSec() <= 0)
            continue;
        if (!out.empty())
            out += ", ";
        out += fmtRatio(r.opsPerSec() / o.opsPerSec()) + " " + o.shortName;
    }
    return out.empty() ? "-" : out;
}

int Report::print() const {
    struct Line {
        std::string c[7];
    };
    std::vector<Line> lines;
    lines.push_back(
        {{"benchmark", "impl", "ops/s", "ns/op", "allocs/op", "syscalls/op", "ratio vs baseline"}});
    std::vector<std::size_t> groupStarts;
    std::string lastBench;
    int offenders = 0;
    for (const auto& r : rows_) {
        if (r.bench != lastBench) {
            groupStarts.push_back(lines.size());
            lastBench = r.bench;
        }
        std::string impl = r.impl;
        const bool allocated = r.allocsTotal() != 0;
        if (r.mustBeAllocFree && allocated) {
            impl += " (!)";
            ++offenders;
        }
        lines.push_back(
            {{r.bench, impl, fmtRate(r.opsPerSec()), fmtNs(r.nsPerOp()),
              fmtCount(r.allocsPerOpMax()), fmtCount(r.syscallsPerOp()), ratioText(r)}});
    }
    std::size_t w[7] = {};
    for (const auto& l : lines)
        for (int i = 0; i < 7; ++i)
            w[i] = std::max(w[i], l.c[i].size());
    auto printLine = [&](const Line& l, bool repeatBench) {
        // Left-aligned text columns, right-aligned numbers.
        std::printf("%-*s | %-*s | %*s | %*s | %*s | %*s | %s\n", static_cast<int>(w[0]),
                    repeatBench ? l.c[0].c_str() : "", static_cast<int>(w[1]), l.c[1].c_str(),
                    static_cast<int>(w[2]), l.c[2].c_str(), static_cast<int>(w[3]), l.c[3].c_str(),
                    static_cast<int>(w[4]), l.c[4].c_str(), static_cast<int>(w[5]), l.c[5].c_str(),
                    l.c[6].c_str());
    };
    if (lines.size() == 1) {
        std::printf("(no rows matched the filter)\n");
        return 0;
    }
    std::size_t total = 0;
    for (int i = 0; i < 7; ++i)
        total += w[i] + 3;
    const std::string rule(total, '-');
    printLine(lines[0], true);
    std::printf("%s\n", rule.c_str());
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const bool first =
            std::find(groupStarts.begin(), groupStarts.end(), i) != groupStarts.end();
        if (first && i != 1)
            std::printf("%s\n", rule.c_str());
        printLine(lines[i], first);
    }
    std::printf("%s\n", rule.c_str());
    std::printf("ops/s: median of %d repetitions after a warm-up. allocs/op: the largest over the "
                "repetitions\n(operator new of every kind%s, all threads, measured window only). "
                "syscalls/op: libloop's\nMetricsSnapshot::wakeSyscalls per op ('-': not "
                "measurable). (!) = a libloop row that must not allocate did.\n",
                opts_.reps, countsMalloc() ? " + the malloc family" : "");

    // ---- targets (shown, never asserted on time) ----
    std::printf("\nTargets (informative; only the allocation count can fail a run):\n");
    auto ratioOf = [&](const std::string& bench, const std::string& subj,
                       const std::string& base) -> double {
        const Row* a = find(bench, subj);
        const Row* b = find(bench, base);
        if (!a || !b || b->opsPerSec() <= 0)
            return -1;
        return a->opsPerSec() / b->opsPerSec();
    };
    auto verdict = [](bool ok) { return ok ? "met" : "NOT met"; };
    auto showRatio = [&](const char* what, const std::string& bench, const std::string& subj,
                         const std::string& base, double target) {
        const double v = ratioOf(bench, subj, base);
        if (v < 0)
            std::printf("  %-58s (not run)\n", what);
        else
            std::printf("  %-58s %8.2fx  (target >= %.0fx: %s)\n", what, v, target,
                        verdict(v >= target));
    };
    auto showRate = [&](const char* what, const std::string& bench, const std::string& impl,
                        double target) {
        const Row* a = find(bench, impl);
        if (!a)
            std::printf("  %-58s (not run)\n", what);
        else
            std::printf("  %-58s %8.2f M/s  (target >= %.0f M/s: %s)\n", what, a->opsPerSec() / 1e6,
                        target / 1e6, verdict(a->opsPerSec() >= target));
    };
    showRatio("submit 1 producer, libloop vs naive A", names::kSubmit1, names::kLibloop, "naive A",
              3);
    showRatio("submit 2 producers, libloop vs naive A", names::kSubmit2, names::kLibloop, "naive A",
              3);
    const std::string onceLarge = std::string(names::kTimerCancelPrefix) + largeActive_;
    const std::string tickLarge = std::string(names::kTimerCancelHeapPrefix) + largeActive_;
    showRatio(("sched+cancel at once, " + largeActive_ + ", libloop vs naive B").c_str(), onceLarge,
              names::kLibloop, "naive B", 5);
    showRatio(("sched, cancel next tick, " + largeActive_ + ", libloop vs naive B").c_str(),
              tickLarge, names::kLibloop, "naive B", 5);
    showRatio(("sched+cancel at once, " + largeActive_ + ", vs naive B pre-sized").c_str(),
              onceLarge, names::kLibloop, "naive B pre-sized", 5);
    showRatio(("sched, cancel next tick, " + largeActive_ + ", vs naive B pre-sized").c_str(),
              tickLarge, names::kLibloop, "naive B pre-sized", 5);
    showRate("submit on one core (loop thread, submit)", names::kSubmitLoop, "libloop submit",
             20e6);
    showRate("submit on one core (loop thread, submitInternal)", names::kSubmitLoop,
             "libloop submitInternal", 20e6);
    showRate("submit from 1 producer thread (2 cores)", names::kSubmit1, names::kLibloop, 20e6);
    showRate("microtasks", names::kMicrotasks, names::kLibloop, 50e6);
    showRate("timer schedule+fire (1 op = 1 timer)", names::kTimerFire, names::kLibloop, 5e6);
    for (const char* prefix : {names::kTimerCancelPrefix, names::kTimerCancelHeapPrefix}) {
        for (const std::string& label : {std::string("1k active"), largeActive_}) {
            const std::string bench = std::string(prefix) + label;
            showRate((bench + " (1 op = 1 pair)").c_str(), bench, names::kLibloop, 5e6);
        }
    }
    int libloopRows = 0;
    for (const auto& r : rows_)
        if (r.mustBeAllocFree)
            ++libloopRows;
    std::printf("  %-58s %d of %d rows allocate  (target 0: %s)\n",
                "0 allocs/op in steady state (libloop rows)", offenders, libloopRows,
                verdict(offenders == 0));
    for (const auto& r : rows_)
        if (r.mustBeAllocFree && r.allocsTotal() != 0)
            std::printf("    ALLOCATES: %s / %s: %llu allocations over %d reps (max %.3g/op)\n",
                        r.bench.c_str(), r.impl.c_str(),
                        static_cast<unsigned long long>(r.allocsTotal()),
                        static_cast<int>(r.reps.size()), r.allocsPerOpMax());
    return offenders;
}

// ---- misc ----

void fail(const std::string& what) {
    std::fflush(stdout);
    std::fprintf(stderr, "bench_core: FAILED: %s\n", what.c_str());
    std::_Exit(2);
}

int firstAllowedCpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &set))
            return i;
    return 0;
}

bool pinCallingThreadToFirstCpu() {
    static const int cpu = firstAllowedCpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0; // 0 = the calling thread
}

// ---- watchdog ----

namespace {
struct Watchdog {
    std::mutex m;
    std::condition_variable cv;
    bool quit = false;
    bool armed = false;
    std::string row;
    Clock::time_point deadline{};
    std::thread thread;
};
Watchdog& wd() {
    static Watchdog w;
    return w;
}
} // namespace

void watchdogStart() {
    wd().thread = std::thread([] {
        auto& w = wd();
        std::unique_lock l(w.m);
        while (!w.quit) {
            if (w.armed) {
                if (w.cv.wait_until(l, w.deadline) == std::cv_status::timeout && w.armed &&
                    Clock::now() >= w.deadline) {
                    std::fflush(stdout);
                    std::fprintf(stderr, "bench_core: HUNG: '%s' did not finish in time\n",
                                 w.row.c_str());
                    std::_Exit(3);
                }
            } else {
                w.cv.wait(l);
            }
        }
    });
}

void watchdogArm(const std::string& rowName, std::chrono::seconds limit) {
    auto& w = wd();
    {
        std::lock_guard l(w.m);
        w.armed = true;
        w.row = rowName;
        w.deadline = Clock::now() + limit;
    }
    w.cv.notify_one();
}

void watchdogDisarm() {
    auto& w = wd();
    {
        std::lock_guard l(w.m);
        w.armed = false;
    }
    w.cv.notify_one();
}

void watchdogStop() {
    auto& w = wd();
    {
        std::lock_guard l(w.m);
        w.quit = true;
    }
    w.cv.notify_one();
    if (w.thread.joinable())
        w.thread.join();
}

} // namespace bench
