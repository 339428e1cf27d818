// The probe server. Everything below ProbeServer::run() happens on the probe thread; the only
// state shared with other threads is the atomic counters and the stop flag.
//
// Sampling. One timer drives everything: a "tick" takes one Loop::snapshot() of every published
// loop, then per client (that said hello) diffs the loop set and each loop's fast-path state
// against what that client was told (events, and a new "loops" list when the set changed), folds
// the snapshot's *Max gauges into the client's running maxima, and sends a snapshot to each
// subscribed client whose time has come. Deadlines are aligned on multiples of each client's
// period (so 100, 20 and 10 Hz clients share ticks), and while any client has said hello there is
// a tick at least every kEventPollNs so events flow without a subscription. With no client, no
// timer: the probe sleeps in epoll and costs nothing.
//
// Output. Each client has an outbound buffer. A frame is written straight to the socket when
// nothing is pending (the common case), otherwise appended and flushed when the socket is
// writable. A snapshot that would push the pending bytes past maxClientBuffer is dropped for that
// client (counted; its seq number is still used, so the client sees the gap) and the client is
// marked blocked; it is unblocked when its backlog drains below half the limit, and disconnected
// when it stays blocked longer than the stall timeout. Control messages (hello, loops, events,
// subscribed, error) are never dropped; a client whose backlog passes twice the limit is
// disconnected as stalled.
#include "probe_server.h"

#include <libloop/loop.h>
#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>
#include <libloop/registry.h>

#include <QtCore/qbytearray.h>
#include <QtCore/qstring.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <future>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace libloop::qt::detail {

namespace proto = libloop::protocol;

static_assert(sizeof(libloop::MetricsSnapshot) == 344,
              "libloop::MetricsSnapshot changed: update protocol::LoopMetrics, toWire() and "
              "PROTOCOL.md, then this size");

void toWire(const libloop::MetricsSnapshot& s, std::uint64_t id, proto::LoopMetrics& out) {
    auto lat = [](const libloop::LatencySummary& l) {
        proto::LatencySummary w;
        w.count = l.count;
        w.p50 = l.p50;
        w.p90 = l.p90;
        w.p95 = l.p95;
        w.p99 = l.p99;
        w.max = l.max;
        w.mean = l.mean;
        return w;
    };
    out.id = id;
    out.takenAtNs = s.takenAtNs;
    out.taskLatency = lat(s.taskLatency);
    out.timerLateness = lat(s.timerLateness);
    out.tasksPerSecond = s.tasksPerSecond;
    out.utilisation = s.utilisation;
    out.windowNs = s.windowNs;
    out.busyNs = s.busyNs;
    out.idleNs = s.idleNs;
    out.externalQueue = s.externalQueue;
    out.externalQueueMax = s.externalQueueMax;
    out.internalQueue = s.internalQueue;
    out.internalQueueMax = s.internalQueueMax;
    out.microtaskRingUsed = s.microtaskRingUsed;
    out.microtaskRingMax = s.microtaskRingMax;
    out.microtaskRingCapacity = s.microtaskRingCapacity;
    out.microtaskOverflow = s.microtaskOverflow;
    out.microtaskOverflowMax = s.microtaskOverflowMax;
    out.timerHeapSize = s.timerHeapSize;
    out.timerHeapMax = s.timerHeapMax;
    out.registeredFds = s.registeredFds;
    out.iterations = s.iterations;
    out.tasksRun = s.tasksRun;
    out.microtasksRun = s.microtasksRun;
    out.timersRun = s.timersRun;
    out.fdCallbacksRun = s.fdCallbacksRun;
    out.callbackErrors = s.callbackErrors;
    out.microtaskBudgetHits = s.microtaskBudgetHits;
    out.wakeSyscalls = s.wakeSyscalls;
    out.fastPathMode = QString::fromLatin1(libloop::fastPathModeName(s.fastPathMode));
    out.fastPathActive = s.fastPathActive;
    out.fastPathTransitions = s.fastPathTransitions;
    out.state = QString::fromLatin1(libloop::loopStateName(s.state));
}

namespace {

constexpr std::int64_t kEventPollNs = 100'000'000; // events at least every 100 ms
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kDrainOnClose = 256 * 1024;
constexpr int kAcceptBatch = 16;
constexpr std::int64_t kAcceptPauseNs = 100'000'000; // after EMFILE & co.
constexpr qsizetype kMaxLoopNameBytes = 256;

std::int64_t monotonicNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               libloop::Clock::now().time_since_epoch())
        .count();
}

