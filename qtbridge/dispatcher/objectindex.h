// ObjectIndex: QObject* -> int (the head of the object's timer list), for the dispatcher's hot
// path (every QTimer start and stop touches it).
//
// Open addressing with linear probing over one array of {key, value} pairs, Fibonacci hashing of
// the pointer, at most half full, and backward-shift deletion (no tombstones, so lookups never
// slow down with churn). Grows by doubling, never shrinks: no allocation in steady state.
// Not thread-safe (the dispatcher's thread only). A null key is not allowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace libloop::qt {

class ObjectIndex {
public:
    // The value for `key`, 0 when absent.
    int value(const void* key) const noexcept {
        if (size_ == 0)
            return 0;
        for (std::size_t i = home(key);; i = (i + 1) & mask_) {
            if (slots_[i].key == key)
                return slots_[i].value;
            if (!slots_[i].key)
                return 0;
        }
    }

    // The value for `key`, inserted as 0 when absent. The reference is valid until the next
    // insertion or removal.
    int& at(const void* key) {
        if ((size_ + 1) * 2 > slots_.size())
            grow();
        std::size_t i = home(key);
        while (slots_[i].key && slots_[i].key != key)
            i = (i + 1) & mask_;
        if (!slots_[i].key) {
            slots_[i] = {key, 0};
            ++size_;
        }
        return slots_[i].value;
    }

    void remove(const void* key) noexcept {
        if (size_ == 0)
            return;
        std::size_t i = home(key);
        while (slots_[i].key != key) {
            if (!slots_[i].key)
                return;
            i = (i + 1) & mask_;
        }
        // Backward shift: move later members of the probe run into the hole when their home
        // position does not lie cyclically in (hole, their position].
        for (std::size_t j = (i + 1) & mask_; slots_[j].key; j = (j + 1) & mask_) {
            const std::size_t h = home(slots_[j].key);
            const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (!stays) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i] = {};
        --size_;
    }

    std::size_t size() const noexcept { return size_; }

private:
    struct Slot {
        const void* key = nullptr;
        int value = 0;
    };

    std::size_t home(const void* key) const noexcept {
        const auto k = std::uint64_t(reinterpret_cast<std::uintptr_t>(key));
        return std::size_t((k * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        const std::size_t cap = old.empty() ? 16 : old.size() * 2;
        slots_.assign(cap, Slot{});
        mask_ = cap - 1;
        shift_ = 64 - unsigned(__builtin_ctzll(cap));
        size_ = 0;
        for (const Slot& s : old)
            if (s.key)
                at(s.key) = s.value;
    }

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    unsigned shift_ = 64;
    std::size_t size_ = 0;
};

} // namespace libloop::qt
