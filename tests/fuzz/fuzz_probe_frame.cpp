// Fuzz harness: arbitrary bytes into the probe protocol's frame decoder and message parsers
// (libloop::protocol, what the probe and the inspector read from a socket).
//
// Input: byte 0 seeds how the stream is split into chunks, byte 1 picks the decoder's frame
// limit (small limits reach the oversized path cheaply); the rest is the byte stream.
// Properties checked (any violation aborts with a message):
//  - feeding the stream whole and feeding it in arbitrary chunks give the same messages and the
//    same sticky error (framing does not depend on how reads split the stream);
//  - the decoder never buffers more than one frame (header + limit);
//  - nothing fed after an error produces a message;
//  - every message has a non-empty text "t"; it survives encodeFrame → decodePayload unchanged;
//  - a message the typed parsers accept re-encodes (toCbor) into one they accept again, of the
//    same type, with the same encoding (parse ∘ toCbor is a fixed point).
#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>

#include <QtCore/qcborvalue.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <variant>
#include <vector>

using namespace libloop::protocol;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_probe_frame: property violated: %s\n", what);
    std::abort();
}

struct Outcome {
    std::vector<QByteArray> messages; // each message's canonical CBOR
    FrameError error = FrameError::None;
};

Outcome decodeAll(QByteArrayView stream, qsizetype limit, std::uint8_t splitSeed) {
    FrameDecoder dec(limit);
    Outcome out;
    std::uint32_t x = splitSeed | 1u;
    qsizetype pos = 0;
    while (pos < stream.size()) {
        qsizetype n = stream.size() - pos; // splitSeed 0: one chunk
        if (splitSeed != 0) {
            x = x * 1103515245u + 12345u;
            n = std::min<qsizetype>(n, 1 + qsizetype((x >> 16) % 97));
        }
        const bool failedBefore = dec.failed();
        const std::size_t before = out.messages.size();
        dec.feed(stream.sliced(pos, n));
        pos += n;
        if (dec.bufferedBytes() > kFrameHeaderBytes + limit)
            fail("decoder buffers more than one frame");
        while (auto m = dec.next())
            out.messages.push_back(QCborValue(*m).toCbor());
        if (failedBefore && out.messages.size() != before)
            fail("a message decoded from bytes fed after the error");
    }
    out.error = dec.error();
    return out;
}

template <class Variant> void checkFixedPoint(const Variant& v) {
    std::visit(
        [](const auto& typed) {
            const QCborMap again = typed.toCbor();
            using T = std::decay_t<decltype(typed)>;
            QString err;
            const auto reparsed = T::fromCbor(again, &err);
            if (!reparsed)
                fail("a parsed message does not parse again after toCbor");
            if (QCborValue(reparsed->toCbor()).toCbor() != QCborValue(again).toCbor())
                fail("parse . toCbor is not a fixed point");
        },
        v);
}

void checkMessage(const QByteArray& cbor) {
    const QCborMap m = QCborValue::fromCbor(cbor).toMap();
    const QCborValue t = m.value(QStringLiteral("t"));
    if (!t.isString() || t.toString().isEmpty())
        fail("a message without a non-empty text \"t\"");
    const QByteArray frame = encodeFrame(m);
    if (frame.isEmpty())
        fail("a decoded message does not encode");
    QCborMap back;
    if (decodePayload(QByteArrayView(frame).sliced(kFrameHeaderBytes), &back) != FrameError::None)
        fail("an encoded message does not decode");
    if (QCborValue(back).toCbor() != cbor)
        fail("encode/decode changed a message");
    if (auto c = parseClientMessage(m))
        checkFixedPoint(*c);
    if (auto s = parseServerMessage(m))
        checkFixedPoint(*s);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const std::uint8_t splitSeed = data[0];
    static constexpr qsizetype kLimits[] = {kMaxFrameBytes, 64, 300, 4096};
    const qsizetype limit = kLimits[data[1] % 4];
    const QByteArrayView stream(reinterpret_cast<const char*>(data + 2), qsizetype(size - 2));

    const Outcome whole = decodeAll(stream, limit, 0);
    const Outcome split = decodeAll(stream, limit, splitSeed);
    if (whole.messages != split.messages || whole.error != split.error)
        fail("chunking changed the decoded messages or the error");
    for (const QByteArray& m : whole.messages)
        checkMessage(m);
    return 0;
}
