// loop-inspector: attaches to a process that runs libloop with its probe on and plots its loops
// live (Qt Quick + QCustomPlot), or prints snapshots as JSON lines (--dump). The inspector itself
// runs on libloop: the GUI dispatcher for the window, the core one for --dump (no display).
#include "dump.h"
#include "gui.h"
#include "options.h"

#include <libloop/qt/install.h>
#include <libloop/qt/loopguieventdispatcher.h>

#include <QtCore/qcoreapplication.h>
#include <QtWidgets/qapplication.h>

#include <cstdio>

namespace {

void setIdentity() {
    QCoreApplication::setApplicationName(QStringLiteral("loop-inspector"));
    QCoreApplication::setOrganizationName(QStringLiteral("libloop"));
    QCoreApplication::setApplicationVersion(QStringLiteral("0.1.0"));
}

int usageError(const QString& error) {
    std::fprintf(stderr, "loop-inspector: %s\n(see loop-inspector --help)\n",
                 error.toLocal8Bit().constData());
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    using namespace libloop::inspector;
    if (wantsDump(argc, argv)) {
        libloop::qt::install();
        QCoreApplication app(argc, argv);
        setIdentity();
        QString error;
        const std::optional<Options> o = parseOptions(app.arguments(), &error);
        if (!o)
            return usageError(error);
        DumpOptions d;
        d.pid = o->pid;
        d.socket = o->socket;
        d.directory = o->directory;
        d.count = o->count;
        d.rate = o->rate;
        d.timeoutMs = o->timeoutMs;
        return runDump(d, stdout, stderr);
    }

    // QCustomPlot is a QWidget: a QApplication, on libloop's GUI dispatcher.
    libloop::qt::installGui();
    QApplication app(argc, argv);
    setIdentity();
    QString error;
    const std::optional<Options> o = parseOptions(app.arguments(), &error);
    if (!o)
        return usageError(error);
    return runGui(*o);
}
