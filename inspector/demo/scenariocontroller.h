// ScenarioController: the Qt face of loop-demo's workshop scenarios (scenarios.h), for QML and
// for the command line. Lives on the thread whose libloop::Loop it drives (the GUI thread in
// loop-demo) and must be destroyed before that loop.
//
// Scenarios (names as on the command line, see scenarioNames()):
//   timers    timer storm: timerCount timers pending, random delays up to timerMaxDelayMs
//   flood     microtask flood: floodSize self-requeuing microtasks (the checkpoint budget at work)
//   promises  promise chains: batches of promiseChainCount chains × promiseChainDepth then()s
//   blocking  a blockMs busy task on the loop thread, once a second (blockOnce(): once)
//   fastpath  fast-path switching: an idle fd registered / unregistered, modes Auto / Forced /
//             Disabled, one step every 500 ms (manual: fdRegistered, switchFastPath())
//   pingpong  socketpair ping-pong with pingPongBalls bytes in flight
//   calm      stops every scenario and releases its timers and fds, fast path back to Auto
//
// The counters are this controller's own (cumulative) plus a few gauges read from the loop
// without taking a snapshot (a snapshot resets the loop's "max since the last snapshot" gauges,
// which belong to the probe). statsChanged is emitted 10 times a second while any scenario runs,
// and whenever a one-shot finishes or a state changes.
#pragma once

#include "scenarios.h"

#include <QtCore/qobject.h>
#include <QtCore/qstringlist.h>
#include <QtCore/qtimer.h>

namespace libloop {
class Loop;
}

namespace libloop::demo {

class ScenarioController : public QObject {
    Q_OBJECT
    // Scenario toggles (a refused start leaves the toggle off and says why in `status`).
    Q_PROPERTY(bool timerStorm READ timerStorm WRITE setTimerStorm NOTIFY scenariosChanged)
    Q_PROPERTY(
        bool microtaskFlood READ microtaskFlood WRITE setMicrotaskFlood NOTIFY scenariosChanged)
    Q_PROPERTY(bool promiseChains READ promiseChains WRITE setPromiseChains NOTIFY scenariosChanged)
    Q_PROPERTY(bool blocking READ blocking WRITE setBlocking NOTIFY scenariosChanged)
    Q_PROPERTY(bool fastPathSwitching READ fastPathSwitching WRITE setFastPathSwitching NOTIFY
                   scenariosChanged)
    Q_PROPERTY(bool pingPong READ pingPong WRITE setPingPong NOTIFY scenariosChanged)
    Q_PROPERTY(bool active READ active NOTIFY scenariosChanged)
    Q_PROPERTY(QStringList runningScenarios READ runningScenarios NOTIFY scenariosChanged)

    // Parameters (clamped to the ranges below; a running scenario picks a change up at once).
    Q_PROPERTY(int timerCount READ timerCount WRITE setTimerCount NOTIFY parametersChanged)
    Q_PROPERTY(
        int timerMaxDelayMs READ timerMaxDelayMs WRITE setTimerMaxDelayMs NOTIFY parametersChanged)
    Q_PROPERTY(int floodSize READ floodSize WRITE setFloodSize NOTIFY parametersChanged)
    Q_PROPERTY(int promiseChainCount READ promiseChainCount WRITE setPromiseChainCount NOTIFY
                   parametersChanged)
    Q_PROPERTY(int promiseChainDepth READ promiseChainDepth WRITE setPromiseChainDepth NOTIFY
                   parametersChanged)
    Q_PROPERTY(int blockMs READ blockMs WRITE setBlockMs NOTIFY parametersChanged)
    Q_PROPERTY(int pingPongBalls READ pingPongBalls WRITE setPingPongBalls NOTIFY parametersChanged)

    // Fast path by hand.
    Q_PROPERTY(bool fdRegistered READ fdRegistered WRITE setFdRegistered NOTIFY statsChanged)
    Q_PROPERTY(QString fastPathMode READ fastPathMode NOTIFY statsChanged)

    // Live counters.
    Q_PROPERTY(qint64 timersPending READ timersPending NOTIFY statsChanged) // the whole loop's
    Q_PROPERTY(qint64 stormTimers READ stormTimers NOTIFY statsChanged)
    Q_PROPERTY(qint64 timersFired READ timersFired NOTIFY statsChanged)
    Q_PROPERTY(qint64 microtasksRun READ microtasksRun NOTIFY statsChanged)
    Q_PROPERTY(qint64 promisesSettled READ promisesSettled NOTIFY statsChanged)
    Q_PROPERTY(qint64 promiseBatches READ promiseBatches NOTIFY statsChanged)
    Q_PROPERTY(qint64 blocksDone READ blocksDone NOTIFY statsChanged)
    Q_PROPERTY(double lastBlockLatenessMs READ lastBlockLatenessMs NOTIFY statsChanged)
    Q_PROPERTY(qint64 roundTrips READ roundTrips NOTIFY statsChanged)
    Q_PROPERTY(qint64 registeredFds READ registeredFds NOTIFY statsChanged) // the whole loop's
    Q_PROPERTY(qint64 fastPathRefusals READ fastPathRefusals NOTIFY statsChanged)
    Q_PROPERTY(QString status READ status NOTIFY statusChanged)

