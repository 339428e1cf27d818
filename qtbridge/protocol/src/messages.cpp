#include <libloop/protocol/messages.h>

#include <QtCore/qcborvalue.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsonvalue.h>

#include <cmath>
#include <limits>

namespace libloop::protocol {

namespace {

QLatin1String key(const char* k) {
    return QLatin1String(k);
}

qint64 wire(std::uint64_t v) {
    constexpr auto top = std::uint64_t(std::numeric_limits<qint64>::max());
    return qint64(v > top ? top : v);
}

// Reads typed values out of a map and remembers the first problem.
class Reader {
public:
    Reader(const QCborMap& m, QString* error) : m_(m), error_(error) {}

    bool ok() const { return ok_; }
    bool fail(const QString& why) {
        if (ok_ && error_)
            *error_ = why;
        ok_ = false;
        return false;
    }

    bool has(const char* k) const { return m_.contains(key(k)); }

    // Non-negative integer. A double with an integral value is accepted (JSON round trips).
    bool u64(const char* k, std::uint64_t& out, bool required = false) {
        const QCborValue v = m_.value(key(k));
        if (!has(k))
            return required ? fail(missing(k)) : true;
        if (v.isInteger() && v.toInteger() >= 0) {
            out = std::uint64_t(v.toInteger());
            return true;
        }
        if (v.isDouble()) {
            const double d = v.toDouble();
            if (d >= 0 && d < 18446744073709551616.0 && std::floor(d) == d) {
                out = std::uint64_t(d);
                return true;
            }
        }
        return fail(QStringLiteral("\"%1\": expected a non-negative integer").arg(key(k)));
    }

    bool i64(const char* k, qint64& out, bool required = false) {
        const QCborValue v = m_.value(key(k));
        if (!has(k))
            return required ? fail(missing(k)) : true;
        if (v.isInteger()) {
            out = v.toInteger();
            return true;
        }
        if (v.isDouble()) {
            const double d = v.toDouble();
            if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && std::floor(d) == d) {
                out = qint64(d);
                return true;
            }
        }
        return fail(QStringLiteral("\"%1\": expected an integer").arg(key(k)));
    }

    bool int32(const char* k, int& out, bool required = false) {
        qint64 v = out;
        if (!i64(k, v, required))
            return false;
        if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
            return fail(QStringLiteral("\"%1\": out of range").arg(key(k)));
        out = int(v);
        return true;
    }

    bool dbl(const char* k, double& out, bool required = false) {
        const QCborValue v = m_.value(key(k));
        if (!has(k))
            return required ? fail(missing(k)) : true;
        if (v.isDouble() || v.isInteger()) {
            out = v.toDouble();
            return true;
        }
        return fail(QStringLiteral("\"%1\": expected a number").arg(key(k)));
    }

    bool str(const char* k, QString& out, bool required = false) {
        const QCborValue v = m_.value(key(k));
        if (!has(k))
            return required ? fail(missing(k)) : true;
        if (v.isString()) {
            out = v.toString();
            return true;
        }
        return fail(QStringLiteral("\"%1\": expected a text string").arg(key(k)));
    }

    bool boolean(const char* k, bool& out, bool required = false) {
        const QCborValue v = m_.value(key(k));
        if (!has(k))
            return required ? fail(missing(k)) : true;
        if (v.isBool()) {
            out = v.toBool();
            return true;
        }
        return fail(QStringLiteral("\"%1\": expected a boolean").arg(key(k)));
    }

    // A map / an array. Absent and optional: `out` is left alone (check has()).
    bool map(const char* k, QCborMap& out, bool required = false) {
        const QCborValue v = m_.value(key(k));
        if (!has(k))
            return required ? fail(missing(k)) : true;
        if (v.isMap()) {
            out = v.toMap();
            return true;
        }
        return fail(QStringLiteral("\"%1\": expected a map").arg(key(k)));
    }

