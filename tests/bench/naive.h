// The naive baselines: what one writes first, without thinking about allocation or contention.
//
//  - NaiveTaskQueue (baseline A): std::mutex + std::deque<std::function<void()>> +
//    std::condition_variable; one consumer thread pops one task per lock and runs it.
//  - NaiveMicrotasks: a std::deque<std::function<void()>> drained until empty.
//  - NaiveTimers (baseline B): std::priority_queue of (deadline, seq, id, std::function), cancel
//    is lazy (the id goes into a std::unordered_set and is skipped when it surfaces).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <queue>
#include <unordered_set>
#include <utility>
#include <vector>

namespace bench {

class NaiveTaskQueue {
public:
    // Any thread.
    void post(std::function<void()> f) {
        {
            std::lock_guard l(m_);
            q_.push_back(std::move(f));
        }
        cv_.notify_one();
    }
    // Consumer thread: runs tasks until one of them calls stop().
    void run() {
        while (!stop_) {
            std::function<void()> f;
            {
                std::unique_lock l(m_);
                cv_.wait(l, [this] { return !q_.empty(); });
                f = std::move(q_.front());
                q_.pop_front();
            }
            f();
        }
        stop_ = false;
    }
    // Consumer thread (from a task).
    void stop() { stop_ = true; }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> q_;
    bool stop_ = false;
};

class NaiveMicrotasks {
public:
    void queue(std::function<void()> f) { q_.push_back(std::move(f)); }
    // A checkpoint: runs until empty.
    void checkpoint() {
        while (!q_.empty()) {
            auto f = std::move(q_.front());
            q_.pop_front();
            f();
        }
    }

private:
    std::deque<std::function<void()>> q_;
};

class NaiveTimers {
public:
    using Clock = std::chrono::steady_clock;

    std::uint64_t schedule(std::chrono::nanoseconds delay, std::function<void()> f) {
        const std::uint64_t id = ++nextId_;
        heap_.push(Entry{Clock::now() + delay, ++nextSeq_, id, std::move(f)});
        return id;
    }
    void cancel(std::uint64_t id) { cancelled_.insert(id); }
    // Runs every timer due now; returns how many ran.
    std::size_t runDue() {
        const auto now = Clock::now();
        std::size_t ran = 0;
        while (!heap_.empty() && heap_.top().deadline <= now) {
            // Moving out of top() before pop() is safe: the comparator only reads the
            // trivially-copyable fields.
            Entry e = std::move(const_cast<Entry&>(heap_.top()));
            heap_.pop();
            if (auto it = cancelled_.find(e.id); it != cancelled_.end()) {
                cancelled_.erase(it);
                continue;
            }
            e.fn();
            ++ran;
        }
        return ran;
    }
    std::size_t size() const { return heap_.size(); }
    // Gives the containers room for n timers and n cancelled ids, with the heap's memory
    // touched, so that a measurement does not include their regrowth (the naive queue's best
    // case; it grows without bound under lazy cancel otherwise).
    void reserve(std::size_t n) {
        heap_.reserveTouched(n);
        cancelled_.reserve(n);
    }

private:
    struct Entry {
        Clock::time_point deadline;
        std::uint64_t seq;
        std::uint64_t id;
        std::function<void()> fn;
    };
    struct Later {
        bool operator()(const Entry& a, const Entry& b) const {
            return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
        }
    };
    struct Heap : std::priority_queue<Entry, std::vector<Entry>, Later> {
        void reserveTouched(std::size_t n) {
            if (c.capacity() >= n)
                return;
            std::vector<Entry> fresh;
            fresh.reserve(n);
            fresh.resize(n); // touch every page once
            fresh.resize(c.size());
            std::move(c.begin(), c.end(), fresh.begin());
            c.swap(fresh);
        }
    };
    Heap heap_;
    std::unordered_set<std::uint64_t> cancelled_;
    std::uint64_t nextId_ = 0;
    std::uint64_t nextSeq_ = 0;
};

} // namespace bench
