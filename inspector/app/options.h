// loop-inspector's command line.
#pragma once

#include <QtCore/qstring.h>
#include <QtCore/qstringlist.h>

#include <optional>

namespace libloop::inspector {

struct Options {
    bool dump = false;
    qint64 pid = 0;
    QString socket;
    QString directory;
    qint64 count = 0;
    int rate = 20;
    int timeoutMs = 10000;
    double windowSeconds = 60;
    int fps = 20;
    QString replay;
    bool play = false; // --play: start playing the replay at once
    double speed = 1;  // --speed: playback speed (ReplayPlayer::kSpeeds)
    QString record;
    QString loop;          // select this loop (by name) when it appears
    QString screenshotDir; // --screenshot DIR
    double screenshotAfter = 3;
};

// True when argv asks for --dump (decided before any application object exists: --dump runs
// under a QCoreApplication, everything else under a QApplication).
bool wantsDump(int argc, char** argv);

// Parses the arguments (the application object must exist: --help and --version print and
// exit from here). nullopt with *error on a usage error.
std::optional<Options> parseOptions(const QStringList& arguments, QString* error);

} // namespace libloop::inspector
