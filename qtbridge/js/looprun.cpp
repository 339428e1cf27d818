// loop-run: runs a JavaScript file on QJSEngine over libloop's dispatcher, like `node file.js`.
//
//   loop-run [--inspect] script.js [args...]
//
// Globals: setTimeout & co. (jstimers.h), console.log/info/debug (stdout) and
// console.error/warn (stderr), and process.argv / process.exitCode / process.exit(code).
// Exits when nothing is pending (no timeout, interval or immediate, and the loop has nothing to
// do: no microtask, task or posted event) with process.exitCode (default 0). An uncaught error —
// in the script itself or in any callback — prints "Uncaught <error>" and its stack on stderr and
// exits at once with code 1, as node does.
#include <libloop/loop.h>
#include <libloop/qt/install.h>
#include <libloop/qt/jstimers.h>
#include <libloop/qt/probe.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qfile.h>
#include <QtCore/qfileinfo.h>
#include <QtQml/qjsengine.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace {

constexpr const char* kUsage = "usage: loop-run [--inspect] script.js [args...]\n";

constexpr const char* kConsoleShim = R"JS(
(function (io, argv) {
    'use strict';
    function fmt(v) {
        if (typeof v === 'string')
            return v;
        if (v instanceof Error)
            return v.stack ? v.toString() + '\n' + v.stack : v.toString();
        if (typeof v === 'object' && v !== null) {
            try { return JSON.stringify(v); } catch (e) { return String(v); }
        }
        return String(v);
    }
    function writer(stream) {
        return function (...args) { io.write(stream, args.map(fmt).join(' ')); };
    }
    const process = {
        argv: argv,
        exitCode: 0,
        exit: function (code) { io.exit(code === undefined ? process.exitCode : Number(code)); }
    };
    return {
        console: { log: writer(1), info: writer(1), debug: writer(1),
                   error: writer(2), warn: writer(2) },
        process: process
    };
})
)JS";

class Io : public QObject {
    Q_OBJECT
public:
    Q_INVOKABLE void write(int stream, const QString& text) {
        const QByteArray bytes = text.toUtf8() + '\n';
        std::FILE* f = stream == 2 ? stderr : stdout;
        std::fwrite(bytes.constData(), 1, std::size_t(bytes.size()), f);
        std::fflush(f);
    }
    Q_INVOKABLE void exit(int code) { quit(code); }

    [[noreturn]] static void quit(int code) {
        libloop::qt::stopProbe(); // _Exit skips atexit: remove the socket now
        std::fflush(nullptr);
        std::_Exit(code); // like node's process.exit: nothing else runs
    }
};

[[noreturn]] void uncaught(const QString& text) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", qPrintable(text));
    Io::quit(1);
}

} // namespace

int main(int argc, char** argv) {
    int first = 1;
    bool inspect = qEnvironmentVariableIntValue("LIBLOOP_INSPECT") == 1;
    for (; first < argc && argv[first][0] == '-' && argv[first][1] == '-'; ++first) {
        const QByteArray opt = argv[first];
        if (opt == "--inspect") {
            inspect = true;
        } else if (opt == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        } else {
            std::fprintf(stderr, "loop-run: unknown option %s\n%s", argv[first], kUsage);
            return 2;
        }
    }
    if (first >= argc) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const QString path = QString::fromLocal8Bit(argv[first]);
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        std::fprintf(stderr, "loop-run: cannot open %s: %s\n", argv[first],
                     qPrintable(file.errorString()));
        return 2;
    }
    const QString source = QString::fromUtf8(file.readAll());

    if (inspect)
        qputenv("LIBLOOP_INSPECT", "1"); // install() starts the probe (when built with it)
    libloop::qt::install();
    QCoreApplication app(argc, argv);
    QJSEngine engine;
    QString error;
    libloop::qt::JsTimersHost* host = libloop::qt::installJsTimers(&engine, &error);
    if (!host) {
        std::fprintf(stderr, "loop-run: %s\n", qPrintable(error));
        return 2;
    }

    Io io;
    QJSValue argvJs = engine.newArray(0);
    argvJs.setProperty(0, QStringLiteral("loop-run"));
    for (int i = first; i < argc; ++i)
        argvJs.setProperty(quint32(i - first + 1), QString::fromLocal8Bit(argv[i]));
    const QJSValue api =
        engine.evaluate(QString::fromUtf8(kConsoleShim)).call({engine.newQObject(&io), argvJs});
    const QJSValue process = api.property(QStringLiteral("process"));
    engine.globalObject().setProperty(QStringLiteral("console"),
                                      api.property(QStringLiteral("console")));
    engine.globalObject().setProperty(QStringLiteral("process"), process);

    // Callbacks that throw reach the loop's error hook as JsError: report and exit like node.
    host->loop().setErrorHook([](std::exception_ptr e, libloop::CallbackKind) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            uncaught(QString::fromUtf8(ex.what()));
        } catch (...) {
            uncaught(QStringLiteral("Uncaught exception"));
        }
    });

    // The script runs as the loop's first task, so a microtask checkpoint follows it (as after a
    // browser's script).
    const QString scriptPath = QFileInfo(path).absoluteFilePath();
    bool scriptRan = false;
    (void)host->loop().submit([&] {
        scriptRan = true;
        const QJSValue result = engine.evaluate(source, scriptPath);
        if (result.isError())
            uncaught(QStringLiteral("Uncaught ") + result.toString() + QLatin1Char('\n') +
                     result.property(QStringLiteral("stack")).toString());
    });

    // Nothing left: the dispatcher is about to wait and no JS timer or immediate is pending.
    QObject::connect(
        QAbstractEventDispatcher::instance(), &QAbstractEventDispatcher::aboutToBlock, &app, [&] {
            if (scriptRan && host->pending() == 0)
                QCoreApplication::exit(process.property(QStringLiteral("exitCode")).toInt());
        });
    return app.exec();
}

#include "looprun.moc"
