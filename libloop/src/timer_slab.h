// TimerSlab: stable storage for timer entries, shared by the loop thread and other threads.
//
// Entries live in chunks that are never freed or moved while the slab exists, so any thread may
// look an entry up by slot; whether the entry still is "its" timer is decided by the generation
// in the entry's state word, never by the pointer. A TimerId is (generation << 24) | slot; a slot's
// generation grows by one at each allocation, and a slot whose generation is exhausted is retired
// (never put back on the free list), so no id is ever issued twice.
//
// state = (generation << 3) | phase. Phase transitions (all by CAS or by the slot's owner):
//   Free -> Pending                      allocate() + publish (the scheduling thread)
//   Pending -> Running                   the loop thread, when the deadline is reached
//   Pending -> Cancelled                 cancel on the loop thread (it frees the slot at once)
//   Pending -> CancelledRemote           cancel on another thread (the loop frees the slot when it
//                                        processes the cancel list, never earlier: the entry is
//                                        still linked there)
//   Running/Cancelled* -> Free           the loop thread (release())
// A cancel succeeds only on the Pending -> Cancelled* CAS: afterwards the callback never starts.
//
// Free list: a Treiber stack of slots with a 32-bit tag beside the top index (no ABA). Cross-thread
// scheduling and cancelling hand slots to the loop through two intrusive MPSC stacks (insert,
// cancel) that the loop takes whole; see Loop for the order in which they are taken.
#pragma once

#include <libloop/task.h>
#include <libloop/timer.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace libloop::detail {

class TimerSlab {
public:
    enum Phase : std::uint64_t {
        Free = 0,
        Pending = 1,
        Running = 2,
        Cancelled = 3,
        CancelledRemote = 4
    };
    static constexpr unsigned kPhaseBits = 3;
    static constexpr unsigned kSlotBits = 24;
    static constexpr std::uint64_t kMaxGeneration = (std::uint64_t(1) << (64 - kSlotBits)) - 1;
    static constexpr std::uint32_t kNone = 0; // "no slot" in links (links store slot + 1)

    struct Entry {
        std::atomic<std::uint64_t> state{0};
        std::atomic<std::int64_t> deadline{0};
        std::atomic<std::uint32_t> nextFree{kNone};
        std::atomic<std::uint32_t> nextInsert{kNone};
        std::atomic<std::uint32_t> nextCancel{kNone};
        Task task;
    };

    static std::uint64_t word(std::uint64_t gen, Phase p) noexcept {
        return (gen << kPhaseBits) | p;
    }
    static std::uint64_t generationOf(std::uint64_t state) noexcept { return state >> kPhaseBits; }
    static Phase phaseOf(std::uint64_t state) noexcept {
        return Phase(state & ((1u << kPhaseBits) - 1));
    }
    static TimerId makeId(std::uint64_t gen, std::uint32_t slot) noexcept {
        return TimerId{(gen << kSlotBits) | slot};
    }
    static std::uint32_t slotOf(TimerId id) noexcept {
        return std::uint32_t(id.value & ((1u << kSlotBits) - 1));
    }
    static std::uint64_t generationOf(TimerId id) noexcept { return id.value >> kSlotBits; }

    explicit TimerSlab(std::uint32_t maxSlots); // capped at 2^24
    ~TimerSlab();
    TimerSlab(const TimerSlab&) = delete;
    TimerSlab& operator=(const TimerSlab&) = delete;

