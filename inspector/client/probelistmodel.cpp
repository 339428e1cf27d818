#include "probelistmodel.h"

namespace libloop::inspector {

namespace proto = libloop::protocol;

ProbeListModel::ProbeListModel(QObject* parent) : QAbstractListModel(parent) {
    timer_.setInterval(1000);
    connect(&timer_, &QTimer::timeout, this, &ProbeListModel::refresh);
    timer_.start();
    refresh();
}

int ProbeListModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(probes_.size());
}

QVariant ProbeListModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= probes_.size())
        return {};
    const proto::ProbeInfo& p = probes_.at(index.row());
    switch (role) {
    case Qt::DisplayRole:
        return QStringLiteral("%1 (%2)").arg(p.name).arg(p.pid);
    case PidRole:
        return p.pid;
    case NameRole:
        return p.name;
    case PathRole:
        return p.path;
    case StartedRole:
        return proto::startTimeToUnixMs(p.startTime);
    default:
        return {};
    }
}

QHash<int, QByteArray> ProbeListModel::roleNames() const {
    return {{Qt::DisplayRole, "display"},
            {PidRole, "pid"},
            {NameRole, "name"},
            {PathRole, "path"},
            {StartedRole, "started"}};
}

void ProbeListModel::setDirectory(const QString& dir) {
    if (dir_ == dir)
        return;
    dir_ = dir;
    emit directoryChanged();
    refresh();
}

void ProbeListModel::setRefreshInterval(int ms) {
    if (timer_.interval() == ms && timer_.isActive() == (ms > 0))
        return;
    timer_.stop();
    if (ms > 0) {
        timer_.setInterval(ms);
        timer_.start();
    }
    emit refreshIntervalChanged();
}

void ProbeListModel::refresh() {
    QString err;
    const QList<proto::ProbeInfo> now =
        proto::listProbes(dir_.isEmpty() ? proto::defaultSocketDirectory() : dir_, false, &err);
    if (err != error_) {
        error_ = err;
        emit errorChanged();
    }
    auto same = [](const proto::ProbeInfo& a, const proto::ProbeInfo& b) {
        return a.pid == b.pid && a.startTime == b.startTime && a.path == b.path;
    };
    if (now.size() == probes_.size() && std::equal(now.begin(), now.end(), probes_.begin(), same))
        return;
    const bool countChange = now.size() != probes_.size();
    beginResetModel();
    probes_ = now;
    endResetModel();
    if (countChange)
        emit countChanged();
}

QString ProbeListModel::pathAt(int row) const {
    return row >= 0 && row < probes_.size() ? probes_.at(row).path : QString();
}

qint64 ProbeListModel::pidAt(int row) const {
    return row >= 0 && row < probes_.size() ? probes_.at(row).pid : 0;
}

} // namespace libloop::inspector
