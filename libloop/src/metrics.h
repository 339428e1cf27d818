// Metrics recording: written by the loop thread only, read by any thread without locks.
//
// Every field is an atomic written with relaxed single-writer stores (load + store, never an RMW
// on the hot path) and read with relaxed loads, so a snapshot never blocks the loop and costs the
// same whatever the number of samples. A snapshot is not a consistent cut: counters read one
// after another may be a few events apart.
#pragma once

#include <libloop/metrics.h>

#include <atomic>
#include <cstdint>

namespace libloop::detail {

// Log-bucketed histogram, HdrHistogram style: values below 128 are exact; above, each power of
// two is split into 128 buckets, so a bucket's width is at most 1/128 of its values (< 1%
// relative error; percentiles report the bucket midpoint). Values past 2^47 ns land in the top
// bucket.
class Histogram {
public:
    void record(std::uint64_t v) noexcept;     // [loop thread]
    LatencySummary summarize() const noexcept; // [any thread] O(buckets), independent of count

    static constexpr unsigned kSubBits = 7;
    static constexpr unsigned kSub = 1u << kSubBits;
    static constexpr unsigned kMaxExp = 47;
    static constexpr unsigned kBuckets = kSub + (kMaxExp - kSubBits + 1) * kSub;
    static unsigned bucketOf(std::uint64_t v) noexcept;
    static std::uint64_t lowerBound(unsigned bucket) noexcept;
    static std::uint64_t width(unsigned bucket) noexcept;

private:
    std::atomic<std::uint64_t> counts_[kBuckets] = {};
    std::atomic<std::uint64_t> sum_{0};
    std::atomic<std::uint64_t> max_{0};
};

// A gauge whose max since the last read is kept. set() is the loop thread's; takeMax() any.
class Gauge {
public:
    void set(std::uint64_t v) noexcept {
        value_.store(v, std::memory_order_relaxed);
        raiseMax(v);
    }
    void raiseMax(std::uint64_t v) noexcept {
        std::uint64_t m = max_.load(std::memory_order_relaxed);
        while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
        }
    }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }
    // The max since the previous takeMax(), at least `current`; resets it to `current`.
    std::uint64_t takeMax(std::uint64_t current) noexcept {
        const std::uint64_t m = max_.exchange(current, std::memory_order_relaxed);
        return m > current ? m : current;
    }

private:
    std::atomic<std::uint64_t> value_{0};
    std::atomic<std::uint64_t> max_{0};
};

// A relaxed single-writer counter.
class Counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

// Samples of (time, callbacks run, busy, idle) taken by the loop thread every window/8, so a
// reader can compute rates over the configured window. Each sample is a small seqlock: the
// writer bumps seq to odd, writes, bumps to even; a reader retries a torn read (never waits).
class RateWindow {
public:
    explicit RateWindow(std::int64_t windowNs) noexcept;
    // [loop thread] Cheap when no sample is due.
    void maybeSample(std::int64_t nowNs, std::uint64_t callbacks, std::uint64_t busyNs,
                     std::uint64_t idleNs) noexcept {
        if (nowNs >= nextSampleNs_)
            sample(nowNs, callbacks, busyNs, idleNs);
    }
    // [any thread] Rates between the oldest sample within the window and `now`.
    void compute(std::int64_t nowNs, std::uint64_t callbacks, std::uint64_t busyNs,
                 std::uint64_t idleNs, MetricsSnapshot& out) const noexcept;

private:
    static constexpr unsigned kSamples = 16;
    struct Sample {
        std::atomic<std::uint64_t> seq{0};
        std::atomic<std::int64_t> t{0};
        std::atomic<std::uint64_t> callbacks{0}, busy{0}, idle{0};
    };
    void sample(std::int64_t nowNs, std::uint64_t callbacks, std::uint64_t busyNs,
                std::uint64_t idleNs) noexcept;

    const std::int64_t windowNs_;
    std::int64_t nextSampleNs_ = 0; // loop thread
    std::atomic<std::uint32_t> written_{0};
    Sample samples_[kSamples];
};

} // namespace libloop::detail
