// libloop-preload.so: runs an unmodified Qt 6 application on libloop.
//
//   LD_PRELOAD=/path/to/libloop-preload.so any-qt6-app
//
// It interposes the public constructors of QCoreApplication, QGuiApplication and QApplication
// and QThread::start (same mangled names; the real ones are found with dlsym(RTLD_NEXT)). Just
// before a real constructor runs, the main thread gets a libloop dispatcher — the GUI variant
// for QGuiApplication/QApplication — unless it already has one (an application that installs its
// own dispatcher keeps it). Every application object is reached, also a second one after the
// first was destroyed (~QCoreApplication drops the main thread's dispatcher). Likewise each
// QThread started with start() gets one unless it has its own; LIBLOOP_THREADS=0 leaves threads
// on Qt's dispatcher. Threads Qt creates internally (QThreadPool, QtConcurrent, adopted native
// threads) do not go through QThread::start from the application and are not reached.
//
// LIBLOOP_INSPECT=1 also starts the probe (libloop/qt/probe.h) once an application object is on
// libloop.
// Prints nothing unless LIBLOOP_VERBOSE=1 (then one line per install and a summary at exit).
// When the running Qt is not the one this library was built against, it installs nothing and
// warns once. LIBLOOP_PRELOAD_QT_VERSION (a test seam) pretends another running version.
#include <libloop/qt/loopeventdispatcher.h>
#include <libloop/qt/loopguieventdispatcher.h>
#include <libloop/qt/probe.h>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

namespace {

using AppCtor = void (*)(void* self, int& argc, char** argv, int flags);
using ThreadStart = void (*)(QThread* self, int priority);

constexpr const char* kCoreCtor = "_ZN16QCoreApplicationC1ERiPPci";
constexpr const char* kGuiCtor = "_ZN15QGuiApplicationC1ERiPPci";
constexpr const char* kWidgetsCtor = "_ZN12QApplicationC1ERiPPci";
constexpr const char* kThreadStart = "_ZN7QThread5startENS_8PriorityE";

std::atomic<int> appsReached{0}, threadsReached{0};

bool envFlag(const char* name, bool fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v)
        return fallback;
    return std::strcmp(v, "0") != 0;
}

bool verbose() {
    static const bool v = envFlag("LIBLOOP_VERBOSE", false);
    return v;
}

void summary() {
    std::fprintf(stderr, "libloop-preload: reached %d application object(s) and %d thread(s)\n",
                 appsReached.load(), threadsReached.load());
}

// The running Qt must be exactly the one we were built against (private QPA API).
bool qtMatches() {
    static const bool ok = [] {
        const char* running = std::getenv("LIBLOOP_PRELOAD_QT_VERSION");
        if (!running || !*running)
            running = qVersion();
        if (std::strcmp(running, QT_VERSION_STR) == 0) {
            if (verbose())
                std::atexit(summary);
            return true;
        }
        std::fprintf(stderr,
                     "libloop-preload: built for Qt %s but this application runs Qt %s; "
                     "keeping Qt's event dispatcher\n",
                     QT_VERSION_STR, running);
        return false;
    }();
    return ok;
}

template <class Fn> Fn real(const char* symbol) {
    void* f = ::dlsym(RTLD_NEXT, symbol);
    if (!f) {
        std::fprintf(stderr, "libloop-preload: cannot find %s: %s\n", symbol, ::dlerror());
        std::abort(); // nothing sensible is left to do: the application's constructor is gone
    }
    return reinterpret_cast<Fn>(f);
}

void installForApplication(const char* kind, bool gui) {
    if (!qtMatches())
        return;
    QThread* current = QThread::currentThread();
    if (QAbstractEventDispatcher* own = current->eventDispatcher()) {
        if (verbose())
            std::fprintf(stderr, "libloop-preload: %s keeps its own dispatcher %s\n", kind,
                         own->metaObject()->className());
        return;
    }
    using libloop::qt::LoopEventDispatcher;
    const QString name = LoopEventDispatcher::mainThreadLoopName();
    QAbstractEventDispatcher* d =
        gui ? new libloop::qt::LoopGuiEventDispatcher(name) : new LoopEventDispatcher(name);
    QCoreApplication::setEventDispatcher(d);
    ++appsReached;
    libloop::qt::startProbeFromEnvironment(); // LIBLOOP_INSPECT=1
    if (verbose())
        std::fprintf(stderr, "libloop-preload: %s on %s (main thread)\n", kind,
                     d->metaObject()->className());
}

} // namespace

// The interposers: same names as Qt's complete-object constructors / QThread::start.
extern "C" {

__attribute__((visibility("default"))) void _ZN16QCoreApplicationC1ERiPPci(void* self, int& argc,
                                                                           char** argv, int flags) {
    static const AppCtor next = real<AppCtor>(kCoreCtor);
    installForApplication("QCoreApplication", false);
    next(self, argc, argv, flags);
}

__attribute__((visibility("default"))) void _ZN15QGuiApplicationC1ERiPPci(void* self, int& argc,
                                                                          char** argv, int flags) {
    static const AppCtor next = real<AppCtor>(kGuiCtor);
    installForApplication("QGuiApplication", true);
    next(self, argc, argv, flags);
}

__attribute__((visibility("default"))) void _ZN12QApplicationC1ERiPPci(void* self, int& argc,
                                                                       char** argv, int flags) {
    static const AppCtor next = real<AppCtor>(kWidgetsCtor);
    installForApplication("QApplication", true);
    next(self, argc, argv, flags);
}

__attribute__((visibility("default"))) void _ZN7QThread5startENS_8PriorityE(QThread* self,
                                                                            int priority) {
    static const ThreadStart next = real<ThreadStart>(kThreadStart);
    static const bool threads = envFlag("LIBLOOP_THREADS", true);
    if (threads && qtMatches() && !self->isRunning()) {
        if (QAbstractEventDispatcher* own = self->eventDispatcher()) {
            if (verbose())
                std::fprintf(stderr, "libloop-preload: QThread %p keeps its own dispatcher %s\n",
                             static_cast<void*>(self), own->metaObject()->className());
        } else {
            self->setEventDispatcher(new libloop::qt::LoopEventDispatcher);
            ++threadsReached;
            if (verbose())
                std::fprintf(stderr, "libloop-preload: QThread %p on %s\n",
                             static_cast<void*>(self), "libloop::qt::LoopEventDispatcher");
        }
    }
    next(self, priority);
}

} // extern "C"
