// libloop::Promise<T> — Promise/A+ promises on a Loop, with ECMAScript's job ordering.
//
//   auto [p, r] = libloop::makePromise<int>(loop);
//   p.then([](int x) { return std::to_string(x); })     // Promise<std::string>
//    .then([](const std::string& s) { use(s); })        // Promise<void>
//    .catch_([](std::exception_ptr e) { report(e); });
//   std::thread([r] { r.resolve(42); }).detach();         // a Resolver works from any thread
//
// Semantics (each is a test in tests/libloop/tst_promise.cpp, named after its Promise/A+ clause):
// - Reactions run as microtasks on the owning loop, never synchronously inside then() or
//   resolve(); each handler runs at most once; a promise's handlers run in registration order.
// - A handler may return a value, a Promise<U> (adopted: the derived promise follows it, after
//   ECMAScript's NewPromiseResolveThenableJob: two extra microtask ticks when it is already
//   settled), or throw (the derived promise rejects with the exception). then() deduces the derived
//   type from the fulfilment handler: returning U or Promise<U> makes a Promise<U>; returning
//   nothing a Promise<void>.
// - Resolving a promise with itself (directly, or a handler returning its own derived promise)
//   rejects it with PromiseTypeError. Only the first resolve/reject counts; later ones are
//   ignored (and answer false).
// - Settling releases every handler: a settled promise holds its value or reason, no closure.
// - Unhandled rejections: a promise rejected with no handler at the end of a microtask checkpoint
//   (one that emptied the queue) is reported to the loop's rejection hook as Unhandled; a handler
//   attached to it later reports HandledLater from a task (HTML's unhandledrejection /
//   rejectionhandled). The default hook prints one line on stderr for each.
//
// Threads. A Resolver may be used from any thread at any time, even after the Loop was
// destroyed (it then answers false). then(), catch_() and finally() may be called from any thread
// while the Loop is alive: off the loop thread the registration is queued to it as a microtask.
// state(), value() and reason() are [loop thread]. Values are shared by all handlers of a promise
// (handlers receive `const T&`), so T must be copy-constructible.
//
// Memory: a pending promise owns its handlers until it settles. A handler that captures a handle
// of the promise it is attached to forms a reference cycle while that promise is pending (C++
// has no garbage collector): settle the promise, or capture a std::weak_ptr-like flag, to break it.
//
// A Promise is a cheap handle (one shared pointer). A default-constructed one is empty: then()
// & co. on it throw std::invalid_argument, and a handler returning one rejects its derived
// promise with PromiseTypeError.
#pragma once

#include <libloop/loop.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace libloop {

template <class T> class Promise;
template <class T> class Resolver;
template <class T> struct PromiseAndResolver;
template <class T> PromiseAndResolver<T> makePromise(Loop& loop);

enum class PromiseState : std::uint8_t { Pending, Fulfilled, Rejected };
const char* promiseStateName(PromiseState s) noexcept;

// ECMAScript's TypeError for promises: self-resolution, adopting an empty promise.
class PromiseTypeError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// any() rejects with this when every input rejected (or there were none). errors() holds the
// reasons in input order.
class AggregateError : public std::runtime_error {
public:
    explicit AggregateError(std::vector<std::exception_ptr> errors);
    const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }

private:
    std::vector<std::exception_ptr> errors_;
};

enum class RejectionEvent : std::uint8_t { Unhandled, HandledLater };

struct RejectionInfo {
    RejectionEvent event;
    std::uint64_t promiseId; // unique in the process (Promise::id())
    std::exception_ptr reason;
};

// Called on the loop thread. An exception escaping the hook is swallowed.
using RejectionHook = std::function<void(const RejectionInfo&)>;

// [loop thread] Replaces the loop's rejection hook; an empty hook restores the default (one line
// on stderr per event).
void setRejectionHook(Loop& loop, RejectionHook hook);

// The outcome of one input of allSettled().
template <class T> struct Settled {
    PromiseState state = PromiseState::Pending;
    std::optional<T> value;    // when Fulfilled
    std::exception_ptr reason; // when Rejected
};
template <> struct Settled<void> {
    PromiseState state = PromiseState::Pending;
    std::exception_ptr reason;
};

