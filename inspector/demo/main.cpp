// loop-demo: a Qt Quick app on libloop's GUI dispatcher with the probe on, and the workshop
// scenarios (scenariocontroller.h) behind buttons and sliders (qml/Demo/Main.qml). Attach
// loop-inspector to it to watch each scenario move the loop's plots.
#include "demooptions.h"
#include "scenariocontroller.h"

#include <libloop/qt/loopguieventdispatcher.h>
#include <libloop/qt/probe.h>

#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtGui/qimage.h>
#include <QtQml/qqmlapplicationengine.h>
#include <QtQuick/qquickwindow.h>
#include <QtQuick/qsgrendererinterface.h>

#include <algorithm>
#include <cstdio>

using libloop::demo::DemoOptions;
using libloop::demo::ScenarioController;

namespace {

int fail(int code, const QString& message) {
    std::fprintf(stderr, "loop-demo: %s\n", qPrintable(message));
    return code;
}

QStringList rawArguments(int argc, char** argv) {
    QStringList args;
    for (int i = 0; i < argc; ++i)
        args << QString::fromLocal8Bit(argv[i]);
    return args;
}

} // namespace

int main(int argc, char** argv) {
    // First pass, before the application object: report mistakes in our own options even where
    // no display is available (Qt's options are skipped here and checked in the second pass).
    DemoOptions options;
    QString error;
    if (!libloop::demo::parseDemoOptions(rawArguments(argc, argv), true, &options, &error))
        return fail(2, error);
    if (options.help) {
        std::fputs(qPrintable(libloop::demo::demoUsage()), stdout);
        return 0;
    }

    if (!libloop::qt::installGui())
        return fail(1, QStringLiteral("cannot install libloop's GUI dispatcher (see the warning)"));
    QGuiApplication app(argc, argv);
    QGuiApplication::setApplicationName(QStringLiteral("loop-demo"));
    // Second pass: Qt has removed its own options, so anything left that is not ours is an error.
    if (!libloop::demo::parseDemoOptions(QCoreApplication::arguments(), false, &options, &error))
        return fail(2, error);

    // Offscreen (and minimal) have no OpenGL context for Qt Quick: render in software.
    const QString platform = QGuiApplication::platformName();
    if ((platform == QStringLiteral("offscreen") || platform == QStringLiteral("minimal")) &&
        qEnvironmentVariableIsEmpty("QT_QUICK_BACKEND"))
        QQuickWindow::setGraphicsApi(QSGRendererInterface::Software);

    libloop::Loop* loop = ScenarioController::currentThreadLoop();
    if (!loop)
        return fail(1, QStringLiteral("the main thread does not run libloop's dispatcher"));

    libloop::qt::ProbeOptions probeOptions;
    probeOptions.name = "loop-demo";
    const libloop::qt::ProbeResult probe = libloop::qt::startProbe(probeOptions);
    if (probe)
        std::fprintf(stderr, "loop-demo: probe at %s (attach loop-inspector)\n",
                     probe.socketPath.c_str());
    else
        std::fprintf(stderr, "loop-demo: no probe (%s); the demo runs without an inspector\n",
                     probe.error.c_str());

    ScenarioController controller(*loop);
    if (options.timerCount > 0)
        controller.setTimerCount(options.timerCount);
    if (options.floodSize > 0)
        controller.setFloodSize(options.floodSize);
    if (options.blockMs > 0)
        controller.setBlockMs(options.blockMs);

    QQmlApplicationEngine engine;
    engine.setInitialProperties(
        {{QStringLiteral("controller"), QVariant::fromValue(static_cast<QObject*>(&controller))}});
    engine.load(QUrl(QStringLiteral("qrc:/LibloopDemo/Main.qml")));
    auto* window = engine.rootObjects().isEmpty()
                       ? nullptr
                       : qobject_cast<QQuickWindow*>(engine.rootObjects().first());
    if (!window)
        return fail(1, QStringLiteral("cannot load the QML user interface"));

    for (const QString& name : options.scenarios) {
        if (!controller.start(name))
            std::fprintf(stderr, "loop-demo: %s\n", qPrintable(controller.status()));
    }
    if (options.cycleSeconds > 0)
        controller.startCycle(options.cycleSeconds);

    int exitCode = 0;
    if (options.quitAfterSeconds > 0) {
        const int quitMs = int(options.quitAfterSeconds * 1000);
        if (!options.screenshotPath.isEmpty()) {
            // Grabbed while the loop runs (after exec() returned, grabbing is unreliable).
            const int shotMs = std::max(0, quitMs - std::min(500, quitMs / 4));
            QTimer::singleShot(shotMs, window, [&] {
                const QImage image = window->grabWindow();
                if (image.isNull() || !image.save(options.screenshotPath, "PNG")) {
                    std::fprintf(stderr, "loop-demo: cannot write the screenshot %s\n",
                                 qPrintable(options.screenshotPath));
                    exitCode = 1;
                    return;
                }
                std::fprintf(stderr, "loop-demo: screenshot %s (%dx%d)\n",
                             qPrintable(options.screenshotPath), image.width(), image.height());
            });
        }
        QTimer::singleShot(quitMs, &app, [&] {
            controller.calm();
            QCoreApplication::exit(exitCode);
        });
    }
    const int rc = QGuiApplication::exec();
    return rc != 0 ? rc : exitCode;
}
