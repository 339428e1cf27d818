// Probes in other processes: discovery (listProbes over several children, stale sockets of dead
// processes, cleanup by the next probe, permissions) and LIBLOOP_INSPECT=1 through install(),
// installGui() and libloop-preload.so. The children are probe_child (see there).
#include "probe_test_client.h"
#include "probe_test_files.h"

#include <libloop/protocol/discovery.h>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qfile.h>
#include <QtCore/qprocess.h>
#include <QtCore/qset.h>
#include <QtCore/qtemporarydir.h>
#include <QtTest/qtest.h>

#include <csignal>
#include <cstring>
#include <link.h>
#include <memory>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace proto = libloop::protocol;

using probetest::deadPid;
using probetest::fabricateSocket;

namespace {

constexpr int kLong = 30000;

// The sanitizer runtime this test runs with (a preloaded library must come after it), or empty.
QString sanitizerRuntime() {
    QString found;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
            const char* name = info->dlpi_name;
            if (name && (std::strstr(name, "/libasan.so") || std::strstr(name, "/libtsan.so"))) {
                *static_cast<QString*>(out) = QString::fromLocal8Bit(name);
                return 1;
            }
            return 0;
        },
        &found);
    return found;
}

class Child {
public:
    bool start(const QStringList& args, const QProcessEnvironment& env) {
        p_.setProcessEnvironment(env);
        p_.setProgram(QStringLiteral(PROBE_CHILD));
        p_.setArguments(args);
        p_.setProcessChannelMode(QProcess::SeparateChannels);
        p_.start();
        if (!p_.waitForStarted(kLong))
            return false;
        const bool wantDispatcher = args.value(0) != QLatin1String("probe");
        QDeadlineTimer deadline(kLong);
        bool gotPath = false, gotDispatcher = !wantDispatcher;
        while (!(gotPath && gotDispatcher) && !deadline.hasExpired()) {
            while (p_.canReadLine()) {
                const QString line = QString::fromLocal8Bit(p_.readLine()).trimmed();
                if (line.startsWith(QLatin1String("path"))) {
                    path = line.mid(4).trimmed();
                    gotPath = true;
                } else if (line.startsWith(QLatin1String("dispatcher "))) {
                    dispatcher = line.mid(11);
                    gotDispatcher = true;
                }
            }
            if (p_.state() == QProcess::NotRunning)
                break;
            p_.waitForReadyRead(100);
        }
        return gotPath && gotDispatcher;
    }
    // Closes its stdin: it exits normally.
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
    QByteArray stderrText() { return p_.readAllStandardError(); }
    ~Child() {
        if (p_.state() != QProcess::NotRunning) {
            p_.closeWriteChannel();
            if (!p_.waitForFinished(kLong))
                kill();
        }
    }

    QString path;
    QString dispatcher;

private:
    QProcess p_;
};

} // namespace

class tst_ProbeDiscovery : public QObject {
    Q_OBJECT
private slots:
    void init();
    void twoProbesListedThenCleaned();
    void fabricatedStaleSockets();
    void inspectWithInstall();
    void inspectWithInstallGui();
    void inspectWithPreload();
    void preloadListsWorkerThreadLoops();
    void unusableDirectoryIsNotFatal();

private:
    QProcessEnvironment env() const;
    QString dir() const { return runtime_->path() + QStringLiteral("/libloop"); }
    std::optional<proto::ProbeInfo> listed(qint64 pid, bool includeStale = false) const;

    std::unique_ptr<QTemporaryDir> runtime_;
};

void tst_ProbeDiscovery::init() {
    runtime_ = std::make_unique<QTemporaryDir>();
    QVERIFY(runtime_->isValid());
    QCOMPARE(::chmod(QFile::encodeName(runtime_->path()).constData(), 0700), 0);
}

QProcessEnvironment tst_ProbeDiscovery::env() const {
    QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
    e.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtime_->path());
    e.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    e.remove(QStringLiteral("LIBLOOP_INSPECT"));
    e.remove(QStringLiteral("LD_PRELOAD"));
    return e;
}

std::optional<proto::ProbeInfo> tst_ProbeDiscovery::listed(qint64 pid, bool includeStale) const {
    for (const proto::ProbeInfo& p : proto::listProbes(dir(), includeStale))
        if (p.pid == pid)
            return p;
    return std::nullopt;
}

