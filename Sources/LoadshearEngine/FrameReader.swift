import LoadshearScript
import NIOCore

/// Framed reads: fixed header, body length, body. A value-type state machine over the
/// bytes received so far, so tests drive it with any split of the stream. Frames that sit
/// whole inside one read are handed out as slices of that read: no copy.
struct FrameReader {
    enum Event {
        /// A full frame (header + body, contiguous).
        case frame(ByteBuffer)
        /// The body length was above BODYMAX, or the handler could not tell it.
        case tooLarge(Int)
        case badHeader
    }

    let headerSize: Int
    let bodyMax: Int
    /// Where the length comes from: HEADER_LENGTH, the handler, or nothing (header only).
    let lengthSource: LengthSource
    private var pending: ByteBuffer?
    /// Body length of the frame being read, once its header has been seen.
    private var bodyLength: Int?

    enum LengthSource {
        case headerLength(HeaderLength)
        case handler
        case none
    }

    /// True while part of a frame is waiting for more bytes.
    var hasPending: Bool { pending != nil || bodyLength != nil }

    init(headerSize: Int, bodyMax: Int, lengthSource: LengthSource) {
        self.headerSize = headerSize
        self.bodyMax = bodyMax
        self.lengthSource = lengthSource
    }

    /// Feeds received bytes; calls `emit` for each complete frame or error, in order.
    /// After an error event nothing more is emitted (the session closes).
    mutating func feed(
        _ incoming: ByteBuffer, bodyLengthFromHandler: (UnsafeRawBufferPointer) -> Int?,
        emit: (Event) -> Bool
    ) {
        var buffer: ByteBuffer
        if var p = pending {
            pending = nil
            var incoming = incoming
            p.writeBuffer(&incoming)
            buffer = p
        } else {
            buffer = incoming
        }
        while true {
            if bodyLength == nil {
                guard buffer.readableBytes >= headerSize else { break }
                let length: Int? = buffer.withUnsafeReadableBytes { raw in
                    let header = UnsafeRawBufferPointer(rebasing: raw[0..<headerSize])
                    switch lengthSource {
                    case .headerLength(let hl):
                        let v = hl.read(header)
                        return v > UInt64(Int.max) ? Int.max : Int(v)
                    case .handler:
                        return bodyLengthFromHandler(header)
                    case .none:
                        return 0
                    }
                }
                guard let length, length >= 0 else {
                    _ = emit(.badHeader)
                    return
                }
                if length > bodyMax {
                    _ = emit(.tooLarge(length))
                    return
                }
                bodyLength = length
            }
            let total = headerSize + bodyLength!
            guard buffer.readableBytes >= total else { break }
            let frame = buffer.readSlice(length: total)!
            bodyLength = nil
            if !emit(.frame(frame)) { return }
        }
        if buffer.readableBytes > 0 {
            // Keep the unread tail; the next read appends to it (copy-on-write copies only
            // when the storage is still shared with the read that brought it).
            pending = buffer
        }
    }
}
