// Error reporting for every libloop entry point that can refuse work.
//
// libloop never throws from its own API for bad input or a refused request: it answers with a
// Status (or a Result<T> carrying a value on success). A refused call has no effect: nothing is
// stored, scheduled or leaked.
#pragma once

#include <cstdint>
#include <utility>

namespace libloop {

enum class Errc : std::uint8_t {
    Ok = 0,
    NullCallable,     // an empty task / callback was passed
    NotAccepting,     // the loop is shutting down or closed: the work was not accepted
    WrongThread,      // a loop-thread-only entry point was called from another thread
    InvalidArgument,  // e.g. a negative fd, an empty event mask
    TooManyTimers,    // the timer slab is at its configured capacity
    NotFound,         // unknown id / fd not registered
    AlreadyExists,    // fd already registered
    FastPathConflict, // Forced fast path with fds registered (either order)
    Busy,             // e.g. shutdown() while another thread runs the loop and cannot be joined
    SystemError,      // a syscall failed; Status::sysErrno() holds errno
    IdsExhausted,     // no id is left to hand out (JsTimers: ids above 2^53−1)
};

// Human-readable name of an error code; never null.
const char* errcName(Errc e) noexcept;

class [[nodiscard]] Status {
public:
    constexpr Status() noexcept = default;
    constexpr Status(Errc code, int sysErrno = 0) noexcept : code_(code), errno_(sysErrno) {}

    constexpr bool ok() const noexcept { return code_ == Errc::Ok; }
    constexpr explicit operator bool() const noexcept { return ok(); }
    constexpr Errc code() const noexcept { return code_; }
    constexpr int sysErrno() const noexcept { return errno_; }
    const char* message() const noexcept { return errcName(code_); }

    friend constexpr bool operator==(Status a, Errc b) noexcept { return a.code_ == b; }

private:
    Errc code_ = Errc::Ok;
    int errno_ = 0;
};

// A value or an error (a minimal std::expected for C++20). value() on an error is a
// programming error and asserts in debug builds.
template <class T> class [[nodiscard]] Result {
public:
    Result(T value) noexcept : value_(std::move(value)) {}
    Result(Status error) noexcept : status_(error) {}
    Result(Errc error) noexcept : status_(error) {}

    bool ok() const noexcept { return status_.ok(); }
    explicit operator bool() const noexcept { return ok(); }
    Status status() const noexcept { return status_; }
    Errc code() const noexcept { return status_.code(); }
    const T& value() const& noexcept { return value_; }
    T value_or(T fallback) const noexcept { return ok() ? value_ : fallback; }

private:
    T value_{};
    Status status_{};
};

} // namespace libloop
