#include <libloop/qt/install.h>
#include <libloop/qt/loopeventdispatcher.h>
#include <libloop/qt/probe.h>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>

namespace libloop::qt {

bool install() {
    if (QCoreApplication::instance()) {
        qWarning("libloop::qt::install(): call it before the application object is constructed");
        return false;
    }
    QThread* main = QThread::currentThread();
    if (main->eventDispatcher()) {
        qWarning("libloop::qt::install(): the main thread already has an event dispatcher (%s)",
                 main->eventDispatcher()->metaObject()->className());
        return false;
    }
    QCoreApplication::setEventDispatcher(
        new LoopEventDispatcher(LoopEventDispatcher::mainThreadLoopName()));
    startProbeFromEnvironment(); // LIBLOOP_INSPECT=1
    return true;
}

bool installOn(QThread* thread) {
    if (!thread)
        return false;
    if (thread->isRunning()) {
        qWarning("libloop::qt::installOn(): the thread is already running");
        return false;
    }
    if (thread->eventDispatcher()) {
        qWarning("libloop::qt::installOn(): the thread already has an event dispatcher (%s)",
                 thread->eventDispatcher()->metaObject()->className());
        return false;
    }
    thread->setEventDispatcher(
        new LoopEventDispatcher(LoopEventDispatcher::threadLoopName(*thread)));
    return true;
}

namespace {
// LIBLOOP_INSPECT=1 for every application object that comes up on a libloop dispatcher, however
// it got there (installGui(), a hand-made setEventDispatcher, the preload).
void startProbeForLoopApplications() {
    if (qobject_cast<LoopEventDispatcher*>(QThread::currentThread()->eventDispatcher()))
        startProbeFromEnvironment();
}
Q_COREAPP_STARTUP_FUNCTION(startProbeForLoopApplications)
} // namespace

} // namespace libloop::qt
