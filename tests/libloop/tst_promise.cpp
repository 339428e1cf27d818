// Tests for libloop::Promise<T> (promise.h): the Promise/A+ specification clause by clause
// (https://promisesaplus.com; the tests are named clause_2_x_y_...), ECMAScript's job order,
// finally, the combinators, HTML's rejection tracking (unhandledrejection / rejectionhandled),
// memory (a settled promise holds no closure), re-entrancy, threads and bad input.
//
// The expected job orders (es_job_order_*) were derived from ECMAScript (PerformPromiseThen,
// NewPromiseReactionJob, NewPromiseResolveThenableJob, Promise.prototype.finally) and cross-checked
// by running the same chains in node.
//
// No assertion depends on wall-clock time: waits are bounded by a generous deadline only to avoid
// hanging when something is broken.
#include <libloop/promise.h>

#include <QTest>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <unistd.h>

#include "testsupport.h"

using namespace std::chrono_literals;
using namespace testsupport;
using libloop::AggregateError;
using libloop::CallbackKind;
using libloop::kForever;
using libloop::Loop;
using libloop::LoopOptions;
using libloop::makePromise;
using libloop::Promise;
using libloop::PromiseState;
using libloop::PromiseTypeError;
using libloop::rejectedPromise;
using libloop::RejectionEvent;
using libloop::RejectionInfo;
using libloop::resolvedPromise;
using libloop::Resolver;
using libloop::Settled;

namespace libloop {
inline char* toString(PromiseState s) {
    return qstrdup(promiseStateName(s));
}
} // namespace libloop

namespace {

// Iterates (never waiting) until an iteration starts no callback: every microtask, task and
// reaction that was ready has run.
bool drain(Loop& loop) {
    for (int i = 0; i < 100000; ++i) {
        const auto r = loop.runOnce(0ns);
        if (!r.ok())
            return false;
        if (r.value() == 0)
            return true;
    }
    return false;
}

QString qs(const std::string& s) {
    return QString::fromStdString(s);
}

QString joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : " ") + x;
    return qs(s);
}

std::vector<int> iota(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i)
        v.push_back(i);
    return v;
}

std::exception_ptr error(const char* what) {
    return std::make_exception_ptr(std::runtime_error(what));
}

// True when `e` holds an exception whose dynamic type is exactly E.
template <class E> bool isExactly(const std::exception_ptr& e) {
    if (!e)
        return false;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return typeid(ex) == typeid(E);
    } catch (...) {
        return false;
    }
}

// what() of the exception held by `e` ("<null>" / "<non-std>" otherwise).
QString whatOf(const std::exception_ptr& e) {
    if (!e)
        return QStringLiteral("<null>");
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return QString::fromUtf8(ex.what());
    } catch (...) {
        return QStringLiteral("<non-std>");
    }
}

// What f() threw (null if nothing).
template <class F> std::exception_ptr thrownBy(F&& f) {
    try {
        f();
    } catch (...) {
        return std::current_exception();
    }
    return nullptr;
}

// Counts the live instances of objects captured by handlers (constructions minus destructions).
struct Counter {
    std::atomic<int> made{0};
    std::atomic<int> destroyed{0};
    int live() const { return made.load() - destroyed.load(); }
};
struct Counted {
    Counter* c;
    explicit Counted(Counter* counter) : c(counter) { c->made.fetch_add(1); }
    Counted(const Counted& o) : c(o.c) { c->made.fetch_add(1); }
    Counted& operator=(const Counted&) = delete;
    ~Counted() { c->destroyed.fetch_add(1); }
};

// Records what the loop's rejection hook reports (and keeps stderr quiet).
struct Rejections {
    std::vector<RejectionInfo> events;
    explicit Rejections(Loop& loop) {
        libloop::setRejectionHook(loop, [this](const RejectionInfo& i) { events.push_back(i); });
    }
    // "Unhandled:<id> HandledLater:<id> ..."
    QString summary() const {
        std::vector<std::string> v;
        for (const auto& e : events)
            v.push_back(
                std::string(e.event == RejectionEvent::Unhandled ? "Unhandled:" : "HandledLater:") +
                std::to_string(e.promiseId));
        return joined(v);
    }
};

QString ev(const char* event, std::uint64_t id) {
    return QStringLiteral("%1:%2").arg(QLatin1String(event)).arg(id);
}

// resolvedPromise(loop).then(log n1).then(log n2)...: a chain of plain reactions, one per tick.
void logChain(Loop& loop, std::vector<std::string>& log, const std::vector<std::string>& names) {
    Promise<void> p = resolvedPromise(loop);
    for (const auto& n : names)
        p = p.then([&log, n] { log.push_back(n); });
}

int threadCount() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("Threads:", 0) == 0)
            return std::stoi(line.substr(8));
    return -1;
}

// Redirects fd 2 to a temporary file until finish().
class StderrCapture {
public:
    StderrCapture() {
        std::fflush(stderr);
        saved_ = ::dup(2);
        file_ = std::tmpfile();
        if (file_ && saved_ >= 0)
            ::dup2(::fileno(file_), 2);
    }
    ~StderrCapture() { (void)finish(); }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;
    bool ok() const { return file_ && saved_ >= 0; }
    // Restores stderr; answers what was written meanwhile.
    std::string finish() {
        std::string out;
        if (saved_ < 0)
            return out;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
        if (file_) {
            std::rewind(file_);
            char buf[512];
            std::size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0)
                out.append(buf, n);
            std::fclose(file_);
            file_ = nullptr;
        }
        return out;
    }

private:
    int saved_ = -1;
    std::FILE* file_ = nullptr;
};

template <class P> constexpr bool hasValue = requires(const P& p) {
    p.value();
};

// A type with a member named `then`: in C++ it is a plain value, not a thenable.
struct LooksLikeThenable {
    int* thenCalls = nullptr;
    int payload = 0;
    template <class F> void then(F&&) const { ++*thenCalls; }
};

struct TaggedError : std::runtime_error {
    int tag;
    TaggedError(const char* what, int t) : std::runtime_error(what), tag(t) {}
};

int tagOf(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const TaggedError& t) {
        return t.tag;
    } catch (...) {
        return -1;
    }
}

} // namespace

class tst_Promise : public QObject {
    Q_OBJECT

private slots:
    // ---- 2.1 Promise states ----
    void clause_2_1_1_pending_may_become_fulfilled_or_rejected();
    void clause_2_1_2_fulfilled_must_not_transition_nor_change_value();
    void clause_2_1_3_rejected_must_not_transition_nor_change_reason();
    // ---- 2.2 The then method ----
    void clause_2_2_1_1_onFulfilled_omitted_catch_only();
    void clause_2_2_1_2_onRejected_omitted_then_with_one_argument();
    void clause_2_2_2_1_onFulfilled_called_after_fulfilled_with_value();
    void clause_2_2_2_2_onFulfilled_not_called_before_fulfilled();
    void clause_2_2_2_3_onFulfilled_called_at_most_once();
    void clause_2_2_3_1_onRejected_called_after_rejected_with_reason();
    void clause_2_2_3_2_onRejected_not_called_before_rejected();
    void clause_2_2_3_3_onRejected_called_at_most_once();
    void clause_2_2_4_not_called_synchronously_from_then();
    void clause_2_2_4_not_called_synchronously_from_resolve();
    void clause_2_2_4_not_called_synchronously_outside_callbacks();
    // 2.2.5 (onFulfilled/onRejected called as functions, with no `this`) has no meaning in C++: a
    // handler is any callable, invoked with std::invoke. No test.
    void clause_2_2_6_1_onFulfilled_handlers_run_once_in_then_order();
    void clause_2_2_6_1_throwing_onFulfilled_does_not_stop_the_others();
    void clause_2_2_6_2_onRejected_handlers_run_once_in_then_order();
    void clause_2_2_6_2_throwing_onRejected_does_not_stop_the_others();
    void clause_2_2_7_then_returns_a_new_promise();
    void clause_2_2_7_1_returned_value_fulfils_derived();
    void clause_2_2_7_2_thrown_exception_rejects_derived();
    void clause_2_2_7_3_onFulfilled_absent_derived_fulfilled_with_same_value();
    void clause_2_2_7_4_onRejected_absent_derived_rejected_with_same_reason();
    // ---- 2.3 The promise resolution procedure ----
    void clause_2_3_1_handler_returning_its_own_promise_rejects_with_TypeError();
    void clause_2_3_1_resolver_resolving_with_its_own_promise_rejects_with_TypeError();
    void clause_2_3_2_1_adopting_pending_promise_stays_pending();
    void clause_2_3_2_2_adopted_promise_fulfilled_later_fulfils_with_same_value();
    void clause_2_3_2_3_adopted_promise_rejected_later_rejects_with_same_reason();
    void clause_2_3_2_adopting_already_settled_promise();
    void clause_2_3_2_resolver_adopts_promise_and_is_locked_in();
    void clause_2_3_2_adoption_is_recursive();
    void clause_2_3_2_adopting_empty_promise_rejects_with_TypeError();
    void clause_2_3_3_and_2_3_4_plain_value_fulfils();
    // ---- ECMAScript job order ----
    void es_job_order_two_chains_interleave();
    void es_job_order_returning_a_plain_value_takes_no_extra_tick();
    void es_job_order_adopting_a_fulfilled_promise_takes_two_extra_ticks();
    void es_job_order_adopting_a_pending_promise();
    void es_job_order_resolver_adopting_a_fulfilled_promise();
    void es_job_order_rejection_passes_through_one_tick_per_then();
    void es_job_order_finally();
    void es_job_order_finally_returning_a_promise();
    void es_executor_throw_rejects_unless_resolved();
    void then_deduces_the_derived_type();
    // ---- re-entrancy ----
    void reentrancy_then_inside_a_handler();
    void reentrancy_resolving_another_promise_inside_a_handler();
    void reentrancy_throwing_handler_rejects_derived_not_error_hook();
    // ---- finally ----
    void finally_passes_value_through();
    void finally_passes_rejection_through();
    void finally_throwing_replaces_outcome();
    void finally_returned_promise_delays_outcome();
    void finally_returned_promise_rejection_replaces_outcome();
    void finally_on_void_promise();
    // ---- combinators ----
    void all_fulfils_with_values_in_input_order();
    void all_rejects_with_first_rejection();
    void all_of_nothing_and_of_void();
    void allSettled_reports_every_outcome_in_input_order();
    void race_settles_like_first_to_settle();
    void race_of_nothing_stays_pending();
    void any_fulfils_with_first_fulfilment();
    void any_all_rejected_AggregateError_in_input_order();
    void any_of_nothing_rejects_with_AggregateError();
    void combinators_start_no_thread();
    // ---- unhandled rejections ----
    void rejection_unhandled_at_checkpoint_end_is_reported();
    void rejection_handled_in_same_callback_is_not_reported();
    void rejection_handled_in_later_microtask_of_same_checkpoint_is_not_reported();
    void rejection_handled_after_budget_cut_checkpoint_is_not_reported();
    void rejection_handled_later_reports_HandledLater_from_a_task();
    void rejection_of_derived_promise_is_reported_not_the_source();
    void rejection_of_adopted_promise_is_handled_by_adoption();
    void rejection_from_other_thread_is_reported();
    void rejection_hook_exception_is_swallowed();
    void rejection_default_hook_prints_one_line_per_event();
    // ---- memory ----
    void memory_settled_promise_releases_every_handler();
    void memory_rejected_promise_releases_every_handler();
    void memory_10k_handlers_run_once_in_order_and_are_released();
    void memory_loop_close_releases_queued_reactions();
    void memory_closed_loop_pending_promise_never_runs_handlers();
    void memory_shutdown_runs_queued_reactions();
    // ---- threads ----
    void thread_resolve_wakes_sleeping_loop();
    void thread_resolver_adopts_from_other_thread();
    void thread_racing_resolvers_exactly_one_wins();
    void thread_resolver_after_loop_destroyed_returns_false();
    void thread_resolvers_racing_loop_destruction();
    void thread_then_from_other_thread_runs_on_loop_thread();
    // ---- bad input ----
    void bad_empty_promise_throws_invalid_argument();
    void bad_reject_with_null_exception_ptr_rejects_with_invalid_argument();
    void bad_reject_with_nullptr_literal_rejects_with_invalid_argument();
    void bad_value_of_non_fulfilled_promise_throws_logic_error();
    void bad_default_resolver_answers_false();
};

