// Shared pieces of the soak programs (loop-soak, loop-soak-qt): options, the exactly-once ledger,
// latency windows, RSS sampling and the report. Header-only, no Qt, no libloop.
//
// Verdicts are counts, never wall-clock: a unit ran exactly once or it did not, RSS is bytes.
// Latency drift is the one time-dependent figure; it fails a run only with --check-latency.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace soak {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// ASan's quarantine and TSan's shadow memory grow with the amount of memory ever touched, so RSS
// says nothing about leaks there: the RSS bound is reported but not enforced (LeakSanitizer is
// the leak check in those builds).
inline constexpr bool kSanitizedMemory = true;
#else
inline constexpr bool kSanitizedMemory = false;
#endif

inline std::int64_t monoNs() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return std::string(buf, n < 0 ? 0 : std::min<std::size_t>(std::size_t(n), sizeof buf - 1));
}

// "812 ns", "41.3 us", "2.07 ms", "1.50 s".
inline std::string formatNs(double ns) {
    if (ns < 1e3)
        return format("%.0f ns", ns);
    if (ns < 1e6)
        return format("%.1f us", ns / 1e3);
    if (ns < 1e9)
        return format("%.2f ms", ns / 1e6);
    return format("%.2f s", ns / 1e9);
}

inline std::string formatKiB(long kib) {
    return format("%.1f MiB", double(kib) / 1024.0);
}

// xorshift64*: deterministic per seed, cheap, one per thread (never shared).
class Rng {
public:
    explicit Rng(std::uint64_t seed) noexcept
        : s_(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {
        if (s_ == 0)
            s_ = 1;
        for (int i = 0; i < 4; ++i)
            (void)next();
    }
    std::uint64_t next() noexcept {
        s_ ^= s_ >> 12;
        s_ ^= s_ << 25;
        s_ ^= s_ >> 27;
        return s_ * 0x2545F4914F6CDD1Dull;
    }
    // Uniform in [0, n); n > 0.
    std::uint64_t below(std::uint64_t n) noexcept { return (next() >> 11) % n; }
    // True with probability perMille / 1000.
    bool chance(unsigned perMille) noexcept { return below(1000) < perMille; }

private:
    std::uint64_t s_;
};

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
    double seconds = 60;
    std::uint64_t seed = 1;
    int producers = 3;
    bool checkLatency = false;
    std::string reportFile;
    // Deliberate faults that prove the checks can fail (see README): double-run, lose,
    // cancelled-run.
    std::string inject;
    bool shutdownCancel = false; // loop-soak: ShutdownTimers::CancelPending instead of WaitForAll
    std::uint32_t maxOutstanding = 1u << 16;
    // loop-soak-qt: the drain gives up when no unit settled for this long (a hang guard only:
    // any progress restarts it, and what is still outstanding is then reported as lost).
    double drainStallSeconds = 60;
};

inline void printUsage(const char* argv0, bool core) {
    std::fprintf(stderr,
                 "usage: %s [--minutes N | --seconds N] [--seed S] [--producers P]\n"
                 "          [--check-latency] [--report FILE] [--max-outstanding N]\n"
                 "          [--inject double-run|lose|cancelled-run]%s\n",
                 argv0, core ? " [--shutdown wait|cancel]" : " [--drain-stall-seconds N]");
}

