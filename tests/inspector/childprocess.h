// Starting inspector_child and loop-inspector from the inspector tests.
#pragma once

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qprocess.h>
#include <QtCore/qtemporarydir.h>

#include <sys/stat.h>

namespace inspectortest {

inline constexpr int kLong = 60000; // generous: sanitizer builds on a loaded machine

// A private XDG_RUNTIME_DIR (0700) for one test: children and the inspector find each other there.
class RuntimeDir {
public:
    RuntimeDir() { ::chmod(QFile::encodeName(dir_.path()).constData(), 0700); }
    bool isValid() const { return dir_.isValid(); }
    QString path() const { return dir_.path(); }
    QString probeDir() const { return dir_.path() + QStringLiteral("/libloop"); }
    QProcessEnvironment env() const {
        QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
        e.insert(QStringLiteral("XDG_RUNTIME_DIR"), dir_.path());
        e.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
        e.remove(QStringLiteral("LIBLOOP_INSPECT"));
        e.remove(QStringLiteral("LD_PRELOAD"));
        return e;
    }

private:
    QTemporaryDir dir_;
};

class Child {
public:
    // Starts `program args` and waits for its "ready ..." line.
    bool start(const QString& program, const QStringList& args, const QProcessEnvironment& env) {
        p_.setProcessEnvironment(env);
        p_.setProgram(program);
        p_.setArguments(args);
        p_.start();
        if (!p_.waitForStarted(kLong))
            return false;
        QDeadlineTimer deadline(kLong);
        while (!deadline.hasExpired()) {
            while (p_.canReadLine()) {
                const QString line = QString::fromLocal8Bit(p_.readLine()).trimmed();
                if (line.startsWith(QLatin1String("ready"))) {
                    path = line.mid(5).trimmed();
                    return true;
                }
            }
            if (p_.state() == QProcess::NotRunning)
                return false;
            p_.waitForReadyRead(100);
        }
        return false;
    }
    bool finish() {
        p_.closeWriteChannel();
        return p_.waitForFinished(kLong) && p_.exitStatus() == QProcess::NormalExit &&
               p_.exitCode() == 0;
    }
    void kill() {
        p_.kill();
        p_.waitForFinished(kLong);
    }
    qint64 pid() const { return p_.processId(); }
    ~Child() {
        if (p_.state() != QProcess::NotRunning) {
            p_.closeWriteChannel();
            if (!p_.waitForFinished(kLong))
                kill();
        }
    }

    QString path;

private:
    QProcess p_;
};

// Runs a program to its end; false if it did not end within `timeoutMs`.
struct Run {
    int exitCode = -1;
    bool crashed = false;
    QByteArray out, err;
};

inline bool run(const QString& program, const QStringList& args, const QProcessEnvironment& env,
                Run* result, int timeoutMs = kLong) {
    QProcess p;
    p.setProcessEnvironment(env);
    p.start(program, args);
    if (!p.waitForStarted(timeoutMs))
        return false;
    const bool ended = p.waitForFinished(timeoutMs);
    if (!ended) {
        p.kill();
        p.waitForFinished(timeoutMs);
    }
    result->exitCode = p.exitCode();
    result->crashed = p.exitStatus() != QProcess::NormalExit;
    result->out = p.readAllStandardOutput();
    result->err = p.readAllStandardError();
    return ended;
}

} // namespace inspectortest
