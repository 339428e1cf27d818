// setTimeout & co. for QJSEngine and QML engines, on the libloop loop of the engine's thread.
//
//   QJSEngine engine;                                   // on a thread running libloop's dispatcher
//   auto* timers = libloop::qt::installJsTimers(&engine);
//   engine.evaluate("setTimeout((a, b) => console.log(a + b), 10, 1, 2)");
//
// Installs the globals setTimeout, setInterval, setImmediate, clearTimeout, clearInterval,
// clearImmediate and queueMicrotask with the semantics of libloop::JsTimers (js_timers.h):
// browser ids, the HTML nesting clamp, WebIDL delay conversion (delays go through Number()),
// setImmediate in the check phase. Extra arguments are passed to the callback; a callback that is
// not a function throws a TypeError; running out of ids throws a RangeError.
//
// An exception thrown by a callback (any value, Error or not) does not stop the loop: it is
// thrown on as a libloop::qt::JsError from the callback, so it reaches the Loop's error hook
// (LoopOptions::errorHook / Loop::setErrorHook; by default one line on stderr) with the JS message
// and stack, and the loop goes on (an interval keeps running).
#pragma once

#include <QtCore/qobject.h>
#include <QtCore/qstring.h>
#include <QtQml/qjsvalue.h>

#include <memory>
#include <stdexcept>
#include <string>

class QJSEngine;

namespace libloop {
class JsTimers;
class Loop;
} // namespace libloop

namespace libloop::qt {

// A JavaScript exception escaping a timer, immediate or microtask callback.
class JsError : public std::runtime_error {
public:
    JsError(const QString& message, const QString& stack);
    const QString& message() const noexcept { return message_; }
    const QString& stack() const noexcept { return stack_; } // empty when not an Error object

private:
    QString message_, stack_;
};

// Owns the timers of one engine (a child of the engine: it goes away with it, clearing every
// pending timer). Lives on the engine's thread.
struct V4Jobs;

class JsTimersHost : public QObject {
    Q_OBJECT
    // queueMicrotask and Qt's Promise reactions share one FIFO drained at every loop checkpoint
    // (engines on the main thread); otherwise queueMicrotask uses the loop's own queue.
    Q_PROPERTY(bool v4Microtasks READ v4Microtasks CONSTANT)
public:
    ~JsTimersHost() override;

    libloop::Loop& loop() const;
    libloop::JsTimers& timers() const;
    // Timeouts, intervals and immediates not yet run (one-shots) nor cleared.
    int pending() const;
    bool v4Microtasks() const;

    // Called by the installed globals (not meant for direct use).
    Q_INVOKABLE double setTimer(int kind, const QJSValue& callback, double delay,
                                const QJSValue& args);
    Q_INVOKABLE void clearTimer(int kind, double id);
    Q_INVOKABLE void queueMicrotask(const QJSValue& callback);
    Q_INVOKABLE void microtaskFailed(const QJSValue& error);

private:
    friend JsTimersHost* installJsTimers(QJSEngine*, QString*);
    JsTimersHost(QJSEngine* engine, libloop::Loop& loop);
    void invoke(const QJSValue& callback, const QJSValue& args);

    QJSEngine* engine_;
    QJSValue invoker_;
    std::unique_ptr<libloop::JsTimers> timers_;
    std::shared_ptr<V4Jobs> v4Jobs_;
};

// Installs the globals on `engine` (a QJSEngine or a QQmlEngine), backed by the Loop of the
// engine's thread. Returns nullptr (and says why in *error when given, else in a warning) when
// that thread does not run a libloop::qt::LoopEventDispatcher, or when called from another
// thread. Installing twice returns the existing host.
JsTimersHost* installJsTimers(QJSEngine* engine, QString* error = nullptr);

} // namespace libloop::qt
