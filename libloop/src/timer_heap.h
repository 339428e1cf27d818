// TimerHeap: a 4-ary min-heap of timer slots, ordered by (deadline, seq).
//
// A data structure only: it knows nothing about callbacks or threads (the loop thread owns it).
// Each slot's position is kept in pos_ so remove() is O(log n). `seq` is the order in which the
// loop inserted timers: equal deadlines therefore pop in scheduling order (FIFO), and since seq
// is unique no two nodes ever compare equal.
#pragma once

#include <cstdint>
#include <vector>

namespace libloop::detail {

class TimerHeap {
public:
    struct Node {
        std::int64_t deadline;
        std::uint64_t seq;
        std::uint32_t slot;
    };
    static constexpr std::uint32_t kNotInHeap = UINT32_MAX;

    bool empty() const noexcept { return nodes_.empty(); }
    std::size_t size() const noexcept { return nodes_.size(); }
    const Node& top() const noexcept { return nodes_.front(); }
    bool contains(std::uint32_t slot) const noexcept {
        return slot < pos_.size() && pos_[slot] != kNotInHeap;
    }

    // Precondition: !contains(slot). May allocate while the heap grows past its high-water mark.
    void push(std::int64_t deadline, std::uint64_t seq, std::uint32_t slot);
    // Precondition: !empty(). Removes the top node.
    void pop() noexcept;
    // Removes `slot` if present; returns whether it was.
    bool remove(std::uint32_t slot) noexcept;
    void clear() noexcept;

private:
    static constexpr std::size_t kArity = 4;
    static bool less(const Node& a, const Node& b) noexcept {
        return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
    }
    void place(std::size_t i, const Node& n) noexcept {
        nodes_[i] = n;
        pos_[n.slot] = std::uint32_t(i);
    }
    void siftUp(std::size_t i, Node n) noexcept;
    void siftDown(std::size_t i, Node n) noexcept;

    std::vector<Node> nodes_;
    std::vector<std::uint32_t> pos_; // slot -> index in nodes_, or kNotInHeap
};

} // namespace libloop::detail