// False (after a message on stderr) on a bad command line.
inline bool parseOptions(int argc, char** argv, Options& o, bool core) {
    auto need = [&](int& i) -> const char* {
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
            return nullptr;
        }
        return argv[++i];
    };
    auto number = [&](const char* s, double& out) {
        char* end = nullptr;
        errno = 0;
        out = std::strtod(s, &end);
        return errno == 0 && end != s && *end == '\0' && std::isfinite(out) && out >= 0;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        double v = 0;
        const char* val = nullptr;
        if (a == "--minutes" || a == "--seconds") {
            if (!(val = need(i)) || !number(val, v) || v <= 0) {
                std::fprintf(stderr, "%s: %s wants a positive number\n", argv[0], a.c_str());
                return false;
            }
            o.seconds = a == "--minutes" ? v * 60 : v;
        } else if (a == "--seed") {
            if (!(val = need(i)) || !number(val, v))
                return false;
            o.seed = std::uint64_t(v);
        } else if (a == "--producers") {
            if (!(val = need(i)) || !number(val, v) || v < 1 || v > 64) {
                std::fprintf(stderr, "%s: --producers wants 1..64\n", argv[0]);
                return false;
            }
            o.producers = int(v);
        } else if (a == "--max-outstanding") {
            if (!(val = need(i)) || !number(val, v) || v < 1024 || v > (1u << 24)) {
                std::fprintf(stderr, "%s: --max-outstanding wants 1024..16777216\n", argv[0]);
                return false;
            }
            o.maxOutstanding = std::uint32_t(v);
        } else if (a == "--check-latency") {
            o.checkLatency = true;
        } else if (a == "--report") {
            if (!(val = need(i)))
                return false;
            o.reportFile = val;
        } else if (a == "--inject") {
            if (!(val = need(i)))
                return false;
            o.inject = val;
            if (o.inject != "double-run" && o.inject != "lose" && o.inject != "cancelled-run") {
                std::fprintf(stderr, "%s: unknown --inject %s\n", argv[0], val);
                return false;
            }
        } else if (!core && a == "--drain-stall-seconds") {
            if (!(val = need(i)) || !number(val, v) || v < 1) {
                std::fprintf(stderr, "%s: --drain-stall-seconds wants a number >= 1\n", argv[0]);
                return false;
            }
            o.drainStallSeconds = v;
        } else if (core && a == "--shutdown") {
            if (!(val = need(i)))
                return false;
            if (std::string(val) == "wait")
                o.shutdownCancel = false;
            else if (std::string(val) == "cancel")
                o.shutdownCancel = true;
            else {
                std::fprintf(stderr, "%s: --shutdown wants wait or cancel\n", argv[0]);
                return false;
            }
        } else {
            if (a != "--help" && a != "-h")
                std::fprintf(stderr, "%s: unknown option %s\n", argv[0], a.c_str());
            printUsage(argv[0], core);
            return false;
        }
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// The ledger: exactly-once accounting in constant memory.
//
// Every accepted unit of work holds one slot from a fixed pool while it is outstanding, and a
// uid that is never reused. The slot's word is (uid << 2) | state. A unit is issued in state
// Issued, and leaves it exactly once, by a compare-exchange from (uid, Issued) to Ran, Cancelled
// or Refused; the slot then goes back to the pool. So:
//   - a second run finds (uid, Ran), or (other uid, ...) once the slot was reused: caught;
//   - a run after a successful cancel / a refused submission finds Cancelled / Refused (or a
//     reused slot): caught; a cancel that answered true after the run finds Ran: caught;
//   - a lost unit stays (uid, Issued) forever: at the end, with every thread joined and the loop
//     closed, every slot still Issued is a unit that neither ran nor was cancelled.
// The pool bounds the units outstanding at once, which also bounds the loop's queues: memory
// stays flat whatever the producers' rate (a producer that finds the pool empty backs off).
class Ledger {
public:
    enum State : std::uint64_t { Issued = 0, Ran = 1, Cancelled = 2, Refused = 3 };

    // A thread's private stock of free slots: the shared pool's mutex is taken once per batch.
    class Cache {
    public:
        Cache() { slots_.reserve(2 * kBatch); }

    private:
        friend class Ledger;
        std::vector<std::uint32_t> slots_;
    };

    explicit Ledger(std::uint32_t capacity)
        : capacity_(capacity), words_(new std::atomic<std::uint64_t>[capacity]),
          stamps_(new std::atomic<std::int64_t>[capacity]),
          tags_(new std::atomic<std::uint8_t>[capacity]) {
        // Touched now, so the pool's pages count in RSS from the start.
        free_.reserve(capacity);
        for (std::uint32_t i = capacity; i > 0; --i) {
            words_[i - 1].store(0, std::memory_order_relaxed);
            stamps_[i - 1].store(0, std::memory_order_relaxed);
            tags_[i - 1].store(0, std::memory_order_relaxed);
            free_.push_back(i - 1);
        }
    }

    // A fresh unit with a never-reused uid, or false when every slot is outstanding.
    bool issue(Cache& c, std::uint8_t tag, std::uint32_t& slot, std::uint64_t& uid) {
        if (c.slots_.empty()) {
            std::lock_guard lock(mu_);
            const std::size_t n = std::min(kBatch, free_.size());
            c.slots_.insert(c.slots_.end(), free_.end() - std::ptrdiff_t(n), free_.end());
            free_.resize(free_.size() - n);
        }
        if (c.slots_.empty())
            return false;
        slot = c.slots_.back();
        c.slots_.pop_back();
        uid = nextUid_.fetch_add(1, std::memory_order_relaxed);
        tags_[slot].store(tag, std::memory_order_relaxed);
        stamps_[slot].store(0, std::memory_order_relaxed);
        words_[slot].store(uid << 2 | Issued, std::memory_order_release);
        issued_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    // (uid, Issued) -> (uid, to), then the slot is free again (into `c`, or straight back to
    // the shared pool when `c` is null: for rare paths with no thread cache at hand). On failure
    // nothing changes and `found` holds the word that was there (see describe()).
    bool settle(Cache* c, std::uint32_t slot, std::uint64_t uid, State to, std::uint64_t& found) {
        std::uint64_t expected = uid << 2 | Issued;
        if (!words_[slot].compare_exchange_strong(expected, uid << 2 | to,
                                                  std::memory_order_acq_rel)) {
            found = expected;
            return false;
        }
        settled_.fetch_add(1, std::memory_order_relaxed);
        if (!c) {
            std::lock_guard lock(mu_);
            free_.push_back(slot);
            return true;
        }
        c->slots_.push_back(slot);
        if (c->slots_.size() >= 2 * kBatch)
            giveBack(*c, kBatch);
        return true;
    }

    // Returns every slot of `c` to the shared pool (a thread that ends calls it).
    void flush(Cache& c) { giveBack(c, c.slots_.size()); }

    // Enqueue time (or deadline) of the unit in `slot`, for latency.
    void setStamp(std::uint32_t slot, std::int64_t ns) noexcept {
        stamps_[slot].store(ns, std::memory_order_relaxed);
    }
    std::int64_t stamp(std::uint32_t slot) const noexcept {
        return stamps_[slot].load(std::memory_order_relaxed);
    }

    // Why a settle of `uid` to `to` failed, from the word it found.
    static std::string describe(std::uint64_t uid, State to, std::uint64_t found) {
        const char* what = to == Ran         ? "ran"
                           : to == Cancelled ? "was cancelled (cancel answered true)"
                                             : "was refused";
        if ((found >> 2) != uid)
            return format("unit %llu %s after it had already run, been cancelled or been refused "
                          "(its ledger slot was reused by unit %llu)",
                          (unsigned long long)uid, what, (unsigned long long)(found >> 2));
        static const char* const states[] = {"issued", "ran", "was cancelled", "was refused"};
        return format("unit %llu %s although it already %s", (unsigned long long)uid, what,
                      states[found & 3]);
    }

    // [quiescent: every thread joined] Calls f(slot, uid, tag) for every unit still Issued.
    template <class F> void forEachOutstanding(F&& f) const {
        for (std::uint32_t s = 0; s < capacity_; ++s) {
            const std::uint64_t w = words_[s].load(std::memory_order_acquire);
            if (w != 0 && (w & 3) == Issued)
                f(s, w >> 2, tags_[s].load(std::memory_order_relaxed));
        }
    }

    std::uint64_t issued() const noexcept { return issued_.load(std::memory_order_relaxed); }
    // Units issued and not settled yet (exact once every thread that issues or settles is
    // quiescent; a lower bound on the way there).
    std::uint64_t outstanding() const noexcept {
        const std::uint64_t settled = settled_.load(std::memory_order_acquire);
        return issued_.load(std::memory_order_acquire) - settled;
    }
    std::uint32_t capacity() const noexcept { return capacity_; }

private:
    static constexpr std::size_t kBatch = 128;

    void giveBack(Cache& c, std::size_t n) {
        if (n == 0)
            return;
        std::lock_guard lock(mu_);
        free_.insert(free_.end(), c.slots_.end() - std::ptrdiff_t(n), c.slots_.end());
        c.slots_.resize(c.slots_.size() - n);
    }

    const std::uint32_t capacity_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> words_;
    std::unique_ptr<std::atomic<std::int64_t>[]> stamps_;
    std::unique_ptr<std::atomic<std::uint8_t>[]> tags_;
    std::atomic<std::uint64_t> nextUid_{1}; // uid 0 marks a slot never used
    std::atomic<std::uint64_t> issued_{0};
    std::atomic<std::uint64_t> settled_{0};
    std::mutex mu_;
    std::vector<std::uint32_t> free_;
};

// Per-kind counters of units. accepted == ran + cancelled (+ cancelled by the shutdown) is the
// count-level half of the exactly-once check; the ledger is the per-unit half.
struct KindCounters {
    std::atomic<std::uint64_t> accepted{0}, refused{0}, ran{0}, cancelled{0}, thrown{0}, noSlot{0};
};

// First few failure messages plus the total (any thread).
class Failures {
public:
    void add(std::string msg) {
        std::lock_guard lock(mu_);
        if (++count_ <= 20)
            msgs_.push_back(std::move(msg));
    }
    std::uint64_t count() const {
        std::lock_guard lock(mu_);
        return count_;
    }
    std::vector<std::string> messages() const {
        std::lock_guard lock(mu_);
        return msgs_;
    }

private:
    mutable std::mutex mu_;
    std::uint64_t count_ = 0;
    std::vector<std::string> msgs_;
};

// ---------------------------------------------------------------------------------------------
// Latency

// Log-bucketed histogram: 32 sub-buckets per power of two (< 3.2% relative error). One writer;
// read after the writer is done (or by the writer).
class Histogram {
public:
    void record(std::int64_t v) noexcept {
        const std::uint64_t u = v > 0 ? std::uint64_t(v) : 0;
        ++buckets_[index(u)];
        ++count_;
        max_ = std::max(max_, u);
    }
    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }
    // The q-quantile (0 < q <= 1), as the middle of its bucket; 0 when empty.
    double quantile(double q) const noexcept {
        if (count_ == 0)
            return 0;
        const std::uint64_t rank =
            std::max<std::uint64_t>(1, std::uint64_t(std::ceil(q * double(count_))));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= rank)
                return std::min(mid(i), double(max_));
        }
        return double(max_);
    }

