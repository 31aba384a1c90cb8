import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// A TCP session: framed reads answered by the shard's handler, and payload runs written
/// as slices of prepared buffers. It sits in its channel's pipeline as a duplex handler so
/// it can hold back the channel's reads while its replies cannot be written.
final class TCPSession: Session, ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Frames reads when READ is on (made when the channel becomes active); nil otherwise, and
    /// reads are then only counted. Out of line (``OutOfLine``): a session that does not read
    /// carries a pointer.
    private var reading: OutOfLine<Reading>?

    /// READ's state: the framer, when the first bytes of the frame being read arrived (read
    /// latency: read started → full frame), and frames read so far (for sampling).
    struct Reading {
        var reader: FrameReader
        var frameStartedAt: UInt64 = 0
        var framesSeen = 0
        /// When the frames waiting for the next turn were read (``Session/framesWaiting``):
        /// they count as arrived then, not when the handler gets to them.
        var waitingSince: UInt64 = 0
    }
    /// (ext) TLS: the handshake under way, out of line (plain TCP sessions carry a pointer);
    /// nil outside a handshake.
    private var handshake: OutOfLine<Handshake>?

    /// (ext) A TLS handshake: its promise, completed by the handshake (or failed by its
    /// error, its timeout or a close), the connect counting as done only then; when TCP
    /// connected (the handshake's start), and its timeout.
    struct Handshake {
        let promise: EventLoopPromise<Void>
        var tcpConnectedAt: UInt64 = 0
        var timeout: Scheduled<Void>?
    }

    /// Connects with the connect timeout, the write watermarks, `TCP_NODELAY`, and remote
    /// half-closure allowed.
    /// With a `source` (SOURCES), the socket binds it first with `IP_BIND_ADDRESS_NO_PORT`:
    /// the kernel picks the port at connect, per destination.
    /// The channel options are set synchronously in the initializer: given to the bootstrap,
    /// each costs a future and two closures per connect (7% of a connect's CPU in
    /// bench/connect.sh's profile). `TCP_NODELAY` is the bootstrap's own default.
    /// To a loopback address the socket is made and connected directly (``DirectSocket``)
    /// and handed over connected; the bootstrap's connect is the way everywhere else.
    override func openChannel(to address: SocketAddress, from source: SocketAddress?) -> EventLoopFuture<Channel> {
        let config = shard.config
        let bound = NIOLoopBound(self, eventLoop: shard.loop)
        let watermark = ChannelOptions.Types.WriteBufferWaterMark(low: config.lowWatermark, high: config.highWatermark)
        let tls = shard.tls
        let serverName = tls.flatMap { $0.serverNames[index % $0.serverNames.count] }
        let initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let options = channel.syncOptions!
                try options.setOption(.writeBufferWaterMark, value: watermark)
                // A server that half-closes still reads: keep sending until it closes or resets.
                try options.setOption(.allowRemoteHalfClosure, value: true)
                let session = bound.value
                if let tls {
                    // (ext) TLS: the handshake is part of connecting.
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: tls.context, serverHostname: serverName))
                    session.handshake = OutOfLine(Handshake(promise: channel.eventLoop.makePromise()))
                }
                try session.initialize(channel, handler: session)
            }
        }
        let connected: EventLoopFuture<Channel>
        if config.directSockets, let fd = DirectSocket.connect(to: address, from: source) {
            // Connected already (loopback): NIO takes the socket over; plain TCP may write to it directly.
            if tls == nil { socketFD = fd }
            shard.counters.add(.directConnects)
            connected = ClientBootstrap(group: shard.loop).channelInitializer(initializer).withConnectedSocket(fd)
        } else {
            var bootstrap = ClientBootstrap(group: shard.loop)
            if let source {
                // Bound by the bootstrap before the initializer runs, so this one is its option.
                let option = ChannelOptions.socket(
                    SocketOptionLevel(IPPROTO_IP), SocketOptionName(SourceAddresses.ipBindAddressNoPort))
                bootstrap = bootstrap.channelOption(option, value: 1).bind(to: source)
            }
            connected = bootstrap.connectTimeout(config.connectTimeout).channelInitializer(initializer)
                .connect(to: address)
        }
        guard tls != nil else { return connected }
        return connected.flatMap { channel in
            bound.value.handshake?.value.promise.futureResult.map { channel }
                ?? channel.eventLoop.makeSucceededFuture(channel)
        }.flatMapError { error in
            // The TCP connect failed (or the handshake did): a handshake never started ends too.
            bound.value.handshakeEnded(.failure(error))
            return bound.value.shard.loop.makeFailedFuture(error)
        }
    }

    // MARK: (ext) TLS handshake

    /// TCP connected under TLS: the handshake starts (NIOSSL's handler sends the hello); it
    /// gets the connect timeout of its own.
    private func handshakeStarted(_ context: ChannelHandlerContext) {
        guard let handshake else { return }
        handshake.value.tcpConnectedAt = NIODeadline.now().uptimeNanoseconds
        let bound = NIOLoopBound(self, eventLoop: shard.loop)
        handshake.value.timeout = context.eventLoop.scheduleTask(in: shard.config.connectTimeout) {
            bound.value.handshakeEnded(.failure(TLSHandshakeError.timedOut(bound.value.shard.config.connectTimeout)))
        }
    }

    /// The handshake completed: its latency is recorded (every one), the first one's
    /// version and ALPN noted, and the session starts as connected at TCP connect time.
    private func handshakeCompleted(_ context: ChannelHandlerContext, alpn: String?) {
        guard let tcpConnectedAt = handshake?.value.tcpConnectedAt else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        shard.latency.record(.handshake, nanoseconds: now &- tcpConnectedAt)
        if let tls = shard.tls, tls.negotiated == nil {
            let version = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).tlsVersion
            tls.note(version: version, alpn: alpn)
        }
        handshakeEnded(.success(()))
        active(context, connectedAt: tcpConnectedAt)
    }

    /// Ends the handshake: a failure fails the connect (counted by reason) and closes the
    /// channel.
    private func handshakeEnded(_ result: Result<Void, Error>) {
        guard let ended = handshake?.value else { return }
        handshake = nil
        ended.timeout?.cancel()
        switch result {
        case .success: ended.promise.succeed(())
        case .failure(let error):
            closeForFailedHandshake()
            ended.promise.fail(error)
        }
    }

    /// Sets up framing for READ: body lengths come from HEADER_LENGTH, else from the handler's
    /// `handle_header`, else there are none (header-only frames).
    override func didBecomeActive(_ context: ChannelHandlerContext) {
        let settings = shard.plan.settings
        if settings.read, let headerSize = settings.headerSize {
            let source: FrameReader.LengthSource =
                settings.headerLength.map { .headerLength($0) } ?? (shard.handler.readsHeaders ? .handler : .none)
            let reader = FrameReader(
                headerSize: headerSize, bodyMax: settings.bodyMax ?? Int.max, lengthSource: source)
            if let reading {
                // A reconnect (CHURN): a fresh framer; read-latency sampling goes on counting.
                reading.value.reader = reader
                reading.value.frameStartedAt = 0
            } else {
                reading = OutOfLine(Reading(reader: reader))
            }
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        if handshake != nil { handshakeStarted(context) } else { active(context) }
    }
    func channelInactive(context: ChannelHandlerContext) {
        handshakeEnded(.failure(TLSHandshakeError.closed))
        inactive()
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { writabilityChanged(context) }
    func read(context: ChannelHandlerContext) { interceptRead(context) }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if handshake != nil {
            handshakeEnded(.failure(error))
        } else if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            // (ext) TLS: the server closed TCP without a close_notify: a close by the server,
            // as a FIN is on TCP (or, while we close, nothing to count).
            socketError(ChannelError.eof)
        } else {
            socketError(error)
        }
    }

    /// The server half-closed (input closed): noted, and the session keeps sending. (ext) TLS:
    /// the handshake completed. Other events pass on.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted(let alpn) = e {
            handshakeCompleted(context, alpn: alpn)
        } else if let e = event as? ChannelEvent, e == .inputClosed {
            peerFinished()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Counts the bytes; with READ, frames them. Each frame is counted, its read latency
    /// sampled (every SAMPLERATE-th frame) and given to the handler; the replies of one read
    /// are gathered in one buffer and queued together. A body above BODYMAX, or a header
    /// whose length cannot be read, closes the session as a protocol error.
    /// A handler that uses up its turn (``EngineConfiguration/handlerTurnNanoseconds``)
    /// leaves the read's other frames for the loop's next turn, reads held meanwhile.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        shard.counters.add(.bytesRead, buffer.readableBytes)
        guard reading != nil, lifecycle.isActive else { return }
        readFrames(buffer, context, readAt: NIODeadline.now().uptimeNanoseconds)
    }

    /// In a write round (from the loop's I/O phase, so every other socket of the shard has
    /// had its turn since): the frames the handler left are handled (as read when they were
    /// read), and reads resume unless it uses up this turn too; then the writes.
    override func roundTurn() {
        if framesWaiting { resumeFrames() }
        pump()
    }

    override func expiryClock(_ now: UInt64) -> UInt64 {
        guard framesWaiting, let since = reading?.value.waitingSince else { return now }
        return min(now, since)
    }

    private func resumeFrames() {
        framesWaiting = false
        guard let reading, lifecycle.isActive, let context else { return }
        readFrames(ByteBuffer(), context, readAt: reading.value.waitingSince)
        readIfWanted()
    }

    /// Frames `buffer` (after what the reader holds) and handles each frame; see
    /// ``channelRead(context:data:)``.
    private func readFrames(_ buffer: ByteBuffer, _ context: ChannelHandlerContext, readAt now: UInt64) {
        guard let reading else { return }
        let counters = shard.counters
        let handler = shard.handler
        let isNOP = handler is NOPHandler
        let matchesReplies = shard.plan.settings.response != nil
        let sequenced = shard.plan.settings.sequence != nil
        let turnBudget = isNOP ? 0 : shard.config.handlerTurnNanoseconds
        let turnStart = turnBudget > 0 ? NIODeadline.now().uptimeNanoseconds : 0
        var started = reading.value.reader.hasPending ? reading.value.frameStartedAt : now
        // Kept locally while the reader runs: the closures below must not touch
        // `reading.value`, which `feed` holds for its whole call.
        var framesSeen = reading.value.framesSeen
        let rate = max(1, shard.plan.settings.sampleRate)
        let latency = shard.latency
        var replies: ByteBuffer?
        var replyCount = 0
        var frames = 0
        var failure: FrameReader.Event?
        var headerFailure: HandlerFailure?
        let paused = reading.value.reader.feed(
            buffer,
            bodyLengthFromHandler: { header in
                switch handler.bodyLength(header: header) {
                case .length(let n): return n
                case .invalid: return nil
                case .failed(let kind):
                    headerFailure = kind
                    return nil
                }
            },
            emit: { event in
                switch event {
                case .frame(let frame):
                    frames += 1
                    if framesSeen % rate == 0 { latency.record(.read, nanoseconds: now &- started) }
                    framesSeen += 1
                    started = now
                    if matchesReplies { frame.withUnsafeReadableBytes { matchReply($0, at: now) } }
                    if sequenced { frame.withUnsafeReadableBytes { trackSequence($0, at: now) } }
                    if isNOP { return .more }
                    let outcome = frame.withUnsafeReadableBytes { message in
                        handler.handle(message) { reply in
                            if replies == nil {
                                replies = replyBuffer(context.channel.allocator, capacity: reply.count * 4)
                            }
                            replies!.writeBytes(reply)
                            replyProduced(size: reply.count)
                        }
                    }
                    record(outcome)
                    if outcome == .reply { replyCount += 1 }
                    if turnBudget > 0, NIODeadline.now().uptimeNanoseconds &- turnStart > turnBudget {
                        return .pause
                    }
                    return .more
                case .tooLarge, .badHeader:
                    failure = event
                    return .stop
                }
            })
        counters.add(.framesRead, frames)
        reading.value.frameStartedAt = started
        reading.value.framesSeen = framesSeen
        if paused {
            counters.add(.handlerYields)
            reading.value.waitingSince = now
            if !framesWaiting {
                // Not a task: NIO runs every task queued during a tick before it polls again,
                // so the other sessions would not read until this one's backlog was handled.
                framesWaiting = true
                shard.rounds.schedule(self)
            }
        }
        if !isNOP { recordMemoryDenials() }
        if let headerFailure { recordHeaderFailure(headerFailure) }
        if let replies { queueReplies(replies, count: replyCount) }
        switch failure {
        case .tooLarge(let n):
            let bodyMax = shard.plan.settings.bodyMax ?? 0
            protocolError(.bodyTooLarge, "sent a frame body of \(n) bytes, more than BODYMAX \(bodyMax)")
        case .badHeader:
            // The export that read it: body_length on the fast path, else handle_header.
            var function = "handle_header"
            if case .wasm(let w) = shard.plan.handler { function = w.headerFunction }
            let why =
                headerFailure.map { "the handler's \(function) failed (\($0.explanation))" }
                ?? "the handler's \(function) returned a negative length"
            protocolError(.headerUnreadable, "sent a header whose body length could not be read: \(why)")
        default:
            break
        }
    }

    /// Packets up to this size are patched as whole copies, a run of them in one buffer
    /// written as one slice: for a small packet, copying its few unchanged bytes is far
    /// cheaper than the two or three iovecs per packet that slicing around the patch needs
    /// (16-byte packets with a COUNTER: 2.0M → see bench/flood.sh).
    static let wholeCopyLimit = 256

    /// The next run from the cursor: copies of a patched SEND, or unpatched copies of one
    /// packet — across entries and passes — as one slice of its repeated buffer.
    override func writeNextRun(_ context: ChannelHandlerContext) -> (count: Int, size: Int)? {
        guard cursor.budget > 0, cursor.wrapIfAllowed() else { return nil }
        let entry = cursor.entry
        let prepared = shard.packets[entry.packet]
        if entry.patched {
            return (writePatchedRun(context, entry, prepared), prepared.size)
        }
        // Unpatched: consecutive copies of one packet, across entries and passes, go out as
        // one slice of the prepared repeated buffer.
        var n = 0
        while n < prepared.repeatCount {
            let e = cursor.entry
            guard e.packet == entry.packet, !e.patched else { break }
            let take = min(cursor.available, prepared.repeatCount - n)
            if take == 0 { break }  // a paced session's budget is spent
            n += take
            cursor.advance(take)
            if !cursor.wrapIfAllowed() { break }
        }
        emit(prepared.copies(n), context)
        return (n, prepared.size)
    }

    /// A run of copies of one patched SEND; returns how many. Small packets are copied whole
    /// into one run buffer; larger ones write only the patched region, the bytes around it
    /// going out as slices of the prepared packet, never copied.
    private func writePatchedRun(
        _ context: ChannelHandlerContext, _ entry: PayloadEntry,
        _ prepared: PreparedPacket
    ) -> Int {
        let size = prepared.size
        let allocator = context.channel.allocator
        if size <= Self.wholeCopyLimit {
            let k = min(cursor.available, max(1, 16_384 / size))
            emit(patchedCopies(k, entry, allocator), context)
            cursor.advance(k)
            return k
        }
        let layout = shard.patches[entry.send]!
        let k = min(cursor.available, 32)
        let len = layout.hi - layout.lo
        let regions = patchedRegions(k, entry, lo: layout.lo, len: len, allocator)
        for i in 0..<k {
            if layout.lo > 0 {
                emit(prepared.buffer.getSlice(at: prepared.buffer.readerIndex, length: layout.lo)!, context)
            }
            emit(regions.getSlice(at: regions.readerIndex + i * len, length: len)!, context)
            if layout.hi < size {
                emit(
                    prepared.buffer.getSlice(at: prepared.buffer.readerIndex + layout.hi, length: size - layout.hi)!,
                    context)
            }
        }
        cursor.advance(k)
        return k
    }
}

/// (ext) Why a TLS handshake ended without completing, besides NIOSSL's own errors.
enum TLSHandshakeError: Error {
    /// No handshake within the connect timeout.
    case timedOut(TimeAmount)
    /// The connection closed before the handshake completed.
    case closed
}