void tst_ProbeDiscovery::twoProbesListedThenCleaned() {
    Child a, b;
    QVERIFY(a.start({QStringLiteral("probe"), QStringLiteral("alpha")}, env()));
    QVERIFY(b.start({QStringLiteral("probe"), QStringLiteral("beta")}, env()));
    QVERIFY(!a.path.isEmpty());
    QVERIFY(!b.path.isEmpty());

    const QList<proto::ProbeInfo> probes = proto::listProbes(dir());
    QCOMPARE(probes.size(), 2);
    const auto pa = listed(a.pid()), pb = listed(b.pid());
    QVERIFY(pa && pb);
    QCOMPARE(pa->name, QStringLiteral("alpha"));
    QCOMPARE(pb->name, QStringLiteral("beta"));
    QCOMPARE(pa->path, a.path);
    QCOMPARE(pb->path, b.path);
    QVERIFY(pa->alive && pb->alive);
    QCOMPARE(pa->startTime, proto::processStartTime(a.pid()));

    // Owner-only permissions.
    struct stat st;
    QCOMPARE(::stat(QFile::encodeName(dir()).constData(), &st), 0);
    QCOMPARE(st.st_mode & 0777, 0700u);
    QCOMPARE(::stat(QFile::encodeName(a.path).constData(), &st), 0);
    QVERIFY(S_ISSOCK(st.st_mode));
    QCOMPARE(st.st_mode & 0777, 0600u);

    // It is the child that answers.
    probetest::Client c(a.path.toStdString());
    QVERIFY(c.handshake());
    QCOMPARE(c.serverHello->pid, a.pid());
    QCOMPARE(c.serverHello->name, QStringLiteral("alpha"));
    c.close();

    // A normal exit removes the socket.
    QVERIFY(a.finish());
    QVERIFY(!QFile::exists(a.path));
    QCOMPARE(proto::listProbes(dir()).size(), 1);

    // A killed process leaves a stale socket: not listed (unless asked), removed by the next
    // probe that starts.
    const qint64 bPid = b.pid();
    b.kill();
    QVERIFY(QFile::exists(b.path));
    QVERIFY(!listed(bPid));
    const auto stale = listed(bPid, true);
    QVERIFY(stale);
    QVERIFY(!stale->alive);
    Child g;
    QVERIFY(g.start({QStringLiteral("probe"), QStringLiteral("gamma")}, env()));
    QVERIFY(!QFile::exists(b.path));
    QCOMPARE(proto::listProbes(dir(), true).size(), 1);
    QVERIFY(g.finish());
}

void tst_ProbeDiscovery::fabricatedStaleSockets() {
    QVERIFY(proto::ensureSocketDirectory(dir()));
    const qint64 me = ::getpid();
    const QString dead = proto::socketPath(dir(), deadPid(), 12345, QStringLiteral("dead"));
    const QString reused =
        proto::socketPath(dir(), me, proto::processStartTime(me) + 7, QStringLiteral("reused"));
    QVERIFY(fabricateSocket(dead));
    QVERIFY(fabricateSocket(reused));
    QVERIFY(proto::listProbes(dir()).isEmpty());
    QCOMPARE(proto::listProbes(dir(), true).size(), 2);

    Child c;
    QVERIFY(c.start({QStringLiteral("probe"), QStringLiteral("cleaner")}, env()));
    QVERIFY(!QFile::exists(dead));
    QVERIFY(!QFile::exists(reused));
    const auto all = proto::listProbes(dir(), true);
    QCOMPARE(all.size(), 1);
    QCOMPARE(all[0].pid, c.pid());
    QVERIFY(c.finish());
}

void tst_ProbeDiscovery::inspectWithInstall() {
    {
        QProcessEnvironment e = env();
        e.insert(QStringLiteral("LIBLOOP_INSPECT"), QStringLiteral("1"));
        Child c;
        QVERIFY(c.start({QStringLiteral("install")}, e));
        QCOMPARE(c.dispatcher, QStringLiteral("libloop::qt::LoopEventDispatcher"));
        QVERIFY2(!c.path.isEmpty(), c.stderrText().constData());
        QVERIFY(QFile::exists(c.path));
        const auto p = listed(c.pid());
        QVERIFY(p);
        QCOMPARE(p->path, c.path);
        probetest::Client client(c.path.toStdString());
        QVERIFY(client.handshake());
        QCOMPARE(client.serverHello->pid, c.pid());
        client.close();
        QVERIFY(c.finish());
        QVERIFY(!QFile::exists(c.path));
    }
    for (const char* value : {"", "0"}) {
        QProcessEnvironment e = env();
        if (*value)
            e.insert(QStringLiteral("LIBLOOP_INSPECT"), QLatin1String(value));
        Child c;
        QVERIFY(c.start({QStringLiteral("install")}, e));
        QCOMPARE(c.dispatcher, QStringLiteral("libloop::qt::LoopEventDispatcher"));
        QVERIFY2(c.path.isEmpty(), qPrintable(c.path));
        QVERIFY(!listed(c.pid(), true));
        QVERIFY(c.finish());
    }
}

