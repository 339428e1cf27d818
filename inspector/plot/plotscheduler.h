// PlotScheduler: the one timer that re-renders every PlotItem (QT-FACTS: one timer per item
// caused 20-40 scene redraws a second instead of 20). Each tick renders the visible items that
// need it, so all their updates land in the same frame.
#pragma once

#include <QtCore/qlist.h>
#include <QtCore/qobject.h>
#include <QtCore/qtimer.h>

namespace libloop::inspector {

class PlotItem;

class PlotScheduler : public QObject {
    Q_OBJECT
    Q_PROPERTY(int fps READ fps WRITE setFps NOTIFY fpsChanged)
public:
    // The application's scheduler (created on first use, owned by the application object).
    static PlotScheduler* instance();

    int fps() const { return fps_; }
    void setFps(int fps);

    void add(PlotItem* item);
    void remove(PlotItem* item);
    const QList<PlotItem*>& items() const { return items_; }

    // Renders every item that needs it now (also when hidden), e.g. before a screenshot.
    Q_INVOKABLE void renderAll();
    // Renders done by the timer so far (all items).
    quint64 renders() const { return renders_; }

signals:
    void fpsChanged();

private:
    explicit PlotScheduler(QObject* parent);
    void tick();

    QTimer timer_;
    QList<PlotItem*> items_;
    int fps_ = 20;
    quint64 renders_ = 0;
};

} // namespace libloop::inspector
