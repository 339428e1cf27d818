// A window that exits 0 when a real mouse click reaches it (and 1 after 30 s without one).
// Run on xcb under Xvfb by xcb_click.sh, which clicks it with xdotool: only a dispatcher that
// drives the xcb plugin's event conversion gets the X event this far.
#include <libloop/qt/loopguieventdispatcher.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtGui/qpainter.h>
#include <QtGui/qrasterwindow.h>

#include <cstdio>

class ClickWindow : public QRasterWindow {
protected:
    void paintEvent(QPaintEvent*) override {
        QPainter(this).fillRect(QRect(QPoint(), size()), Qt::darkCyan);
    }
    void mousePressEvent(QMouseEvent*) override {
        std::printf("clicked\n");
        std::fflush(stdout);
        QCoreApplication::exit(0);
    }
};

int main(int argc, char** argv) {
    const bool ours = qgetenv("LIBLOOP_TEST_DISPATCHER") != "qt";
    if (ours && !libloop::qt::installGui())
        return 2;
    QGuiApplication app(argc, argv);
    std::printf("platform %s, dispatcher %s\n", qPrintable(QGuiApplication::platformName()),
                QAbstractEventDispatcher::instance()->metaObject()->className());
    std::fflush(stdout);
    if (ours &&
        !qobject_cast<libloop::qt::LoopGuiEventDispatcher*>(QAbstractEventDispatcher::instance()))
        return 3;
    ClickWindow window;
    window.setTitle(QStringLiteral("libloop-xcb-click"));
    window.setGeometry(40, 40, 200, 150);
    window.show();
    QTimer::singleShot(30000, [] { QCoreApplication::exit(1); });
    return app.exec();
}
