#include "session.h"

#include "historymodel.h"

#include <QtCore/qdatetime.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qjsonobject.h>

namespace libloop::inspector {

namespace proto = libloop::protocol;

bool SessionRecorder::open(const QString& path, QString* error) {
    close();
    file_.setFileName(path);
    if (!file_.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
        if (error)
            *error = QStringLiteral("cannot write %1: %2").arg(path, file_.errorString());
        return false;
    }
    snapshots_ = 0;
    return true;
}

void SessionRecorder::close() {
    if (file_.isOpen())
        file_.close();
}

void SessionRecorder::writeLine(const QJsonObject& o) {
    if (!file_.isOpen())
        return;
    QByteArray line = QJsonDocument(o).toJson(QJsonDocument::Compact);
    line.append('\n');
    file_.write(line);
    file_.flush(); // a crash loses at most the line being written
}

void SessionRecorder::writeHeader(qint64 pid, const QString& name, qint64 startedUnixMs) {
    QJsonObject o;
    o.insert(QStringLiteral("t"), QStringLiteral("session"));
    o.insert(QStringLiteral("v"), kSessionFormatVersion);
    o.insert(QStringLiteral("pid"), pid);
    o.insert(QStringLiteral("name"), name);
    o.insert(QStringLiteral("started"), startedUnixMs);
    o.insert(QStringLiteral("recorded"), QDateTime::currentMSecsSinceEpoch());
    writeLine(o);
}

void SessionRecorder::writeLoops(const QList<proto::LoopInfo>& loops) {
    QJsonArray list;
    for (const proto::LoopInfo& l : loops) {
        QJsonObject e;
        e.insert(QStringLiteral("id"), qint64(l.id));
        e.insert(QStringLiteral("name"), l.name);
        e.insert(QStringLiteral("tid"), l.tid);
        list.append(e);
    }
    QJsonObject o;
    o.insert(QStringLiteral("t"), QStringLiteral("loops"));
    o.insert(QStringLiteral("loops"), list);
    writeLine(o);
}

void SessionRecorder::writeSnapshot(const proto::SnapshotMessage& snapshot) {
    writeLine(snapshot.toJson());
    ++snapshots_;
}

void SessionRecorder::writeGap() {
    QJsonObject o;
    o.insert(QStringLiteral("t"), QStringLiteral("gap"));
    writeLine(o);
}

bool readSession(const QString& path, std::vector<SessionEntry>* entries, SessionInfo* info,
                 QString* error) {
    auto failWith = [&](const QString& why) {
        if (error)
            *error = why;
        return false;
    };
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return failWith(QStringLiteral("cannot read %1: %2").arg(path, f.errorString()));
    std::vector<SessionEntry> read;
    SessionInfo found;
    bool sawHeader = false;
    int lineNo = 0;
    while (!f.atEnd()) {
        const QByteArray line = f.readLine().trimmed();
        ++lineNo;
        if (line.isEmpty())
            continue;
        QJsonParseError pe;
        const QJsonDocument d = QJsonDocument::fromJson(line, &pe);
        if (pe.error != QJsonParseError::NoError || !d.isObject())
            return failWith(QStringLiteral("%1:%2: not a JSON object (%3)")
                                .arg(path)
                                .arg(lineNo)
                                .arg(pe.errorString()));
        const QJsonObject o = d.object();
        const QString t = o.value(QStringLiteral("t")).toString();
        if (t == QLatin1String("session")) {
            const int v = o.value(QStringLiteral("v")).toInt();
            if (v != kSessionFormatVersion)
                return failWith(QStringLiteral("%1:%2: session format %3 (this inspector reads %4)")
                                    .arg(path)
                                    .arg(lineNo)
                                    .arg(v)
                                    .arg(kSessionFormatVersion));
            sawHeader = true;
            found.pid = o.value(QStringLiteral("pid")).toInteger();
            found.name = o.value(QStringLiteral("name")).toString();
            found.started = o.value(QStringLiteral("started")).toInteger();
        } else if (!sawHeader) {
            return failWith(
                QStringLiteral("%1: not a loop-inspector session (no header line)").arg(path));
        } else if (t == QLatin1String("loops")) {
            QString why;
            const auto m = proto::LoopsMessage::fromCbor(QCborMap::fromJsonObject(o), &why);
            if (!m)
                return failWith(QStringLiteral("%1:%2: %3").arg(path).arg(lineNo).arg(why));
            SessionEntry e;
            e.kind = SessionEntry::Kind::Loops;
            e.loops = m->loops;
            read.push_back(std::move(e));
        } else if (t == QLatin1String("snapshot")) {
            QString why;
            const auto m = proto::SnapshotMessage::fromCbor(QCborMap::fromJsonObject(o), &why);
            if (!m)
                return failWith(QStringLiteral("%1:%2: %3").arg(path).arg(lineNo).arg(why));
            SessionEntry e;
            e.kind = SessionEntry::Kind::Snapshot;
            e.snapshot = *m;
            read.push_back(std::move(e));
            ++found.snapshots;
        } else if (t == QLatin1String("gap")) {
            read.push_back(SessionEntry{});
        }
    }
    if (!sawHeader)
        return failWith(QStringLiteral("%1: empty, not a loop-inspector session").arg(path));
    if (entries)
        *entries = std::move(read);
    if (info)
        *info = found;
    return true;
}

void feedSessionEntry(HistoryModel* model, const SessionEntry& entry) {
    switch (entry.kind) {
    case SessionEntry::Kind::Loops:
        model->setLoopInfo(entry.loops);
        break;
    case SessionEntry::Kind::Snapshot:
        model->addSnapshot(entry.snapshot);
        break;
    case SessionEntry::Kind::Gap:
        model->addGap();
        break;
    }
}

bool replaySession(const QString& path, HistoryModel* model, SessionInfo* info, QString* error) {
    std::vector<SessionEntry> entries;
    if (!readSession(path, &entries, info, error))
        return false;
    model->clear();
    for (const SessionEntry& e : entries)
        feedSessionEntry(model, e);
    return true;
}

} // namespace libloop::inspector
