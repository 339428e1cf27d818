// Task: a move-only callable with inline storage.
//
// Queues store Tasks by value in pre-allocated slots, so a callable that fits kInlineSize bytes
// (and is nothrow-movable) costs no heap allocation to submit. Larger callables are boxed on the
// heap once, at construction. An empty Task ("null callable") is never stored by the loop: every
// API that takes one rejects it with Errc::NullCallable.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

namespace libloop {

template <class Signature> class Function;

template <class R, class... Args> class Function<R(Args...)> {
public:
    static constexpr std::size_t kInlineSize = 48;

    Function() noexcept = default;
    Function(std::nullptr_t) noexcept {}

    template <class F, class D = std::decay_t<F>,
              class = std::enable_if_t<!std::is_same_v<D, Function> &&
                                       std::is_invocable_r_v<R, D&, Args...>>>
    Function(F&& f) {
        // A null function pointer or an empty std::function stays an empty Task.
        if constexpr (requires(const D& d) { d == nullptr; }) {
            if (f == nullptr)
                return;
        }
        if constexpr (fitsInline<D>()) {
            ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
            ops_ = &inlineOps<D>;
        } else {
            *reinterpret_cast<D**>(storage_) = new D(std::forward<F>(f));
            ops_ = &heapOps<D>;
        }
    }

    Function(Function&& other) noexcept { moveFrom(other); }
    Function& operator=(Function&& other) noexcept {
        if (this != &other) {
            reset();
            moveFrom(other);
        }
        return *this;
    }
    Function& operator=(std::nullptr_t) noexcept {
        reset();
        return *this;
    }
    Function(const Function&) = delete;
    Function& operator=(const Function&) = delete;
    ~Function() { reset(); }

    explicit operator bool() const noexcept { return ops_ != nullptr; }
    friend bool operator==(const Function& f, std::nullptr_t) noexcept { return !f; }

    // Precondition: not empty.
    R operator()(Args... args) { return ops_->invoke(storage_, std::forward<Args>(args)...); }

    // True when the callable lives in the inline buffer (no heap allocation was made).
    bool isInline() const noexcept { return ops_ && ops_->isInline; }

    void reset() noexcept {
        if (ops_) {
            if (!ops_->trivial)
                ops_->destroy(storage_);
            ops_ = nullptr;
        }
    }

private:
    struct Ops {
        R (*invoke)(void*, Args&&...);
        void (*moveTo)(void* from, void* to) noexcept; // leaves `from` destroyed
        void (*destroy)(void*) noexcept;
        bool isInline;
        // Inline, trivially copyable and destructible (e.g. a lambda capturing pointers and
        // references): moved with a plain copy of the buffer and never destroyed, so queues
        // move it without an indirect call.
        bool trivial;
    };

    template <class D> static constexpr bool fitsInline() {
        return sizeof(D) <= kInlineSize && alignof(D) <= alignof(std::max_align_t) &&
               std::is_nothrow_move_constructible_v<D>;
    }

    template <class D>
    static constexpr Ops inlineOps = {
        [](void* s, Args&&... a) -> R {
            return std::invoke(*std::launder(static_cast<D*>(s)), std::forward<Args>(a)...);
        },
        [](void* from, void* to) noexcept {
            D* f = std::launder(static_cast<D*>(from));
            ::new (to) D(std::move(*f));
            f->~D();
        },
        [](void* s) noexcept { std::launder(static_cast<D*>(s))->~D(); },
        true,
        std::is_trivially_copyable_v<D>&& std::is_trivially_destructible_v<D>,
    };

    template <class D>
    static constexpr Ops heapOps = {
        [](void* s, Args&&... a) -> R {
            return std::invoke(**static_cast<D**>(s), std::forward<Args>(a)...);
        },
        [](void* from, void* to) noexcept { *static_cast<D**>(to) = *static_cast<D**>(from); },
        [](void* s) noexcept { delete *static_cast<D**>(s); },
        false,
        false,
    };

    void moveFrom(Function& other) noexcept {
        if (other.ops_) {
            if (other.ops_->trivial)
                std::memcpy(storage_, other.storage_, kInlineSize);
            else
                other.ops_->moveTo(other.storage_, storage_);
            ops_ = other.ops_;
            other.ops_ = nullptr;
        }
    }

    alignas(std::max_align_t) unsigned char storage_[kInlineSize];
    const Ops* ops_ = nullptr;
};

// The unit of work of every queue.
using Task = Function<void()>;

} // namespace libloop
