#include "discovery.h"

#include <QtCore/qfileinfo.h>

#include <cerrno>
#include <csignal>

namespace libloop::inspector {

namespace proto = libloop::protocol;

bool processExists(qint64 pid) {
    if (pid <= 0)
        return false;
    // EPERM: it exists but belongs to someone else.
    return ::kill(pid_t(pid), 0) == 0 || errno == EPERM;
}

std::optional<proto::ProbeInfo> resolveProbe(qint64 pid, const QString& socketPath,
                                             const QString& dir, QString* error) {
    auto failWith = [&](const QString& why) -> std::optional<proto::ProbeInfo> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    if (!socketPath.isEmpty()) {
        const QFileInfo fi(socketPath);
        if (!fi.exists())
            return failWith(QStringLiteral("no such socket: %1").arg(socketPath));
        proto::ProbeInfo p;
        if (auto parsed = proto::parseSocketFileName(fi.fileName()))
            p = *parsed;
        p.path = fi.absoluteFilePath();
        p.alive = p.pid == 0 || proto::processAlive(p.pid, p.startTime);
        return p;
    }
    const QString d = dir.isEmpty() ? proto::defaultSocketDirectory() : dir;
    QString listError;
    const QList<proto::ProbeInfo> probes = proto::listProbes(d, false, &listError);
    if (!listError.isEmpty())
        return failWith(QStringLiteral("cannot list probes in %1: %2").arg(d, listError));
    if (pid > 0) {
        for (const proto::ProbeInfo& p : probes)
            if (p.pid == pid)
                return p;
        if (!processExists(pid))
            return failWith(QStringLiteral("no such process: %1").arg(pid));
        return failWith(QStringLiteral("process %1 has no probe in %2 (start it with "
                                       "LIBLOOP_INSPECT=1 or libloop::qt::startProbe())")
                            .arg(pid)
                            .arg(d));
    }
    if (probes.isEmpty())
        return failWith(QStringLiteral("no process with a probe in %1").arg(d));
    if (probes.size() > 1) {
        QStringList list;
        for (const proto::ProbeInfo& p : probes)
            list << QStringLiteral("%1 (%2)").arg(p.pid).arg(p.name);
        return failWith(QStringLiteral("several processes have a probe, choose one with --pid: %1")
                            .arg(list.join(QStringLiteral(", "))));
    }
    return probes.first();
}

std::optional<proto::ProbeInfo> findProbeByName(const QString& name, const QString& dir) {
    std::optional<proto::ProbeInfo> best;
    const QString d = dir.isEmpty() ? proto::defaultSocketDirectory() : dir;
    for (const proto::ProbeInfo& p : proto::listProbes(d))
        if (p.name == name && (!best || p.startTime >= best->startTime))
            best = p;
    return best;
}

} // namespace libloop::inspector
