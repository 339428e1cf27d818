#include "scenariocontroller.h"

#include <libloop/loop.h>
#include <libloop/qt/loopeventdispatcher.h>

#include <QtCore/qabstracteventdispatcher.h>

#include <algorithm>

namespace libloop::demo {

namespace {

constexpr int kRefreshMs = 100;
constexpr std::uint32_t kBlockPeriodMs = 1000;
constexpr std::uint32_t kFastPathStepMs = 500;

QString describe(Status s) {
    return QString::fromUtf8(s.message());
}

} // namespace

ScenarioController::ScenarioController(libloop::Loop& loop, QObject* parent)
    : QObject(parent), loop_(loop), storm_(loop), flood_(loop), promises_(loop), blocker_(loop),
      switcher_(loop), pingPong_(loop) {
    refresh_.setInterval(kRefreshMs);
    connect(&refresh_, &QTimer::timeout, this, &ScenarioController::statsChanged);
    connect(&cycleTimer_, &QTimer::timeout, this, &ScenarioController::cycleStep);
    promises_.setNotify([this] {
        emit promiseBatchFinished();
        emit statsChanged();
    });
    blocker_.setNotify([this] {
        emit blockFinished();
        emit statsChanged();
    });
    switcher_.setNotify([this] {
        setStatus(QStringLiteral("Fast path: ") + QString::fromStdString(switcher_.lastStep()));
        emit statsChanged();
    });
    setStatus(QStringLiteral("Calm: nothing running. Pick a scenario."));
}

ScenarioController::~ScenarioController() {
    // Stops every scenario while the signals can still be delivered; the members' destructors
    // would stop them too.
    cycleTimer_.stop();
    refresh_.stop();
    stopAll();
}

libloop::Loop* ScenarioController::currentThreadLoop() {
    auto* d = qobject_cast<libloop::qt::LoopEventDispatcher*>(QAbstractEventDispatcher::instance());
    return d ? &d->loop() : nullptr;
}

QStringList ScenarioController::scenarioNames() {
    return {QStringLiteral("timers"),   QStringLiteral("flood"),    QStringLiteral("promises"),
            QStringLiteral("blocking"), QStringLiteral("fastpath"), QStringLiteral("pingpong"),
            QStringLiteral("calm")};
}

bool ScenarioController::start(const QString& name) {
    if (!scenarioNames().contains(name)) {
        setStatus(QStringLiteral("Unknown scenario '%1' (valid: %2)")
                      .arg(name, scenarioNames().join(QStringLiteral(", "))));
        return false;
    }
    if (name == QStringLiteral("calm")) {
        calm();
        return true;
    }
    return apply(name, true);
}

void ScenarioController::stop(const QString& name) {
    if (name == QStringLiteral("calm"))
        return;
    (void)apply(name, false);
}

bool ScenarioController::isRunning(const QString& name) const {
    return runningScenarios().contains(name);
}

bool ScenarioController::apply(const QString& name, bool on) {
    Status s;
    QString what;
    if (name == QStringLiteral("timers")) {
        if (!on) {
            storm_.stop();
            what = QStringLiteral("Timer storm stopped: its timers are cancelled.");
        } else {
            s = storm_.start(std::uint32_t(timerCount_), std::uint32_t(timerMaxDelayMs_));
            what = QStringLiteral("Timer storm: %1 timers pending, random delays 1–%2 ms: watch "
                                  "the timer heap.")
                       .arg(timerCount_)
                       .arg(timerMaxDelayMs_);
        }
    } else if (name == QStringLiteral("flood")) {
        if (!on) {
            flood_.stop();
            what = QStringLiteral("Microtask flood stopped.");
        } else {
            s = flood_.start(std::uint32_t(floodSize_));
            what = QStringLiteral("Microtask flood: %1 self-requeuing microtasks. The checkpoint "
                                  "budget lets tasks and input in: the UI stays responsive.")
                       .arg(floodSize_);
        }
    } else if (name == QStringLiteral("promises")) {
        if (!on) {
            promises_.stop();
            what = QStringLiteral("Promise chains stopped.");
        } else {
            s = promises_.start([this] { return std::uint32_t(promiseChainCount_); },
                                [this] { return std::uint32_t(promiseChainDepth_); });
            what = QStringLiteral("Promise chains: batches of %1 chains × %2 then() steps.")
                       .arg(promiseChainCount_)
                       .arg(promiseChainDepth_);
        }
    } else if (name == QStringLiteral("blocking")) {
        if (!on) {
            blocker_.stop();
            what = QStringLiteral("Blocking stopped.");
        } else {
            s = blocker_.start([this] { return std::uint32_t(blockMs_); }, kBlockPeriodMs);
            what = QStringLiteral("Blocking: %1 ms of busy work on the loop thread every second: "
                                  "watch latency and lateness spike.")
                       .arg(blockMs_);
        }
    } else if (name == QStringLiteral("fastpath")) {
        if (!on) {
            switcher_.stop();
            what = QStringLiteral("Fast-path switching stopped: fd closed, mode Auto.");
        } else {
            s = switcher_.start(kFastPathStepMs);
            what = QStringLiteral("Fast path: ") + QString::fromStdString(switcher_.lastStep());
        }
    } else if (name == QStringLiteral("pingpong")) {
        if (!on) {
            pingPong_.stop();
            what = QStringLiteral("Ping-pong stopped: sockets closed.");
        } else {
            s = pingPong_.start(std::uint32_t(pingPongBalls_));
            what = QStringLiteral("Ping-pong: %1 byte(s) bouncing over a socketpair: fd callbacks "
                                  "as fast as epoll delivers them.")
                       .arg(pingPongBalls_);
        }
    } else {
        setStatus(QStringLiteral("Unknown scenario '%1'").arg(name));
        return false;
    }
    if (s.ok())
        setStatus(what);
    else if (s == Errc::FastPathConflict)
        setStatus(QStringLiteral("%1 refused: the fast path is Forced, so no fd may be registered "
                                 "(%2). Switch to Auto first.")
                      .arg(name, describe(s)));
    else
        setStatus(QStringLiteral("%1 refused: %2").arg(name, describe(s)));
    scenariosUpdated();
    return s.ok();
}

void ScenarioController::stopAll() {
    storm_.stop();
    flood_.stop();
    promises_.stop();
    blocker_.stop();
    switcher_.stop(); // also: the idle fd closed, fast path back to Auto
    pingPong_.stop();
}

void ScenarioController::calm() {
    const bool wasCycling = cycling();
    cycleTimer_.stop();
    cycleScenario_.clear();
    stopAll();
    setStatus(QStringLiteral("Calm: every scenario stopped, timers cancelled, fds closed, fast "
                             "path Auto."));
    scenariosUpdated();
    if (wasCycling)
        emit cycleChanged();
}

bool ScenarioController::blockOnce() {
    const Status s = blocker_.blockOnce(std::uint32_t(blockMs_));
    setStatus(s.ok() ? QStringLiteral("Blocking the loop thread for %1 ms…").arg(blockMs_)
                     : QStringLiteral("Block refused: %1").arg(describe(s)));
    return s.ok();
}

bool ScenarioController::runPromiseBatch() {
    const Status s =
        promises_.runBatch(std::uint32_t(promiseChainCount_), std::uint32_t(promiseChainDepth_));
    setStatus(s.ok() ? QStringLiteral("One batch: %1 promise chains × %2 then() steps.")
                           .arg(promiseChainCount_)
                           .arg(promiseChainDepth_)
                     : QStringLiteral("Promise batch refused: %1").arg(describe(s)));
    return s.ok();
}

bool ScenarioController::switchFastPath(const QString& mode) {
    const QString m = mode.toLower();
    FastPathMode wanted;
    if (m == QStringLiteral("auto"))
        wanted = FastPathMode::Auto;
    else if (m == QStringLiteral("forced"))
        wanted = FastPathMode::Forced;
    else if (m == QStringLiteral("disabled"))
        wanted = FastPathMode::Disabled;
    else {
        setStatus(QStringLiteral("Unknown fast-path mode '%1' (Auto, Forced, Disabled)").arg(mode));
        return false;
    }
    const Status s = switcher_.setMode(wanted);
    if (s.ok())
        setStatus(QStringLiteral("Fast path: %1.").arg(fastPathMode()));
    else if (s == Errc::FastPathConflict)
        setStatus(
            QStringLiteral("Forced refused: %1 fd(s) registered, and the loop must watch them "
                           "with epoll (%2).")
                .arg(registeredFds())
                .arg(describe(s)));
    else
        setStatus(QStringLiteral("Fast-path mode refused: %1").arg(describe(s)));
    emit statsChanged();
    return s.ok();
}

bool ScenarioController::setFdRegistered(bool on) {
    const Status s = switcher_.setFdRegistered(on);
    if (s.ok())
        setStatus(on ? QStringLiteral("Idle fd registered: in Auto the loop now waits in epoll.")
                     : QStringLiteral("Idle fd unregistered and closed."));
    else if (s == Errc::FastPathConflict)
        setStatus(QStringLiteral("Registering an fd refused: the fast path is Forced (%1).")
                      .arg(describe(s)));
    else
        setStatus(
            QStringLiteral("Fd %1 failed: %2")
                .arg(on ? QStringLiteral("registration") : QStringLiteral("removal"), describe(s)));
    emit statsChanged();
    return s.ok();
}

QString ScenarioController::fastPathMode() const {
    switch (loop_.fastPathMode()) {
    case FastPathMode::Auto:
        return QStringLiteral("Auto");
    case FastPathMode::Forced:
        return QStringLiteral("Forced");
    case FastPathMode::Disabled:
        return QStringLiteral("Disabled");
    }
    return QStringLiteral("?");
}

qint64 ScenarioController::timersPending() const {
    return qint64(loop_.pendingTimers());
}

qint64 ScenarioController::registeredFds() const {
    return qint64(loop_.registeredFds());
}

bool ScenarioController::active() const {
    return !runningScenarios().isEmpty();
}

QStringList ScenarioController::runningScenarios() const {
    QStringList r;
    if (storm_.running())
        r << QStringLiteral("timers");
    if (flood_.running())
        r << QStringLiteral("flood");
    if (promises_.running())
        r << QStringLiteral("promises");
    if (blocker_.running())
        r << QStringLiteral("blocking");
    if (switcher_.running())
        r << QStringLiteral("fastpath");
    if (pingPong_.running())
        r << QStringLiteral("pingpong");
    return r;
}

bool ScenarioController::setTimerStorm(bool on) {
    return apply(QStringLiteral("timers"), on);
}
bool ScenarioController::setMicrotaskFlood(bool on) {
    return apply(QStringLiteral("flood"), on);
}
bool ScenarioController::setPromiseChains(bool on) {
    return apply(QStringLiteral("promises"), on);
}
bool ScenarioController::setBlocking(bool on) {
    return apply(QStringLiteral("blocking"), on);
}
bool ScenarioController::setFastPathSwitching(bool on) {
    return apply(QStringLiteral("fastpath"), on);
}
bool ScenarioController::setPingPong(bool on) {
    return apply(QStringLiteral("pingpong"), on);
}

// A parameter change restarts the scenarios that fixed it at start; promise chains and blocking
// read theirs before each batch / block.
void ScenarioController::setTimerCount(int n) {
    n = std::clamp(n, 1, kMaxTimerCount);
    if (n == timerCount_)
        return;
    timerCount_ = n;
    emit parametersChanged();
    if (storm_.running())
        (void)apply(QStringLiteral("timers"), true);
}

void ScenarioController::setTimerMaxDelayMs(int ms) {
    ms = std::clamp(ms, 1, kMaxTimerDelayMs);
    if (ms == timerMaxDelayMs_)
        return;
    timerMaxDelayMs_ = ms;
    emit parametersChanged();
    if (storm_.running())
        (void)apply(QStringLiteral("timers"), true);
}

void ScenarioController::setFloodSize(int n) {
    n = std::clamp(n, 1, kMaxFloodSize);
    if (n == floodSize_)
        return;
    floodSize_ = n;
    emit parametersChanged();
    if (flood_.running())
        (void)apply(QStringLiteral("flood"), true);
}

void ScenarioController::setPromiseChainCount(int n) {
    n = std::clamp(n, 1, kMaxPromiseChains);
    if (n == promiseChainCount_)
        return;
    promiseChainCount_ = n;
    emit parametersChanged();
}

void ScenarioController::setPromiseChainDepth(int n) {
    n = std::clamp(n, 1, kMaxPromiseDepth);
    if (n == promiseChainDepth_)
        return;
    promiseChainDepth_ = n;
    emit parametersChanged();
}

void ScenarioController::setBlockMs(int ms) {
    ms = std::clamp(ms, 1, kMaxBlockMs);
    if (ms == blockMs_)
        return;
    blockMs_ = ms;
    emit parametersChanged();
}

void ScenarioController::setPingPongBalls(int n) {
    n = std::clamp(n, 1, kMaxPingPongBalls);
    if (n == pingPongBalls_)
        return;
    pingPongBalls_ = n;
    emit parametersChanged();
    if (pingPong_.running())
        (void)apply(QStringLiteral("pingpong"), true);
}

void ScenarioController::startCycle(double seconds) {
    const int ms = int(std::clamp(seconds, 0.1, 3600.0) * 1000);
    cycleTimer_.setInterval(ms);
    cycleTimer_.start();
    cycleIndex_ = 0;
    cycleStep();
}

void ScenarioController::stopCycle() {
    if (!cycling())
        return;
    cycleTimer_.stop();
    cycleScenario_.clear();
    emit cycleChanged();
}

// One step of the tour: calm, then the next scenario (the last one is "calm" itself).
void ScenarioController::cycleStep() {
    const QStringList names = scenarioNames();
    const QString name = names.at(cycleIndex_ % names.size());
    cycleIndex_ = (cycleIndex_ + 1) % names.size();
    stopAll();
    cycleScenario_ = name;
    if (name == QStringLiteral("calm")) {
        setStatus(QStringLiteral("Tour: calm (everything stopped)."));
        scenariosUpdated();
    } else {
        (void)apply(name, true);
    }
    emit cycleChanged();
}

void ScenarioController::setStatus(const QString& s) {
    if (s == status_)
        return;
    status_ = s;
    emit statusChanged();
}

void ScenarioController::scenariosUpdated() {
    if (active()) {
        if (!refresh_.isActive())
            refresh_.start();
    } else {
        refresh_.stop();
    }
    emit scenariosChanged();
    emit statsChanged();
}

} // namespace libloop::demo
