#include <libloop/qt/loopguieventdispatcher.h>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>
#include <QtGui/private/qguiapplication_p.h>
#include <QtGui/qguiapplication.h>
#include <qpa/qplatformintegration.h>
#include <qpa/qwindowsysteminterface.h>

#include <cstring>

namespace libloop::qt {

struct LoopGuiEventDispatcher::GuiPrivate {
    enum class Mode { Unknown, Core, Gui, Xcb };
    Mode mode = Mode::Unknown;
    std::unique_ptr<QAbstractEventDispatcher> platformDispatcher; // xcb only

    // Decided once, at the first iteration on the GUI thread after the application exists.
    void decide() {
        auto* app = qobject_cast<QGuiApplication*>(QCoreApplication::instance());
        if (!app) {
            if (QCoreApplication::instance())
                mode = Mode::Core; // a QCoreApplication: nothing more to deliver
            return;                // no application yet: decide later
        }
        if (QThread::currentThread() != app->thread()) {
            mode = Mode::Core;
            return;
        }
        mode = Mode::Gui;
        if (QGuiApplication::platformName() != QLatin1String("xcb"))
            return;
        QPlatformIntegration* integration = QGuiApplicationPrivate::platformIntegration();
        if (!integration)
            return;
        // The glib flavour of the xcb dispatcher never delivers real input when it is not the
        // thread's installed dispatcher; the UNIX flavour converts X events in processEvents().
        const QByteArray saved = qgetenv("QT_NO_GLIB");
        const bool hadValue = qEnvironmentVariableIsSet("QT_NO_GLIB");
        qputenv("QT_NO_GLIB", "1");
        platformDispatcher.reset(integration->createEventDispatcher());
        if (hadValue)
            qputenv("QT_NO_GLIB", saved);
        else
            qunsetenv("QT_NO_GLIB");
        if (platformDispatcher)
            mode = Mode::Xcb;
    }
};

LoopGuiEventDispatcher::LoopGuiEventDispatcher(QObject* parent)
    : LoopEventDispatcher(parent), g(std::make_unique<GuiPrivate>()) {}

LoopGuiEventDispatcher::LoopGuiEventDispatcher(const QString& loopName, QObject* parent)
    : LoopEventDispatcher(loopName, parent), g(std::make_unique<GuiPrivate>()) {}

LoopGuiEventDispatcher::~LoopGuiEventDispatcher() = default;

bool LoopGuiEventDispatcher::processEvents(QEventLoop::ProcessEventsFlags flags) {
    if (g->mode == GuiPrivate::Mode::Unknown)
        g->decide();
    bool did = LoopEventDispatcher::processEvents(flags);
    switch (g->mode) {
    case GuiPrivate::Mode::Unknown:
    case GuiPrivate::Mode::Core:
        return did;
    case GuiPrivate::Mode::Xcb:
        // Never blocks: the xcb reader thread wakes our loop, not this inner dispatcher.
        // It converts X events and also sends the window-system events.
        did |= g->platformDispatcher->processEvents(flags & ~QEventLoop::WaitForMoreEvents);
        return did;
    case GuiPrivate::Mode::Gui:
        break;
    }
    did |= QWindowSystemInterface::sendWindowSystemEvents(flags);
    return did;
}

const char* LoopGuiEventDispatcher::builtAgainstQtVersion() {
    return QT_VERSION_STR;
}

bool LoopGuiEventDispatcher::runtimeQtMatches() {
    return std::strcmp(qVersion(), QT_VERSION_STR) == 0;
}

bool installGui() {
    if (!LoopGuiEventDispatcher::runtimeQtMatches()) {
        qWarning("libloop::qt::installGui(): built against Qt %s but running Qt %s; keeping "
                 "Qt's event dispatcher",
                 QT_VERSION_STR, qVersion());
        return false;
    }
    if (QCoreApplication::instance()) {
        qWarning("libloop::qt::installGui(): call it before the application object is "
                 "constructed");
        return false;
    }
    if (QAbstractEventDispatcher* existing = QThread::currentThread()->eventDispatcher()) {
        qWarning("libloop::qt::installGui(): the main thread already has an event dispatcher "
                 "(%s)",
                 existing->metaObject()->className());
        return false;
    }
    QCoreApplication::setEventDispatcher(
        new LoopGuiEventDispatcher(LoopEventDispatcher::mainThreadLoopName()));
    return true;
}

} // namespace libloop::qt