private:
    static constexpr int kSubBits = 5;
    static constexpr std::size_t kSub = std::size_t(1) << kSubBits;
    static std::size_t index(std::uint64_t v) noexcept {
        if (v < kSub)
            return std::size_t(v);
        const int e = std::bit_width(v) - 1; // >= kSubBits
        return std::size_t(e - kSubBits + 1) * kSub +
               std::size_t((v >> (e - kSubBits)) & (kSub - 1));
    }
    static double mid(std::size_t i) noexcept {
        if (i < kSub)
            return double(i);
        const int e = int(i / kSub) + kSubBits - 1;
        const double lo = double((kSub + i % kSub) << (e - kSubBits));
        return lo + double(std::uint64_t(1) << (e - kSubBits)) / 2.0;
    }
    std::array<std::uint64_t, 60 * kSub> buckets_{};
    std::uint64_t count_ = 0, max_ = 0;
};

// The warm-up of a run of `runSeconds`: 10% of it, at least 2 s, at most half the run.
inline double warmupSeconds(double runSeconds) {
    return std::min(std::max(2.0, runSeconds * 0.1), runSeconds / 2);
}

// Latency per time window of the run: kWindows equal windows; from 20 s on, window 0 is exactly
// the warm-up. One writer (the thread that runs the callbacks being measured).
class LatencyWindows {
public:
    static constexpr int kWindows = 10;

