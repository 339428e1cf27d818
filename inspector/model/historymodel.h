// HistoryModel: what the inspector knows about the attached process over time, and which part
// of it is on screen.
//
// Every snapshot adds one Sample per loop (a time and one value per Channel) to that loop's
// RingBuffer (capacity: maxWindowSeconds at the snapshot rate). Time is in seconds since the
// session's first snapshot (`origin`, CLOCK_MONOTONIC ns of the probe's sample), so a restarted
// process continues on the same axis. The view is [viewStart, viewEnd], `windowSeconds` wide:
// while `following`, viewEnd is the newest sample; zoom() and pan() move it into the past. While
// `paused` the view stands still (data is still recorded; resume shows it). Plots read decimated
// series (min/max per pixel column, see decimate.h) for the view with series().
#pragma once

#include "channels.h"
#include "ringbuffer.h"

#include <libloop/protocol/messages.h>

#include <QtCore/qabstractitemmodel.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qobject.h>
#include <QtCore/qpoint.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace libloop::inspector {

struct Sample {
    double t = 0; // seconds since the origin
    std::array<double, kChannelCount> v{};
};

// One loop's samples stored column by column: a ring of times and one ring per channel, all
// pushed in lockstep (same capacity, head and size), so that a plot scanning one channel reads
// contiguous doubles instead of striding over whole samples.
class SampleStore {
public:
    explicit SampleStore(qsizetype capacity = 1) { setCapacity(capacity); }

    qsizetype size() const { return times_.size(); }
    bool isEmpty() const { return times_.isEmpty(); }
    qsizetype capacity() const { return times_.capacity(); }
    void setCapacity(qsizetype capacity);
    void push(const Sample& s);
    void clear();

    // 0 = oldest.
    Sample at(qsizetype i) const;
    Sample first() const { return at(0); }
    Sample last() const { return at(size() - 1); }
    double time(qsizetype i) const { return times_.at(i); }
    double value(Channel c, qsizetype i) const { return values_[std::size_t(c)].at(i); }
    // The first index whose time is not less than `t`.
    qsizetype lowerBound(double t) const;

    const RingBuffer<double>& times() const { return times_; }
    const RingBuffer<double>& values(Channel c) const { return values_[std::size_t(c)]; }

private:
    RingBuffer<double> times_;
    std::array<RingBuffer<double>, kChannelCount> values_;
};

struct LoopHistory {
    std::uint64_t id = 0;
    QString name;
    qint64 tid = 0;
    bool alive = true;
    protocol::LoopMetrics last;
    SampleStore samples;
};

class HistoryModel;

// The loops of the attached process (those of the latest snapshot first, then gone ones), with
// their latest values: the list beside the plots.
class LoopListModel : public QAbstractListModel {
    Q_OBJECT
    Q_PROPERTY(int count READ rowCount NOTIFY countChanged)
public:
    enum Role {
        LoopIdRole = Qt::UserRole + 1,
        NameRole,
        TidRole,
        AliveRole,
        StateRole,
        TimerHeapSizeRole,
        TasksPerSecondRole,
        UtilisationRole,
        LatencyP99Role,
        FastPathModeRole,
    };

    explicit LoopListModel(HistoryModel* history);
    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QHash<int, QByteArray> roleNames() const override;
    Q_INVOKABLE qint64 loopIdAt(int row) const;
    Q_INVOKABLE int rowOf(qint64 loopId) const;

    // Called by HistoryModel.
    void reset();
    void valuesChanged();

signals:
    void countChanged();

private:
    HistoryModel* history_;
};

class HistoryModel : public QObject {
    Q_OBJECT
    Q_PROPERTY(double windowSeconds READ windowSeconds WRITE setWindowSeconds NOTIFY windowChanged)
    Q_PROPERTY(bool paused READ paused WRITE setPaused NOTIFY pausedChanged)
    Q_PROPERTY(bool following READ following NOTIFY followingChanged)
    Q_PROPERTY(double viewStart READ viewStart NOTIFY viewChanged)
    Q_PROPERTY(double viewEnd READ viewEnd NOTIFY viewChanged)
    Q_PROPERTY(double latestTime READ latestTime NOTIFY dataChanged)
    Q_PROPERTY(
        qint64 currentLoopId READ currentLoopId WRITE setCurrentLoopId NOTIFY currentLoopChanged)
    Q_PROPERTY(QString currentLoopName READ currentLoopName NOTIFY currentLoopChanged)
    Q_PROPERTY(int sampleCount READ sampleCount NOTIFY dataChanged)
    Q_PROPERTY(qint64 snapshotCount READ snapshotCount NOTIFY dataChanged)
    Q_PROPERTY(LoopListModel* loops READ loops CONSTANT)
public:
    static constexpr double kMinWindow = 1;   // zoom limit
    static constexpr double kMaxWindow = 600; // 10 minutes
    static constexpr double kDefaultWindow = 60;

