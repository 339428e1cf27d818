#include "inspectorcontroller.h"

#include "discovery.h"

#include <plotitem.h>
#include <plotscheduler.h>

#include <QtCore/qdatetime.h>
#include <QtCore/qdir.h>
#include <QtQml/qqml.h>

#include <ctime>

namespace libloop::inspector {

namespace proto = libloop::protocol;

namespace {

std::uint64_t monotonicNowNs() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000ull + std::uint64_t(ts.tv_nsec);
}

} // namespace

void registerQmlTypes() {
    const char* uri = "LibloopInspector.Backend";
    qmlRegisterType<PlotItem>(uri, 1, 0, "PlotItem");
    qmlRegisterUncreatableType<HistoryModel>(uri, 1, 0, "HistoryModel",
                                             QStringLiteral("owned by InspectorController"));
    qmlRegisterUncreatableType<LoopListModel>(uri, 1, 0, "LoopListModel",
                                              QStringLiteral("owned by HistoryModel"));
    qmlRegisterUncreatableType<ProbeListModel>(uri, 1, 0, "ProbeListModel",
                                               QStringLiteral("owned by InspectorController"));
    qmlRegisterUncreatableType<InspectorController>(uri, 1, 0, "InspectorController",
                                                    QStringLiteral("created by loop-inspector"));
    qmlRegisterUncreatableType<ReplayPlayer>(uri, 1, 0, "ReplayPlayer",
                                             QStringLiteral("owned by InspectorController"));
    qmlRegisterUncreatableType<FileChooser>(uri, 1, 0, "FileChooser",
                                            QStringLiteral("owned by InspectorController"));
}

InspectorController::InspectorController(QObject* parent) : QObject(parent) {
    clock_.start();
    exportDir_ = QDir::currentPath();
    files_.setStartDirectory(exportDir_);
    history_.setCapacity(qsizetype(HistoryModel::kMaxWindow * session_.rate()) + 16);

    ProbeClient* c = session_.client();
    connect(&session_, &ProbeSession::statusChanged, this, [this] {
        updateStatusText();
        emit statusChanged();
    });
    connect(&session_, &ProbeSession::attachedTo, this,
            [this](qint64 pid, const QString& name, bool again) {
                pid_ = pid;
                name_ = name;
                if (recorder_.isOpen() && session_.client()->serverHello())
                    recorder_.writeHeader(pid, name, session_.client()->serverHello()->started);
                setMessage(again ? QStringLiteral("reattached to %1 (pid %2)").arg(name).arg(pid)
                                 : QStringLiteral("attached to %1 (pid %2)").arg(name).arg(pid));
                emit statusChanged();
            });
    connect(
        &session_, &ProbeSession::connectionLost, this, [this](const QString& message, bool retry) {
            history_.addGap();
            if (recorder_.isOpen())
                recorder_.writeGap();
            setMessage(
                retry
                    ? message +
                          QStringLiteral(": waiting for %1 to come back").arg(session_.probe().name)
                    : message);
        });
    connect(c, &ProbeClient::loopsChanged, this, [this](const QList<proto::LoopInfo>& loops) {
        history_.setLoopInfo(loops);
        if (recorder_.isOpen())
            recorder_.writeLoops(loops);
    });
    connect(c, &ProbeClient::snapshotReceived, this, [this](const proto::SnapshotMessage& s) {
        history_.addSnapshot(s);
        if (recorder_.isOpen())
            recorder_.writeSnapshot(s);
        arrivals_.push_back(clock_.elapsed());
        const std::uint64_t now = monotonicNowNs();
        const double lag = now > s.at ? double(now - s.at) / 1e6 : 0.0;
        lagMs_ = lagMs_ == 0 ? lag : 0.8 * lagMs_ + 0.2 * lag;
    });
    connect(c, &ProbeClient::subscribed, this, [this](int rate, bool) {
        history_.setCapacity(qsizetype(HistoryModel::kMaxWindow * rate) + 16);
    });
    connect(&history_, &HistoryModel::loopAdded, this, [this](qint64 id, const QString& name) {
        if (!preferredLoop_.isEmpty() && name == preferredLoop_)
            history_.setCurrentLoopId(id);
    });

    // The Browse buttons.
    connect(&files_, &FileChooser::exportDirectoryChosen, this, [this](const QString& dir) {
        setExportDirectory(dir);
        setMessage(QStringLiteral("exports go to %1").arg(dir));
    });
    connect(&files_, &FileChooser::recordFileChosen, this, [this](const QString& path) {
        stopRecording();
        startRecording(path);
    });
    connect(&files_, &FileChooser::replayFileChosen, this,
            [this](const QString& path) { replay(path); });
    connect(&player_, &ReplayPlayer::playingChanged, this, &InspectorController::updateStatusText);
    connect(&player_, &ReplayPlayer::finished, this,
            [this] { setMessage(QStringLiteral("end of %1").arg(replayFile_)); });

    // The status line changes a few times a second at most, whatever the snapshot rate.
    statusTimer_.setInterval(500);
    connect(&statusTimer_, &QTimer::timeout, this, &InspectorController::updateStatusText);
    statusTimer_.start();
    updateStatusText();
}

