// A minimal blocking probe client for the probe tests: a raw AF_UNIX socket, poll() with
// time-outs, and the protocol library's FrameDecoder. No event loop needed.
#pragma once

#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>

#include <QtCore/qcbormap.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qstring.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace probetest {

namespace proto = libloop::protocol;

class Client {
public:
    Client() = default;
    explicit Client(const std::string& path) { connectTo(path); }
    ~Client() { close(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool connectTo(const std::string& path) {
        close();
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0)
            return false;
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path)
            return false;
        std::memcpy(addr.sun_path, path.data(), path.size());
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            close();
            return false;
        }
        eof_ = false;
        decoder_.reset();
        return true;
    }

    void close() {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

    int fd() const { return fd_; }
    bool connected() const { return fd_ >= 0; }
    bool eof() const { return eof_; }
    const proto::FrameDecoder& decoder() const { return decoder_; }
    // A message already received and decoded, without reading the socket.
    std::optional<QCborMap> next() { return decoder_.next(); }

    bool sendRaw(const QByteArray& bytes) {
        qsizetype done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.constData() + done,
                                     std::size_t(bytes.size() - done), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return false;
            done += n;
        }
        return true;
    }
    bool send(const QCborMap& m) { return sendRaw(proto::encodeFrame(m)); }

    bool hello(const QString& name = QStringLiteral("test"), int version = proto::kVersion) {
        proto::ClientHello h;
        h.version = version;
        h.client = name;
        return send(h.toCbor());
    }
    bool subscribe(std::optional<qint64> rate) {
        proto::Subscribe s;
        s.rate = rate;
        return send(s.toCbor());
    }

    // Reads whatever is available within `timeoutMs` (0: only what is there now) into the
    // decoder. false on time-out, EOF or error.
    bool pump(int timeoutMs) {
        if (fd_ < 0 || eof_)
            return false;
        pollfd p{fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, timeoutMs);
        if (r <= 0)
            return false;
        char buf[65536];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            eof_ = true;
            return false;
        }
        if (n > 0)
            decoder_.feed(QByteArrayView(buf, n));
        return true;
    }

    // The next message, waiting up to `timeoutMs`.
    std::optional<QCborMap> read(int timeoutMs) {
        QDeadlineTimer deadline(timeoutMs);
        for (;;) {
            if (auto m = decoder_.next())
                return m;
            if (decoder_.failed() || eof_)
                return std::nullopt;
            const int left = int(deadline.remainingTime());
            if (left <= 0 && deadline.hasExpired())
                return std::nullopt;
            pump(std::max(left, 0));
        }
    }

    // The next message of type `t` (others are passed to `other` when set, else skipped) that
    // satisfies `pred`.
    std::optional<QCborMap> waitFor(const char* t, int timeoutMs,
                                    const std::function<bool(const QCborMap&)>& pred = {},
                                    const std::function<void(const QCborMap&)>& other = {}) {
        QDeadlineTimer deadline(timeoutMs);
        while (!deadline.hasExpired()) {
            auto m = read(int(std::max<qint64>(deadline.remainingTime(), 1)));
            if (!m) {
                if (eof_ || decoder_.failed())
                    return std::nullopt;
                continue;
            }
            if (proto::messageType(*m) == QLatin1String(t) && (!pred || pred(*m)))
                return m;
            if (other)
                other(*m);
        }
        return std::nullopt;
    }

    // Reads and discards until end-of-file; true if it came within `timeoutMs`.
    bool waitEof(int timeoutMs, int* messages = nullptr) {
        QDeadlineTimer deadline(timeoutMs);
        while (!eof_ && !deadline.hasExpired()) {
            pump(int(std::max<qint64>(deadline.remainingTime(), 1)));
            while (auto m = decoder_.next())
                if (messages)
                    ++*messages;
        }
        return eof_;
    }

    // hello, then the probe's hello and loops list.
    bool handshake(const QString& name = QStringLiteral("test"), int timeoutMs = 10000) {
        if (!hello(name))
            return false;
        auto h = waitFor(proto::type::Hello, timeoutMs);
        if (!h)
            return false;
        serverHello = proto::ServerHello::fromCbor(*h);
        auto l = waitFor(proto::type::Loops, timeoutMs);
        return serverHello && l;
    }

    std::optional<proto::ServerHello> serverHello;

private:
    int fd_ = -1;
    bool eof_ = false;
    proto::FrameDecoder decoder_;
};

} // namespace probetest