// ================================ 2.1 Promise states ================================

void tst_Promise::clause_2_1_1_pending_may_become_fulfilled_or_rejected() {
    Loop loop;
    Rejections rej(loop);
    auto a = makePromise<int>(loop);
    auto b = makePromise<int>(loop);
    QCOMPARE(a.promise.state(), PromiseState::Pending);
    QCOMPARE(b.promise.state(), PromiseState::Pending);
    QVERIFY(drain(loop));
    QCOMPARE(a.promise.state(), PromiseState::Pending); // nothing settles a promise by itself
    QCOMPARE(b.promise.state(), PromiseState::Pending);
    QVERIFY(a.resolver.resolve(1));
    QVERIFY(b.resolver.reject(std::runtime_error("b")));
    QVERIFY(drain(loop));
    QCOMPARE(a.promise.state(), PromiseState::Fulfilled);
    QCOMPARE(a.promise.value(), 1);
    QVERIFY(!a.promise.reason());
    QCOMPARE(b.promise.state(), PromiseState::Rejected);
    QCOMPARE(whatOf(b.promise.reason()), QStringLiteral("b"));
}

void tst_Promise::clause_2_1_2_fulfilled_must_not_transition_nor_change_value() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    Resolver<int> copy = pr.resolver; // every copy resolves the same promise
    int fulfilled = 0, rejected = 0, seen = -1;
    (void)pr.promise.then(
        [&](int v) {
            ++fulfilled;
            seen = v;
        },
        [&](std::exception_ptr) { ++rejected; });
    QVERIFY(pr.resolver.resolve(1));
    QVERIFY(!pr.resolver.resolve(2));
    QVERIFY(!copy.resolve(3));
    QVERIFY(!copy.resolve(resolvedPromise<int>(loop, 4)));
    QVERIFY(!pr.resolver.reject(std::runtime_error("late")));
    QVERIFY(!copy.reject(std::exception_ptr{}));
    QVERIFY(drain(loop));
    bool lateFromTask = true;
    QVERIFY(
        loop.submit([&] { lateFromTask = pr.resolver.reject(error("late")) || copy.resolve(5); })
            .ok());
    QVERIFY(drain(loop));
    QVERIFY(!lateFromTask);
    QCOMPARE(pr.promise.state(), PromiseState::Fulfilled);
    QCOMPARE(pr.promise.value(), 1);
    QCOMPARE(fulfilled, 1);
    QCOMPARE(rejected, 0);
    QCOMPARE(seen, 1);
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::clause_2_1_3_rejected_must_not_transition_nor_change_reason() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    const auto e1 = error("first");
    int fulfilled = 0, rejected = 0;
    std::exception_ptr seen;
    (void)pr.promise.then([&](int) { ++fulfilled; },
                          [&](std::exception_ptr e) {
                              ++rejected;
                              seen = e;
                          });
    QVERIFY(pr.resolver.reject(e1));
    QVERIFY(!pr.resolver.reject(error("second")));
    QVERIFY(!pr.resolver.resolve(1));
    QVERIFY(!pr.resolver.resolve(resolvedPromise<int>(loop, 2)));
    QVERIFY(drain(loop));
    QCOMPARE(pr.promise.state(), PromiseState::Rejected);
    QVERIFY(pr.promise.reason() == e1);
    QCOMPARE(rejected, 1);
    QCOMPARE(fulfilled, 0);
    QVERIFY(seen == e1);
    QCOMPARE(rej.summary(), QString());
}

// ================================ 2.2 then ================================

void tst_Promise::clause_2_2_1_1_onFulfilled_omitted_catch_only() {
    Loop loop;
    auto ok = makePromise<int>(loop);
    auto bad = makePromise<int>(loop);
    int calls = 0;
    auto d1 = ok.promise.catch_([&](std::exception_ptr) {
        ++calls;
        return -1;
    });
    auto d2 = bad.promise.catch_([&](std::exception_ptr e) {
        ++calls;
        return whatOf(e) == QStringLiteral("bad") ? 42 : -2;
    });
    QVERIFY(ok.resolver.resolve(5));
    QVERIFY(bad.resolver.reject(std::runtime_error("bad")));
    QVERIFY(drain(loop));
    QCOMPARE(d1.state(), PromiseState::Fulfilled);
    QCOMPARE(d1.value(), 5);
    QCOMPARE(d2.state(), PromiseState::Fulfilled);
    QCOMPARE(d2.value(), 42);
    QCOMPARE(calls, 1);
}

void tst_Promise::clause_2_2_1_2_onRejected_omitted_then_with_one_argument() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    const auto e = error("r");
    int calls = 0;
    auto d = pr.promise.then([&](int) {
        ++calls;
        return 1;
    });
    QVERIFY(pr.resolver.reject(e));
    QVERIFY(drain(loop));
    QCOMPARE(calls, 0);
    QCOMPARE(d.state(), PromiseState::Rejected);
    QVERIFY(d.reason() == e);
}

void tst_Promise::clause_2_2_2_1_onFulfilled_called_after_fulfilled_with_value() {
    Loop loop;
    auto pr = makePromise<std::string>(loop);
    std::vector<std::string> got;
    std::vector<const std::string*> addresses;
    for (int i = 0; i < 2; ++i)
        (void)pr.promise.then([&](const std::string& v) {
            got.push_back(v);
            addresses.push_back(&v);
        });
    QVERIFY(drain(loop));
    QVERIFY(got.empty());
    QVERIFY(pr.resolver.resolve(std::string("value")));
    QVERIFY(drain(loop));
    QCOMPARE(joined(got), QStringLiteral("value value"));
    // Handlers receive the promise's own value (shared, not a copy each).
    QCOMPARE(int(addresses.size()), 2);
    QVERIFY(addresses[0] == &pr.promise.value());
    QVERIFY(addresses[1] == &pr.promise.value());
}

void tst_Promise::clause_2_2_2_2_onFulfilled_not_called_before_fulfilled() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    auto never = makePromise<int>(loop);
    int calls = 0, callsWhenResolving = -1, callsRightAfterResolve = -1, neverCalls = 0;
    (void)pr.promise.then([&](int) { ++calls; });
    (void)never.promise.then([&](int) { ++neverCalls; }, [](std::exception_ptr) {});
    for (int i = 0; i < 3; ++i)
        QVERIFY(drain(loop));
    QCOMPARE(calls, 0);
    QVERIFY(loop.submit([&] {
                    callsWhenResolving = calls;
                    (void)pr.resolver.resolve(1);
                    callsRightAfterResolve = calls;
                })
                .ok());
    QVERIFY(never.resolver.reject(std::runtime_error("rejected, not fulfilled")));
    QVERIFY(drain(loop));
    QCOMPARE(callsWhenResolving, 0);
    QCOMPARE(callsRightAfterResolve, 0);
    QCOMPARE(calls, 1);
    QCOMPARE(neverCalls, 0);
}

void tst_Promise::clause_2_2_2_3_onFulfilled_called_at_most_once() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    int calls = 0;
    bool resolvedAgainInside = true, rejectedInside = true;
    (void)pr.promise.then([&](int) {
        ++calls;
        resolvedAgainInside = pr.resolver.resolve(2); // re-entrant: ignored
        rejectedInside = pr.resolver.reject(error("x"));
    });
    QVERIFY(pr.resolver.resolve(1));
    QVERIFY(!pr.resolver.resolve(1));
    for (int i = 0; i < 3; ++i)
        QVERIFY(drain(loop));
    QCOMPARE(calls, 1);
    QVERIFY(!resolvedAgainInside);
    QVERIFY(!rejectedInside);
    QCOMPARE(pr.promise.state(), PromiseState::Fulfilled);
}

void tst_Promise::clause_2_2_3_1_onRejected_called_after_rejected_with_reason() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    const auto e = std::make_exception_ptr(TaggedError("tagged", 7));
    std::vector<std::exception_ptr> got;
    (void)pr.promise.then([](int) {}, [&](std::exception_ptr r) { got.push_back(r); });
    (void)pr.promise.catch_([&](std::exception_ptr r) {
        got.push_back(r);
        return 0;
    });
    QVERIFY(drain(loop));
    QVERIFY(got.empty());
    QVERIFY(pr.resolver.reject(e));
    QVERIFY(drain(loop));
    QCOMPARE(int(got.size()), 2);
    QVERIFY(got[0] == e); // the very exception object, not a copy
    QVERIFY(got[1] == e);
    QCOMPARE(tagOf(got[0]), 7);
}

void tst_Promise::clause_2_2_3_2_onRejected_not_called_before_rejected() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    auto fulfilled = makePromise<int>(loop);
    int calls = 0, callsRightAfterReject = -1, fulfilledCalls = 0;
    (void)pr.promise.catch_([&](std::exception_ptr) {
        ++calls;
        return 0;
    });
    (void)fulfilled.promise.catch_([&](std::exception_ptr) {
        ++fulfilledCalls;
        return 0;
    });
    for (int i = 0; i < 3; ++i)
        QVERIFY(drain(loop));
    QCOMPARE(calls, 0);
    QVERIFY(loop.submit([&] {
                    (void)pr.resolver.reject(error("r"));
                    callsRightAfterReject = calls;
                })
                .ok());
    QVERIFY(fulfilled.resolver.resolve(1));
    QVERIFY(drain(loop));
    QCOMPARE(callsRightAfterReject, 0);
    QCOMPARE(calls, 1);
    QCOMPARE(fulfilledCalls, 0);
}

void tst_Promise::clause_2_2_3_3_onRejected_called_at_most_once() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    int calls = 0;
    bool againInside = true;
    (void)pr.promise.catch_([&](std::exception_ptr) {
        ++calls;
        againInside = pr.resolver.reject(error("again")) || pr.resolver.resolve(1);
        return 0;
    });
    QVERIFY(pr.resolver.reject(error("r")));
    QVERIFY(!pr.resolver.reject(error("r2")));
    for (int i = 0; i < 3; ++i)
        QVERIFY(drain(loop));
    QCOMPARE(calls, 1);
    QVERIFY(!againInside);
}

void tst_Promise::clause_2_2_4_not_called_synchronously_from_then() {
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    auto p = resolvedPromise<int>(loop, 1);
                    auto q = rejectedPromise<int>(loop, error("r"));
                    log.push_back("then");
                    (void)p.then([&](int) { log.push_back("onFulfilled"); });
                    (void)q.then([&](int) { log.push_back("wrong"); },
                                 [&](std::exception_ptr) { log.push_back("onRejected"); });
                    log.push_back("task-end");
                })
                .ok());
    QVERIFY(loop.submit([&] { log.push_back("next-task"); }).ok());
    QVERIFY(drain(loop));
    // The handlers run once only platform code is on the stack: after the task, before the next.
    QCOMPARE(joined(log), QStringLiteral("then task-end onFulfilled onRejected next-task"));
}

