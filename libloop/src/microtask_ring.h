// MicrotaskRing: the lock-free MPSC ring for microtasks, with a FIFO overflow list.
//
// The ring is Vyukov's bounded queue specialised to one consumer: cell i carries a sequence
// number; a producer may write cell (pos & mask) when seq == pos, reserves it with a CAS on
// enqueue_ and publishes with seq = pos + 1 (seq_cst: the loop's pre-sleep check loads it); the
// consumer reads it when seq == pos + 1 and frees it with seq = pos + capacity (release).
//
// Overflow. When the ring is full the microtask goes to a mutex-protected FIFO list, and while
// that list is non-empty every producer appends to it too; the consumer takes the list only when
// the ring is empty. So anything one producer queues after an overflowed item is queued behind
// it, and the ring is used again once the list has been drained: FIFO holds across
// ring -> overflow -> ring for every producer (and for any two pushes ordered by happens-before).
// The list allocates; the ring never does.
//
// Closing sets the top bit of enqueue_ (ring pushes fail) and a flag under the list's mutex.
// A push with `force` (the loop thread during a graceful drain) is accepted even then.
#pragma once

#include <libloop/task.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace libloop::detail {

class MicrotaskRing {
public:
    explicit MicrotaskRing(std::uint32_t capacity); // rounded up to a power of two, >= 2
    ~MicrotaskRing();
    MicrotaskRing(const MicrotaskRing&) = delete;
    MicrotaskRing& operator=(const MicrotaskRing&) = delete;

    enum class PushResult { Ok, Closed, NoMemory };
    // [any thread] Closed when closed (and not forced), NoMemory when the overflow list could
    // not grow; `task` is then left untouched. `fromLoopThread`: the consumer itself is pushing,
    // so it cannot be asleep and the publish needs no seq_cst (release is enough for its own
    // later reads).
    PushResult push(Task& task, bool force, bool fromLoopThread) noexcept;
    // [consumer]
    bool pop(Task& out);
    // [consumer] seq_cst: the pre-sleep check.
    bool pending() const noexcept;
    // [any thread]
    std::uint64_t ringUsed() const noexcept;
    std::uint64_t overflowSize() const noexcept {
        return overflowCount_.load(std::memory_order_acquire);
    }
    std::uint64_t capacity() const noexcept { return mask_ + 1; }
    // [any thread]
    void close();
    // [consumer, after close()] Destroys everything queued.
    void releaseAll();

private:
    static constexpr std::uint64_t kClosedBit = std::uint64_t(1) << 63;

    // Cache-line aligned for the same reason as ingress slots: a producer filling cell k and the
    // consumer draining cell k - 1 must not share a line.
    struct alignas(64) Cell {
        std::atomic<std::uint64_t> seq;
        alignas(Task) unsigned char task[sizeof(Task)];
        Task* get() noexcept { return std::launder(reinterpret_cast<Task*>(task)); }
    };

    PushResult pushOverflow(Task& task, bool force) noexcept;
    bool popRing(Task& out) noexcept;

    const std::uint64_t mask_;
    std::unique_ptr<Cell[]> cells_;
    alignas(64) std::atomic<std::uint64_t> enqueue_{0};
    alignas(64) std::uint64_t dequeue_ = 0; // consumer only
    std::atomic<std::uint64_t> dequeuePublished_{0};
    alignas(64) std::atomic<std::uint64_t> overflowCount_{0};
    std::mutex overflowMutex_;
    std::deque<Task> overflow_;   // guarded by overflowMutex_
    bool overflowClosed_ = false; // guarded by overflowMutex_
};

} // namespace libloop::detail
