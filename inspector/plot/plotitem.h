// PlotItem: one QCustomPlot chart of a HistoryModel inside Qt Quick.
//
// QCustomPlot is a QWidget; it is never shown. On the GUI thread, renderNow() fills its graphs
// with the model's decimated series for the view (at most two points per pixel column), draws it
// with QCustomPlot::toPainter() into a QImage, and calls update(); paint() (which may run on the
// render thread) only draws that image. Nothing renders by itself: PlotScheduler's one timer
// calls renderNow() on the items whose model, view, size or hover changed, so all plots share one
// scene redraw per tick and an idle or paused inspector draws nothing.
//
// Pointer: hover shows the values at the cursor (hoverText, and a cursor line), the wheel zooms
// the time axis around the cursor, dragging pans it, a double click goes back to live.
#pragma once

#include <channels.h>
#include <historymodel.h>

#include <QtCore/qpointer.h>
#include <QtGui/qimage.h>
#include <QtQuick/qquickpainteditem.h>

#include <memory>
#include <vector>

class QCustomPlot;
class QCPGraph;
class QCPItemStraightLine;

namespace libloop::inspector {

class PlotItem : public QQuickPaintedItem {
    Q_OBJECT
    Q_PROPERTY(
        libloop::inspector::HistoryModel* model READ model WRITE setModel NOTIFY modelChanged)
    Q_PROPERTY(Kind kind READ kind WRITE setKind NOTIFY kindChanged)
    Q_PROPERTY(QString title READ title NOTIFY kindChanged)
    Q_PROPERTY(QString kindName READ kindName NOTIFY kindChanged)
    Q_PROPERTY(bool hasData READ hasData NOTIFY rendered)
    Q_PROPERTY(int pointCount READ pointCount NOTIFY rendered)
    Q_PROPERTY(int renderCount READ renderCount NOTIFY rendered)
    Q_PROPERTY(QString hoverText READ hoverText NOTIFY hoverChanged)
    Q_PROPERTY(bool hovering READ hovering NOTIFY hoverChanged)
public:
    enum Kind {
        TimerHeap,     // timer heap size (and its max between snapshots)
        MicrotaskRing, // ring used / max / capacity, overflow
        FastPath,      // mode (auto / forced / disabled) and whether the fast path is active
        Latency,       // task latency p50 / p90 / p99 / max, log axis
        TasksPerSecond,
        Utilisation,
        QueueDepths, // external and internal task queues
    };
    Q_ENUM(Kind)

    explicit PlotItem(QQuickItem* parent = nullptr);
    ~PlotItem() override;

    HistoryModel* model() const { return model_; }
    void setModel(HistoryModel* model);
    Kind kind() const { return kind_; }
    void setKind(Kind kind);
    QString title() const;
    QString kindName() const; // "timer-heap", "microtask-ring", ...: file names of exports
    static QString kindName(Kind kind);

    bool hasData() const { return hasData_; }
    int pointCount() const { return pointCount_; }
    int renderCount() const { return renderCount_; }
    QString hoverText() const { return hoverText_; }
    bool hovering() const { return hovering_; }

    // The colour of the first series (the one every kind has): tests count its pixels.
    QColor primaryColor() const;
    // The last rendered image (physical pixels).
    QImage image() const { return image_; }

    // True when the next renderNow() would draw something new.
    bool needsRender() const;
    // Renders the chart into the image now (GUI thread) and schedules a repaint.
    void renderNow();
    // Renders and saves the chart as PNG; at least 640x360 when the item is smaller (hidden).
    Q_INVOKABLE bool saveImage(const QString& path);

    void paint(QPainter* painter) override;

signals:
    void modelChanged();
    void kindChanged();
    void rendered();
    void hoverChanged();

protected:
    void geometryChange(const QRectF& newGeometry, const QRectF& oldGeometry) override;
    void hoverMoveEvent(QHoverEvent* event) override;
    void hoverLeaveEvent(QHoverEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;

private:
    struct Series {
        Channel channel;
        QCPGraph* graph;
        double scale;
        QString label;
    };
    void setUpPlot();
    void renderInto(QImage& image, QSize logical, qreal dpr);
    void updateHover(double x);
    double timeAtX(double x) const;
    // Fraction (0..1) of x across the axis rect.
    double axisFraction(double x) const;

    std::unique_ptr<QCustomPlot> plot_;
    std::vector<Series> series_;
    QCPItemStraightLine* cursor_ = nullptr;
    QPointer<HistoryModel> model_;
    Kind kind_ = TimerHeap;
    QImage image_;
    quint64 renderedRevision_ = 0;
    QSize renderedSize_;
    bool dirty_ = true;
    bool hasData_ = false;
    int pointCount_ = 0;
    int renderCount_ = 0;
    QString hoverText_;
    bool hovering_ = false;
    double hoverX_ = -1;
    double dragX_ = -1;
};

} // namespace libloop::inspector
