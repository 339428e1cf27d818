// LoopEventDispatcher: Qt's QAbstractEventDispatcher on a libloop Loop (one per thread).
//
// processEvents() does what Qt's UNIX dispatcher does, in the same order: emit awake(), send the
// posted events, then run one libloop iteration — due Qt timers (QTimerEvent), ready socket
// notifiers (QEvent::SockAct) — waiting for more when WaitForMoreEvents allows it, with
// aboutToBlock() before and awake() after the wait. One difference: when a wakeUp() (events
// posted) ends the wait, the call sends those posted events at once, as the glib dispatcher's
// post-event source does; a timer that became due during that wait fires at the start of the
// next call (Qt's UNIX dispatcher fires it first and sends the events in the next call).
// Notifiers whose fds the wait found ready are activated in the same call either way. Qt timers
// live on the loop's timer heap (O(log n) register/unregister) and follow Qt's Precise / Coarse /
// VeryCoarse rules (qttimerrules.h); socket notifiers are one epoll registration per fd.
#pragma once

#include <QtCore/qabstracteventdispatcher.h>

#include <memory>

namespace libloop {
class Loop;
}

namespace libloop::qt {

class LoopEventDispatcher : public QAbstractEventDispatcher {
    Q_OBJECT
public:
    // The loop is named "qt" (Loop::name(), shown by the probe and the inspector).
    explicit LoopEventDispatcher(QObject* parent = nullptr);
    // The loop is named `loopName`: install(), installGui() and the preload use
    // mainThreadLoopName(), installOn() threadLoopName(thread).
    explicit LoopEventDispatcher(const QString& loopName, QObject* parent = nullptr);
    ~LoopEventDispatcher() override;

    // "qt:main".
    static QString mainThreadLoopName();
    // "qt:" + the thread's objectName() now, or "qt:thread" when it has none.
    static QString threadLoopName(const QThread& thread);

    // The loop this dispatcher runs. Its loop thread is the thread the dispatcher serves
    // (bound in startingUp() and at the first processEvents()).
    libloop::Loop& loop();

    bool processEvents(QEventLoop::ProcessEventsFlags flags) override;

    void registerSocketNotifier(QSocketNotifier* notifier) override;
    void unregisterSocketNotifier(QSocketNotifier* notifier) override;

    void registerTimer(int timerId, qint64 interval, Qt::TimerType timerType,
                       QObject* object) override;
    bool unregisterTimer(int timerId) override;
    bool unregisterTimers(QObject* object) override;
    QList<TimerInfo> registeredTimers(QObject* object) const override;
    int remainingTime(int timerId) override;

    void wakeUp() override;    // any thread
    void interrupt() override; // any thread

    void startingUp() override;
    void closingDown() override;

private:
    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace libloop::qt
