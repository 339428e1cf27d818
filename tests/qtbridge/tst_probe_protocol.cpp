// The probe's wire format alone (libloop::protocol): frames and the decoder's errors, the
// message schema and its round trips (CBOR and JSON), and discovery (directory rules, socket
// names, live/stale probes). Links the protocol library only: no libloop, no probe.
#include "probe_test_files.h"
#include <libloop/protocol/protocol.h>

#include <QtCore/qcborarray.h>
#include <QtCore/qcborvalue.h>
#include <QtCore/qdatetime.h>
#include <QtCore/qdir.h>
#include <QtCore/qfile.h>
#include <QtCore/qfileinfo.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qrandom.h>
#include <QtCore/qscopeguard.h>
#include <QtCore/qtemporarydir.h>
#include <QtTest/qtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <limits>

using namespace libloop::protocol;

using probetest::deadPid;
using probetest::fabricateSocket;

namespace {

QCborMap msg(const char* t, int n = 0) {
    QCborMap m;
    m.insert(QLatin1String("t"), QString::fromLatin1(t));
    m.insert(QLatin1String("n"), n);
    return m;
}

QByteArray header(quint32 n) {
    QByteArray h(4, '\0');
    h[0] = char(n >> 24);
    h[1] = char(n >> 16);
    h[2] = char(n >> 8);
    h[3] = char(n);
    return h;
}

QByteArray framed(const QByteArray& payload) {
    return header(quint32(payload.size())) + payload;
}

// Every field with a distinct value.
LoopMetrics fullMetrics() {
    LoopMetrics m;
    m.id = 7;
    m.takenAtNs = 123456789012345;
    m.taskLatency = LatencySummary{1001, 11, 12, 13, 14, 15, 12.5};
    m.timerLateness = LatencySummary{2002, 21, 22, 23, 24, 25, 22.25};
    m.tasksPerSecond = 1234.5;
    m.utilisation = 0.75;
    m.windowNs = 1000000000;
    m.busyNs = 31;
    m.idleNs = 32;
    m.externalQueue = 33;
    m.externalQueueMax = 34;
    m.internalQueue = 35;
    m.internalQueueMax = 36;
    m.microtaskRingUsed = 37;
    m.microtaskRingMax = 38;
    m.microtaskRingCapacity = 1024;
    m.microtaskOverflow = 39;
    m.microtaskOverflowMax = 40;
    m.timerHeapSize = 5000;
    m.timerHeapMax = 5001;
    m.registeredFds = 41;
    m.iterations = 42;
    m.tasksRun = 43;
    m.microtasksRun = 44;
    m.timersRun = 45;
    m.fdCallbacksRun = 46;
    m.callbackErrors = 47;
    m.microtaskBudgetHits = 48;
    m.wakeSyscalls = 49;
    m.fastPathMode = QStringLiteral("forced");
    m.fastPathActive = true;
    m.fastPathTransitions = 50;
    m.state = QStringLiteral("sleeping");
    return m;
}

} // namespace

class tst_ProbeProtocol : public QObject {
    Q_OBJECT
private slots:
    // frames
    void frameRoundTripEverySplit();
    void severalFramesInOneChunk();
    void largestFrameAccepted();
    void decoderErrors_data();
    void decoderErrors();
    void errorIsStickyAfterGoodMessages();
    void midFrame();
    void randomInputNeverCrashes();
    // schema
    void fieldNamesAreMetricsSnapshots();
    void loopMetricsRoundTrip();
    void loopMetricsIllTyped();
    void snapshotMessageRoundTrip();
    void messagesRoundTrip();
    void subscribeRate();
    void dispatchUnknownType();
    // discovery
    void socketNames();
    void longDirectoryStillFits();
    void defaultDirectoryRule();
    void directoryCreatedPrivate();
    void directoryRefused();
    void processStartTimes();
    void listAndCleanStale();
};

// ---- frames --------------------------------------------------------------------------------