InspectorController::~InspectorController() = default;

QString InspectorController::status() const {
    if (replaying_)
        return QStringLiteral("replay");
    switch (session_.status()) {
    case ProbeSession::Status::Idle:
        return QStringLiteral("idle");
    case ProbeSession::Status::Connecting:
        return QStringLiteral("connecting");
    case ProbeSession::Status::Attached:
        return QStringLiteral("attached");
    case ProbeSession::Status::Reconnecting:
        return QStringLiteral("reconnecting");
    case ProbeSession::Status::Failed:
        return QStringLiteral("failed");
    }
    return {};
}

void InspectorController::setRate(int rate) {
    rate = std::clamp(rate, proto::kMinRate, proto::kMaxRate);
    if (rate == session_.rate())
        return;
    session_.setRate(rate);
    emit rateChanged();
}

void InspectorController::setExportDirectory(const QString& dir) {
    if (dir == exportDir_)
        return;
    exportDir_ = dir;
    files_.setStartDirectory(dir);
    emit exportDirectoryChanged();
}

void InspectorController::setProbeDirectory(const QString& dir) {
    probeDir_ = dir;
    probes_.setDirectory(dir);
    session_.setDirectory(dir);
}

void InspectorController::setMessage(const QString& m) {
    if (m == message_)
        return;
    message_ = m;
    emit messageChanged();
}

void InspectorController::updateStatusText() {
    const qint64 now = clock_.elapsed();
    while (!arrivals_.empty() && arrivals_.front() < now - 2000)
        arrivals_.pop_front();
    measuredRate_ = double(arrivals_.size()) / 2.0;
    QString text;
    if (replaying_) {
        text = QStringLiteral("replay of %1 (pid %2) from %3 · %4 snapshots")
                   .arg(name_)
                   .arg(pid_)
                   .arg(replayFile_)
                   .arg(history_.snapshotCount());
        if (player_.loaded())
            text +=
                QStringLiteral(" · %1 %2x · %3 / %4")
                    .arg(player_.playing() ? QStringLiteral("playing") : QStringLiteral("stopped"))
                    .arg(player_.speed())
                    .arg(ReplayPlayer::formatTime(player_.position()),
                         ReplayPlayer::formatTime(player_.duration()));
    } else {
        const QString st = status();
        if (pid_ > 0)
            text = QStringLiteral("pid %1 (%2) · %3").arg(pid_).arg(name_, st);
        else
            text =
                st == QLatin1String("idle") ? QStringLiteral("not attached: pick a process") : st;
        if (session_.status() == ProbeSession::Status::Attached) {
            text += QStringLiteral(" · %1/s (asked %2) · lag %3 ms")
                        .arg(measuredRate_, 0, 'f', 1)
                        .arg(session_.rate())
                        .arg(lagMs_, 0, 'f', 1);
            if (session_.client()->snapshotsDropped() > 0)
                text += QStringLiteral(" · %1 dropped").arg(session_.client()->snapshotsDropped());
        }
        if (session_.reconnects() > 0)
            text += QStringLiteral(" · %1 reconnects").arg(session_.reconnects());
    }
    if (recorder_.isOpen())
        text += QStringLiteral(" · recording to %1 (%2)")
                    .arg(recorder_.path())
                    .arg(recorder_.snapshots());
    if (history_.paused())
        text += QStringLiteral(" · paused");
    if (text != statusText_) {
        statusText_ = text;
        emit statusTextChanged();
    }
}

