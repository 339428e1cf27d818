// Helper process for tst_probe_discovery. Prints one line "path <probe socket path or empty>"
// (and "dispatcher <class>" where an application exists), then waits until its stdin reaches EOF
// and exits normally (so atexit handlers run).
//
//   probe_child probe NAME   startProbe({.name = NAME})
//   probe_child install      libloop::qt::install() + QCoreApplication (LIBLOOP_INSPECT decides)
//   probe_child gui          libloop::qt::installGui() + QGuiApplication
//   probe_child plain        a QCoreApplication only (for LD_PRELOAD=libloop-preload.so)
//   probe_child threads      the same plus three running QThreads "worker-1".."worker-3"
//                            (prints "workers <n>" once each one's event loop runs)
#include <libloop/qt/install.h>
#include <libloop/qt/loopguieventdispatcher.h>
#include <libloop/qt/probe.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>
#include <QtGui/qguiapplication.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <unistd.h>
#include <vector>

namespace {

void waitForStdinEof() {
    char buf[256];
    while (::read(0, buf, sizeof buf) > 0) {
    }
}

void report(const char* dispatcher) {
    std::printf("path %s\n", libloop::qt::probeSocketPath().c_str());
    if (dispatcher)
        std::printf("dispatcher %s\n", dispatcher);
    std::fflush(stdout);
}

const char* dispatcherName() {
    QAbstractEventDispatcher* d = QAbstractEventDispatcher::instance();
    return d ? d->metaObject()->className() : "none";
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        return 2;
    const char* mode = argv[1];
    if (std::strcmp(mode, "probe") == 0 && argc >= 3) {
        libloop::qt::ProbeOptions o;
        o.name = argv[2];
        const libloop::qt::ProbeResult r = libloop::qt::startProbe(o);
        if (!r.ok)
            std::fprintf(stderr, "probe_child: %s\n", r.error.c_str());
        report(nullptr);
        waitForStdinEof();
        return r.ok ? 0 : 1;
    }
    if (std::strcmp(mode, "install") == 0 || std::strcmp(mode, "plain") == 0) {
        if (std::strcmp(mode, "install") == 0 && !libloop::qt::install())
            return 1;
        QCoreApplication app(argc, argv);
        report(dispatcherName());
        waitForStdinEof();
        return 0;
    }
    if (std::strcmp(mode, "threads") == 0) {
        QCoreApplication app(argc, argv);
        std::vector<std::unique_ptr<QThread>> workers;
        for (int i = 1; i <= 3; ++i) {
            workers.push_back(std::make_unique<QThread>());
            workers.back()->setObjectName(QStringLiteral("worker-%1").arg(i));
            workers.back()->start();
        }
        int running = 0;
        for (auto& t : workers) {
            QAbstractEventDispatcher* d = nullptr;
            while (!(d = QAbstractEventDispatcher::instance(t.get())))
                QThread::msleep(1);
            // Returns once the worker's event loop has run this call.
            if (QMetaObject::invokeMethod(
                    d, [] {}, Qt::BlockingQueuedConnection))
                ++running;
        }
        report(dispatcherName());
        std::printf("workers %d\n", running);
        std::fflush(stdout);
        waitForStdinEof();
        for (auto& t : workers) {
            t->quit();
            t->wait();
        }
        return 0;
    }
    if (std::strcmp(mode, "gui") == 0) {
        if (!libloop::qt::installGui())
            return 1;
        QGuiApplication app(argc, argv);
        report(dispatcherName());
        waitForStdinEof();
        return 0;
    }
    return 2;
}
