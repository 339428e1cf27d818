// LocalQueue: the loop thread's own FIFO of tasks (submitInternal). A power-of-two ring that
// doubles when full and never shrinks: no allocation in steady state, no synchronisation.
// Growing is the one allocation; when it fails push() refuses and the queue is unchanged.
#pragma once

#include "faults.h"
#include "ingress.h"

#include <cstddef>
#include <memory>
#include <new>

namespace libloop::detail {

class LocalQueue {
public:
    bool empty() const noexcept { return head_ == tail_; }
    std::size_t size() const noexcept { return tail_ - head_; }
    // Tasks ever pushed / popped (cleared ones count as popped): a phase runs the tasks with a
    // push number below the count it saw when it began, even across nested phases.
    std::uint64_t pushedCount() const noexcept { return base_ + tail_; }
    std::uint64_t poppedCount() const noexcept { return base_ + head_; }
    // False (and `t` untouched) when the queue had to grow and could not allocate.
    [[nodiscard]] bool push(Task&& t, std::int64_t enqueuedNs) noexcept {
        if (tail_ - head_ == cap_ && !grow())
            return false;
        QueuedTask& q = buf_[tail_++ & (cap_ - 1)];
        q.task = std::move(t);
        q.enqueuedNs = enqueuedNs;
        return true;
    }
    bool pop(QueuedTask& out) noexcept {
        if (head_ == tail_)
            return false;
        QueuedTask& q = buf_[head_++ & (cap_ - 1)];
        out.task = std::move(q.task);
        out.enqueuedNs = q.enqueuedNs;
        return true;
    }
    void clear() noexcept {
        for (; head_ != tail_; ++head_)
            buf_[head_ & (cap_ - 1)].task.reset();
    }

private:
    bool grow() noexcept {
        const std::size_t cap = cap_ ? cap_ * 2 : 64;
        if (faults::check(faults::Site::LocalQueueGrow))
            return false;
        std::unique_ptr<QueuedTask[]> b(new (std::nothrow) QueuedTask[cap]);
        if (!b)
            return false;
        for (std::size_t i = 0; head_ + i != tail_; ++i)
            b[i] = std::move(buf_[(head_ + i) & (cap_ - 1)]);
        base_ += head_;
        tail_ -= head_;
        head_ = 0;
        buf_ = std::move(b);
        cap_ = cap;
        return true;
    }

    std::unique_ptr<QueuedTask[]> buf_;
    std::size_t cap_ = 0, head_ = 0, tail_ = 0;
    std::uint64_t base_ = 0; // pops before the last grow() rebased head_ to 0
};

} // namespace libloop::detail