    bool array(const char* k, QCborArray& out, bool required = false) {
        const QCborValue v = m_.value(key(k));
        if (!has(k))
            return required ? fail(missing(k)) : true;
        if (v.isArray()) {
            out = v.toArray();
            return true;
        }
        return fail(QStringLiteral("\"%1\": expected an array").arg(key(k)));
    }

private:
    static QString missing(const char* k) {
        return QStringLiteral("\"%1\" is missing").arg(key(k));
    }
    const QCborMap& m_;
    QString* error_;
    bool ok_ = true;
};

template <class T> std::optional<T> done(const Reader& r, T value) {
    if (!r.ok())
        return std::nullopt;
    return value;
}

QCborMap typed(const char* t) {
    QCborMap m;
    m.insert(key("t"), QString::fromLatin1(t));
    return m;
}

// ---- LoopMetrics: one table drives CBOR, JSON and the field list ---------------------------

struct Field {
    const char* name;
    std::uint64_t LoopMetrics::*u = nullptr;
    double LoopMetrics::*d = nullptr;
    LatencySummary LoopMetrics::*lat = nullptr;
    QString LoopMetrics::*s = nullptr;
    bool LoopMetrics::*b = nullptr;
};

// Declaration order of libloop::MetricsSnapshot (after "id").
const Field kFields[] = {
    {.name = "takenAtNs", .u = &LoopMetrics::takenAtNs},
    {.name = "taskLatency", .lat = &LoopMetrics::taskLatency},
    {.name = "timerLateness", .lat = &LoopMetrics::timerLateness},
    {.name = "tasksPerSecond", .d = &LoopMetrics::tasksPerSecond},
    {.name = "utilisation", .d = &LoopMetrics::utilisation},
    {.name = "windowNs", .u = &LoopMetrics::windowNs},
    {.name = "busyNs", .u = &LoopMetrics::busyNs},
    {.name = "idleNs", .u = &LoopMetrics::idleNs},
    {.name = "externalQueue", .u = &LoopMetrics::externalQueue},
    {.name = "externalQueueMax", .u = &LoopMetrics::externalQueueMax},
    {.name = "internalQueue", .u = &LoopMetrics::internalQueue},
    {.name = "internalQueueMax", .u = &LoopMetrics::internalQueueMax},
    {.name = "microtaskRingUsed", .u = &LoopMetrics::microtaskRingUsed},
    {.name = "microtaskRingMax", .u = &LoopMetrics::microtaskRingMax},
    {.name = "microtaskRingCapacity", .u = &LoopMetrics::microtaskRingCapacity},
    {.name = "microtaskOverflow", .u = &LoopMetrics::microtaskOverflow},
    {.name = "microtaskOverflowMax", .u = &LoopMetrics::microtaskOverflowMax},
    {.name = "timerHeapSize", .u = &LoopMetrics::timerHeapSize},
    {.name = "timerHeapMax", .u = &LoopMetrics::timerHeapMax},
    {.name = "registeredFds", .u = &LoopMetrics::registeredFds},
    {.name = "iterations", .u = &LoopMetrics::iterations},
    {.name = "tasksRun", .u = &LoopMetrics::tasksRun},
    {.name = "microtasksRun", .u = &LoopMetrics::microtasksRun},
    {.name = "timersRun", .u = &LoopMetrics::timersRun},
    {.name = "fdCallbacksRun", .u = &LoopMetrics::fdCallbacksRun},
    {.name = "callbackErrors", .u = &LoopMetrics::callbackErrors},
    {.name = "microtaskBudgetHits", .u = &LoopMetrics::microtaskBudgetHits},
    {.name = "wakeSyscalls", .u = &LoopMetrics::wakeSyscalls},
    {.name = "fastPathMode", .s = &LoopMetrics::fastPathMode},
    {.name = "fastPathActive", .b = &LoopMetrics::fastPathActive},
    {.name = "fastPathTransitions", .u = &LoopMetrics::fastPathTransitions},
    {.name = "state", .s = &LoopMetrics::state},
};

} // namespace

QString messageType(const QCborMap& message) {
    const QCborValue t = message.value(key("t"));
    return t.isString() ? t.toString() : QString();
}

// ---- LatencySummary ------------------------------------------------------------------------

QCborMap LatencySummary::toCbor() const {
    QCborMap m;
    m.insert(key("count"), wire(count));
    m.insert(key("p50"), wire(p50));
    m.insert(key("p90"), wire(p90));
    m.insert(key("p95"), wire(p95));
    m.insert(key("p99"), wire(p99));
    m.insert(key("max"), wire(max));
    m.insert(key("mean"), mean);
    return m;
}

std::optional<LatencySummary> LatencySummary::fromCbor(const QCborMap& m, QString* error) {
    LatencySummary s;
    Reader r(m, error);
    r.u64("count", s.count);
    r.u64("p50", s.p50);
    r.u64("p90", s.p90);
    r.u64("p95", s.p95);
    r.u64("p99", s.p99);
    r.u64("max", s.max);
    r.dbl("mean", s.mean);
    return done(r, s);
}

