#include "historymodel.h"

#include "decimate.h"

#include <QtCore/qfile.h>
#include <QtCore/qsavefile.h>
#include <QtCore/qtextstream.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace libloop::inspector {

namespace proto = libloop::protocol;

// ---- SampleStore ------------------------------------------------------------------------------

void SampleStore::setCapacity(qsizetype capacity) {
    times_.setCapacity(capacity);
    for (auto& r : values_)
        r.setCapacity(capacity);
}

void SampleStore::push(const Sample& s) {
    times_.push(s.t);
    for (std::size_t c = 0; c < values_.size(); ++c)
        values_[c].push(s.v[c]);
}

void SampleStore::clear() {
    times_.clear();
    for (auto& r : values_)
        r.clear();
}

Sample SampleStore::at(qsizetype i) const {
    Sample s;
    s.t = times_.at(i);
    for (std::size_t c = 0; c < values_.size(); ++c)
        s.v[c] = values_[c].at(i);
    return s;
}

qsizetype SampleStore::lowerBound(double t) const {
    return times_.lowerBound(t, [](double v) { return v; });
}

// ---- LoopListModel ----------------------------------------------------------------------------

LoopListModel::LoopListModel(HistoryModel* history)
    : QAbstractListModel(history), history_(history) {}

int LoopListModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(history_->histories().size());
}

QVariant LoopListModel::data(const QModelIndex& index, int role) const {
    const auto& all = history_->histories();
    if (!index.isValid() || index.row() >= int(all.size()))
        return {};
    const LoopHistory& h = *all[std::size_t(index.row())];
    switch (role) {
    case Qt::DisplayRole:
    case NameRole:
        return h.name;
    case LoopIdRole:
        return qint64(h.id);
    case TidRole:
        return h.tid;
    case AliveRole:
        return h.alive;
    case StateRole:
        return h.alive ? h.last.state : QStringLiteral("gone");
    case TimerHeapSizeRole:
        return qint64(h.last.timerHeapSize);
    case TasksPerSecondRole:
        return h.last.tasksPerSecond;
    case UtilisationRole:
        return h.last.utilisation;
    case LatencyP99Role:
        return qint64(h.last.taskLatency.p99);
    case FastPathModeRole:
        return h.last.fastPathMode;
    default:
        return {};
    }
}

QHash<int, QByteArray> LoopListModel::roleNames() const {
    return {{LoopIdRole, "loopId"},
            {NameRole, "name"},
            {TidRole, "tid"},
            {AliveRole, "alive"},
            {StateRole, "state"},
            {TimerHeapSizeRole, "timerHeapSize"},
            {TasksPerSecondRole, "tasksPerSecond"},
            {UtilisationRole, "utilisation"},
            {LatencyP99Role, "latencyP99"},
            {FastPathModeRole, "fastPathMode"}};
}

qint64 LoopListModel::loopIdAt(int row) const {
    const auto& all = history_->histories();
    return row >= 0 && row < int(all.size()) ? qint64(all[std::size_t(row)]->id) : 0;
}

int LoopListModel::rowOf(qint64 loopId) const {
    const auto& all = history_->histories();
    for (std::size_t i = 0; i < all.size(); ++i)
        if (qint64(all[i]->id) == loopId)
            return int(i);
    return -1;
}

void LoopListModel::reset() {
    beginResetModel();
    endResetModel();
    emit countChanged();
}

void LoopListModel::valuesChanged() {
    if (rowCount() > 0)
        emit dataChanged(index(0), index(rowCount() - 1));
}

// ---- HistoryModel -----------------------------------------------------------------------------

HistoryModel::HistoryModel(QObject* parent) : QObject(parent), list_(new LoopListModel(this)) {}

HistoryModel::~HistoryModel() = default;

LoopHistory* HistoryModel::find(std::uint64_t id) {
    for (auto& h : loops_)
        if (h->id == id)
            return h.get();
    return nullptr;
}

const LoopHistory* HistoryModel::history(std::uint64_t id) const {
    for (const auto& h : loops_)
        if (h->id == id)
            return h.get();
    return nullptr;
}

void HistoryModel::setCapacity(qsizetype samplesPerLoop) {
    capacity_ = std::max<qsizetype>(samplesPerLoop, 2);
    for (auto& h : loops_)
        h->samples.setCapacity(capacity_);
    bump();
}

int HistoryModel::sampleCount() const {
    const LoopHistory* h = history(currentLoop_);
    return h ? int(h->samples.size()) : 0;
}

