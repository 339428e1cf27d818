#include "microtask_ring.h"

#include "faults.h"

#include <bit>
#include <new>
#include <thread>

namespace libloop::detail {

MicrotaskRing::MicrotaskRing(std::uint32_t capacity)
    : mask_(std::bit_ceil(std::uint64_t(capacity < 2 ? 2 : capacity)) - 1),
      cells_(new Cell[mask_ + 1]) {
    for (std::uint64_t i = 0; i <= mask_; ++i)
        cells_[i].seq.store(i, std::memory_order_relaxed);
}

MicrotaskRing::~MicrotaskRing() {
    close();
    releaseAll();
}

MicrotaskRing::PushResult MicrotaskRing::push(Task& task, bool force,
                                              bool fromLoopThread) noexcept {
    // While the overflow list is non-empty, newer items must queue behind it.
    if (overflowCount_.load(std::memory_order_acquire) != 0)
        return pushOverflow(task, force);
    std::uint64_t pos = enqueue_.load(std::memory_order_relaxed);
    for (;;) {
        if ((pos & kClosedBit) && !force)
            return PushResult::Closed;
        const std::uint64_t p = pos & ~kClosedBit;
        Cell& c = cells_[p & mask_];
        const std::uint64_t seq = c.seq.load(std::memory_order_acquire);
        const std::int64_t diff = std::int64_t(seq) - std::int64_t(p);
        if (diff == 0) {
            if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed,
                                               std::memory_order_relaxed)) {
                ::new (static_cast<void*>(c.task)) Task(std::move(task));
                c.seq.store(p + 1,
                            fromLoopThread ? std::memory_order_release : std::memory_order_seq_cst);
                return PushResult::Ok;
            }
        } else if (diff < 0) {
            return pushOverflow(task, force); // full
        } else {
            pos = enqueue_.load(std::memory_order_relaxed);
        }
    }
}

MicrotaskRing::PushResult MicrotaskRing::pushOverflow(Task& task, bool force) noexcept {
    std::lock_guard lock(overflowMutex_);
    if (overflowClosed_ && !force)
        return PushResult::Closed;
    // push_back leaves `task` untouched when it cannot allocate (strong guarantee).
    try {
        if (faults::check(faults::Site::MicrotaskOverflow))
            throw std::bad_alloc();
        overflow_.push_back(std::move(task));
    } catch (const std::bad_alloc&) {
        return PushResult::NoMemory;
    }
    overflowCount_.fetch_add(1, std::memory_order_seq_cst);
    return PushResult::Ok;
}

bool MicrotaskRing::popRing(Task& out) noexcept {
    Cell& c = cells_[dequeue_ & mask_];
    if (c.seq.load(std::memory_order_acquire) != dequeue_ + 1)
        return false;
    Task* t = c.get();
    out = std::move(*t);
    t->~Task();
    c.seq.store(dequeue_ + mask_ + 1, std::memory_order_release);
    ++dequeue_;
    dequeuePublished_.store(dequeue_, std::memory_order_release);
    return true;
}

bool MicrotaskRing::pop(Task& out) {
    if (popRing(out))
        return true;
    if (overflowCount_.load(std::memory_order_acquire) == 0)
        return false;
    std::lock_guard lock(overflowMutex_);
    if (overflow_.empty())
        return false;
    out = std::move(overflow_.front());
    overflow_.pop_front();
    overflowCount_.fetch_sub(1, std::memory_order_release);
    return true;
}

bool MicrotaskRing::pending() const noexcept {
    return cells_[dequeue_ & mask_].seq.load(std::memory_order_seq_cst) == dequeue_ + 1 ||
           overflowCount_.load(std::memory_order_seq_cst) != 0;
}

std::uint64_t MicrotaskRing::ringUsed() const noexcept {
    const std::uint64_t e = enqueue_.load(std::memory_order_acquire) & ~kClosedBit;
    const std::uint64_t d = dequeuePublished_.load(std::memory_order_acquire);
    return e > d ? e - d : 0;
}

void MicrotaskRing::close() {
    enqueue_.fetch_or(kClosedBit, std::memory_order_seq_cst);
    std::lock_guard lock(overflowMutex_);
    overflowClosed_ = true;
}

void MicrotaskRing::releaseAll() {
    Task t;
    for (;;) {
        if (pop(t)) {
            t.reset();
            continue;
        }
        // Wait for producers that reserved a cell before close() and are still writing it.
        if ((enqueue_.load(std::memory_order_acquire) & ~kClosedBit) == dequeue_ &&
            overflowCount_.load(std::memory_order_acquire) == 0)
            return;
        std::this_thread::yield();
    }
}

} // namespace libloop::detail