void InspectorController::attachTo(const proto::ProbeInfo& probe) {
    if (replaying_) {
        replaying_ = false;
        replayFile_.clear();
        player_.close();
    }
    if (session_.status() != ProbeSession::Status::Idle && session_.probe().path == probe.path &&
        session_.status() != ProbeSession::Status::Failed)
        return; // already there
    session_.detach();
    history_.clear();
    pid_ = probe.pid;
    name_ = probe.name;
    session_.attach(probe);
    emit statusChanged();
    updateStatusText();
}

bool InspectorController::attachPath(const QString& socketPath) {
    QString error;
    const auto probe = resolveProbe(0, socketPath, probeDir_, &error);
    if (!probe) {
        setMessage(error);
        return false;
    }
    attachTo(*probe);
    return true;
}

bool InspectorController::attachPid(qint64 pid) {
    QString error;
    const auto probe = resolveProbe(pid, {}, probeDir_, &error);
    if (!probe) {
        setMessage(error);
        return false;
    }
    attachTo(*probe);
    return true;
}

bool InspectorController::attachRow(int row) {
    if (row < 0 || row >= probes_.probes().size())
        return false;
    attachTo(probes_.probes().at(row));
    return true;
}

void InspectorController::detach() {
    player_.pause();
    session_.detach();
    pid_ = 0;
    name_.clear();
    emit statusChanged();
    updateStatusText();
}

QString InspectorController::stamp() const {
    return QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"));
}

bool InspectorController::startRecording(const QString& path) {
    const QString file =
        path.isEmpty() ? QDir(exportDir_).filePath(QStringLiteral("session-%1.jsonl").arg(stamp()))
                       : path;
    QString error;
    if (!recorder_.open(file, &error)) {
        setMessage(error);
        return false;
    }
    if (const auto& hello = session_.client()->serverHello()) {
        recorder_.writeHeader(hello->pid, hello->name, hello->started);
        recorder_.writeLoops(session_.client()->loops());
    } else {
        recorder_.writeHeader(0, QString(), 0);
    }
    setMessage(QStringLiteral("recording to %1").arg(file));
    emit recordingChanged();
    updateStatusText();
    return true;
}

void InspectorController::stopRecording() {
    if (!recorder_.isOpen())
        return;
    const QString file = recorder_.path();
    recorder_.close();
    setMessage(QStringLiteral("recorded %1 (replay: loop-inspector --replay %1)").arg(file));
    emit recordingChanged();
    updateStatusText();
}

bool InspectorController::replay(const QString& path) {
    session_.detach();
    SessionInfo info;
    QString error;
    if (!player_.open(path, &info, &error)) {
        setMessage(error);
        return false;
    }
    replaying_ = true;
    replayFile_ = path;
    pid_ = info.pid;
    name_ = info.name;
    setMessage(QStringLiteral("replaying %1: %2 snapshots").arg(path).arg(info.snapshots));
    emit statusChanged();
    updateStatusText();
    return true;
}

QStringList InspectorController::exportPng(const QString& dir) {
    const QString target =
        dir.isEmpty() ? QDir(exportDir_).filePath(QStringLiteral("inspector-%1").arg(stamp()))
                      : dir;
    QStringList written;
    if (!QDir().mkpath(target)) {
        setMessage(QStringLiteral("cannot create %1").arg(target));
        return written;
    }
    for (PlotItem* item : PlotScheduler::instance()->items()) {
        if (!item->isVisible())
            continue;
        const QString file =
            QDir(target).filePath(QStringLiteral("plot-%1.png").arg(item->kindName()));
        if (item->saveImage(file))
            written << file;
    }
    setMessage(written.isEmpty()
                   ? QStringLiteral("no plot to export")
                   : QStringLiteral("exported %1 plots to %2").arg(written.size()).arg(target));
    return written;
}

QString InspectorController::exportCsv(const QString& path) {
    const QString file =
        path.isEmpty() ? QDir(exportDir_).filePath(QStringLiteral("series-%1.csv").arg(stamp()))
                       : path;
    QString error;
    if (!history_.writeCsv(file, true, &error)) {
        setMessage(error);
        return {};
    }
    setMessage(QStringLiteral("exported the visible series to %1").arg(file));
    return file;
}

} // namespace libloop::inspector
