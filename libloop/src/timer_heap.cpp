#include "timer_heap.h"

#include <algorithm>
#include <new>

namespace libloop::detail {

void TimerHeap::reserve(std::size_t n) {
    if (n <= capacity_)
        return;
    std::size_t cap = capacity_ ? capacity_ : 64;
    while (cap < n)
        cap *= 2;
    std::unique_ptr<Node[], AlignedFree> fresh(
        static_cast<Node*>(::operator new[]((cap + kBase) * sizeof(Node), std::align_val_t(64))));
    if (nodes_)
        std::copy(nodes_.get() + kBase, nodes_.get() + kBase + size_, fresh.get() + kBase);
    nodes_ = std::move(fresh);
    capacity_ = cap;
}

std::uint64_t TimerHeap::push(std::int64_t deadline, std::uint32_t slot) {
    if (seq_ > kMaxSeq)
        renumber();
    if (slot >= pos_.size())
        pos_.resize(std::max<std::size_t>(std::size_t(slot) + 1, pos_.size() * 2), kNotInHeap);
    if (size_ + staged_.size() + 1 > capacity_)
        reserve(size_ + staged_.size() + 1); // so that flush() never allocates
    // Every allocation happens before anything changes: a throw leaves the heap as it was.
    staged_.push_back(Node{deadline, seq_ << kSlotBits | slot});
    pos_[slot] = kStaged | std::uint32_t(staged_.size() - 1);
    return seq_++;
}

void TimerHeap::flush() noexcept {
    if (staged_.empty())
        return;
    for (const Node& n : staged_)
        insert(n);
    staged_.clear();
}

void TimerHeap::insert(const Node& n) noexcept {
    const std::size_t i = kBase + size_++;
    siftUp(i, n);
}

void TimerHeap::pop() noexcept {
    flush();
    removeAt(kBase);
}

bool TimerHeap::restageTop() noexcept {
    if (staged_.size() == staged_.capacity()) {
        try { // geometric: restaging k nodes costs O(k) copies, not O(k^2)
            staged_.reserve(std::max<std::size_t>(64, 2 * staged_.capacity()));
        } catch (const std::bad_alloc&) {
            return false; // nothing changed
        }
    }
    const Node n = nodes_[kBase];
    removeAt(kBase);
    pos_[n.slot()] = kStaged | std::uint32_t(staged_.size());
    staged_.push_back(n); // within capacity: never throws
    return true;
}

bool TimerHeap::remove(std::uint32_t slot) noexcept {
    if (!contains(slot))
        return false;
    const std::uint32_t p = pos_[slot];
    if (p & kStaged) {
        const std::uint32_t i = p & ~kStaged;
        pos_[slot] = kNotInHeap;
        if (i + 1 != staged_.size()) {
            staged_[i] = staged_.back();
            pos_[staged_[i].slot()] = kStaged | i;
        }
        staged_.pop_back();
        return true;
    }
    removeAt(p);
    return true;
}

std::uint64_t TimerHeap::update(std::uint32_t slot, std::int64_t deadline) {
    if (seq_ > kMaxSeq)
        renumber();
    const std::uint64_t seq = seq_++;
    const Node n{deadline, seq << kSlotBits | slot};
    const std::uint32_t p = pos_[slot];
    if (p & kStaged) {
        staged_[p & ~kStaged] = n;
        return seq;
    }
    if (p > kBase && less(n, nodes_[(p - kBase - 1) / kArity + kBase]))
        siftUp(p, n);
    else
        siftDown(p, n);
    return seq;
}

void TimerHeap::removeAt(std::size_t i) noexcept {
    pos_[nodes_[i].slot()] = kNotInHeap;
    const Node last = nodes_[kBase + --size_];
    if (i == kBase + size_)
        return;
    // The last node fills the hole; it may belong above or below it.
    if (i > kBase && less(last, nodes_[(i - kBase - 1) / kArity + kBase]))
        siftUp(i, last);
    else
        siftDown(i, last);
}

void TimerHeap::clear() noexcept {
    for (std::size_t i = kBase; i < kBase + size_; ++i)
        pos_[nodes_[i].slot()] = kNotInHeap;
    for (const Node& n : staged_)
        pos_[n.slot()] = kNotInHeap;
    size_ = 0;
    staged_.clear();
}

void TimerHeap::siftUp(std::size_t i, Node n) noexcept {
    while (i > kBase) {
        const std::size_t parent = (i - kBase - 1) / kArity + kBase;
        if (!less(n, nodes_[parent]))
            break;
        place(i, nodes_[parent]);
        i = parent;
    }
    place(i, n);
}

void TimerHeap::siftDown(std::size_t i, Node n) noexcept {
    const std::size_t end = kBase + size_;
    for (;;) {
        const std::size_t first = (i - kBase) * kArity + 1 + kBase;
        if (first >= end)
            break;
        std::size_t best = first;
        const std::size_t last = std::min(first + kArity, end);
        for (std::size_t c = first + 1; c < last; ++c)
            if (less(nodes_[c], nodes_[best]))
                best = c;
        if (!less(nodes_[best], n))
            break;
        place(i, nodes_[best]);
        i = best;
    }
    place(i, n);
}

// seq is about to exceed 40 bits: give every node a new seq in (deadline, seq) order. A sorted
// array is a valid heap, so the heap is rebuilt in place.
void TimerHeap::renumber() noexcept {
    flush();
    std::sort(nodes_.get() + kBase, nodes_.get() + kBase + size_,
              [](const Node& a, const Node& b) { return less(a, b); });
    for (std::size_t i = 0; i < size_; ++i) {
        Node& n = nodes_[kBase + i];
        n.key = std::uint64_t(i) << kSlotBits | n.slot();
        pos_[n.slot()] = std::uint32_t(kBase + i);
    }
    seq_ = size_;
}

} // namespace libloop::detail
