// Recording a session to a file and replaying it.
//
// The file is JSON lines (one object a line, UTF-8), readable with any JSON tool:
//   {"t":"session","v":1,"pid":..,"name":..,"started":<unix ms>,"recorded":<unix ms>}
//   {"t":"loops","loops":[{"id":..,"name":..,"tid":..}...]}      whenever the loop set changes
//   {"t":"snapshot","at":..,"seq":..,"loops":[LoopMetrics...]}   SnapshotMessage::toJson()
//   {"t":"gap"}                                                  the connection was lost here
//   {"t":"session",...}                                          again after a reconnect
// A replay feeds the same messages to a HistoryModel in order, so it shows the same series.
#pragma once

#include <libloop/protocol/messages.h>

#include <QtCore/qfile.h>
#include <QtCore/qstring.h>

#include <vector>

namespace libloop::inspector {

class HistoryModel;

inline constexpr int kSessionFormatVersion = 1;

class SessionRecorder {
public:
    SessionRecorder() = default;
    ~SessionRecorder() { close(); }
    SessionRecorder(const SessionRecorder&) = delete;
    SessionRecorder& operator=(const SessionRecorder&) = delete;

    bool open(const QString& path, QString* error = nullptr);
    void close();
    bool isOpen() const { return file_.isOpen(); }
    QString path() const { return file_.fileName(); }
    qint64 snapshots() const { return snapshots_; }

    void writeHeader(qint64 pid, const QString& name, qint64 startedUnixMs);
    void writeLoops(const QList<protocol::LoopInfo>& loops);
    void writeSnapshot(const protocol::SnapshotMessage& snapshot);
    void writeGap();

private:
    void writeLine(const QJsonObject& o);

    QFile file_;
    qint64 snapshots_ = 0;
};

struct SessionInfo {
    qint64 pid = 0;
    QString name;
    qint64 started = 0;
    qint64 snapshots = 0;
};

// One message of a recorded session, in file order. Session headers are not entries: they only
// set SessionInfo (the last header wins), as they never touched the model.
struct SessionEntry {
    enum class Kind { Loops, Snapshot, Gap };
    Kind kind = Kind::Gap;
    QList<protocol::LoopInfo> loops;    // Kind::Loops
    protocol::SnapshotMessage snapshot; // Kind::Snapshot
};

// Reads and checks a whole recorded session. false with *error (naming the line) for a file that
// cannot be read or a line that is not a valid message; lines of unknown types are skipped.
// `entries` is left alone on failure.
bool readSession(const QString& path, std::vector<SessionEntry>* entries,
                 SessionInfo* info = nullptr, QString* error = nullptr);

// Gives one entry to `model` the way the live inspector gave it the message.
void feedSessionEntry(HistoryModel* model, const SessionEntry& entry);

// Reads a recorded session into `model` (cleared first, and only when the whole file is valid):
// readSession() + feedSessionEntry() for every entry. Same errors as readSession().
bool replaySession(const QString& path, HistoryModel* model, SessionInfo* info = nullptr,
                   QString* error = nullptr);

} // namespace libloop::inspector
