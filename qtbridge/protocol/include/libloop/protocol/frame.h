// Framing of the probe protocol: a 4-byte big-endian unsigned length N, then N bytes holding
// exactly one CBOR map whose key "t" is a text string (the message type). See PROTOCOL.md.
//
//   QByteArray bytes = libloop::protocol::encodeFrame(map);   // sender
//
//   libloop::protocol::FrameDecoder dec;                      // receiver
//   dec.feed(chunk);                                          // any split, any number of frames
//   while (auto msg = dec.next()) handle(*msg);
//   if (dec.failed()) { report(dec.errorString()); close(); }
//
// The decoder is meant to face hostile input (it is fuzzed): it never crashes, asserts or
// allocates more than a bounded multiple of what it was fed, whatever the bytes.
#pragma once

#include <QtCore/qbytearray.h>
#include <QtCore/qbytearrayview.h>
#include <QtCore/qcbormap.h>
#include <QtCore/qstring.h>

#include <cstdint>
#include <deque>
#include <optional>

namespace libloop::protocol {

// The largest payload (N) a frame may carry. N = 0 or N > kMaxFrameBytes is a protocol error.
inline constexpr qsizetype kMaxFrameBytes = 1 << 20; // 1 MiB
inline constexpr qsizetype kFrameHeaderBytes = 4;
// Arrays, maps and tags nested deeper than this inside one message are refused (the protocol's
// own messages nest 4 deep).
inline constexpr int kMaxNesting = 16;

// Why a stream (or one payload) was refused.
enum class FrameError : std::uint8_t {
    None,
    EmptyFrame,    // N = 0
    Oversized,     // N > the decoder's limit (kMaxFrameBytes)
    InvalidCbor,   // the payload is not well-formed CBOR (bad encoding, invalid UTF-8, ...)
    TruncatedCbor, // the payload ends inside the CBOR item
    TooDeep,       // nesting beyond kMaxNesting
    NotAMap,       // the item is not a map
    TrailingBytes, // bytes after the map, inside the frame
    MissingType,   // no key "t"
    BadType,       // "t" is not a text string (or is empty)
};

// A stable lower-case name ("oversized", "trailing bytes", ...); never null.
const char* frameErrorName(FrameError e) noexcept;

// The frame for `message`: header + the map's CBOR encoding (QCborValue::toCbor). Empty when the
// encoding exceeds kMaxFrameBytes (the caller must split its data; no message of the protocol comes
// near).
QByteArray encodeFrame(const QCborMap& message);

// Decodes one payload (the N bytes after a header). On success stores the map in *out (when not
// null) and returns None; otherwise returns the error and, when `detail` is not null, a
// human-readable explanation. Validates the whole item with QCborStreamReader (bounded nesting,
// every length checked against the bytes present) before QCborValue builds it, so a tiny
// payload can never make it preallocate large containers.
FrameError decodePayload(QByteArrayView payload, QCborMap* out, QString* detail = nullptr);

// Turns a byte stream into messages. Feed it chunks as they arrive (partial frames and several
// frames per chunk are fine); complete frames are decoded as soon as their last byte arrives and
// queued for next(). The first error is sticky: the messages decoded before it are still
// returned by next(), everything fed after it is ignored. Memory: at most one partial frame
// (≤ 4 + maxFrameBytes bytes) plus the queued messages, which only come from bytes fed.
class FrameDecoder {
public:
    explicit FrameDecoder(qsizetype maxFrameBytes = kMaxFrameBytes);

    void feed(QByteArrayView bytes);

    // The next complete message, oldest first; nullopt when none is queued.
    std::optional<QCborMap> next();
    bool hasMessage() const noexcept { return !queue_.empty(); }

    bool failed() const noexcept { return error_ != FrameError::None; }
    FrameError error() const noexcept { return error_; }
    // "oversized frame: 4294967295 bytes (limit 1048576)", ...; empty while no error.
    QString errorString() const { return errorString_; }

    // True while part of a frame (header or payload) is buffered: a stream that ends now ends
    // inside a frame (a truncated frame).
    bool midFrame() const noexcept { return headerFill_ > 0 || expected_ > 0; }
    // Bytes of the current partial frame held (header and payload).
    qsizetype bufferedBytes() const noexcept { return headerFill_ + buffer_.size(); }

    // Back to the initial state (no error, nothing buffered or queued).
    void reset();

private:
    void fail(FrameError e, QString why);

    qsizetype maxFrameBytes_;
    char header_[kFrameHeaderBytes] = {};
    qsizetype headerFill_ = 0; // header bytes received of the current frame
    qsizetype expected_ = 0;   // payload length once the header is complete, else 0
    QByteArray buffer_;        // the current frame's payload so far
    std::deque<QCborMap> queue_;
    FrameError error_ = FrameError::None;
    QString errorString_;
};

} // namespace libloop::protocol
