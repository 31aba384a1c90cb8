import LoadshearScript
import NIOCore

/// Framed reads: fixed header, body length, body. A value-type state machine over the
/// bytes received so far, so tests drive it with any split of the stream. Frames that sit
/// whole inside one read are handed out as slices of that read: no copy.
struct FrameReader {
    enum Event {
        /// A full frame (header + body, contiguous).
        case frame(ByteBuffer)
        /// The body length was above BODYMAX.
        case tooLarge(UInt64)
        /// The handler could not tell the body length: it returned a negative length, or failed.
        case badHeader
    }

    /// Bytes in every frame's header.
    let headerSize: Int
    /// The largest body accepted; a longer one ends the stream with ``Event/tooLarge(_:)``.
    let bodyMax: Int
    /// Where the length comes from: HEADER_LENGTH, the handler, or nothing (header only).
    let lengthSource: LengthSource
    /// Bytes received and not yet framed: the start of the next frame.
    private var pending: ByteBuffer?
    /// Body length of the frame being read, once its header has been seen.
    private var bodyLength: Int?

    /// Where a frame's body length comes from.
    enum LengthSource {
        /// Read from the header where HEADER_LENGTH says.
        case headerLength(HeaderLength)
        /// Asked of the handler's `handle_header`.
        case handler
        /// There is no body: every frame is just its header.
        case none
    }

    /// What `emit` wants after an event: the next frame, nothing more (the rest is dropped:
    /// the session closes), or a pause (the rest is kept, and a later ``feed(_:bodyLengthFromHandler:emit:)``
    /// — of an empty buffer, say — goes on from there).
    enum Next {
        case more, stop, pause
    }

    /// True while part of a frame is waiting for more bytes.
    var hasPending: Bool { pending != nil || bodyLength != nil }

    /// A reader at the start of a stream.
    init(headerSize: Int, bodyMax: Int, lengthSource: LengthSource) {
        self.headerSize = headerSize
        self.bodyMax = bodyMax
        self.lengthSource = lengthSource
    }

    /// Feeds received bytes; calls `emit` for each complete frame or error, in order.
    /// After an error event nothing more is emitted (the session closes).
    /// `emit` says whether to go on (``Next``). `bodyLengthFromHandler` is asked for each
    /// header when the length comes from the handler; nil means `.badHeader`.
    /// Returns true when `emit` paused with at least a header's bytes left (less: nothing can
    /// be handed out before more bytes come, so nothing waits).
    @discardableResult
    mutating func feed(
        _ incoming: ByteBuffer, bodyLengthFromHandler: (UnsafeRawBufferPointer) -> Int?,
        emit: (Event) -> Next
    ) -> Bool {
        var buffer: ByteBuffer
        if var p = pending {
            pending = nil
            var incoming = incoming
            p.writeBuffer(&incoming)
            buffer = p
        } else {
            buffer = incoming
        }
        var paused = false
        while true {
            if bodyLength == nil {
                guard buffer.readableBytes >= headerSize else { break }
                // As the header says it, for the message about a body too large (8 bytes can
                // say more than an Int holds).
                var declared: UInt64?
                let length: Int? = buffer.withUnsafeReadableBytes { raw in
                    let header = UnsafeRawBufferPointer(rebasing: raw[0..<headerSize])
                    switch lengthSource {
                    case .headerLength(let hl):
                        let v = hl.read(header)
                        declared = v
                        return v > UInt64(Int.max) ? Int.max : Int(v)
                    case .handler:
                        return bodyLengthFromHandler(header)
                    case .none:
                        return 0
                    }
                }
                guard let length, length >= 0 else {
                    _ = emit(.badHeader)
                    return false
                }
                if length > bodyMax {
                    _ = emit(.tooLarge(declared ?? UInt64(length)))
                    return false
                }
                bodyLength = length
            }
            let total = headerSize + bodyLength!
            guard buffer.readableBytes >= total else { break }
            let frame = buffer.readSlice(length: total)!
            bodyLength = nil
            let next = emit(.frame(frame))
            if next == .stop { return false }
            if next == .pause {
                paused = true  // the rest stays pending
                break
            }
        }
        if buffer.readableBytes > 0 {
            // Keep the unread tail; the next read appends to it (copy-on-write copies only
            // when the storage is still shared with the read that brought it).
            pending = buffer
            // Only part of a header left: nothing to hand out before more bytes come.
            return paused && buffer.readableBytes >= headerSize
        }
        return false
    }
}