// The first multiple of `period` after `now`.
std::int64_t alignedAfter(std::int64_t now, std::int64_t period) {
    return (now / period + 1) * period;
}

QString loopName(const std::string& name) {
    const qsizetype n = std::min<qsizetype>(qsizetype(name.size()), kMaxLoopNameBytes);
    return QString::fromUtf8(name.data(), n);
}

struct Sample {
    std::uint64_t id = 0;
    QString name;
    std::int64_t tid = 0;
    libloop::MetricsSnapshot snap;
};

struct Maxes {
    std::uint64_t external = 0, internal = 0, ring = 0, overflow = 0, heap = 0;
};

struct Known {
    bool fastPathKnown = false;
    libloop::FastPathMode mode = libloop::FastPathMode::Auto;
    bool active = false;
};

struct Client {
    int fd = -1;
    std::uint64_t serial = 0; // tells a reused fd number from the connection it had before
    proto::FrameDecoder decoder;
    QByteArray out;
    qsizetype outPos = 0;
    bool watchingWrite = false;
    bool hello = false;
    bool subscribed = false;
    std::int64_t periodNs = 1'000'000'000 / proto::kDefaultRate;
    std::int64_t nextDueNs = 0;
    std::uint64_t seq = 0;
    std::uint64_t dropped = 0;
    std::int64_t blockedSinceNs = 0; // 0: not blocked
    std::unordered_map<std::uint64_t, Known> known;
    std::unordered_map<std::uint64_t, Maxes> maxes;

    qsizetype pending() const { return out.size() - outPos; }
};

} // namespace

struct ProbeServer::State {
    State(const ProbeConfig& config, Counters& counters, libloop::Loop& loop, int listenFd)
        : config(config), counters(counters), loop(loop), listenFd(listenFd) {}

    const ProbeConfig& config;
    Counters& counters;
    libloop::Loop& loop;
    const int listenFd;
    const std::uint64_t ownId = loop.id();
    std::unordered_map<int, std::unique_ptr<Client>> clients;
    libloop::TimerId tickTimer{};
    std::int64_t tickAt = 0;
    libloop::TimerId acceptPause{};
    std::uint64_t lastSerial = 0;
    std::int64_t nextEventPollNs = 0;

    // ---- lifecycle -------------------------------------------------------------------------

    bool start() {
        const libloop::Status s = loop.registerFd(listenFd, libloop::FdEvent::Readable,
                                                  [this](int, unsigned) { onAcceptable(); });
        if (!s.ok())
            std::fprintf(stderr, "libloop probe: cannot watch the listening socket: %s\n",
                         s.message());
        return s.ok();
    }

    void shutdown() {
        std::vector<int> fds;
        for (const auto& [fd, c] : clients)
            fds.push_back(fd);
        for (int fd : fds)
            closeClient(fd, Reason::Normal);
        (void)loop.unregisterFd(listenFd);
        if (tickTimer)
            loop.cancelTimer(tickTimer);
        if (acceptPause)
            loop.cancelTimer(acceptPause);
        tickTimer = acceptPause = {};
    }

    // ---- accepting ---------------------------------------------------------------------------

