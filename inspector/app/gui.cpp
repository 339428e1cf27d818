#include "gui.h"

#include "inspectorcontroller.h"

#include <plotitem.h>
#include <plotscheduler.h>

#include <QtCore/qdir.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtQml/qqmlapplicationengine.h>
#include <QtQml/qqmlextensionplugin.h>
#include <QtQuick/qquickwindow.h>

#include <cstdio>

// The QML module LibloopInspector (qml/Inspector) is a static plugin.
Q_IMPORT_QML_PLUGIN(LibloopInspectorPlugin)

namespace libloop::inspector {

QQuickWindow* loadInspectorUi(QQmlApplicationEngine& engine, InspectorController* controller) {
    registerQmlTypes();
    engine.addImportPath(QStringLiteral("qrc:/"));
    engine.setInitialProperties({{QStringLiteral("inspector"), QVariant::fromValue(controller)}});
    engine.load(QUrl(QStringLiteral("qrc:/LibloopInspector/Main.qml")));
    if (engine.rootObjects().isEmpty()) {
        std::fprintf(stderr, "loop-inspector: the window could not be loaded\n");
        return nullptr;
    }
    auto* window = qobject_cast<QQuickWindow*>(engine.rootObjects().first());
    controller->files()->setParentWindow(window); // the Browse dialogs belong to it
    return window;
}

bool startFromOptions(InspectorController* controller, const Options& o, QString* error) {
    bool ok = true;
    if (!o.replay.isEmpty()) {
        ok = controller->replay(o.replay);
        if (ok) {
            controller->player()->setSpeed(o.speed);
            if (o.play)
                controller->player()->play(); // it stands at the end: plays from the start
        }
    } else if (o.pid > 0 || !o.socket.isEmpty()) {
        ok = o.pid > 0 ? controller->attachPid(o.pid) : controller->attachPath(o.socket);
    } else if (controller->probes()->count() == 1) {
        controller->attachRow(0); // the only process with a probe: attach at once
    }
    if (ok && !o.record.isEmpty())
        ok = controller->startRecording(o.record);
    if (!ok && error)
        *error = controller->message();
    return ok;
}

bool writeScreenshots(QQuickWindow* window, InspectorController* controller, const QString& dir) {
    if (!QDir().mkpath(dir)) {
        std::fprintf(stderr, "loop-inspector: cannot create %s\n", qPrintable(dir));
        return false;
    }
    // Bring every plot up to date, then grab the scene while the event loop runs (grabbing after
    // exec() returned crashed on xcb, QT-FACTS).
    PlotScheduler::instance()->renderAll();
    const QImage shot = window->grabWindow();
    const QString path = QDir(dir).filePath(QStringLiteral("inspector.png"));
    bool ok = !shot.isNull() && shot.save(path, "PNG");
    if (!ok)
        std::fprintf(stderr, "loop-inspector: cannot write %s\n", qPrintable(path));
    const QStringList plots = controller->exportPng(dir);
    if (plots.isEmpty()) {
        std::fprintf(stderr, "loop-inspector: no plot written to %s\n", qPrintable(dir));
        ok = false;
    }
    if (ok) {
        std::printf("%s\n", qPrintable(path));
        for (const QString& p : plots)
            std::printf("%s\n", qPrintable(p));
        std::fflush(stdout);
    }
    return ok;
}

int runGui(const Options& o) {
    InspectorController controller;
    if (!o.directory.isEmpty())
        controller.setProbeDirectory(o.directory);
    controller.setRate(o.rate);
    controller.history()->setWindowSeconds(o.windowSeconds);
    controller.setPreferredLoop(o.loop);
    PlotScheduler::instance()->setFps(o.fps);
    controller.player()->setTickInterval(1000 / o.fps); // playback feeds as often as plots redraw

    QQmlApplicationEngine engine;
    QQuickWindow* window = loadInspectorUi(engine, &controller);
    if (!window)
        return 1;

    QString error;
    if (!startFromOptions(&controller, o, &error)) {
        std::fprintf(stderr, "loop-inspector: %s\n", qPrintable(error));
        return 1;
    }

    // --screenshot: once there has been data for --screenshot-after seconds (or, with no data,
    // after that plus 15 s), write the images and quit.
    QTimer shooter;
    QElapsedTimer sinceStart, sinceData;
    int exitCode = 0;
    if (!o.screenshotDir.isEmpty()) {
        sinceStart.start();
        shooter.setInterval(100);
        QObject::connect(&shooter, &QTimer::timeout, [&] {
            const bool haveData = controller.history()->snapshotCount() > 0;
            if (haveData && !sinceData.isValid())
                sinceData.start();
            const qint64 after = qint64(o.screenshotAfter * 1000);
            const bool due = (sinceData.isValid() && sinceData.elapsed() >= after) ||
                             sinceStart.elapsed() >= after + 15000;
            if (!due)
                return;
            shooter.stop();
            if (!haveData)
                std::fprintf(stderr, "loop-inspector: no data arrived; screenshot anyway\n");
            exitCode = writeScreenshots(window, &controller, o.screenshotDir) ? 0 : 1;
            QCoreApplication::exit(exitCode);
        });
        shooter.start();
    }
    const int code = QGuiApplication::exec();
    return o.screenshotDir.isEmpty() ? code : exitCode;
}

} // namespace libloop::inspector
