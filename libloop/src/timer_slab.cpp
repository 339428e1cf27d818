#include "timer_slab.h"

#include "faults.h"

#include <algorithm>
#include <new>

namespace libloop::detail {

TimerSlab::TimerSlab(std::uint32_t maxSlots)
    : maxSlots_(std::clamp<std::uint32_t>(maxSlots, 1, 1u << kSlotBits)),
      maxChunks_((maxSlots_ + kChunkSize - 1) / kChunkSize),
      chunks_(new std::atomic<Entry*>[maxChunks_]) {
    localFree_.reserve(kLocalMax);
    for (std::uint32_t i = 0; i < maxChunks_; ++i)
        chunks_[i].store(nullptr, std::memory_order_relaxed);
}

TimerSlab::~TimerSlab() {
    for (std::uint32_t i = 0; i < maxChunks_; ++i)
        delete[] chunks_[i].load(std::memory_order_relaxed);
}

TimerSlab::Alloc TimerSlab::grow() noexcept {
    std::lock_guard lock(growMutex_);
    if (freeHead_.load(std::memory_order_acquire) & 0xffffffffu)
        return Alloc::Ok; // another thread grew (or a slot was freed) meanwhile
    const std::uint32_t count = slotCount_.load(std::memory_order_relaxed);
    const std::uint32_t chunk = count >> kChunkBits;
    if (chunk >= maxChunks_)
        return Alloc::Full;
    Entry* c =
        faults::check(faults::Site::TimerChunk) ? nullptr : new (std::nothrow) Entry[kChunkSize];
    if (!c)
        return Alloc::NoMemory;
    chunks_[chunk].store(c, std::memory_order_release);
    slotCount_.store(count + kChunkSize, std::memory_order_release);
    // The last chunk may be partly usable: only slots below the cap go to the free list.
    for (std::uint32_t i = std::min(kChunkSize, maxSlots_ - count); i-- > 0;)
        pushFree(count + i);
    return Alloc::Ok;
}

void TimerSlab::pushFree(std::uint32_t slot) noexcept {
    Entry& e = at(slot);
    std::uint64_t head = freeHead_.load(std::memory_order_relaxed);
    std::uint64_t next;
    do {
        e.nextFree.store(std::uint32_t(head), std::memory_order_relaxed);
        next = ((head >> 32) + 1) << 32 | (slot + 1);
    } while (!freeHead_.compare_exchange_weak(head, next, std::memory_order_release,
                                              std::memory_order_relaxed));
}

TimerSlab::Alloc TimerSlab::allocate(std::uint32_t& slot, std::uint64_t& gen) noexcept {
    for (;;) {
        std::uint64_t head = freeHead_.load(std::memory_order_acquire);
        while (head & 0xffffffffu) {
            const std::uint32_t s = std::uint32_t(head) - 1;
            // The tag makes the CAS fail if `s` was popped and pushed back since we read head,
            // so the `nextFree` we read (possibly stale) is never installed.
            const std::uint32_t next = at(s).nextFree.load(std::memory_order_relaxed);
            const std::uint64_t desired = ((head >> 32) + 1) << 32 | next;
            if (freeHead_.compare_exchange_weak(head, desired, std::memory_order_acquire,
                                                std::memory_order_acquire)) {
                Entry& e = at(s);
                gen = generationOf(e.state.load(std::memory_order_relaxed)) + 1;
                e.state.store(word(gen, Free), std::memory_order_relaxed);
                slot = s;
                return Alloc::Ok;
            }
        }
        if (const Alloc a = grow(); a != Alloc::Ok)
            return a;
    }
}

bool TimerSlab::markFree(std::uint32_t slot) noexcept {
    Entry& e = at(slot);
    e.task.reset();
    const std::uint64_t gen = generationOf(e.state.load(std::memory_order_relaxed));
    e.state.store(word(gen, Free), std::memory_order_release);
    return gen < kMaxGeneration; // else: retired, so its ids are never issued again
}

void TimerSlab::release(std::uint32_t slot) noexcept {
    if (markFree(slot))
        pushFree(slot);
}

void TimerSlab::releaseLocal(std::uint32_t slot) noexcept {
    if (!markFree(slot))
        return;
    // At the cap the shared list is the only place other threads find a free slot: keep none
    // aside (so a refusal from any thread means maxTimers are really in use).
    if (atCap()) {
        flushLocal();
        pushFree(slot);
        return;
    }
    if (localFree_.size() == kLocalMax) {
        for (std::size_t i = kLocalMax / 2; i < kLocalMax; ++i)
            pushFree(localFree_[i]);
        localFree_.resize(kLocalMax / 2);
    }
    localFree_.push_back(slot); // within the reserved capacity: never allocates
}

void TimerSlab::flushLocal() noexcept {
    for (const std::uint32_t s : localFree_)
        pushFree(s);
    localFree_.clear();
}

TimerSlab::Alloc TimerSlab::allocateLocal(std::uint32_t& slot, std::uint64_t& gen) noexcept {
    if (localFree_.empty())
        return allocate(slot, gen);
    slot = localFree_.back();
    localFree_.pop_back();
    Entry& e = at(slot);
    // Only the loop thread reaches this slot until the caller publishes it (Pending, release).
    gen = generationOf(e.state.load(std::memory_order_relaxed)) + 1;
    e.state.store(word(gen, Free), std::memory_order_relaxed);
    return Alloc::Ok;
}

void TimerSlab::push(std::atomic<std::uint32_t>& head, std::atomic<std::uint32_t> Entry::*link,
                     std::uint32_t slot) noexcept {
    Entry& e = at(slot);
    std::uint32_t h = head.load(std::memory_order_relaxed);
    do {
        (e.*link).store(h, std::memory_order_relaxed);
    } while (!head.compare_exchange_weak(h, slot + 1, std::memory_order_seq_cst,
                                         std::memory_order_relaxed));
}

void TimerSlab::pushInsert(std::uint32_t slot) noexcept {
    push(inserts_, &Entry::nextInsert, slot);
}
void TimerSlab::pushCancel(std::uint32_t slot) noexcept {
    push(cancels_, &Entry::nextCancel, slot);
}

std::uint32_t TimerSlab::takeReversed(std::atomic<std::uint32_t>& head,
                                      std::atomic<std::uint32_t> Entry::*link) noexcept {
    std::uint32_t cur = head.exchange(kNone, std::memory_order_acquire);
    std::uint32_t prev = kNone;
    while (cur != kNone) {
        Entry& e = at(cur - 1);
        const std::uint32_t next = (e.*link).load(std::memory_order_relaxed);
        (e.*link).store(prev, std::memory_order_relaxed);
        prev = cur;
        cur = next;
    }
    return prev;
}

std::uint32_t TimerSlab::takeInserts() noexcept {
    return takeReversed(inserts_, &Entry::nextInsert);
}
std::uint32_t TimerSlab::takeCancels() noexcept {
    return takeReversed(cancels_, &Entry::nextCancel);
}

} // namespace libloop::detail
