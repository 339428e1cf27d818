// Min/max decimation: what reaches QCustomPlot is at most two points per pixel column, whatever
// the window holds (a 10-minute window at 20 Hz is 12 000 samples per series; drawing them all is
// what makes a naive inspector expensive, see QT-FACTS "QCustomPlot cost").
//
// For the points of [t0, t1] split into `columns` equal columns, each non-empty column yields its
// minimum and its maximum, in the order they occurred (one point when they are the same sample),
// so the envelope of the curve is exact at pixel resolution. A NaN (a gap: the connection was
// lost) in a column is kept as one NaN point after that column's extremes, so the gap stays
// visible. Points outside [t0, t1] are passed through unchanged (the curve runs to the edges).
// With no more than 2 * columns points in range, every point is passed through.
#pragma once

#include <QtCore/qlist.h>
#include <QtCore/qpoint.h>

#include <cmath>
#include <limits>

namespace libloop::inspector {

// Streaming form: add() the points in time order, then finish(). No allocation beyond `out`.
class MinMaxDecimator {
public:
    // `passThrough`: the caller knows there are at most 2 * columns points in range.
    MinMaxDecimator(double t0, double t1, int columns, QList<QPointF>& out, bool passThrough)
        : t0_(t0), t1_(t1), columns_(columns < 1 ? 1 : columns), out_(out),
          pass_(passThrough || !(t1 > t0)) {
        scale_ = pass_ ? 0.0 : double(columns_) / (t1 - t0);
    }

    void add(double t, double v) {
        if (pass_) {
            out_.append(QPointF(t, v));
            return;
        }
        if (t < t0_ || t > t1_) {
            flush();
            column_ = -1;
            out_.append(QPointF(t, v));
            return;
        }
        int c = int((t - t0_) * scale_);
        c = c >= columns_ ? columns_ - 1 : c;
        if (c != column_) {
            flush();
            column_ = c;
        }
        lastT_ = t;
        if (std::isnan(v)) {
            gap_ = true;
            return;
        }
        ++seq_;
        if (!have_ || v < minV_) {
            minV_ = v;
            minT_ = t;
            minSeq_ = seq_;
        }
        if (!have_ || v > maxV_) {
            maxV_ = v;
            maxT_ = t;
            maxSeq_ = seq_;
        }
        have_ = true;
    }

    void finish() { flush(); }

private:
    void flush() {
        if (have_) {
            if (minSeq_ == maxSeq_) {
                out_.append(QPointF(minT_, minV_));
            } else if (minSeq_ < maxSeq_) {
                out_.append(QPointF(minT_, minV_));
                out_.append(QPointF(maxT_, maxV_));
            } else {
                out_.append(QPointF(maxT_, maxV_));
                out_.append(QPointF(minT_, minV_));
            }
        }
        if (gap_)
            out_.append(QPointF(lastT_, std::numeric_limits<double>::quiet_NaN()));
        have_ = false;
        gap_ = false;
    }

    double t0_, t1_;
    int columns_;
    QList<QPointF>& out_;
    bool pass_;
    double scale_ = 0;
    int column_ = -1;
    bool have_ = false;
    bool gap_ = false;
    double minV_ = 0, minT_ = 0, maxV_ = 0, maxT_ = 0, lastT_ = 0;
    quint64 seq_ = 0, minSeq_ = 0, maxSeq_ = 0;
};

// For a plain list of points (sorted by x).
inline QList<QPointF> decimateMinMax(const QList<QPointF>& points, double t0, double t1,
                                     int columns) {
    QList<QPointF> out;
    qsizetype inRange = 0;
    for (const QPointF& p : points)
        inRange += (p.x() >= t0 && p.x() <= t1) ? 1 : 0;
    MinMaxDecimator d(t0, t1, columns, out, inRange <= 2 * qsizetype(columns < 1 ? 1 : columns));
    for (const QPointF& p : points)
        d.add(p.x(), p.y());
    d.finish();
    return out;
}

} // namespace libloop::inspector