void HistoryModel::addSnapshot(const proto::SnapshotMessage& snapshot) {
    if (origin_ == 0)
        origin_ = snapshot.at;
    const double t = double(qint64(snapshot.at - origin_)) / 1e9;
    const double endBefore = viewEnd();
    ++snapshots_;
    bool added = false;
    for (auto& h : loops_)
        h->alive = false;
    for (const proto::LoopMetrics& m : snapshot.loops) {
        LoopHistory* h = find(m.id);
        if (!h) {
            auto fresh = std::make_unique<LoopHistory>();
            fresh->id = m.id;
            fresh->name = QStringLiteral("loop %1").arg(m.id);
            fresh->samples.setCapacity(capacity_);
            h = fresh.get();
            loops_.push_back(std::move(fresh));
            added = true;
        }
        h->alive = true;
        h->last = m;
        Sample s;
        s.t = t;
        for (int c = 0; c < kChannelCount; ++c)
            s.v[std::size_t(c)] = channelValue(m, Channel(c));
        // Time never goes backwards on one axis (a restarted process shares CLOCK_MONOTONIC,
        // but a replayed file could be edited): drop what would break the order.
        if (h->samples.isEmpty() || h->samples.time(h->samples.size() - 1) <= t)
            h->samples.push(s);
    }
    latest_ = std::max(latest_, t);
    if (added) {
        list_->reset();
        for (const auto& h : loops_)
            if (!currentLoop_ && h->alive) {
                setCurrentLoopId(qint64(h->id));
                break;
            }
    } else if (!listUpdate_.isValid() || listUpdate_.elapsed() >= 250) {
        listUpdate_.start();
        list_->valuesChanged();
    }
    // A loop's first sample (whether the "loops" message announced it before or not).
    for (const proto::LoopMetrics& m : snapshot.loops)
        if (const LoopHistory* h = history(m.id);
            h && h->samples.size() == 1 && h->samples.time(0) == t)
            emit loopAdded(qint64(m.id), h->name);
    // Plots change when the new sample is in view: following and not paused, or the view is in
    // the past but reaches this far.
    if (!paused_ && (following_ || t <= endBefore)) {
        bump();
        if (following_)
            emit viewChanged();
    }
    emit dataChanged();
}

void HistoryModel::setLoopInfo(const QList<proto::LoopInfo>& loops) {
    bool changed = false;
    for (const proto::LoopInfo& info : loops) {
        LoopHistory* h = find(info.id);
        if (!h) {
            auto fresh = std::make_unique<LoopHistory>();
            fresh->id = info.id;
            fresh->samples.setCapacity(capacity_);
            h = fresh.get();
            loops_.push_back(std::move(fresh));
        }
        if (h->name != info.name || h->tid != info.tid) {
            h->name = info.name.isEmpty() ? QStringLiteral("loop %1").arg(info.id) : info.name;
            h->tid = info.tid;
            changed = true;
        }
    }
    if (changed) {
        list_->reset();
        if (!currentLoop_ && !loops_.empty())
            setCurrentLoopId(qint64(loops_.front()->id));
        emit currentLoopChanged(); // the name may have changed
        bump();
    }
}

void HistoryModel::addGap() {
    for (auto& h : loops_) {
        if (h->samples.isEmpty() || std::isnan(h->samples.value(Channel(0), h->samples.size() - 1)))
            continue;
        Sample s;
        s.t = h->samples.time(h->samples.size() - 1);
        s.v.fill(std::numeric_limits<double>::quiet_NaN());
        h->samples.push(s);
        h->alive = false;
    }
    list_->valuesChanged();
    bump();
}

void HistoryModel::clear() {
    loops_.clear();
    origin_ = 0;
    snapshots_ = 0;
    latest_ = 0;
    pausedEnd_ = 0;
    setFollowing(true);
    currentLoop_ = 0;
    list_->reset();
    bump();
    emit currentLoopChanged();
    emit viewChanged();
    emit dataChanged();
}

void HistoryModel::setFollowing(bool on) {
    if (on == following_)
        return;
    following_ = on;
    emit followingChanged();
}

double HistoryModel::viewEnd() const {
    if (paused_ || !following_)
        return pausedEnd_;
    return std::max(latest_, window_);
}

void HistoryModel::setWindowSeconds(double seconds) {
    seconds = std::clamp(seconds, kMinWindow, kMaxWindow);
    if (seconds == window_)
        return;
    window_ = seconds;
    bump();
    emit windowChanged();
    emit viewChanged();
}

void HistoryModel::setPaused(bool paused) {
    if (paused == paused_)
        return;
    if (paused)
        pausedEnd_ = viewEnd();
    paused_ = paused;
    bump();
    emit pausedChanged();
    emit viewChanged();
}

void HistoryModel::zoom(double factor, double anchor) {
    if (!(factor > 0))
        return;
    anchor = std::clamp(anchor, 0.0, 1.0);
    const double end = viewEnd();
    const double anchorT = end - window_ * (1.0 - anchor);
    const double w = std::clamp(window_ * factor, kMinWindow, kMaxWindow);
    const double newEnd = anchorT + w * (1.0 - anchor);
    const bool windowChange = w != window_;
    window_ = w;
    if (newEnd >= latest_ && anchor >= 1.0) {
        setFollowing(true);
        if (paused_)
            pausedEnd_ = newEnd;
    } else {
        setFollowing(false);
        pausedEnd_ = newEnd;
    }
    bump();
    if (windowChange)
        emit windowChanged();
    emit viewChanged();
}

