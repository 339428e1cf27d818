// The probe server: one thread running its own libloop::Loop, a listening AF_UNIX socket and
// the clients' sockets registered on it, and one sampling timer. Private to libloop_qtbridge;
// probe.cpp owns the only instance (see libloop/qt/probe.h for the public side).
#pragma once

#include <libloop/metrics.h>
#include <libloop/qt/probe.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace libloop {
class Loop;
}

namespace libloop::protocol {
struct LoopMetrics;
}

namespace libloop::qt::detail {

// libloop::MetricsSnapshot -> its protocol mirror (the probe is the only place that sees both).
void toWire(const libloop::MetricsSnapshot& s, std::uint64_t id, protocol::LoopMetrics& out);

struct ProbeConfig {
    std::string processName; // for the hello message (unsanitized)
    std::int64_t pid = 0;
    std::int64_t startedUnixMs = 0;
    std::size_t maxClientBuffer = 1u << 20;
    std::int64_t stallNs = 10'000'000'000;
};

class ProbeServer {
public:
    // Takes ownership of `listenFd` (bound, listening, non-blocking). Returns once the probe
    // thread's loop exists and watches the socket.
    ProbeServer(ProbeConfig config, int listenFd);
    // Stops the thread, closes every client and the listening socket (the caller removes the
    // socket file).
    ~ProbeServer();
    ProbeServer(const ProbeServer&) = delete;
    ProbeServer& operator=(const ProbeServer&) = delete;

    ProbeStats stats() const;
    // False when the thread could not watch the listening socket (it has exited).
    bool started() const { return started_; }

    struct Counters {
        std::atomic<std::size_t> clients{0};
        std::atomic<std::uint64_t> accepted{0}, closed{0}, protocolErrors{0}, stalledClosed{0},
            snapshotsSent{0}, snapshotsDropped{0}, ticks{0};
    };
    struct State; // lives on the probe thread

private:
    void run();

    ProbeConfig config_;
    int listenFd_;
    Counters counters_;
    std::atomic<bool> stopping_{false};
    bool started_ = false;
    std::unique_ptr<libloop::Loop> loop_; // created on the probe thread, destroyed after join
    std::thread thread_;
};

} // namespace libloop::qt::detail