    explicit HistoryModel(QObject* parent = nullptr);
    ~HistoryModel() override;

    // ---- data ----
    // Samples kept per loop (the longest window at the snapshot rate). Keeps the newest.
    void setCapacity(qsizetype samplesPerLoop);
    qsizetype capacity() const { return capacity_; }
    void addSnapshot(const protocol::SnapshotMessage& snapshot);
    // Names and thread ids (the probe's "loops" message).
    void setLoopInfo(const QList<protocol::LoopInfo>& loops);
    // A gap in every loop's series (NaN sample just after the newest), e.g. the connection was
    // lost: lines are not drawn across it.
    void addGap();
    Q_INVOKABLE void clear();

    const std::vector<std::unique_ptr<LoopHistory>>& histories() const { return loops_; }
    const LoopHistory* history(std::uint64_t loopId) const;
    // CLOCK_MONOTONIC ns of time 0 (0 before the first snapshot).
    std::uint64_t origin() const { return origin_; }
    qint64 snapshotCount() const { return snapshots_; }
    double latestTime() const { return latest_; }
    int sampleCount() const;

    // ---- view ----
    double windowSeconds() const { return window_; }
    void setWindowSeconds(double seconds);
    bool paused() const { return paused_; }
    void setPaused(bool paused);
    bool following() const { return following_; }
    double viewStart() const { return viewEnd() - window_; }
    double viewEnd() const;
    // Scales the window by `factor` (< 1 zooms in) keeping the time at `anchor` (0 = left edge,
    // 1 = right edge of the view) in place. Leaves follow mode unless the view ends at the newest
    // sample.
    Q_INVOKABLE void zoom(double factor, double anchor = 1.0);
    // Moves the view by `seconds` (negative: into the past). Reaching the newest sample follows
    // again.
    Q_INVOKABLE void pan(double seconds);
    // Back to following the newest sample.
    Q_INVOKABLE void follow();
    // Increases whenever what a plot of the view would show changed (data in view, view, loop).
    quint64 revision() const { return revision_; }

    qint64 currentLoopId() const { return qint64(currentLoop_); }
    void setCurrentLoopId(qint64 id);
    QString currentLoopName() const;

    // ---- reading ----
    // The series of `channel` of `loopId` over [t0, t1] (plus one sample either side), min/max
    // decimated to `columns` columns, `scale` applied to the values.
    QList<QPointF> series(std::uint64_t loopId, Channel channel, double t0, double t1, int columns,
                          double scale = 1.0) const;
    // The sample of `loopId` nearest to `t` (nullopt when there is none).
    std::optional<Sample> sampleAt(std::uint64_t loopId, double t) const;

    // ---- export ----
    // The samples of every loop (visibleOnly: those in the view) as CSV: a header line
    // "time,loopId,loopName,<channelName()...>" and one row per loop per snapshot (time in
    // seconds, NaN as an empty field). false with *error when the file cannot be written.
    bool writeCsv(const QString& path, bool visibleOnly, QString* error = nullptr) const;
    Q_INVOKABLE bool exportCsv(const QString& path, bool visibleOnly = true);
    Q_INVOKABLE QString lastError() const { return lastError_; }

signals:
    void viewChanged();
    void windowChanged();
    void followingChanged();
    void pausedChanged();
    void dataChanged();
    void currentLoopChanged();
    // A loop the model did not know appeared (the UI may select it).
    void loopAdded(qint64 loopId, const QString& name);

private:
    LoopHistory* find(std::uint64_t id);
    void bump() { ++revision_; }
    void setFollowing(bool on);

    std::vector<std::unique_ptr<LoopHistory>> loops_;
    LoopListModel* list_;
    qsizetype capacity_ = 12000;
    std::uint64_t origin_ = 0;
    qint64 snapshots_ = 0;
    double latest_ = 0;
    double window_ = kDefaultWindow;
    double pausedEnd_ = 0; // viewEnd while paused or not following
    bool paused_ = false;
    bool following_ = true;
    std::uint64_t currentLoop_ = 0;
    quint64 revision_ = 1;
    QString lastError_;
    QElapsedTimer listUpdate_; // the loop list's values change at most 4 times a second

public:
    LoopListModel* loops() const { return list_; }
};

} // namespace libloop::inspector
