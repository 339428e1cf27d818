#include "dump.h"

#include "discovery.h"
#include "probeclient.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qjsonobject.h>
#include <QtCore/qtimer.h>

#include <algorithm>

namespace libloop::inspector {

namespace proto = libloop::protocol;

int runDump(const DumpOptions& options, std::FILE* out, std::FILE* err) {
    auto report = [err](const QString& message) {
        std::fprintf(err, "loop-inspector: %s\n", message.toLocal8Bit().constData());
        std::fflush(err);
    };

    QString error;
    const std::optional<proto::ProbeInfo> probe =
        resolveProbe(options.pid, options.socket, options.directory, &error);
    if (!probe) {
        report(error);
        return 1;
    }

    ProbeClient client;
    client.setClientName(QStringLiteral("loop-inspector --dump"));
    client.setHandshakeTimeout(options.timeoutMs);
    int exitCode = -1;
    qint64 printed = 0;
    auto finish = [&](int code) {
        if (exitCode >= 0)
            return;
        exitCode = code;
        QCoreApplication::exit(code);
    };

    // No snapshot for this long (after the handshake): something is wrong with the probe.
    QTimer stall;
    stall.setSingleShot(true);
    const int periodMs = 1000 / std::max(1, options.rate);
    stall.setInterval(std::max(options.timeoutMs, 3 * periodMs));
    QObject::connect(&stall, &QTimer::timeout, [&] {
        report(QStringLiteral("no snapshot from the probe within %1 ms").arg(stall.interval()));
        client.disconnectFromProbe();
        finish(1);
    });

    QObject::connect(&client, &ProbeClient::attached,
                     [&](const proto::ServerHello&) { stall.start(); });
    QObject::connect(&client, &ProbeClient::snapshotReceived, [&](const proto::SnapshotMessage& s) {
        if (exitCode >= 0)
            return;
        stall.start();
        QJsonObject o = s.toJson();
        o.remove(QStringLiteral("t"));
        if (client.serverHello()) {
            o.insert(QStringLiteral("pid"), client.serverHello()->pid);
            o.insert(QStringLiteral("name"), client.serverHello()->name);
        }
        QByteArray line = QJsonDocument(o).toJson(QJsonDocument::Compact);
        line.append('\n');
        std::fwrite(line.constData(), 1, std::size_t(line.size()), out);
        std::fflush(out);
        if (options.count > 0 && ++printed >= options.count) {
            client.disconnectFromProbe();
            finish(0);
        }
    });
    QObject::connect(&client, &ProbeClient::failed,
                     [&](ProbeClient::Failure, const QString& message) {
                         report(message);
                         finish(1);
                     });

    client.connectToProbe(probe->path, options.rate);
    if (exitCode >= 0) // failed synchronously (connection refused)
        return exitCode;
    const int code = QCoreApplication::exec();
    return exitCode >= 0 ? exitCode : code;
}

} // namespace libloop::inspector