void tst_ProbeProtocol::frameRoundTripEverySplit() {
    const QByteArray stream =
        encodeFrame(msg("a", 1)) + encodeFrame(msg("bb", 2)) + encodeFrame(msg("ccc", 3));
    QVERIFY(!stream.isEmpty());
    for (qsizetype cut = 0; cut <= stream.size(); ++cut) {
        for (qsizetype cut2 = cut; cut2 <= stream.size(); cut2 += 7) {
            FrameDecoder d;
            d.feed(QByteArrayView(stream).first(cut));
            d.feed(QByteArrayView(stream).sliced(cut, cut2 - cut));
            d.feed(QByteArrayView(stream).sliced(cut2));
            QVERIFY2(!d.failed(), qPrintable(d.errorString()));
            QCOMPARE(d.next(), std::optional<QCborMap>(msg("a", 1)));
            QCOMPARE(d.next(), std::optional<QCborMap>(msg("bb", 2)));
            QCOMPARE(d.next(), std::optional<QCborMap>(msg("ccc", 3)));
            QVERIFY(!d.next());
            QVERIFY(!d.midFrame());
        }
    }
    // byte by byte
    FrameDecoder d;
    int got = 0;
    for (char c : stream) {
        d.feed(QByteArrayView(&c, 1));
        while (d.next())
            ++got;
    }
    QCOMPARE(got, 3);
}

void tst_ProbeProtocol::severalFramesInOneChunk() {
    QByteArray stream;
    for (int i = 0; i < 1000; ++i)
        stream += encodeFrame(msg("x", i));
    FrameDecoder d;
    d.feed(stream);
    for (int i = 0; i < 1000; ++i)
        QCOMPARE(d.next(), std::optional<QCborMap>(msg("x", i)));
    QVERIFY(!d.hasMessage());
    QVERIFY(!d.failed());
}

void tst_ProbeProtocol::largestFrameAccepted() {
    // A map whose encoding is exactly kMaxFrameBytes: {"t":"x","b":<bytes>}.
    QCborMap m = msg("x");
    m.remove(QLatin1String("n"));
    m.insert(QLatin1String("b"), QByteArray(100, 'z'));
    const qsizetype overhead = QCborValue(m).toCbor().size() - 100;
    // byte-string length prefixes: 100 -> 2 bytes, ~1 MiB -> 5 bytes
    m.insert(QLatin1String("b"), QByteArray(kMaxFrameBytes - overhead - 3, 'z'));
    const QByteArray payload = QCborValue(m).toCbor();
    QCOMPARE(payload.size(), kMaxFrameBytes);
    const QByteArray frame = encodeFrame(m);
    QCOMPARE(frame.size(), kMaxFrameBytes + 4);
    FrameDecoder d;
    d.feed(frame);
    QVERIFY2(!d.failed(), qPrintable(d.errorString()));
    QCOMPARE(d.next(), std::optional<QCborMap>(m));

    // One byte more is refused by both sides.
    m.insert(QLatin1String("b"), QByteArray(kMaxFrameBytes - overhead - 2, 'z'));
    QVERIFY(encodeFrame(m).isEmpty());
    FrameDecoder d2;
    d2.feed(framed(QCborValue(m).toCbor()));
    QCOMPARE(d2.error(), FrameError::Oversized);
}

void tst_ProbeProtocol::decoderErrors_data() {
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<FrameError>("error");

    const QByteArray good = QCborValue(msg("ok")).toCbor();
    QCborMap noType;
    noType.insert(QLatin1String("x"), 1);
    QCborMap intType;
    intType.insert(QLatin1String("t"), 5);
    QCborMap emptyType;
    emptyType.insert(QLatin1String("t"), QString());

    QTest::newRow("oversized") << header(quint32(kMaxFrameBytes + 1)) << FrameError::Oversized;
    QTest::newRow("oversized 4 GiB") << header(0xffffffffu) << FrameError::Oversized;
    QTest::newRow("zero length") << header(0) << FrameError::EmptyFrame;
    QTest::newRow("array") << framed(QCborValue(QCborArray{1, 2}).toCbor()) << FrameError::NotAMap;
    QTest::newRow("integer") << framed(QByteArray("\x01", 1)) << FrameError::NotAMap;
    QTest::newRow("text") << framed(QCborValue(QStringLiteral("hi")).toCbor())
                          << FrameError::NotAMap;
    QTest::newRow("truncated CBOR")
        << framed(good.left(good.size() - 1)) << FrameError::TruncatedCbor;
    QTest::newRow("truncated CBOR, 1 byte") << framed(good.left(1)) << FrameError::TruncatedCbor;
    QTest::newRow("invalid CBOR") << framed(QByteArray("\xff\xff", 2)) << FrameError::InvalidCbor;
    QTest::newRow("invalid UTF-8 key")
        << framed(QByteArray("\xa1\x61t\x62\xc3\x28", 7)) << FrameError::InvalidCbor;
    QTest::newRow("trailing bytes")
        << framed(good + QByteArray("\x00", 1)) << FrameError::TrailingBytes;
    QTest::newRow("two maps in a frame") << framed(good + good) << FrameError::TrailingBytes;
    QTest::newRow("missing t") << framed(QCborValue(noType).toCbor()) << FrameError::MissingType;
    QTest::newRow("t is an integer") << framed(QCborValue(intType).toCbor()) << FrameError::BadType;
    QTest::newRow("t is empty") << framed(QCborValue(emptyType).toCbor()) << FrameError::BadType;
    // {"t":"x","d":[[[[...]]]]} nested 1000 deep
    QByteArray deep("\xa2\x61t\x61x\x61"
                    "d",
                    7);
    deep += QByteArray(1000, '\x81') + QByteArray("\x01", 1);
    QTest::newRow("nesting") << framed(deep) << FrameError::TooDeep;
    // Containers and strings claiming 2^64-1 elements / bytes in a 10-byte frame: refused
    // without allocating for the claim.
    QTest::newRow("huge array claim")
        << framed(QByteArray("\xa1\x61t\x9b\xff\xff\xff\xff\xff\xff\xff\xff", 12))
        << FrameError::InvalidCbor;
    QTest::newRow("huge string claim")
        << framed(QByteArray("\xa1\x61t\x7b\x00\xff\xff\xff\xff\xff\xff\xff", 12))
        << FrameError::TruncatedCbor;
    QByteArray nestedClaims("\xa1\x61t", 3);
    for (int i = 0; i < 15; ++i)
        nestedClaims += QByteArray("\x9a\x00\x01\x00\x00", 5); // arrays of 65536 elements
    QTest::newRow("nested length claims") << framed(nestedClaims) << FrameError::TruncatedCbor;
}