void tst_Promise::clause_2_2_4_not_called_synchronously_from_resolve() {
    Loop loop;
    std::vector<std::string> log;
    auto a = makePromise<int>(loop);
    auto b = makePromise<int>(loop);
    (void)a.promise.then([&](int) { log.push_back("onFulfilled"); });
    (void)b.promise.catch_([&](std::exception_ptr) {
        log.push_back("onRejected");
        return 0;
    });
    QVERIFY(loop.submit([&] {
                    log.push_back("resolve");
                    (void)a.resolver.resolve(1);
                    log.push_back("reject");
                    (void)b.resolver.reject(error("r"));
                    log.push_back("task-end");
                })
                .ok());
    QVERIFY(loop.submit([&] { log.push_back("next-task"); }).ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log),
             QStringLiteral("resolve reject task-end onFulfilled onRejected next-task"));
}

void tst_Promise::clause_2_2_4_not_called_synchronously_outside_callbacks() {
    // The test body is the loop thread but not inside any callback: nothing runs until runOnce.
    Loop loop;
    auto pr = makePromise<int>(loop);
    int calls = 0;
    (void)pr.promise.then([&](int) { ++calls; });
    QVERIFY(pr.resolver.resolve(1));
    auto settled = resolvedPromise<int>(loop, 2);
    (void)settled.then([&](int) { ++calls; });
    QCOMPARE(calls, 0);
    QVERIFY(drain(loop));
    QCOMPARE(calls, 2);
}

void tst_Promise::clause_2_2_6_1_onFulfilled_handlers_run_once_in_then_order() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    std::vector<std::string> log;
    auto note = [&log](const char* who, int v) { log.push_back(who + std::to_string(v)); };
    (void)pr.promise.then([&](int v) { note("a", v); });
    (void)pr.promise.then([&](int v) { note("b", v); }, [&](std::exception_ptr) { note("x", 0); });
    (void)pr.promise.catch_([&](std::exception_ptr) {
        note("y", 0);
        return 0;
    });
    (void)pr.promise.then([&](int v) { note("c", v); });
    (void)pr.promise.finally([&] { note("f", 0); });
    QVERIFY(pr.resolver.resolve(7));
    (void)pr.promise.then([&](int v) { note("d", v); }); // attached after fulfilment: still last
    QVERIFY(drain(loop));
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("a7 b7 c7 f0 d7"));
}

void tst_Promise::clause_2_2_6_1_throwing_onFulfilled_does_not_stop_the_others() {
    int errorHookCalls = 0;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr, CallbackKind) { ++errorHookCalls; };
    Loop loop(std::move(opt));
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    std::vector<std::string> log;
    (void)pr.promise.then([&](int) { log.push_back("1"); });
    auto d2 = pr.promise.then([&](int) {
        log.push_back("2");
        throw std::runtime_error("two");
    });
    (void)pr.promise.then([&](int) { log.push_back("3"); });
    QVERIFY(pr.resolver.resolve(0));
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("1 2 3"));
    QCOMPARE(d2.state(), PromiseState::Rejected);
    QCOMPARE(whatOf(d2.reason()), QStringLiteral("two"));
    QCOMPARE(errorHookCalls, 0); // a throwing handler rejects its promise; the loop never sees it
    // d2 has no handler: its rejection (and only it) is reported, as in JS.
    QCOMPARE(rej.summary(), ev("Unhandled", d2.id()));
}

void tst_Promise::clause_2_2_6_2_onRejected_handlers_run_once_in_then_order() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    std::vector<std::string> log;
    (void)pr.promise.catch_([&](std::exception_ptr) {
        log.push_back("a");
        return 0;
    });
    (void)pr.promise.then([&](int) { log.push_back("x"); },
                          [&](std::exception_ptr) { log.push_back("b"); });
    auto passThrough = pr.promise.then([&](int) { log.push_back("y"); }); // no onRejected
    (void)pr.promise.finally([&] { log.push_back("f"); }).catch_([&](std::exception_ptr) {
        return 0;
    });
    (void)pr.promise.catch_([&](std::exception_ptr) {
        log.push_back("c");
        return 0;
    });
    QVERIFY(pr.resolver.reject(error("r")));
    (void)pr.promise.catch_([&](std::exception_ptr) {
        log.push_back("d");
        return 0;
    });
    QVERIFY(drain(loop));
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("a b f c d"));
    QCOMPARE(rej.summary(), ev("Unhandled", passThrough.id()));
}

void tst_Promise::clause_2_2_6_2_throwing_onRejected_does_not_stop_the_others() {
    int errorHookCalls = 0;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr, CallbackKind) { ++errorHookCalls; };
    Loop loop(std::move(opt));
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    std::vector<std::string> log;
    (void)pr.promise.catch_([&](std::exception_ptr) {
        log.push_back("1");
        return 0;
    });
    auto d2 = pr.promise.catch_([&](std::exception_ptr) -> int {
        log.push_back("2");
        throw std::runtime_error("two");
    });
    (void)pr.promise.catch_([&](std::exception_ptr) {
        log.push_back("3");
        return 0;
    });
    QVERIFY(pr.resolver.reject(error("r")));
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("1 2 3"));
    QCOMPARE(whatOf(d2.reason()), QStringLiteral("two"));
    QCOMPARE(errorHookCalls, 0);
    QCOMPARE(rej.summary(), ev("Unhandled", d2.id()));
}

void tst_Promise::clause_2_2_7_then_returns_a_new_promise() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    auto d1 = pr.promise.then([](int v) { return v; });
    auto d2 = pr.promise.then([](int v) { return v; });
    static_assert(std::is_same_v<decltype(d1), Promise<int>>);
    QVERIFY(d1.valid());
    QVERIFY(d2.valid());
    QVERIFY(d1.id() != pr.promise.id());
    QVERIFY(d2.id() != d1.id());
    QVERIFY(&d1.loop() == &loop);
    QCOMPARE(d1.state(), PromiseState::Pending);
    QVERIFY(pr.resolver.resolve(1));
    QCOMPARE(d1.state(), PromiseState::Pending); // settles in a reaction, not inside resolve()
    QVERIFY(drain(loop));
    QCOMPARE(d1.state(), PromiseState::Fulfilled);
    QCOMPARE(d2.state(), PromiseState::Fulfilled);
}

void tst_Promise::clause_2_2_7_1_returned_value_fulfils_derived() {
    Loop loop;
    auto ok = makePromise<int>(loop);
    auto bad = makePromise<int>(loop);
    auto v = makePromise<void>(loop);
    auto d1 = ok.promise.then([](int x) { return x * 10; });
    auto d2 = bad.promise.then([](int x) { return x; }, [](std::exception_ptr) { return 99; });
    auto d3 = v.promise.then([] { return std::string("from void"); });
    QVERIFY(ok.resolver.resolve(4));
    QVERIFY(bad.resolver.reject(error("r")));
    QVERIFY(v.resolver.resolve());
    QVERIFY(drain(loop));
    QCOMPARE(d1.value(), 40);
    QCOMPARE(d2.value(), 99); // onRejected recovering fulfils too
    QCOMPARE(qs(d3.value()), QStringLiteral("from void"));
}

void tst_Promise::clause_2_2_7_2_thrown_exception_rejects_derived() {
    Loop loop;
    Rejections rej(loop);
    auto ok = makePromise<int>(loop);
    auto bad = makePromise<int>(loop);
    const auto original = error("original");
    auto d1 = ok.promise.then([](int) -> int { throw TaggedError("from onFulfilled", 1); });
    auto d2 = bad.promise.catch_([](std::exception_ptr) -> int { throw TaggedError("x", 2); });
    auto d3 = ok.promise.then([](int) { throw 42; }); // not a std::exception
    auto d4 = bad.promise.catch_([](std::exception_ptr e) -> int { std::rethrow_exception(e); });
    QVERIFY(ok.resolver.resolve(1));
    QVERIFY(bad.resolver.reject(original));
    QVERIFY(drain(loop));
    QCOMPARE(d1.state(), PromiseState::Rejected);
    QCOMPARE(tagOf(d1.reason()), 1);
    QCOMPARE(tagOf(d2.reason()), 2);
    int thrown = 0;
    try {
        std::rethrow_exception(d3.reason());
    } catch (int i) {
        thrown = i;
    } catch (...) {
    }
    QCOMPARE(thrown, 42);
    QVERIFY(d4.reason() == original); // rethrowing the reason rejects with the same object
    QCOMPARE(int(rej.events.size()), 4);
}

void tst_Promise::clause_2_2_7_3_onFulfilled_absent_derived_fulfilled_with_same_value() {
    Loop loop;
    auto pr = makePromise<std::string>(loop);
    int calls = 0;
    auto catcher = [&](std::exception_ptr) {
        ++calls;
        return std::string("recovered");
    };
    auto d = pr.promise.catch_(catcher).catch_(catcher).catch_(catcher);
    auto v = makePromise<void>(loop);
    auto dv = v.promise.catch_([&](std::exception_ptr) { ++calls; });
    QVERIFY(pr.resolver.resolve(std::string("same")));
    QVERIFY(v.resolver.resolve());
    QVERIFY(drain(loop));
    QCOMPARE(qs(d.value()), QStringLiteral("same"));
    QCOMPARE(dv.state(), PromiseState::Fulfilled);
    QCOMPARE(calls, 0);
}

void tst_Promise::clause_2_2_7_4_onRejected_absent_derived_rejected_with_same_reason() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    const auto e = error("same");
    int calls = 0;
    auto d1 = pr.promise.then([&](int x) {
        ++calls;
        return x;
    });
    auto d2 = d1.then([&](int x) {
        ++calls;
        return std::to_string(x);
    });
    auto d3 = d2.then([&](const std::string&) { ++calls; });
    std::exception_ptr caught;
    (void)d3.catch_([&](std::exception_ptr r) { caught = r; });
    QVERIFY(pr.resolver.reject(e));
    QVERIFY(drain(loop));
    QCOMPARE(calls, 0);
    QVERIFY(d1.reason() == e);
    QVERIFY(d2.reason() == e);
    QVERIFY(d3.reason() == e);
    QVERIFY(caught == e);
}

// ================================ 2.3 resolution procedure ================================

void tst_Promise::clause_2_3_1_handler_returning_its_own_promise_rejects_with_TypeError() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    Promise<int> d;
    int calls = 0, fulfilledWith = -1;
    d = pr.promise.then([&d, &calls](int) {
        ++calls;
        return d; // its own derived promise
    });
    std::exception_ptr seen;
    (void)d.then([&](int v) { fulfilledWith = v; }, [&](std::exception_ptr e) { seen = e; });
    QVERIFY(pr.resolver.resolve(1));
    QVERIFY(drain(loop));
    QCOMPARE(calls, 1);
    QCOMPARE(d.state(), PromiseState::Rejected);
    QVERIFY(isExactly<PromiseTypeError>(d.reason()));
    QVERIFY(seen == d.reason());
    QCOMPARE(fulfilledWith, -1);
}

void tst_Promise::clause_2_3_1_resolver_resolving_with_its_own_promise_rejects_with_TypeError() {
    Loop loop;
    auto a = makePromise<int>(loop);
    std::exception_ptr seen;
    (void)a.promise.catch_([&](std::exception_ptr e) {
        seen = e;
        return 0;
    });
    QVERIFY(a.resolver.resolve(a.promise));
    QVERIFY(!a.resolver.resolve(1)); // it did resolve (with a TypeError)
    QVERIFY(drain(loop));
    QCOMPARE(a.promise.state(), PromiseState::Rejected);
    QVERIFY(isExactly<PromiseTypeError>(a.promise.reason()));
    QVERIFY(seen == a.promise.reason());

    // The same from another thread.
    auto b = makePromise<void>(loop);
    (void)b.promise.catch_([](std::exception_ptr) {});
    bool answered = false;
    std::thread t([&] { answered = b.resolver.resolve(b.promise); });
    t.join();
    QVERIFY(answered);
    QVERIFY(drain(loop));
    QCOMPARE(b.promise.state(), PromiseState::Rejected);
    QVERIFY(isExactly<PromiseTypeError>(b.promise.reason()));
}