namespace detail {

struct LoopAnchor;

struct Unit {};
template <class T> using Stored = std::conditional_t<std::is_void_v<T>, Unit, T>;

template <class R> struct Unwrap { using type = std::remove_cvref_t<R>; };
template <class V> struct Unwrap<Promise<V>> { using type = V; };
template <class R> using UnwrapT = typename Unwrap<std::remove_cvref_t<R>>::type;

template <class R> inline constexpr bool isPromise = false;
template <class V> inline constexpr bool isPromise<Promise<V>> = true;

// The result of a fulfilment handler for a Promise<T>.
template <class F, class T> struct OnFulfilled { using type = std::invoke_result_t<F&, const T&>; };
template <class F> struct OnFulfilled<F, void> { using type = std::invoke_result_t<F&>; };
template <class F, class T> using OnFulfilledT = typename OnFulfilled<F, T>::type;
template <class G> using OnRejectedT = std::invoke_result_t<G&, std::exception_ptr>;

// The non-template half of a promise: identity, state, reason, rejection tracking and the route
// to the loop thread. Everything except `claimed` is touched on the loop thread only.
class PromiseCore : public std::enable_shared_from_this<PromiseCore> {
public:
    explicit PromiseCore(Loop& loop);
    virtual ~PromiseCore();
    PromiseCore(const PromiseCore&) = delete;
    PromiseCore& operator=(const PromiseCore&) = delete;

    Loop& loop;
    const std::uint64_t id;
    PromiseState state = PromiseState::Pending;
    std::exception_ptr reason;
    bool handled = false;  // a reaction was attached (or it was adopted) at some point
    bool notified = false; // reported as Unhandled
    // First resolve/reject (from any thread) wins; it "locks in" the promise even while it waits
    // for an adopted promise.
    std::atomic<bool> claimed{false};

