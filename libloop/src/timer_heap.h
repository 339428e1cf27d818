// TimerHeap: a 4-ary min-heap of timer slots, ordered by (deadline, seq), with staged insertion.
//
// A data structure only: it knows nothing about callbacks or threads (the loop thread owns it).
//
// Order. `seq` is the order in which the loop scheduled timers; equal deadlines therefore pop
// in scheduling order (FIFO), and since seq is unique no two nodes ever compare equal. A node is
// 16 bytes, (deadline, seq << 24 | slot), so the four children of a node share one cache line
// (the array is offset so that every group of siblings starts on a 64-byte boundary). seq has 40
// bits; when it would wrap, every node is renumbered in order (once per 2^40 insertions).
//
// Staging. push() only appends to a staging buffer; staged nodes enter the heap when someone
// next looks at the top (top(), pop(), flush()). The timer phase reads the heap proper without
// flushing (heapTop()), so what is pushed while it runs waits for the next phase (update() of a
// heap node keeps it in the heap proper: restageTop() sets it aside). A timer scheduled and
// cancelled before then — the common "timeout that did not fire" inside one callback — costs O(1)
// and never touches the heap. Staged nodes keep their seq, so staging does not change the order.
//
// Each slot's position (heap index, or staging index with kStaged set) is kept in pos_, so
// remove() is O(log n) for heap nodes and O(1) for staged ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace libloop::detail {

class TimerHeap {
public:
    struct Node {
        std::int64_t deadline;
        std::uint64_t key; // seq << kSlotBits | slot
        std::uint32_t slot() const noexcept { return std::uint32_t(key & kSlotMask); }
        std::uint64_t seq() const noexcept { return key >> kSlotBits; }
    };
    static constexpr unsigned kSlotBits = 24;
    static constexpr std::uint64_t kSlotMask = (std::uint64_t(1) << kSlotBits) - 1;
    static constexpr std::uint64_t kMaxSeq = (std::uint64_t(1) << (64 - kSlotBits)) - 1;

    TimerHeap() = default;
    TimerHeap(const TimerHeap&) = delete;
    TimerHeap& operator=(const TimerHeap&) = delete;

    bool empty() const noexcept { return size_ == 0 && staged_.empty(); }
    std::size_t size() const noexcept { return size_ + staged_.size(); }
    bool contains(std::uint32_t slot) const noexcept {
        return slot < pos_.size() && pos_[slot] != kNotInHeap;
    }
    // Precondition: !empty(). Flushes staged nodes first.
    const Node& top() {
        flush();
        return nodes_[kBase];
    }
    // Precondition: !empty(). Removes the top node.
    void pop() noexcept;

    // The timer phase works on the heap proper, without flushing: nodes pushed (or updated)
    // while it runs stay staged, so it only ever sees what was scheduled before it began.
    // beginPhase() flushes and returns the phase's limit: nodes with a seq >= it were pushed
    // after the call. It renumbers first when fewer than kPhaseSeqHeadroom seqs are left, so
    // that no push() or update() during the phase renumbers (which would hand the timers
    // scheduled in it seqs below the limit); no phase schedules 2^32 timers.
    static constexpr std::uint64_t kPhaseSeqHeadroom = std::uint64_t(1) << 32;
    std::uint64_t beginPhase() noexcept {
        if (seq_ > kMaxSeq - kPhaseSeqHeadroom)
            renumber();
        flush();
        return seq_;
    }
    void flush() noexcept;
    bool heapEmpty() const noexcept { return size_ == 0; }
    // Precondition: !heapEmpty().
    const Node& heapTop() const noexcept { return nodes_[kBase]; }
    void popHeapTop() noexcept { removeAt(kBase); }
    // Precondition: !heapEmpty(). Moves the heap's top back to staging, keeping its seq (the
    // timer phase sets aside a node scheduled or rescheduled during it that reached the heap
    // proper — flushed by a nested iteration, or update() of a heap node — so that the older due
    // nodes behind it still run). False, with nothing changed, when the staging buffer could
    // not grow.
    bool restageTop() noexcept;

    // Precondition: !contains(slot), slot <= kSlotMask. Returns the seq it assigned (the
    // scheduling order). May allocate while the heap grows past its high-water mark.
    std::uint64_t push(std::int64_t deadline, std::uint32_t slot);
    // Removes `slot` if present; returns whether it was.
    bool remove(std::uint32_t slot) noexcept;
    // Precondition: contains(slot). Gives `slot` a new deadline and a new seq (it now counts as
    // scheduled last among equal deadlines); O(log n) in the heap, O(1) while staged. Returns
    // the new seq.
    std::uint64_t update(std::uint32_t slot, std::int64_t deadline);
    void clear() noexcept;
    // The next seq push() will assign: nodes with a seq >= this were pushed after the call.
    std::uint64_t nextSeq() const noexcept { return seq_; }
    // Test seam: lets a test reach the 40-bit seq wrap.
    void setNextSeqForTest(std::uint64_t seq) noexcept { seq_ = seq; }

private:
    static constexpr std::size_t kArity = 4;
    // nodes_[kBase] is the root; children of i are kArity*(i-kBase)+1+kBase ...; with kBase = 3
    // and 16-byte nodes on a 64-byte aligned array every sibling group fills one cache line.
    static constexpr std::size_t kBase = 3;
    static constexpr std::uint32_t kNotInHeap = UINT32_MAX;
    static constexpr std::uint32_t kStaged = 0x80000000u;

    static bool less(const Node& a, const Node& b) noexcept {
        return a.deadline < b.deadline || (a.deadline == b.deadline && a.key < b.key);
    }
    void place(std::size_t i, const Node& n) noexcept {
        nodes_[i] = n;
        pos_[n.slot()] = std::uint32_t(i);
    }
    void insert(const Node& n) noexcept; // into the heap proper; capacity ensured
    void siftUp(std::size_t i, Node n) noexcept;
    void siftDown(std::size_t i, Node n) noexcept;
    void removeAt(std::size_t i) noexcept;
    void reserve(std::size_t n);
    void renumber() noexcept;

    struct AlignedFree {
        void operator()(Node* p) const noexcept { ::operator delete[](p, std::align_val_t(64)); }
    };
    std::unique_ptr<Node[], AlignedFree> nodes_; // [kBase, kBase + size_) used
    std::size_t size_ = 0, capacity_ = 0;
    std::vector<Node> staged_;
    std::vector<std::uint32_t> pos_; // slot -> heap index | kStaged + staging index | kNotInHeap
    std::uint64_t seq_ = 0;
};

} // namespace libloop::detail
