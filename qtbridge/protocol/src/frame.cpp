#include <libloop/protocol/frame.h>

#include <QtCore/qcborstreamreader.h>
#include <QtCore/qcborvalue.h>
#include <QtCore/qendian.h>

#include <algorithm>

namespace libloop::protocol {

namespace {

FrameError setDetail(QString* detail, FrameError e, QString why) {
    if (detail)
        *detail = std::move(why);
    return e;
}

// Maps a QCborStreamReader error to ours.
FrameError classify(QCborError err) {
    switch (err.c) {
    case QCborError::EndOfFile:
    case QCborError::AdvancePastEnd:
        return FrameError::TruncatedCbor;
    case QCborError::NestingTooDeep:
        return FrameError::TooDeep;
    default:
        return FrameError::InvalidCbor;
    }
}

} // namespace

const char* frameErrorName(FrameError e) noexcept {
    switch (e) {
    case FrameError::None:
        return "none";
    case FrameError::EmptyFrame:
        return "empty frame";
    case FrameError::Oversized:
        return "oversized";
    case FrameError::InvalidCbor:
        return "invalid CBOR";
    case FrameError::TruncatedCbor:
        return "truncated CBOR";
    case FrameError::TooDeep:
        return "nesting too deep";
    case FrameError::NotAMap:
        return "not a map";
    case FrameError::TrailingBytes:
        return "trailing bytes";
    case FrameError::MissingType:
        return "missing \"t\"";
    case FrameError::BadType:
        return "ill-typed \"t\"";
    }
    return "unknown";
}

QByteArray encodeFrame(const QCborMap& message) {
    const QByteArray payload = QCborValue(message).toCbor();
    if (payload.isEmpty() || payload.size() > kMaxFrameBytes)
        return {};
    QByteArray frame(kFrameHeaderBytes + payload.size(), Qt::Uninitialized);
    qToBigEndian<quint32>(quint32(payload.size()), frame.data());
    std::copy(payload.cbegin(), payload.cend(), frame.begin() + kFrameHeaderBytes);
    return frame;
}

FrameError decodePayload(QByteArrayView payload, QCborMap* out, QString* detail) {
    if (payload.isEmpty())
        return setDetail(detail, FrameError::EmptyFrame, QStringLiteral("empty frame"));
    // The bytes are only read while this function runs: no copy.
    const QByteArray data = QByteArray::fromRawData(payload.data(), payload.size());

    // 1. Validate the whole item by streaming over it: no container is preallocated, a string is
    //    read only when all its bytes are present, nesting is bounded.
    {
        QCborStreamReader reader(data);
        if (!reader.isMap()) {
            if (reader.lastError() != QCborError::NoError) {
                const QCborError err = reader.lastError();
                return setDetail(detail, classify(err), err.toString());
            }
            return setDetail(detail, FrameError::NotAMap,
                             QStringLiteral("the message is not a CBOR map"));
        }
        if (!reader.next(kMaxNesting - 1)) {
            const QCborError err = reader.lastError();
            return setDetail(detail, classify(err), err.toString());
        }
        if (reader.currentOffset() != data.size())
            return setDetail(
                detail, FrameError::TrailingBytes,
                QStringLiteral("%1 bytes after the map").arg(data.size() - reader.currentOffset()));
    }

    // 2. Build it (every declared length is now known to be backed by bytes).
    QCborParserError perr;
    const QCborValue value = QCborValue::fromCbor(data, &perr);
    if (perr.error != QCborError::NoError) // not expected after step 1; kept as a safety net
        return setDetail(detail, classify(perr.error), perr.errorString());
    if (!value.isMap())
        return setDetail(detail, FrameError::NotAMap,
                         QStringLiteral("the message is not a CBOR map"));
    const QCborMap map = value.toMap();
    const auto type = map.constFind(QLatin1String("t"));
    if (type == map.constEnd())
        return setDetail(detail, FrameError::MissingType,
                         QStringLiteral("the message has no \"t\" key"));
    if (!type.value().isString() || type.value().toString().isEmpty())
        return setDetail(detail, FrameError::BadType,
                         QStringLiteral("\"t\" is not a non-empty text string"));
    if (out)
        *out = map;
    return FrameError::None;
}

FrameDecoder::FrameDecoder(qsizetype maxFrameBytes)
    : maxFrameBytes_(std::clamp<qsizetype>(maxFrameBytes, 1, 0xffffffffll)) {}

void FrameDecoder::feed(QByteArrayView bytes) {
    const char* p = bytes.data();
    qsizetype n = bytes.size();
    while (n > 0 && !failed()) {
        if (expected_ == 0) {
            // Reading the header.
            const qsizetype take = std::min(n, kFrameHeaderBytes - headerFill_);
            std::copy(p, p + take, header_ + headerFill_);
            headerFill_ += take;
            p += take;
            n -= take;
            if (headerFill_ < kFrameHeaderBytes)
                return;
            const quint32 length = qFromBigEndian<quint32>(header_);
            if (length == 0) {
                fail(FrameError::EmptyFrame, QStringLiteral("empty frame (length 0)"));
                return;
            }
            if (qsizetype(length) > maxFrameBytes_) {
                fail(FrameError::Oversized, QStringLiteral("oversized frame: %1 bytes (limit %2)")
                                                .arg(length)
                                                .arg(maxFrameBytes_));
                return;
            }
            expected_ = qsizetype(length);
            continue;
        }
        // Reading the payload: decode straight from the chunk when the whole payload is in it.
        QByteArrayView payload;
        if (buffer_.isEmpty() && n >= expected_) {
            payload = QByteArrayView(p, expected_);
            p += expected_;
            n -= expected_;
        } else {
            const qsizetype take = std::min(n, expected_ - buffer_.size());
            buffer_.append(p, take);
            p += take;
            n -= take;
            if (buffer_.size() < expected_)
                return;
            payload = QByteArrayView(buffer_);
        }
        QCborMap message;
        QString why;
        const FrameError e = decodePayload(payload, &message, &why);
        buffer_.clear();
        buffer_.squeeze(); // a large frame's buffer is not kept for the next small one
        expected_ = 0;
        headerFill_ = 0;
        if (e != FrameError::None) {
            fail(e, QStringLiteral("%1: %2").arg(QLatin1String(frameErrorName(e)), why));
            return;
        }
        queue_.push_back(std::move(message));
    }
}

std::optional<QCborMap> FrameDecoder::next() {
    if (queue_.empty())
        return std::nullopt;
    QCborMap m = std::move(queue_.front());
    queue_.pop_front();
    return m;
}

void FrameDecoder::reset() {
    headerFill_ = 0;
    expected_ = 0;
    buffer_.clear();
    queue_.clear();
    error_ = FrameError::None;
    errorString_.clear();
}

void FrameDecoder::fail(FrameError e, QString why) {
    error_ = e;
    errorString_ = std::move(why);
    headerFill_ = 0;
    expected_ = 0;
    buffer_.clear();
}

} // namespace libloop::protocol
