// The probe: publishes metrics snapshots of every libloop::Loop in this process to inspectors
// attached over a local socket (protocol: qtbridge/protocol/PROTOCOL.md).
//
//   libloop::qt::startProbe();        // or run with LIBLOOP_INSPECT=1 (see below)
//   ...                               // inspectors find it with libloop::protocol::listProbes()
//   libloop::qt::stopProbe();         // optional: also done at normal exit
//
// The probe runs on a thread of its own ("libloop-probe") with its own libloop::Loop, which is
// not published. It needs no QCoreApplication and never runs anything on an inspected loop's
// thread: it reads Loop::snapshot() (any thread, never blocks the loop) at the rate clients ask
// for (default 20 Hz, 1..100 Hz per client). Reading a snapshot resets the loop's "max since the
// previous snapshot" gauges: while a client is attached the probe is meant to be their only
// reader (it aggregates those maxima per client itself).
//
// LIBLOOP_INSPECT=1 (any value but empty or "0") starts the probe from install(), from the
// first application object constructed on a libloop dispatcher (so installGui() is covered), and
// from libloop-preload.so. LIBLOOP_VERBOSE=1 prints the socket path to stderr.
//
// Every function here is thread-safe. A child created by fork() has no probe thread: there the
// functions behave as if no probe was running (the parent's socket is left alone, also by the
// child's exit) and startProbe() starts the child's own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace libloop::qt {

struct ProbeOptions {
    // The process name in the socket's file name and the hello message; empty: the program's
    // name (program_invocation_short_name).
    std::string name;
    // The socket directory; empty: libloop::protocol::defaultSocketDirectory()
    // ($XDG_RUNTIME_DIR/libloop or /tmp/libloop-<uid>). Created 0700 when missing.
    std::string directory;
    // Outbound bytes buffered per client at most. A snapshot that does not fit is dropped for
    // that client (and counted); loops/events/errors are always queued.
    std::size_t maxClientBuffer = 1u << 20;
    // A client whose buffer stays full (snapshots dropped) this long is disconnected.
    std::chrono::milliseconds stallTimeout{10'000};
};

struct ProbeResult {
    bool ok = false;
    std::string error;      // why not (empty when ok)
    std::string socketPath; // the socket path when ok
    explicit operator bool() const noexcept { return ok; }
};

// Counters since the probe started (any thread; zeros when not running).
struct ProbeStats {
    std::size_t clients = 0;            // connections open now
    std::uint64_t accepted = 0;         // connections accepted
    std::uint64_t closed = 0;           // connections closed (any reason)
    std::uint64_t protocolErrors = 0;   // connections closed for a protocol error
    std::uint64_t stalledClosed = 0;    // connections closed by the stall rule
    std::uint64_t snapshotsSent = 0;    // snapshot frames queued to clients
    std::uint64_t snapshotsDropped = 0; // snapshot frames dropped (buffer full)
    std::uint64_t ticks = 0;            // sampling ticks (one snapshot() per loop each)
};

// Starts the probe: creates the socket directory if needed, removes stale sockets of this user
// there, binds <dir>/probe-<pid>-<starttime>-<name>.sock (mode 0600) and starts the thread.
// Idempotent: when already running it returns ok with the current path and ignores `options`.
// Errors (unusable directory, path too long, bind failure, ...) come back in ProbeResult.
ProbeResult startProbe(const ProbeOptions& options = {});

// Stops the thread, closes every connection and removes the socket. Idempotent. Also runs at
// normal process exit (atexit).
void stopProbe();

bool probeRunning();
// The socket path while running, else empty.
std::string probeSocketPath();
ProbeStats probeStats();

// Starts the probe when LIBLOOP_INSPECT is set to anything but "" or "0"; a failure is reported
// with qWarning (the application goes on without a probe). Returns probeRunning().
bool startProbeFromEnvironment();

} // namespace libloop::qt