void tst_Promise::clause_2_3_2_1_adopting_pending_promise_stays_pending() {
    Loop loop;
    auto src = makePromise<int>(loop);
    auto inner = makePromise<int>(loop);
    int calls = 0;
    auto d = src.promise.then([&, q = inner.promise](int) {
        ++calls;
        return q;
    });
    int derivedCalls = 0;
    (void)d.then([&](int) { ++derivedCalls; }, [&](std::exception_ptr) { ++derivedCalls; });
    QVERIFY(src.resolver.resolve(1));
    for (int i = 0; i < 3; ++i)
        QVERIFY(drain(loop));
    QCOMPARE(calls, 1);
    QCOMPARE(d.state(), PromiseState::Pending);
    QCOMPARE(derivedCalls, 0);
    QVERIFY(inner.resolver.resolve(2));
    QVERIFY(drain(loop));
    QCOMPARE(derivedCalls, 1);
}

void tst_Promise::clause_2_3_2_2_adopted_promise_fulfilled_later_fulfils_with_same_value() {
    Loop loop;
    auto src = makePromise<int>(loop);
    auto inner = makePromise<std::string>(loop);
    auto d = src.promise.then([q = inner.promise](int) { return q; });
    static_assert(std::is_same_v<decltype(d), Promise<std::string>>);
    QVERIFY(src.resolver.resolve(1));
    QVERIFY(drain(loop));
    QCOMPARE(d.state(), PromiseState::Pending);
    QVERIFY(inner.resolver.resolve(std::string("adopted")));
    QVERIFY(drain(loop));
    QCOMPARE(d.state(), PromiseState::Fulfilled);
    QCOMPARE(qs(d.value()), QStringLiteral("adopted"));
}

void tst_Promise::clause_2_3_2_3_adopted_promise_rejected_later_rejects_with_same_reason() {
    Loop loop;
    Rejections rej(loop);
    auto src = makePromise<int>(loop);
    auto inner = makePromise<int>(loop);
    const auto e = error("inner");
    auto d = src.promise.then([q = inner.promise](int) { return q; });
    std::exception_ptr seen;
    (void)d.catch_([&](std::exception_ptr r) {
        seen = r;
        return 0;
    });
    QVERIFY(src.resolver.resolve(1));
    QVERIFY(drain(loop));
    QCOMPARE(d.state(), PromiseState::Pending);
    QVERIFY(inner.resolver.reject(e));
    QVERIFY(drain(loop));
    QCOMPARE(d.state(), PromiseState::Rejected);
    QVERIFY(d.reason() == e);
    QVERIFY(seen == e);
    QCOMPARE(rej.summary(), QString()); // the adoption handled inner; d has a catch_
}

void tst_Promise::clause_2_3_2_adopting_already_settled_promise() {
    Loop loop;
    Rejections rej(loop);
    auto src = makePromise<int>(loop);
    const auto e = error("settled");
    auto d1 = src.promise.then([&loop](int x) { return resolvedPromise<int>(loop, x + 1); });
    auto d2 = src.promise.then([&loop, e](int) { return rejectedPromise<int>(loop, e); });
    (void)d2.catch_([](std::exception_ptr) { return 0; });
    QVERIFY(src.resolver.resolve(1));
    QVERIFY(drain(loop));
    QCOMPARE(d1.value(), 2);
    QVERIFY(d2.reason() == e);
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::clause_2_3_2_resolver_adopts_promise_and_is_locked_in() {
    Loop loop;
    Rejections rej(loop);
    auto p = makePromise<int>(loop);
    auto q = makePromise<int>(loop);
    QVERIFY(p.resolver.resolve(q.promise));
    // Resolved (locked in to q) although still pending: later calls are ignored (2.3.3.3.3).
    QVERIFY(!p.resolver.reject(error("too late")));
    QVERIFY(!p.resolver.resolve(5));
    QVERIFY(drain(loop));
    QCOMPARE(p.promise.state(), PromiseState::Pending);
    QVERIFY(q.resolver.resolve(9));
    QVERIFY(drain(loop));
    QCOMPARE(p.promise.value(), 9);

    auto r = makePromise<int>(loop);
    auto s = makePromise<int>(loop);
    const auto e = error("s");
    QVERIFY(r.resolver.resolve(s.promise));
    QVERIFY(s.resolver.reject(e));
    QVERIFY(drain(loop));
    QVERIFY(r.promise.reason() == e);
    QCOMPARE(rej.summary(), ev("Unhandled", r.promise.id())); // s was handled by the adoption
}

void tst_Promise::clause_2_3_2_adoption_is_recursive() {
    Loop loop;
    auto src = makePromise<int>(loop);
    auto q1 = makePromise<int>(loop);
    auto q2 = makePromise<int>(loop);
    auto q3 = makePromise<int>(loop);
    auto d = src.promise.then([q = q1.promise](int) { return q; });
    QVERIFY(q1.resolver.resolve(q2.promise));
    QVERIFY(q2.resolver.resolve(q3.promise));
    QVERIFY(src.resolver.resolve(0));
    // A handler's result that is itself a chain of handlers returning promises.
    auto nested = src.promise.then([&loop](int) {
        return resolvedPromise<int>(loop, 1).then([&loop](int x) {
            return resolvedPromise<int>(loop, x + 1).then([](int y) { return y * 100; });
        });
    });
    QVERIFY(drain(loop));
    QCOMPARE(d.state(), PromiseState::Pending);
    QCOMPARE(nested.value(), 200);
    QVERIFY(q3.resolver.resolve(9));
    QVERIFY(drain(loop));
    QCOMPARE(q2.promise.value(), 9);
    QCOMPARE(q1.promise.value(), 9);
    QCOMPARE(d.value(), 9);
}

void tst_Promise::clause_2_3_2_adopting_empty_promise_rejects_with_TypeError() {
    Loop loop;
    Rejections rej(loop);
    auto src = makePromise<int>(loop);
    auto d = src.promise.then([](int) { return Promise<int>(); });
    auto r = makePromise<int>(loop);
    QVERIFY(r.resolver.resolve(Promise<int>()));
    QVERIFY(src.resolver.resolve(1));
    QVERIFY(drain(loop));
    QVERIFY(isExactly<PromiseTypeError>(d.reason()));
    QVERIFY(isExactly<PromiseTypeError>(r.promise.reason()));
}

void tst_Promise::clause_2_3_3_and_2_3_4_plain_value_fulfils() {
    // 2.3.3 (x has a `then`: call it with resolvePromise/rejectPromise) has no counterpart in
    // typed C++: there are no duck-typed thenables, Promise<U> is the only thenable (2.3.2). A type
    // that merely has a member named `then` is a plain value, so 2.3.4 applies: the promise is
    // fulfilled with it and its `then` is never called.
    Loop loop;
    int thenCalls = 0;
    auto src = makePromise<int>(loop);
    auto d = src.promise.then([&](int x) { return LooksLikeThenable{&thenCalls, x}; });
    static_assert(std::is_same_v<decltype(d), Promise<LooksLikeThenable>>);
    auto direct = makePromise<LooksLikeThenable>(loop);
    QVERIFY(direct.resolver.resolve(LooksLikeThenable{&thenCalls, 8}));
    QVERIFY(src.resolver.resolve(5));
    QVERIFY(drain(loop));
    QCOMPARE(d.state(), PromiseState::Fulfilled);
    QCOMPARE(d.value().payload, 5);
    QCOMPARE(direct.promise.value().payload, 8);
    QCOMPARE(thenCalls, 0);
}

// ================================ ECMAScript job order ================================

void tst_Promise::es_job_order_two_chains_interleave() {
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    logChain(loop, log, {"a1", "a2", "a3"});
                    logChain(loop, log, {"b1", "b2", "b3"});
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("a1 b1 a2 b2 a3 b3"));
}

void tst_Promise::es_job_order_returning_a_plain_value_takes_no_extra_tick() {
    // JS: Promise.resolve().then(() => { log(0); return 4; }).then(log);
    //     Promise.resolve().then(() => log(1)).then(() => log(2)).then(() => log(3));
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    (void)resolvedPromise(loop)
                        .then([&] {
                            log.push_back("0");
                            return 4;
                        })
                        .then([&](int v) { log.push_back(std::to_string(v)); });
                    logChain(loop, log, {"1", "2", "3"});
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("0 1 4 2 3"));
}

void tst_Promise::es_job_order_adopting_a_fulfilled_promise_takes_two_extra_ticks() {
    // JS: Promise.resolve().then(() => { log(0); return Promise.resolve(4); }).then(log);
    //     Promise.resolve().then(() => log(1)).then(() => log(2)) ... then(() => log(6));
    // NewPromiseResolveThenableJob (one tick) calls then() on the fulfilled promise, whose
    // reaction (second tick) resolves the derived promise, whose reaction logs 4 (third tick).
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    (void)resolvedPromise(loop)
                        .then([&] {
                            log.push_back("0");
                            return resolvedPromise<int>(loop, 4);
                        })
                        .then([&](int v) { log.push_back(std::to_string(v)); });
                    logChain(loop, log, {"1", "2", "3", "5", "6"});
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("0 1 2 3 4 5 6"));
}