QJsonObject LatencySummary::toJson() const {
    QJsonObject o;
    o.insert(key("count"), wire(count));
    o.insert(key("p50"), wire(p50));
    o.insert(key("p90"), wire(p90));
    o.insert(key("p95"), wire(p95));
    o.insert(key("p99"), wire(p99));
    o.insert(key("max"), wire(max));
    o.insert(key("mean"), mean);
    return o;
}

// ---- LoopMetrics ---------------------------------------------------------------------------

QCborMap LoopMetrics::toCbor() const {
    QCborMap m;
    m.insert(key("id"), wire(id));
    for (const Field& f : kFields) {
        if (f.u)
            m.insert(key(f.name), wire(this->*f.u));
        else if (f.d)
            m.insert(key(f.name), this->*f.d);
        else if (f.lat)
            m.insert(key(f.name), (this->*f.lat).toCbor());
        else if (f.s)
            m.insert(key(f.name), this->*f.s);
        else if (f.b)
            m.insert(key(f.name), this->*f.b);
    }
    return m;
}

std::optional<LoopMetrics> LoopMetrics::fromCbor(const QCborMap& m, QString* error) {
    LoopMetrics lm;
    Reader r(m, error);
    r.u64("id", lm.id, true);
    for (const Field& f : kFields) {
        if (!r.ok())
            break;
        if (f.u) {
            r.u64(f.name, lm.*f.u);
        } else if (f.d) {
            r.dbl(f.name, lm.*f.d);
        } else if (f.lat) {
            QCborMap sub;
            if (r.map(f.name, sub) && r.has(f.name)) {
                QString why;
                if (auto s = LatencySummary::fromCbor(sub, &why))
                    lm.*f.lat = *s;
                else
                    r.fail(QStringLiteral("\"%1\": %2").arg(key(f.name), why));
            }
        } else if (f.s) {
            r.str(f.name, lm.*f.s);
        } else if (f.b) {
            r.boolean(f.name, lm.*f.b);
        }
    }
    return done(r, lm);
}

QJsonObject LoopMetrics::toJson() const {
    QJsonObject o;
    o.insert(key("id"), wire(id));
    for (const Field& f : kFields) {
        if (f.u)
            o.insert(key(f.name), wire(this->*f.u));
        else if (f.d)
            o.insert(key(f.name), this->*f.d);
        else if (f.lat)
            o.insert(key(f.name), (this->*f.lat).toJson());
        else if (f.s)
            o.insert(key(f.name), this->*f.s);
        else if (f.b)
            o.insert(key(f.name), this->*f.b);
    }
    return o;
}

std::optional<LoopMetrics> LoopMetrics::fromJson(const QJsonObject& o, QString* error) {
    return fromCbor(QCborMap::fromJsonObject(o), error);
}

QStringList LoopMetrics::fieldNames() {
    QStringList names{QStringLiteral("id")};
    for (const Field& f : kFields)
        names.append(QString::fromLatin1(f.name));
    return names;
}

// ---- client -> probe -----------------------------------------------------------------------

QCborMap ClientHello::toCbor() const {
    QCborMap m = typed(type::Hello);
    m.insert(key("v"), version);
    m.insert(key("client"), client);
    return m;
}

std::optional<ClientHello> ClientHello::fromCbor(const QCborMap& m, QString* error) {
    ClientHello h;
    Reader r(m, error);
    r.int32("v", h.version, true);
    r.str("client", h.client);
    return done(r, h);
}

QCborMap Subscribe::toCbor() const {
    QCborMap m = typed(type::Subscribe);
    if (rate)
        m.insert(key("rate"), qint64(*rate));
    return m;
}

std::optional<Subscribe> Subscribe::fromCbor(const QCborMap& m, QString* error) {
    Subscribe s;
    Reader r(m, error);
    if (r.has("rate")) {
        qint64 rate = 0;
        const QCborValue v = m.value(key("rate"));
        if (!v.isInteger()) // strictly an integer here: 2.5 Hz is a client bug worth reporting
            r.fail(QStringLiteral("\"rate\": expected an integer"));
        else if (r.i64("rate", rate))
            s.rate = rate;
    }
    return done(r, s);
}

