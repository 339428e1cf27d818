// The probe's public entry points (libloop/qt/probe.h): the socket file's life, one
// ProbeServer at a time.
#include "probe_server.h"

#include <libloop/protocol/discovery.h>
#include <libloop/qt/probe.h>

#include <QtCore/qfile.h>
#include <QtCore/qlogging.h>
#include <QtCore/qstring.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace libloop::qt {

namespace {

struct Global {
    std::mutex mutex;
    std::unique_ptr<detail::ProbeServer> server;
    std::string path;
    pid_t owner = 0; // the process that started `server`
    bool atexitRegistered = false;
    // Servers inherited through fork(): their thread does not exist in this process, so they can
    // be neither joined nor destroyed, and the socket file is the parent's. Kept reachable.
    std::vector<detail::ProbeServer*> inherited;
};

Global& global() {
    static Global* g = new Global; // never destroyed: stopProbe() may run from atexit
    return *g;
}

// In a child created by fork() after the probe started: forget the parent's probe (with the lock
// held).
void forgetInheritedProbe(Global& g) {
    if (g.server && g.owner != ::getpid()) {
        g.inherited.push_back(g.server.release());
        g.path.clear();
    }
}

ProbeResult failure(std::string why) {
    ProbeResult r;
    r.error = std::move(why);
    return r;
}

std::string sysError(const char* what, const QString& path, int e) {
    return std::string(what) + " " + path.toStdString() + ": " + std::strerror(e);
}

void stopAtExit() {
    stopProbe();
}

bool envFlag(const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::strcmp(v, "0") != 0;
}

} // namespace

ProbeResult startProbe(const ProbeOptions& options) {
    namespace proto = libloop::protocol;
    Global& g = global();
    std::lock_guard lock(g.mutex);
    forgetInheritedProbe(g);
    if (g.server) {
        ProbeResult r;
        r.ok = true;
        r.socketPath = g.path;
        return r;
    }

    const QString dir = options.directory.empty() ? proto::defaultSocketDirectory()
                                                  : QString::fromStdString(options.directory);
    QString error;
    if (!proto::ensureSocketDirectory(dir, &error))
        return failure(error.toStdString());
    proto::removeStaleProbes(dir);

    const qint64 pid = ::getpid();
    const std::uint64_t start = proto::processStartTime(pid);
    if (start == 0)
        return failure("cannot read this process's start time from /proc/self/stat");
    const std::string name = options.name.empty() ? program_invocation_short_name : options.name;
    const QString path = proto::socketPath(dir, pid, start, QString::fromStdString(name), &error);
    if (path.isEmpty())
        return failure(error.toStdString());
    const QByteArray native = QFile::encodeName(path);

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return failure(sysError("cannot create a socket for", path, errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, native.constData(), std::size_t(native.size())); // fits: checked
    // A file with our pid and start time can only be a leftover of this very process.
    ::unlink(native.constData());
    // The directory is 0700, so nobody else can reach the socket between bind and chmod.
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::chmod(native.constData(), 0600) != 0 || ::listen(fd, 64) != 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(native.constData());
        return failure(sysError("cannot listen on", path, e));
    }

    detail::ProbeConfig config;
    config.processName = name;
    config.pid = pid;
    config.startedUnixMs = proto::startTimeToUnixMs(start);
    config.maxClientBuffer = std::max<std::size_t>(options.maxClientBuffer, 1024);
    config.stallNs = std::chrono::nanoseconds(options.stallTimeout).count();
    auto server = std::make_unique<detail::ProbeServer>(std::move(config), fd);
    if (!server->started()) {
        server.reset();
        ::unlink(native.constData());
        return failure("the probe thread could not watch its socket");
    }
    g.server = std::move(server);
    g.owner = ::getpid();
    g.path = native.toStdString();
    if (!g.atexitRegistered) {
        g.atexitRegistered = true;
        std::atexit(stopAtExit);
    }
    ProbeResult r;
    r.ok = true;
    r.socketPath = g.path;
    return r;
}

void stopProbe() {
    Global& g = global();
    std::lock_guard lock(g.mutex);
    forgetInheritedProbe(g);
    if (!g.server)
        return;
    g.server.reset(); // joins the probe thread, closes every connection
    ::unlink(g.path.c_str());
    g.path.clear();
}

bool probeRunning() {
    Global& g = global();
    std::lock_guard lock(g.mutex);
    forgetInheritedProbe(g);
    return g.server != nullptr;
}

std::string probeSocketPath() {
    Global& g = global();
    std::lock_guard lock(g.mutex);
    forgetInheritedProbe(g);
    return g.path;
}

ProbeStats probeStats() {
    Global& g = global();
    std::lock_guard lock(g.mutex);
    forgetInheritedProbe(g);
    return g.server ? g.server->stats() : ProbeStats{};
}

bool startProbeFromEnvironment() {
    const bool wasRunning = probeRunning();
    if (wasRunning || !envFlag("LIBLOOP_INSPECT"))
        return wasRunning;
    const ProbeResult r = startProbe();
    if (!r.ok) {
        qWarning("libloop: LIBLOOP_INSPECT is set but the probe did not start: %s",
                 r.error.c_str());
        return false;
    }
    if (envFlag("LIBLOOP_VERBOSE"))
        std::fprintf(stderr, "libloop: probe listening on %s\n", r.socketPath.c_str());
    return true;
}

} // namespace libloop::qt