void tst_Promise::es_job_order_adopting_a_pending_promise() {
    // JS: let rq; const q = new Promise(r => rq = r);
    //     Promise.resolve().then(() => { log(0); return q; }).then(log);
    //     Promise.resolve().then(() => log(1)).then(() => { log(2); rq('q'); }).then(...3)...
    Loop loop;
    std::vector<std::string> log;
    auto q = makePromise<std::string>(loop);
    QVERIFY(loop.submit([&] {
                    (void)resolvedPromise(loop)
                        .then([&] {
                            log.push_back("0");
                            return q.promise;
                        })
                        .then([&](const std::string& v) { log.push_back(v); });
                    (void)resolvedPromise(loop)
                        .then([&] { log.push_back("1"); })
                        .then([&] {
                            log.push_back("2");
                            (void)q.resolver.resolve(std::string("q"));
                        })
                        .then([&] { log.push_back("3"); })
                        .then([&] { log.push_back("4"); })
                        .then([&] { log.push_back("5"); });
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("0 1 2 3 q 4 5"));
}

void tst_Promise::es_job_order_resolver_adopting_a_fulfilled_promise() {
    // JS: const p = new Promise(r => r(Promise.resolve('p'))); p.then(log);
    //     Promise.resolve().then(() => log(1)).then(() => log(2)).then(() => log(3));
    Loop loop;
    std::vector<std::string> log;
    auto p = makePromise<std::string>(loop);
    QVERIFY(loop.submit([&] {
                    (void)p.resolver.resolve(resolvedPromise<std::string>(loop, "p"));
                    (void)p.promise.then([&](const std::string& v) { log.push_back(v); });
                    logChain(loop, log, {"1", "2", "3"});
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("1 2 p 3"));
}

void tst_Promise::es_job_order_rejection_passes_through_one_tick_per_then() {
    // JS: Promise.reject(e).then(f).then(f).catch(() => log('c'));
    //     Promise.resolve().then(() => log(1)) ... then(() => log(4));
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    (void)rejectedPromise<void>(loop, error("e"))
                        .then([&] { log.push_back("no"); })
                        .then([&] { log.push_back("no2"); })
                        .catch_([&](std::exception_ptr) { log.push_back("c"); });
                    logChain(loop, log, {"1", "2", "3", "4"});
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("1 2 c 3 4"));
}

void tst_Promise::es_job_order_finally() {
    // JS: Promise.resolve(7).finally(() => log('f')).then(v => log('v' + v));
    //     Promise.resolve().then(() => log(1)) ... then(() => log(5));
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    (void)resolvedPromise<int>(loop, 7)
                        .finally([&] { log.push_back("f"); })
                        .then([&](int v) { log.push_back("v" + std::to_string(v)); });
                    logChain(loop, log, {"1", "2", "3", "4", "5"});
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("f 1 2 3 v7 4 5"));
}

void tst_Promise::es_job_order_finally_returning_a_promise() {
    // JS: Promise.resolve(7).finally(() => { log('f'); return Promise.resolve(1); })
    //        .then(v => log('v' + v));
    //     Promise.resolve().then(() => log(1)) ... then(() => log(6));
    // ECMAScript 27.2.5.3.1 thenFinally: promise = PromiseResolve(C, onFinally()) is the returned
    // promise itself; promise.then(valueThunk) is queued at once (tick 1), the derived promise
    // adopts its result (NewPromiseResolveThenableJob, tick 1 too) -> v7 after 3.
    Loop loop;
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    (void)resolvedPromise<int>(loop, 7)
                        .finally([&] {
                            log.push_back("f");
                            return resolvedPromise<int>(loop, 1);
                        })
                        .then([&](int v) { log.push_back("v" + std::to_string(v)); });
                    logChain(loop, log, {"1", "2", "3", "4", "5", "6"});
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("f 1 2 3 v7 4 5 6"));
}

void tst_Promise::es_executor_throw_rejects_unless_resolved() {
    Loop loop;
    Rejections rej(loop);
    int ran = 0;
    auto thrown = makePromise<int>(loop, [&](const Resolver<int>&) {
        ++ran;
        throw std::runtime_error("executor");
    });
    auto resolvedFirst = makePromise<int>(loop, [&](const Resolver<int>& r) {
        ++ran;
        r.resolve(1);
        throw std::runtime_error("ignored");
    });
    QCOMPARE(ran, 2); // the executor runs synchronously, as in `new Promise(executor)`
    QVERIFY(drain(loop));
    QCOMPARE(whatOf(thrown.reason()), QStringLiteral("executor"));
    QCOMPARE(resolvedFirst.value(), 1);
}

void tst_Promise::then_deduces_the_derived_type() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    auto s = pr.promise.then([](int x) { return std::string(std::size_t(x), 'x'); });
    static_assert(std::is_same_v<decltype(s), Promise<std::string>>);
    auto n = pr.promise.then([&loop](int x) { return resolvedPromise<double>(loop, x * 1.5); });
    static_assert(std::is_same_v<decltype(n), Promise<double>>);
    auto v = pr.promise.then([](int) {});
    static_assert(std::is_same_v<decltype(v), Promise<void>>);
    auto i = v.then([] { return 2; });
    static_assert(std::is_same_v<decltype(i), Promise<int>>);
    auto fg = pr.promise.then([](int x) { return long(x); }, [](std::exception_ptr) { return 0L; });
    static_assert(std::is_same_v<decltype(fg), Promise<long>>);
    auto c = pr.promise.catch_([](std::exception_ptr) { return 0; });
    static_assert(std::is_same_v<decltype(c), Promise<int>>);
    auto f = s.finally([] {});
    static_assert(std::is_same_v<decltype(f), Promise<std::string>>);
    static_assert(hasValue<Promise<int>> && !hasValue<Promise<void>>);
    QVERIFY(pr.resolver.resolve(3));
    QVERIFY(drain(loop));
    QCOMPARE(qs(s.value()), QStringLiteral("xxx"));
    QCOMPARE(n.value(), 4.5);
    QCOMPARE(v.state(), PromiseState::Fulfilled);
    QCOMPARE(i.value(), 2);
    QCOMPARE(fg.value(), 3L);
    QCOMPARE(c.value(), 3);
    QCOMPARE(qs(f.value()), QStringLiteral("xxx"));
}

// ================================ re-entrancy ================================

void tst_Promise::reentrancy_then_inside_a_handler() {
    // JS: p.then(() => { log(1); p.then(() => log(3)); }); p.then(() => log(2));  -> 1 2 3
    Loop loop;
    std::vector<std::string> log;
    auto p = resolvedPromise(loop);
    auto pending = makePromise<int>(loop);
    (void)p.then([&] {
        log.push_back("1");
        (void)p.then([&] { log.push_back("3"); });
        (void)pending.promise.then([&](int v) { log.push_back("pending" + std::to_string(v)); });
        (void)pending.resolver.resolve(4);
    });
    (void)p.then([&] { log.push_back("2"); });
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("1 2 3 pending4"));
}

void tst_Promise::reentrancy_resolving_another_promise_inside_a_handler() {
    // JS: q.then(() => log('q')); p.then(() => { log('a'); rq(); }); p.then(() => log('b'));
    Loop loop;
    std::vector<std::string> log;
    auto p = resolvedPromise(loop);
    auto q = makePromise<void>(loop);
    (void)q.promise.then([&] { log.push_back("q"); });
    (void)p.then([&] {
        log.push_back("a");
        (void)q.resolver.resolve();
        log.push_back("a-end");
    });
    (void)p.then([&] { log.push_back("b"); });
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("a a-end b q"));
}

void tst_Promise::reentrancy_throwing_handler_rejects_derived_not_error_hook() {
    int errorHookCalls = 0;
    LoopOptions opt;
    opt.errorHook = [&](std::exception_ptr, CallbackKind) { ++errorHookCalls; };
    Loop loop(std::move(opt));
    Rejections rej(loop);
    std::vector<std::string> log;
    auto p = resolvedPromise<int>(loop, 1);
    (void)p
        .then([&](int) -> int {
            log.push_back("throw");
            throw std::runtime_error("boom");
        })
        .then([&](int) { log.push_back("skipped"); })
        .catch_([&](std::exception_ptr e) { log.push_back("caught:" + whatOf(e).toStdString()); })
        .then([&] { log.push_back("after"); });
    (void)p.then([&](int) { log.push_back("sibling"); });
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("throw sibling caught:boom after"));
    QCOMPARE(errorHookCalls, 0);
    QCOMPARE(rej.summary(), QString());
}

// ================================ finally ================================

void tst_Promise::finally_passes_value_through() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    int calls = 0;
    auto d = pr.promise.finally([&] { ++calls; });
    static_assert(std::is_same_v<decltype(d), Promise<int>>);
    QVERIFY(drain(loop));
    QCOMPARE(calls, 0);
    QVERIFY(pr.resolver.resolve(7));
    QVERIFY(drain(loop));
    QCOMPARE(calls, 1);
    QCOMPARE(d.value(), 7);
}

void tst_Promise::finally_passes_rejection_through() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    const auto e = error("through");
    int calls = 0;
    auto d = pr.promise.finally([&] { ++calls; });
    QVERIFY(pr.resolver.reject(e));
    QVERIFY(drain(loop));
    QCOMPARE(calls, 1);
    QCOMPARE(d.state(), PromiseState::Rejected);
    QVERIFY(d.reason() == e);
    QCOMPARE(rej.summary(), ev("Unhandled", d.id())); // the source was handled by finally
}

void tst_Promise::finally_throwing_replaces_outcome() {
    Loop loop;
    Rejections rej(loop);
    auto ok = resolvedPromise<int>(loop, 1);
    auto bad = rejectedPromise<int>(loop, error("original"));
    auto d1 = ok.finally([] { throw TaggedError("finally", 1); });
    auto d2 = bad.finally([] { throw TaggedError("finally", 2); });
    QVERIFY(drain(loop));
    QCOMPARE(d1.state(), PromiseState::Rejected);
    QCOMPARE(tagOf(d1.reason()), 1);
    QCOMPARE(tagOf(d2.reason()), 2);
}

void tst_Promise::finally_returned_promise_delays_outcome() {
    Loop loop;
    Rejections rej(loop);
    auto gate = makePromise<std::string>(loop);
    const auto e = error("original");
    int calls = 0;
    auto d1 = resolvedPromise<int>(loop, 7).finally([&] {
        ++calls;
        return gate.promise;
    });
    auto d2 = rejectedPromise<int>(loop, e).finally([&] {
        ++calls;
        return gate.promise;
    });
    for (int i = 0; i < 3; ++i)
        QVERIFY(drain(loop));
    QCOMPARE(calls, 2);
    QCOMPARE(d1.state(), PromiseState::Pending);
    QCOMPARE(d2.state(), PromiseState::Pending);
    QVERIFY(gate.resolver.resolve(std::string("ignored")));
    QVERIFY(drain(loop));
    QCOMPARE(d1.value(), 7); // the original outcome, not the gate's value
    QVERIFY(d2.reason() == e);
    QCOMPARE(calls, 2);
}

void tst_Promise::finally_returned_promise_rejection_replaces_outcome() {
    Loop loop;
    Rejections rej(loop);
    auto gate = makePromise<void>(loop);
    const auto replacement = error("replacement");
    auto d1 = resolvedPromise<int>(loop, 7).finally([&] { return gate.promise; });
    auto d2 = rejectedPromise<int>(loop, error("original")).finally([&] { return gate.promise; });
    QVERIFY(drain(loop));
    QCOMPARE(d1.state(), PromiseState::Pending);
    QVERIFY(gate.resolver.reject(replacement));
    QVERIFY(drain(loop));
    QVERIFY(d1.reason() == replacement);
    QVERIFY(d2.reason() == replacement);
}

void tst_Promise::finally_on_void_promise() {
    Loop loop;
    Rejections rej(loop);
    int calls = 0;
    auto d1 = resolvedPromise(loop).finally([&] { ++calls; });
    static_assert(std::is_same_v<decltype(d1), Promise<void>>);
    const auto e = error("void");
    auto d2 = rejectedPromise<void>(loop, e).finally([&] {
        ++calls;
        return resolvedPromise(loop);
    });
    QVERIFY(drain(loop));
    QCOMPARE(calls, 2);
    QCOMPARE(d1.state(), PromiseState::Fulfilled);
    QVERIFY(d2.reason() == e);
}

// ================================ combinators ================================

void tst_Promise::all_fulfils_with_values_in_input_order() {
    Loop loop;
    std::vector<Promise<std::string>> in;
    std::vector<Resolver<std::string>> rs;
    for (int i = 0; i < 3; ++i) {
        auto pr = makePromise<std::string>(loop);
        in.push_back(pr.promise);
        rs.push_back(pr.resolver);
    }
    in.push_back(resolvedPromise<std::string>(loop, "d")); // already settled
    auto a = libloop::all(loop, in);
    static_assert(std::is_same_v<decltype(a), Promise<std::vector<std::string>>>);
    QVERIFY(rs[2].resolve(std::string("c")));
    QVERIFY(rs[0].resolve(std::string("a")));
    QVERIFY(drain(loop));
    QCOMPARE(a.state(), PromiseState::Pending);
    QVERIFY(rs[1].resolve(std::string("b")));
    QVERIFY(drain(loop));
    QCOMPARE(a.state(), PromiseState::Fulfilled);
    std::vector<std::string> got = a.value();
    QCOMPARE(joined(got), QStringLiteral("a b c d"));
}

void tst_Promise::all_rejects_with_first_rejection() {
    Loop loop;
    Rejections rej(loop);
    std::vector<Promise<int>> in;
    std::vector<Resolver<int>> rs;
    for (int i = 0; i < 3; ++i) {
        auto pr = makePromise<int>(loop);
        in.push_back(pr.promise);
        rs.push_back(pr.resolver);
    }
    auto a = libloop::all(loop, in);
    const auto e1 = error("first");
    QVERIFY(rs[0].resolve(0));
    QVERIFY(rs[1].reject(e1));
    QVERIFY(drain(loop));
    QVERIFY(rs[2].reject(error("second")));
    QVERIFY(drain(loop));
    QCOMPARE(a.state(), PromiseState::Rejected);
    QVERIFY(a.reason() == e1);
    QCOMPARE(rej.summary(), ev("Unhandled", a.id())); // the inputs are handled by all()
}