QCborMap Unsubscribe::toCbor() const {
    return typed(type::Unsubscribe);
}

std::optional<Unsubscribe> Unsubscribe::fromCbor(const QCborMap&, QString*) {
    return Unsubscribe{};
}

// ---- probe -> client -----------------------------------------------------------------------

QCborMap ServerHello::toCbor() const {
    QCborMap m = typed(type::Hello);
    m.insert(key("v"), version);
    m.insert(key("caps"), QCborArray::fromStringList(caps));
    m.insert(key("pid"), pid);
    m.insert(key("name"), name);
    m.insert(key("started"), started);
    m.insert(key("rate"), rate);
    return m;
}

std::optional<ServerHello> ServerHello::fromCbor(const QCborMap& m, QString* error) {
    ServerHello h;
    Reader r(m, error);
    r.int32("v", h.version, true);
    QCborArray caps;
    if (r.array("caps", caps) && r.has("caps")) {
        h.caps.clear();
        for (const QCborValue& c : caps) {
            if (!c.isString()) {
                r.fail(QStringLiteral("\"caps\": expected text strings"));
                break;
            }
            h.caps.append(c.toString());
        }
    }
    r.i64("pid", h.pid);
    r.str("name", h.name);
    r.i64("started", h.started);
    r.int32("rate", h.rate);
    return done(r, h);
}

QCborMap Subscribed::toCbor() const {
    QCborMap m = typed(type::Subscribed);
    m.insert(key("rate"), rate);
    m.insert(key("clamped"), clamped);
    return m;
}

std::optional<Subscribed> Subscribed::fromCbor(const QCborMap& m, QString* error) {
    Subscribed s;
    Reader r(m, error);
    r.int32("rate", s.rate, true);
    r.boolean("clamped", s.clamped);
    return done(r, s);
}

QCborMap ErrorMessage::toCbor() const {
    QCborMap m = typed(type::Error);
    m.insert(key("code"), code);
    m.insert(key("msg"), msg);
    QCborArray versions;
    for (int v : supported)
        versions.append(v);
    m.insert(key("supported"), versions);
    return m;
}

std::optional<ErrorMessage> ErrorMessage::fromCbor(const QCborMap& m, QString* error) {
    ErrorMessage e;
    Reader r(m, error);
    r.str("code", e.code, true);
    r.str("msg", e.msg);
    QCborArray versions;
    if (r.array("supported", versions) && r.has("supported")) {
        e.supported.clear();
        for (const QCborValue& v : versions) {
            if (!v.isInteger()) {
                r.fail(QStringLiteral("\"supported\": expected integers"));
                break;
            }
            e.supported.append(int(v.toInteger()));
        }
    }
    return done(r, e);
}

QCborMap LoopsMessage::toCbor() const {
    QCborMap m = typed(type::Loops);
    QCborArray list;
    for (const LoopInfo& l : loops) {
        QCborMap e;
        e.insert(key("id"), wire(l.id));
        e.insert(key("name"), l.name);
        e.insert(key("tid"), l.tid);
        list.append(e);
    }
    m.insert(key("loops"), list);
    return m;
}

std::optional<LoopsMessage> LoopsMessage::fromCbor(const QCborMap& m, QString* error) {
    LoopsMessage msg;
    Reader r(m, error);
    QCborArray list;
    if (r.array("loops", list, true)) {
        for (const QCborValue& v : list) {
            if (!v.isMap()) {
                r.fail(QStringLiteral("\"loops\": expected maps"));
                break;
            }
            const QCborMap e = v.toMap();
            Reader er(e, error);
            LoopInfo info;
            er.u64("id", info.id, true);
            er.str("name", info.name);
            er.i64("tid", info.tid);
            if (!er.ok()) {
                r.fail(error ? *error : QString());
                break;
            }
            msg.loops.append(info);
        }
    }
    return done(r, msg);
}

QCborMap SnapshotMessage::toCbor() const {
    QCborMap m = typed(type::Snapshot);
    m.insert(key("at"), wire(at));
    m.insert(key("seq"), wire(seq));
    if (dropped)
        m.insert(key("dropped"), wire(dropped));
    if (truncated)
        m.insert(key("truncated"), true);
    QCborArray list;
    for (const LoopMetrics& l : loops)
        list.append(l.toCbor());
    m.insert(key("loops"), list);
    return m;
}

