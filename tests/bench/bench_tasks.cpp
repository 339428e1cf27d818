// Rows 1-4: task submission across threads and on the loop thread, and microtasks.
#include "adapters.h"
#include "harness.h"
#include "naive.h"

#include <libloop/loop.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace bench {
namespace {

// ---- rows 1, 2: `producers` threads submit n tasks in total; the loop thread (this one) runs
// them. Each producer ends with a task that counts finished producers; the last one stops the
// loop. The window spans from releasing the producers to run() returning.
//
// Warm-up (warm = true) first lets the producers queue everything and only then runs the loop:
// the queue reaches its largest possible depth once, so that a queue that keeps its storage
// (libloop's chunk pool) has all it will ever need in the measured repetitions.
template <class Impl> Sample crossThread(Impl& impl, int producers, std::uint64_t n, bool warm) {
    std::atomic<bool> go{false};
    std::uint64_t counter = 0; // loop thread only
    int done = 0;              // loop thread only
    const std::uint64_t per = n / static_cast<std::uint64_t>(producers);
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(producers));
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&impl, &go, &counter, &done, per, producers] {
            while (!go.load(std::memory_order_acquire))
                std::this_thread::yield();
            for (std::uint64_t i = 0; i < per; ++i)
                impl.post([c = &counter] { ++*c; });
            impl.post([&impl, &done, producers] {
                if (++done == producers)
                    impl.stop();
            });
        });
    }
    Sample s;
    if (warm) {
        go.store(true, std::memory_order_release);
        for (auto& t : threads)
            t.join();
        impl.run();
    } else {
        const double w0 = impl.wakes();
        Window w;
        w.start();
        go.store(true, std::memory_order_release);
        impl.run();
        s = w.stop(per * static_cast<std::uint64_t>(producers));
        if (w0 >= 0)
            s.syscalls = impl.wakes() - w0;
        for (auto& t : threads)
            t.join();
    }
    if (counter != per * static_cast<std::uint64_t>(producers))
        fail("cross-thread submit: tasks lost");
    return s;
}

// ---- row 3: tasks posted from a task on the loop thread, in batches of kBatch: a driver task
// posts kBatch small tasks and then itself again, so the queue stays short (steady state) and
// the per-iteration overhead is shared by kBatch tasks.
constexpr std::uint64_t kBatch = 256;

template <class Impl> struct BatchDriver {
    Impl& impl;
    std::uint64_t remaining;
    std::uint64_t counter = 0;
    void step() {
        const std::uint64_t k = std::min(kBatch, remaining);
        remaining -= k;
        for (std::uint64_t i = 0; i < k; ++i)
            impl.post([c = &counter] { ++*c; });
        if (remaining)
            impl.post([this] { step(); });
        else
            impl.post([this] { impl.stop(); });
    }
};

template <class Impl> Sample loopThread(Impl& impl, std::uint64_t n) {
    BatchDriver<Impl> d{impl, n};
    const double w0 = impl.wakes();
    Window w;
    w.start();
    impl.post([&d] { d.step(); });
    impl.run();
    Sample s = w.stop(n);
    if (w0 >= 0)
        s.syscalls = impl.wakes() - w0;
    if (d.counter != n)
        fail("loop-thread submit: tasks lost");
    return s;
}

// ---- row 4: a task queues kPerCheckpoint microtasks; the checkpoint after it runs them all
// (kPerCheckpoint is below the default budget and ring capacity, so neither the budget nor the
// overflow list is involved). Then the task re-submits itself.
constexpr std::uint64_t kPerCheckpoint = 1000;

struct MicrotaskDriver {
    libloop::Loop& loop;
    std::uint64_t remaining;
    std::uint64_t counter = 0;
    void step() {
        const std::uint64_t k = std::min(kPerCheckpoint, remaining);
        remaining -= k;
        for (std::uint64_t i = 0; i < k; ++i)
            must(loop.queueMicrotask([c = &counter] { ++*c; }), "queueMicrotask");
        if (remaining)
            must(loop.submitInternal([this] { step(); }), "submitInternal");
        else
            must(loop.submitInternal([this] { loop.stop(); }), "submitInternal");
    }
};

Sample libloopMicrotasks(libloop::Loop& loop, std::uint64_t n) {
    MicrotaskDriver d{loop, n};
    const auto w0 = loop.snapshot().wakeSyscalls;
    Window w;
    w.start();
    must(loop.submitInternal([&d] { d.step(); }), "submitInternal");
    must(loop.run(), "run");
    Sample s = w.stop(n);
    s.syscalls = static_cast<double>(loop.snapshot().wakeSyscalls - w0);
    if (d.counter != n)
        fail("microtasks lost");
    return s;
}

