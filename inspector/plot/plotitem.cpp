#include "plotitem.h"

#include "plotscheduler.h"

#include <historymodel.h>

#include <qcustomplot.h>

#include <QtGui/qpainter.h>
#include <QtQuick/qquickwindow.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace libloop::inspector {

namespace {

// Opaque colours only: a translucent fill under a noisy series is what made a naive inspector
// cost ~112 ms a frame (QT-FACTS); lines are drawn without antialiasing.
const QColor kBlue(0x1f, 0x77, 0xb4);
const QColor kLightBlue(0x9e, 0xca, 0xe1);
const QColor kOrange(0xff, 0x7f, 0x0e);
const QColor kLightOrange(0xfd, 0xd0, 0xa2);
const QColor kGreen(0x2c, 0xa0, 0x2c);
const QColor kLightGreen(0xa1, 0xd9, 0x9b);
const QColor kRed(0xd6, 0x27, 0x28);
const QColor kLightRed(0xfc, 0xae, 0x91);
const QColor kPurple(0x94, 0x67, 0xbd);
const QColor kBrown(0x8c, 0x56, 0x4b);
const QColor kGray(0x7f, 0x7f, 0x7f);

// Log axis floor (µs): values <= 0 are drawn here instead of 200 px outside the axis rect.
constexpr double kLogFloor = 1e-3;
// Fast-path plot levels: active at 0/1, mode at kModeBase + 0/1/2.
constexpr double kModeBase = 2.5;

struct SeriesSpec {
    Channel channel;
    QString label;
    QColor color;
    double scale = 1.0;
    double offset = 0.0;
    Qt::PenStyle style = Qt::SolidLine;
};

struct KindSpec {
    QString title;
    QString name;
    QString unit;
    std::vector<SeriesSpec> series; // drawn in this order (background first)
    int primary = 0;                // index of the headline series
    bool log = false;
    bool step = false;
    double fixedMax = 0; // > 0: the value axis is [0, fixedMax]
};

KindSpec spec(PlotItem::Kind kind) {
    switch (kind) {
    case PlotItem::TimerHeap:
        return {QStringLiteral("Timer heap"),
                QStringLiteral("timer-heap"),
                QStringLiteral("timers"),
                {{Channel::TimerHeapMax, QStringLiteral("max"), kLightBlue},
                 {Channel::TimerHeapSize, QStringLiteral("pending"), kBlue}},
                1};
    case PlotItem::MicrotaskRing:
        return {QStringLiteral("Microtask ring"),
                QStringLiteral("microtask-ring"),
                QStringLiteral("microtasks"),
                {{Channel::MicrotaskRingCapacity, QStringLiteral("capacity"), kGray, 1, 0,
                  Qt::DashLine},
                 {Channel::MicrotaskRingMax, QStringLiteral("used max"), kLightGreen},
                 {Channel::MicrotaskOverflowMax, QStringLiteral("overflow max"), kLightRed},
                 {Channel::MicrotaskRingUsed, QStringLiteral("used"), kGreen},
                 {Channel::MicrotaskOverflow, QStringLiteral("overflow"), kRed}},
                3};
    case PlotItem::FastPath:
        return {QStringLiteral("Fast path"),
                QStringLiteral("fast-path"),
                QString(),
                {{Channel::FastPathMode, QStringLiteral("mode"), kPurple, 1, kModeBase},
                 {Channel::FastPathActive, QStringLiteral("active"), kOrange}},
                0,
                false,
                true};
    case PlotItem::Latency:
        return {QStringLiteral("Task latency"),
                QStringLiteral("latency"),
                QStringLiteral("µs"),
                {{Channel::LatencyMax, QStringLiteral("max"), kRed, 1e-3},
                 {Channel::LatencyP99, QStringLiteral("p99"), kOrange, 1e-3},
                 {Channel::LatencyP90, QStringLiteral("p90"), kBlue, 1e-3},
                 {Channel::LatencyP50, QStringLiteral("p50"), kGreen, 1e-3}},
                1,
                true};
    case PlotItem::TasksPerSecond:
        return {QStringLiteral("Throughput"),
                QStringLiteral("tasks-per-second"),
                QStringLiteral("callbacks/s"),
                {{Channel::TasksPerSecond, QStringLiteral("tasks/s"), kBlue}},
                0};
    case PlotItem::Utilisation:
        return {QStringLiteral("Loop utilisation"),
                QStringLiteral("utilisation"),
                QStringLiteral("%"),
                {{Channel::Utilisation, QStringLiteral("busy"), kBrown, 100.0}},
                0,
                false,
                false,
                100.0};
    case PlotItem::QueueDepths:
        return {QStringLiteral("Queue depths"),
                QStringLiteral("queues"),
                QStringLiteral("tasks"),
                {{Channel::ExternalQueueMax, QStringLiteral("external max"), kLightBlue},
                 {Channel::InternalQueueMax, QStringLiteral("internal max"), kLightOrange},
                 {Channel::ExternalQueue, QStringLiteral("external"), kBlue},
                 {Channel::InternalQueue, QStringLiteral("internal"), kOrange}},
                2};
    }
    return {};
}

QString formatNs(double ns) {
    if (std::isnan(ns))
        return QStringLiteral("–");
    if (ns < 1e3)
        return QStringLiteral("%1 ns").arg(ns, 0, 'f', 0);
    if (ns < 1e6)
        return QStringLiteral("%1 µs").arg(ns / 1e3, 0, 'f', 1);
    if (ns < 1e9)
        return QStringLiteral("%1 ms").arg(ns / 1e6, 0, 'f', 2);
    return QStringLiteral("%1 s").arg(ns / 1e9, 0, 'f', 3);
}

QString formatValue(Channel c, double v) {
    if (std::isnan(v))
        return QStringLiteral("–");
    switch (c) {
    case Channel::LatencyP50:
    case Channel::LatencyP90:
    case Channel::LatencyP99:
    case Channel::LatencyMax:
    case Channel::TimerLatenessP99:
        return formatNs(v);
    case Channel::Utilisation:
        return QStringLiteral("%1 %").arg(v * 100, 0, 'f', 1);
    case Channel::TasksPerSecond:
        return QString::number(v, 'f', 0);
    case Channel::FastPathMode:
        return fastPathModeFromLevel(int(v));
    case Channel::FastPathActive:
        return v > 0 ? QStringLiteral("fast path") : QStringLiteral("epoll");
    default:
        return QString::number(qint64(v));
    }
}

} // namespace

