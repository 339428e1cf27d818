// An ordinary Qt program that knows nothing of libloop (it links Qt only). It prints which event
// dispatcher each of its application objects and threads runs on, so preload_check.sh can run it
// with and without libloop-preload.so.
//   preload_probe_app core   two QCoreApplications in a row, a QThread, a QThread with its own
//                            dispatcher
//   preload_probe_app quick  a QGuiApplication with a Qt Quick window whose QML Timer must tick
//   preload_probe_app own    the application installs its own dispatcher first
//   preload_probe_app widgets a QApplication with a shown QWidget
#include <QtCore/private/qeventdispatcher_unix_p.h>
#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>
#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtQml/qqmlengine.h>
#include <QtQuick/qquickview.h>
#include <QtQuick/qquickwindow.h>
#include <QtWidgets/qapplication.h>
#include <QtWidgets/qwidget.h>

#include <cstdio>
#include <cstring>

static void report(const char* what, QThread* thread = nullptr) {
    QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance(thread);
    std::printf("%s %s\n", what, d ? d->metaObject()->className() : "none");
    std::fflush(stdout);
}

static void reportThread(const char* what, QAbstractEventDispatcher* own) {
    QThread t;
    if (own)
        t.setEventDispatcher(own);
    QObject::connect(&t, &QThread::started, [what] { report(what); });
    t.start();
    t.quit();
    t.wait();
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "core";
    if (!std::strcmp(mode, "own")) {
        QCoreApplication::setEventDispatcher(new QEventDispatcherUNIX);
        QCoreApplication app(argc, argv);
        report("own");
        return 0;
    }
    if (!std::strcmp(mode, "widgets")) {
        QApplication app(argc, argv);
        report("widgets");
        QWidget w;
        w.resize(120, 80);
        w.show();
        QTimer::singleShot(20, &app, &QCoreApplication::quit);
        std::printf("widgets-exit %d\n", app.exec());
        return 0;
    }
    if (!std::strcmp(mode, "quick")) {
        QQuickWindow::setGraphicsApi(QSGRendererInterface::Software);
        QGuiApplication app(argc, argv);
        report("quick");
        QQuickView view;
        QObject::connect(view.engine(), &QQmlEngine::quit, &app, &QCoreApplication::quit);
        QByteArray qml = "import QtQuick\nItem { width: 100; height: 100\n"
                         "  Timer { interval: 10; repeat: true; running: true; property int n: 0\n"
                         "    onTriggered: { n++; if (n === 5) Qt.quit() } } }\n";
        view.setSource(QUrl(QStringLiteral("data:application/octet-stream;base64,") +
                            QString::fromLatin1(qml.toBase64())));
        view.show();
        QTimer::singleShot(20000, [] { QCoreApplication::exit(3); });
        const int rc = app.exec();
        std::printf("quick-exit %d\n", rc);
        return rc;
    }
    {
        QCoreApplication app(argc, argv);
        report("app1");
        QTimer::singleShot(10, &app, &QCoreApplication::quit);
        app.exec();
        reportThread("thread", nullptr);
        reportThread("ownthread", new QEventDispatcherUNIX);
    }
    {
        QCoreApplication app(argc, argv);
        report("app2");
    }
    return 0;
}
