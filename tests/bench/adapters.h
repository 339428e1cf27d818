// One small interface over every implementation a task benchmark drives, so that each benchmark
// body is written once:
//   post(f)  queue a task (from any thread for the cross-thread rows, from a task otherwise);
//   stop()   from a task: make run() return;
//   run()    on the consumer ("loop") thread: run tasks until stop();
//   wakes()  wake-up syscalls so far, or -1 when the implementation cannot tell.
#pragma once

#include "harness.h"
#include "naive.h"

#include <libloop/loop.h>

#include <utility>

#ifdef BENCH_HAVE_ASIO
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#endif

namespace bench {

// Internal = true: submitInternal (loop thread only); false: submit.
template <bool Internal> class LibloopAdapter {
public:
    explicit LibloopAdapter(libloop::Loop& loop) : loop_(loop) {}
    template <class F> void post(F&& f) {
        if constexpr (Internal)
            must(loop_.submitInternal(std::forward<F>(f)), "submitInternal");
        else
            must(loop_.submit(std::forward<F>(f)), "submit");
    }
    void stop() { loop_.stop(); }
    void run() { must(loop_.run(), "run"); }
    double wakes() const { return static_cast<double>(loop_.snapshot().wakeSyscalls); }
    libloop::Loop& loop() { return loop_; }

private:
    libloop::Loop& loop_;
};

class NaiveAdapter {
public:
    template <class F> void post(F&& f) { q_.post(std::function<void()>(std::forward<F>(f))); }
    void stop() { q_.stop(); }
    void run() { q_.run(); }
    double wakes() const { return -1; }

private:
    NaiveTaskQueue q_;
};

#ifdef BENCH_HAVE_ASIO
// One io_context run by one thread (concurrency hint 1, asio's setting for exactly that), kept
// alive between runs by a work guard.
class AsioAdapter {
public:
    AsioAdapter() : ioc_(1), guard_(boost::asio::make_work_guard(ioc_)) {}
    template <class F> void post(F&& f) { boost::asio::post(ioc_, std::forward<F>(f)); }
    void stop() { ioc_.stop(); }
    void run() {
        ioc_.restart();
        ioc_.run();
    }
    double wakes() const { return -1; }
    boost::asio::io_context& context() { return ioc_; }

private:
    boost::asio::io_context ioc_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
};
#endif

} // namespace bench