std::optional<SnapshotMessage> SnapshotMessage::fromCbor(const QCborMap& m, QString* error) {
    SnapshotMessage s;
    Reader r(m, error);
    r.u64("at", s.at, true);
    r.u64("seq", s.seq, true);
    r.u64("dropped", s.dropped);
    r.boolean("truncated", s.truncated);
    QCborArray list;
    if (r.ok() && r.array("loops", list, true)) {
        s.loops.reserve(list.size());
        for (const QCborValue& v : list) {
            if (!v.isMap()) {
                r.fail(QStringLiteral("\"loops\": expected maps"));
                break;
            }
            QString why;
            auto lm = LoopMetrics::fromCbor(v.toMap(), &why);
            if (!lm) {
                r.fail(QStringLiteral("\"loops\": %1").arg(why));
                break;
            }
            s.loops.append(std::move(*lm));
        }
    }
    return done(r, s);
}

QJsonObject SnapshotMessage::toJson() const {
    QJsonObject o;
    o.insert(key("t"), QLatin1String(type::Snapshot));
    o.insert(key("at"), wire(at));
    o.insert(key("seq"), wire(seq));
    if (dropped)
        o.insert(key("dropped"), wire(dropped));
    if (truncated)
        o.insert(key("truncated"), true);
    QJsonArray list;
    for (const LoopMetrics& l : loops)
        list.append(l.toJson());
    o.insert(key("loops"), list);
    return o;
}

QCborMap EventMessage::toCbor() const {
    QCborMap m = typed(type::Event);
    m.insert(key("kind"), kind);
    m.insert(key("loop"), wire(loop));
    if (kind == QLatin1String(eventKind::LoopAdded)) {
        m.insert(key("name"), name);
        m.insert(key("tid"), tid);
    } else if (kind == QLatin1String(eventKind::FastPathChanged)) {
        m.insert(key("mode"), mode);
        m.insert(key("active"), active);
    }
    return m;
}

std::optional<EventMessage> EventMessage::fromCbor(const QCborMap& m, QString* error) {
    EventMessage e;
    Reader r(m, error);
    r.str("kind", e.kind, true);
    r.u64("loop", e.loop, true);
    r.str("name", e.name);
    r.i64("tid", e.tid);
    r.str("mode", e.mode);
    r.boolean("active", e.active);
    return done(r, e);
}

// ---- dispatch ------------------------------------------------------------------------------

namespace {
template <class Variant, class T> std::optional<Variant> as(std::optional<T>&& v) {
    if (!v)
        return std::nullopt;
    return Variant(std::move(*v));
}
} // namespace

std::optional<ClientMessage> parseClientMessage(const QCborMap& m, QString* error,
                                                bool* unknownType) {
    if (unknownType)
        *unknownType = false;
    const QString t = messageType(m);
    if (t == QLatin1String(type::Hello))
        return as<ClientMessage>(ClientHello::fromCbor(m, error));
    if (t == QLatin1String(type::Subscribe))
        return as<ClientMessage>(Subscribe::fromCbor(m, error));
    if (t == QLatin1String(type::Unsubscribe))
        return as<ClientMessage>(Unsubscribe::fromCbor(m, error));
    if (unknownType)
        *unknownType = true;
    if (error)
        *error = QStringLiteral("unknown message type \"%1\"").arg(t);
    return std::nullopt;
}

std::optional<ServerMessage> parseServerMessage(const QCborMap& m, QString* error,
                                                bool* unknownType) {
    if (unknownType)
        *unknownType = false;
    const QString t = messageType(m);
    if (t == QLatin1String(type::Hello))
        return as<ServerMessage>(ServerHello::fromCbor(m, error));
    if (t == QLatin1String(type::Subscribed))
        return as<ServerMessage>(Subscribed::fromCbor(m, error));
    if (t == QLatin1String(type::Error))
        return as<ServerMessage>(ErrorMessage::fromCbor(m, error));
    if (t == QLatin1String(type::Loops))
        return as<ServerMessage>(LoopsMessage::fromCbor(m, error));
    if (t == QLatin1String(type::Snapshot))
        return as<ServerMessage>(SnapshotMessage::fromCbor(m, error));
    if (t == QLatin1String(type::Event))
        return as<ServerMessage>(EventMessage::fromCbor(m, error));
    if (unknownType)
        *unknownType = true;
    if (error)
        *error = QStringLiteral("unknown message type \"%1\"").arg(t);
    return std::nullopt;
}

} // namespace libloop::protocol
