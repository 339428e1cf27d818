// ProbeSession: an attachment to one process's probe that survives the process restarting.
//
// attach() connects its ProbeClient; when the connection is lost (the process exited, crashed or
// was restarted), the session polls the socket directory and attaches to the newest live probe
// with the same process name as soon as one appears (the restarted process), or to the same
// socket again if it comes back. A version mismatch or detach() ends that.
#pragma once

#include "probeclient.h"

#include <libloop/protocol/discovery.h>

#include <QtCore/qobject.h>
#include <QtCore/qtimer.h>

namespace libloop::inspector {

class ProbeSession : public QObject {
    Q_OBJECT
public:
    enum class Status { Idle, Connecting, Attached, Reconnecting, Failed };
    Q_ENUM(Status)

    explicit ProbeSession(QObject* parent = nullptr);

    ProbeClient* client() { return &client_; }

    // The socket directory for reconnects (empty: the default directory).
    void setDirectory(const QString& dir) { dir_ = dir; }
    QString directory() const { return dir_; }
    void setRate(int rate);
    int rate() const { return client_.rate(); }
    void setAutoReconnect(bool on) { autoReconnect_ = on; }
    // How often the directory is polled while reconnecting.
    void setReconnectInterval(int ms) { reconnectTimer_.setInterval(ms); }

    void attach(const protocol::ProbeInfo& probe);
    void detach();

    Status status() const { return status_; }
    // The probe attached to (or being reconnected to): pid and start time of the current process,
    // the sanitized process name used to find it again.
    const protocol::ProbeInfo& probe() const { return probe_; }
    QString lastError() const { return lastError_; }
    // Successful attachments after the first one.
    int reconnects() const { return reconnects_; }

signals:
    void statusChanged(libloop::inspector::ProbeSession::Status status);
    // Attached (again) to a process: pid and name from its hello.
    void attachedTo(qint64 pid, const QString& name, bool reconnected);
    // The connection was lost; the session reconnects when it can (when `willRetry`).
    void connectionLost(const QString& message, bool willRetry);

private:
    void setStatus(Status s);
    void onAttached(const protocol::ServerHello& hello);
    void onFailed(ProbeClient::Failure f, const QString& message);
    void poll();

    ProbeClient client_;
    QTimer reconnectTimer_;
    QString dir_;
    protocol::ProbeInfo probe_;
    Status status_ = Status::Idle;
    bool autoReconnect_ = true;
    bool everAttached_ = false;
    int reconnects_ = 0;
    QString lastError_;
};

} // namespace libloop::inspector