    // Runs `fn` on the loop thread: inline when called there, else as a microtask. False (and
    // `fn` destroyed unrun) when the loop no longer accepts work or is gone.
    bool onLoopThread(Task fn);
    // [loop thread] Bookkeeping of HTML's HostPromiseRejectionTracker.
    void noteRejected();
    void noteHandled();
    bool queue(Task job); // [loop thread] a microtask

private:
    std::shared_ptr<LoopAnchor> anchor_;
};

template <class T> class State;

template <class T> class Reaction {
public:
    virtual ~Reaction() = default;
    virtual void run(State<T>& settled) = 0;
};

template <class T> class State final : public PromiseCore {
public:
    using PromiseCore::PromiseCore;

    std::optional<Stored<T>> value;
    std::vector<std::unique_ptr<Reaction<T>>> reactions;

    std::shared_ptr<State> self() { return std::static_pointer_cast<State>(shared_from_this()); }

    // [loop thread] The settling primitives; no-ops once settled.
    void fulfill(Stored<T> v) {
        if (state != PromiseState::Pending)
            return;
        value.emplace(std::move(v));
        state = PromiseState::Fulfilled;
        flush();
    }
    void reject(std::exception_ptr e) {
        if (state != PromiseState::Pending)
            return;
        reason = std::move(e);
        state = PromiseState::Rejected;
        if (!handled)
            noteRejected();
        flush();
    }

    // [loop thread] Attaches a reaction (runs as a microtask once settled).
    void attach(std::unique_ptr<Reaction<T>> r) {
        if (state == PromiseState::Rejected && !handled)
            noteHandled();
        handled = true;
        if (state == PromiseState::Pending)
            reactions.push_back(std::move(r));
        else
            queueReaction(std::move(r));
    }

    // [loop thread] The Promise Resolution Procedure (Promise/A+ 2.3) for a handler's result.
    template <class R> void resolveWith(R&& x) {
        if constexpr (isPromise<std::remove_cvref_t<R>>) {
            adopt(x.state_);
        } else {
            fulfill(Stored<T>(std::forward<R>(x)));
        }
    }

    void adopt(const std::shared_ptr<State<T>>& other);

private:
    void flush() {
        // Moved out and the vector's storage freed: a settled promise holds no closure.
        std::vector<std::unique_ptr<Reaction<T>>> rs;
        rs.swap(reactions);
        for (auto& r : rs)
            queueReaction(std::move(r));
    }
    void queueReaction(std::unique_ptr<Reaction<T>> r) {
        (void)queue([s = self(), r = std::move(r)]() mutable {
            auto mine = std::move(r); // destroyed (with its handlers) as soon as it has run
            mine->run(*s);
        });
    }
};

// Settles `target` like its source (adoption, pass-through of the other outcome).
template <class T> class FollowReaction final : public Reaction<T> {
public:
    explicit FollowReaction(std::shared_ptr<State<T>> target) : target_(std::move(target)) {}
    void run(State<T>& s) override {
        if (s.state == PromiseState::Fulfilled)
            target_->fulfill(*s.value);
        else
            target_->reject(s.reason);
    }

private:
    std::shared_ptr<State<T>> target_;
};

template <class T> void State<T>::adopt(const std::shared_ptr<State<T>>& other) {
    if (!other) {
        reject(std::make_exception_ptr(PromiseTypeError("a handler returned an empty Promise")));
        return;
    }
    if (other.get() == this) {
        reject(std::make_exception_ptr(
            PromiseTypeError("chaining cycle: a promise cannot be resolved with itself")));
        return;
    }
    // NewPromiseResolveThenableJob: then() is called on the adopted promise from a microtask.
    (void)queue([other, me = self()] { other->attach(std::make_unique<FollowReaction<T>>(me)); });
}

template <class F, class... A> decltype(auto) invokeHandler(F& f, A&&... a) {
    return std::invoke(f, std::forward<A>(a)...);
}

// Runs a handler and resolves `derived` with what it returns (or rejects with what it throws).
template <class U, class F, class... A> void settleFromHandler(State<U>& derived, F& f, A&&... a) {
    try {
        if constexpr (std::is_void_v<std::invoke_result_t<F&, A...>>) {
            std::invoke(f, std::forward<A>(a)...);
            derived.fulfill(Stored<U>{});
        } else {
            derived.resolveWith(std::invoke(f, std::forward<A>(a)...));
        }
    } catch (...) {
        derived.reject(std::current_exception());
    }
}

struct NoHandler {};

template <class T, class U, class F, class G> class ThenReaction final : public Reaction<T> {
public:
    ThenReaction(std::shared_ptr<State<U>> d, F f, G g)
        : derived_(std::move(d)), onFulfilled_(std::move(f)), onRejected_(std::move(g)) {}

    void run(State<T>& s) override {
        if (s.state == PromiseState::Fulfilled) {
            if constexpr (std::is_same_v<F, NoHandler>) {
                derived_->fulfill(*s.value); // 2.2.7.3: T == U
            } else if constexpr (std::is_void_v<T>) {
                settleFromHandler(*derived_, onFulfilled_);
            } else {
                const T& v = *s.value;
                settleFromHandler(*derived_, onFulfilled_, v);
            }
        } else {
            if constexpr (std::is_same_v<G, NoHandler>)
                derived_->reject(s.reason); // 2.2.7.4
            else
                settleFromHandler(*derived_, onRejected_, s.reason);
        }
    }

private:
    std::shared_ptr<State<U>> derived_;
    [[no_unique_address]] F onFulfilled_;
    [[no_unique_address]] G onRejected_;
};

} // namespace detail

