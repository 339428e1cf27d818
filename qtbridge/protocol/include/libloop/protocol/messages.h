// The probe protocol's messages (version 1) as C++ structs, with their CBOR form (what travels in
// a frame, see frame.h) and, for snapshots, a JSON form with the same names. See PROTOCOL.md for
// the conversation (who sends what, when) and the rules.
//
// Every struct has
//   QCborMap toCbor() const;                                       // includes "t"
//   static std::optional<X> fromCbor(const QCborMap&, QString* error = nullptr);
// fromCbor checks types (an ill-typed or out-of-range value is an error, with a message in
// *error) but not "t" (dispatch on messageType() first, or use parseClientMessage /
// parseServerMessage). Keys it does not know are ignored (later v1 probes may add some); a
// missing optional key takes the default written next to the member.
//
// Integers travel as CBOR integers (counters and nanoseconds are non-negative and below 2^63;
// larger values are clamped to 2^63-1), fractions as CBOR doubles.
#pragma once

#include <QtCore/qcborarray.h>
#include <QtCore/qcbormap.h>
#include <QtCore/qjsonobject.h>
#include <QtCore/qlist.h>
#include <QtCore/qstring.h>
#include <QtCore/qstringlist.h>

#include <cstdint>
#include <optional>
#include <variant>

namespace libloop::protocol {

// The protocol version this library speaks (and the only one a v1 probe accepts).
inline constexpr int kVersion = 1;

// Snapshot rates a client may subscribe at, in snapshots per second.
inline constexpr int kDefaultRate = 20;
inline constexpr int kMinRate = 1;
inline constexpr int kMaxRate = 100;

// Message types ("t").
namespace type {
inline constexpr char Hello[] = "hello"; // both directions
inline constexpr char Subscribe[] = "subscribe";
inline constexpr char Unsubscribe[] = "unsubscribe";
inline constexpr char Subscribed[] = "subscribed";
inline constexpr char Error[] = "error";
inline constexpr char Loops[] = "loops";
inline constexpr char Snapshot[] = "snapshot";
inline constexpr char Event[] = "event";
} // namespace type

// Error codes of ErrorMessage.
namespace errc {
inline constexpr char Version[] = "version";       // unsupported protocol version
inline constexpr char Malformed[] = "malformed";   // undecodable frame or ill-typed message
inline constexpr char Oversized[] = "oversized";   // a frame above kMaxFrameBytes (or empty)
inline constexpr char Unexpected[] = "unexpected"; // a message not allowed now, or unknown "t"
} // namespace errc

// Event kinds of EventMessage.
namespace eventKind {
inline constexpr char LoopAdded[] = "loopAdded";
inline constexpr char LoopRemoved[] = "loopRemoved";
inline constexpr char FastPathChanged[] = "fastPathChanged";
} // namespace eventKind

// The "t" of a message; empty when absent or not a text string.
QString messageType(const QCborMap& message);

// ---- the metrics of one loop (the mirror of libloop::MetricsSnapshot) ----------------------

// libloop::LatencySummary: nanoseconds.
struct LatencySummary {
    std::uint64_t count = 0;
    std::uint64_t p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
    double mean = 0;

    QCborMap toCbor() const;
    static std::optional<LatencySummary> fromCbor(const QCborMap& m, QString* error = nullptr);
    QJsonObject toJson() const;
    friend bool operator==(const LatencySummary&, const LatencySummary&) = default;
};

// One loop's entry in a snapshot: the loop's id and every field of libloop::MetricsSnapshot,
// with the same names and meanings (see libloop/metrics.h). The enums travel as their names
// (fastPathModeName / loopStateName: "auto", "forced", "disabled"; "idle", "running",
// "sleeping", "shutting-down", "closed"). The *Max gauges are maxima since the previous
// snapshot this client received (see PROTOCOL.md).
struct LoopMetrics {
    std::uint64_t id = 0; // required; the rest defaults to 0 / "" / false when absent

    std::uint64_t takenAtNs = 0; // CLOCK_MONOTONIC of the inspected process
    LatencySummary taskLatency;
    LatencySummary timerLateness;
    double tasksPerSecond = 0;
    double utilisation = 0;
    std::uint64_t windowNs = 0;
    std::uint64_t busyNs = 0;
    std::uint64_t idleNs = 0;
    std::uint64_t externalQueue = 0, externalQueueMax = 0;
    std::uint64_t internalQueue = 0, internalQueueMax = 0;
    std::uint64_t microtaskRingUsed = 0, microtaskRingMax = 0;
    std::uint64_t microtaskRingCapacity = 0;
    std::uint64_t microtaskOverflow = 0, microtaskOverflowMax = 0;
    std::uint64_t timerHeapSize = 0, timerHeapMax = 0;
    std::uint64_t registeredFds = 0;
    std::uint64_t iterations = 0;
    std::uint64_t tasksRun = 0, microtasksRun = 0, timersRun = 0, fdCallbacksRun = 0;
    std::uint64_t callbackErrors = 0;
    std::uint64_t microtaskBudgetHits = 0;
    std::uint64_t wakeSyscalls = 0;
    QString fastPathMode;
    bool fastPathActive = false;
    std::uint64_t fastPathTransitions = 0;
    QString state;

    QCborMap toCbor() const; // no "t": an element of SnapshotMessage::loops
    static std::optional<LoopMetrics> fromCbor(const QCborMap& m, QString* error = nullptr);
    // The same keys and nesting as toCbor (integers as JSON integers).
    QJsonObject toJson() const;
    static std::optional<LoopMetrics> fromJson(const QJsonObject& o, QString* error = nullptr);