void tst_ProbeProtocol::decoderErrors() {
    QFETCH(QByteArray, bytes);
    QFETCH(FrameError, error);
    FrameDecoder d;
    d.feed(bytes);
    QVERIFY(!d.hasMessage());
    QCOMPARE(d.error(), error);
    QVERIFY(!d.errorString().isEmpty());
    // Nothing after an error is looked at.
    d.feed(encodeFrame(msg("after")));
    QVERIFY(!d.next());
    // decodePayload agrees for payload-level errors.
    if (bytes.size() > 4) {
        QString detail;
        QCOMPARE(decodePayload(QByteArrayView(bytes).sliced(4), nullptr, &detail), error);
        QVERIFY(!detail.isEmpty());
    }
    d.reset();
    QVERIFY(!d.failed());
    d.feed(encodeFrame(msg("again")));
    QCOMPARE(d.next(), std::optional<QCborMap>(msg("again")));
}

void tst_ProbeProtocol::errorIsStickyAfterGoodMessages() {
    FrameDecoder d;
    d.feed(encodeFrame(msg("one")) + encodeFrame(msg("two")) + header(0) +
           encodeFrame(msg("three")));
    QVERIFY(d.failed());
    QCOMPARE(d.error(), FrameError::EmptyFrame);
    QCOMPARE(d.next(), std::optional<QCborMap>(msg("one")));
    QCOMPARE(d.next(), std::optional<QCborMap>(msg("two")));
    QVERIFY(!d.next());
    QCOMPARE(QString::fromLatin1(frameErrorName(FrameError::Oversized)),
             QStringLiteral("oversized"));
}

void tst_ProbeProtocol::midFrame() {
    const QByteArray f = encodeFrame(msg("m"));
    FrameDecoder d;
    QVERIFY(!d.midFrame());
    d.feed(QByteArrayView(f).first(2));
    QVERIFY(d.midFrame());
    QCOMPARE(d.bufferedBytes(), 2);
    d.feed(QByteArrayView(f).sliced(2, 4));
    QVERIFY(d.midFrame());
    d.feed(QByteArrayView(f).sliced(6));
    QVERIFY(!d.midFrame());
    QVERIFY(d.next());
    // A header announcing 1 MiB followed by one byte holds those 5 bytes, not a megabyte.
    FrameDecoder big;
    big.feed(header(quint32(kMaxFrameBytes)) + QByteArray("\xa1", 1));
    QVERIFY(big.midFrame());
    QCOMPARE(big.bufferedBytes(), 5);
}

