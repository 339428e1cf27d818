// setTimeout & co. for QJSEngine: a thin JS shim over libloop::JsTimers (see jstimers.h).
//
// The shim checks arguments the way browsers do (TypeError for a non-function callback, Number()
// for delays and ids) and calls the host; callbacks are invoked through a JS helper that catches
// whatever they throw, because QJSValue::call() cannot tell a thrown non-Error value from a
// returned one. Callbacks (QJSValues) are only run and released on the engine's thread, which is
// the loop thread.
#include <libloop/js_timers.h>
#include <libloop/loop.h>
#include <libloop/qt/jstimers.h>
#include <libloop/qt/loopeventdispatcher.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>
#include <QtQml/qjsengine.h>

#include <QtCore/qregularexpression.h>
#include <QtCore/qstringlist.h>

#include <cmath>
#include <deque>
#include <map>

namespace libloop::qt {

namespace {

enum Kind { Timeout = 0, Interval = 1, Immediate = 2 };

constexpr const char* kShim = R"JS(
(function (host) {
    'use strict';
    function invoke(cb, args) {
        try {
            cb.apply(undefined, args);
            return undefined;
        } catch (e) {
            return { thrown: e };
        }
    }
    function callable(cb, name) {
        if (typeof cb !== 'function')
            throw new TypeError(name + ': the callback must be a function, not ' +
                                (cb === null ? 'null' : typeof cb));
    }
    return {
        setTimeout: function setTimeout(cb, delay, ...args) {
            callable(cb, 'setTimeout');
            return host.setTimer(0, cb, Number(delay), args);
        },
        setInterval: function setInterval(cb, delay, ...args) {
            callable(cb, 'setInterval');
            return host.setTimer(1, cb, Number(delay), args);
        },
        setImmediate: function setImmediate(cb, ...args) {
            callable(cb, 'setImmediate');
            return host.setTimer(2, cb, 0, args);
        },
        clearTimeout: function clearTimeout(id) { host.clearTimer(0, Number(id)); },
        clearInterval: function clearInterval(id) { host.clearTimer(1, Number(id)); },
        clearImmediate: function clearImmediate(id) { host.clearTimer(2, Number(id)); },
        queueMicrotask: function queueMicrotask(cb) {
            callable(cb, 'queueMicrotask');
            if (!host.v4Microtasks)
                return host.queueMicrotask(cb);
            // One FIFO with V4's own promise reactions (drained at every loop checkpoint).
            Promise.resolve().then(function () {
                const r = invoke(cb, []);
                if (r !== undefined)
                    host.microtaskFailed(r.thrown);
            });
        },
        invoke: invoke
    };
})
)JS";

constexpr const char* kGlobals[] = {"setTimeout",    "setInterval",   "setImmediate",
                                    "clearTimeout",  "clearInterval", "clearImmediate",
                                    "queueMicrotask"};

// The shim's frames are dropped from the stacks users see.
constexpr const char* kShimFile = "libloop-jstimers-shim.js";

QString userStack(const QJSValue& error) {
    if (!error.isError())
        return {};
    QStringList lines = error.property(QStringLiteral("stack")).toString().split(QLatin1Char('\n'));
    // V4 names the shim's frames with an empty location ("invoke@:31").
    static const QRegularExpression shimFrame(QStringLiteral("^[^@]*@(:\\d+)?$"));
    lines.removeIf([](const QString& l) {
        return l.contains(QLatin1String(kShimFile)) || shimFrame.match(l).hasMatch();
    });
    return lines.join(QLatin1Char('\n'));
}

// V4 (Qt 6.4) runs each promise reaction as a posted event of this type to an internal handler
// object; a reaction queued while they are delivered waits for the next sendPostedEvents().
constexpr QEvent::Type kV4ReactionEvent = QEvent::Type(65535);

// Counts V4 reaction deliveries on the main thread (an application event filter sees every
// event sent to a main-thread object).
class ReactionCounter : public QObject {
public:
    bool eventFilter(QObject*, QEvent* e) override {
        if (e->type() == kV4ReactionEvent)
            ++delivered;
        return false;
    }
    quint64 delivered = 0;
};

QString describe(libloop::Status s) {
    return QString::fromUtf8(s.message());
}

} // namespace

// Drains V4's promise reactions at every checkpoint of one loop (the main thread's), so
// queueMicrotask (routed through V4's queue) and Promise.then share one FIFO run at the
// checkpoints, as in browsers. Shared by every host on that loop; owned by the loop's hook.
struct V4Jobs {
    ReactionCounter counter;
    std::deque<JsError> errors; // failures of queueMicrotask callbacks, reported by the hook

    static std::shared_ptr<V4Jobs> forLoop(libloop::Loop& loop) {
        static std::map<std::uint64_t, std::weak_ptr<V4Jobs>> perLoop; // main thread only
        if (auto existing = perLoop[loop.id()].lock())
            return existing;
        auto jobs = std::make_shared<V4Jobs>();
        QCoreApplication::instance()->installEventFilter(&jobs->counter);
        // One pass delivers the reactions queued so far; true when any ran (then the loop
        // runs its microtasks and asks again, so reactions queued meanwhile run too).
        libloop::Status s = loop.setCheckpointHook([jobs]() -> bool {
            const quint64 before = jobs->counter.delivered;
            QCoreApplication::sendPostedEvents(nullptr, kV4ReactionEvent);
            if (!jobs->errors.empty()) {
                JsError e = std::move(jobs->errors.front());
                jobs->errors.pop_front();
                throw e;
            }
            return jobs->counter.delivered != before;
        });
        if (!s)
            return nullptr;
        perLoop[loop.id()] = jobs;
        return jobs;
    }
};