    // The automatic tour (--cycle): every scenario in turn, `seconds` each, then round again.
    Q_PROPERTY(bool cycling READ cycling NOTIFY cycleChanged)
    Q_PROPERTY(QString cycleScenario READ cycleScenario NOTIFY cycleChanged)

public:
    // The loop must outlive the controller.
    explicit ScenarioController(libloop::Loop& loop, QObject* parent = nullptr);
    ~ScenarioController() override;

    // The loop of the calling thread's libloop dispatcher, or nullptr when the thread runs
    // another dispatcher (or none).
    static libloop::Loop* currentThreadLoop();
    // timers, flood, promises, blocking, fastpath, pingpong, calm.
    static QStringList scenarioNames();

    libloop::Loop& loop() const { return loop_; }

    // Starts a scenario by name ("calm" calms). False, with the reason in `status`, when the
    // name is unknown or the loop refused.
    Q_INVOKABLE bool start(const QString& name);
    Q_INVOKABLE void stop(const QString& name);
    Q_INVOKABLE bool isRunning(const QString& name) const;
    // Stops every scenario and the tour, releases their timers and fds, fast path back to Auto.
    Q_INVOKABLE void calm();

    // One-shots.
    Q_INVOKABLE bool blockOnce();
    Q_INVOKABLE bool runPromiseBatch();
    // "Auto", "Forced" or "Disabled" (any case). False when refused (Forced with an fd
    // registered) or unknown; the reason goes to `status`.
    Q_INVOKABLE bool switchFastPath(const QString& mode);

    Q_INVOKABLE void startCycle(double seconds);
    Q_INVOKABLE void stopCycle();

    bool timerStorm() const { return storm_.running(); }
    bool microtaskFlood() const { return flood_.running(); }
    bool promiseChains() const { return promises_.running(); }
    bool blocking() const { return blocker_.running(); }
    bool fastPathSwitching() const { return switcher_.running(); }
    bool pingPong() const { return pingPong_.running(); }
    bool active() const;
    QStringList runningScenarios() const;
    bool setTimerStorm(bool on);
    bool setMicrotaskFlood(bool on);
    bool setPromiseChains(bool on);
    bool setBlocking(bool on);
    bool setFastPathSwitching(bool on);
    bool setPingPong(bool on);

    int timerCount() const { return timerCount_; }
    int timerMaxDelayMs() const { return timerMaxDelayMs_; }
    int floodSize() const { return floodSize_; }
    int promiseChainCount() const { return promiseChainCount_; }
    int promiseChainDepth() const { return promiseChainDepth_; }
    int blockMs() const { return blockMs_; }
    int pingPongBalls() const { return pingPongBalls_; }
    void setTimerCount(int n);
    void setTimerMaxDelayMs(int ms);
    void setFloodSize(int n);
    void setPromiseChainCount(int n);
    void setPromiseChainDepth(int n);
    void setBlockMs(int ms);
    void setPingPongBalls(int n);

    static constexpr int kMaxTimerCount = 200000;
    static constexpr int kMaxTimerDelayMs = 10000;
    static constexpr int kMaxFloodSize = 100000;
    static constexpr int kMaxPromiseChains = 2000;
    static constexpr int kMaxPromiseDepth = 100;
    static constexpr int kMaxBlockMs = 5000;
    static constexpr int kMaxPingPongBalls = 64;

    bool fdRegistered() const { return switcher_.fdRegistered(); }
    bool setFdRegistered(bool on);
    QString fastPathMode() const;

    qint64 timersPending() const;
    qint64 stormTimers() const { return qint64(storm_.pending()); }
    qint64 timersFired() const { return qint64(storm_.fired()); }
    qint64 microtasksRun() const { return qint64(flood_.microtasksRun()); }
    qint64 promisesSettled() const { return qint64(promises_.settled()); }
    qint64 promiseBatches() const { return qint64(promises_.batches()); }
    qint64 blocksDone() const { return qint64(blocker_.blocks()); }
    double lastBlockLatenessMs() const { return blocker_.lastLatenessMs(); }
    qint64 roundTrips() const { return qint64(pingPong_.roundTrips()); }
    qint64 registeredFds() const;
    qint64 fastPathRefusals() const { return qint64(switcher_.refusals()); }
    QString status() const { return status_; }

    bool cycling() const { return cycleTimer_.isActive(); }
    QString cycleScenario() const { return cycleScenario_; }

signals:
    void scenariosChanged();
    void parametersChanged();
    void statsChanged();
    void statusChanged();
    void cycleChanged();
    void promiseBatchFinished();
    void blockFinished();

private:
    void setStatus(const QString& s);
    // After a scenario started or stopped: signals, and the 10 Hz refresh on or off.
    void scenariosUpdated();
    // Starts (or restarts) / stops a scenario; false with `status` set when refused.
    bool apply(const QString& name, bool on);
    void stopAll();
    void cycleStep();

    libloop::Loop& loop_;
    TimerStorm storm_;
    MicrotaskFlood flood_;
    PromiseChains promises_;
    Blocker blocker_;
    FastPathSwitcher switcher_;
    PingPong pingPong_;

    int timerCount_ = 5000;
    int timerMaxDelayMs_ = 1000;
    int floodSize_ = 2000;
    int promiseChainCount_ = 500;
    int promiseChainDepth_ = 20;
    int blockMs_ = 200;
    int pingPongBalls_ = 1;

    QString status_;
    QTimer refresh_;
    QTimer cycleTimer_;
    int cycleIndex_ = 0;
    QString cycleScenario_;
};

} // namespace libloop::demo