template <class T> class Promise {
    static_assert(!detail::isPromise<T>, "Promise<Promise<T>> does not exist: use Promise<T>");
    static_assert(std::is_void_v<T> || std::is_copy_constructible_v<T>,
                  "a promise's value is shared by its handlers: T must be copy-constructible");

public:
    using ValueType = T;

    Promise() = default; // empty (see the header comment)

    bool valid() const noexcept { return bool(state_); }
    Loop& loop() const { return core().loop; }
    std::uint64_t id() const { return core().id; }
    // [loop thread]
    PromiseState state() const { return core().state; }
    // [loop thread] The value of a fulfilled promise (std::logic_error otherwise).
    template <class V = T>
    requires(!std::is_void_v<V>) const V& value() const {
        if (core().state != PromiseState::Fulfilled)
            throw std::logic_error("libloop::Promise::value(): the promise is not fulfilled");
        return *state_->value;
    }
    // [loop thread] The reason of a rejected promise (null otherwise).
    std::exception_ptr reason() const { return core().reason; }

    // Promise/A+ then: onFulfilled(const T&) (or () for Promise<void>) and
    // onRejected(std::exception_ptr) must resolve the derived promise to the same type.
    template <class F> auto then(F onFulfilled) const {
        using U = detail::UnwrapT<detail::OnFulfilledT<F, T>>;
        return chain<U>(std::move(onFulfilled), detail::NoHandler{});
    }
    template <class F, class G> auto then(F onFulfilled, G onRejected) const {
        using U = detail::UnwrapT<detail::OnFulfilledT<F, T>>;
        static_assert(std::is_same_v<detail::UnwrapT<detail::OnRejectedT<G>>, U>,
                      "then(f, g): g must return what f returns (the derived promise's type)");
        return chain<U>(std::move(onFulfilled), std::move(onRejected));
    }
    // ECMAScript's catch: the value passes through, onRejected may recover with a T.
    template <class G> Promise<T> catch_(G onRejected) const {
        static_assert(std::is_same_v<detail::UnwrapT<detail::OnRejectedT<G>>, T>,
                      "catch_(g): g must return the promise's value type (or a Promise of it)");
        return chain<T>(detail::NoHandler{}, std::move(onRejected));
    }
    // ECMAScript's finally: onFinally() runs on either outcome; the outcome passes through,
    // after the promise onFinally returns (if any) settles. onFinally throwing, or its promise
    // rejecting, rejects the derived promise with that reason instead.
    template <class F> Promise<T> finally(F onFinally) const;

private:
    template <class> friend class Promise;
    template <class> friend class Resolver;
    template <class> friend class detail::State;
    template <class V> friend struct PromiseAndResolver;
    template <class V> friend PromiseAndResolver<V> makePromise(Loop&);

    explicit Promise(std::shared_ptr<detail::State<T>> s) : state_(std::move(s)) {}

    const detail::State<T>& core() const {
        if (!state_)
            throw std::invalid_argument("libloop::Promise: empty promise");
        return *state_;
    }

    template <class U, class F, class G> Promise<U> chain(F f, G g) const {
        (void)core();
        auto derived = std::make_shared<detail::State<U>>(state_->loop);
        std::unique_ptr<detail::Reaction<T>> r =
            std::make_unique<detail::ThenReaction<T, U, F, G>>(derived, std::move(f), std::move(g));
        if (state_->loop.isLoopThread())
            state_->attach(std::move(r));
        else
            (void)state_->onLoopThread(
                [s = state_, r = std::move(r)]() mutable { s->attach(std::move(r)); });
        return Promise<U>(std::move(derived));
    }

    std::shared_ptr<detail::State<T>> state_;
};

// The resolving functions of a promise. Copyable; every copy resolves the same promise; the
// first resolve/reject of any copy wins. [any thread]
template <class T> class Resolver {
public:
    Resolver() = default;

    // True when this call resolved the promise; false when it was already resolved, or the loop
    // no longer accepts work (closed, or destroyed).
    template <class V = T>
    requires(!std::is_void_v<V>) bool resolve(V value) const {
        return settle(
            [v = std::move(value)](detail::State<T>& s) mutable { s.fulfill(std::move(v)); });
    }
    template <class V = T>
    requires std::is_void_v<V>
    bool resolve() const {
        return settle([](detail::State<T>& s) { s.fulfill(detail::Unit{}); });
    }
    // Adopts `p` (rejects with PromiseTypeError if `p` is this promise or empty).
    bool resolve(Promise<T> p) const {
        return settle([p = std::move(p)](detail::State<T>& s) { s.adopt(p.state_); });
    }
    // A null exception_ptr is replaced by a std::invalid_argument saying so (a reason is never
    // null, so handlers can always rethrow it).
    bool reject(std::exception_ptr e) const {
        if (!e)
            e = std::make_exception_ptr(
                std::invalid_argument("libloop::Resolver::reject: empty exception_ptr"));
        return settle([e = std::move(e)](detail::State<T>& s) { s.reject(e); });
    }
    bool reject(std::nullptr_t) const { return reject(std::exception_ptr()); }
    template <class E>
    requires(!std::is_same_v<std::remove_cvref_t<E>, std::exception_ptr> &&
             !std::is_same_v<std::remove_cvref_t<E>, std::nullptr_t>) bool reject(E&& error) const {
        return reject(std::make_exception_ptr(std::forward<E>(error)));
    }

    bool valid() const noexcept { return bool(state_); }

private:
    template <class V> friend PromiseAndResolver<V> makePromise(Loop&);
    explicit Resolver(std::shared_ptr<detail::State<T>> s) : state_(std::move(s)) {}

    template <class Op> bool settle(Op op) const {
        if (!state_ || state_->claimed.exchange(true, std::memory_order_acq_rel))
            return false;
        return state_->onLoopThread([s = state_, op = std::move(op)]() mutable { op(*s); });
    }

    std::shared_ptr<detail::State<T>> state_;
};