    void onAcceptable() {
        for (int i = 0; i < kAcceptBatch; ++i) {
            const int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                    pauseAccepting();
                return; // EAGAIN and anything else: wait for the next readiness
            }
            ucred cred{};
            socklen_t len = sizeof cred;
            if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
                (cred.uid != ::geteuid() && cred.uid != 0)) {
                ::close(fd); // the directory is 0700; this is a second fence
                continue;
            }
            const libloop::Status s =
                loop.registerFd(fd, libloop::FdEvent::Readable,
                                [this](int cfd, unsigned events) { onClientEvent(cfd, events); });
            if (!s.ok()) {
                ::close(fd);
                continue;
            }
            auto c = std::make_unique<Client>();
            c->fd = fd;
            c->serial = ++lastSerial;
            // A connection that never says hello is closed after the stall time-out.
            (void)loop.scheduleTimer(
                std::chrono::nanoseconds(config.stallNs), [this, fd, serial = c->serial] {
                    auto it = clients.find(fd);
                    if (it != clients.end() && it->second->serial == serial && !it->second->hello)
                        refuse(*it->second, proto::errc::Unexpected,
                               QStringLiteral("no \"hello\" received in time"));
                });
            clients[fd] = std::move(c);
            counters.accepted.fetch_add(1, std::memory_order_relaxed);
            counters.clients.store(clients.size(), std::memory_order_relaxed);
        }
    }

    void pauseAccepting() {
        if (acceptPause)
            return;
        (void)loop.modifyFd(listenFd, 0);
        auto id = loop.scheduleTimer(std::chrono::nanoseconds(kAcceptPauseNs), [this] {
            acceptPause = {};
            (void)loop.modifyFd(listenFd, libloop::FdEvent::Readable);
        });
        if (id.ok())
            acceptPause = id.value();
        else
            (void)loop.modifyFd(listenFd, libloop::FdEvent::Readable);
    }

    // ---- closing -----------------------------------------------------------------------------

    enum class Reason { Normal, ProtocolError, Stalled, IoError };

    void closeClient(int fd, Reason why) {
        auto it = clients.find(fd);
        if (it == clients.end())
            return;
        (void)loop.unregisterFd(fd);
        // Read what the peer sent and we did not (bounded): closing a unix socket with unread
        // input makes the peer's next read fail with ECONNRESET instead of returning our last
        // frame and then end-of-file.
        char buf[4096];
        std::size_t drained = 0;
        while (drained < kDrainOnClose) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0)
                break;
            drained += std::size_t(n);
        }
        ::close(fd);
        clients.erase(it);
        counters.clients.store(clients.size(), std::memory_order_relaxed);
        counters.closed.fetch_add(1, std::memory_order_relaxed);
        if (why == Reason::ProtocolError)
            counters.protocolErrors.fetch_add(1, std::memory_order_relaxed);
        else if (why == Reason::Stalled)
            counters.stalledClosed.fetch_add(1, std::memory_order_relaxed);
        reschedule();
    }

    // Sends an error message (best effort) and closes the client.
    void refuse(Client& c, const char* code, const QString& msg) {
        proto::ErrorMessage e;
        e.code = QString::fromLatin1(code);
        e.msg = msg;
        const int fd = c.fd;
        if (enqueue(c, proto::encodeFrame(e.toCbor())))
            (void)flush(c);
        closeClient(fd, Reason::ProtocolError);
    }

    // ---- output ------------------------------------------------------------------------------

    void watchWrite(Client& c, bool on) {
        if (c.watchingWrite == on)
            return;
        c.watchingWrite = on;
        (void)loop.modifyFd(c.fd,
                            libloop::FdEvent::Readable | (on ? libloop::FdEvent::Writable : 0u));
    }

    // Queues a frame (written through when nothing is pending). false: the socket failed or
    // the backlog passed the hard cap; the caller must close the client.
    bool enqueue(Client& c, const QByteArray& frame) {
        if (frame.isEmpty())
            return true;
        if (c.pending() == 0) {
            c.out.clear();
            c.outPos = 0;
            const ssize_t n = ::send(c.fd, frame.constData(), std::size_t(frame.size()),
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n == frame.size())
                return true;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return false;
            const qsizetype sent = n > 0 ? qsizetype(n) : 0;
            c.out.append(frame.constData() + sent, frame.size() - sent);
        } else {
            if (std::size_t(c.pending() + frame.size()) > 2 * config.maxClientBuffer)
                return false;
            c.out.append(frame);
        }
        watchWrite(c, true);
        return true;
    }

    // Writes as much of the backlog as the socket takes. false: the socket failed.
    bool flush(Client& c) {
        while (c.pending() > 0) {
            const ssize_t n = ::send(c.fd, c.out.constData() + c.outPos, std::size_t(c.pending()),
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                return false;
            }
            c.outPos += n;
        }
        if (c.pending() == 0) {
            c.out.clear();
            c.outPos = 0;
            watchWrite(c, false);
        } else if (c.outPos >= 64 * 1024 && c.outPos * 2 >= c.out.size()) {
            c.out.remove(0, c.outPos);
            c.outPos = 0;
        }
        if (c.blockedSinceNs && std::size_t(c.pending()) * 2 < config.maxClientBuffer)
            c.blockedSinceNs = 0;
        return true;
    }

    // enqueue() or close; false when the client is gone.
    bool send(Client& c, const QCborMap& message) {
        if (enqueue(c, proto::encodeFrame(message)))
            return true;
        closeClient(c.fd, Reason::Stalled);
        return false;
    }

    // ---- input -------------------------------------------------------------------------------

    void onClientEvent(int fd, unsigned events) {
        auto it = clients.find(fd);
        if (it == clients.end())
            return;
        Client& c = *it->second;
        if (events & libloop::FdEvent::Writable) {
            if (!flush(c)) {
                closeClient(fd, Reason::IoError);
                return;
            }
        }
        if (!(events &
              (libloop::FdEvent::Readable | libloop::FdEvent::HangUp | libloop::FdEvent::Error)))
            return;
        char buf[kReadChunk];
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) { // end of file (a frame cut short counts as a protocol error)
            closeClient(fd, c.decoder.midFrame() ? Reason::ProtocolError : Reason::Normal);
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                closeClient(fd, Reason::IoError);
            return;
        }
        c.decoder.feed(QByteArrayView(buf, n));
        while (auto m = c.decoder.next())
            if (!handle(c, *m))
                return; // closed
        if (c.decoder.failed()) {
            const bool big = c.decoder.error() == proto::FrameError::Oversized;
            refuse(c, big ? proto::errc::Oversized : proto::errc::Malformed,
                   c.decoder.errorString());
        }
    }

    // false when the client was closed.
    bool handle(Client& c, const QCborMap& m) {
        const QString t = proto::messageType(m);
        QString why;
        if (!c.hello) {
            if (t != QLatin1String(proto::type::Hello)) {
                refuse(c, proto::errc::Unexpected,
                       QStringLiteral("the first message must be \"hello\", not \"%1\"").arg(t));
                return false;
            }
            const auto h = proto::ClientHello::fromCbor(m, &why);
            if (!h) {
                refuse(c, proto::errc::Malformed, QStringLiteral("hello: %1").arg(why));
                return false;
            }
            if (h->version != proto::kVersion) {
                refuse(c, proto::errc::Version,
                       QStringLiteral("protocol version %1 is not supported (this probe speaks %2)")
                           .arg(h->version)
                           .arg(proto::kVersion));
                return false;
            }
            return greet(c);
        }
        if (t == QLatin1String(proto::type::Subscribe)) {
            const auto s = proto::Subscribe::fromCbor(m, &why);
            if (!s) {
                refuse(c, proto::errc::Malformed, QStringLiteral("subscribe: %1").arg(why));
                return false;
            }
            const std::int64_t asked = s->rate.value_or(proto::kDefaultRate);
            const std::int64_t rate =
                std::clamp<std::int64_t>(asked, proto::kMinRate, proto::kMaxRate);
            c.subscribed = true;
            c.periodNs = 1'000'000'000 / rate;
            c.nextDueNs = monotonicNs(); // the first snapshot at the next tick, then aligned
            c.maxes.clear();
            proto::Subscribed ack;
            ack.rate = int(rate);
            ack.clamped = rate != asked;
            if (!send(c, ack.toCbor()))
                return false;
            reschedule();
            return true;
        }
        if (t == QLatin1String(proto::type::Unsubscribe)) {
            c.subscribed = false;
            c.maxes.clear();
            reschedule();
            return true;
        }
        refuse(c, proto::errc::Unexpected,
               t == QLatin1String(proto::type::Hello)
                   ? QStringLiteral("\"hello\" was already received")
                   : QStringLiteral("unknown message type \"%1\"").arg(t));
        return false;
    }

    bool greet(Client& c) {
        c.hello = true;
        proto::ServerHello h;
        h.pid = config.pid;
        h.name = QString::fromStdString(config.processName);
        h.started = config.startedUnixMs;
        h.rate = proto::kDefaultRate;
        if (!send(c, h.toCbor()))
            return false;
        // The current set, from the registry alone (a snapshot here would reset the *Max gauges
        // between two ticks); fast-path states become known at the next tick.
        proto::LoopsMessage list;
        libloop::forEachLoop([&](libloop::Loop& l) {
            if (l.id() == ownId)
                return;
            list.loops.append(proto::LoopInfo{l.id(), loopName(l.name()), l.loopThreadTid()});
        });
        c.known.clear();
        for (const proto::LoopInfo& info : list.loops)
            c.known.emplace(info.id, Known{});
        if (!send(c, list.toCbor()))
            return false;
        reschedule();
        return true;
    }

    // ---- sampling ----------------------------------------------------------------------------

    void reschedule() {
        std::int64_t next = INT64_MAX;
        bool anyHello = false;
        for (const auto& [fd, c] : clients) {
            if (!c->hello)
                continue;
            anyHello = true;
            if (c->subscribed)
                next = std::min(next, c->nextDueNs);
        }
        if (anyHello) {
            if (nextEventPollNs == 0)
                nextEventPollNs = alignedAfter(monotonicNs(), kEventPollNs);
            next = std::min(next, nextEventPollNs);
        } else {
            nextEventPollNs = 0;
        }
        if (next == INT64_MAX) {
            if (tickTimer)
                loop.cancelTimer(tickTimer);
            tickTimer = {};
            return;
        }
        if (tickTimer && tickAt == next)
            return;
        if (tickTimer)
            loop.cancelTimer(tickTimer);
        tickAt = next;
        auto id = loop.scheduleTimerAt(libloop::TimePoint(std::chrono::nanoseconds(next)),
                                       [this] { tick(); });
        tickTimer = id.ok() ? id.value() : libloop::TimerId{};
    }

    void tick() {
        tickTimer = {};
        const std::int64_t now = monotonicNs();
        std::vector<Sample> samples;
        libloop::forEachLoop([&](libloop::Loop& l) {
            if (l.id() == ownId)
                return;
            samples.push_back(Sample{l.id(), loopName(l.name()), l.loopThreadTid(), l.snapshot()});
        });
        counters.ticks.fetch_add(1, std::memory_order_relaxed);

        std::vector<proto::LoopMetrics> wire(samples.size());
        for (std::size_t i = 0; i < samples.size(); ++i)
            toWire(samples[i].snap, samples[i].id, wire[i]);

        std::vector<int> fds;
        fds.reserve(clients.size());
        for (const auto& [fd, c] : clients)
            if (c->hello)
                fds.push_back(fd);
        for (int fd : fds) {
            auto it = clients.find(fd);
            if (it == clients.end())
                continue;
            Client& c = *it->second;
            if (!sendEvents(c, samples))
                continue;
            if (c.subscribed) {
                fold(c, samples);
                if (now >= c.nextDueNs) {
                    c.nextDueNs = alignedAfter(now, c.periodNs);
                    if (!sendSnapshot(c, now, wire))
                        continue;
                }
            }
            if (c.blockedSinceNs && now - c.blockedSinceNs > config.stallNs)
                closeClient(fd, Reason::Stalled);
        }
        nextEventPollNs = alignedAfter(now, kEventPollNs);
        reschedule();
    }

    // Events (and a new "loops" list) for what changed since this client's last look.
    bool sendEvents(Client& c, const std::vector<Sample>& samples) {
        bool setChanged = false;
        std::vector<proto::EventMessage> events;
        // Removed.
        for (auto it = c.known.begin(); it != c.known.end();) {
            const std::uint64_t id = it->first;
            const bool present = std::any_of(samples.begin(), samples.end(),
                                             [id](const Sample& s) { return s.id == id; });
            if (present) {
                ++it;
                continue;
            }
            proto::EventMessage e;
            e.kind = QString::fromLatin1(proto::eventKind::LoopRemoved);
            e.loop = id;
            events.push_back(e);
            it = c.known.erase(it);
            c.maxes.erase(id);
            setChanged = true;
        }
        // Added, or fast path changed.
        for (const Sample& s : samples) {
            auto [it, added] = c.known.try_emplace(s.id);
            Known& k = it->second;
            if (added) {
                proto::EventMessage e;
                e.kind = QString::fromLatin1(proto::eventKind::LoopAdded);
                e.loop = s.id;
                e.name = s.name;
                e.tid = s.tid;
                events.push_back(e);
                setChanged = true;
            } else if (k.fastPathKnown &&
                       (k.mode != s.snap.fastPathMode || k.active != s.snap.fastPathActive)) {
                proto::EventMessage e;
                e.kind = QString::fromLatin1(proto::eventKind::FastPathChanged);
                e.loop = s.id;
                e.mode = QString::fromLatin1(libloop::fastPathModeName(s.snap.fastPathMode));
                e.active = s.snap.fastPathActive;
                events.push_back(e);
            }
            k.fastPathKnown = true;
            k.mode = s.snap.fastPathMode;
            k.active = s.snap.fastPathActive;
        }
        for (const proto::EventMessage& e : events)
            if (!send(c, e.toCbor()))
                return false;
        if (setChanged) {
            proto::LoopsMessage list;
            for (const Sample& s : samples)
                list.loops.append(proto::LoopInfo{s.id, s.name, s.tid});
            if (!send(c, list.toCbor()))
                return false;
        }
        return true;
    }

    // Running maxima of the *Max gauges since this client's last snapshot.
    static void fold(Client& c, const std::vector<Sample>& samples) {
        for (const Sample& s : samples) {
            Maxes& m = c.maxes[s.id];
            m.external = std::max(m.external, s.snap.externalQueueMax);
            m.internal = std::max(m.internal, s.snap.internalQueueMax);
            m.ring = std::max(m.ring, s.snap.microtaskRingMax);
            m.overflow = std::max(m.overflow, s.snap.microtaskOverflowMax);
            m.heap = std::max(m.heap, s.snap.timerHeapMax);
        }
    }

    bool sendSnapshot(Client& c, std::int64_t now, const std::vector<proto::LoopMetrics>& wire) {
        proto::SnapshotMessage msg;
        msg.at = std::uint64_t(now);
        msg.seq = ++c.seq;
        msg.dropped = c.dropped;
        msg.loops.reserve(qsizetype(wire.size()));
        for (const proto::LoopMetrics& w : wire) {
            proto::LoopMetrics l = w;
            if (auto it = c.maxes.find(l.id); it != c.maxes.end()) {
                l.externalQueueMax = std::max(l.externalQueueMax, it->second.external);
                l.internalQueueMax = std::max(l.internalQueueMax, it->second.internal);
                l.microtaskRingMax = std::max(l.microtaskRingMax, it->second.ring);
                l.microtaskOverflowMax = std::max(l.microtaskOverflowMax, it->second.overflow);
                l.timerHeapMax = std::max(l.timerHeapMax, it->second.heap);
            }
            msg.loops.append(std::move(l));
        }
        QByteArray frame = proto::encodeFrame(msg.toCbor());
        while (frame.isEmpty() && !msg.loops.isEmpty()) { // above kMaxFrameBytes: cut the list
            msg.loops.resize(msg.loops.size() * 3 / 4);
            msg.truncated = true;
            frame = proto::encodeFrame(msg.toCbor());
        }
        if (std::size_t(c.pending() + frame.size()) > config.maxClientBuffer) {
            ++c.dropped;
            counters.snapshotsDropped.fetch_add(1, std::memory_order_relaxed);
            if (!c.blockedSinceNs)
                c.blockedSinceNs = now;
            return true; // the maxima keep accumulating for the next delivered snapshot
        }
        if (!enqueue(c, frame)) {
            closeClient(c.fd, Reason::IoError);
            return false;
        }
        c.maxes.clear();
        counters.snapshotsSent.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
};

