// Files and processes the probe tests fabricate: a leftover socket file, a pid that is gone.
#pragma once

#include <QtCore/qfile.h>
#include <QtCore/qstring.h>

#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace probetest {

// Binds a unix socket at `path` and closes it: leaves a socket file behind, as a crashed probe.
inline bool fabricateSocket(const QString& path) {
    const QByteArray p = QFile::encodeName(path);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, p.constData(), std::size_t(p.size()));
    const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// The pid of a process that has exited (and was reaped).
inline qint64 deadPid() {
    const pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

} // namespace probetest