template <class T> struct PromiseAndResolver {
    Promise<T> promise;
    Resolver<T> resolver;
};

// A pending promise owned by `loop`, and its resolver. [any thread]
template <class T> PromiseAndResolver<T> makePromise(Loop& loop) {
    auto s = std::make_shared<detail::State<T>>(loop);
    return {Promise<T>(s), Resolver<T>(s)};
}

// JS's `new Promise(executor)`: runs executor(resolver) synchronously; an exception it throws
// rejects the promise (unless it already resolved).
template <class T, class E> Promise<T> makePromise(Loop& loop, E executor) {
    auto [p, r] = makePromise<T>(loop);
    try {
        executor(r);
    } catch (...) {
        r.reject(std::current_exception());
    }
    return p;
}

// Promise.resolve / Promise.reject. (Resolving from the loop thread settles at once.)
template <class T> Promise<T> resolvedPromise(Loop& loop, detail::Stored<T> value) {
    auto [p, r] = makePromise<T>(loop);
    if constexpr (std::is_void_v<T>)
        r.resolve();
    else
        r.resolve(std::move(value));
    return p;
}
inline Promise<void> resolvedPromise(Loop& loop) {
    return resolvedPromise<void>(loop, detail::Unit{});
}
template <class T> Promise<T> rejectedPromise(Loop& loop, std::exception_ptr reason) {
    auto [p, r] = makePromise<T>(loop);
    r.reject(std::move(reason));
    return p;
}

template <class T> template <class F> Promise<T> Promise<T>::finally(F onFinally) const {
    Loop& l = core().loop;
    auto f = std::make_shared<F>(std::move(onFinally));
    // then(thenFinally, catchFinally) (ECMAScript 27.2.5.3): each calls onFinally(), resolves its
    // result and chains the thunk restoring the original outcome directly on that promise.
    using R = std::invoke_result_t<F&>;
    auto settleAfter = [f, loop = &l](auto thunk) {
        if constexpr (detail::isPromise<std::remove_cvref_t<R>>) {
            (void)loop; // only the other branch needs it (clang: -Wunused-lambda-capture)
            return (*f)().then([thunk](const auto&...) { return thunk(); });
        } else {
            (*f)();
            return resolvedPromise(*loop).then([thunk] { return thunk(); });
        }
    };
    if constexpr (std::is_void_v<T>) {
        return chain<void>([settleAfter] { return settleAfter([] {}); },
                           [settleAfter](std::exception_ptr e) {
                               return settleAfter([e] { std::rethrow_exception(e); });
                           });
    } else {
        return chain<T>([settleAfter](const T& v) { return settleAfter([v] { return v; }); },
                        [settleAfter](std::exception_ptr e) {
                            return settleAfter([e]() -> T { std::rethrow_exception(e); });
                        });
    }
}

// ---- combinators (no thread is started; everything runs as reactions on the loop) ----

namespace detail {
template <class T> struct AllState {
    std::vector<std::optional<Stored<T>>> values;
    std::size_t remaining = 0;
};
} // namespace detail