void tst_Promise::all_of_nothing_and_of_void() {
    Loop loop;
    auto empty = libloop::all(loop, std::vector<Promise<int>>{});
    std::vector<Promise<void>> in;
    std::vector<Resolver<void>> rs;
    for (int i = 0; i < 2; ++i) {
        auto pr = makePromise<void>(loop);
        in.push_back(pr.promise);
        rs.push_back(pr.resolver);
    }
    auto v = libloop::all(loop, in);
    static_assert(std::is_same_v<decltype(v), Promise<void>>);
    QVERIFY(drain(loop));
    QCOMPARE(empty.state(), PromiseState::Fulfilled);
    QVERIFY(empty.value().empty());
    QVERIFY(rs[1].resolve());
    QVERIFY(drain(loop));
    QCOMPARE(v.state(), PromiseState::Pending);
    QVERIFY(rs[0].resolve());
    QVERIFY(drain(loop));
    QCOMPARE(v.state(), PromiseState::Fulfilled);
}

void tst_Promise::allSettled_reports_every_outcome_in_input_order() {
    Loop loop;
    Rejections rej(loop);
    const auto e = error("second");
    auto third = makePromise<int>(loop);
    std::vector<Promise<int>> in{resolvedPromise<int>(loop, 1), rejectedPromise<int>(loop, e),
                                 third.promise};
    auto s = libloop::allSettled(loop, in);
    static_assert(std::is_same_v<decltype(s), Promise<std::vector<Settled<int>>>>);
    QVERIFY(drain(loop));
    QCOMPARE(s.state(), PromiseState::Pending);
    QVERIFY(third.resolver.resolve(3));
    QVERIFY(drain(loop));
    const auto& out = s.value();
    QCOMPARE(int(out.size()), 3);
    QCOMPARE(out[0].state, PromiseState::Fulfilled);
    QCOMPARE(out[0].value.value_or(-1), 1);
    QCOMPARE(out[1].state, PromiseState::Rejected);
    QVERIFY(out[1].reason == e);
    QVERIFY(!out[1].value);
    QCOMPARE(out[2].state, PromiseState::Fulfilled);
    QCOMPARE(out[2].value.value_or(-1), 3);
    QCOMPARE(rej.summary(), QString());

    auto none = libloop::allSettled(loop, std::vector<Promise<void>>{});
    QVERIFY(drain(loop));
    QCOMPARE(none.state(), PromiseState::Fulfilled);
    QVERIFY(none.value().empty());
}

void tst_Promise::race_settles_like_first_to_settle() {
    Loop loop;
    Rejections rej(loop);
    std::vector<Promise<int>> in;
    std::vector<Resolver<int>> rs;
    for (int i = 0; i < 3; ++i) {
        auto pr = makePromise<int>(loop);
        in.push_back(pr.promise);
        rs.push_back(pr.resolver);
    }
    auto r1 = libloop::race(loop, in);
    QVERIFY(rs[2].resolve(2));
    QVERIFY(rs[0].reject(error("later")));
    QVERIFY(drain(loop));
    QCOMPARE(r1.value(), 2);

    auto a = makePromise<int>(loop);
    auto b = makePromise<int>(loop);
    auto r2 = libloop::race(loop, std::vector<Promise<int>>{a.promise, b.promise});
    const auto e = error("first");
    QVERIFY(b.resolver.reject(e));
    QVERIFY(drain(loop));
    QVERIFY(a.resolver.resolve(1));
    QVERIFY(drain(loop));
    QVERIFY(r2.reason() == e);
    QCOMPARE(rej.summary(), ev("Unhandled", r2.id()));
}

void tst_Promise::race_of_nothing_stays_pending() {
    Loop loop;
    auto r = libloop::race(loop, std::vector<Promise<int>>{});
    for (int i = 0; i < 3; ++i)
        QVERIFY(drain(loop));
    QCOMPARE(r.state(), PromiseState::Pending);
}

void tst_Promise::any_fulfils_with_first_fulfilment() {
    Loop loop;
    Rejections rej(loop);
    std::vector<Promise<int>> in;
    std::vector<Resolver<int>> rs;
    for (int i = 0; i < 3; ++i) {
        auto pr = makePromise<int>(loop);
        in.push_back(pr.promise);
        rs.push_back(pr.resolver);
    }
    auto y = libloop::any(loop, in);
    QVERIFY(rs[0].reject(error("ignored")));
    QVERIFY(drain(loop));
    QCOMPARE(y.state(), PromiseState::Pending);
    QVERIFY(rs[2].resolve(2));
    QVERIFY(rs[1].resolve(1));
    QVERIFY(drain(loop));
    QCOMPARE(y.value(), 2);
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::any_all_rejected_AggregateError_in_input_order() {
    Loop loop;
    Rejections rej(loop);
    std::vector<Promise<int>> in;
    std::vector<Resolver<int>> rs;
    std::vector<std::exception_ptr> es;
    for (int i = 0; i < 3; ++i) {
        auto pr = makePromise<int>(loop);
        in.push_back(pr.promise);
        rs.push_back(pr.resolver);
        es.push_back(error(std::to_string(i).c_str()));
    }
    auto y = libloop::any(loop, in);
    QVERIFY(rs[2].reject(es[2]));
    QVERIFY(rs[0].reject(es[0]));
    QVERIFY(drain(loop));
    QCOMPARE(y.state(), PromiseState::Pending);
    QVERIFY(rs[1].reject(es[1]));
    QVERIFY(drain(loop));
    QCOMPARE(y.state(), PromiseState::Rejected);
    QVERIFY(isExactly<AggregateError>(y.reason()));
    try {
        std::rethrow_exception(y.reason());
    } catch (const AggregateError& agg) {
        QCOMPARE(int(agg.errors().size()), 3);
        for (int i = 0; i < 3; ++i)
            QVERIFY(agg.errors()[std::size_t(i)] == es[std::size_t(i)]);
    } catch (...) {
        QFAIL("not an AggregateError");
    }
}

void tst_Promise::any_of_nothing_rejects_with_AggregateError() {
    Loop loop;
    Rejections rej(loop);
    auto y = libloop::any(loop, std::vector<Promise<void>>{});
    QVERIFY(drain(loop));
    QCOMPARE(y.state(), PromiseState::Rejected);
    QVERIFY(isExactly<AggregateError>(y.reason()));
    try {
        std::rethrow_exception(y.reason());
    } catch (const AggregateError& agg) {
        QVERIFY(agg.errors().empty());
    } catch (...) {
        QFAIL("not an AggregateError");
    }
}

void tst_Promise::combinators_start_no_thread() {
    constexpr int kN = 10000;
    Loop loop;
    Rejections rej(loop);
    const int before = threadCount();
    QVERIFY(before > 0);
    std::vector<Promise<int>> in, bad;
    std::vector<Resolver<int>> rs, badRs;
    for (int i = 0; i < kN; ++i) {
        auto pr = makePromise<int>(loop);
        in.push_back(pr.promise);
        rs.push_back(pr.resolver);
        auto b = makePromise<int>(loop);
        bad.push_back(b.promise);
        badRs.push_back(b.resolver);
    }
    auto a = libloop::all(loop, in);
    auto s = libloop::allSettled(loop, in);
    auto r = libloop::race(loop, in);
    auto y = libloop::any(loop, in);
    auto yBad = libloop::any(loop, bad);
    QCOMPARE(threadCount(), before);
    for (int i = kN - 1; i >= 0; --i) { // last input first
        QVERIFY(rs[std::size_t(i)].resolve(i));
        QVERIFY(badRs[std::size_t(i)].reject(std::runtime_error(std::to_string(i))));
    }
    QVERIFY(drain(loop));
    QCOMPARE(threadCount(), before);
    QCOMPARE(a.value(), iota(kN));
    QCOMPARE(int(s.value().size()), kN);
    for (int i = 0; i < kN; ++i)
        QCOMPARE(s.value()[std::size_t(i)].value.value_or(-1), i);
    QCOMPARE(r.value(), kN - 1);
    QCOMPARE(y.value(), kN - 1);
    try {
        std::rethrow_exception(yBad.reason());
    } catch (const AggregateError& agg) {
        QCOMPARE(int(agg.errors().size()), kN);
        QCOMPARE(whatOf(agg.errors().front()), QStringLiteral("0"));
        QCOMPARE(whatOf(agg.errors().back()), QString::number(kN - 1));
    } catch (...) {
        QFAIL("not an AggregateError");
    }
    QCOMPARE(rej.summary(), ev("Unhandled", yBad.id()));
}

// ================================ unhandled rejections ================================

void tst_Promise::rejection_unhandled_at_checkpoint_end_is_reported() {
    Loop loop;
    Rejections rej(loop);
    bool onLoopThread = false;
    int hookCalls = 0;
    libloop::setRejectionHook(loop, [&](const RejectionInfo& i) {
        rej.events.push_back(i);
        onLoopThread = loop.isLoopThread();
        ++hookCalls;
    });
    auto pr = makePromise<int>(loop);
    std::vector<std::string> log;
    QVERIFY(loop.submit([&] {
                    (void)pr.resolver.reject(std::runtime_error("boom"));
                    log.push_back(hookCalls ? "reported-inside-task" : "task-end");
                })
                .ok());
    QVERIFY(drain(loop));
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("task-end"));
    QCOMPARE(rej.summary(), ev("Unhandled", pr.promise.id()));
    QVERIFY(rej.events[0].reason == pr.promise.reason());
    QCOMPARE(whatOf(rej.events[0].reason), QStringLiteral("boom"));
    QVERIFY(onLoopThread);
}

