// ProbeListModel: the processes with a live probe, for the inspector's process list. Refreshes
// itself from libloop::protocol::listProbes every `refreshInterval` ms (0 = only on refresh()).
#pragma once

#include <libloop/protocol/discovery.h>

#include <QtCore/qabstractitemmodel.h>
#include <QtCore/qtimer.h>

namespace libloop::inspector {

class ProbeListModel : public QAbstractListModel {
    Q_OBJECT
    Q_PROPERTY(QString directory READ directory WRITE setDirectory NOTIFY directoryChanged)
    Q_PROPERTY(int refreshInterval READ refreshInterval WRITE setRefreshInterval NOTIFY
                   refreshIntervalChanged)
    Q_PROPERTY(int count READ count NOTIFY countChanged)
    Q_PROPERTY(QString error READ error NOTIFY errorChanged)
public:
    enum Role { PidRole = Qt::UserRole + 1, NameRole, PathRole, StartedRole };

    explicit ProbeListModel(QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QHash<int, QByteArray> roleNames() const override;

    QString directory() const { return dir_; }
    void setDirectory(const QString& dir);
    int refreshInterval() const { return timer_.interval(); }
    void setRefreshInterval(int ms);
    int count() const { return int(probes_.size()); }
    QString error() const { return error_; }

    Q_INVOKABLE void refresh();
    Q_INVOKABLE QString pathAt(int row) const;
    Q_INVOKABLE qint64 pidAt(int row) const;
    const QList<protocol::ProbeInfo>& probes() const { return probes_; }

signals:
    void directoryChanged();
    void refreshIntervalChanged();
    void countChanged();
    void errorChanged();

private:
    QList<protocol::ProbeInfo> probes_;
    QString dir_;
    QString error_;
    QTimer timer_;
};

} // namespace libloop::inspector
