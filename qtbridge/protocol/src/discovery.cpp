#include <libloop/protocol/discovery.h>

#include <QtCore/qbytearray.h>
#include <QtCore/qdir.h>
#include <QtCore/qfile.h>
#include <QtCore/qregularexpression.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace libloop::protocol {

namespace {

// The shortest file name a probe can have: "probe-" + 7-digit pid + "-" + 20-digit start time
// + "-" + 1 name character + ".sock". The XDG directory is used only when this plus room for a
// 16-character name fits.
constexpr qsizetype kLongestFixedFileName = 6 + 7 + 1 + 20 + 1 + 5;
constexpr qsizetype kNameRoom = 16;

bool setError(QString* error, QString why) {
    if (error)
        *error = std::move(why);
    return false;
}

QString errnoText(int e) {
    return QString::fromLocal8Bit(std::strerror(e));
}

// Reads a small /proc file whole (at most 4 KiB).
QByteArray readProcFile(const QByteArray& path) {
    const int fd = ::open(path.constData(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return {};
    QByteArray out(4096, Qt::Uninitialized);
    qsizetype got = 0;
    while (got < out.size()) {
        const ssize_t n = ::read(fd, out.data() + got, size_t(out.size() - got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += n;
    }
    ::close(fd);
    out.truncate(got);
    return out;
}

bool parseU64(QByteArrayView text, std::uint64_t& out) {
    if (text.isEmpty() || text.size() > 20)
        return false;
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return false;
        const std::uint64_t digit = std::uint64_t(c - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    out = v;
    return true;
}

} // namespace

QString defaultSocketDirectory() {
    const QByteArray xdg = qgetenv("XDG_RUNTIME_DIR");
    if (xdg.startsWith('/')) {
        struct stat st;
        if (::stat(xdg.constData(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
            (st.st_mode & 077) == 0 && ::access(xdg.constData(), W_OK | X_OK) == 0) {
            QString dir = QDir::cleanPath(QFile::decodeName(xdg)) + QStringLiteral("/libloop");
            if (dir.startsWith(QLatin1String("//")))
                dir.remove(0, 1);
            if (QFile::encodeName(dir).size() + 1 + kLongestFixedFileName + kNameRoom <=
                kMaxSocketPathBytes)
                return dir;
        }
    }
    return QStringLiteral("/tmp/libloop-%1").arg(::geteuid());
}

bool checkSocketDirectory(const QString& dir, QString* error) {
    const QByteArray path = QFile::encodeName(dir);
    struct stat st;
    if (::lstat(path.constData(), &st) != 0)
        return setError(
            error,
            QStringLiteral("cannot use the probe directory %1: %2").arg(dir, errnoText(errno)));
    if (!S_ISDIR(st.st_mode))
        return setError(error, QStringLiteral("refusing the probe directory %1: not a directory (a "
                                              "symlink or another file is in the way)")
                                   .arg(dir));
    if (st.st_uid != ::geteuid())
        return setError(error, QStringLiteral("refusing the probe directory %1: owned by uid %2, "
                                              "not by this user (uid %3)")
                                   .arg(dir)
                                   .arg(st.st_uid)
                                   .arg(::geteuid()));
    if ((st.st_mode & 077) != 0)
        return setError(error, QStringLiteral("refusing the probe directory %1: mode %2 lets "
                                              "group/others in (expected 0700; chmod 700 it or "
                                              "remove it)")
                                   .arg(dir)
                                   .arg(st.st_mode & 0777, 4, 8, QLatin1Char('0')));
    return true;
}

bool ensureSocketDirectory(const QString& dir, QString* error) {
    if (dir.isEmpty())
        return setError(error, QStringLiteral("empty probe directory path"));
    const QByteArray path = QFile::encodeName(dir);
    if (::mkdir(path.constData(), 0700) != 0 && errno != EEXIST)
        return setError(
            error,
            QStringLiteral("cannot create the probe directory %1: %2").arg(dir, errnoText(errno)));
    return checkSocketDirectory(dir, error);
}

QString sanitizeProcessName(const QString& name) {
    QString out;
    out.reserve(name.size());
    for (QChar c : name) {
        const char16_t u = c.unicode();
        const bool keep = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                          (u >= '0' && u <= '9') || u == '.' || u == '_' || u == '-';
        out.append(keep ? c : QLatin1Char('_'));
    }
    if (out.isEmpty())
        out = QStringLiteral("process");
    return out;
}

QString socketFileName(qint64 pid, std::uint64_t startTime, const QString& name,
                       qsizetype maxBytes) {
    const QString prefix = QStringLiteral("probe-%1-%2-").arg(pid).arg(startTime);
    const QString suffix = QStringLiteral(".sock");
    const qsizetype room = std::min(maxBytes - prefix.size() - suffix.size(), kMaxNameInFileName);
    if (room < 1)
        return {};
    return prefix + sanitizeProcessName(name).left(room) + suffix; // ASCII: chars == bytes
}

QString socketPath(const QString& dir, qint64 pid, std::uint64_t startTime, const QString& name,
                   QString* error) {
    const qsizetype dirBytes = QFile::encodeName(dir).size();
    const QString file = socketFileName(pid, startTime, name, kMaxSocketPathBytes - dirBytes - 1);
    if (file.isEmpty()) {
        setError(error, QStringLiteral("the probe directory path %1 is too long for a socket "
                                       "path (%2 bytes at most)")
                            .arg(dir)
                            .arg(kMaxSocketPathBytes));
        return {};
    }
    return dir + QLatin1Char('/') + file;
}

std::optional<ProbeInfo> parseSocketFileName(const QString& fileName) {
    static const QRegularExpression re(
        QStringLiteral("^probe-([0-9]{1,19})-([0-9]{1,20})-([A-Za-z0-9._-]+)\\.sock$"));
    const QRegularExpressionMatch m = re.match(fileName);
    if (!m.hasMatch())
        return std::nullopt;
    std::uint64_t pid = 0, start = 0;
    if (!parseU64(m.captured(1).toLatin1(), pid) || !parseU64(m.captured(2).toLatin1(), start) ||
        pid == 0 || pid > std::uint64_t(INT64_MAX))
        return std::nullopt;
    ProbeInfo info;
    info.pid = qint64(pid);
    info.startTime = start;
    info.name = m.captured(3);
    return info;
}

std::uint64_t processStartTime(qint64 pid) {
    if (pid <= 0)
        return 0;
    const QByteArray stat = readProcFile("/proc/" + QByteArray::number(pid) + "/stat");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the fields after the
    // last ')' are fields 3, 4, ...; starttime is field 22.
    const qsizetype close = stat.lastIndexOf(')');
    if (close < 0)
        return 0;
    const QList<QByteArray> fields = stat.mid(close + 1).simplified().split(' ');
    constexpr qsizetype kStartTimeIndex = 22 - 3;
    if (fields.size() <= kStartTimeIndex)
        return 0;
    std::uint64_t start = 0;
    if (!parseU64(fields[kStartTimeIndex], start))
        return 0;
    return start;
}

qint64 startTimeToUnixMs(std::uint64_t startTime) {
    const QByteArray stat = readProcFile("/proc/stat");
    const qsizetype at = stat.indexOf("\nbtime ");
    if (at < 0)
        return 0;
    const qsizetype end = stat.indexOf('\n', at + 1);
    std::uint64_t btime = 0;
    if (!parseU64(stat.mid(at + 7, end < 0 ? -1 : end - at - 7).trimmed(), btime))
        return 0;
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        return 0;
    return qint64(btime * 1000 + startTime * 1000 / std::uint64_t(hz));
}

bool processAlive(qint64 pid, std::uint64_t startTime) {
    const std::uint64_t now = processStartTime(pid);
    return now != 0 && now == startTime;
}

namespace {

struct Entry {
    ProbeInfo info;
    bool ours = false; // a socket owned by the effective user
};

// Probe-named sockets in `dir`; false (with *error) when the directory is unusable.
bool scan(const QString& dir, QList<Entry>& out, QString* error) {
    const QByteArray path = QFile::encodeName(dir);
    struct stat st;
    if (::lstat(path.constData(), &st) != 0 && errno == ENOENT)
        return true; // no probe ever ran here
    if (!checkSocketDirectory(dir, error))
        return false;
    DIR* d = ::opendir(path.constData());
    if (!d)
        return setError(
            error,
            QStringLiteral("cannot read the probe directory %1: %2").arg(dir, errnoText(errno)));
    while (const dirent* e = ::readdir(d)) {
        const QString file = QFile::decodeName(e->d_name);
        auto info = parseSocketFileName(file);
        if (!info)
            continue;
        struct stat fst;
        if (::fstatat(::dirfd(d), e->d_name, &fst, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISSOCK(fst.st_mode))
            continue;
        info->path = dir + QLatin1Char('/') + file;
        info->alive = processAlive(info->pid, info->startTime);
        out.append(Entry{*info, fst.st_uid == ::geteuid()});
    }
    ::closedir(d);
    return true;
}

} // namespace

QList<ProbeInfo> listProbes(const QString& dir, bool includeStale, QString* error) {
    const QString d = dir.isEmpty() ? defaultSocketDirectory() : dir;
    QList<Entry> entries;
    if (!scan(d, entries, error))
        return {};
    QList<ProbeInfo> out;
    for (const Entry& e : entries)
        if (e.info.alive || includeStale)
            out.append(e.info);
    std::sort(out.begin(), out.end(), [](const ProbeInfo& a, const ProbeInfo& b) {
        if (a.startTime != b.startTime)
            return a.startTime < b.startTime;
        if (a.pid != b.pid)
            return a.pid < b.pid;
        return a.path < b.path;
    });
    return out;
}

int removeStaleProbes(const QString& dir, QString* error) {
    QList<Entry> entries;
    if (!scan(dir, entries, error))
        return 0;
    int removed = 0;
    for (const Entry& e : entries) {
        if (e.info.alive || !e.ours)
            continue;
        if (::unlink(QFile::encodeName(e.info.path).constData()) == 0)
            ++removed;
        // ENOENT: another probe removed it first; anything else: leave it, listProbes skips it
    }
    return removed;
}

} // namespace libloop::protocol
