#include "ingress.h"

#include "faults.h"

#include <new>
#include <thread>

namespace libloop::detail {

namespace {
inline void cpuRelax(unsigned& spins) noexcept {
    if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        std::this_thread::yield();
    }
}
} // namespace

Ingress::Ingress() noexcept {
    Block* b = new Block;
    tailBlock_.store(b, std::memory_order_relaxed);
    headBlock_ = b;
}

Ingress::~Ingress() {
    close();
    releaseAll();
    delete headBlock_;
    for (Block* b = pool_.load(std::memory_order_relaxed); b;) {
        Block* n = b->poolNext;
        delete b;
        b = n;
    }
}

Ingress::Block* Ingress::acquireBlock() noexcept {
    while (poolLock_.test_and_set(std::memory_order_acquire)) {
        unsigned spins = 0;
        while (poolLock_.test(std::memory_order_relaxed))
            cpuRelax(spins);
    }
    // Poppers are serialized by the lock; the only concurrent writer is the consumer's push,
    // which makes the CAS fail and retry. No ABA: nobody else can pop `top` meanwhile.
    Block* top = pool_.load(std::memory_order_acquire);
    while (top && !pool_.compare_exchange_weak(top, top->poolNext, std::memory_order_acquire,
                                               std::memory_order_acquire)) {
    }
    poolLock_.clear(std::memory_order_release);
    if (top)
        return top;
    if (faults::check(faults::Site::IngressBlock))
        return nullptr;
    return new (std::nothrow) Block;
}

void Ingress::recycleBlock(Block* b) noexcept {
    for (Slot& s : b->slots)
        s.ready.store(0, std::memory_order_relaxed);
    b->next.store(nullptr, std::memory_order_relaxed);
    Block* top = pool_.load(std::memory_order_relaxed);
    do {
        b->poolNext = top;
    } while (
        !pool_.compare_exchange_weak(top, b, std::memory_order_release, std::memory_order_relaxed));
}

Ingress::PushResult Ingress::push(Task& task, std::int64_t enqueuedNs,
                                  bool fromLoopThread) noexcept {
    Block* spare = nullptr;
    std::uint64_t tail = tail_.load(std::memory_order_acquire);
    Block* block = tailBlock_.load(std::memory_order_acquire);
    unsigned spins = 0;
    for (;;) {
        if (tail & kClosed) {
            if (spare)
                recycleBlock(spare); // never linked: safe to give back (see class comment)
            return PushResult::Closed;
        }
        const std::uint64_t offset = (tail >> kShift) % kLap;
        if (offset == kCap) { // the installer of the next block has not finished
            cpuRelax(spins);
            tail = tail_.load(std::memory_order_acquire);
            block = tailBlock_.load(std::memory_order_acquire);
            continue;
        }
        if (offset + 1 == kCap && !spare) {
            spare = acquireBlock();
            if (!spare)
                return PushResult::NoMemory;
        }
        if (tail_.compare_exchange_weak(tail, tail + (1 << kShift), std::memory_order_seq_cst,
                                        std::memory_order_acquire)) {
            if (offset + 1 == kCap) {
                // We took the block's last slot: install the next block before anyone can
                // reserve past the boundary, then link it for the consumer.
                tailBlock_.store(spare, std::memory_order_release);
                tail_.fetch_add(1 << kShift, std::memory_order_release);
                block->next.store(spare, std::memory_order_release);
                spare = nullptr;
            }
            Slot& s = block->slots[offset];
            ::new (static_cast<void*>(s.task)) Task(std::move(task));
            s.enqueuedNs = enqueuedNs;
            s.ready.store(1,
                          fromLoopThread ? std::memory_order_release : std::memory_order_seq_cst);
            if (spare)
                recycleBlock(spare);
            return PushResult::Ok;
        }
        block = tailBlock_.load(std::memory_order_acquire);
    }
}

bool Ingress::pop(QueuedTask& out) noexcept {
    const std::uint64_t offset = (head_ >> kShift) % kLap;
    Slot& s = headBlock_->slots[offset];
    if (!s.ready.load(std::memory_order_acquire))
        return false;
    Task* t = s.get();
    out.task = std::move(*t);
    out.enqueuedNs = s.enqueuedNs;
    t->~Task();
    head_ += 1 << kShift;
    if (offset + 1 == kCap) {
        // The installer linked `next` before it published this slot.
        Block* next = headBlock_->next.load(std::memory_order_acquire);
        recycleBlock(headBlock_);
        headBlock_ = next;
        head_ += 1 << kShift; // skip the lap's install position
    }
    headPublished_.store(head_, std::memory_order_release);
    return true;
}

bool Ingress::headReady() const noexcept {
    const std::uint64_t offset = (head_ >> kShift) % kLap;
    return headBlock_->slots[offset].ready.load(std::memory_order_seq_cst) != 0;
}

std::uint64_t Ingress::size() const noexcept {
    const std::uint64_t head = headPublished_.load(std::memory_order_acquire) >> kShift;
    const std::uint64_t tail = tail_.load(std::memory_order_acquire) >> kShift;
    const std::uint64_t t = countOf(tail), h = countOf(head);
    return t > h ? t - h : 0;
}

void Ingress::close() noexcept {
    tail_.fetch_or(kClosed, std::memory_order_seq_cst);
}

bool Ingress::drained() const noexcept {
    return countOf(tail_.load(std::memory_order_acquire) >> kShift) == countOf(head_ >> kShift);
}

void Ingress::releaseAll() noexcept {
    QueuedTask qt;
    unsigned spins = 0;
    while (!drained()) {
        if (pop(qt))
            qt.task.reset();
        else
            cpuRelax(spins); // a producer reserved a slot and is still writing it
    }
}

} // namespace libloop::detail
