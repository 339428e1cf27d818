#include "metrics.h"

#include <bit>
#include <cstdint>

namespace libloop::detail {

unsigned Histogram::bucketOf(std::uint64_t v) noexcept {
    if (v < kSub)
        return unsigned(v);
    const unsigned e = 63u - unsigned(std::countl_zero(v));
    if (e > kMaxExp)
        return kBuckets - 1;
    const unsigned shift = e - kSubBits;
    return kSub + shift * kSub + unsigned((v >> shift) - kSub);
}

std::uint64_t Histogram::lowerBound(unsigned b) noexcept {
    if (b < kSub)
        return b;
    const unsigned shift = (b - kSub) / kSub;
    return std::uint64_t((b - kSub) % kSub + kSub) << shift;
}

std::uint64_t Histogram::width(unsigned b) noexcept {
    return b < kSub ? 1 : std::uint64_t(1) << ((b - kSub) / kSub);
}

void Histogram::record(std::uint64_t v) noexcept {
    auto& c = counts_[bucketOf(v)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed))
        max_.store(v, std::memory_order_relaxed);
}

LatencySummary Histogram::summarize() const noexcept {
    LatencySummary s;
    std::uint64_t counts[kBuckets];
    for (unsigned i = 0; i < kBuckets; ++i) {
        counts[i] = counts_[i].load(std::memory_order_relaxed);
        s.count += counts[i];
    }
    s.max = max_.load(std::memory_order_relaxed);
    if (s.count == 0)
        return s;
    s.mean = double(sum_.load(std::memory_order_relaxed)) / double(s.count);
    const double q[4] = {0.50, 0.90, 0.95, 0.99};
    std::uint64_t* out[4] = {&s.p50, &s.p90, &s.p95, &s.p99};
    unsigned qi = 0;
    std::uint64_t seen = 0;
    for (unsigned b = 0; b < kBuckets && qi < 4; ++b) {
        seen += counts[b];
        // The q-quantile is the value of the ceil(q * count)-th smallest sample.
        while (qi < 4 && counts[b] && double(seen) >= q[qi] * double(s.count)) {
            const std::uint64_t mid = lowerBound(b) + width(b) / 2;
            *out[qi++] = (s.max && mid > s.max) ? s.max : mid;
        }
    }
    return s;
}

RateWindow::RateWindow(std::int64_t windowNs) noexcept
    : windowNs_(windowNs > 0 ? windowNs : 1'000'000'000) {}

void RateWindow::sample(std::int64_t nowNs, std::uint64_t callbacks, std::uint64_t busyNs,
                        std::uint64_t idleNs) noexcept {
    const std::uint32_t n = written_.load(std::memory_order_relaxed);
    Sample& s = samples_[n % kSamples];
    // Seqlock write: the odd seq is ordered before each data store by the stores' release, so a
    // reader that sees any new datum also sees seq changed.
    const std::uint64_t seq = s.seq.load(std::memory_order_relaxed);
    s.seq.store(seq + 1, std::memory_order_relaxed);
    s.t.store(nowNs, std::memory_order_release);
    s.callbacks.store(callbacks, std::memory_order_release);
    s.busy.store(busyNs, std::memory_order_release);
    s.idle.store(idleNs, std::memory_order_release);
    s.seq.store(seq + 2, std::memory_order_release);
    written_.store(n + 1, std::memory_order_release);
    // Saturating: a manual clock may stand near INT64_MAX.
    nextSampleNs_ = nowNs > INT64_MAX - windowNs_ / 8 ? INT64_MAX : nowNs + windowNs_ / 8;
}

void RateWindow::compute(std::int64_t nowNs, std::uint64_t callbacks, std::uint64_t busyNs,
                         std::uint64_t idleNs, MetricsSnapshot& out) const noexcept {
    const std::uint32_t n = written_.load(std::memory_order_acquire);
    const std::uint32_t avail = n < kSamples ? n : kSamples;
    // Walk from the newest sample back while samples stay inside the window.
    bool found = false;
    std::int64_t bt = 0;
    std::uint64_t bc = 0, bb = 0, bi = 0;
    for (std::uint32_t k = 1; k <= avail; ++k) {
        const Sample& s = samples_[(n - k) % kSamples];
        // Seqlock read: acquire loads keep the second seq load after the data loads.
        const std::uint64_t s1 = s.seq.load(std::memory_order_acquire);
        const std::int64_t t = s.t.load(std::memory_order_acquire);
        const std::uint64_t c = s.callbacks.load(std::memory_order_acquire);
        const std::uint64_t b = s.busy.load(std::memory_order_acquire);
        const std::uint64_t i = s.idle.load(std::memory_order_acquire);
        if ((s1 & 1) || s.seq.load(std::memory_order_relaxed) != s1)
            continue; // being rewritten: skip it
        if (found && nowNs - t > windowNs_)
            break;
        found = true;
        bt = t, bc = c, bb = b, bi = i;
        if (nowNs - t >= windowNs_)
            break;
    }
    if (!found || nowNs <= bt)
        return;
    out.windowNs = std::uint64_t(nowNs - bt);
    out.tasksPerSecond = double(callbacks - bc) * 1e9 / double(out.windowNs);
    const double busy = double(busyNs - bb), idle = double(idleNs - bi);
    out.utilisation = busy + idle > 0 ? busy / (busy + idle) : 0.0;
}

} // namespace libloop::detail