    // The names of the fields, in declaration order ("id" first, then MetricsSnapshot's).
    static QStringList fieldNames();

    friend bool operator==(const LoopMetrics&, const LoopMetrics&) = default;
};

// ---- client -> probe ---------------------------------------------------------------------------

// {"t":"hello","v":1,"client":"<name>"}: must be the first message.
struct ClientHello {
    int version = kVersion; // "v", required (any integer; the probe refuses all but kVersion)
    QString client;         // "client", optional: a label for the probe's logs

    QCborMap toCbor() const;
    static std::optional<ClientHello> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// {"t":"subscribe","rate":<hz>}: start (or re-rate) snapshots. The probe answers Subscribed.
struct Subscribe {
    std::optional<qint64> rate; // "rate", optional: absent = kDefaultRate

    QCborMap toCbor() const;
    static std::optional<Subscribe> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// {"t":"unsubscribe"}: stop snapshots (loops and events keep coming).
struct Unsubscribe {
    QCborMap toCbor() const;
    static std::optional<Unsubscribe> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// ---- probe -> client ---------------------------------------------------------------------------

// {"t":"hello","v":1,"caps":[...],"pid":..,"name":..,"started":<unix ms>,"rate":20}
struct ServerHello {
    int version = kVersion;
    QStringList caps{QStringLiteral("snapshots"), QStringLiteral("events")};
    qint64 pid = 0;
    QString name;            // the process name (as in the socket's file name, unsanitized)
    qint64 started = 0;      // the process's start, Unix time in ms
    int rate = kDefaultRate; // the rate a subscribe without "rate" gets

    QCborMap toCbor() const;
    static std::optional<ServerHello> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// {"t":"subscribed","rate":<effective hz>,"clamped":<bool>}: the answer to every subscribe.
// "clamped" is true when the requested rate was outside [kMinRate, kMaxRate].
struct Subscribed {
    int rate = kDefaultRate;
    bool clamped = false;

    QCborMap toCbor() const;
    static std::optional<Subscribed> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// {"t":"error","code":..,"msg":..,"supported":[1]}: the probe closes the connection after it.
struct ErrorMessage {
    QString code;                   // one of errc::*
    QString msg;                    // for humans
    QList<int> supported{kVersion}; // protocol versions the probe speaks

    QCborMap toCbor() const;
    static std::optional<ErrorMessage> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// One loop in a LoopsMessage.
struct LoopInfo {
    std::uint64_t id = 0; // libloop::Loop::id(): unique in the process, never reused
    QString name;         // LoopOptions::name (truncated to 256 bytes of UTF-8 by the probe)
    qint64 tid = 0;       // Linux thread id of the loop thread (0 if unknown)

    friend bool operator==(const LoopInfo&, const LoopInfo&) = default;
};

// {"t":"loops","loops":[{"id":..,"name":..,"tid":..}, ...]}: the whole current set.
struct LoopsMessage {
    QList<LoopInfo> loops;

    QCborMap toCbor() const;
    static std::optional<LoopsMessage> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// {"t":"snapshot","at":<ns>,"seq":<n>,"loops":[LoopMetrics...]}
struct SnapshotMessage {
    std::uint64_t at = 0;      // CLOCK_MONOTONIC ns of the probe's sample (same clock as
                               // takenAtNs)
    std::uint64_t seq = 0;     // 1, 2, 3... per connection; a gap = snapshots dropped for it
    std::uint64_t dropped = 0; // "dropped", optional: snapshots dropped for this client so far
    bool truncated = false;    // "truncated", optional: loops left out to fit kMaxFrameBytes
    QList<LoopMetrics> loops;

    QCborMap toCbor() const;
    static std::optional<SnapshotMessage> fromCbor(const QCborMap& m, QString* error = nullptr);
    // {"t":"snapshot","at":..,"seq":..,"loops":[LoopMetrics::toJson()...]} (+ dropped,
    // truncated when set): one line of an inspector's --dump.
    QJsonObject toJson() const;
};

// {"t":"event","kind":..,"loop":<id>, ...}
//   loopAdded:       + "name", "tid"
//   loopRemoved:     nothing more
//   fastPathChanged: + "mode" (fastPathModeName), "active" (bool)
struct EventMessage {
    QString kind; // one of eventKind::*
    std::uint64_t loop = 0;
    QString name;        // loopAdded
    qint64 tid = 0;      // loopAdded
    QString mode;        // fastPathChanged
    bool active = false; // fastPathChanged

    QCborMap toCbor() const;
    static std::optional<EventMessage> fromCbor(const QCborMap& m, QString* error = nullptr);
};

// ---- dispatch ------------------------------------------------------------------------------

using ClientMessage = std::variant<ClientHello, Subscribe, Unsubscribe>;
using ServerMessage = std::variant<ServerHello, Subscribed, ErrorMessage, LoopsMessage,
                                   SnapshotMessage, EventMessage>;

// Decodes a message by its "t". nullopt (with *error set) for an unknown type or a malformed
// message; *unknownType (when not null) tells the two apart.
std::optional<ClientMessage> parseClientMessage(const QCborMap& m, QString* error = nullptr,
                                                bool* unknownType = nullptr);
std::optional<ServerMessage> parseServerMessage(const QCborMap& m, QString* error = nullptr,
                                                bool* unknownType = nullptr);

} // namespace libloop::protocol