    LatencyWindows(std::string name, std::int64_t startNs, std::int64_t durationNs)
        : name_(std::move(name)), start_(startNs),
          len_(std::max<std::int64_t>(1, durationNs / kWindows)), end_(startNs + durationNs),
          warmupNs_(std::int64_t(warmupSeconds(double(durationNs) / 1e9) * 1e9)) {}

    // Samples after the measured span (the shutdown drain) are not recorded.
    void record(std::int64_t nowNs, std::int64_t latencyNs) noexcept {
        if (nowNs < start_ || nowNs >= end_)
            return;
        w_[std::size_t(std::min<std::int64_t>((nowNs - start_) / len_, kWindows - 1))].record(
            latencyNs);
    }
    int windowAt(std::int64_t nowNs) const noexcept {
        return int(std::clamp<std::int64_t>((nowNs - start_) / len_, 0, kWindows));
    }
    const Histogram& window(int i) const noexcept { return w_[std::size_t(i)]; }
    const std::string& name() const noexcept { return name_; }
    std::int64_t windowLenNs() const noexcept { return len_; }
    bool inWarmup(int i) const noexcept { return std::int64_t(i) * len_ < warmupNs_; }

    struct Drift {
        // Medians over windows 1-3 ("first") and 7-9 ("last") of each window's p50 and p99.
        double firstP50 = 0, lastP50 = 0, firstP99 = 0, lastP99 = 0;
        double slopeNsPerWindow = 0; // least squares of p99 over windows 1-9
        bool enoughData = false;     // every window 1-9 has samples, and the run is >= 20 s
        bool drifted = false;
    };
    // Window 0 is warm-up and left out (a run under 20 s has a warm-up longer than one window:
    // no verdict). A percentile drifted when its late median is at least twice the early one
    // AND at least 1 ms more: a generous bound, as on a shared machine a p99 moves by 2x from
    // run to run. Drift = p50 or p99 drifted.
    Drift drift() const {
        Drift d;
        auto median3 = [&](int a, double q) {
            double v[3] = {w_[std::size_t(a)].quantile(q), w_[std::size_t(a + 1)].quantile(q),
                           w_[std::size_t(a + 2)].quantile(q)};
            std::sort(v, v + 3);
            return v[1];
        };
        bool enough = !inWarmup(1);
        for (int i = 1; i < kWindows; ++i)
            enough = enough && w_[std::size_t(i)].count() >= 20;
        d.enoughData = enough;
        d.firstP50 = median3(1, 0.5);
        d.lastP50 = median3(7, 0.5);
        d.firstP99 = median3(1, 0.99);
        d.lastP99 = median3(7, 0.99);
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        const int n = kWindows - 1;
        for (int i = 1; i < kWindows; ++i) {
            const double y = w_[std::size_t(i)].quantile(0.99);
            sx += i;
            sy += y;
            sxx += double(i) * i;
            sxy += double(i) * y;
        }
        d.slopeNsPerWindow = (n * sxy - sx * sy) / (n * sxx - sx * sx);
        auto up = [](double first, double last) { return last > 2 * first && last - first > 1e6; };
        d.drifted = enough && (up(d.firstP50, d.lastP50) || up(d.firstP99, d.lastP99));
        return d;
    }

private:
    std::string name_;
    std::int64_t start_, len_, end_, warmupNs_;
    std::array<Histogram, kWindows> w_{};
};