    enum class Alloc { Ok, Full, NoMemory };
    // [any thread] Takes a free slot and bumps its generation (state stays Free until the caller
    // publishes Pending). Full at the configured capacity, NoMemory when a chunk could not be
    // allocated.
    Alloc allocate(std::uint32_t& slot, std::uint64_t& gen) noexcept;
    // [loop thread] Destroys the task, marks the slot Free and returns it to the free list
    // (unless its generation is exhausted).
    void release(std::uint32_t slot) noexcept;
    // [loop thread] As allocate() / release(), through a cache of free slots that only the loop
    // thread touches: no atomic read-modify-write on the loop's own schedule/cancel/fire path.
    // Past kLocalMax cached slots half of them go back to the shared list, so other threads
    // still find free slots; allocateLocal() falls back to the shared list when the cache is
    // empty.
    Alloc allocateLocal(std::uint32_t& slot, std::uint64_t& gen) noexcept;
    void releaseLocal(std::uint32_t slot) noexcept;
    // [loop thread] Once the slab has all its chunks the cache keeps nothing: the shared list is
    // then the only place other threads find a free slot. releaseLocal() stops caching at the
    // cap; this hands back what was cached before another thread added the last chunk (the loop
    // calls it every iteration, so a refusal from another thread with slots cached lasts until
    // the loop's next iteration at most).
    void flushLocalAtCap() noexcept {
        if (!localFree_.empty() && atCap())
            flushLocal();
    }
    // [any thread] Null for a slot that was never allocated. (Inline: on every schedule/cancel.)
    Entry* find(std::uint32_t slot) const noexcept {
        const std::uint32_t chunk = slot >> kChunkBits;
        if (chunk >= maxChunks_)
            return nullptr;
        Entry* c = chunks_[chunk].load(std::memory_order_acquire);
        return c ? &c[slot & (kChunkSize - 1)] : nullptr;
    }
    Entry& at(std::uint32_t slot) const noexcept { return *find(slot); }
    // [any thread] Slots that exist (allocated chunks).
    std::uint32_t slotCount() const noexcept { return slotCount_.load(std::memory_order_acquire); }

    // [any thread] Intrusive MPSC stacks; take*() [loop thread] returns them in push order
    // (a linked list through nextInsert / nextCancel, slot + 1, kNone-terminated).
    void pushInsert(std::uint32_t slot) noexcept;
    void pushCancel(std::uint32_t slot) noexcept;
    std::uint32_t takeInserts() noexcept;
    std::uint32_t takeCancels() noexcept;
    // [loop thread] seq_cst (the default): part of the pre-sleep check. Relaxed: a hint; a list
    // pushed after it answered false is seen by the next seq_cst check (its producer's notify()
    // wakes the loop for it).
    bool remotePending(std::memory_order order = std::memory_order_seq_cst) const noexcept {
        return inserts_.load(order) != kNone || cancels_.load(order) != kNone;
    }

private:
    static constexpr unsigned kChunkBits = 12;
    static constexpr std::uint32_t kChunkSize = 1u << kChunkBits;

    Alloc grow() noexcept;
    void pushFree(std::uint32_t slot) noexcept;
    std::uint32_t takeReversed(std::atomic<std::uint32_t>& head,
                               std::atomic<std::uint32_t> Entry::*link) noexcept;
    void push(std::atomic<std::uint32_t>& head, std::atomic<std::uint32_t> Entry::*link,
              std::uint32_t slot) noexcept;

    static constexpr std::size_t kLocalMax = 4096;

    // Marks the slot Free (task destroyed); false when its generation is exhausted (retired).
    bool markFree(std::uint32_t slot) noexcept;
    bool atCap() const noexcept {
        return slotCount_.load(std::memory_order_relaxed) >= maxChunks_ * kChunkSize;
    }
    void flushLocal() noexcept;

    const std::uint32_t maxSlots_; // the cap: slots past it in the last chunk are never used
    const std::uint32_t maxChunks_;
    std::vector<std::uint32_t> localFree_; // loop thread only; capacity kLocalMax, never grows
    std::unique_ptr<std::atomic<Entry*>[]> chunks_;
    std::atomic<std::uint32_t> slotCount_{0};
    std::mutex growMutex_;
    alignas(64) std::atomic<std::uint64_t> freeHead_{0}; // (tag << 32) | (slot + 1)
    alignas(64) std::atomic<std::uint32_t> inserts_{kNone};
    alignas(64) std::atomic<std::uint32_t> cancels_{kNone};
};

} // namespace libloop::detail
