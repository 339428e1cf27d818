// RingBuffer<T>: a fixed-capacity FIFO that overwrites its oldest element when full. Index 0 is
// the oldest element. The inspector keeps each loop's history in one (a 10-minute window at
// 20 Hz is 12 000 samples), so appending is O(1) and never reallocates once the capacity is
// reached.
#pragma once

#include <QtCore/qglobal.h>

#include <algorithm>
#include <vector>

namespace libloop::inspector {

template <class T> class RingBuffer {
public:
    explicit RingBuffer(qsizetype capacity = 1) { setCapacity(capacity); }

    qsizetype capacity() const { return capacity_; }
    qsizetype size() const { return size_; }
    bool isEmpty() const { return size_ == 0; }

    // Keeps the newest min(size, capacity) elements.
    void setCapacity(qsizetype capacity) {
        capacity = std::max<qsizetype>(capacity, 1);
        std::vector<T> kept;
        const qsizetype keep = std::min(size_, capacity);
        kept.reserve(std::size_t(keep));
        for (qsizetype i = size_ - keep; i < size_; ++i)
            kept.push_back(at(i));
        data_ = std::move(kept);
        capacity_ = capacity;
        head_ = 0;
        size_ = keep;
    }

    void push(const T& value) {
        if (size_ < capacity_) {
            // Grows lazily up to the capacity (no 12 000-sample allocation per idle loop).
            if (qsizetype(data_.size()) < capacity_ && head_ == 0) {
                data_.push_back(value);
                ++size_;
                return;
            }
            data_[std::size_t((head_ + size_) % capacity_)] = value;
            ++size_;
            return;
        }
        data_[std::size_t(head_)] = value;
        head_ = (head_ + 1) % capacity_;
    }

    // 0 = oldest.
    const T& at(qsizetype i) const { return data_[std::size_t((head_ + i) % capacity_)]; }
    const T& first() const { return at(0); }
    const T& last() const { return at(size_ - 1); }

    // Calls f(const T* data, qsizetype count) for the elements [begin, end) as at most two
    // contiguous pieces, oldest first (no index arithmetic per element).
    template <class F> void forEachSegment(qsizetype begin, qsizetype end, F f) const {
        begin = std::max<qsizetype>(begin, 0);
        end = std::min(end, size_);
        if (begin >= end)
            return;
        const qsizetype first = (head_ + begin) % capacity_;
        const qsizetype n = end - begin;
        const qsizetype tail = std::min(n, capacity_ - first);
        f(data_.data() + first, tail);
        if (tail < n)
            f(data_.data(), n - tail);
    }

    void clear() {
        data_.clear();
        head_ = 0;
        size_ = 0;
    }

    // The first index whose key(element) is not less than `value` (elements sorted by key).
    template <class Key, class V> qsizetype lowerBound(const V& value, Key key) const {
        qsizetype lo = 0, hi = size_;
        while (lo < hi) {
            const qsizetype mid = lo + (hi - lo) / 2;
            if (key(at(mid)) < value)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

private:
    std::vector<T> data_;
    qsizetype capacity_ = 1;
    qsizetype head_ = 0; // index in data_ of the oldest element
    qsizetype size_ = 0;
};

} // namespace libloop::inspector