void tst_ProbeProtocol::randomInputNeverCrashes() {
    // A cheap in-tree fuzz pass (the real fuzzer lives in tests/fuzz): random bytes, random
    // mutations of valid frames, random chunking. Only "no crash, no sanitizer report" counts.
    QRandomGenerator rng(20240611);
    const QByteArray valid = encodeFrame(msg("hello", 1)) + encodeFrame(fullMetrics().toCbor());
    int messages = 0, errors = 0;
    for (int round = 0; round < 3000; ++round) {
        QByteArray input;
        if (round % 2) {
            input = valid;
            const int flips = 1 + int(rng.bounded(8));
            for (int i = 0; i < flips; ++i)
                input[qsizetype(rng.bounded(quint32(input.size())))] = char(rng.bounded(256));
        } else {
            input.resize(qsizetype(rng.bounded(300)));
            for (char& c : input)
                c = char(rng.bounded(256));
            if (input.size() >= 4 && rng.bounded(2)) // plausible lengths
                input[0] = input[1] = 0;
        }
        FrameDecoder d;
        qsizetype at = 0;
        while (at < input.size()) {
            const qsizetype n = std::min<qsizetype>(input.size() - at, 1 + rng.bounded(40));
            d.feed(QByteArrayView(input).sliced(at, n));
            at += n;
            while (auto m = d.next()) {
                ++messages;
                // Whatever decoded must also survive the schema parsers.
                (void)parseServerMessage(*m);
                (void)parseClientMessage(*m);
                (void)LoopMetrics::fromCbor(*m);
            }
        }
        errors += d.failed();
    }
    QVERIFY(messages > 0);
    QVERIFY(errors > 0);
}

// ---- schema --------------------------------------------------------------------------------

void tst_ProbeProtocol::fieldNamesAreMetricsSnapshots() {
    // libloop::MetricsSnapshot's fields, in declaration order (libloop/metrics.h); the probe
    // checks the struct's size at compile time so that a new field cannot go unnoticed.
    const QStringList expected{
        "id",
        "takenAtNs",
        "taskLatency",
        "timerLateness",
        "tasksPerSecond",
        "utilisation",
        "windowNs",
        "busyNs",
        "idleNs",
        "externalQueue",
        "externalQueueMax",
        "internalQueue",
        "internalQueueMax",
        "microtaskRingUsed",
        "microtaskRingMax",
        "microtaskRingCapacity",
        "microtaskOverflow",
        "microtaskOverflowMax",
        "timerHeapSize",
        "timerHeapMax",
        "registeredFds",
        "iterations",
        "tasksRun",
        "microtasksRun",
        "timersRun",
        "fdCallbacksRun",
        "callbackErrors",
        "microtaskBudgetHits",
        "wakeSyscalls",
        "fastPathMode",
        "fastPathActive",
        "fastPathTransitions",
        "state",
    };
    QCOMPARE(LoopMetrics::fieldNames(), expected);
    const QCborMap c = fullMetrics().toCbor();
    QCOMPARE(c.size(), expected.size());
    for (const QString& name : expected)
        QVERIFY2(c.contains(name), qPrintable(name));
    const QJsonObject j = fullMetrics().toJson();
    QCOMPARE(QStringList(j.keys()).size(), expected.size());
    for (const QString& name : expected)
        QVERIFY2(j.contains(name), qPrintable(name));
    const QStringList latencyKeys{"count", "max", "mean", "p50", "p90", "p95", "p99"};
    QCOMPARE(j.value(QLatin1String("taskLatency")).toObject().keys(), latencyKeys);
    QVERIFY(c.value(QLatin1String("timerLateness")).isMap());
}

void tst_ProbeProtocol::loopMetricsRoundTrip() {
    const LoopMetrics m = fullMetrics();
    // CBOR, through a real frame
    FrameDecoder d;
    QCborMap carrier = m.toCbor();
    carrier.insert(QLatin1String("t"), QStringLiteral("x"));
    d.feed(encodeFrame(carrier));
    auto decoded = d.next();
    QVERIFY(decoded);
    QString error;
    auto back = LoopMetrics::fromCbor(*decoded, &error);
    QVERIFY2(back, qPrintable(error));
    QCOMPARE(*back, m);
    // JSON, through text
    const QByteArray text = QJsonDocument(m.toJson()).toJson(QJsonDocument::Compact);
    const QJsonObject parsed = QJsonDocument::fromJson(text).object();
    QCOMPARE(parsed.value(QLatin1String("timerHeapSize")).toInteger(), 5000);
    QCOMPARE(parsed.value(QLatin1String("state")).toString(), QStringLiteral("sleeping"));
    QCOMPARE(parsed.value(QLatin1String("taskLatency"))
                 .toObject()
                 .value(QLatin1String("mean"))
                 .toDouble(),
             12.5);
    auto fromJson = LoopMetrics::fromJson(parsed, &error);
    QVERIFY2(fromJson, qPrintable(error));
    QCOMPARE(*fromJson, m);
    // Values beyond 2^63-1 are clamped, not wrapped.
    LoopMetrics huge;
    huge.id = 1;
    huge.tasksRun = ~std::uint64_t(0);
    QCOMPARE(LoopMetrics::fromCbor(huge.toCbor())->tasksRun,
             std::uint64_t(std::numeric_limits<qint64>::max()));
}