// ---------------------------------------------------------------------------------------------
// RSS

inline long rssKiB() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, resident = 0;
    const int n = std::fscanf(f, "%ld %ld", &size, &resident);
    std::fclose(f);
    return n == 2 ? resident * (::sysconf(_SC_PAGESIZE) / 1024) : -1;
}

// Samples taken once a second by one thread; evaluated after that thread is joined.
class RssTracker {
public:
    explicit RssTracker(double runSeconds) : warmup_(soak::warmupSeconds(runSeconds)) {}

    void sample(double atSeconds) { samples_.push_back({atSeconds, rssKiB()}); }

    struct Verdict {
        bool measured = false; // at least two samples after the warm-up
        long start = 0, end = 0, max = 0, boundKiB = 0;
        bool ok = true;
    };
    // The bound: end may exceed start (the first sample after warm-up) by max(32 MiB, 25%).
    // Allocator arenas and queue blocks reach their working size during warm-up; after that a
    // leak of even one small object per unit of work (millions of units) crosses it.
    Verdict verdict() const {
        Verdict v;
        int n = 0;
        for (const auto& s : samples_) {
            if (s.at + 1e-9 < warmup_ || s.kib < 0)
                continue;
            if (n++ == 0)
                v.start = v.max = s.kib;
            v.max = std::max(v.max, s.kib);
            v.end = s.kib;
        }
        v.measured = n >= 2;
        v.boundKiB = std::max(32L * 1024, v.start / 4);
        v.ok = !v.measured || v.end <= v.start + v.boundKiB;
        return v;
    }
    double warmupSeconds() const noexcept { return warmup_; }
    const auto& samples() const noexcept { return samples_; }

private:
    struct Sample {
        double at;
        long kib;
    };
    double warmup_;
    std::vector<Sample> samples_;
};

// Back-pressure episodes during warm-up: the consuming thread stops consuming until the ledger is
// nearly full, so every queue and pool reaches the size the rest of the run can ask of it (the
// ledger bounds the units outstanding) before RSS "start" is sampled. Two episodes, at a quarter
// and half of the warm-up, so their backlog is gone before it ends; each ends when the ledger is
// 90% full or after min(3 s, warm-up / 4), whichever comes first (a slow producer makes a smaller
// episode, never a failure).
class WarmupSaturation {
public:
    explicit WarmupSaturation(double warmupSeconds) : warmup_(warmupSeconds) {}

