// Ingress: the chunked MPSC queue for tasks submitted from any thread.
//
// Layout. Positions are laid out in laps of kLap; each lap is one Block of kCap = kLap - 1 slots.
// The extra position of a lap (offset kCap) means "the next block is being installed": producers
// that see it wait for the installer, which is the producer that took slot kCap - 1.
//
// tail_ = (position << 1) | closed. A producer reserves a slot with a CAS on tail_ (a plain
// fetch_add could run past a block boundary); a successful CAS proves the block it loaded is still
// the tail block (the installer publishes the new block before the position crosses into it), so
// a producer dereferences a block only after the CAS. The consumer frees a block only once it has
// read every slot of it, i.e. after every producer of that block finished writing.
//
// Blocks are recycled through a pool: a Treiber stack pushed by anyone (the consumer recycling a
// read block, a producer returning an unused spare) and popped only under a small spin lock that
// only producers take (the consumer never waits for it). With one popper at a time a popped node
// cannot come back between the popper's read and its CAS, so the stack never sees ABA. Steady
// state allocates nothing.
//
// Publishing: a producer writes the task, then stores the slot's `ready` flag with seq_cst; the
// loop's pre-sleep check loads the head slot's flag with seq_cst (see wakeup.h).
//
// Closing: close() sets the closed bit in tail_; every later CAS fails, so no push can succeed
// after close() returns, and every push that succeeded before will finish writing its slot.
#pragma once

#include <libloop/task.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace libloop::detail {

struct QueuedTask {
    Task task;
    std::int64_t enqueuedNs;
};

class Ingress {
public:
    Ingress() noexcept;
    ~Ingress(); // destroys remaining tasks
    Ingress(const Ingress&) = delete;
    Ingress& operator=(const Ingress&) = delete;

    enum class PushResult { Ok, Closed, NoMemory };

    // [any thread] On failure `task` is left untouched. `fromLoopThread`: the consumer itself
    // is pushing (it cannot be asleep), so the publish needs no seq_cst.
    PushResult push(Task& task, std::int64_t enqueuedNs, bool fromLoopThread) noexcept;
    // [consumer] False when empty or when the head slot is reserved but not written yet (its
    // producer will notify after writing).
    bool pop(QueuedTask& out) noexcept;
    // [consumer] seq_cst: the pre-sleep check.
    bool headReady() const noexcept;
    // [any thread] Tasks reserved and not yet consumed.
    std::uint64_t size() const noexcept;
    // [consumer] Tasks ever reserved / consumed: a phase runs the tasks reserved before it began.
    std::uint64_t reservedCount() const noexcept {
        return countOf(tail_.load(std::memory_order_acquire) >> kShift);
    }
    std::uint64_t consumedCount() const noexcept { return countOf(head_ >> kShift); }
    // [any thread] No push succeeds after this returns. Idempotent.
    void close() noexcept;
    // [consumer, after close()] True when every reserved slot has been consumed.
    bool drained() const noexcept;
    // [consumer, after close()] Destroys every queued task (waiting for in-flight writers).
    void releaseAll() noexcept;

private:
    static constexpr std::uint64_t kLap = 128;
    static constexpr std::uint64_t kCap = kLap - 1;
    static constexpr std::uint64_t kShift = 1;
    static constexpr std::uint64_t kClosed = 1;

    // One cache line of its own per slot start: a producer writing slot k and the consumer
    // reading slot k - 1 never share a line (with packed 80-byte slots they did, and a loop that
    // keeps pace with its producer paid a line transfer per task).
    struct alignas(64) Slot {
        std::atomic<std::uint32_t> ready{0};
        std::int64_t enqueuedNs = 0;
        alignas(Task) unsigned char task[sizeof(Task)];
        Task* get() noexcept { return std::launder(reinterpret_cast<Task*>(task)); }
    };
    struct Block {
        std::atomic<Block*> next{nullptr};
        Block* poolNext = nullptr;
        Slot slots[kCap];
    };

    static std::uint64_t countOf(std::uint64_t pos) noexcept {
        const std::uint64_t off = pos % kLap;
        return (pos / kLap) * kCap + (off < kCap ? off : kCap);
    }
    Block* acquireBlock() noexcept;       // producers (pool or new); null when out of memory
    void recycleBlock(Block* b) noexcept; // consumer

    alignas(64) std::atomic<std::uint64_t> tail_{0};
    std::atomic<Block*> tailBlock_{nullptr};
    alignas(64) std::uint64_t head_ = 0; // consumer only
    Block* headBlock_ = nullptr;         // consumer only
    std::atomic<std::uint64_t> headPublished_{0};
    alignas(64) std::atomic<Block*> pool_{nullptr};
    std::atomic_flag poolLock_ = ATOMIC_FLAG_INIT;
};

} // namespace libloop::detail
