import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix

/// What TCP and UDP sessions share: the lifecycle (connect, DRAIN, DISCONNECT), the
/// payload cursor, handler replies, and the batched write loop. A session lives on its
/// shard's event loop for its whole life; subclasses add the transport: how a channel is
/// opened, how payloads become writes, and how reads become messages.
class Session {
    enum State {
        case created, connecting, active, closing, closed
    }

    let index: Int
    /// Set right after init; the shard outlives its sessions.
    unowned(unsafe) var shard: Shard!
    var cursor: PayloadCursor

    private(set) var state = State.created
    private(set) var context: ChannelHandlerContext?
    private var channel: Channel?
    private var closeRequested = false
    private var closedByUs = false
    private var pumping = false
    private var pumpScheduled = false
    private var connectStartedAt: UInt64 = 0
    /// Packets this session has handed to the socket, for send-latency sampling.
    private var packetsWritten = 0

    /// Handler replies waiting to go out (buffer, replies in it); they go before payloads.
    var responses = CircularBuffer<(ByteBuffer, Int)>()
    /// Completes when the last batch handed to the socket is written.
    private var lastWrite: EventLoopFuture<Void>?
    /// Batches handed to the socket whose promise has not completed, oldest first:
    /// (sequence number, bytes, packets, replies).
    private var inflight = CircularBuffer<(seq: Int, bytes: Int, packets: Int, replies: Int)>()
    private var nextBatch = 0
    /// Batches up to this sequence number were accounted for when we closed the session.
    private var settledThrough = -1
    /// One write is held back so the batch's last write can carry the batch promise.
    private var held: ByteBuffer?

    init(index: Int, entries: [PayloadEntry], repeats: Bool) {
        self.index = index
        self.cursor = PayloadCursor(entries: entries, repeats: repeats)
    }

    var isDraining: Bool { cursor.draining && (state == .active || state == .connecting) }

    // MARK: transport hooks

    /// Opens the channel with `self` in its pipeline.
    func openChannel(to address: SocketAddress, on loop: EventLoop) -> EventLoopFuture<Channel> {
        preconditionFailure("subclass")
    }

    /// Writes the next run of payloads with `emit`; returns (bytes, packets), or nil when
    /// nothing is released.
    func writeNextRun(_ context: ChannelHandlerContext) -> (Int, Int)? {
        preconditionFailure("subclass")
    }

    /// Called when the channel becomes active, before the first write.
    func didBecomeActive(_ context: ChannelHandlerContext) {}

    // MARK: actions (called by the shard, on the loop)