// Promise.all: fulfils with every value in input order once all fulfil; rejects with the first
// rejection. An empty input fulfils at once. All inputs must belong to `loop`.
template <class T> auto all(Loop& loop, const std::vector<Promise<T>>& inputs) {
    using Out = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
    auto pr = makePromise<Out>(loop);
    Resolver<Out> r = pr.resolver;
    auto st = std::make_shared<detail::AllState<T>>();
    st->values.resize(inputs.size());
    st->remaining = inputs.size();
    auto finish = [st, r] {
        if constexpr (std::is_void_v<T>) {
            r.resolve();
        } else {
            std::vector<T> out;
            out.reserve(st->values.size());
            for (auto& v : st->values)
                out.push_back(std::move(*v));
            r.resolve(std::move(out));
        }
    };
    if (inputs.empty()) {
        finish();
        return pr.promise;
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        auto onValue = [st, i, finish](const auto&... v) {
            if constexpr (sizeof...(v) == 1)
                st->values[i].emplace(v...);
            else
                st->values[i].emplace();
            if (--st->remaining == 0)
                finish();
        };
        (void)inputs[i].then(std::move(onValue), [r](std::exception_ptr e) { r.reject(e); });
    }
    return pr.promise;
}

// Promise.allSettled: fulfils with every outcome in input order once all settled.
template <class T>
Promise<std::vector<Settled<T>>> allSettled(Loop& loop, const std::vector<Promise<T>>& in) {
    auto pr = makePromise<std::vector<Settled<T>>>(loop);
    Resolver<std::vector<Settled<T>>> r = pr.resolver;
    struct Acc {
        std::vector<Settled<T>> out;
        std::size_t remaining = 0;
    };
    auto acc = std::make_shared<Acc>();
    acc->out.resize(in.size());
    acc->remaining = in.size();
    if (in.empty()) {
        r.resolve(std::vector<Settled<T>>{});
        return pr.promise;
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
        auto done = [acc, r] {
            if (--acc->remaining == 0)
                r.resolve(std::move(acc->out));
        };
        (void)in[i].then(
            [acc, i, done](const auto&... v) {
                acc->out[i].state = PromiseState::Fulfilled;
                if constexpr (sizeof...(v) == 1)
                    acc->out[i].value.emplace(v...);
                done();
            },
            [acc, i, done](std::exception_ptr e) {
                acc->out[i].state = PromiseState::Rejected;
                acc->out[i].reason = e;
                done();
            });
    }
    return pr.promise;
}

// Promise.race: settles like the first input to settle. An empty input stays pending forever.
template <class T> Promise<T> race(Loop& loop, const std::vector<Promise<T>>& inputs) {
    auto pr = makePromise<T>(loop);
    Resolver<T> r = pr.resolver;
    for (const auto& in : inputs) {
        (void)in.then(
            [r](const auto&... v) {
                // On T, not on the pack: a branch that does not depend on the lambda's own
                // parameters is checked eagerly by clang.
                if constexpr (std::is_void_v<T>)
                    r.resolve();
                else
                    r.resolve(v...);
            },
            [r](std::exception_ptr e) { r.reject(e); });
    }
    return pr.promise;
}

// Promise.any: fulfils like the first input to fulfil; rejects with an AggregateError holding
// every reason (input order) when all reject, or at once for an empty input.
template <class T> Promise<T> any(Loop& loop, const std::vector<Promise<T>>& inputs) {
    auto pr = makePromise<T>(loop);
    Resolver<T> r = pr.resolver;
    struct Acc {
        std::vector<std::exception_ptr> errors;
        std::size_t remaining = 0;
    };
    auto acc = std::make_shared<Acc>();
    acc->errors.resize(inputs.size());
    acc->remaining = inputs.size();
    if (inputs.empty()) {
        r.reject(AggregateError({}));
        return pr.promise;
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        (void)inputs[i].then(
            [r](const auto&... v) {
                // On T, not on the pack: a branch that does not depend on the lambda's own
                // parameters is checked eagerly by clang.
                if constexpr (std::is_void_v<T>)
                    r.resolve();
                else
                    r.resolve(v...);
            },
            [r, acc, i](std::exception_ptr e) {
                acc->errors[i] = e;
                if (--acc->remaining == 0)
                    r.reject(AggregateError(std::move(acc->errors)));
            });
    }
    return pr.promise;
}

} // namespace libloop
