// Row 7: cross-thread wake-up round trips (ping-pong between two threads), on two CPUs and with
// both threads pinned to one CPU (where the floor is a futex round trip, not the IPI latency).
#include "harness.h"

#include <libloop/loop.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef BENCH_HAVE_ASIO
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#endif

namespace bench {
namespace {

// Cuts one continuous ping-pong into a warm-up and `reps` measured segments of `per` round
// trips each. tick() is called by thread A after every round trip; false = finished.
struct Segments {
    std::uint64_t warm, per;
    int reps;
    std::vector<Sample> out;
    Window w;
    std::uint64_t count = 0;
    double sys0 = 0;

    template <class Wakes> bool tick(Wakes&& wakes) {
        ++count;
        if (count < warm || (count - warm) % per != 0)
            return true;
        const auto k = (count - warm) / per;
        if (k > 0) {
            Sample s = w.stop(per);
            const double now = wakes();
            if (now >= 0)
                s.syscalls = now - sys0;
            out.push_back(s);
        }
        if (k == static_cast<std::uint64_t>(reps))
            return false;
        sys0 = wakes();
        w.start();
        return true;
    }
};

void maybePin(bool pinned) {
    if (pinned && !pinCallingThreadToFirstCpu())
        fail("sched_setaffinity");
}

// ---- libloop: loop A and loop B, one thread each. A task on A submits to B a task that submits
// back to A the next round trip.
std::vector<Sample> libloopPingPong(const Options& o, const Counts& c, bool pinned) {
    libloop::Loop a, b;
    struct State {
        libloop::Loop& a;
        libloop::Loop& b;
        Segments seg;
        double wakes() const {
            return static_cast<double>(a.snapshot().wakeSyscalls + b.snapshot().wakeSyscalls);
        }
        void ping() {
            if (!seg.tick([this] { return wakes(); })) {
                a.stop();
                b.stop();
                return;
            }
            must(b.submit([this] { must(a.submit([this] { ping(); }), "submit to A"); }),
                 "submit to B");
        }
    } st{a, b, Segments{c.pingWarm, c.pingN, o.reps, {}, {}}};
    st.seg.out.reserve(static_cast<std::size_t>(o.reps));

    std::atomic<int> attached{0};
    std::thread tb([&] {
        maybePin(pinned);
        must(b.attachToCurrentThread(), "attachToCurrentThread (B)");
        attached.fetch_add(1);
        must(b.run(), "run (B)");
    });
    std::thread ta([&] {
        maybePin(pinned);
        must(a.attachToCurrentThread(), "attachToCurrentThread (A)");
        while (attached.load() == 0)
            std::this_thread::yield();
        must(a.submit([&st] { st.ping(); }), "submit (kick)");
        must(a.run(), "run (A)");
    });
    ta.join();
    tb.join();
    return std::move(st.seg.out);
}

// ---- naive: two mailboxes, each a mutex + condition variable + flag.
struct Mailbox {
    std::mutex m;
    std::condition_variable cv;
    bool full = false;
    bool quit = false;
    void put() {
        {
            std::lock_guard l(m);
            full = true;
        }
        cv.notify_one();
    }
    void close() {
        {
            std::lock_guard l(m);
            quit = true;
        }
        cv.notify_one();
    }
    bool take() {
        std::unique_lock l(m);
        cv.wait(l, [this] { return full || quit; });
        if (!full)
            return false;
        full = false;
        return true;
    }
};

std::vector<Sample> naivePingPong(const Options& o, const Counts& c, bool pinned) {
    Mailbox toA, toB;
    Segments seg{c.pingWarm, c.pingN, o.reps, {}, {}};
    seg.out.reserve(static_cast<std::size_t>(o.reps));
    std::thread tb([&] {
        maybePin(pinned);
        while (toB.take())
            toA.put();
    });
    std::thread ta([&] {
        maybePin(pinned);
        for (;;) {
            toB.put();
            toA.take();
            if (!seg.tick([] { return -1.0; }))
                break;
        }
        toB.close();
    });
    ta.join();
    tb.join();
    return std::move(seg.out);
}

#ifdef BENCH_HAVE_ASIO
std::vector<Sample> asioPingPong(const Options& o, const Counts& c, bool pinned) {
    namespace asio = boost::asio;
    asio::io_context ca(1), cb(1);
    auto ga = asio::make_work_guard(ca);
    auto gb = asio::make_work_guard(cb);
    struct State {
        asio::io_context& ca;
        asio::io_context& cb;
        Segments seg;
        void ping() {
            if (!seg.tick([] { return -1.0; })) {
                ca.stop();
                cb.stop();
                return;
            }
            asio::post(cb, [this] { asio::post(ca, [this] { ping(); }); });
        }
    } st{ca, cb, Segments{c.pingWarm, c.pingN, o.reps, {}, {}}};
    st.seg.out.reserve(static_cast<std::size_t>(o.reps));
    asio::post(ca, [&st] { st.ping(); });
    std::thread tb([&] {
        maybePin(pinned);
        cb.run();
    });
    std::thread ta([&] {
        maybePin(pinned);
        ca.run();
    });
    ta.join();
    tb.join();
    return std::move(st.seg.out);
}
#endif

void pingRows(const Options& o, const Counts& c, Report& rep, const char* bench, bool pinned) {
    if (rep.wants(bench, names::kLibloop)) {
        RowGuard g(std::string(bench) + " / libloop");
        rep.add(makeRow(bench, names::kLibloop, "libloop", Role::Subject, true,
                        libloopPingPong(o, c, pinned)));
    }
    if (rep.wants(bench, "naive condvar")) {
        RowGuard g(std::string(bench) + " / naive condvar");
        rep.add(makeRow(bench, "naive condvar", "naive", Role::Naive, false,
                        naivePingPong(o, c, pinned)));
    }
#ifdef BENCH_HAVE_ASIO
    if (rep.wants(bench, "asio post")) {
        RowGuard g(std::string(bench) + " / asio post");
        rep.add(makeRow(bench, "asio post", "asio", Role::Peer, false, asioPingPong(o, c, pinned)));
    }
#endif
}

} // namespace

void benchWakeup(const Options& o, const Counts& c, Report& rep) {
    pingRows(o, c, rep, names::kPingPong, false);
    pingRows(o, c, rep, names::kPingPongPinned, true);
}

} // namespace bench
