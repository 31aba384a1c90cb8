import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix

/// One TCP session: connect, framed reads answered by the shard's handler, and a batched
/// write loop over its payload list. Lives on its shard's event loop for its whole life.
final class TCPSession: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State {
        case created, connecting, active, closing, closed
    }

    let index: Int
    /// Set right after init; the shard outlives its sessions.
    unowned(unsafe) var shard: Shard!
    private let entries: [PayloadEntry]
    private let listCount: Int

    private(set) var state = State.created
    private var context: ChannelHandlerContext?
    private var channel: Channel?

    // Payload cursor: `position` counts payloads into the current pass of the list.
    private var entryIndex = 0
    private var copyIndex = 0
    private var position = 0
    /// Payloads released by SENDs so far (first pass).
    private var released = 0
    private var flooding = false
    private var draining = false
    private var closeRequested = false
    private var closedByUs = false
    private var pumping = false
    private var pumpScheduled = false

    /// Handler replies waiting to go out; they go before payloads.
    private var responses = CircularBuffer<(ByteBuffer, Int)>()
    private var reader: FrameReader?
    /// Completes when the last batch handed to the socket is written.
    private var lastWrite: EventLoopFuture<Void>?
    /// One write is held back so the batch's last write can carry the batch promise.
    private var held: ByteBuffer?

    init(index: Int, entries: [PayloadEntry]) {
        self.index = index
        self.entries = entries
        self.listCount = entries.reduce(0) { $0 + $1.copies }
    }

    var isDraining: Bool { draining && (state == .active || state == .connecting) }

    // MARK: actions (called by the shard, on the loop)

    func connect(to address: SocketAddress, on loop: EventLoop) {
        state = .connecting
        let config = shard.config
        let bound = NIOLoopBound(self, eventLoop: loop)
        ClientBootstrap(group: loop)
            .connectTimeout(config.connectTimeout)
            .channelOption(.writeBufferWaterMark,
                           value: .init(low: config.lowWatermark, high: config.highWatermark))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(to: address)
            .whenComplete { result in
                let session = bound.value
                session.shard.connectDone()
                switch result {
                case .success(let channel):
                    session.channel = channel
                    if session.closeRequested { session.closeNow() }
                case .failure:
                    if session.state == .connecting || session.state == .created {
                        session.state = .closed
                        session.shard.counters.add(.connectionsFailed)
                        session.shard.sessionEnded()
                    }
                }
            }
    }

    func release(_ copies: Int) {
        released = min(released + copies, listCount)
        pump()
    }

    func flood() {
        flooding = true
        pump()
    }

    func drain() {
        draining = true
        if state == .active, !hasWork { closeAfterWrites() } else { pump() }
    }

    func disconnect() {
        switch state {
        case .created:
            state = .closed
        case .connecting:
            closeRequested = true
        case .active:
            closeNow()
        case .closing, .closed:
            break
        }
    }

    /// A queued connect that will never start.
    func abandon() {
        state = .closed
    }

    // MARK: channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
        state = .active
        let counters = shard.counters
        counters.add(.connectionsSucceeded)
        counters.connected(at: NIODeadline.now().uptimeNanoseconds)
        counters.add(.connectionsActive)
        let settings = shard.plan.settings
        if settings.read, let headerSize = settings.headerSize {
            let source: FrameReader.LengthSource =
                settings.headerLength.map { .headerLength($0) } ?? (shard.handler.readsHeaders ? .handler : .none)
            reader = FrameReader(headerSize: headerSize, bodyMax: settings.bodyMax ?? Int.max, lengthSource: source)
        }
        if closeRequested {
            closeNow()
            return
        }
        if draining, !hasWork {
            closeNow()
            return
        }
        pump()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasOpen = state != .closed
        state = .closed
        self.context = nil
        held = nil
        if wasOpen {
            let counters = shard.counters
            counters.add(.connectionsActive, -1)
            counters.add(closedByUs ? .closedByUs : .closedByPeer)
            shard.sessionEnded()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let counters = shard.counters
        counters.add(.bytesRead, buffer.readableBytes)
        guard reader != nil, state == .active else { return }
        let handler = shard.handler
        var replies: ByteBuffer?
        var replyCount = 0
        var frames = 0
        var failure: FrameReader.Event?
        reader!.feed(buffer, bodyLengthFromHandler: { handler.bodyLength(header: $0) }) { event in
            switch event {
            case .frame(let frame):
                frames += 1
                if handler is NOPHandler { return true }
                let outcome = frame.withUnsafeReadableBytes { message in
                    handler.handle(message) { reply in
                        if replies == nil { replies = context.channel.allocator.buffer(capacity: reply.count * 4) }
                        replies!.writeBytes(reply)
                    }
                }
                record(outcome, counters)
                if outcome == .reply { replyCount += 1 }
                return true
            case .tooLarge, .badHeader:
                failure = event
                return false
            }
        }
        counters.add(.framesRead, frames)
        if let replies {
            responses.append((replies, replyCount))
            pump()
        }
        if failure != nil {
            counters.add(.protocolErrors)
            closeNow()
        }
    }

    private func record(_ outcome: HandlerOutcome, _ counters: ShardCounters) {
        counters.add(.handlerCalls)
        switch outcome {
        case .reply: break
        case .empty: counters.add(.handlerEmpty)
        case .trap: counters.add(.handlerTraps); counters.add(.handlerEmpty)
        case .badPointer: counters.add(.handlerBadPointers); counters.add(.handlerEmpty)
        case .allocFailed: counters.add(.handlerAllocFailures); counters.add(.handlerEmpty)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? IOError, e.errnoCode == ECONNRESET || e.errnoCode == EPIPE {
            shard.counters.add(.resets)
        }
        context.close(promise: nil)
    }

    // MARK: closing

    private func closeNow() {
        guard state == .active || state == .connecting else { return }
        closedByUs = true
        state = .closing
        if let context {
            context.close(promise: nil)
        } else if let channel {
            channel.close(promise: nil)
        } else {
            closeRequested = true
        }
    }

    /// Closes once everything handed to the socket has been written.
    private func closeAfterWrites() {
        guard state == .active else { return }
        if let f = lastWrite {
            let bound = NIOLoopBound(self, eventLoop: shard.loop)
            f.whenComplete { _ in bound.value.closeNow() }
        } else {
            closeNow()
        }
    }

    // MARK: the write loop

    private var hasWork: Bool {
        !responses.isEmpty || hasPayload
    }

    private var hasPayload: Bool {
        guard listCount > 0 else { return false }
        if flooding {
            return position < listCount || (shard.plan.settings.repeatPayloads && !draining)
        }
        return position < released
    }

    private var limit: Int { flooding ? listCount : released }

    @inline(__always)
    private func advance(_ n: Int) {
        copyIndex += n
        position += n
        if copyIndex == entries[entryIndex].copies {
            entryIndex += 1
            copyIndex = 0
        }
    }

    /// At the end of the released part: start the next pass if FLOOD + REPEAT allow it.
    @inline(__always)
    private func wrapIfAllowed() -> Bool {
        guard position >= limit else { return true }
        guard flooding, shard.plan.settings.repeatPayloads, !draining, listCount > 0 else { return false }
        position = 0
        entryIndex = 0
        copyIndex = 0
        return true
    }

    /// Writes the next run of payloads; returns (bytes, packets), or nil when none is released.
    private func writeNextRun(_ context: ChannelHandlerContext) -> (Int, Int)? {
        guard wrapIfAllowed() else { return nil }
        let entry = entries[entryIndex]
        if entry.patched {
            return writePatchedRun(context, entry)
        }
        let prepared = shard.packets[entry.packet]
        var n = 0
        while n < prepared.repeatCount {
            let e = entries[entryIndex]
            guard e.packet == entry.packet, !e.patched else { break }
            let take = min(e.copies - copyIndex, limit - position, prepared.repeatCount - n)
            n += take
            advance(take)
            if !wrapIfAllowed() { break }
        }
        emit(prepared.copies(n), context)
        return (n * prepared.size, n)
    }

    /// Packets up to this size are patched as whole copies, a run of them in one buffer
    /// written as one slice: for a small packet, copying its few unchanged bytes is far
    /// cheaper than the two or three iovecs per packet that slicing around the patch needs
    /// (measured: 2.0M → see bench/flood.sh for 16-byte packets with a COUNTER).
    static let wholeCopyLimit = 256

    /// A run of copies of one patched SEND: one atomic reservation for the run's counter
    /// values and one clock read. Small packets are copied whole into one run buffer;
    /// larger ones write only the patched region, the bytes around it going out as
    /// slices of the prepared packet, never copied.
    private func writePatchedRun(_ context: ChannelHandlerContext, _ entry: PayloadEntry) -> (Int, Int) {
        let layout = shard.patches[entry.send]!
        let prepared = shard.packets[entry.packet]
        let size = prepared.size
        let whole = size <= Self.wholeCopyLimit
        let k = min(entry.copies - copyIndex, limit - position, whole ? max(1, 16_384 / size) : 32)
        let first = layout.counter != nil ? shard.sendCounters.reserve(entry.send, k) : 0
        let now = layout.timestamp != nil ? unixNanoseconds() : 0
        let lo = whole ? 0 : layout.lo
        let len = whole ? size : layout.hi - layout.lo
        var regions = context.channel.allocator.buffer(capacity: len * k)
        prepared.buffer.withUnsafeReadableBytes { src in
            let region = UnsafeRawBufferPointer(rebasing: src[lo..<(lo + len)])
            for _ in 0..<k { regions.writeBytes(region) }
        }
        regions.withUnsafeMutableReadableBytes { p in
            for i in 0..<k {
                let base = i * len - lo
                if let c = layout.counter {
                    putInteger((first &+ UInt64(i)) &* c.step, length: c.length, order: c.order, into: p, at: base + c.offset)
                }
                if let t = layout.timestamp {
                    putInteger(now / t.unit.nanoseconds, length: t.length, order: t.order, into: p, at: base + t.offset)
                }
            }
        }
        if whole {
            emit(regions, context)
        } else {
            for i in 0..<k {
                if lo > 0 { emit(prepared.buffer.getSlice(at: prepared.buffer.readerIndex, length: lo)!, context) }
                emit(regions.getSlice(at: regions.readerIndex + i * len, length: len)!, context)
                if layout.hi < size {
                    emit(prepared.buffer.getSlice(at: prepared.buffer.readerIndex + layout.hi, length: size - layout.hi)!, context)
                }
            }
        }
        advance(k)
        return (k * size, k)
    }

    @inline(__always)
    private func emit(_ buffer: ByteBuffer, _ context: ChannelHandlerContext) {
        if let h = held { context.write(wrapOutboundOut(h), promise: nil) }
        held = buffer
    }

    /// The write loop: responses first, then released payloads; batches of writes with one
    /// flush each; stops when the channel is not writable (resumed by writability) and
    /// yields to the loop after a few batches so other sessions get their turn.
    func pump() {
        guard state == .active, let context, !pumping else { return }
        pumping = true
        defer { pumping = false }
        let config = shard.config
        var batches = 0
        while batches < config.batchesPerTurn, context.channel.isWritable, hasWork {
            var writes = 0
            var bytes = 0
            var packets = 0
            var replies = 0
            while writes < config.writesPerFlush, bytes < config.bytesPerFlush, context.channel.isWritable {
                if let (r, count) = responses.popFirst() {
                    bytes += r.readableBytes
                    replies += count
                    emit(r, context)
                    writes += 1
                    continue
                }
                guard let (b, p) = writeNextRun(context) else { break }
                bytes += b
                packets += p
                writes += 1
            }
            guard let last = held else { break }
            held = nil
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(last), promise: promise)
            let counters = shard.counters
            let (batchBytes, batchPackets, batchReplies) = (bytes, packets, replies)
            promise.futureResult.whenSuccess {
                counters.add(.bytesSent, batchBytes)
                counters.add(.packetsSent, batchPackets)
                if batchReplies > 0 { counters.add(.responsesSent, batchReplies) }
            }
            lastWrite = promise.futureResult
            batches += 1
        }
        guard state == .active else { return }
        if hasWork {
            if context.channel.isWritable, !pumpScheduled {
                pumpScheduled = true
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.execute {
                    bound.value.pumpScheduled = false
                    bound.value.pump()
                }
            }
        } else if draining {
            closeAfterWrites()
        }
    }
}
