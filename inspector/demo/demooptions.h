// loop-demo's command line (the options of the application itself; Qt's own, such as
// -platform, are left to QGuiApplication).
#pragma once

#include <QtCore/qstring.h>
#include <QtCore/qstringlist.h>

namespace libloop::demo {

struct DemoOptions {
    QStringList scenarios;       // --scenario NAME[,NAME...] (repeatable), started in this order
    double cycleSeconds = 0;     // --cycle SECONDS: the tour through every scenario; 0 = off
    double quitAfterSeconds = 0; // --quit-after SECONDS; 0 = run until closed
    QString screenshotPath;      // --screenshot FILE: grabbed shortly before quitting
    int timerCount = -1;         // --timers N       (-1: the controller's default)
    int floodSize = -1;          // --flood-size N
    int blockMs = -1;            // --block-ms MS
    bool help = false;           // -h, --help
};

// When there is a screenshot but no --quit-after, the demo quits after this long.
inline constexpr double kDefaultScreenshotQuitSeconds = 3.0;

// Parses `args` (args[0] is the program). With `allowUnknown`, arguments that are not ours are
// skipped (a first pass before QGuiApplication has removed its own options); without it they
// are errors. False with a one-line message in *error on any error.
bool parseDemoOptions(const QStringList& args, bool allowUnknown, DemoOptions* out, QString* error);

// The --help text.
QString demoUsage();

} // namespace libloop::demo