ProbeServer::ProbeServer(ProbeConfig config, int listenFd)
    : config_(std::move(config)), listenFd_(listenFd) {
    std::promise<bool> ready;
    std::future<bool> started = ready.get_future();
    thread_ = std::thread([this, ready = std::move(ready)]() mutable {
        // Process signals are for the application's threads, never this one.
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        pthread_setname_np(pthread_self(), "libloop-probe");
        libloop::LoopOptions o;
        o.name = "libloop-probe";
        o.metrics = false;
        loop_ = std::make_unique<libloop::Loop>(std::move(o));
        State state(config_, counters_, *loop_, listenFd_);
        const bool ok = state.start();
        ready.set_value(ok);
        if (ok)
            run();
        state.shutdown();
    });
    started_ = started.get();
}

void ProbeServer::run() {
    while (!stopping_.load(std::memory_order_acquire))
        (void)loop_->runOnce(libloop::kForever);
}

ProbeServer::~ProbeServer() {
    stopping_.store(true, std::memory_order_release);
    loop_->wakeUp();
    thread_.join();
    loop_.reset();
    ::close(listenFd_);
}

ProbeStats ProbeServer::stats() const {
    ProbeStats s;
    s.clients = counters_.clients.load(std::memory_order_relaxed);
    s.accepted = counters_.accepted.load(std::memory_order_relaxed);
    s.closed = counters_.closed.load(std::memory_order_relaxed);
    s.protocolErrors = counters_.protocolErrors.load(std::memory_order_relaxed);
    s.stalledClosed = counters_.stalledClosed.load(std::memory_order_relaxed);
    s.snapshotsSent = counters_.snapshotsSent.load(std::memory_order_relaxed);
    s.snapshotsDropped = counters_.snapshotsDropped.load(std::memory_order_relaxed);
    s.ticks = counters_.ticks.load(std::memory_order_relaxed);
    return s;
}

} // namespace libloop::qt::detail
