#include "plotscheduler.h"

#include "plotitem.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qpointer.h>

namespace libloop::inspector {

namespace {
QPointer<PlotScheduler> g_instance;
}

PlotScheduler* PlotScheduler::instance() {
    if (!g_instance)
        g_instance = new PlotScheduler(QCoreApplication::instance());
    return g_instance;
}

PlotScheduler::PlotScheduler(QObject* parent) : QObject(parent) {
    timer_.setTimerType(Qt::CoarseTimer);
    connect(&timer_, &QTimer::timeout, this, &PlotScheduler::tick);
    timer_.setInterval(1000 / fps_);
}

void PlotScheduler::setFps(int fps) {
    fps = std::clamp(fps, 1, 60);
    if (fps == fps_)
        return;
    fps_ = fps;
    timer_.setInterval(1000 / fps_);
    emit fpsChanged();
}

void PlotScheduler::add(PlotItem* item) {
    if (!items_.contains(item))
        items_.append(item);
    if (!timer_.isActive())
        timer_.start();
}

void PlotScheduler::remove(PlotItem* item) {
    items_.removeAll(item);
    if (items_.isEmpty())
        timer_.stop();
}

void PlotScheduler::tick() {
    for (PlotItem* item : std::as_const(items_))
        if (item->isVisible() && item->window() && item->needsRender()) {
            item->renderNow();
            ++renders_;
        }
}

void PlotScheduler::renderAll() {
    for (PlotItem* item : std::as_const(items_))
        item->renderNow();
}

} // namespace libloop::inspector
