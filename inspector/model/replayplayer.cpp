#include "replayplayer.h"

#include "historymodel.h"

#include <algorithm>
#include <cmath>

namespace libloop::inspector {

ReplayPlayer::ReplayPlayer(HistoryModel* model, QObject* parent) : QObject(parent), model_(model) {
    elapsed_.start();
    timer_.setInterval(kDefaultTickInterval);
    connect(&timer_, &QTimer::timeout, this, &ReplayPlayer::tickFromClock);
}

ReplayPlayer::~ReplayPlayer() = default;

bool ReplayPlayer::open(const QString& path, SessionInfo* info, QString* error) {
    std::vector<SessionEntry> entries;
    SessionInfo found;
    if (!readSession(path, &entries, &found, error))
        return false;
    // Due times: a snapshot's "at" since the first snapshot's; other lines come with the
    // snapshot before them. Never decreasing, so "due by t" is always a prefix of the file.
    std::vector<double> due;
    due.reserve(entries.size());
    bool haveOrigin = false;
    std::uint64_t origin = 0;
    double latest = 0;
    for (const SessionEntry& e : entries) {
        if (e.kind == SessionEntry::Kind::Snapshot) {
            if (!haveOrigin) {
                origin = e.snapshot.at;
                haveOrigin = true;
            }
            latest = std::max(latest, double(qint64(e.snapshot.at - origin)) / 1e6);
        }
        due.push_back(latest);
    }
    const bool wasPlaying = playing_;
    playing_ = false;
    timer_.stop();
    entries_ = std::move(entries);
    due_ = std::move(due);
    file_ = path;
    snapshots_ = found.snapshots;
    duration_ = due_.empty() ? 0.0 : due_.back();
    loaded_ = true;
    // Everything at once, as replaySession() shows it; a fresh selection for a fresh session.
    model_->clear();
    next_ = 0;
    feedUntil(duration_);
    position_ = duration_;
    if (info)
        *info = found;
    if (wasPlaying)
        emit playingChanged();
    emit loadedChanged();
    emit positionChanged();
    return true;
}

void ReplayPlayer::close() {
    const bool wasPlaying = playing_;
    playing_ = false;
    timer_.stop();
    entries_.clear();
    due_.clear();
    next_ = 0;
    file_.clear();
    snapshots_ = 0;
    duration_ = 0;
    position_ = 0;
    const bool wasLoaded = loaded_;
    loaded_ = false;
    if (wasPlaying)
        emit playingChanged();
    if (wasLoaded) {
        emit loadedChanged();
        emit positionChanged();
    }
}

void ReplayPlayer::feedUntil(double ms) {
    const qsizetype n = qsizetype(entries_.size());
    while (next_ < n && due_[std::size_t(next_)] <= ms) {
        feedSessionEntry(model_, entries_[std::size_t(next_)]);
        ++next_;
    }
}

void ReplayPlayer::rebuildUntil(double ms) {
    const qint64 selected = model_->currentLoopId();
    model_->clear();
    next_ = 0;
    feedUntil(ms);
    if (selected != 0 && model_->history(std::uint64_t(selected)))
        model_->setCurrentLoopId(selected);
}

void ReplayPlayer::setPosition(double ms) {
    if (ms == position_)
        return;
    position_ = ms;
    emit positionChanged();
}

void ReplayPlayer::stopAtEnd() {
    playing_ = false;
    timer_.stop();
    emit playingChanged();
    emit finished();
}

qint64 ReplayPlayer::now() const {
    return source_ ? source_() : elapsed_.elapsed();
}

void ReplayPlayer::setPlaying(bool on) {
    if (on)
        play();
    else
        pause();
}

bool ReplayPlayer::isValidSpeed(double speed) {
    return std::find(kSpeeds.begin(), kSpeeds.end(), speed) != kSpeeds.end();
}

std::optional<double> ReplayPlayer::parseSpeed(const QString& text) {
    QString t = text.trimmed();
    if (t.endsWith(QLatin1Char('x'), Qt::CaseInsensitive))
        t.chop(1);
    bool ok = false;
    const double v = t.toDouble(&ok);
    if (!ok || !isValidSpeed(v))
        return std::nullopt;
    return v;
}

QString ReplayPlayer::speedChoices() {
    QStringList parts;
    for (double s : kSpeeds)
        parts << QString::number(s);
    return parts.join(QStringLiteral(", "));
}

QVariantList ReplayPlayer::speedList() const {
    QVariantList list;
    for (double s : kSpeeds)
        list << s;
    return list;
}

QString ReplayPlayer::formatTime(double ms) {
    if (!(ms >= 0))
        ms = 0;
    const qint64 tenths = qint64(ms / 100.0);
    const qint64 seconds = tenths / 10;
    const qint64 minutes = seconds / 60;
    const QString secs =
        QStringLiteral("%1.%2").arg(seconds % 60, 2, 10, QLatin1Char('0')).arg(tenths % 10);
    if (minutes >= 60)
        return QStringLiteral("%1:%2:%3")
            .arg(minutes / 60)
            .arg(minutes % 60, 2, 10, QLatin1Char('0'))
            .arg(secs);
    return QStringLiteral("%1:%2").arg(minutes).arg(secs);
}

bool ReplayPlayer::trySetSpeed(double speed) {
    if (!isValidSpeed(speed))
        return false;
    if (speed == speed_)
        return true;
    tickFromClock(); // the time so far went at the old speed
    speed_ = speed;
    emit speedChanged();
    return true;
}

void ReplayPlayer::setTimeSource(TimeSource source) {
    source_ = std::move(source);
    lastTick_ = now();
}

void ReplayPlayer::setTickInterval(int ms) {
    timer_.setInterval(std::max(ms, 1));
}

void ReplayPlayer::play() {
    if (!loaded_ || playing_)
        return;
    if (atEnd())
        seek(0); // play at the end plays again from the start
    if (atEnd())
        return; // nothing to play (no time between the first and the last snapshot)
    playing_ = true;
    lastTick_ = now();
    timer_.start();
    emit playingChanged();
}

void ReplayPlayer::pause() {
    if (!playing_)
        return;
    tickFromClock(); // up to this moment (this may reach the end, which stops too)
    if (!playing_)
        return;
    playing_ = false;
    timer_.stop();
    emit playingChanged();
}

void ReplayPlayer::togglePlaying() {
    if (playing_)
        pause();
    else
        play();
}

void ReplayPlayer::seek(double ms) {
    if (!loaded_)
        return;
    ms = std::isnan(ms) ? 0.0 : std::clamp(ms, 0.0, duration_);
    // Back before something the model holds: from the start again. Else feed what lies between.
    if (next_ > 0 && due_[std::size_t(next_ - 1)] > ms)
        rebuildUntil(ms);
    else
        feedUntil(ms);
    setPosition(ms);
    if (playing_) {
        lastTick_ = now();
        if (atEnd())
            stopAtEnd();
    }
}

void ReplayPlayer::tick(double elapsedMs) {
    if (!playing_ || !(elapsedMs > 0))
        return;
    const double target = std::min(position_ + elapsedMs * speed_, duration_);
    feedUntil(target);
    setPosition(target);
    if (atEnd())
        stopAtEnd();
}

void ReplayPlayer::tickFromClock() {
    if (!playing_)
        return;
    const qint64 t = now();
    const qint64 elapsed = t - lastTick_;
    lastTick_ = t;
    tick(double(elapsed));
}

} // namespace libloop::inspector