void tst_ProbeProtocol::loopMetricsIllTyped() {
    QString error;
    QCborMap m = fullMetrics().toCbor();
    m.insert(QLatin1String("tasksRun"), QStringLiteral("many"));
    QVERIFY(!LoopMetrics::fromCbor(m, &error));
    QVERIFY2(error.contains(QLatin1String("tasksRun")), qPrintable(error));

    m = fullMetrics().toCbor();
    m.insert(QLatin1String("timerHeapSize"), -1);
    QVERIFY(!LoopMetrics::fromCbor(m, &error));

    m = fullMetrics().toCbor();
    m.insert(QLatin1String("taskLatency"), 3);
    QVERIFY(!LoopMetrics::fromCbor(m, &error));

    m = fullMetrics().toCbor();
    QCborMap lat = m.value(QLatin1String("taskLatency")).toMap();
    lat.insert(QLatin1String("p99"), QStringLiteral("x"));
    m.insert(QLatin1String("taskLatency"), lat);
    QVERIFY(!LoopMetrics::fromCbor(m, &error));
    QVERIFY2(error.contains(QLatin1String("p99")), qPrintable(error));

    m = fullMetrics().toCbor();
    m.remove(QLatin1String("id"));
    QVERIFY(!LoopMetrics::fromCbor(m, &error));
    QVERIFY2(error.contains(QLatin1String("id")), qPrintable(error));

    // Unknown keys are ignored; absent optional ones default.
    QCborMap minimal;
    minimal.insert(QLatin1String("id"), 3);
    minimal.insert(QLatin1String("future"), QStringLiteral("field"));
    auto lm = LoopMetrics::fromCbor(minimal, &error);
    QVERIFY(lm);
    QCOMPARE(lm->id, 3u);
    QCOMPARE(lm->timerHeapSize, 0u);
}

void tst_ProbeProtocol::snapshotMessageRoundTrip() {
    SnapshotMessage s;
    s.at = 99;
    s.seq = 4;
    s.dropped = 2;
    s.loops = {fullMetrics(), fullMetrics()};
    s.loops[1].id = 8;
    FrameDecoder d;
    d.feed(encodeFrame(s.toCbor()));
    auto m = d.next();
    QVERIFY(m);
    QCOMPARE(messageType(*m), QStringLiteral("snapshot"));
    auto parsed = parseServerMessage(*m);
    QVERIFY(parsed);
    auto* back = std::get_if<SnapshotMessage>(&*parsed);
    QVERIFY(back);
    QCOMPARE(back->at, 99u);
    QCOMPARE(back->seq, 4u);
    QCOMPARE(back->dropped, 2u);
    QCOMPARE(back->truncated, false);
    QCOMPARE(back->loops.size(), 2);
    QCOMPARE(back->loops[0], s.loops[0]);
    QCOMPARE(back->loops[1], s.loops[1]);
    const QJsonObject j = s.toJson();
    QCOMPARE(j.value(QLatin1String("t")).toString(), QStringLiteral("snapshot"));
    QCOMPARE(j.value(QLatin1String("loops")).toArray().size(), 2);
    QCOMPARE(j.value(QLatin1String("loops")).toArray().at(1).toObject(), s.loops[1].toJson());
    // The JSON form and the CBOR form carry the same keys and values.
    QCOMPARE(QCborValue(s.toCbor()).toJsonValue().toObject(), j);
}