PlotItem::PlotItem(QQuickItem* parent) : QQuickPaintedItem(parent) {
    setAcceptHoverEvents(true);
    setAcceptedMouseButtons(Qt::LeftButton);
    setOpaquePainting(true);
    setUpPlot();
    PlotScheduler::instance()->add(this);
}

PlotItem::~PlotItem() {
    PlotScheduler::instance()->remove(this);
}

void PlotItem::setModel(HistoryModel* model) {
    if (model_ == model)
        return;
    model_ = model;
    dirty_ = true;
    emit modelChanged();
}

void PlotItem::setKind(Kind kind) {
    if (kind_ == kind)
        return;
    kind_ = kind;
    setUpPlot();
    emit kindChanged();
}

QString PlotItem::title() const {
    return spec(kind_).title;
}

QString PlotItem::kindName() const {
    return kindName(kind_);
}

QString PlotItem::kindName(Kind kind) {
    return spec(kind).name;
}

QColor PlotItem::primaryColor() const {
    const KindSpec s = spec(kind_);
    return s.series[std::size_t(s.primary)].color;
}

void PlotItem::setUpPlot() {
    const KindSpec s = spec(kind_);
    plot_ = std::make_unique<QCustomPlot>();
    plot_->setAttribute(Qt::WA_DontShowOnScreen);
    series_.clear();
    cursor_ = nullptr;
    QCustomPlot& p = *plot_;
    p.setBackground(Qt::white);
    p.setNotAntialiasedElements(QCP::aePlottables | QCP::aeAxes | QCP::aeGrid | QCP::aeSubGrid |
                                QCP::aeItems | QCP::aeLegend);
    p.setPlottingHint(QCP::phFastPolylines, true);
    p.setPlottingHint(QCP::phCacheLabels, true);

    p.plotLayout()->insertRow(0);
    auto* title = new QCPTextElement(&p, s.title, QFont(QStringLiteral("Sans"), 9, QFont::Bold));
    p.plotLayout()->addElement(0, 0, title);

    p.xAxis->setLabel(QStringLiteral("time (s)"));
    p.yAxis->setLabel(s.unit);
    if (s.log) {
        p.yAxis->setScaleType(QCPAxis::stLogarithmic);
        auto ticker = QSharedPointer<QCPAxisTickerLog>::create();
        ticker->setLogBase(10);
        p.yAxis->setTicker(ticker);
        p.yAxis->setNumberFormat(QStringLiteral("eb"));
        p.yAxis->setNumberPrecision(0);
    }
    if (kind_ == FastPath) {
        auto ticker = QSharedPointer<QCPAxisTickerText>::create();
        ticker->addTick(0, QStringLiteral("epoll"));
        ticker->addTick(1, QStringLiteral("fast path"));
        ticker->addTick(kModeBase + 0, QStringLiteral("auto"));
        ticker->addTick(kModeBase + 1, QStringLiteral("forced"));
        ticker->addTick(kModeBase + 2, QStringLiteral("disabled"));
        p.yAxis->setTicker(ticker);
        p.yAxis->setRange(-0.5, kModeBase + 2.5);
    }

    for (const SeriesSpec& ss : s.series) {
        QCPGraph* g = p.addGraph();
        // Width 0 (cosmetic, one pixel): a wider pen goes through QStroker and fills the outline
        // of the whole zigzag of a decimated noisy series, which cost ~80% of the inspector's CPU
        // with a 10-minute window (measured with perf). The headline series is told apart by
        // its saturated colour instead.
        QPen pen(ss.color);
        pen.setWidth(0);
        pen.setCosmetic(true);
        pen.setStyle(ss.style);
        g->setPen(pen);
        g->setBrush(Qt::NoBrush);
        g->setName(ss.label);
        g->setLineStyle(s.step ? QCPGraph::lsStepLeft : QCPGraph::lsLine);
        g->setAdaptiveSampling(false); // decimated in the model already
        series_.push_back({ss.channel, g, ss.scale, ss.label});
    }
    p.legend->setVisible(s.series.size() > 1);
    p.legend->setFont(QFont(QStringLiteral("Sans"), 7));
    p.legend->setBrush(Qt::white);
    p.legend->setRowSpacing(-3);
    p.axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);

    cursor_ = new QCPItemStraightLine(&p);
    cursor_->setPen(QPen(kGray, 1, Qt::DotLine));
    cursor_->setVisible(false);
    dirty_ = true;
}