void tst_Promise::rejection_handled_in_same_callback_is_not_reported() {
    Loop loop;
    Rejections rej(loop);
    int caught = 0;
    QVERIFY(loop.submit([&] {
                    auto pr = makePromise<int>(loop);
                    (void)pr.resolver.reject(error("r"));
                    (void)pr.promise.catch_([&](std::exception_ptr) {
                        ++caught;
                        return 0;
                    });
                    auto q = rejectedPromise<void>(loop, error("q"));
                    (void)q.then([] {}, [&](std::exception_ptr) { ++caught; });
                })
                .ok());
    // Rejected and handled by the test body (outside any callback) before the loop runs.
    auto outside = rejectedPromise<int>(loop, error("outside"));
    (void)outside.catch_([&](std::exception_ptr) {
        ++caught;
        return 0;
    });
    QVERIFY(drain(loop));
    QCOMPARE(caught, 3);
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::rejection_handled_in_later_microtask_of_same_checkpoint_is_not_reported() {
    Loop loop;
    Rejections rej(loop);
    int caught = 0;
    auto pr = makePromise<int>(loop);
    QVERIFY(loop.submit([&] {
                    (void)pr.resolver.reject(error("r"));
                    QVERIFY(loop.queueMicrotask([&] {
                                    QVERIFY(loop.queueMicrotask([&] {
                                                    (void)pr.promise.catch_(
                                                        [&](std::exception_ptr) {
                                                            ++caught;
                                                            return 0;
                                                        });
                                                })
                                                .ok());
                                })
                                .ok());
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(caught, 1);
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::rejection_handled_after_budget_cut_checkpoint_is_not_reported() {
    // A checkpoint cut short by the budget is not over: a microtask still queued may handle it.
    LoopOptions opt;
    opt.microtaskBudget = 4;
    Loop loop(std::move(opt));
    Rejections rej(loop);
    int caught = 0, hops = 0;
    auto pr = makePromise<int>(loop);
    std::function<void()> hop = [&] {
        if (++hops < 10) {
            QVERIFY(loop.queueMicrotask([&] { hop(); }).ok());
            return;
        }
        (void)pr.promise.catch_([&](std::exception_ptr) {
            ++caught;
            return 0;
        });
    };
    QVERIFY(loop.submit([&] {
                    (void)pr.resolver.reject(error("r"));
                    QVERIFY(loop.queueMicrotask([&] { hop(); }).ok());
                })
                .ok());
    QVERIFY(drain(loop));
    QVERIFY(loop.snapshot().microtaskBudgetHits > 0); // the budget did cut a checkpoint
    QCOMPARE(caught, 1);
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::rejection_handled_later_reports_HandledLater_from_a_task() {
    Loop loop;
    std::vector<std::string> log;
    std::vector<RejectionInfo> events;
    libloop::setRejectionHook(loop, [&](const RejectionInfo& i) {
        events.push_back(i);
        log.push_back(i.event == RejectionEvent::Unhandled ? "Unhandled" : "HandledLater");
    });
    auto pr = makePromise<int>(loop);
    QVERIFY(loop.submit([&] {
                    log.push_back("T1");
                    (void)pr.resolver.reject(error("r"));
                })
                .ok());
    QVERIFY(loop.submit([&] {
                    log.push_back("T2-begin");
                    (void)pr.promise.catch_([&](std::exception_ptr) {
                        log.push_back("catch");
                        return 0;
                    });
                    log.push_back("T2-end");
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(joined(log), QStringLiteral("T1 Unhandled T2-begin T2-end catch HandledLater"));
    QCOMPARE(int(events.size()), 2);
    QCOMPARE(events[1].promiseId, pr.promise.id());
    QVERIFY(events[1].reason == pr.promise.reason());
    // Another handler: nothing more to report.
    (void)pr.promise.catch_([](std::exception_ptr) { return 0; });
    QVERIFY(drain(loop));
    QCOMPARE(int(events.size()), 2);
}

void tst_Promise::rejection_of_derived_promise_is_reported_not_the_source() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    Promise<int> derived;
    QVERIFY(loop.submit([&] {
                    (void)pr.resolver.reject(error("r"));
                    derived = pr.promise.then([](int x) { return x; }); // no onRejected
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(rej.summary(), ev("Unhandled", derived.id()));
    QVERIFY(rej.events[0].reason == pr.promise.reason());
}

void tst_Promise::rejection_of_adopted_promise_is_handled_by_adoption() {
    Loop loop;
    Rejections rej(loop);
    int caught = 0;
    auto src = resolvedPromise<int>(loop, 1);
    (void)src.then([&loop](int) { return rejectedPromise<int>(loop, error("adopted")); })
        .catch_([&](std::exception_ptr) {
            ++caught;
            return 0;
        });
    QVERIFY(drain(loop));
    QCOMPARE(caught, 1);
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::rejection_from_other_thread_is_reported() {
    Loop loop;
    Rejections rej(loop);
    auto pr = makePromise<int>(loop);
    bool answered = false;
    std::thread t([&] { answered = pr.resolver.reject(std::runtime_error("remote")); });
    t.join();
    QVERIFY(answered);
    QVERIFY(runUntil(loop, [&] { return !rej.events.empty(); }));
    QVERIFY(drain(loop));
    QCOMPARE(rej.summary(), ev("Unhandled", pr.promise.id()));
    QCOMPARE(whatOf(rej.events[0].reason), QStringLiteral("remote"));
}

void tst_Promise::rejection_hook_exception_is_swallowed() {
    Loop loop;
    int hookCalls = 0, taskRan = 0;
    libloop::setRejectionHook(loop, [&](const RejectionInfo&) {
        ++hookCalls;
        throw std::runtime_error("hook");
    });
    QVERIFY(loop.submit([&] { (void)rejectedPromise<int>(loop, error("a")); }).ok());
    QVERIFY(loop.submit([&] {
                    ++taskRan;
                    (void)rejectedPromise<int>(loop, error("b"));
                })
                .ok());
    QVERIFY(drain(loop));
    QCOMPARE(hookCalls, 2);
    QCOMPARE(taskRan, 1);
}

void tst_Promise::rejection_default_hook_prints_one_line_per_event() {
    LoopOptions opt;
    opt.name = "ptest";
    Loop loop(std::move(opt));
    int customCalls = 0;
    libloop::setRejectionHook(loop, [&](const RejectionInfo&) { ++customCalls; });
    libloop::setRejectionHook(loop, {}); // an empty hook restores the default
    auto pr = makePromise<int>(loop);
    std::string out;
    {
        StderrCapture cap;
        QVERIFY(cap.ok());
        QVERIFY(loop.submit([&] { (void)pr.resolver.reject(error("boom")); }).ok());
        const bool drained1 = drain(loop);
        QVERIFY(loop.submit([&] { (void)pr.promise.catch_([](std::exception_ptr) { return 0; }); })
                    .ok());
        const bool drained2 = drain(loop);
        out = cap.finish();
        QVERIFY(drained1 && drained2);
    }
    QCOMPARE(customCalls, 0);
    const QStringList lines = qs(out).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 2);
    const QString id = QString::number(pr.promise.id());
    QVERIFY2(lines[0].startsWith(QStringLiteral("libloop[ptest]: ")), qPrintable(lines[0]));
    QVERIFY2(lines[0].contains(QStringLiteral("unhandled")), qPrintable(lines[0]));
    QVERIFY2(lines[0].contains(id), qPrintable(lines[0]));
    QVERIFY2(lines[0].endsWith(QStringLiteral("boom")), qPrintable(lines[0]));
    QVERIFY2(lines[1].startsWith(QStringLiteral("libloop[ptest]: ")), qPrintable(lines[1]));
    QVERIFY2(lines[1].contains(id), qPrintable(lines[1]));
    QVERIFY2(lines[1].contains(QStringLiteral("handled")), qPrintable(lines[1]));
    QVERIFY2(!lines[1].contains(QStringLiteral("unhandled")), qPrintable(lines[1]));
}

// ================================ memory ================================

void tst_Promise::memory_settled_promise_releases_every_handler() {
    Loop loop;
    Counter c;
    auto pr = makePromise<int>(loop);
    auto gate = makePromise<void>(loop);
    int runs = 0;
    auto d1 = pr.promise.then([&runs, k = Counted(&c)](int) { ++runs; });
    auto d2 = pr.promise.then(
        [&runs, k = Counted(&c)](int v) {
            ++runs;
            return v;
        },
        [k = Counted(&c)](std::exception_ptr) { return 0; });
    auto d3 = pr.promise.catch_([k = Counted(&c)](std::exception_ptr) { return 0; });
    auto d4 = pr.promise.finally([&runs, k = Counted(&c)] { ++runs; });
    auto d5 = pr.promise.finally([&runs, &gate, k = Counted(&c)] {
        ++runs;
        return gate.promise;
    });
    QCOMPARE(c.live(), 6);
    QVERIFY(drain(loop));
    QCOMPARE(c.live(), 6); // pending: the handlers are kept
    QVERIFY(pr.resolver.resolve(3));
    QVERIFY(drain(loop));
    QCOMPARE(runs, 4);
    // Settled: nothing captured survives, though every handle (promise, derived ones, resolver)
    // is alive. (d5 waits for the gate, but onFinally has run and is released.)
    QCOMPARE(c.live(), 0);
    QCOMPARE(d5.state(), PromiseState::Pending);
    QVERIFY(gate.resolver.resolve());
    QVERIFY(drain(loop));
    QCOMPARE(d5.value(), 3);

    // A handler attached to an already settled promise is released once it ran, too.
    (void)pr.promise.then([&runs, k = Counted(&c)](int) { ++runs; });
    QCOMPARE(c.live(), 1);
    QVERIFY(drain(loop));
    QCOMPARE(runs, 5);
    QCOMPARE(c.live(), 0);
    QCOMPARE(d1.state(), PromiseState::Fulfilled);
    QCOMPARE(d2.value(), 3);
    QCOMPARE(d3.value(), 3);
    QCOMPARE(d4.value(), 3);
}

void tst_Promise::memory_rejected_promise_releases_every_handler() {
    Loop loop;
    Rejections rej(loop);
    Counter c;
    auto pr = makePromise<int>(loop);
    int runs = 0;
    auto d1 = pr.promise.then([k = Counted(&c)](int) {});
    auto d2 = pr.promise.catch_([&runs, k = Counted(&c)](std::exception_ptr) {
        ++runs;
        return 0;
    });
    auto d3 = pr.promise.finally([&runs, k = Counted(&c)] { ++runs; });
    auto d4 = pr.promise.then([k = Counted(&c)](int) {},
                              [&runs, k = Counted(&c)](std::exception_ptr) { ++runs; });
    QCOMPARE(c.live(), 5);
    QVERIFY(pr.resolver.reject(error("r")));
    QVERIFY(drain(loop));
    QCOMPARE(runs, 3);
    QCOMPARE(c.live(), 0);
    QCOMPARE(d2.value(), 0);
}

void tst_Promise::memory_10k_handlers_run_once_in_order_and_are_released() {
    constexpr int kN = 10000;
    Loop loop;
    Counter c;
    auto pr = makePromise<int>(loop);
    std::vector<int> runs(kN, 0);
    std::vector<int> order;
    order.reserve(kN);
    for (int i = 0; i < kN; ++i)
        (void)pr.promise.then([&runs, &order, i, k = Counted(&c)](int v) {
            runs[std::size_t(i)] += v;
            order.push_back(i);
        });
    QCOMPARE(c.live(), kN);
    QVERIFY(pr.resolver.resolve(1));
    QVERIFY(drain(loop));
    QCOMPARE(c.live(), 0);
    QVERIFY(c.destroyed.load() >= kN);
    QCOMPARE(order, iota(kN));
    QCOMPARE(runs, std::vector<int>(kN, 1));
    QCOMPARE(pr.promise.value(), 1); // the handle is still alive
}

void tst_Promise::memory_loop_close_releases_queued_reactions() {
    Counter c;
    Loop loop;
    int runs = 0;
    auto pr = makePromise<int>(loop);
    for (int i = 0; i < 3; ++i)
        (void)pr.promise.then([&runs, k = Counted(&c)](int) { ++runs; });
    auto settled = resolvedPromise<int>(loop, 1);
    (void)settled.then([&runs, k = Counted(&c)](int) { ++runs; });
    auto adopting = makePromise<int>(loop);
    QVERIFY(adopting.resolver.resolve(settled)); // a NewPromiseResolveThenableJob is queued
    QVERIFY(pr.resolver.resolve(1));             // its 3 reactions are queued as microtasks
    QCOMPARE(c.live(), 4);
    QVERIFY(loop.close().ok());
    QCOMPARE(c.live(), 0);
    QCOMPARE(runs, 0);
    // On a closed loop then() releases its handler at once, and a resolver answers false.
    (void)settled.then([&runs, k = Counted(&c)](int) { ++runs; });
    QCOMPARE(c.live(), 0);
    auto late = makePromise<int>(loop);
    QVERIFY(!late.resolver.resolve(1));
    QCOMPARE(runs, 0);
}

void tst_Promise::memory_closed_loop_pending_promise_never_runs_handlers() {
    Counter c;
    int runs = 0;
    {
        Loop loop;
        std::optional<Promise<int>> p;
        std::optional<Resolver<int>> r;
        {
            auto pr = makePromise<int>(loop);
            p = pr.promise;
            r = pr.resolver;
        }
        (void)p->then([&runs, k = Counted(&c)](int) { ++runs; });
        QVERIFY(loop.close().ok());
        QVERIFY(!r->resolve(1));
        QVERIFY(!r->reject(error("r")));
        QCOMPARE(runs, 0);
        // Nothing can settle it any more; its handlers go with its last handle.
        p.reset();
        r.reset();
        QCOMPARE(c.live(), 0);
    }
    QCOMPARE(runs, 0);
}

void tst_Promise::memory_shutdown_runs_queued_reactions() {
    Counter c;
    Loop loop;
    std::vector<std::string> log;
    auto pr = makePromise<int>(loop);
    (void)pr.promise.then([&log, k = Counted(&c)](int v) { log.push_back(std::to_string(v)); })
        .then([&log, k = Counted(&c)] { log.push_back("chained"); });
    QVERIFY(pr.resolver.resolve(1));
    const auto rep = loop.shutdown();
    QVERIFY(rep.ok());
    QCOMPARE(joined(log), QStringLiteral("1 chained"));
    QCOMPARE(c.live(), 0);
}

// ================================ threads ================================

void tst_Promise::thread_resolve_wakes_sleeping_loop() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    int got = 0;
    bool onLoopThread = false;
    (void)pr.promise.then([&](int v) {
        got = v;
        onLoopThread = loop.isLoopThread();
    });
    Watchdog wd(loop);
    std::atomic<bool> answered{false};
    std::thread t([&, r = pr.resolver] {
        std::this_thread::sleep_for(20ms); // most likely the loop sleeps by now (not required)
        answered = r.resolve(42);
    });
    while (got == 0 && !wd.fired()) {
        if (!loop.runOnce(kForever).ok())
            break;
    }
    t.join();
    wd.dismiss();
    QVERIFY(!wd.fired());
    QVERIFY(answered.load());
    QCOMPARE(got, 42);
    QVERIFY(onLoopThread);
}

void tst_Promise::thread_resolver_adopts_from_other_thread() {
    Loop loop;
    auto p = makePromise<int>(loop);
    auto q = makePromise<int>(loop);
    std::atomic<bool> first{false}, second{false};
    std::thread t([&] {
        first = p.resolver.resolve(q.promise);
        second = q.resolver.resolve(5);
    });
    t.join();
    QVERIFY(first.load());
    QVERIFY(second.load());
    QVERIFY(drain(loop));
    QCOMPARE(p.promise.value(), 5);
}

void tst_Promise::thread_racing_resolvers_exactly_one_wins() {
    constexpr int kRounds = 40;
    constexpr int kThreads = 8;
    Loop loop;
    Rejections rej(loop);
    for (int round = 0; round < kRounds; ++round) {
        auto pr = makePromise<int>(loop);
        int fulfilled = 0, rejected = 0, value = -1;
        QString reason;
        (void)pr.promise.then(
            [&](int v) {
                ++fulfilled;
                value = v;
            },
            [&](std::exception_ptr e) {
                ++rejected;
                reason = whatOf(e);
            });
        std::atomic<bool> go{false};
        std::atomic<int> wins{0}, winner{-1}, finished{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < kThreads; ++i)
            ts.emplace_back([&, i, r = pr.resolver] {
                while (!go.load())
                    std::this_thread::yield();
                const bool won =
                    i % 2 == 0 ? r.resolve(i) : r.reject(std::runtime_error(std::to_string(i)));
                if (won) {
                    wins.fetch_add(1);
                    winner = i;
                }
                finished.fetch_add(1);
            });
        go = true;
        // The loop runs while they race.
        const bool done =
            runUntil(loop, [&] { return finished.load() == kThreads && fulfilled + rejected > 0; });
        for (auto& t : ts)
            t.join();
        QVERIFY(done);
        QVERIFY(drain(loop));
        QCOMPARE(wins.load(), 1);
        QCOMPARE(fulfilled + rejected, 1);
        const int w = winner.load();
        if (w % 2 == 0) {
            QCOMPARE(fulfilled, 1);
            QCOMPARE(value, w);
        } else {
            QCOMPARE(rejected, 1);
            QCOMPARE(reason, QString::number(w));
        }
    }
    QCOMPARE(rej.summary(), QString());
}

void tst_Promise::thread_resolver_after_loop_destroyed_returns_false() {
    Counter c;
    int runs = 0;
    std::optional<Promise<int>> p;
    std::optional<Resolver<int>> r, untouched;
    std::optional<Resolver<void>> rv;
    {
        auto loop = std::make_unique<Loop>();
        auto pr = makePromise<int>(*loop);
        p = pr.promise;
        r = pr.resolver;
        untouched = makePromise<int>(*loop).resolver;
        rv = makePromise<void>(*loop).resolver;
        (void)p->then([&runs, k = Counted(&c)](int) { ++runs; });
        loop.reset();
    }
    QVERIFY(!r->resolve(1));
    QVERIFY(!r->reject(error("r")));
    std::atomic<int> trues{0};
    std::thread t([&] {
        trues += untouched->resolve(2) ? 1 : 0;
        trues += untouched->reject(error("x")) ? 1 : 0;
        trues += rv->resolve() ? 1 : 0;
    });
    t.join();
    QCOMPARE(trues.load(), 0);
    QCOMPARE(runs, 0);
    p.reset();
    r.reset();
    QCOMPARE(c.live(), 0);
}

void tst_Promise::thread_resolvers_racing_loop_destruction() {
    constexpr int kN = 2000;
    Counter c;
    std::vector<Promise<int>> ps;
    std::vector<Resolver<int>> rs;
    auto loop = std::make_unique<Loop>();
    for (int i = 0; i < kN; ++i) {
        auto pr = makePromise<int>(*loop);
        (void)pr.promise.then([k = Counted(&c)](int) {});
        ps.push_back(pr.promise);
        rs.push_back(pr.resolver);
    }
    std::atomic<bool> started{false};
    std::atomic<int> answers{0};
    std::thread t([&] {
        started = true;
        for (auto& r : rs) {
            (void)r.resolve(1); // true or false, depending on the race; never a crash
            answers.fetch_add(1);
        }
    });
    while (!started.load())
        std::this_thread::yield();
    loop.reset();
    t.join();
    QCOMPARE(answers.load(), kN);
    for (auto& r : rs)
        QVERIFY(!r.resolve(2)); // all claimed, or the loop is gone
    ps.clear();
    rs.clear();
    QCOMPARE(c.live(), 0);
}

void tst_Promise::thread_then_from_other_thread_runs_on_loop_thread() {
    Loop loop;
    auto settled = resolvedPromise<int>(loop, 1);
    auto pending = makePromise<int>(loop);
    std::vector<std::string> log; // loop thread only
    std::atomic<int> offLoop{0};
    std::atomic<bool> registered{false};
    std::thread t([&] {
        for (int i = 0; i < 3; ++i)
            (void)settled.then([&, i](int v) {
                if (!loop.isLoopThread())
                    offLoop.fetch_add(1);
                log.push_back(std::to_string(i) + ":" + std::to_string(v));
            });
        (void)pending.promise
            .catch_([&](std::exception_ptr) {
                offLoop.fetch_add(100);
                return 0;
            })
            .finally([&] {
                if (!loop.isLoopThread())
                    offLoop.fetch_add(1);
                log.push_back("finally");
            })
            .then([&](int v) {
                if (!loop.isLoopThread())
                    offLoop.fetch_add(1);
                log.push_back("p:" + std::to_string(v));
            });
        registered = true;
    });
    // then() is called while the loop runs.
    const bool reg = runUntil(loop, [&] { return registered.load(); });
    t.join();
    QVERIFY(reg);
    QVERIFY(pending.resolver.resolve(5));
    QVERIFY(runUntil(loop, [&] { return log.size() == 5; }));
    QVERIFY(drain(loop));
    QCOMPARE(offLoop.load(), 0);
    QCOMPARE(joined(log), QStringLiteral("0:1 1:1 2:1 finally p:5"));
}

// ================================ bad input ================================

void tst_Promise::bad_empty_promise_throws_invalid_argument() {
    Promise<int> p;
    Promise<void> v;
    QVERIFY(!p.valid());
    QVERIFY(!v.valid());
    QVERIFY(isExactly<std::invalid_argument>(thrownBy([&] { (void)p.then([](int) {}); })));
    QVERIFY(isExactly<std::invalid_argument>(
        thrownBy([&] { (void)p.then([](int) {}, [](std::exception_ptr) {}); })));
    QVERIFY(isExactly<std::invalid_argument>(
        thrownBy([&] { (void)p.catch_([](std::exception_ptr) { return 0; }); })));
    QVERIFY(isExactly<std::invalid_argument>(thrownBy([&] { (void)p.finally([] {}); })));
    QVERIFY(isExactly<std::invalid_argument>(thrownBy([&] { (void)v.then([] {}); })));
    QVERIFY(isExactly<std::invalid_argument>(thrownBy([&] { (void)p.state(); })));
    QVERIFY(isExactly<std::invalid_argument>(thrownBy([&] { (void)p.value(); })));
    QVERIFY(isExactly<std::invalid_argument>(thrownBy([&] { (void)p.id(); })));
}

void tst_Promise::bad_reject_with_null_exception_ptr_rejects_with_invalid_argument() {
    Loop loop;
    auto pr = makePromise<int>(loop);
    auto remote = makePromise<void>(loop);
    std::exception_ptr seen;
    (void)pr.promise.catch_([&](std::exception_ptr e) {
        seen = e;
        return 0;
    });
    (void)remote.promise.catch_([](std::exception_ptr) {});
    QVERIFY(pr.resolver.reject(std::exception_ptr{}));
    std::thread t([&] { (void)remote.resolver.reject(std::exception_ptr(nullptr)); });
    t.join();
    QVERIFY(drain(loop));
    QCOMPARE(pr.promise.state(), PromiseState::Rejected);
    QVERIFY(isExactly<std::invalid_argument>(pr.promise.reason()));
    QVERIFY(seen == pr.promise.reason());
    QVERIFY(isExactly<std::invalid_argument>(remote.promise.reason()));
}

void tst_Promise::bad_reject_with_nullptr_literal_rejects_with_invalid_argument() {
    // r.reject(nullptr) means "no reason", like reject(std::exception_ptr{}): it must not be
    // taken for an exception object of type std::nullptr_t.
    Loop loop;
    auto pr = makePromise<int>(loop);
    (void)pr.promise.catch_([](std::exception_ptr) { return 0; });
    QVERIFY(pr.resolver.reject(nullptr));
    QVERIFY(drain(loop));
    QCOMPARE(pr.promise.state(), PromiseState::Rejected);
    QVERIFY(isExactly<std::invalid_argument>(pr.promise.reason()));
}

void tst_Promise::bad_value_of_non_fulfilled_promise_throws_logic_error() {
    Loop loop;
    Rejections rej(loop);
    auto pending = makePromise<int>(loop);
    auto rejected = rejectedPromise<int>(loop, error("r"));
    QVERIFY(isExactly<std::logic_error>(thrownBy([&] { (void)pending.promise.value(); })));
    QVERIFY(isExactly<std::logic_error>(thrownBy([&] { (void)rejected.value(); })));
    QVERIFY(!pending.promise.reason());
    QVERIFY(drain(loop));
    QVERIFY(isExactly<std::logic_error>(thrownBy([&] { (void)rejected.value(); })));
}

void tst_Promise::bad_default_resolver_answers_false() {
    Resolver<int> r;
    Resolver<void> v;
    QVERIFY(!r.valid());
    QVERIFY(!r.resolve(1));
    QVERIFY(!r.reject(error("r")));
    QVERIFY(!r.resolve(Promise<int>()));
    QVERIFY(!v.resolve());
}

QTEST_APPLESS_MAIN(tst_Promise)
#include "tst_promise.moc"