void tst_ProbeProtocol::messagesRoundTrip() {
    auto through = [](const QCborMap& m) {
        FrameDecoder d;
        d.feed(encodeFrame(m));
        return d.next().value_or(QCborMap());
    };
    ClientHello ch;
    ch.client = QStringLiteral("inspector");
    auto ch2 = ClientHello::fromCbor(through(ch.toCbor()));
    QVERIFY(ch2);
    QCOMPARE(ch2->version, 1);
    QCOMPARE(ch2->client, ch.client);

    ServerHello sh;
    sh.pid = 4242;
    sh.name = QStringLiteral("app");
    sh.started = 1700000000000;
    auto sh2 = ServerHello::fromCbor(through(sh.toCbor()));
    QVERIFY(sh2);
    QCOMPARE(sh2->version, 1);
    QCOMPARE(sh2->caps, (QStringList{"snapshots", "events"}));
    QCOMPARE(sh2->pid, 4242);
    QCOMPARE(sh2->name, QStringLiteral("app"));
    QCOMPARE(sh2->started, 1700000000000);
    QCOMPARE(sh2->rate, 20);

    ErrorMessage e;
    e.code = QLatin1String(errc::Version);
    e.msg = QStringLiteral("nope");
    auto e2 = ErrorMessage::fromCbor(through(e.toCbor()));
    QVERIFY(e2);
    QCOMPARE(e2->code, QStringLiteral("version"));
    QCOMPARE(e2->supported, QList<int>{1});

    LoopsMessage l;
    l.loops = {LoopInfo{1, QStringLiteral("main"), 100}, LoopInfo{2, QStringLiteral("w"), 101}};
    auto l2 = LoopsMessage::fromCbor(through(l.toCbor()));
    QVERIFY(l2);
    QCOMPARE(l2->loops, l.loops);

    EventMessage ev;
    ev.kind = QLatin1String(eventKind::FastPathChanged);
    ev.loop = 3;
    ev.mode = QStringLiteral("auto");
    ev.active = true;
    const QCborMap evc = ev.toCbor();
    QVERIFY(!evc.contains(QLatin1String("name")));
    auto ev2 = EventMessage::fromCbor(through(evc));
    QVERIFY(ev2);
    QCOMPARE(ev2->kind, QStringLiteral("fastPathChanged"));
    QCOMPARE(ev2->loop, 3u);
    QCOMPARE(ev2->mode, QStringLiteral("auto"));
    QCOMPARE(ev2->active, true);
    EventMessage added;
    added.kind = QLatin1String(eventKind::LoopAdded);
    added.loop = 4;
    added.name = QStringLiteral("n");
    added.tid = 77;
    auto added2 = EventMessage::fromCbor(through(added.toCbor()));
    QVERIFY(added2);
    QCOMPARE(added2->name, QStringLiteral("n"));
    QCOMPARE(added2->tid, 77);

    Subscribed ack;
    ack.rate = 100;
    ack.clamped = true;
    auto ack2 = Subscribed::fromCbor(through(ack.toCbor()));
    QVERIFY(ack2);
    QCOMPARE(ack2->rate, 100);
    QCOMPARE(ack2->clamped, true);

    QCOMPARE(messageType(Unsubscribe{}.toCbor()), QStringLiteral("unsubscribe"));
}

void tst_ProbeProtocol::subscribeRate() {
    Subscribe s;
    QVERIFY(!s.toCbor().contains(QLatin1String("rate")));
    auto s1 = Subscribe::fromCbor(s.toCbor());
    QVERIFY(s1);
    QVERIFY(!s1->rate);
    s.rate = 100;
    QCOMPARE(Subscribe::fromCbor(s.toCbor())->rate, std::optional<qint64>(100));
    QCborMap bad = s.toCbor();
    bad.insert(QLatin1String("rate"), 2.5);
    QString error;
    QVERIFY(!Subscribe::fromCbor(bad, &error));
    QVERIFY(error.contains(QLatin1String("rate")));
    bad.insert(QLatin1String("rate"), QStringLiteral("fast"));
    QVERIFY(!Subscribe::fromCbor(bad));
}

void tst_ProbeProtocol::dispatchUnknownType() {
    bool unknown = false;
    QString error;
    QVERIFY(!parseClientMessage(msg("bogus"), &error, &unknown));
    QVERIFY(unknown);
    QVERIFY(error.contains(QLatin1String("bogus")));
    QCborMap hello = msg("hello");
    QVERIFY(!parseClientMessage(hello, &error, &unknown)); // no "v"
    QVERIFY(!unknown);
    hello.insert(QLatin1String("v"), QStringLiteral("one"));
    QVERIFY(!parseClientMessage(hello, &error, &unknown));
    QVERIFY(!unknown);
    auto ok = parseClientMessage(ClientHello{}.toCbor());
    QVERIFY(ok && std::holds_alternative<ClientHello>(*ok));
    auto sub = parseClientMessage(Subscribe{}.toCbor());
    QVERIFY(sub && std::holds_alternative<Subscribe>(*sub));
    QVERIFY(!parseServerMessage(msg("subscribe"), &error, &unknown));
    QVERIFY(unknown);
}

// ---- discovery -----------------------------------------------------------------------------

