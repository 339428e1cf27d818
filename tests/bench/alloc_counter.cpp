#include "alloc_counter.h"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <malloc.h>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(__SANITIZE_MEMORY__)
#define BENCH_INTERPOSE_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define BENCH_INTERPOSE_MALLOC 0
#endif
#endif
#ifndef BENCH_INTERPOSE_MALLOC
#define BENCH_INTERPOSE_MALLOC 1
#endif

namespace {

std::atomic<std::uint64_t> g_allocations{0};

inline void countOne() noexcept {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

#if BENCH_INTERPOSE_MALLOC
// glibc's own allocator entry points (exported since 2.2.5). The replacements below forward to
// them, so memory from any entry point may be released through any other, as with plain glibc.
extern "C" {
void* __libc_malloc(std::size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* ptr, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void* __libc_valloc(std::size_t size);
}

namespace {
inline void* rawAlloc(std::size_t size) noexcept {
    return __libc_malloc(size);
}
inline void* rawAlignedAlloc(std::size_t alignment, std::size_t size) noexcept {
    return __libc_memalign(alignment, size);
}
inline void rawFree(void* ptr) noexcept {
    __libc_free(ptr);
}
} // namespace

extern "C" {
void* malloc(std::size_t size) noexcept {
    countOne();
    return __libc_malloc(size);
}
void free(void* ptr) noexcept {
    __libc_free(ptr);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
    countOne();
    return __libc_calloc(count, size);
}
void* realloc(void* ptr, std::size_t size) noexcept {
    countOne();
    return __libc_realloc(ptr, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept {
    countOne();
    return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
    countOne();
    return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
    if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    countOne();
    void* p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
void* valloc(std::size_t size) noexcept {
    countOne();
    return __libc_valloc(size);
}
} // extern "C"
#else
namespace {
inline void* rawAlloc(std::size_t size) noexcept {
    return std::malloc(size);
}
inline void* rawAlignedAlloc(std::size_t alignment, std::size_t size) noexcept {
    // aligned_alloc wants a size that is a multiple of the alignment.
    return std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}
inline void rawFree(void* ptr) noexcept {
    std::free(ptr);
}
} // namespace
#endif

namespace {
void* countedNew(std::size_t size) noexcept {
    countOne();
    return rawAlloc(size ? size : 1);
}
void* countedAlignedNew(std::size_t size, std::align_val_t al) noexcept {
    countOne();
    auto a = static_cast<std::size_t>(al);
    if (a < sizeof(void*))
        a = sizeof(void*);
    return rawAlignedAlloc(a, size ? size : 1);
}
} // namespace

namespace bench {
std::uint64_t allocationCount() noexcept {
    return g_allocations.load(std::memory_order_relaxed);
}
bool countsMalloc() noexcept {
    return BENCH_INTERPOSE_MALLOC != 0;
}
} // namespace bench

// ---- global operator new / delete: every replaceable variant ----

void* operator new(std::size_t size) {
    if (void* p = countedNew(size))
        return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    if (void* p = countedNew(size))
        return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    return countedNew(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    return countedNew(size);
}
void* operator new(std::size_t size, std::align_val_t al) {
    if (void* p = countedAlignedNew(size, al))
        return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t al) {
    if (void* p = countedAlignedNew(size, al))
        return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
    return countedAlignedNew(size, al);
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
    return countedAlignedNew(size, al);
}

void operator delete(void* p) noexcept {
    rawFree(p);
}
void operator delete[](void* p) noexcept {
    rawFree(p);
}
void operator delete(void* p, std::size_t) noexcept {
    rawFree(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    rawFree(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    rawFree(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    rawFree(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    rawFree(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    rawFree(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    rawFree(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    rawFree(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    rawFree(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    rawFree(p);
}
