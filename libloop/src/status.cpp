#include <libloop/loop.h>
#include <libloop/metrics.h>
#include <libloop/status.h>

namespace libloop {

const char* errcName(Errc e) noexcept {
    switch (e) {
    case Errc::Ok:
        return "ok";
    case Errc::NullCallable:
        return "null callable";
    case Errc::NotAccepting:
        return "loop is not accepting work (shutting down or closed)";
    case Errc::WrongThread:
        return "called from a thread that is not the loop thread";
    case Errc::InvalidArgument:
        return "invalid argument";
    case Errc::TooManyTimers:
        return "too many pending timers";
    case Errc::NotFound:
        return "not found";
    case Errc::AlreadyExists:
        return "already registered";
    case Errc::FastPathConflict:
        return "forced fast path and registered fds exclude each other";
    case Errc::Busy:
        return "another thread is running the loop";
    case Errc::SystemError:
        return "system call failed";
    case Errc::IdsExhausted:
        return "id space exhausted";
    }
    return "unknown error";
}

const char* fastPathModeName(FastPathMode m) noexcept {
    switch (m) {
    case FastPathMode::Auto:
        return "auto";
    case FastPathMode::Forced:
        return "forced";
    case FastPathMode::Disabled:
        return "disabled";
    }
    return "unknown";
}

const char* loopStateName(LoopState s) noexcept {
    switch (s) {
    case LoopState::Idle:
        return "idle";
    case LoopState::Running:
        return "running";
    case LoopState::Sleeping:
        return "sleeping";
    case LoopState::ShuttingDown:
        return "shutting-down";
    case LoopState::Closed:
        return "closed";
    }
    return "unknown";
}

const char* callbackKindName(CallbackKind k) noexcept {
    switch (k) {
    case CallbackKind::Task:
        return "task";
    case CallbackKind::Microtask:
        return "microtask";
    case CallbackKind::Timer:
        return "timer";
    case CallbackKind::Fd:
        return "fd";
    }
    return "unknown";
}

} // namespace libloop