void tst_ProbeProtocol::socketNames() {
    QCOMPARE(sanitizeProcessName(QString::fromUtf16(u"my app/\u00e9\u2026")),
             QStringLiteral("my_app___"));
    QCOMPARE(sanitizeProcessName(QString()), QStringLiteral("process"));
    const QString f = socketFileName(1234, 98765, QStringLiteral("loop-demo"));
    QCOMPARE(f, QStringLiteral("probe-1234-98765-loop-demo.sock"));
    auto p = parseSocketFileName(f);
    QVERIFY(p);
    QCOMPARE(p->pid, 1234);
    QCOMPARE(p->startTime, 98765u);
    QCOMPARE(p->name, QStringLiteral("loop-demo"));
    // A name starting with digits and dashes still parses back.
    auto q = parseSocketFileName(socketFileName(5, 6, QStringLiteral("7-8-x")));
    QVERIFY(q);
    QCOMPARE(q->pid, 5);
    QCOMPARE(q->startTime, 6u);
    QCOMPARE(q->name, QStringLiteral("7-8-x"));
    // Long names are cut.
    const QString longName(200, QLatin1Char('n'));
    QCOMPARE(parseSocketFileName(socketFileName(1, 2, longName))->name.size(), kMaxNameInFileName);
    for (const char* bad :
         {"probe-1-2-.sock", "probe-x-2-n.sock", "probe-1-2-n.sock.tmp", "other-1-2-n.sock",
          "probe-0-2-n.sock", "probe-1-2-a b.sock", "probe-99999999999999999999-2-n.sock"})
        QVERIFY2(!parseSocketFileName(QLatin1String(bad)), bad);
}

void tst_ProbeProtocol::longDirectoryStillFits() {
    const QString dir = QLatin1Char('/') + QString(60, QLatin1Char('d'));
    QString error;
    const QString path =
        socketPath(dir, 4194304, 18446744073709551615ull, QString(100, QLatin1Char('n')), &error);
    QVERIFY2(!path.isEmpty(), qPrintable(error));
    QVERIFY(QFile::encodeName(path).size() <= kMaxSocketPathBytes);
    QVERIFY(parseSocketFileName(QFileInfo(path).fileName()));
    // No room at all.
    QVERIFY(socketPath(QLatin1Char('/') + QString(100, QLatin1Char('d')), 1, 1, QStringLiteral("n"),
                       &error)
                .isEmpty());
    QVERIFY(error.contains(QLatin1String("too long")));
}

void tst_ProbeProtocol::defaultDirectoryRule() {
    const QByteArray saved = qgetenv("XDG_RUNTIME_DIR");
    const auto restore = qScopeGuard([&] { qputenv("XDG_RUNTIME_DIR", saved); });
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    QVERIFY(QFile::setPermissions(tmp.path(), QFileDevice::ReadOwner | QFileDevice::WriteOwner |
                                                  QFileDevice::ExeOwner));
    const QString fallback = QStringLiteral("/tmp/libloop-%1").arg(::geteuid());
    qputenv("XDG_RUNTIME_DIR", QFile::encodeName(tmp.path()));
    QCOMPARE(defaultSocketDirectory(), tmp.path() + QStringLiteral("/libloop"));
    qunsetenv("XDG_RUNTIME_DIR");
    QCOMPARE(defaultSocketDirectory(), fallback);
    qputenv("XDG_RUNTIME_DIR", "relative/dir");
    QCOMPARE(defaultSocketDirectory(), fallback);
    qputenv("XDG_RUNTIME_DIR", QFile::encodeName(tmp.path() + QStringLiteral("/missing")));
    QCOMPARE(defaultSocketDirectory(), fallback);
    ::chmod(QFile::encodeName(tmp.path()).constData(), 0755); // not private: not usable
    qputenv("XDG_RUNTIME_DIR", QFile::encodeName(tmp.path()));
    QCOMPARE(defaultSocketDirectory(), fallback);
}

void tst_ProbeProtocol::directoryCreatedPrivate() {
    QTemporaryDir tmp;
    const QString dir = tmp.path() + QStringLiteral("/libloop");
    QString error;
    QVERIFY(!checkSocketDirectory(dir, &error));
    QVERIFY2(ensureSocketDirectory(dir, &error), qPrintable(error));
    struct stat st;
    QCOMPARE(::stat(QFile::encodeName(dir).constData(), &st), 0);
    QCOMPARE(st.st_mode & 0777, 0700u);
    QVERIFY(ensureSocketDirectory(dir, &error)); // again: fine
    QVERIFY(listProbes(dir, true, &error).isEmpty());
    QVERIFY(listProbes(tmp.path() + QStringLiteral("/none"), true, &error).isEmpty());
}