    // [the consuming thread, between callbacks] `t`: seconds since the start.
    void maybeStall(double t, const Ledger& ledger) {
        if (done_ >= 2 || t < (done_ + 1) * warmup_ / 4)
            return;
        const std::int64_t guard = monoNs() + std::int64_t(std::min(3.0, warmup_ / 4) * 1e9);
        while (ledger.outstanding() < ledger.capacity() / 10 * 9 && monoNs() < guard)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        peak_ = std::max(peak_, ledger.outstanding());
        ++done_;
    }
    int episodes() const noexcept { return done_; }
    std::uint64_t peakOutstanding() const noexcept { return peak_; }

private:
    double warmup_;
    int done_ = 0;
    std::uint64_t peak_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The report: collected as text, printed and optionally written to --report FILE.

class Report {
public:
    void line(std::string s) { text_ += std::move(s) + "\n"; }
    void fail(std::string s) {
        failures_.push_back(s);
        line("FAIL: " + std::move(s));
    }
    bool failed() const noexcept { return !failures_.empty(); }
    const std::vector<std::string>& failures() const noexcept { return failures_; }

    void latencyTable(const std::vector<const LatencyWindows*>& metrics) {
        std::string head = "  window   span          ";
        for (const auto* m : metrics)
            head += format("| %-34s", (m->name() + " p50 / p99 (n)").c_str());
        line(head);
        const double len = double(metrics.front()->windowLenNs()) / 1e9;
        for (int i = 0; i < LatencyWindows::kWindows; ++i) {
            std::string row =
                format("  %2d%s   %6.1f-%6.1f s  ", i, metrics.front()->inWarmup(i) ? "w" : " ",
                       len * i, len * (i + 1));
            for (const auto* m : metrics) {
                const Histogram& h = m->window(i);
                row += format("| %10s / %10s (%8llu)", formatNs(h.quantile(0.5)).c_str(),
                              formatNs(h.quantile(0.99)).c_str(), (unsigned long long)h.count());
            }
            line(row);
        }
        line("  (w = warm-up; the drift figures use windows 1-9 of runs >= 20 s)");
    }

    // Drift lines for each metric; returns true when one drifted.
    bool driftLines(const std::vector<const LatencyWindows*>& metrics, bool enforced) {
        bool any = false;
        for (const auto* m : metrics) {
            const auto d = m->drift();
            const char* verdict = !d.enoughData ? "n/a (run < 20 s, or a window without samples)"
                                  : d.drifted   ? "DRIFT"
                                                : "flat";
            line(format("  %-22s p50 %s -> %s, p99 %s -> %s (windows 1-3 -> 7-9, medians); "
                        "p99 slope %s/window: %s%s",
                        m->name().c_str(), formatNs(d.firstP50).c_str(),
                        formatNs(d.lastP50).c_str(), formatNs(d.firstP99).c_str(),
                        formatNs(d.lastP99).c_str(),
                        (d.slopeNsPerWindow < 0 ? "-" + formatNs(-d.slopeNsPerWindow)
                                                : "+" + formatNs(d.slopeNsPerWindow))
                            .c_str(),
                        verdict, enforced ? "" : " (info)"));
            any = any || d.drifted;
        }
        return any;
    }

    void rssLines(const RssTracker& rss, bool& ok) {
        const auto v = rss.verdict();
        ok = true;
        if (!v.measured) {
            line(format("  RSS: run too short for a verdict (warm-up %.1f s); samples: %zu",
                        rss.warmupSeconds(), rss.samples().size()));
            return;
        }
        line(format("  RSS start (after %.1f s warm-up) %s, end %s, max %s; bound: end <= start "
                    "+ %s: %s%s",
                    rss.warmupSeconds(), formatKiB(v.start).c_str(), formatKiB(v.end).c_str(),
                    formatKiB(v.max).c_str(), formatKiB(v.boundKiB).c_str(),
                    v.ok ? "ok" : "EXCEEDED",
                    kSanitizedMemory ? " (info: sanitizer build, not enforced)" : ""));
        ok = v.ok || kSanitizedMemory;
    }

    // Prints everything, writes `file` if set. Returns the exit code.
    int finish(const std::string& file) {
        if (failures_.empty())
            line("RESULT: PASS");
        else
            line(format("RESULT: FAIL (%zu check(s) failed; see FAIL lines above)",
                        failures_.size()));
        std::fputs(text_.c_str(), stdout);
        std::fflush(stdout);
        if (!file.empty()) {
            if (std::FILE* f = std::fopen(file.c_str(), "w")) {
                std::fputs(text_.c_str(), f);
                std::fclose(f);
            } else {
                std::fprintf(stderr, "cannot write report %s\n", file.c_str());
            }
        }
        return failures_.empty() ? 0 : 1;
    }

private:
    std::string text_;
    std::vector<std::string> failures_;
};

} // namespace soak