void HistoryModel::pan(double seconds) {
    double end = viewEnd() + seconds;
    if (end >= latest_) {
        end = std::max(latest_, window_);
        setFollowing(true);
    } else {
        setFollowing(false);
    }
    pausedEnd_ = end;
    bump();
    emit viewChanged();
}

void HistoryModel::follow() {
    setFollowing(true);
    pausedEnd_ = std::max(latest_, window_);
    bump();
    emit viewChanged();
}

void HistoryModel::setCurrentLoopId(qint64 id) {
    if (std::uint64_t(id) == currentLoop_)
        return;
    currentLoop_ = std::uint64_t(id);
    bump();
    emit currentLoopChanged();
    emit dataChanged();
}

QString HistoryModel::currentLoopName() const {
    const LoopHistory* h = history(currentLoop_);
    return h ? h->name : QString();
}

QList<QPointF> HistoryModel::series(std::uint64_t loopId, Channel channel, double t0, double t1,
                                    int columns, double scale) const {
    QList<QPointF> out;
    const LoopHistory* h = history(loopId);
    if (!h || h->samples.isEmpty())
        return out;
    const SampleStore& store = h->samples;
    const qsizetype first = store.lowerBound(t0);
    const qsizetype pastLast =
        store.lowerBound(std::nextafter(t1, std::numeric_limits<double>::infinity()));
    // One sample either side of the view, so lines run to the edges.
    const qsizetype begin = std::max<qsizetype>(first - 1, 0);
    const qsizetype end = std::min(pastLast + 1, store.size());
    columns = std::max(columns, 1);
    out.reserve(std::min<qsizetype>(end - begin, 2 * qsizetype(columns) + 4));
    MinMaxDecimator d(t0, t1, columns, out, pastLast - first <= 2 * qsizetype(columns));
    // The time ring and the channel's ring are in lockstep: their contiguous pieces match.
    struct Piece {
        const double* p = nullptr;
        qsizetype n = 0;
    };
    Piece tp[2], vp[2];
    int nt = 0, nv = 0;
    store.times().forEachSegment(begin, end, [&](const double* p, qsizetype n) {
        tp[nt++] = {p, n};
    });
    store.values(channel).forEachSegment(begin, end, [&](const double* p, qsizetype n) {
        vp[nv++] = {p, n};
    });
    for (int k = 0; k < nt && k < nv; ++k)
        for (qsizetype i = 0; i < tp[k].n; ++i)
            d.add(tp[k].p[i], vp[k].p[i] * scale);
    d.finish();
    return out;
}

std::optional<Sample> HistoryModel::sampleAt(std::uint64_t loopId, double t) const {
    const LoopHistory* h = history(loopId);
    if (!h || h->samples.isEmpty())
        return std::nullopt;
    const SampleStore& r = h->samples;
    const qsizetype i = r.lowerBound(t);
    if (i >= r.size())
        return r.last();
    if (i == 0)
        return r.first();
    return (t - r.time(i - 1) <= r.time(i) - t) ? r.at(i - 1) : r.at(i);
}

bool HistoryModel::writeCsv(const QString& path, bool visibleOnly, QString* error) const {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) {
        if (error)
            *error = QStringLiteral("cannot write %1: %2").arg(path, f.errorString());
        return false;
    }
    QTextStream out(&f);
    out << "time,loopId,loopName";
    for (Channel c : allChannels())
        out << ',' << channelName(c);
    out << '\n';
    const double t0 = visibleOnly ? viewStart() : -std::numeric_limits<double>::infinity();
    const double t1 = visibleOnly ? viewEnd() : std::numeric_limits<double>::infinity();
    // Rows in time order across loops.
    struct Row {
        double t;
        const LoopHistory* h;
        qsizetype i;
    };
    std::vector<Row> rows;
    for (const auto& h : loops_)
        for (qsizetype i = 0; i < h->samples.size(); ++i) {
            const double t = h->samples.time(i);
            if (t >= t0 && t <= t1)
                rows.push_back({t, h.get(), i});
        }
    std::stable_sort(rows.begin(), rows.end(),
                     [](const Row& a, const Row& b) { return a.t < b.t; });
    QString name;
    for (const Row& r : rows) {
        name = r.h->name;
        name.replace(QLatin1Char('"'), QStringLiteral("\"\""));
        out << QString::number(r.t, 'f', 6) << ',' << r.h->id << ",\"" << name << '"';
        for (Channel c : allChannels()) {
            const double v = r.h->samples.value(c, r.i);
            out << ',';
            if (!std::isnan(v))
                out << QString::number(v, 'g', 17);
        }
        out << '\n';
    }
    out.flush();
    if (!f.commit()) {
        if (error)
            *error = QStringLiteral("cannot write %1: %2").arg(path, f.errorString());
        return false;
    }
    return true;
}

bool HistoryModel::exportCsv(const QString& path, bool visibleOnly) {
    return writeCsv(path, visibleOnly, &lastError_);
}

} // namespace libloop::inspector
