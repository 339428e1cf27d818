// loop-inspector --dump against real child processes (inspector_child) and fake probes: the JSON
// lines carry what the child holds (5000 pending timers), and every error path ends with a
// message on stderr and a non-zero exit.
#include "childprocess.h"

#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>

#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qjsonobject.h>
#include <QtNetwork/qlocalserver.h>
#include <QtNetwork/qlocalsocket.h>
#include <QtTest/qtest.h>

#include <sys/wait.h>
#include <unistd.h>

namespace proto = libloop::protocol;
using namespace inspectortest;

namespace {

QString inspector() {
    return QStringLiteral(LOOP_INSPECTOR);
}
QString child() {
    return QStringLiteral(INSPECTOR_CHILD);
}

qint64 deadPid() {
    const pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

QList<QJsonObject> jsonLines(const QByteArray& out) {
    QList<QJsonObject> lines;
    for (const QByteArray& line : out.split('\n')) {
        if (line.isEmpty())
            continue;
        QJsonParseError e;
        const QJsonDocument d = QJsonDocument::fromJson(line, &e);
        if (e.error != QJsonParseError::NoError || !d.isObject())
            return {};
        lines << d.object();
    }
    return lines;
}

// A fake probe on `path`: answers the first bytes it reads with `reply` frames, then closes.
class FakeProbe : public QObject {
public:
    FakeProbe(const QString& path, QList<QCborMap> reply) : reply_(std::move(reply)) {
        QLocalServer::removeServer(path);
        ok = server_.listen(path);
        connect(&server_, &QLocalServer::newConnection, this, [this] {
            QLocalSocket* s = server_.nextPendingConnection();
            connect(s, &QLocalSocket::readyRead, s, [this, s] {
                s->readAll();
                for (const QCborMap& m : reply_)
                    s->write(proto::encodeFrame(m));
                s->flush();
                s->disconnectFromServer();
            });
        });
    }
    bool ok = false;

private:
    QLocalServer server_;
    QList<QCborMap> reply_;
};

} // namespace

class tst_InspectorDump : public QObject {
    Q_OBJECT
private slots:
    void fiveThousandTimers();
    void bySocketPath();
    void onlyProbeWithoutPid();
    void deadPidFails();
    void pidWithoutProbeFails();
    void versionMismatchFails();
    void connectionLostFails();
    void usageErrors();
};

void tst_InspectorDump::fiveThousandTimers() {
    RuntimeDir rt;
    QVERIFY(rt.isValid());
    Child c;
    QVERIFY(c.start(
        child(), {QStringLiteral("timers"), QStringLiteral("insp-timers"), QStringLiteral("5000")},
        rt.env()));
    Run r;
    QVERIFY(run(inspector(),
                {QStringLiteral("--dump"), QStringLiteral("--pid"), QString::number(c.pid()),
                 QStringLiteral("--count"), QStringLiteral("3"), QStringLiteral("--rate"),
                 QStringLiteral("50")},
                rt.env(), &r));
    QVERIFY2(r.exitCode == 0 && !r.crashed, r.err.constData());
    const QList<QJsonObject> lines = jsonLines(r.out);
    QCOMPARE(lines.size(), 3); // exactly --count lines, each a JSON object
    qint64 lastSeq = 0;
    for (const QJsonObject& o : lines) {
        QCOMPARE(o.value(QStringLiteral("pid")).toInteger(), c.pid());
        QVERIFY(o.value(QStringLiteral("at")).toInteger() > 0);
        const qint64 seq = o.value(QStringLiteral("seq")).toInteger();
        QVERIFY(seq > lastSeq);
        lastSeq = seq;
        const QJsonArray loops = o.value(QStringLiteral("loops")).toArray();
        QCOMPARE(loops.size(), 1); // the probe's own loop is not listed
        const QJsonObject l = loops.at(0).toObject();
        QCOMPARE(l.value(QStringLiteral("timerHeapSize")).toInteger(), 5000);
        // The same keys as the protocol's LoopMetrics JSON.
        const std::optional<proto::LoopMetrics> m = proto::LoopMetrics::fromJson(l);
        QVERIFY(m);
        QCOMPARE(m->timerHeapSize, 5000u);
        QCOMPARE(m->toJson(), l);
        for (const QString& key : proto::LoopMetrics::fieldNames())
            QVERIFY2(l.contains(key), qPrintable(key));
    }
    QVERIFY(c.finish());
}

void tst_InspectorDump::bySocketPath() {
    RuntimeDir rt;
    Child c;
    QVERIFY(c.start(child(),
                    {QStringLiteral("timers"), QStringLiteral("insp-sock"), QStringLiteral("5000")},
                    rt.env()));
    QVERIFY(!c.path.isEmpty());
    Run r;
    QVERIFY(run(inspector(),
                {QStringLiteral("--dump"), QStringLiteral("--socket"), c.path,
                 QStringLiteral("--count"), QStringLiteral("1")},
                rt.env(), &r));
    QVERIFY2(r.exitCode == 0, r.err.constData());
    const QList<QJsonObject> lines = jsonLines(r.out);
    QCOMPARE(lines.size(), 1);
    QCOMPARE(lines[0]
                 .value(QStringLiteral("loops"))
                 .toArray()
                 .at(0)
                 .toObject()
                 .value(QStringLiteral("timerHeapSize"))
                 .toInteger(),
             5000);
    QVERIFY(c.finish());
}

void tst_InspectorDump::onlyProbeWithoutPid() {
    RuntimeDir rt;
    Run none;
    QVERIFY(run(inspector(),
                {QStringLiteral("--dump"), QStringLiteral("--count"), QStringLiteral("1")},
                rt.env(), &none));
    QCOMPARE(none.exitCode, 1);
    QVERIFY2(none.err.contains("no process with a probe"), none.err.constData());

    Child c;
    QVERIFY(c.start(child(),
                    {QStringLiteral("timers"), QStringLiteral("insp-only"), QStringLiteral("7")},
                    rt.env()));
    Run r;
    QVERIFY(run(inspector(),
                {QStringLiteral("--dump"), QStringLiteral("--count"), QStringLiteral("2")},
                rt.env(), &r));
    QVERIFY2(r.exitCode == 0, r.err.constData());
    const QList<QJsonObject> lines = jsonLines(r.out);
    QCOMPARE(lines.size(), 2);
    QCOMPARE(lines[1].value(QStringLiteral("name")).toString(), QStringLiteral("insp-only"));
    QVERIFY(c.finish());
}

void tst_InspectorDump::deadPidFails() {
    RuntimeDir rt;
    const qint64 pid = deadPid();
    Run r;
    QVERIFY(run(inspector(),
                {QStringLiteral("--dump"), QStringLiteral("--pid"), QString::number(pid)}, rt.env(),
                &r));
    QCOMPARE(r.exitCode, 1);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.contains("no such process"), r.err.constData());
}

