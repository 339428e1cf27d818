// Installing libloop's dispatcher into a Qt application.
//
//   int main(int argc, char** argv) {
//       libloop::qt::install();          // before the application object
//       QCoreApplication app(argc, argv);
//       ...
//   }
//
//   QThread worker;
//   libloop::qt::installOn(&worker);     // before start()
//   worker.start();
//
// Check with QAbstractEventDispatcher::instance()->metaObject()->className():
// "libloop::qt::LoopEventDispatcher".
#pragma once

class QThread;

namespace libloop::qt {

// Installs a LoopEventDispatcher (its loop named "qt:main") for the main thread. Must run before
// the QCoreApplication is constructed (the application then owns it). Returns false, with a
// warning, when an application object already exists or the main thread already has a dispatcher
// (which is left in place).
bool install();

// Installs a LoopEventDispatcher on `thread`, which must not be running yet. Its loop is named
// "qt:" + the thread's objectName() at this call ("qt:thread" when it has none). Returns false,
// with a warning, when it is running or already has a dispatcher of its own (which is left in
// place).
bool installOn(QThread* thread);

} // namespace libloop::qt