bool PlotItem::needsRender() const {
    if (dirty_)
        return true;
    if (model_ && model_->revision() != renderedRevision_)
        return true;
    const qreal dpr = window() ? window()->effectiveDevicePixelRatio() : 1.0;
    return QSize(int(width() * dpr), int(height() * dpr)) != renderedSize_;
}

void PlotItem::renderInto(QImage& image, QSize logical, qreal dpr) {
    const KindSpec s = spec(kind_);
    QCustomPlot& p = *plot_;
    const double t0 = model_ ? model_->viewStart() : 0;
    const double t1 = model_ ? model_->viewEnd() : 60;
    p.xAxis->setRange(t0, t1);
    const int columns = std::max(16, int(logical.width() * dpr) - 60);
    const std::uint64_t loop = model_ ? std::uint64_t(model_->currentLoopId()) : 0;

    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    int points = 0;
    bool any = false;
    std::size_t i = 0;
    QVector<QCPGraphData> data;
    for (const Series& se : series_) {
        const SeriesSpec& ss = s.series[i++];
        data.clear();
        if (model_) {
            const QList<QPointF> pts = model_->series(loop, se.channel, t0, t1, columns, se.scale);
            data.reserve(pts.size());
            for (const QPointF& pt : pts) {
                double v = pt.y();
                if (!std::isnan(v)) {
                    v += ss.offset;
                    if (s.log && v <= kLogFloor)
                        v = kLogFloor; // QT-FACTS: values <= 0 on a log axis draw as spikes
                    if (pt.x() >= t0 && pt.x() <= t1) {
                        lo = std::min(lo, v);
                        hi = std::max(hi, v);
                        any = true;
                    }
                }
                data.append(QCPGraphData(pt.x(), v));
            }
        }
        points += int(data.size());
        se.graph->data()->set(data, true);
    }
    if (kind_ != FastPath) {
        if (!any) {
            lo = s.log ? 1 : 0;
            hi = s.log ? 1000 : 1;
        }
        if (s.fixedMax > 0)
            p.yAxis->setRange(0, s.fixedMax * 1.02);
        else if (s.log)
            p.yAxis->setRange(std::max(kLogFloor, lo / 2), std::max(hi * 2, lo * 10));
        else
            p.yAxis->setRange(0, std::max(1.0, hi * 1.1));
    }
    cursor_->setVisible(hovering_ && hoverX_ >= 0);
    if (cursor_->visible()) {
        const double t = p.xAxis->pixelToCoord(hoverX_);
        cursor_->point1->setCoords(t, 0);
        cursor_->point2->setCoords(t, 1);
    }

    image = QImage(QSize(int(logical.width() * dpr), int(logical.height() * dpr)),
                   QImage::Format_ARGB32_Premultiplied);
    image.setDevicePixelRatio(dpr);
    image.fill(Qt::white);
    QCPPainter painter(&image);
    // toPainter alone lays out and draws (replot() first would render twice, QT-FACTS).
    p.toPainter(&painter, logical.width(), logical.height());
    painter.end();

    pointCount_ = points;
    hasData_ = any;
}