void tst_ProbeDiscovery::inspectWithInstallGui() {
    QProcessEnvironment e = env();
    e.insert(QStringLiteral("LIBLOOP_INSPECT"), QStringLiteral("1"));
    Child c;
    QVERIFY(c.start({QStringLiteral("gui")}, e));
    QCOMPARE(c.dispatcher, QStringLiteral("libloop::qt::LoopGuiEventDispatcher"));
    QVERIFY2(!c.path.isEmpty(), c.stderrText().constData());
    QVERIFY(listed(c.pid()));
    QVERIFY(c.finish());
}

void tst_ProbeDiscovery::inspectWithPreload() {
    QString preload = QStringLiteral(PRELOAD_SO);
    const QString runtime = sanitizerRuntime();
    if (!runtime.isEmpty())
        preload = runtime + QLatin1Char(' ') + preload;
    QProcessEnvironment e = env();
    e.insert(QStringLiteral("LD_PRELOAD"), preload);
    e.insert(QStringLiteral("LIBLOOP_INSPECT"), QStringLiteral("1"));
    Child c;
    QVERIFY(c.start({QStringLiteral("plain")}, e));
    QCOMPARE(c.dispatcher, QStringLiteral("libloop::qt::LoopEventDispatcher"));
    QVERIFY2(!c.path.isEmpty(), c.stderrText().constData());
    QVERIFY(listed(c.pid()));
    QVERIFY(c.finish());

    // The same program without the preload: Qt's dispatcher, no probe.
    QProcessEnvironment plain = env();
    plain.insert(QStringLiteral("LIBLOOP_INSPECT"), QStringLiteral("1"));
    Child q;
    QVERIFY(q.start({QStringLiteral("plain")}, plain));
    QVERIFY(!q.dispatcher.startsWith(QLatin1String("libloop")));
    QVERIFY(q.path.isEmpty());
    QVERIFY(q.finish());
}

// Issue 8: the probe lists every loop the preload reached, worker threads included, each with its
// own thread id (whose name, set by QThread, says which worker it is).
void tst_ProbeDiscovery::preloadListsWorkerThreadLoops() {
    QString preload = QStringLiteral(PRELOAD_SO);
    const QString runtime = sanitizerRuntime();
    if (!runtime.isEmpty())
        preload = runtime + QLatin1Char(' ') + preload;
    QProcessEnvironment e = env();
    e.insert(QStringLiteral("LD_PRELOAD"), preload);
    e.insert(QStringLiteral("LIBLOOP_INSPECT"), QStringLiteral("1"));
    Child c;
    QVERIFY(c.start({QStringLiteral("threads")}, e));
    QCOMPARE(c.dispatcher, QStringLiteral("libloop::qt::LoopEventDispatcher"));
    QVERIFY2(!c.path.isEmpty(), c.stderrText().constData());

    probetest::Client client;
    QVERIFY(client.connectTo(c.path.toStdString()));
    QVERIFY(client.hello());
    auto m = client.waitFor(proto::type::Loops, kLong, [](const QCborMap& l) {
        auto msg = proto::LoopsMessage::fromCbor(l);
        return msg && msg->loops.size() == 4; // main + 3 workers (the probe's own is hidden)
    });
    QVERIFY(m);
    const auto loops = proto::LoopsMessage::fromCbor(*m)->loops;
    QSet<qint64> tids;
    QStringList threadNames;
    for (const proto::LoopInfo& l : loops) {
        tids.insert(l.tid);
        QFile comm(QStringLiteral("/proc/%1/task/%2/comm").arg(c.pid()).arg(l.tid));
        QVERIFY2(comm.open(QIODevice::ReadOnly), qPrintable(comm.fileName()));
        threadNames << QString::fromLocal8Bit(comm.readAll()).trimmed();
    }
    QCOMPARE(tids.size(), 4);
    threadNames.sort();
    QCOMPARE(threadNames.mid(1),
             (QStringList{QStringLiteral("worker-1"), QStringLiteral("worker-2"),
                          QStringLiteral("worker-3")}));
    QVERIFY(c.finish());
}

void tst_ProbeDiscovery::unusableDirectoryIsNotFatal() {
    // $XDG_RUNTIME_DIR/libloop is a file: the probe cannot start; the application runs on.
    QFile blocker(dir());
    QVERIFY(blocker.open(QIODevice::WriteOnly));
    blocker.close();
    QProcessEnvironment e = env();
    e.insert(QStringLiteral("LIBLOOP_INSPECT"), QStringLiteral("1"));
    Child c;
    QVERIFY(c.start({QStringLiteral("install")}, e));
    QCOMPARE(c.dispatcher, QStringLiteral("libloop::qt::LoopEventDispatcher"));
    QVERIFY(c.path.isEmpty());
    QVERIFY(c.finish());
    const QByteArray err = c.stderrText();
    QVERIFY2(err.contains("probe did not start") && err.contains("not a directory"),
             err.constData());
}

QTEST_GUILESS_MAIN(tst_ProbeDiscovery)
#include "tst_probe_discovery.moc"
