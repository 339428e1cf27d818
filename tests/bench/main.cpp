// bench_core: libloop's core benchmarks against naive baselines and peer libraries.
//
//   bench_core [--quick] [--filter SUBSTR] [--reps N]
//
// Prints one table: benchmark | impl | ops/s | ns/op | allocs/op | syscalls/op | ratio. Exit
// status: 0, or 1 when a libloop row that must not allocate in steady state did (a count, not a
// time: the only thing this binary judges), 2 when a libloop call failed, 3 when a row hung.
#include "alloc_counter.h"
#include "harness.h"
#include "loadavg.h"

#include <libloop/task.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#ifdef BENCH_HAVE_LIBUV
#include <uv.h>
#endif
#ifdef BENCH_HAVE_ASIO
#include <boost/version.hpp>
#endif

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

namespace {

void usage() {
    std::printf(
        "usage: bench_core [--quick] [--filter SUBSTR] [--reps N]\n"
        "  --quick         tiny counts (a smoke run; used by the CTest bench_core_smoke)\n"
        "  --filter SUBSTR run only rows whose \"benchmark / impl\" contains SUBSTR\n"
        "  --reps N        measured repetitions per row (default 3; the median is shown)\n");
}

// The allocation counter must see what it is meant to see, or every "0 allocs/op" is vacuous:
// operator new, malloc (when interposed), and a Task too large for its inline buffer.
void checkAllocationCounter() {
    static void* volatile sink = nullptr;
    const auto a0 = bench::allocationCount();
    sink = ::operator new(32);
    ::operator delete(sink);
    const auto a1 = bench::allocationCount();
    sink = std::malloc(32);
    std::free(sink);
    const auto a2 = bench::allocationCount();
    {
        std::array<char, 2 * libloop::Task::kInlineSize> big{};
        libloop::Task t([big] { sink = const_cast<char*>(big.data()); });
        if (t.isInline())
            bench::fail("self-check: an oversized Task claims to be inline");
    }
    const auto a3 = bench::allocationCount();
    if (a1 - a0 != 1 || (bench::countsMalloc() && a2 - a1 != 1) || a3 - a2 != 1)
        bench::fail("self-check: the allocation counter does not count (operator new " +
                    std::to_string(a1 - a0) + ", malloc " + std::to_string(a2 - a1) +
                    ", boxed Task " + std::to_string(a3 - a2) + ", expected 1 each)");
}

} // namespace

int main(int argc, char** argv) {
    bench::Options o;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) {
            o.quick = true;
        } else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) {
            o.filter = argv[++i];
        } else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
            o.reps = std::atoi(argv[++i]);
            if (o.reps < 1)
                o.reps = 1;
        } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
            usage();
            return 0;
        } else {
            usage();
            return 64;
        }
    }
    const auto c = bench::countsFor(o);
    checkAllocationCounter();

    std::printf("bench_core (%s build, %s mode): %u hardware threads, pinned rows use CPU %d, "
                "load average %s\n",
                BENCH_BUILD_TYPE, o.quick ? "quick" : "default",
                std::thread::hardware_concurrency(), bench::firstAllowedCpu(),
                loadAverage(1).c_str());
    std::printf("peers:");
#ifdef BENCH_HAVE_ASIO
    std::printf(" Boost.Asio %d.%d.%d", BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                BOOST_VERSION % 100);
#else
    std::printf(" (no Boost.Asio)");
#endif
#ifdef BENCH_HAVE_LIBUV
    std::printf(", libuv %s", uv_version_string());
#else
    std::printf(", (no libuv)");
#endif
    std::printf("; allocation counter: operator new%s\n",
                bench::countsMalloc() ? " + malloc family" : " only (sanitizer build)");
    std::printf(
        "counts: submit x-thread %llu, loop-thread %llu, microtasks %llu, timers %llu, "
        "cancel pairs %llu/%llu, ping-pong %llu (+%llu warm-up), snapshots %llu\n\n",
        static_cast<unsigned long long>(c.submitCross),
        static_cast<unsigned long long>(c.submitLoop),
        static_cast<unsigned long long>(c.microtasks), static_cast<unsigned long long>(c.timerFire),
        static_cast<unsigned long long>(c.cancelSmall),
        static_cast<unsigned long long>(c.cancelLarge), static_cast<unsigned long long>(c.pingN),
        static_cast<unsigned long long>(c.pingWarm), static_cast<unsigned long long>(c.snapshots));
    std::fflush(stdout);

    bench::watchdogStart();
    bench::Report report(o);
    report.setLargeActiveLabel(bench::activeLabel(c.activeLarge));
    const auto t0 = bench::Clock::now();
    bench::benchTasks(o, c, report);
    bench::benchTimers(o, c, report);
    bench::benchWakeup(o, c, report);
    bench::benchMetrics(o, c, report);
    const double total = std::chrono::duration<double>(bench::Clock::now() - t0).count();
    bench::watchdogStop();

    const int offenders = report.print();
    std::printf("\ntotal run time %.1f s; load average at the end %s (the machine is shared: "
                "compare rows of one run, not runs)\n",
                total, loadAverage(1).c_str());
    if (offenders) {
        std::printf("FAIL: %d libloop row(s) allocated in steady state\n", offenders);
        return 1;
    }
    return 0;
}
