// loop-inspector's window: the Qt Quick UI (QML module LibloopInspector, qml/Inspector) on a
// QApplication, driven by an InspectorController.
#pragma once

#include "options.h"

class QQmlApplicationEngine;
class QQuickWindow;

namespace libloop::inspector {

class InspectorController;

// Registers the types, loads qrc:/LibloopInspector/Main.qml with `controller` as its
// `inspector` property, and returns the window (nullptr with a warning on failure).
QQuickWindow* loadInspectorUi(QQmlApplicationEngine& engine, InspectorController* controller);

// Starts what the command line asks for: --replay FILE (then --speed, and --play plays it from the
// start), else --pid / --socket, else the only process with a probe; then --record FILE. false
// with *error (the controller's message) when one of them failed.
bool startFromOptions(InspectorController* controller, const Options& options, QString* error);

// Writes DIR/inspector.png (the window, grabbed while the loop runs) and DIR/plot-<kind>.png for
// every plot. Returns false (with a message on stderr) when something could not be written.
bool writeScreenshots(QQuickWindow* window, InspectorController* controller, const QString& dir);

// Runs the UI on the existing QApplication until the window is closed (or, with --screenshot,
// until the screenshots are written). Returns the exit code.
int runGui(const Options& options);

} // namespace libloop::inspector
