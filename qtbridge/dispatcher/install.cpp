#include <libloop/qt/install.h>
#include <libloop/qt/loopeventdispatcher.h>

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
    QCoreApplication::setEventDispatcher(new LoopEventDispatcher);
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
    thread->setEventDispatcher(new LoopEventDispatcher);
    return true;
}

} // namespace libloop::qt
