// Discovery: where probes put their sockets, how the files are named, and which of them belong
// to live processes. See PROTOCOL.md ("Discovery").
//
//   for (const ProbeInfo& p : libloop::protocol::listProbes())
//       qDebug() << p.pid << p.name << p.path;    // connect to p.path (AF_UNIX, SOCK_STREAM)
//
// The directory is $XDG_RUNTIME_DIR/libloop/ when XDG_RUNTIME_DIR is set and usable (an absolute
// path to a directory of ours that nobody else may enter, short enough for socket paths), else
// /tmp/libloop-<uid>/. It is created with mode 0700 and refused when it exists but is not a real
// directory owned by the effective user with no group/other permissions. Each probe's socket is
//   <dir>/probe-<pid>-<starttime>-<name>.sock      (mode 0600)
// where <starttime> is field 22 of /proc/<pid>/stat (clock ticks after boot) and <name> the
// process name sanitized to [A-Za-z0-9._-] (others become '_') and truncated so that the whole
// path fits sockaddr_un::sun_path (at most kMaxSocketPathBytes bytes).
//
// A socket is stale when its pid is dead, or alive with another start time (a reused pid).
#pragma once

#include <QtCore/qlist.h>
#include <QtCore/qstring.h>

#include <cstdint>
#include <optional>

namespace libloop::protocol {

// sun_path holds 108 bytes including the terminating NUL.
inline constexpr qsizetype kMaxSocketPathBytes = 107;
// A process name is cut to at most this many characters in a file name.
inline constexpr qsizetype kMaxNameInFileName = 40;

struct ProbeInfo {
    qint64 pid = 0;
    QString name;                // as in the file name (sanitized, possibly truncated)
    std::uint64_t startTime = 0; // /proc/<pid>/stat field 22 at the probe's start
    QString path;                // absolute path of the socket
    bool alive = false;          // pid alive with the same start time
};

// The directory rule above, without touching the file system beyond stat (no creation).
QString defaultSocketDirectory();

// Creates `dir` (one level, mode 0700) if missing, then checks it: a directory (not a symlink),
// owned by the effective user, no group/other permission bits. false with a message otherwise.
bool ensureSocketDirectory(const QString& dir, QString* error = nullptr);
// The same checks without creating anything (false when it does not exist).
bool checkSocketDirectory(const QString& dir, QString* error = nullptr);

// [A-Za-z0-9._-] kept, anything else becomes '_'; empty becomes "process".
QString sanitizeProcessName(const QString& name);

// "probe-<pid>-<starttime>-<name>.sock" with the name sanitized and cut so the file name is at
// most `maxBytes` bytes (and the name at most kMaxNameInFileName). Empty if even an empty-ish
// name ("_") does not fit.
QString socketFileName(qint64 pid, std::uint64_t startTime, const QString& name,
                       qsizetype maxBytes = kMaxSocketPathBytes);
// dir + "/" + socketFileName(...) fitting kMaxSocketPathBytes; empty with *error if impossible.
QString socketPath(const QString& dir, qint64 pid, std::uint64_t startTime, const QString& name,
                   QString* error = nullptr);
// Parses a file name produced by socketFileName (no directory). nullopt for anything else.
// `path` and `alive` are left empty/false.
std::optional<ProbeInfo> parseSocketFileName(const QString& fileName);

// Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 if the process does not exist or the
// file cannot be parsed.
std::uint64_t processStartTime(qint64 pid);
// The same instant as Unix time in milliseconds (via /proc/stat's btime); 0 if unknown.
qint64 startTimeToUnixMs(std::uint64_t startTime);
// True when `pid` exists and started at `startTime`.
bool processAlive(qint64 pid, std::uint64_t startTime);

// The probes in `dir` (default: defaultSocketDirectory()), oldest process first. Stale ones are
// left out unless `includeStale` (then alive = false). Files not named like a probe's are
// ignored. An insecure directory (see ensureSocketDirectory) gives an empty list and *error; a
// missing one an empty list and no error.
QList<ProbeInfo> listProbes(const QString& dir = {}, bool includeStale = false,
                            QString* error = nullptr);

// Deletes the stale probe sockets in `dir` (only sockets owned by the effective user). Returns
// how many were removed. Probes call it when they start.
int removeStaleProbes(const QString& dir, QString* error = nullptr);

} // namespace libloop::protocol
