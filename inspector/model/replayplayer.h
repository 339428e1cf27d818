// ReplayPlayer: plays a recorded session (session.h) back into a HistoryModel in real time, so the
// plots move as they did live.
//
// Time: `position` and `duration` are milliseconds since the session start, the "at" of the
// file's first snapshot (the HistoryModel's time 0). Every entry of the file gets a due time: a
// snapshot its own "at", a "loops" or "gap" line that of the snapshot before it (0 before the
// first one); due times never go backwards (a snapshot older than one before it is due with that
// one, and the model drops it as it always did). The model always holds exactly the entries due
// at or before `position`, in file order: playing feeds them as the position passes their time,
// seeking forwards feeds what lies between, seeking backwards clears the model and feeds again up
// to there (keeping the selected loop).
//
// open() loads the whole session and stands at its end (the model shows everything, as a
// plain replaySession() does). play() starts from the position, or from the start when standing
// at the end; reaching the end stops. While playing, a QTimer calls tickFromClock() every
// tickInterval ms, which advances by the time source's elapsed milliseconds times `speed`. Tests
// inject a time source (setTimeSource) or call tick(ms) directly: nothing here sleeps or reads
// the wall clock behind their back.
#pragma once

#include "session.h"

#include <QtCore/qelapsedtimer.h>
#include <QtCore/qobject.h>
#include <QtCore/qtimer.h>
#include <QtCore/qvariant.h>

#include <array>
#include <functional>
#include <optional>
#include <vector>

namespace libloop::inspector {

class HistoryModel;

class ReplayPlayer : public QObject {
    Q_OBJECT
    Q_PROPERTY(bool loaded READ loaded NOTIFY loadedChanged)
    Q_PROPERTY(QString file READ file NOTIFY loadedChanged)
    Q_PROPERTY(qint64 snapshotCount READ snapshotCount NOTIFY loadedChanged)
    Q_PROPERTY(double duration READ duration NOTIFY loadedChanged)
    Q_PROPERTY(double position READ position NOTIFY positionChanged)
    Q_PROPERTY(bool atEnd READ atEnd NOTIFY positionChanged)
    Q_PROPERTY(bool playing READ playing WRITE setPlaying NOTIFY playingChanged)
    Q_PROPERTY(double speed READ speed WRITE setSpeed NOTIFY speedChanged)
    Q_PROPERTY(QVariantList speeds READ speedList CONSTANT)
public:
    // The playback speeds offered (the only ones setSpeed() accepts).
    static constexpr std::array<double, 5> kSpeeds{0.5, 1, 2, 5, 10};
    // ms between two feeds while playing: the plots' 20 Hz (loop-inspector sets 1000 / --fps), so
    // the position's labels add no scene redraws of their own.
    static constexpr int kDefaultTickInterval = 50;

    // Monotonic milliseconds (any origin).
    using TimeSource = std::function<qint64()>;

    explicit ReplayPlayer(HistoryModel* model, QObject* parent = nullptr);
    ~ReplayPlayer() override;

    // Reads `path` (errors as replaySession()), then shows all of it: stops, clears the model,
    // feeds every entry, stands at the end. On failure nothing changes (false with *error).
    bool open(const QString& path, SessionInfo* info = nullptr, QString* error = nullptr);
    // Stops and forgets the session (the model keeps what it shows).
    void close();

    bool loaded() const { return loaded_; }
    QString file() const { return file_; }
    qint64 snapshotCount() const { return snapshots_; }
    double duration() const { return duration_; }
    double position() const { return position_; }
    bool atEnd() const { return loaded_ && position_ >= duration_; }
    bool playing() const { return playing_; }
    void setPlaying(bool on);
    double speed() const { return speed_; }
    // Only the values of kSpeeds; others are ignored (false).
    bool trySetSpeed(double speed);
    // The entries (snapshots, loops, gaps) given to the model so far.
    qsizetype fedEntries() const { return next_; }
    // The due time (ms) of every entry, in file order.
    const std::vector<double>& dueTimes() const { return due_; }

    void setTimeSource(TimeSource source);
    void setTickInterval(int ms);
    int tickInterval() const { return timer_.interval(); }
    bool timerActive() const { return timer_.isActive(); }

    static bool isValidSpeed(double speed);
    // "0.5", "2", "2x", "10X": one of kSpeeds, else nullopt.
    static std::optional<double> parseSpeed(const QString& text);
    // "0.5, 1, 2, 5, 10" (for messages).
    static QString speedChoices();
    QVariantList speedList() const;
    // "m:ss.s" ("h:mm:ss.s" from one hour): the time labels.
    Q_INVOKABLE static QString formatTime(double ms);

public slots:
    void setSpeed(double speed) { trySetSpeed(speed); }
    void play();
    void pause();
    void togglePlaying();
    // Moves to `ms` (clamped to [0, duration]); the model then holds what is due until there.
    // Seeking to the end while playing stops.
    void seek(double ms);
    // Advances a playing player by `elapsedMs` of real time (times speed) and feeds what became
    // due; stops at the end. Does nothing while paused.
    void tick(double elapsedMs);
    // tick() by the time source's milliseconds since the previous call (or since play()); what
    // the timer calls.
    void tickFromClock();

signals:
    void loadedChanged();
    void positionChanged();
    void playingChanged();
    void speedChanged();
    // Playback reached the end of the session and stopped.
    void finished();

private:
    void feedUntil(double ms);
    void rebuildUntil(double ms);
    void setPosition(double ms);
    void stopAtEnd();
    qint64 now() const;

    HistoryModel* model_;
    std::vector<SessionEntry> entries_;
    std::vector<double> due_; // ms since the session start, never decreasing
    qsizetype next_ = 0;      // entries_[0, next_) are in the model
    QString file_;
    qint64 snapshots_ = 0;
    double duration_ = 0;
    double position_ = 0;
    double speed_ = 1;
    bool loaded_ = false;
    bool playing_ = false;
    QTimer timer_;
    QElapsedTimer elapsed_; // the default time source
    TimeSource source_;
    qint64 lastTick_ = 0;
};

} // namespace libloop::inspector
