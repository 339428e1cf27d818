// The inspector's client on libloop's own dispatcher: the process list (ProbeListModel), a
// ProbeClient receiving snapshots from a child, and a ProbeSession that follows a process which
// is killed and restarted under the same name.
#include "childprocess.h"

#include <discovery.h>
#include <probeclient.h>
#include <probelistmodel.h>
#include <probesession.h>

#include <libloop/qt/install.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

using namespace libloop::inspector;
using namespace inspectortest;
namespace proto = libloop::protocol;

class tst_InspectorClient : public QObject {
    Q_OBJECT
private slots:
    void runsOnLibloop();
    void listAndSnapshots();
    void reconnectsToRestartedProcess();
    void connectFailureIsReported();
};

void tst_InspectorClient::runsOnLibloop() {
    QCOMPARE(QAbstractEventDispatcher::instance()->metaObject()->className(),
             "libloop::qt::LoopEventDispatcher");
}

void tst_InspectorClient::listAndSnapshots() {
    RuntimeDir rt;
    Child c;
    QVERIFY(c.start(QStringLiteral(INSPECTOR_CHILD),
                    {QStringLiteral("timers"), QStringLiteral("insp-list"), QStringLiteral("12")},
                    rt.env()));
    ProbeListModel list;
    list.setRefreshInterval(100);
    list.setDirectory(rt.probeDir());
    QTRY_COMPARE_WITH_TIMEOUT(list.count(), 1, kLong);
    QCOMPARE(list.pidAt(0), c.pid());
    QCOMPARE(list.data(list.index(0), ProbeListModel::NameRole).toString(),
             QStringLiteral("insp-list"));

    ProbeClient client;
    QList<proto::SnapshotMessage> got;
    connect(&client, &ProbeClient::snapshotReceived, this,
            [&](const proto::SnapshotMessage& s) { got << s; });
    client.connectToProbe(list.pathAt(0), 50);
    QTRY_VERIFY_WITH_TIMEOUT(got.size() >= 3, kLong);
    QCOMPARE(client.state(), ProbeClient::State::Attached);
    QCOMPARE(client.serverHello()->pid, c.pid());
    QCOMPARE(client.effectiveRate(), 50);
    QCOMPARE(client.loops().size(), 1);
    QCOMPARE(client.loops().first().name, QStringLiteral("timers"));
    QCOMPARE(got.last().loops.first().timerHeapSize, 12u);
    for (qsizetype i = 1; i < got.size(); ++i)
        QVERIFY(got[i].seq > got[i - 1].seq);
    QSignalSpy closed(&client, &ProbeClient::disconnected);
    client.disconnectFromProbe();
    QCOMPARE(closed.size(), 1);
    QVERIFY(c.finish());
    QTRY_COMPARE_WITH_TIMEOUT(list.count(), 0, kLong);
}

void tst_InspectorClient::reconnectsToRestartedProcess() {
    RuntimeDir rt;
    auto first = std::make_unique<Child>();
    QVERIFY(first->start(
        QStringLiteral(INSPECTOR_CHILD),
        {QStringLiteral("timers"), QStringLiteral("insp-restart"), QStringLiteral("5")}, rt.env()));
    const qint64 firstPid = first->pid();
    QString error;
    const auto probe = resolveProbe(firstPid, {}, rt.probeDir(), &error);
    QVERIFY2(probe, qPrintable(error));

    ProbeSession session;
    session.setDirectory(rt.probeDir());
    session.setReconnectInterval(100);
    session.setRate(20);
    QList<qint64> pids;
    QList<bool> again;
    connect(&session, &ProbeSession::attachedTo, this, [&](qint64 pid, const QString&, bool re) {
        pids << pid;
        again << re;
    });
    QSignalSpy lost(&session, &ProbeSession::connectionLost);
    std::uint64_t snapshots = 0;
    std::uint64_t heap = 0;
    connect(session.client(), &ProbeClient::snapshotReceived, this,
            [&](const proto::SnapshotMessage& s) {
                ++snapshots;
                if (!s.loops.isEmpty())
                    heap = s.loops.first().timerHeapSize;
            });
    session.attach(*probe);
    QTRY_VERIFY_WITH_TIMEOUT(snapshots >= 2, kLong);
    QCOMPARE(pids, QList<qint64>{firstPid});
    QCOMPARE(heap, 5u);

    // The process dies (no clean exit: its socket stays behind, stale) ...
    first->kill();
    QTRY_VERIFY_WITH_TIMEOUT(lost.size() >= 1, kLong);
    QCOMPARE(session.status(), ProbeSession::Status::Reconnecting);
    QVERIFY(lost.first().at(1).toBool()); // will retry

    // ... and comes back under the same name with other work.
    Child second;
    QVERIFY(second.start(
        QStringLiteral(INSPECTOR_CHILD),
        {QStringLiteral("timers"), QStringLiteral("insp-restart"), QStringLiteral("9")}, rt.env()));
    QTRY_COMPARE_WITH_TIMEOUT(pids.size(), 2, kLong);
    QCOMPARE(pids.last(), second.pid());
    QVERIFY(again.last());
    QCOMPARE(session.reconnects(), 1);
    QTRY_COMPARE_WITH_TIMEOUT(heap, 9u, kLong);
    QCOMPARE(session.status(), ProbeSession::Status::Attached);
    session.detach();
    QCOMPARE(session.status(), ProbeSession::Status::Idle);
    QVERIFY(second.finish());
}

void tst_InspectorClient::connectFailureIsReported() {
    RuntimeDir rt;
    ProbeClient client;
    QSignalSpy failed(&client, &ProbeClient::failed);
    client.connectToProbe(rt.path() + QStringLiteral("/nothing.sock"), 20);
    QTRY_COMPARE_WITH_TIMEOUT(failed.size(), 1, kLong);
    QCOMPARE(failed.first().at(0).value<ProbeClient::Failure>(),
             ProbeClient::Failure::ConnectFailed);
    QCOMPARE(client.state(), ProbeClient::State::Disconnected);
}

int main(int argc, char** argv) {
    libloop::qt::install(); // the inspector's client runs on libloop, as in loop-inspector
    QCoreApplication app(argc, argv);
    tst_InspectorClient t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_inspector_client.moc"