Sample naiveMicrotasks(NaiveMicrotasks& mq, std::uint64_t n) {
    std::uint64_t counter = 0;
    Window w;
    w.start();
    for (std::uint64_t remaining = n; remaining;) {
        const std::uint64_t k = std::min(kPerCheckpoint, remaining);
        remaining -= k;
        for (std::uint64_t i = 0; i < k; ++i)
            mq.queue([c = &counter] { ++*c; });
        mq.checkpoint();
    }
    Sample s = w.stop(n);
    if (counter != n)
        fail("naive microtasks lost");
    return s;
}

void crossRows(const Options& o, const Counts& c, Report& rep, const char* bench, int producers) {
    const auto n = c.submitCross;
    if (rep.wants(bench, names::kLibloop)) {
        RowGuard g(std::string(bench) + " / libloop");
        libloop::Loop loop;
        LibloopAdapter<false> a(loop);
        rep.add(makeRow(bench, names::kLibloop, "libloop", Role::Subject, true,
                        repeat(
                            o, [&] { crossThread(a, producers, n + n / 8 + 4096, true); },
                            [&] { return crossThread(a, producers, n, false); })));
    }
    if (rep.wants(bench, "naive A")) {
        RowGuard g(std::string(bench) + " / naive A");
        NaiveAdapter a;
        rep.add(makeRow(bench, "naive A", "naive", Role::Naive, false,
                        repeat(
                            o, [&] { crossThread(a, producers, n, true); },
                            [&] { return crossThread(a, producers, n, false); })));
    }
#ifdef BENCH_HAVE_ASIO
    if (rep.wants(bench, "asio post")) {
        RowGuard g(std::string(bench) + " / asio post");
        AsioAdapter a;
        rep.add(makeRow(bench, "asio post", "asio", Role::Peer, false,
                        repeat(
                            o, [&] { crossThread(a, producers, n, true); },
                            [&] { return crossThread(a, producers, n, false); })));
    }
#endif
}

} // namespace

// Shared with the metrics rows.
Sample libloopCrossThread(libloop::Loop& loop, int producers, std::uint64_t n, bool warm) {
    LibloopAdapter<false> a(loop);
    return crossThread(a, producers, warm ? n + n / 8 + 4096 : n, warm);
}
Sample libloopLoopThread(libloop::Loop& loop, std::uint64_t n) {
    LibloopAdapter<false> a(loop);
    return loopThread(a, n);
}

void benchTasks(const Options& o, const Counts& c, Report& rep) {
    crossRows(o, c, rep, names::kSubmit1, 1);
    crossRows(o, c, rep, names::kSubmit2, 2);

    // Row 3.
    const auto n = c.submitLoop;
    const char* b3 = names::kSubmitLoop;
    if (rep.wants(b3, "libloop submitInternal")) {
        RowGuard g(std::string(b3) + " / libloop submitInternal");
        libloop::Loop loop;
        LibloopAdapter<true> a(loop);
        rep.add(makeRow(b3, "libloop submitInternal", "libloop", Role::Subject, true,
                        repeat(
                            o, [&] { loopThread(a, n); }, [&] { return loopThread(a, n); })));
    }
    if (rep.wants(b3, "libloop submit")) {
        RowGuard g(std::string(b3) + " / libloop submit");
        libloop::Loop loop;
        LibloopAdapter<false> a(loop);
        rep.add(makeRow(b3, "libloop submit", "libloop", Role::Subject, true,
                        repeat(
                            o, [&] { loopThread(a, n); }, [&] { return loopThread(a, n); })));
    }
    if (rep.wants(b3, "naive A")) {
        RowGuard g(std::string(b3) + " / naive A");
        NaiveAdapter a;
        rep.add(makeRow(b3, "naive A", "naive", Role::Naive, false,
                        repeat(
                            o, [&] { loopThread(a, n); }, [&] { return loopThread(a, n); })));
    }
#ifdef BENCH_HAVE_ASIO
    if (rep.wants(b3, "asio post")) {
        RowGuard g(std::string(b3) + " / asio post");
        AsioAdapter a;
        rep.add(makeRow(b3, "asio post", "asio", Role::Peer, false,
                        repeat(
                            o, [&] { loopThread(a, n); }, [&] { return loopThread(a, n); })));
    }
#endif

    // Row 4.
    const auto m = c.microtasks;
    const char* b4 = names::kMicrotasks;
    if (rep.wants(b4, names::kLibloop)) {
        RowGuard g(std::string(b4) + " / libloop");
        libloop::Loop loop;
        rep.add(makeRow(b4, names::kLibloop, "libloop", Role::Subject, true,
                        repeat(
                            o, [&] { libloopMicrotasks(loop, m); },
                            [&] { return libloopMicrotasks(loop, m); })));
    }
    if (rep.wants(b4, "naive deque")) {
        RowGuard g(std::string(b4) + " / naive deque");
        NaiveMicrotasks mq;
        rep.add(makeRow(
            b4, "naive deque", "naive", Role::Naive, false,
            repeat(
                o, [&] { naiveMicrotasks(mq, m); }, [&] { return naiveMicrotasks(mq, m); })));
    }
}

} // namespace bench