void PlotItem::renderNow() {
    const QSize logical{int(width()), int(height())};
    if (logical.width() < 16 || logical.height() < 16)
        return;
    const qreal dpr = window() ? window()->effectiveDevicePixelRatio() : 1.0;
    renderInto(image_, logical, dpr);
    renderedSize_ = image_.size();
    renderedRevision_ = model_ ? model_->revision() : 0;
    dirty_ = false;
    ++renderCount_;
    update();
    emit rendered();
}

bool PlotItem::saveImage(const QString& path) {
    QSize logical{int(width()), int(height())};
    if (logical.width() < 16 || logical.height() < 16)
        logical = QSize(640, 360);
    const qreal dpr = window() ? window()->effectiveDevicePixelRatio() : 1.0;
    QImage img;
    renderInto(img, logical, dpr);
    dirty_ = true; // the on-screen image may be of another size
    return img.save(path, "PNG");
}

void PlotItem::paint(QPainter* painter) {
    if (image_.isNull()) {
        painter->fillRect(QRectF(0, 0, width(), height()), Qt::white);
        return;
    }
    painter->drawImage(QRectF(0, 0, width(), height()), image_);
}

void PlotItem::geometryChange(const QRectF& newGeometry, const QRectF& oldGeometry) {
    QQuickPaintedItem::geometryChange(newGeometry, oldGeometry);
    if (newGeometry.size() != oldGeometry.size())
        dirty_ = true;
}

double PlotItem::timeAtX(double x) const {
    return plot_->xAxis->pixelToCoord(x);
}

double PlotItem::axisFraction(double x) const {
    const QRect r = plot_->axisRect()->rect();
    if (r.width() <= 0)
        return 1.0;
    return std::clamp((x - r.left()) / double(r.width()), 0.0, 1.0);
}

void PlotItem::updateHover(double x) {
    QString text;
    if (model_) {
        const double t = timeAtX(x);
        const std::optional<Sample> sample =
            model_->sampleAt(std::uint64_t(model_->currentLoopId()), t);
        if (sample) {
            QStringList parts;
            parts << QStringLiteral("t %1 s").arg(sample->t, 0, 'f', 2);
            // Headline series last in the drawing order: list them in reverse (main first).
            for (auto it = series_.rbegin(); it != series_.rend(); ++it)
                parts << QStringLiteral("%1 %2").arg(
                    it->label, formatValue(it->channel, sample->v[std::size_t(it->channel)]));
            text = parts.join(QStringLiteral("  ·  "));
        }
    }
    hoverX_ = x;
    if (text != hoverText_ || !hovering_) {
        hoverText_ = text;
        hovering_ = true;
        emit hoverChanged();
    }
    dirty_ = true;
}

void PlotItem::hoverMoveEvent(QHoverEvent* event) {
    updateHover(event->position().x());
}

void PlotItem::hoverLeaveEvent(QHoverEvent*) {
    hovering_ = false;
    hoverX_ = -1;
    hoverText_.clear();
    dirty_ = true;
    emit hoverChanged();
}

void PlotItem::wheelEvent(QWheelEvent* event) {
    if (!model_)
        return;
    const int dy = event->angleDelta().y();
    if (dy == 0) {
        event->ignore();
        return;
    }
    model_->zoom(dy > 0 ? 0.8 : 1.25, axisFraction(event->position().x()));
    event->accept();
}

void PlotItem::mousePressEvent(QMouseEvent* event) {
    dragX_ = event->position().x();
    event->accept();
}

void PlotItem::mouseMoveEvent(QMouseEvent* event) {
    if (!model_ || dragX_ < 0)
        return;
    const QRect r = plot_->axisRect()->rect();
    const double x = event->position().x();
    if (r.width() > 0) {
        const double dt = -(x - dragX_) * model_->windowSeconds() / double(r.width());
        model_->pan(dt);
    }
    dragX_ = x;
    updateHover(x);
}

void PlotItem::mouseReleaseEvent(QMouseEvent*) {
    dragX_ = -1;
}

void PlotItem::mouseDoubleClickEvent(QMouseEvent*) {
    if (model_)
        model_->follow();
}

} // namespace libloop::inspector
