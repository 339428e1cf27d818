// setTimeout & co. on QJSEngine / QQmlEngine over libloop's dispatcher (libloop/qt/jstimers.h).
#include <libloop/loop.h>
#include <libloop/qt/install.h>
#include <libloop/qt/jstimers.h>

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>
#include <QtQml/qjsengine.h>
#include <QtQml/qqmlcomponent.h>
#include <QtQml/qqmlengine.h>
#include <QtTest/qtest.h>

#include <atomic>
#include <memory>

using libloop::qt::installJsTimers;
using libloop::qt::JsError;

class TstQJSEngine : public QObject {
    Q_OBJECT
private slots:
    void mainThreadRunsLibloop() {
        QCOMPARE(QAbstractEventDispatcher::instance()->metaObject()->className(),
                 "libloop::qt::LoopEventDispatcher");
    }
    void timersRunWithExtraArguments() {
        QJSEngine engine;
        QVERIFY(installJsTimers(&engine));
        engine.evaluate("var got = []; setTimeout(function (a, b) { got.push(a + b); }, 1, 40, 2);"
                        "setImmediate(function (s) { got.push(s); }, 'imm');"
                        "queueMicrotask(function () { got.push('micro'); });");
        QTRY_COMPARE_WITH_TIMEOUT(engine.evaluate("got.length").toInt(), 3, 10000);
        // (Their order depends on when the loop first runs; the JS scenarios pin orders.)
        QCOMPARE(engine.evaluate("got.sort().join(',')").toString(),
                 QStringLiteral("42,imm,micro"));
    }
    void installTwiceReturnsTheSameHost() {
        QJSEngine engine;
        auto* a = installJsTimers(&engine);
        auto* b = installJsTimers(&engine);
        QVERIFY(a);
        QCOMPARE(a, b);
        QCOMPARE(a->parent(), &engine);
    }
    void nonFunctionCallbackThrowsTypeError() {
        QJSEngine engine;
        auto* host = installJsTimers(&engine);
        const QJSValue r = engine.evaluate(
            "var kinds = [];"
            "for (const f of [() => setTimeout(1), () => setInterval({}), () => setImmediate(),"
            "                 () => queueMicrotask('x')]) {"
            "  try { f(); kinds.push('none'); } catch (e) { kinds.push(e.name); }"
            "} kinds.join(',')");
        QCOMPARE(r.toString(), QStringLiteral("TypeError,TypeError,TypeError,TypeError"));
        QCOMPARE(host->pending(), 0);
    }
    void callbackErrorReachesLoopHookWithStack() {
        QJSEngine engine;
        auto* host = installJsTimers(&engine);
        QString what;
        int errors = 0;
        host->loop().setErrorHook([&](std::exception_ptr e, libloop::CallbackKind) {
            ++errors;
            try {
                std::rethrow_exception(e);
            } catch (const JsError& js) {
                what = js.message() + QLatin1Char('|') + js.stack();
            } catch (...) {
                what = QStringLiteral("not a JsError");
            }
        });
        engine.evaluate("var runs = 0;"
                        "var iv = setInterval(function failing() {"
                        "  if (++runs === 3) clearInterval(iv);"
                        "  throw new RangeError('bad ' + runs);"
                        "}, 1);",
                        QStringLiteral("script.js"));
        QTRY_COMPARE_WITH_TIMEOUT(errors, 3, 10000); // the interval went on after each throw
        QVERIFY2(what.startsWith(QStringLiteral("RangeError: bad 3|")), qPrintable(what));
        QVERIFY2(what.contains(QStringLiteral("failing")), qPrintable(what));
        QVERIFY2(what.contains(QStringLiteral("script.js")), qPrintable(what));
        host->loop().setErrorHook({});
        QCOMPARE(host->pending(), 0);
    }
    void destroyingTheEngineClearsItsTimers() {
        libloop::Loop* loop = nullptr;
        std::size_t before = 0;
        {
            auto engine = std::make_unique<QJSEngine>();
            auto* host = installJsTimers(engine.get());
            loop = &host->loop();
            before = loop->pendingTimers();
            engine->evaluate("setTimeout(function () {}, 100000); setInterval(function () {}, 5);");
            QCOMPARE(host->pending(), 2);
            QCOMPARE(loop->pendingTimers(), before + 2);
        }
        QCOMPARE(loop->pendingTimers(), before); // cancelled with the engine, on this thread
    }
    void qmlEngineGetsTheGlobals() {
        QQmlEngine engine;
        QVERIFY(installJsTimers(&engine));
        QQmlComponent component(&engine);
        component.setData("import QtQml\n"
                          "QtObject {\n"
                          "  property int value: 0\n"
                          "  Component.onCompleted: setTimeout((v) => value = v, 1, 42)\n"
                          "}\n",
                          QUrl());
        std::unique_ptr<QObject> obj(component.create());
        QVERIFY2(obj, qPrintable(component.errorString()));
        QTRY_COMPARE_WITH_TIMEOUT(obj->property("value").toInt(), 42, 10000);
    }
    void refusedOnAThreadWithoutLibloop() {
        QThread worker; // Qt's own dispatcher
        worker.start();
        QObject onWorker; // a context object living on the worker thread
        onWorker.moveToThread(&worker);
        QString error;
        bool installed = true;
        QMetaObject::invokeMethod(
            &onWorker,
            [&] {
                QJSEngine engine;
                installed = installJsTimers(&engine, &error) != nullptr;
            },
            Qt::BlockingQueuedConnection);
        worker.quit();
        worker.wait();
        QVERIFY(!installed);
        QVERIFY2(error.contains(QStringLiteral("does not run libloop's dispatcher")),
                 qPrintable(error));
    }
    void refusedFromAnotherThread() {
        QJSEngine engine;
        QString error;
        std::atomic<bool> installed{true};
        std::unique_ptr<QThread> t(
            QThread::create([&] { installed = installJsTimers(&engine, &error) != nullptr; }));
        t->start();
        t->wait();
        QVERIFY(!installed);
        QVERIFY2(error.contains(QStringLiteral("engine's thread")), qPrintable(error));
    }
    void workerThreadOnLibloop() {
        QThread worker;
        QVERIFY(libloop::qt::installOn(&worker));
        worker.start();
        QObject context; // lives on the worker thread
        context.moveToThread(&worker);
        std::atomic<int> result{0};
        std::atomic<bool> onWorker{false};
        QJSEngine* engine = nullptr;
        QMetaObject::invokeMethod(
            &context,
            [&] {
                engine = new QJSEngine;
                auto* host = installJsTimers(engine);
                if (!host)
                    return;
                engine->globalObject().setProperty("done", engine->newQObject(new QObject(engine)));
                engine->evaluate("var r = 0; setTimeout(() => { r = 7; }, 1);");
                QObject::connect(QAbstractEventDispatcher::instance(),
                                 &QAbstractEventDispatcher::aboutToBlock, engine, [&, engine] {
                                     if (engine->evaluate("r").toInt() == 7) {
                                         result = 7;
                                         onWorker = QThread::currentThread() == engine->thread();
                                     }
                                 });
            },
            Qt::BlockingQueuedConnection);
        QTRY_COMPARE_WITH_TIMEOUT(result.load(), 7, 10000);
        QVERIFY(onWorker.load());
        QMetaObject::invokeMethod(
            &context, [&] { delete engine; }, Qt::BlockingQueuedConnection);
        worker.quit();
        worker.wait();
    }
};

int main(int argc, char** argv) {
    libloop::qt::install();
    QCoreApplication app(argc, argv);
    TstQJSEngine t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_qjsengine.moc"
