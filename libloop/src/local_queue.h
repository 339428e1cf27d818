// LocalQueue: the loop thread's own FIFO of tasks (submitInternal). A power-of-two ring that
// doubles when full and never shrinks: no allocation in steady state, no synchronisation.
#pragma once

#include "ingress.h"

#include <cstddef>
#include <memory>

namespace libloop::detail {

class LocalQueue {
public:
    bool empty() const noexcept { return head_ == tail_; }
    std::size_t size() const noexcept { return tail_ - head_; }
    void push(Task&& t, std::int64_t enqueuedNs) {
        if (tail_ - head_ == cap_)
            grow();
        QueuedTask& q = buf_[tail_++ & (cap_ - 1)];
        q.task = std::move(t);
        q.enqueuedNs = enqueuedNs;
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
    void grow() {
        const std::size_t cap = cap_ ? cap_ * 2 : 64;
        std::unique_ptr<QueuedTask[]> b(new QueuedTask[cap]);
        for (std::size_t i = 0; head_ + i != tail_; ++i)
            b[i] = std::move(buf_[(head_ + i) & (cap_ - 1)]);
        tail_ -= head_;
        head_ = 0;
        buf_ = std::move(b);
        cap_ = cap;
    }

    std::unique_ptr<QueuedTask[]> buf_;
    std::size_t cap_ = 0, head_ = 0, tail_ = 0;
};

} // namespace libloop::detail