void tst_ProbeProtocol::directoryRefused() {
    QTemporaryDir tmp;
    const QString open = tmp.path() + QStringLiteral("/open");
    QVERIFY(QDir().mkdir(open));
    ::chmod(QFile::encodeName(open).constData(), 0755);
    QString error;
    QVERIFY(!ensureSocketDirectory(open, &error));
    QVERIFY2(error.contains(QLatin1String("0755")), qPrintable(error));
    QVERIFY(listProbes(open, true, &error).isEmpty());
    QVERIFY(!error.isEmpty());

    const QString link = tmp.path() + QStringLiteral("/link");
    const QString target = tmp.path() + QStringLiteral("/target");
    QVERIFY(QDir().mkdir(target));
    ::chmod(QFile::encodeName(target).constData(), 0700);
    QVERIFY(QFile::link(target, link));
    QVERIFY(!ensureSocketDirectory(link, &error));
    QVERIFY2(error.contains(QLatin1String("not a directory")), qPrintable(error));

    const QString file = tmp.path() + QStringLiteral("/file");
    QFile f(file);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.close();
    QVERIFY(!ensureSocketDirectory(file, &error));
    // Ownership by another user cannot be set up without privileges; when running as root the
    // check is exercised with a directory chowned to "nobody".
    if (::geteuid() == 0) {
        const QString theirs = tmp.path() + QStringLiteral("/theirs");
        QVERIFY(QDir().mkdir(theirs));
        ::chmod(QFile::encodeName(theirs).constData(), 0700);
        QCOMPARE(::chown(QFile::encodeName(theirs).constData(), 65534, 65534), 0);
        QVERIFY(!ensureSocketDirectory(theirs, &error));
        QVERIFY2(error.contains(QLatin1String("owned by uid 65534")), qPrintable(error));
    }
}

void tst_ProbeProtocol::processStartTimes() {
    const std::uint64_t mine = processStartTime(::getpid());
    QVERIFY(mine > 0);
    QVERIFY(processAlive(::getpid(), mine));
    QVERIFY(!processAlive(::getpid(), mine + 1));
    QCOMPARE(processStartTime(deadPid()), 0u);
    QCOMPARE(processStartTime(-1), 0u);
    const qint64 ms = startTimeToUnixMs(mine);
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    QVERIFY(ms > 0);
    QVERIFY(ms <= now + 1000);
}

void tst_ProbeProtocol::listAndCleanStale() {
    QTemporaryDir tmp;
    const QString dir = tmp.path() + QStringLiteral("/libloop");
    QVERIFY(ensureSocketDirectory(dir));
    const qint64 me = ::getpid();
    const std::uint64_t myStart = processStartTime(me);
    const QString live = socketPath(dir, me, myStart, QStringLiteral("live"));
    const QString dead = socketPath(dir, deadPid(), 4242, QStringLiteral("dead"));
    const QString reused = socketPath(dir, me, myStart + 1, QStringLiteral("reused"));
    for (const QString& p : {live, dead, reused})
        QVERIFY2(fabricateSocket(p), qPrintable(p));
    // Not sockets or not named like one: ignored.
    QFile junk(dir + QStringLiteral("/probe-1-2-junk.sock"));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.close();
    QVERIFY(fabricateSocket(dir + QStringLiteral("/unrelated.sock")));

    QString error;
    const QList<ProbeInfo> alive = listProbes(dir, false, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(alive.size(), 1);
    QCOMPARE(alive[0].pid, me);
    QCOMPARE(alive[0].name, QStringLiteral("live"));
    QCOMPARE(alive[0].path, live);
    QVERIFY(alive[0].alive);

    const QList<ProbeInfo> all = listProbes(dir, true);
    QCOMPARE(all.size(), 3);
    int stale = 0;
    for (const ProbeInfo& p : all)
        stale += !p.alive;
    QCOMPARE(stale, 2);

    QCOMPARE(removeStaleProbes(dir), 2);
    QVERIFY(QFile::exists(live));
    QVERIFY(!QFile::exists(dead));
    QVERIFY(!QFile::exists(reused));
    QVERIFY(QFile::exists(junk.fileName()));
    QCOMPARE(listProbes(dir, true).size(), 1);
}

QTEST_APPLESS_MAIN(tst_ProbeProtocol)
#include "tst_probe_protocol.moc"
