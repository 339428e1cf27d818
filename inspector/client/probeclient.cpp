#include "probeclient.h"

#include <QtNetwork/qlocalsocket.h>

#include <variant>

namespace libloop::inspector {

namespace proto = libloop::protocol;

const char* failureName(ProbeClient::Failure f) noexcept {
    switch (f) {
    case ProbeClient::Failure::None:
        return "none";
    case ProbeClient::Failure::ConnectFailed:
        return "connect failed";
    case ProbeClient::Failure::VersionMismatch:
        return "version mismatch";
    case ProbeClient::Failure::ProtocolError:
        return "protocol error";
    case ProbeClient::Failure::ProbeError:
        return "probe error";
    case ProbeClient::Failure::ConnectionLost:
        return "connection lost";
    case ProbeClient::Failure::Timeout:
        return "timeout";
    case ProbeClient::Failure::Closed:
        return "closed";
    }
    return "?";
}

ProbeClient::ProbeClient(QObject* parent) : QObject(parent) {
    handshakeTimer_.setSingleShot(true);
    connect(&handshakeTimer_, &QTimer::timeout, this, [this] {
        if (state_ == State::Connecting || state_ == State::Handshaking)
            fail(Failure::Timeout, QStringLiteral("the probe at %1 did not answer within %2 ms")
                                       .arg(path_)
                                       .arg(handshakeTimeoutMs_));
    });
}

ProbeClient::~ProbeClient() {
    closeSocket();
}

void ProbeClient::setState(State s) {
    if (state_ == s)
        return;
    state_ = s;
    emit stateChanged(s);
}

void ProbeClient::closeSocket() {
    handshakeTimer_.stop();
    if (!socket_)
        return;
    QLocalSocket* s = socket_;
    socket_ = nullptr;
    s->disconnect(this);
    s->abort();
    s->deleteLater();
}

void ProbeClient::connectToProbe(const QString& path, int rate) {
    closeSocket();
    setState(State::Disconnected);
    path_ = path;
    rate_ = rate;
    effectiveRate_ = 0;
    hello_.reset();
    loops_.clear();
    decoder_.reset();
    lastFailure_ = Failure::None;
    lastError_.clear();
    snapshots_ = 0;
    dropped_ = 0;

    socket_ = new QLocalSocket(this);
    connect(socket_, &QLocalSocket::connected, this, &ProbeClient::onConnected);
    connect(socket_, &QLocalSocket::readyRead, this, &ProbeClient::onReadyRead);
    connect(socket_, &QLocalSocket::errorOccurred, this, &ProbeClient::onSocketError);
    connect(socket_, &QLocalSocket::disconnected, this, &ProbeClient::onSocketDisconnected);
    setState(State::Connecting);
    handshakeTimer_.start(handshakeTimeoutMs_);
    // A full path: QLocalSocket uses it as the AF_UNIX address as is.
    socket_->connectToServer(path);
}

void ProbeClient::disconnectFromProbe() {
    const bool wasOpen = state_ != State::Disconnected;
    closeSocket();
    setState(State::Disconnected);
    if (wasOpen) {
        lastFailure_ = Failure::Closed;
        emit disconnected(Failure::Closed);
    }
}

void ProbeClient::setRate(int rate) {
    rate_ = rate;
    if (state_ == State::Attached)
        sendSubscription();
}

void ProbeClient::onConnected() {
    if (!socket_)
        return;
    setState(State::Handshaking);
    proto::ClientHello h;
    h.client = clientName_;
    socket_->write(proto::encodeFrame(h.toCbor()));
}

void ProbeClient::sendSubscription() {
    if (!socket_)
        return;
    if (rate_ > 0) {
        proto::Subscribe s;
        s.rate = rate_;
        socket_->write(proto::encodeFrame(s.toCbor()));
    } else {
        effectiveRate_ = 0;
        socket_->write(proto::encodeFrame(proto::Unsubscribe{}.toCbor()));
    }
}

void ProbeClient::onReadyRead() {
    while (socket_ && socket_->bytesAvailable() > 0) {
        const QByteArray chunk = socket_->read(64 * 1024);
        if (chunk.isEmpty())
            break;
        decoder_.feed(chunk);
        while (socket_) {
            std::optional<QCborMap> m = decoder_.next();
            if (!m)
                break;
            handle(*m);
        }
        if (socket_ && decoder_.failed()) {
            fail(Failure::ProtocolError,
                 QStringLiteral("undecodable data from the probe: %1").arg(decoder_.errorString()));
            return;
        }
    }
}

void ProbeClient::handle(const QCborMap& message) {
    QString error;
    bool unknown = false;
    std::optional<proto::ServerMessage> parsed =
        proto::parseServerMessage(message, &error, &unknown);
    if (!parsed) {
        if (unknown)
            return; // a later v1 probe may send message types we do not know
        fail(Failure::ProtocolError,
             QStringLiteral("malformed message from the probe: %1").arg(error));
        return;
    }
    if (auto* e = std::get_if<proto::ErrorMessage>(&*parsed)) {
        if (e->code == QLatin1String(proto::errc::Version)) {
            QStringList versions;
            for (int v : e->supported)
                versions << QString::number(v);
            fail(Failure::VersionMismatch,
                 QStringLiteral("protocol version mismatch: we speak %1, the probe speaks %2 (%3)")
                     .arg(proto::kVersion)
                     .arg(versions.join(QLatin1Char(',')), e->msg));
        } else {
            fail(Failure::ProbeError,
                 QStringLiteral("the probe refused us (%1): %2").arg(e->code, e->msg));
        }
        return;
    }
    if (auto* h = std::get_if<proto::ServerHello>(&*parsed)) {
        if (hello_) {
            fail(Failure::ProtocolError, QStringLiteral("a second hello from the probe"));
            return;
        }
        if (h->version != proto::kVersion) {
            fail(Failure::VersionMismatch,
                 QStringLiteral("protocol version mismatch: we speak %1, the probe speaks %2")
                     .arg(proto::kVersion)
                     .arg(h->version));
            return;
        }
        handshakeTimer_.stop();
        hello_ = *h;
        setState(State::Attached);
        emit attached(*hello_);
        if (socket_ && rate_ > 0)
            sendSubscription();
        return;
    }
    if (!hello_) {
        fail(Failure::ProtocolError, QStringLiteral("the probe did not start with hello"));
        return;
    }
    if (auto* l = std::get_if<proto::LoopsMessage>(&*parsed)) {
        loops_ = l->loops;
        emit loopsChanged(loops_);
    } else if (auto* s = std::get_if<proto::Subscribed>(&*parsed)) {
        effectiveRate_ = s->rate;
        emit subscribed(s->rate, s->clamped);
    } else if (auto* snap = std::get_if<proto::SnapshotMessage>(&*parsed)) {
        ++snapshots_;
        dropped_ = snap->dropped;
        emit snapshotReceived(*snap);
    } else if (auto* ev = std::get_if<proto::EventMessage>(&*parsed)) {
        emit eventReceived(*ev);
    }
}

void ProbeClient::onSocketError() {
    if (!socket_)
        return;
    if (state_ == State::Connecting) {
        fail(Failure::ConnectFailed,
             QStringLiteral("cannot connect to %1: %2").arg(path_, socket_->errorString()));
        return;
    }
    if (socket_->error() == QLocalSocket::PeerClosedError) {
        onSocketDisconnected();
        return;
    }
    fail(Failure::ConnectionLost,
         QStringLiteral("connection to the probe lost: %1").arg(socket_->errorString()));
}

void ProbeClient::onSocketDisconnected() {
    if (!socket_)
        return;
    // Whatever arrived before the end is still delivered (an "error" message, typically).
    onReadyRead();
    if (!socket_)
        return;
    if (decoder_.midFrame()) {
        fail(Failure::ConnectionLost,
             QStringLiteral("connection to the probe lost in the middle of a message"));
        return;
    }
    fail(Failure::ConnectionLost, hello_ ? QStringLiteral("connection to the probe lost")
                                         : QStringLiteral("the probe closed the connection "
                                                          "before saying hello"));
}

void ProbeClient::fail(Failure f, const QString& message) {
    closeSocket();
    lastFailure_ = f;
    lastError_ = message;
    setState(State::Disconnected);
    emit failed(f, message);
    emit disconnected(f);
}

} // namespace libloop::inspector
