#include "timer_heap.h"

namespace libloop::detail {

void TimerHeap::push(std::int64_t deadline, std::uint64_t seq, std::uint32_t slot) {
    if (slot >= pos_.size())
        pos_.resize(std::size_t(slot) + 1, kNotInHeap);
    nodes_.push_back(Node{deadline, seq, slot});
    siftUp(nodes_.size() - 1, nodes_.back());
}

void TimerHeap::pop() noexcept {
    remove(nodes_.front().slot);
}

bool TimerHeap::remove(std::uint32_t slot) noexcept {
    if (!contains(slot))
        return false;
    const std::size_t i = pos_[slot];
    pos_[slot] = kNotInHeap;
    const Node last = nodes_.back();
    nodes_.pop_back();
    if (i == nodes_.size())
        return true;
    // The last node fills the hole; it may belong above or below it.
    if (i > 0 && less(last, nodes_[(i - 1) / kArity]))
        siftUp(i, last);
    else
        siftDown(i, last);
    return true;
}

void TimerHeap::clear() noexcept {
    for (const Node& n : nodes_)
        pos_[n.slot] = kNotInHeap;
    nodes_.clear();
}

void TimerHeap::siftUp(std::size_t i, Node n) noexcept {
    while (i > 0) {
        const std::size_t parent = (i - 1) / kArity;
        if (!less(n, nodes_[parent]))
            break;
        place(i, nodes_[parent]);
        i = parent;
    }
    place(i, n);
}

void TimerHeap::siftDown(std::size_t i, Node n) noexcept {
    const std::size_t size = nodes_.size();
    for (;;) {
        const std::size_t first = i * kArity + 1;
        if (first >= size)
            break;
        std::size_t best = first;
        const std::size_t end = first + kArity < size ? first + kArity : size;
        for (std::size_t c = first + 1; c < end; ++c)
            if (less(nodes_[c], nodes_[best]))
                best = c;
        if (!less(nodes_[best], n))
            break;
        place(i, nodes_[best]);
        i = best;
    }
    place(i, n);
}

} // namespace libloop::detail
