#include "probesession.h"

#include "discovery.h"

#include <QtCore/qfileinfo.h>

namespace libloop::inspector {

namespace proto = libloop::protocol;

ProbeSession::ProbeSession(QObject* parent) : QObject(parent) {
    reconnectTimer_.setInterval(500);
    connect(&reconnectTimer_, &QTimer::timeout, this, &ProbeSession::poll);
    connect(&client_, &ProbeClient::attached, this, &ProbeSession::onAttached);
    connect(&client_, &ProbeClient::failed, this, &ProbeSession::onFailed);
}

void ProbeSession::setStatus(Status s) {
    if (status_ == s)
        return;
    status_ = s;
    emit statusChanged(s);
}

void ProbeSession::setRate(int rate) {
    client_.setRate(rate);
}

void ProbeSession::attach(const proto::ProbeInfo& probe) {
    reconnectTimer_.stop();
    probe_ = probe;
    everAttached_ = false;
    reconnects_ = 0;
    lastError_.clear();
    setStatus(Status::Connecting);
    client_.connectToProbe(probe.path, client_.rate());
}

void ProbeSession::detach() {
    reconnectTimer_.stop();
    client_.disconnectFromProbe();
    setStatus(Status::Idle);
}

void ProbeSession::onAttached(const proto::ServerHello& hello) {
    reconnectTimer_.stop();
    const bool again = everAttached_;
    if (again)
        ++reconnects_;
    everAttached_ = true;
    probe_.pid = hello.pid;
    if (probe_.name.isEmpty())
        probe_.name = proto::sanitizeProcessName(hello.name);
    if (auto parsed = proto::parseSocketFileName(QFileInfo(client_.path()).fileName())) {
        probe_.startTime = parsed->startTime;
        probe_.name = parsed->name;
    }
    probe_.path = client_.path();
    probe_.alive = true;
    setStatus(Status::Attached);
    emit attachedTo(hello.pid, hello.name, again);
}

void ProbeSession::onFailed(ProbeClient::Failure f, const QString& message) {
    lastError_ = message;
    const bool retry = autoReconnect_ && f != ProbeClient::Failure::VersionMismatch &&
                       f != ProbeClient::Failure::Closed && !probe_.name.isEmpty();
    if (status_ == Status::Reconnecting) {
        // A failed attempt while reconnecting: keep polling.
        return;
    }
    setStatus(retry ? Status::Reconnecting : Status::Failed);
    emit connectionLost(message, retry);
    if (retry)
        reconnectTimer_.start();
}

void ProbeSession::poll() {
    if (client_.state() != ProbeClient::State::Disconnected)
        return; // an attempt is under way
    const std::optional<proto::ProbeInfo> next = findProbeByName(probe_.name, dir_);
    if (!next)
        return;
    client_.connectToProbe(next->path, client_.rate());
}

} // namespace libloop::inspector