JsError::JsError(const QString& message, const QString& stack)
    : std::runtime_error(
          ("Uncaught " + message + (stack.isEmpty() ? QString() : "\n" + stack)).toStdString()),
      message_(message), stack_(stack) {}

JsTimersHost::JsTimersHost(QJSEngine* engine, libloop::Loop& loop)
    : QObject(engine), engine_(engine), timers_(std::make_unique<libloop::JsTimers>(loop)) {
    if (QCoreApplication::instance() && engine->thread() == QCoreApplication::instance()->thread())
        v4Jobs_ = V4Jobs::forLoop(loop);
}

bool JsTimersHost::v4Microtasks() const {
    return bool(v4Jobs_);
}

void JsTimersHost::microtaskFailed(const QJSValue& error) {
    if (v4Jobs_)
        v4Jobs_->errors.emplace_back(error.toString(), userStack(error));
}

JsTimersHost::~JsTimersHost() = default;

libloop::Loop& JsTimersHost::loop() const {
    return timers_->loop();
}

libloop::JsTimers& JsTimersHost::timers() const {
    return *timers_;
}

int JsTimersHost::pending() const {
    return int(timers_->pending());
}

void JsTimersHost::invoke(const QJSValue& callback, const QJSValue& args) {
    const QJSValue r = invoker_.call({callback, args});
    if (r.isObject() && r.hasOwnProperty(QStringLiteral("thrown"))) {
        const QJSValue e = r.property(QStringLiteral("thrown"));
        throw JsError(e.toString(), userStack(e));
    }
    if (r.isError()) // the invoker itself failed (e.g. the engine ran out of stack)
        throw JsError(r.toString(), userStack(r));
}

double JsTimersHost::setTimer(int kind, const QJSValue& callback, double delay,
                              const QJSValue& args) {
    auto run = [this, callback, args] { invoke(callback, args); };
    libloop::Result<std::uint64_t> r = kind == Immediate ? timers_->setImmediate(std::move(run))
                                       : kind == Interval
                                           ? timers_->setInterval(std::move(run), delay)
                                           : timers_->setTimeout(std::move(run), delay);
    if (!r) {
        engine_->throwError(r.code() == libloop::Errc::IdsExhausted ? QJSValue::RangeError
                                                                    : QJSValue::GenericError,
                            QStringLiteral("cannot schedule: ") + describe(r.status()));
        return 0;
    }
    return double(r.value()); // exact: ids are ≤ 2^53 − 1
}

void JsTimersHost::clearTimer(int kind, double id) {
    // An id that is not a valid timer id (NaN, fractional, out of range) names no timer.
    if (!(id >= 1) || id > double(libloop::kMaxJsTimerId) || std::floor(id) != id)
        return;
    const auto n = std::uint64_t(id);
    if (kind == Immediate)
        timers_->clearImmediate(n);
    else
        timers_->clearTimeout(n);
}

void JsTimersHost::queueMicrotask(const QJSValue& callback) {
    libloop::Status s =
        timers_->queueMicrotask([this, callback] { invoke(callback, engine_->newArray(0)); });
    if (!s)
        engine_->throwError(QStringLiteral("queueMicrotask: ") + describe(s));
}

JsTimersHost* installJsTimers(QJSEngine* engine, QString* error) {
    auto fail = [error](const QString& why) -> JsTimersHost* {
        if (error)
            *error = why;
        else
            qWarning("libloop: installJsTimers: %s", qPrintable(why));
        return nullptr;
    };
    if (!engine)
        return fail(QStringLiteral("no engine"));
    if (QThread::currentThread() != engine->thread())
        return fail(QStringLiteral("must be called on the engine's thread"));
    if (auto* host = engine->findChild<JsTimersHost*>(QString(), Qt::FindDirectChildrenOnly))
        return host;
    auto* dispatcher =
        qobject_cast<LoopEventDispatcher*>(QAbstractEventDispatcher::instance(engine->thread()));
    if (!dispatcher)
        return fail(QStringLiteral("the engine's thread does not run libloop's dispatcher "
                                   "(call libloop::qt::install() before the application object, "
                                   "or installOn() before starting the thread)"));
    auto* host = new JsTimersHost(engine, dispatcher->loop());
    const QJSValue api =
        engine->evaluate(QString::fromUtf8(kShim)).call({engine->newQObject(host)});
    if (api.isError()) {
        delete host;
        return fail(QStringLiteral("the timer shim failed: ") + api.toString());
    }
    host->invoker_ = api.property(QStringLiteral("invoke"));
    QJSValue global = engine->globalObject();
    for (const char* name : kGlobals)
        global.setProperty(QString::fromLatin1(name), api.property(QString::fromLatin1(name)));
    return host;
}

} // namespace libloop::qt
