#include "options.h"

#include <libloop/protocol/messages.h>

#include <replayplayer.h>

#include <QtCore/qcommandlineparser.h>

#include <cstring>

namespace libloop::inspector {

bool wantsDump(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--dump") == 0 || std::strcmp(argv[i], "-dump") == 0)
            return true;
    return false;
}

std::optional<Options> parseOptions(const QStringList& arguments, QString* error) {
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Attaches to a process that runs libloop with its probe on and shows its loops live.\n"
        "With --dump, prints one JSON object per snapshot instead (no display needed)."));
    p.addHelpOption();
    p.addVersionOption();
    const QCommandLineOption dump(QStringLiteral("dump"),
                                  QStringLiteral("Print snapshots as JSON lines on stdout."));
    const QCommandLineOption pid(QStringLiteral("pid"), QStringLiteral("Attach to process N."),
                                 QStringLiteral("N"));
    const QCommandLineOption socket(QStringLiteral("socket"),
                                    QStringLiteral("Attach to the probe socket PATH."),
                                    QStringLiteral("PATH"));
    const QCommandLineOption dir(QStringLiteral("dir"),
                                 QStringLiteral("Probe socket directory (default: "
                                                "$XDG_RUNTIME_DIR/libloop or /tmp/libloop-UID)."),
                                 QStringLiteral("DIR"));
    const QCommandLineOption count(QStringLiteral("count"),
                                   QStringLiteral("--dump: exit after K snapshots (default: "
                                                  "until the connection ends)."),
                                   QStringLiteral("K"));
    const QCommandLineOption rate(QStringLiteral("rate"),
                                  QStringLiteral("Snapshots per second, 1..100 (default 20)."),
                                  QStringLiteral("HZ"));
    const QCommandLineOption timeout(
        QStringLiteral("timeout"),
        QStringLiteral("--dump: give up when the probe is silent this long (default 10)."),
        QStringLiteral("SECONDS"));
    const QCommandLineOption window(QStringLiteral("window"),
                                    QStringLiteral("Time window, 10..600 (default 60)."),
                                    QStringLiteral("SECONDS"));
    const QCommandLineOption fps(QStringLiteral("fps"),
                                 QStringLiteral("Plot refreshes per second, 1..60 (default 20)."),
                                 QStringLiteral("N"));
    const QCommandLineOption replay(QStringLiteral("replay"),
                                    QStringLiteral("Show a recorded session instead of a process."),
                                    QStringLiteral("FILE"));
    const QCommandLineOption play(
        QStringLiteral("play"),
        QStringLiteral("--replay: play the session in real time from its start at once."));
    const QCommandLineOption speed(QStringLiteral("speed"),
                                   QStringLiteral("--replay: playback speed, one of %1 "
                                                  "(default 1).")
                                       .arg(ReplayPlayer::speedChoices()),
                                   QStringLiteral("X"));
    const QCommandLineOption record(QStringLiteral("record"),
                                    QStringLiteral("Record the session to FILE (JSON lines)."),
                                    QStringLiteral("FILE"));
    const QCommandLineOption loop(QStringLiteral("loop"),
                                  QStringLiteral("Show the loop with this name first."),
                                  QStringLiteral("NAME"));
    const QCommandLineOption screenshot(
        QStringLiteral("screenshot"),
        QStringLiteral("Save the window as DIR/inspector.png and each plot as DIR/plot-*.png "
                       "after --screenshot-after seconds, then exit."),
        QStringLiteral("DIR"));
    const QCommandLineOption screenshotAfter(
        QStringLiteral("screenshot-after"),
        QStringLiteral("Seconds of data before --screenshot (default 3)."),
        QStringLiteral("SECONDS"));
    p.addOptions({dump, pid, socket, dir, count, rate, timeout, window, fps, replay, play, speed,
                  record, loop, screenshot, screenshotAfter});
    p.process(arguments); // --help / --version / unknown options exit here

    auto fail = [error](const QString& why) -> std::optional<Options> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    Options o;
    o.dump = p.isSet(dump);
    bool ok = true;
    if (p.isSet(pid)) {
        o.pid = p.value(pid).toLongLong(&ok);
        if (!ok || o.pid <= 0)
            return fail(
                QStringLiteral("--pid: expected a process id, got \"%1\"").arg(p.value(pid)));
    }
    o.socket = p.value(socket);
    if (o.pid > 0 && !o.socket.isEmpty())
        return fail(QStringLiteral("--pid and --socket exclude each other"));
    o.directory = p.value(dir);
    if (p.isSet(count)) {
        o.count = p.value(count).toLongLong(&ok);
        if (!ok || o.count <= 0)
            return fail(QStringLiteral("--count: expected a positive number, got \"%1\"")
                            .arg(p.value(count)));
    }
    if (p.isSet(rate)) {
        o.rate = p.value(rate).toInt(&ok);
        if (!ok || o.rate < libloop::protocol::kMinRate || o.rate > libloop::protocol::kMaxRate)
            return fail(QStringLiteral("--rate: expected 1..100, got \"%1\"").arg(p.value(rate)));
    }
    if (p.isSet(timeout)) {
        const double s = p.value(timeout).toDouble(&ok);
        if (!ok || s <= 0)
            return fail(QStringLiteral("--timeout: expected seconds > 0"));
        o.timeoutMs = int(s * 1000);
    }
    if (p.isSet(window)) {
        o.windowSeconds = p.value(window).toDouble(&ok);
        if (!ok || o.windowSeconds < 10 || o.windowSeconds > 600)
            return fail(QStringLiteral("--window: expected 10..600 seconds"));
    }
    if (p.isSet(fps)) {
        o.fps = p.value(fps).toInt(&ok);
        if (!ok || o.fps < 1 || o.fps > 60)
            return fail(QStringLiteral("--fps: expected 1..60"));
    }
    o.replay = p.value(replay);
    o.play = p.isSet(play);
    if (p.isSet(speed)) {
        const std::optional<double> x = ReplayPlayer::parseSpeed(p.value(speed));
        if (!x)
            return fail(QStringLiteral("--speed: expected one of %1, got \"%2\"")
                            .arg(ReplayPlayer::speedChoices(), p.value(speed)));
        o.speed = *x;
    }
    o.record = p.value(record);
    o.loop = p.value(loop);
    o.screenshotDir = p.value(screenshot);
    if (p.isSet(screenshotAfter)) {
        o.screenshotAfter = p.value(screenshotAfter).toDouble(&ok);
        if (!ok || o.screenshotAfter < 0)
            return fail(QStringLiteral("--screenshot-after: expected seconds >= 0"));
    }
    if (o.dump && !o.replay.isEmpty())
        return fail(QStringLiteral("--dump and --replay exclude each other"));
    if (o.replay.isEmpty() && (o.play || p.isSet(speed)))
        return fail(
            QStringLiteral("--play and --speed play a recorded session: they need --replay"));
    if (!o.replay.isEmpty() && (o.pid > 0 || !o.socket.isEmpty()))
        return fail(QStringLiteral("--replay shows a file: --pid and --socket do not apply"));
    return o;
}

} // namespace libloop::inspector
