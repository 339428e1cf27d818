// LoopGuiEventDispatcher: LoopEventDispatcher plus window-system events, for QGuiApplication and
// QApplication (Qt Quick, widgets). Uses Qt's private QPA API, so it is tied to exactly the Qt
// version it was built against (checked at run time: installGui() refuses on a mismatch).
//
// After each iteration it delivers the queued window-system events
// (QWindowSystemInterface::sendWindowSystemEvents), which is all the offscreen, minimal and
// similar platforms need. On xcb, X events are converted to window-system events only inside
// the xcb plugin's own event dispatcher, so that dispatcher (its UNIX flavour) is created too
// and driven without blocking on every iteration; the xcb reader thread wakes *this* dispatcher.
// In threads other than the GUI thread, and under a plain QCoreApplication, it behaves exactly
// like LoopEventDispatcher.
#pragma once

#include <libloop/qt/loopeventdispatcher.h>

#include <memory>

namespace libloop::qt {

class LoopGuiEventDispatcher : public LoopEventDispatcher {
    Q_OBJECT
public:
    explicit LoopGuiEventDispatcher(QObject* parent = nullptr); // its loop is named "qt"
    explicit LoopGuiEventDispatcher(const QString& loopName, QObject* parent = nullptr);
    ~LoopGuiEventDispatcher() override;

    bool processEvents(QEventLoop::ProcessEventsFlags flags) override;

    // The Qt version this library was built against, and whether the running Qt is that one.
    static const char* builtAgainstQtVersion();
    static bool runtimeQtMatches();

private:
    struct GuiPrivate;
    std::unique_ptr<GuiPrivate> g;
};

// Installs a LoopGuiEventDispatcher for the main thread; call before the QGuiApplication /
// QApplication is constructed. Returns false, with a warning, when an application object or a
// dispatcher already exists, or when the running Qt is not the one this library was built for
// (Qt's own dispatcher then stays).
bool installGui();

} // namespace libloop::qt