void tst_InspectorDump::pidWithoutProbeFails() {
    RuntimeDir rt;
    Child c;
    QVERIFY(c.start(child(), {QStringLiteral("noprobe")}, rt.env()));
    Run r;
    QVERIFY(run(inspector(),
                {QStringLiteral("--dump"), QStringLiteral("--pid"), QString::number(c.pid())},
                rt.env(), &r));
    QCOMPARE(r.exitCode, 1);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.contains("has no probe"), r.err.constData());
    QVERIFY(c.finish());
}

void tst_InspectorDump::versionMismatchFails() {
    RuntimeDir rt;
    const QString path = rt.path() + QStringLiteral("/fake-version.sock");
    proto::ErrorMessage e;
    e.code = QString::fromLatin1(proto::errc::Version);
    e.msg = QStringLiteral("unsupported protocol version");
    e.supported = {2};
    FakeProbe fake(path, {e.toCbor()});
    QVERIFY(fake.ok);
    QProcess p;
    p.setProcessEnvironment(rt.env());
    p.start(inspector(), {QStringLiteral("--dump"), QStringLiteral("--socket"), path});
    QTRY_VERIFY_WITH_TIMEOUT(p.state() == QProcess::NotRunning, kLong);
    QCOMPARE(p.exitCode(), 1);
    const QByteArray err = p.readAllStandardError();
    QVERIFY2(err.contains("version mismatch"), err.constData());
}

void tst_InspectorDump::connectionLostFails() {
    RuntimeDir rt;
    const QString path = rt.path() + QStringLiteral("/fake-lost.sock");
    proto::ServerHello h;
    h.pid = 4242;
    h.name = QStringLiteral("fake");
    proto::SnapshotMessage s;
    s.at = 123456789;
    s.seq = 1;
    proto::LoopMetrics m;
    m.id = 7;
    m.timerHeapSize = 11;
    s.loops = {m};
    FakeProbe fake(path, {h.toCbor(), proto::LoopsMessage{}.toCbor(), s.toCbor()});
    QVERIFY(fake.ok);
    QProcess p;
    p.setProcessEnvironment(rt.env());
    p.start(inspector(), {QStringLiteral("--dump"), QStringLiteral("--socket"), path,
                          QStringLiteral("--count"), QStringLiteral("5")});
    QTRY_VERIFY_WITH_TIMEOUT(p.state() == QProcess::NotRunning, kLong);
    QCOMPARE(p.exitCode(), 1);
    const QList<QJsonObject> lines = jsonLines(p.readAllStandardOutput());
    QCOMPARE(lines.size(), 1); // the snapshot before the end still came out
    QCOMPARE(lines[0].value(QStringLiteral("pid")).toInteger(), 4242);
    const QByteArray err = p.readAllStandardError();
    QVERIFY2(err.contains("connection to the probe lost"), err.constData());
}

void tst_InspectorDump::usageErrors() {
    RuntimeDir rt;
    const QList<QStringList> bad = {
        {QStringLiteral("--dump"), QStringLiteral("--rate"), QStringLiteral("0")},
        {QStringLiteral("--dump"), QStringLiteral("--pid"), QStringLiteral("abc")},
        {QStringLiteral("--dump"), QStringLiteral("--count"), QStringLiteral("-1")},
        {QStringLiteral("--dump"), QStringLiteral("--pid"), QStringLiteral("1"),
         QStringLiteral("--socket"), QStringLiteral("/x")},
        {QStringLiteral("--dump"), QStringLiteral("--socket"), rt.path() + QStringLiteral("/no")},
    };
    for (const QStringList& args : bad) {
        Run r;
        QVERIFY(run(inspector(), args, rt.env(), &r));
        QVERIFY2(r.exitCode != 0 && !r.err.isEmpty(), qPrintable(args.join(QLatin1Char(' '))));
        QVERIFY(r.out.isEmpty());
    }
}

QTEST_GUILESS_MAIN(tst_InspectorDump)
#include "tst_inspector_dump.moc"
