// PollerEpoll: a thin epoll wrapper. Level-triggered; the 64-bit event data is the caller's.
#pragma once

#include <cstdint>
#include <sys/epoll.h>

namespace libloop::detail {

class PollerEpoll {
public:
    PollerEpoll();
    ~PollerEpoll();
    PollerEpoll(const PollerEpoll&) = delete;
    PollerEpoll& operator=(const PollerEpoll&) = delete;

    bool valid() const noexcept { return fd_ >= 0; }
    // Return 0 or errno.
    int add(int fd, std::uint32_t epollEvents, std::uint64_t data) noexcept;
    int modify(int fd, std::uint32_t epollEvents, std::uint64_t data) noexcept;
    // EBADF / ENOENT / EPERM mean the fd is already gone from the kernel's view: reported as 0.
    int remove(int fd) noexcept;
    // Waits up to timeoutNs (< 0: forever). Returns the number of events (0 on timeout or EINTR).
    int wait(epoll_event* events, int max, std::int64_t timeoutNs) noexcept;

private:
    int fd_ = -1;
    bool havePwait2_ = true;
};

} // namespace libloop::detail
