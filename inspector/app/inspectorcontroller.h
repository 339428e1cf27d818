// InspectorController: what the QML window talks to. It owns the process list, the probe session
// (attach, reconnect), the history model, recording and replay (with real-time playback), the
// file dialogs of the Browse buttons, exports, and the status line.
#pragma once

#include "filechooser.h"

#include <historymodel.h>
#include <probelistmodel.h>
#include <probesession.h>
#include <replayplayer.h>
#include <session.h>

#include <QtCore/qelapsedtimer.h>
#include <QtCore/qobject.h>
#include <QtCore/qtimer.h>

#include <deque>

namespace libloop::inspector {

class InspectorController : public QObject {
    Q_OBJECT
    Q_PROPERTY(libloop::inspector::HistoryModel* history READ history CONSTANT)
    Q_PROPERTY(libloop::inspector::ProbeListModel* probes READ probes CONSTANT)
    Q_PROPERTY(QString status READ status NOTIFY statusChanged)
    Q_PROPERTY(QString statusText READ statusText NOTIFY statusTextChanged)
    Q_PROPERTY(QString message READ message NOTIFY messageChanged)
    Q_PROPERTY(qint64 attachedPid READ attachedPid NOTIFY statusChanged)
    Q_PROPERTY(QString processName READ processName NOTIFY statusChanged)
    Q_PROPERTY(int rate READ rate WRITE setRate NOTIFY rateChanged)
    Q_PROPERTY(double measuredRate READ measuredRate NOTIFY statusTextChanged)
    Q_PROPERTY(double lagMs READ lagMs NOTIFY statusTextChanged)
    Q_PROPERTY(bool recording READ recording NOTIFY recordingChanged)
    Q_PROPERTY(bool replaying READ replaying NOTIFY statusChanged)
    Q_PROPERTY(QString replayFile READ replayFile NOTIFY statusChanged)
    Q_PROPERTY(QString recordingFile READ recordingFile NOTIFY recordingChanged)
    Q_PROPERTY(libloop::inspector::ReplayPlayer* player READ player CONSTANT)
    Q_PROPERTY(libloop::inspector::FileChooser* files READ files CONSTANT)
    Q_PROPERTY(QString exportDirectory READ exportDirectory WRITE setExportDirectory NOTIFY
                   exportDirectoryChanged)
public:
    explicit InspectorController(QObject* parent = nullptr);
    ~InspectorController() override;

    HistoryModel* history() { return &history_; }
    ProbeListModel* probes() { return &probes_; }
    ProbeSession* session() { return &session_; }
    // Plays the replayed session in real time (loaded by replay()).
    ReplayPlayer* player() { return &player_; }
    // The Browse buttons' dialogs: a chosen folder becomes the export directory, a chosen record
    // file is recorded to (after stopping a recording in progress), a chosen session is replayed.
    FileChooser* files() { return &files_; }

    // "idle", "connecting", "attached", "reconnecting", "failed", "replay"
    QString status() const;
    // pid, name, rate, lag, reconnects, recording: the line at the bottom of the window.
    QString statusText() const { return statusText_; }
    // The last notable event for humans (an error, "exported to ...").
    QString message() const { return message_; }
    qint64 attachedPid() const { return pid_; }
    QString processName() const { return name_; }
    int rate() const { return session_.rate(); }
    void setRate(int rate);
    double measuredRate() const { return measuredRate_; }
    double lagMs() const { return lagMs_; }
    bool recording() const { return recorder_.isOpen(); }
    bool replaying() const { return replaying_; }
    QString replayFile() const { return replayFile_; }
    QString recordingFile() const { return recorder_.isOpen() ? recorder_.path() : QString(); }
    QString exportDirectory() const { return exportDir_; }
    void setExportDirectory(const QString& dir);

    // Prefer the loop with this name when it appears.
    void setPreferredLoop(const QString& name) { preferredLoop_ = name; }
    void setProbeDirectory(const QString& dir);

    Q_INVOKABLE bool attachPath(const QString& socketPath);
    Q_INVOKABLE bool attachPid(qint64 pid);
    Q_INVOKABLE bool attachRow(int row); // a row of probes
    Q_INVOKABLE void detach();
    Q_INVOKABLE bool startRecording(const QString& path = {});
    Q_INVOKABLE void stopRecording();
    // Shows the whole recorded session (paused at its end; player() plays it).
    Q_INVOKABLE bool replay(const QString& path);
    // Every plot item's PNG (plot-<kind>.png) into `dir` (default: a new folder in the export
    // directory); returns the files written.
    Q_INVOKABLE QStringList exportPng(const QString& dir = {});
    // The visible series as CSV (default: a new file in the export directory); the path or "".
    Q_INVOKABLE QString exportCsv(const QString& path = {});

signals:
    void statusChanged();
    void statusTextChanged();
    void messageChanged();
    void rateChanged();
    void recordingChanged();
    void exportDirectoryChanged();

private:
    void attachTo(const protocol::ProbeInfo& probe);
    void setMessage(const QString& m);
    void updateStatusText();
    QString stamp() const;

    HistoryModel history_;
    ProbeListModel probes_;
    ProbeSession session_;
    SessionRecorder recorder_;
    ReplayPlayer player_{&history_};
    FileChooser files_;
    QTimer statusTimer_;
    QElapsedTimer clock_;
    std::deque<qint64> arrivals_; // ms of recent snapshots (for the measured rate)
    QString probeDir_;
    QString preferredLoop_;
    QString exportDir_;
    QString statusText_;
    QString message_;
    QString name_;
    qint64 pid_ = 0;
    double measuredRate_ = 0;
    double lagMs_ = 0;
    bool replaying_ = false;
    QString replayFile_;
};

// Registers the C++ types the QML module uses, under "LibloopInspector.Backend" 1.0.
void registerQmlTypes();

} // namespace libloop::inspector