    final func connect(to address: SocketAddress, on loop: EventLoop) {
        state = .connecting
        connectStartedAt = NIODeadline.now().uptimeNanoseconds
        let bound = NIOLoopBound(self, eventLoop: loop)
        openChannel(to: address, on: loop).whenComplete { result in
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

    /// The channel initializer's half of `connect`: puts `handler` (this session) in the pipeline.
    static func initializer(_ handler: NIOLoopBound<some ChannelHandler>) -> @Sendable (Channel) -> EventLoopFuture<Void> {
        { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
        }
    }

    final func release(_ copies: Int) {
        cursor.release(copies)
        pump()
    }

    final func flood() {
        cursor.flooding = true
        pump()
    }

    final func drain() {
        cursor.draining = true
        if state == .active, !hasWork { closeAfterWrites() } else { pump() }
    }

    final func disconnect() {
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
    final func abandon() {
        state = .closed
    }

    // MARK: channel events (forwarded by the subclasses' ChannelInboundHandler conformances)

    final func active(_ context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
        state = .active
        let counters = shard.counters
        counters.add(.connectionsSucceeded)
        let now = NIODeadline.now().uptimeNanoseconds
        counters.connected(at: now)
        shard.latency.record(.connect, nanoseconds: now &- connectStartedAt)
        counters.add(.connectionsActive)
        didBecomeActive(context)
        if closeRequested || (cursor.draining && !hasWork) {
            closeNow()
            return
        }
        pump()
    }

    final func inactive() {
        let wasOpen = state != .closed
        state = .closed
        context = nil
        held = nil
        if wasOpen {
            let counters = shard.counters
            counters.add(.connectionsActive, -1)
            counters.add(closedByUs ? .closedByUs : .closedByPeer)
            shard.sessionEnded()
        }
    }

    final func writabilityChanged(_ context: ChannelHandlerContext) {
        if context.channel.isWritable { pump() }
    }

    /// Counts a handler outcome.
    final func record(_ outcome: HandlerOutcome, _ counters: ShardCounters) {
        counters.add(.handlerCalls)
        switch outcome {
        case .reply: break
        case .empty: counters.add(.handlerEmpty)
        case .trap: counters.add(.handlerTraps); counters.add(.handlerEmpty)
        case .badPointer: counters.add(.handlerBadPointers); counters.add(.handlerEmpty)
        case .allocFailed: counters.add(.handlerAllocFailures); counters.add(.handlerEmpty)
        }
    }

    // MARK: closing

    /// A batch's write promise completed. Bytes count as sent once the kernel took them.
    private func batchDone(_ seq: Int, succeeded: Bool, sampledFrom issuedAt: UInt64?) {
        guard seq > settledThrough else { return }  // already counted when we closed
        var batch: (seq: Int, bytes: Int, packets: Int, replies: Int)?
        while let first = inflight.first, first.seq <= seq {
            let b = inflight.removeFirst()
            if b.seq == seq { batch = b }
        }
        // A failed batch: the peer closed or reset the connection before it was written.
        guard succeeded, let b = batch else { return }
        let counters = shard.counters
        counters.add(.bytesSent, b.bytes)
        counters.add(.packetsSent, b.packets)
        if b.replies > 0 { counters.add(.responsesSent, b.replies) }
        if let issuedAt { shard.latency.record(.send, nanoseconds: NIODeadline.now().uptimeNanoseconds &- issuedAt) }
    }

    /// Closing ourselves with writes still in flight: what the kernel already took of them
    /// is everything handed over minus what is still buffered in the channel. Count that
    /// now (bytes exactly; packets and replies of a partly written batch in proportion),
    /// and ignore the failures the close is about to deliver for those batches.
    private func settleInflight(_ channel: Channel) {
        guard !inflight.isEmpty else { return }
        let pending = (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        var written = inflight.reduce(0) { $0 + $1.bytes } - pending
        let counters = shard.counters
        for b in inflight {
            guard written > 0 else { break }
            let part = min(written, b.bytes)
            written -= part
            counters.add(.bytesSent, part)
            counters.add(.packetsSent, b.bytes == 0 ? b.packets : b.packets * part / b.bytes)
            counters.add(.responsesSent, b.bytes == 0 ? b.replies : b.replies * part / b.bytes)
        }
        settledThrough = inflight.last!.seq
        inflight.removeAll()
    }

    final func closeNow() {
        guard state == .active || state == .connecting else { return }
        closedByUs = true
        state = .closing
        if let channel = context?.channel ?? channel { settleInflight(channel) }
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

    final var hasWork: Bool {
        !responses.isEmpty || cursor.hasPayload
    }

    @inline(__always)
    final func emit(_ buffer: ByteBuffer, _ context: ChannelHandlerContext) {
        if let h = held { context.write(NIOAny(h), promise: nil) }
        held = buffer
    }

    /// The write loop: replies first, then released payloads; batches of writes with one
    /// flush each; stops when the channel is not writable (resumed by writability) and
    /// yields to the loop after a few batches so other sessions get their turn.
    final func pump() {
        guard state == .active, let context, !pumping else { return }
        pumping = true
        defer { pumping = false }
        let config = shard.config
        let rate = max(1, shard.plan.settings.sampleRate)
        var batches = 0
        while batches < config.batchesPerTurn, context.channel.isWritable, hasWork {
            let issuedAt = NIODeadline.now().uptimeNanoseconds
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
            context.writeAndFlush(NIOAny(last), promise: promise)
            // Send latency is sampled: the batch holding the session's first packet and every
            // batch that holds a SAMPLERATE-th packet (write issued → kernel accepted).
            let sampled = packets > 0 && (packetsWritten == 0 || packetsWritten / rate != (packetsWritten + packets) / rate)
            packetsWritten += packets
            let seq = nextBatch
            nextBatch += 1
            inflight.append((seq, bytes, packets, replies))
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { result in
                let ok = if case .success = result { true } else { false }
                bound.value.batchDone(seq, succeeded: ok, sampledFrom: sampled ? issuedAt : nil)
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
        } else if cursor.draining {
            closeAfterWrites()
        }
    }

    // MARK: patched payloads

    /// Builds `k` patched copies of the current entry's packet, whole, in one buffer: one
    /// atomic reservation for the run's counter values and one clock read.
    final func patchedCopies(_ k: Int, _ entry: PayloadEntry, _ allocator: ByteBufferAllocator) -> ByteBuffer {
        patchedRegions(k, entry, lo: 0, len: shard.packets[entry.packet].size, allocator)
    }

    /// `k` copies of bytes `[lo, lo+len)` of the entry's packet, patched, back to back.
    final func patchedRegions(_ k: Int, _ entry: PayloadEntry, lo: Int, len: Int,
                              _ allocator: ByteBufferAllocator) -> ByteBuffer {
        let layout = shard.patches[entry.send]!
        let prepared = shard.packets[entry.packet]
        let first = layout.counter != nil ? shard.sendCounters.reserve(entry.send, k) : 0
        let now = layout.timestamp != nil ? unixNanoseconds() : 0
        var regions = allocator.buffer(capacity: len * k)
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
        return regions
    }
}
