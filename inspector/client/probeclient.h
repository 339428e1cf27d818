// ProbeClient: one connection to a probe (qtbridge/protocol/PROTOCOL.md) on the Qt event loop.
//
//   ProbeClient c;
//   connect(&c, &ProbeClient::snapshotReceived, ...);
//   c.connectToProbe(path, 20);     // hello, then subscribe at 20 Hz once the probe said hello
//
// It speaks the protocol through libloop::protocol (frames, messages) over a QLocalSocket, so it
// runs on whatever dispatcher the thread has (the inspector runs it on libloop's). Every failure
// ends the connection and is reported exactly once through failed() (then disconnected()): a
// refused connection, the probe's "error" message, a version mismatch, an undecodable stream, or
// the probe closing the connection.
#pragma once

#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>

#include <QtCore/qelapsedtimer.h>
#include <QtCore/qobject.h>
#include <QtCore/qtimer.h>

#include <cstdint>
#include <optional>

class QLocalSocket;

namespace libloop::inspector {

class ProbeClient : public QObject {
    Q_OBJECT
public:
    enum class State { Disconnected, Connecting, Handshaking, Attached };
    Q_ENUM(State)

    // Why a connection ended.
    enum class Failure {
        None,
        ConnectFailed,   // the socket could not be connected (no such file, refused, ...)
        VersionMismatch, // the probe speaks another protocol version
        ProtocolError,   // undecodable frames, unexpected or ill-typed messages
        ProbeError,      // the probe sent "error" (other than a version mismatch)
        ConnectionLost,  // the probe closed the connection (or the process died)
        Timeout,         // no hello within the handshake timeout
        Closed,          // disconnectFromProbe()
    };
    Q_ENUM(Failure)

    explicit ProbeClient(QObject* parent = nullptr);
    ~ProbeClient() override;

    // Connects to the probe socket at `path` and, once the probe said hello, subscribes at
    // `rate` snapshots per second (1..100; 0 = do not subscribe). Closes a previous connection
    // first (without reporting it as a failure).
    void connectToProbe(const QString& path, int rate);
    // Closes the connection; emits disconnected(Closed) if one was open.
    void disconnectFromProbe();
    // Changes the subscription rate (re-subscribes when attached). 0 = unsubscribe.
    void setRate(int rate);
    int rate() const { return rate_; }
    // The rate the probe confirmed (0 until subscribed).
    int effectiveRate() const { return effectiveRate_; }

    // Time allowed between connecting and the probe's hello.
    void setHandshakeTimeout(int ms) { handshakeTimeoutMs_ = ms; }
    // A label sent in our hello.
    void setClientName(const QString& name) { clientName_ = name; }

    State state() const { return state_; }
    QString path() const { return path_; }
    const std::optional<protocol::ServerHello>& serverHello() const { return hello_; }
    const QList<protocol::LoopInfo>& loops() const { return loops_; }
    Failure lastFailure() const { return lastFailure_; }
    QString lastError() const { return lastError_; }

    // Snapshots received on this connection, and the number the probe said it dropped for us.
    std::uint64_t snapshotsReceived() const { return snapshots_; }
    std::uint64_t snapshotsDropped() const { return dropped_; }

signals:
    void stateChanged(libloop::inspector::ProbeClient::State state);
    // The probe's hello (the connection is usable).
    void attached(const libloop::protocol::ServerHello& hello);
    void loopsChanged(const QList<libloop::protocol::LoopInfo>& loops);
    void subscribed(int rate, bool clamped);
    void snapshotReceived(const libloop::protocol::SnapshotMessage& snapshot);
    void eventReceived(const libloop::protocol::EventMessage& event);
    // The connection ended because of `failure` (never for disconnectFromProbe()).
    void failed(libloop::inspector::ProbeClient::Failure failure, const QString& message);
    // The connection is closed (after failed(), or after disconnectFromProbe()).
    void disconnected(libloop::inspector::ProbeClient::Failure reason);

private:
    void setState(State s);
    void onConnected();
    void onReadyRead();
    void onSocketError();
    void onSocketDisconnected();
    void handle(const QCborMap& message);
    void sendSubscription();
    void fail(Failure f, const QString& message);
    void closeSocket();

    QLocalSocket* socket_ = nullptr;
    protocol::FrameDecoder decoder_;
    QTimer handshakeTimer_;
    State state_ = State::Disconnected;
    QString path_;
    QString clientName_ = QStringLiteral("loop-inspector");
    int rate_ = protocol::kDefaultRate;
    int effectiveRate_ = 0;
    int handshakeTimeoutMs_ = 10000;
    std::optional<protocol::ServerHello> hello_;
    QList<protocol::LoopInfo> loops_;
    Failure lastFailure_ = Failure::None;
    QString lastError_;
    std::uint64_t snapshots_ = 0;
    std::uint64_t dropped_ = 0;
};

const char* failureName(ProbeClient::Failure f) noexcept;

} // namespace libloop::inspector
