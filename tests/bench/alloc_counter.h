// Heap-allocation counting for the benchmark binary.
//
// alloc_counter.cpp replaces the global operator new (every variant: plain, array, aligned,
// nothrow) and, when no sanitizer is active, interposes malloc, calloc, realloc and the aligned
// allocators too, so allocations made through the C API (by libloop, libuv, asio or the standard
// library) are counted as well. Every replacement forwards to glibc's own allocator: the memory
// is the same as without the counter, only the number of calls is recorded.
//
// The counter is process-wide (one relaxed atomic): a benchmark reads it before and after its
// measured window, so allocations by every thread that takes part are included.
#pragma once

#include <cstdint>

namespace bench {

// Allocation calls so far (operator new of every kind, malloc, calloc, realloc, aligned allocs).
std::uint64_t allocationCount() noexcept;

// False when the malloc family could not be interposed (a sanitizer owns it): then only
// operator new is counted.
bool countsMalloc() noexcept;

} // namespace bench
