import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix

/// What TCP and UDP sessions share: the lifecycle (a `SessionLifecycle` value), the payload
/// cursor, handler replies with their backpressure, exact send accounting (`SendLedger`)
/// and the batched write loop. A session lives on its shard's event loop for its whole
/// life; subclasses add the transport: how a channel is opened, how payloads become writes,
/// and how reads become messages.
///
/// A session holds its shard strongly: whatever still refers to a session (a channel's
/// pipeline, a write promise's callback) keeps the shard alive, so no event can reach freed
/// state. The engine breaks the cycle once every channel is closed and the loops are gone.
class Session {
    /// The session's number in the plan: global, not within its shard.
    let index: Int
    /// The shard that owns it, held strongly: the engine breaks the cycle at the end.
    let shard: Shard
    /// Where the session is in its payload list.
    var cursor: PayloadCursor
    /// The session's state; every event goes through it first.
    private(set) var lifecycle = SessionLifecycle()
    // The flags sit together, beside the lifecycle: Swift lays stored properties out in
    // declaration order, and a lone Bool between 8-byte fields costs 8 bytes per session.
    /// Set while ``pump()`` runs, so that a write completing inside it does not re-enter it.
    private var pumping = false
    /// In the shard's next write round.
    var inRound = false
    /// A close is waiting for `lastWrite`.
    private var closingAfterWrites = false
    /// Reads are held back while more than `replyBacklog` bytes of replies wait.
    private var readsPaused = false
    /// The channel asked to read while reads were paused.
    private var readWanted = false
    /// Frames of a read are waiting for the loop's next turn (the handler used up its turn,
    /// ``EngineConfiguration/handlerTurnNanoseconds``); reads are held meanwhile.
    var framesWaiting = false
    /// The batch being built goes straight to the socket (``DirectSocket``).
    private var batchIsDirect = false
    /// The pipeline context while the channel is active; nil before and after.
    private(set) var context: ChannelHandlerContext?
    /// Known from the channel initializer on, so a DISCONNECT can cancel a pending connect.
    private var channel: Channel?
    /// When the connect started, in monotonic nanoseconds: connect latency runs from here.
    private var connectStartedAt: UInt64 = 0
    /// Packets this session has handed to the socket, for send-latency sampling.
    private var packetsWritten = 0
    /// Completes when the last batch handed to the socket is written.
    private var lastWrite: EventLoopFuture<Void>?
    /// One write is held back so the batch's last write can carry the batch promise.
    private var held: NIOAny?
    /// What was handed to the socket and is not yet counted as sent.
    private var ledger = SendLedger()

    /// Handler replies waiting to go out (buffer, replies in it); they go before payloads.
    private var replies = LazyRing<(buffer: ByteBuffer, count: Int)>(initialCapacity: 2)
    /// Bytes of queued replies not yet handed to the channel.
    private(set) var pendingReplyBytes = 0
    /// The last reply buffer handed to the channel, kept to be cleared and reused by the next
    /// read's replies: once the channel has written it, the storage is ours alone again and
    /// no allocation is needed (still in flight, `clear()` gets fresh storage).
    private var spareReplies: ByteBuffer?

    /// (ext) PACE: the schedule (nil: back to back), its generation (a new phase makes
    /// queued wake-ups stale) and the due time of this session's entry in the shard's pace
    /// queue (0: none). The schedule is kept out of line (``OutOfLine``), as are RESPONSE's
    /// and SEQUENCE's tables: an idle session carries a pointer for each.
    private var paceBox: OutOfLine<Pacer>?
    private var pacer: Pacer? { paceBox?.value }
    private(set) var paceGeneration: UInt32 = 0
    /// The socket's descriptor when the session connected it itself and may write to it
    /// directly (``DirectSocket``); -1 otherwise. (Here, it fills the padding after the
    /// 4-byte generation.)
    var socketFD: CInt = -1
    private var paceWake: UInt64 = 0
    /// (ext) RESPONSE: requests awaiting replies (made on the first request).
    private var requests: OutOfLine<RequestTable>?
    /// (ext) SEQUENCE: the numbers of inbound messages (made on the first); one per connection.
    private var sequence: OutOfLine<SequenceTracker>?
    /// When the batch being built was handed over: the intended send time of unpaced requests.
    private var handTime: UInt64 = 0
    /// (ext) CHURN: the period (0: none), the schedule's generation (a stale turn is
    /// dropped), and whether the close under way is a churn close that reconnects.
    private var churnPeriod: UInt64 = 0
    private var churnGeneration: UInt32 = 0
    private var churnReconnect = false
    /// DRAIN is done writing and waits for the outstanding requests before it closes.
    private var awaitingReplies = false

    /// A session with its payload list, which sessions with the same SENDs share. It does
    /// nothing until CONNECT reaches it.
    init(index: Int, shard: Shard, entries: [PayloadEntry], repeats: Bool) {
        self.index = index
        self.shard = shard
        self.cursor = PayloadCursor(entries: entries, repeats: repeats)
    }

    /// DRAIN reached it and it is still connecting or sending: the end of the run gives it
    /// the drain grace before closing it.
    var isDraining: Bool {
        guard cursor.draining else { return false }
        switch lifecycle.state {
        case .active, .connecting: return true
        default: return false
        }
    }

    // MARK: transport hooks

    /// Opens the channel; the subclass's initializer calls `initialize(_:handler:)`.
    func openChannel(to address: SocketAddress, from source: SocketAddress?) -> EventLoopFuture<Channel> {
        preconditionFailure("subclass")
    }

    /// Writes the next run of equal-size payloads with `emit`; returns how many and their
    /// size, or nil when nothing is released.
    func writeNextRun(_ context: ChannelHandlerContext) -> (count: Int, size: Int)? {
        preconditionFailure("subclass")
    }

    /// Called when the channel becomes active, before the first write.
    func didBecomeActive(_ context: ChannelHandlerContext) {}

    /// Called just before we close the channel (not when the peer or an error closed it).
    func willClose(_ channel: Channel) {}

    /// The initializer's half of connecting: remembers the channel and puts the session in
    /// its pipeline. A session disconnected in the meantime closes the channel at once.
    final func initialize(_ channel: Channel, handler: ChannelHandler) throws {
        self.channel = channel
        try channel.pipeline.syncOperations.addHandler(handler)
        if case .connecting(cancelled: true) = lifecycle.state { channel.close(promise: nil) }
    }

    // MARK: actions (called by the shard, on the loop)

    /// CONNECT reached this session; false when it was already queued.
    final func queueConnect() -> Bool {
        lifecycle.queue()
    }

    /// A connect slot is free: connect, unless the session was disconnected while it waited
    /// (then false, and the shard does not count a connect in flight).
    final func startConnect(to address: SocketAddress, from source: SocketAddress? = nil) -> Bool {
        guard lifecycle.startConnect() else { return false }
        let now = NIODeadline.now().uptimeNanoseconds
        connectStartedAt = now
        shard.counters.add(.connectionsAttempted)
        shard.counters.connectAttempted(at: now)
        let bound = NIOLoopBound(self, eventLoop: shard.loop)
        openChannel(to: address, from: source).whenComplete { result in
            let session = bound.value
            session.shard.connectDone()
            if case .failure(let error) = result { session.connectFailed(error, to: address) }
        }
        return true
    }

    /// A connect failed or was cancelled: counted by reason (the first of each reason is
    /// logged), and the session ends.
    private func connectFailed(_ error: Error, to address: SocketAddress) {
        socketFD = -1
        guard let ending = lifecycle.connectFailed() else { return }
        channel = nil
        let counters = shard.counters
        if ending == .cancelled {
            counters.add(.connectionsCancelled)
        } else {
            counters.add(.connectionsFailed)
            let (counter, reason) = ConnectFailure.classify(error)
            counters.add(counter)
            shard.reportOnce("connect \(counter)") { "connect \(Self.describe(address)): \(reason)" }
        }
        shard.sessionEnded()
    }

    /// `127.0.0.1:7001`, `[::1]:7001`.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "the server" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// SEND: `copies` more payloads may go out. They go out in the shard's next write round
    /// (after the actions due at this instant), so a PACE or FLOOD at the same offset
    /// decides how they are sent, whichever line comes first.
    final func release(_ copies: Int) {
        cursor.release(copies)
        if lifecycle.isActive { shard.rounds.schedule(self) }
    }

    /// FLOOD: the whole payload list may go out, again and again with REPEAT. `at` is the
    /// action's intended time (monotonic ns), which ends a pace phase.
    final func flood(at intended: UInt64) {
        endPacing(at: intended)
        cursor.flooding = true
        pump()
    }

    /// (ext) PACE: from now on the whole list goes out on `spec`'s schedule (looping with
    /// REPEAT, as FLOOD does), payload 0 at `phaseStart` plus this session's stagger.
    final func pace(_ spec: PaceSpec, phaseStart: UInt64, index i: Int, of n: Int) {
        endPacing(at: phaseStart)
        paceBox = OutOfLine(Pacer(spec, phaseStart: phaseStart, session: i, of: n))
        cursor.flooding = true
        pump()
    }

    /// Ends the current pace phase at `end` (the intended time of the action that ends it;
    /// now when none): counts the payloads due by then, beyond the lag tolerance, that were
    /// not sent — not those due while that action itself ran late — and makes the queued
    /// wake-up stale.
    private func endPacing(at end: UInt64? = nil) {
        guard let p = pacer else { return }
        if lifecycle.isActive, cursor.hasMore {
            let end = end ?? NIODeadline.now().uptimeNanoseconds
            var behind = p.due(at: end &- min(end, p.tolerance)) - p.sent
            if !cursor.repeats { behind = min(behind, cursor.count - cursor.position) }
            if behind > 0 { shard.counters.add(.pacedBehind, behind) }
        }
        paceBox = nil
        paceGeneration &+= 1
        paceWake = 0
        cursor.budget = .max
    }

    /// The shard's pace queue says this session's next payload is due.
    final func paceDue(generation: UInt32, due: UInt64) {
        guard generation == paceGeneration, due == paceWake else { return }
        paceWake = 0
        pump()
    }

    /// (ext) CHURN: from now on close and reconnect every `period`; session `i` of the `n`
    /// in the range takes its first turn `(i+1)/n` of a period after `phaseStart`.
    final func churn(every period: UInt64, phaseStart: UInt64, index i: Int, of n: Int) {
        churnGeneration &+= 1
        churnPeriod = period
        let offset = UInt64(Double(period) * Double(i + 1) / Double(max(1, n)))
        shard.scheduleChurn(self, due: phaseStart &+ offset, generation: churnGeneration)
    }

    /// A CHURN turn: close now (FIN) and reconnect once closed; a session that is not
    /// connected at its turn (still connecting) skips it. The next turn is on the schedule.
    final func churnDue(generation: UInt32, due: UInt64) {
        guard generation == churnGeneration, churnPeriod > 0 else { return }
        shard.scheduleChurn(self, due: due &+ churnPeriod, generation: generation)
        guard lifecycle.isActive, !cursor.draining else {
            if !lifecycle.isClosed { shard.counters.add(.churnSkipped) }
            return
        }
        churnReconnect = true
        _ = close(.us)
    }

    /// Ends CHURN: DRAIN and DISCONNECT stop it.
    private func endChurn() {
        churnGeneration &+= 1
        churnPeriod = 0
        churnReconnect = false
    }

    /// DRAIN: sends what is released (with FLOOD, to the end of the current pass), then closes.
    /// A session still connecting does the same once it is connected.
    final func drain() {
        endChurn()
        cursor.draining = true
        if lifecycle.isActive, !hasPending { closeAfterWrites() } else { pump() }
    }

    /// DISCONNECT, the end of the run, a stop: close now (a pending connect is cancelled).
    /// `at` is the DISCONNECT's intended time, which ends a pace phase.
    /// With `reset` (ext: `DISCONNECT a:b "reset"`) the close sends RST: `SO_LINGER` 0 first.
    final func disconnect(at intended: UInt64? = nil, reset: Bool = false) {
        endPacing(at: intended)
        endChurn()
        switch lifecycle.disconnect(reset: reset) {
        case .none: break
        case .ended: shard.sessionEnded()
        case .cancelConnect: channel?.close(promise: nil)
        case .close:
            if reset, let provider = (context?.channel ?? channel) as? SocketOptionProvider {
                // On the channel's loop, so the option is set before the close below.
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenSuccess {}
                shard.counters.add(.resetsSent)
            }
            closeChannel()
        }
    }

    /// After the engine's hard deadline: close whatever channel is still open.
    final func forceClose() {
        disconnect()
        (context?.channel ?? channel)?.close(promise: nil)
    }

    // MARK: channel events (forwarded by the subclasses' handler conformances)

    /// The channel became active: counts the connection and its connect latency, then starts
    /// writing — or closes at once when a DISCONNECT came first, or a DRAIN left nothing to send.
    final func active(_ context: ChannelHandlerContext, connectedAt: UInt64? = nil) {
        let action = lifecycle.connected()
        guard action != .none else { return }
        self.context = context
        self.channel = context.channel
        let counters = shard.counters
        counters.add(.connectionsSucceeded)
        let now = NIODeadline.now().uptimeNanoseconds
        counters.connected(at: now)
        // (ext) TLS: connect latency is TCP's; the handshake has its own.
        shard.latency.record(.connect, nanoseconds: (connectedAt ?? now) &- connectStartedAt)
        counters.add(.connectionsActive)
        let open = counters.get(.connectionsActive)
        if open > counters.get(.peakOpenSessions) { counters.set(.peakOpenSessions, open) }
        didBecomeActive(context)
        if action == .startThenClose {
            closeChannel()
        } else if cursor.draining, !hasPending {
            close(.us)
        } else {
            pump()
        }
    }

    /// The channel closed: replies not yet handed over are dropped, and a connection that was
    /// active is counted by how it ended and the session ends.
    final func inactive() {
        awaitingReplies = false  // closed anyway: what is left stays outstanding (or times out now)
        expireRequests(now: NIODeadline.now().uptimeNanoseconds)
        if let s = sequence {
            // A connection's gaps are final when it closes: the worst session's count.
            shard.counters.raise(.sequenceWorstLost, to: s.value.lost)
            sequence = nil
        }
        let reason = lifecycle.channelClosed()
        // Replies that never reached the channel are dropped with it.
        ledger.dropQueuedReplies(replies.reduce(0) { $0 + $1.count })
        replies.removeAll()
        spareReplies = nil
        pendingReplyBytes = 0
        context = nil
        channel = nil
        socketFD = -1
        held = nil
        guard let reason else { return }
        let counters = shard.counters
        counters.add(.connectionsActive, -1)
        counters.add(Self.counter(for: reason))
        if churnReconnect, lifecycle.requeue() {
            // (ext) CHURN: connect again, the payload list where it was. The requests the
            // close cut off can get no reply: counted apart, not as the server's timeouts.
            if let requests {
                var cutOff = 0
                requests.value.connectionReplaced(cutOff: &cutOff)
                if cutOff > 0 {
                    counters.add(.requestsCutOff, cutOff)
                    counters.add(.outstanding, -cutOff)
                }
            }
            churnReconnect = false
            closingAfterWrites = false
            readsPaused = false
            readWanted = false
            framesWaiting = false
            lastWrite = nil
            counters.add(.reconnects)
            shard.reconnect(index)
            return
        }
        churnReconnect = false
        shard.sessionEnded()
    }

    /// The counter a close reason is counted in.
    static func counter(for reason: CloseReason) -> ShardCounters.Counter {
        switch reason {
        case .us: .closedByUs
        case .peerFin: .closedByPeer
        case .peerReset: .resets
        case .localError: .localErrors
        case .protocolError: .protocolErrors
        }
    }

    /// The server half-closed (TCP): nothing more to read; we keep sending.
    final func peerFinished() {
        if lifecycle.peerFinished() { shard.counters.add(.finsReceived) }
    }

    /// Writing resumes once the channel is writable again.
    final func writabilityChanged(_ context: ChannelHandlerContext) {
        if context.channel.isWritable { pump() }
    }

    /// A socket error reported before NIO closes the channel (a read error, a reset): what
    /// the channel still buffers is known now, so in-flight batches are settled exactly.
    final func socketError(_ error: Error) {
        let reason = Self.classify(error)
        if reason == .localError {
            let peer = Self.describe(context?.channel.remoteAddress ?? channel?.remoteAddress)
            shard.reportOnce("local error") { "socket error on a session to \(peer): \(error)" }
        }
        close(reason)
    }

    /// The server broke the framing: count why, explain the first, close.
    final func protocolError(_ counter: ShardCounters.Counter, _ explanation: @autoclosure () -> String) {
        shard.counters.add(counter)
        let peer = Self.describe(context?.channel.remoteAddress ?? channel?.remoteAddress)
        shard.reportOnce("protocol \(counter)") { "\(peer) \(explanation()): the session is closed (protocol error)" }
        close(.protocolError)
    }

    /// What an error says about how the connection ended.
    static func classify(_ error: Error) -> CloseReason {
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNRESET, EPIPE, ECONNREFUSED, ECONNABORTED: return .peerReset
            default: return .localError
            }
        }
        if let e = error as? ChannelError, e == .eof { return .peerFin }
        return .localError
    }

    /// The outbound `read` (autoRead asks for the next read after each one): held back
    /// while too many handler replies wait for the socket.
    final func interceptRead(_ context: ChannelHandlerContext) {
        if readsPaused || framesWaiting { readWanted = true } else { context.read() }
    }

    /// The session's turn in a write round: its writes (TCP sessions first handle frames
    /// left waiting).
    func roundTurn() {
        pump()
    }

    /// The time requests are judged expired at: `now`, or for frames read but left waiting
    /// (their replies may be among them) when they were read.
    func expiryClock(_ now: UInt64) -> UInt64 {
        now
    }

    /// Passes on the read the channel asked for while reads were held, once nothing holds them.
    final func readIfWanted() {
        guard readWanted, !readsPaused, !framesWaiting, let context else { return }
        readWanted = false
        context.read()
    }

    /// Counts a handler outcome: each call once, by what came of it.
    final func record(_ outcome: HandlerOutcome) {
        let counters = shard.counters
        counters.add(.handlerCalls)
        switch outcome {
        case .reply: counters.add(.handlerReplies)
        case .empty: counters.add(.handlerEmpty)
        case .failed(let kind): recordFailure(kind)
        }
    }

    /// A failed handler call that was not a body call (handle_header): a call that failed.
    final func recordHeaderFailure(_ kind: HandlerFailure) {
        shard.counters.add(.handlerCalls)
        recordFailure(kind)
    }

    /// Counts a failure by kind, and as a trap when it is one.
    private func recordFailure(_ kind: HandlerFailure) {
        let counters = shard.counters
        if kind.isTrap { counters.add(.handlerTraps) }
        counters.add(Self.counter(for: kind))
    }

    /// The counter a handler failure kind is counted in.
    static func counter(for kind: HandlerFailure) -> ShardCounters.Counter {
        switch kind {
        case .unreachable: .trapUnreachable
        case .outOfBounds: .trapOutOfBounds
        case .outOfFuel: .trapOutOfFuel
        case .stackExhausted: .trapStackExhausted
        case .otherTrap: .trapOther
        case .badPointer: .handlerBadPointers
        case .allocFailed: .handlerAllocFailures
        }
    }

    /// Memory-growth refusals since the last look (after a read's messages were handled).
    final func recordMemoryDenials() {
        let n = shard.handler.takeMemoryDenials()
        if n > 0 { shard.counters.add(.handlerMemoryDenied, n) }
    }

    // MARK: replies and backpressure

    /// Queues a buffer holding `count` replies, then writes.
    final func queueReplies(_ buffer: ByteBuffer, count: Int) {
        replies.append((buffer, count))
        pendingReplyBytes += buffer.readableBytes
        if !readsPaused, pendingReplyBytes >= shard.config.replyBacklog {
            readsPaused = true
            shard.counters.add(.readPauses)
        }
        pump()
    }

    /// A cleared buffer for the replies of one read: the spare one when there is one (see
    /// ``spareReplies``), else a new one of `capacity` bytes.
    @inline(__always)
    final func replyBuffer(_ allocator: ByteBufferAllocator, capacity: Int) -> ByteBuffer {
        guard var b = spareReplies else { return allocator.buffer(capacity: capacity) }
        spareReplies = nil
        b.clear()
        return b
    }

    /// Buffers up to this size are kept for reuse; a burst's larger one is let go.
    static let spareReplyLimit = 4096

    /// One reply of `size` bytes went into the buffer being built for `queueReplies`.
    @inline(__always)
    final func replyProduced(size: Int) {
        ledger.replyQueued(size: size)
    }

    /// Lets reads go on once the queued replies are down to half of `replyBacklog`, and makes
    /// the read the channel asked for meanwhile.
    private func resumeReadsIfDrained() {
        guard readsPaused, pendingReplyBytes <= shard.config.replyBacklog / 2 else { return }
        readsPaused = false
        readIfWanted()
    }

    // MARK: closing

    /// Closes for `reason` (us, a protocol error, an error). False when not active.
    @discardableResult
    final func close(_ reason: CloseReason) -> Bool {
        guard lifecycle.close(reason) else { return false }
        closeChannel()
        return true
    }

    /// (ext) A TLS handshake failed: the channel closes (nothing was sent on it); the connect
    /// then fails with the handshake's error.
    final func closeForFailedHandshake() {
        channel?.close(promise: nil)
    }

    /// Accounts for what the kernel already took of the batches in flight, then closes.
    /// (ext) TLS: the channel's buffered bytes are ciphertext, and swift-nio-ssl writes what it
    /// was given before its close_notify: the batches' own promises say what went out.
    private func closeChannel() {
        if let channel = context?.channel ?? channel {
            if ledger.hasUnsettled, shard.tls == nil {
                let buffered = (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
                add(ledger.settle(buffered: buffered))
            }
            if shard.tls != nil {
                // (ext) TLS: with remote half-closure allowed, swift-nio-ssl takes the server's
                // close_notify during our own close as a half-close and waits out its shutdown
                // timeout (100 ms) anyway; we are closing, so the server's answer ends it.
                try? channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
            }
            willClose(channel)
            channel.close(promise: nil)
        }
    }

    /// Adds what the ledger settled to the shard's counters.
    private func add(_ s: SendLedger.Settled) {
        let counters = shard.counters
        if s.bytes > 0 { counters.add(.bytesSent, s.bytes) }
        if s.packets > 0 { counters.add(.packetsSent, s.packets) }
        if s.replies > 0 { counters.add(.responsesSent, s.replies) }
        if s.unconfirmedBytes > 0 { counters.add(.bytesUnconfirmed, s.unconfirmedBytes) }
    }

    /// A batch's write promise completed. Bytes count as sent once the kernel took them.
    private func batchDone(_ seq: Int, _ result: Result<Void, Error>, sampledFrom issuedAt: UInt64?) {
        switch result {
        case .success:
            add(ledger.written(seq))
            if let issuedAt {
                shard.latency.record(.send, nanoseconds: NIODeadline.now().uptimeNanoseconds &- issuedAt)
            }
        case .failure(let error):
            add(ledger.failed(seq))
            // A write error: NIO is closing the channel and has dropped what it buffered, so
            // there is nothing left to settle; note why, and make sure it closes.
            if lifecycle.close(Self.classify(error)) { (context?.channel ?? channel)?.close(promise: nil) }
        }
    }

    /// Closes once everything handed to the socket has been written.
    private func closeAfterWrites() {
        guard lifecycle.isActive, !closingAfterWrites else { return }
        closingAfterWrites = true
        if let f = lastWrite {
            let bound = NIOLoopBound(self, eventLoop: shard.loop)
            f.whenComplete { _ in bound.value.closeOnceAnswered() }
        } else {
            closeOnceAnswered()
        }
    }

    /// (ext) With RESPONSE, a draining session waits for its outstanding requests to be
    /// answered or to time out before it closes, so their replies are not cut off. (All are
    /// this connection's: a CHURN reconnect counts the old one's as cut off.)
    private func closeOnceAnswered() {
        if let r = requests, r.value.outstanding > 0, lifecycle.isActive {
            awaitingReplies = true
        } else {
            close(.us)
        }
    }

    /// Called after replies are matched or requests expire.
    private func closeIfAnswered() {
        if awaitingReplies, requests?.value.outstanding ?? 0 == 0 {
            awaitingReplies = false
            close(.us)
        }
    }

    // MARK: the write loop

    /// Something can be written now: replies are queued, or released payloads the pace
    /// schedule lets out.
    final var hasWork: Bool {
        !replies.isEmpty || cursor.hasPayload
    }

    /// Something is left to write, now or later on the pace schedule (DRAIN waits for it).
    final var hasPending: Bool {
        !replies.isEmpty || cursor.hasMore
    }

    /// Hands one buffer of the batch being built to the channel (the previous one: the last
    /// is held back to carry the batch promise).
    @inline(__always)
    final func emit(_ buffer: ByteBuffer, _ context: ChannelHandlerContext) {
        if batchIsDirect {
            shard.directBatch.append(buffer)
        } else {
            emit(any: NIOAny(buffer), context)
        }
    }

    /// As ``emit(_:_:)``, for a message the transport wraps itself (a UDP segmented write).
    @inline(__always)
    final func emit(any message: NIOAny, _ context: ChannelHandlerContext) {
        if let h = held { context.write(h, promise: nil) }
        held = message
    }

    /// One turn of the write loop: replies first, then released payloads; a few batches of
    /// writes with one flush each. It stops when the channel is not writable (writability
    /// resumes it) and, with work left, joins the shard's next write round, which runs after
    /// the event loop's next pass through its I/O — so this session's reads, every other
    /// session and the timers get their turn in between.
    final func pump() {
        guard lifecycle.isActive, let context, !pumping else { return }
        pumping = true
        defer { pumping = false }
        let config = shard.config
        let rate = max(1, shard.plan.settings.sampleRate)
        var batches = 0
        if let p = pacer { cursor.budget = p.budget(at: NIODeadline.now().uptimeNanoseconds) }
        while batches < config.batchesPerTurn, lifecycle.isActive, hasWork {
            // Nothing of ours buffered in the channel: this batch may go to the socket itself
            // (and the channel's writability, which only its buffer sets, need not be asked).
            // The descriptor is still ours: see ``DirectSocket`` for why an active lifecycle
            // says so.
            batchIsDirect = socketFD >= 0 && held == nil && !ledger.hasUnsettled
            guard batchIsDirect || context.channel.isWritable else { break }
            let issuedAt = NIODeadline.now().uptimeNanoseconds
            handTime = issuedAt
            var writes = 0
            var bytes = 0
            var packets = 0
            // Runs of one packet size are tallied here and handed to the ledger once, not
            // per write: a batch of small runs touches the ledger once or twice.
            var run = (count: 0, size: 0)
            while writes < config.writesPerFlush, bytes < config.bytesPerFlush,
                batchIsDirect || context.channel.isWritable
            {
                if let r = replies.popFirst() {
                    if run.count > 0 { ledger.handPackets(count: run.count, size: run.size) }
                    run = (0, 0)
                    let n = r.buffer.readableBytes
                    pendingReplyBytes -= n
                    ledger.handReplies(count: r.count, bytes: n)
                    emit(r.buffer, context)
                    if r.buffer.capacity <= Self.spareReplyLimit { spareReplies = r.buffer }
                    bytes += n
                    writes += 1
                    continue
                }
                guard let (count, size) = writeNextRun(context) else { break }
                if paceBox != nil { pacedWritten(count, at: issuedAt) }
                if size != run.size, run.count > 0 {
                    ledger.handPackets(count: run.count, size: run.size)
                    run.count = 0
                }
                run = (run.count + count, size)
                bytes += count * size
                packets += count
                writes += 1
            }
            if run.count > 0 { ledger.handPackets(count: run.count, size: run.size) }
            let direct = batchIsDirect
            batchIsDirect = false
            guard direct ? !shard.directBatch.isEmpty : held != nil else { break }
            let seq = ledger.closeBatch()
            // Send latency is sampled: the batch holding the session's first packet and every
            // batch that holds a SAMPLERATE-th packet (write issued → kernel accepted).
            let sampled =
                packets > 0 && (packetsWritten == 0 || packetsWritten / rate != (packetsWritten + packets) / rate)
            packetsWritten += packets
            batches += 1
            if direct {
                switch shard.directBatch.write(to: socketFD) {
                case .written:
                    batchDone(seq, .success(()), sampledFrom: sampled ? issuedAt : nil)
                    continue
                case .failed(let code):
                    // As a failed channel write: counted, classified by its errno, closed.
                    batchDone(seq, .failure(IOError(errnoCode: code, reason: "write")), sampledFrom: nil)
                    continue
                case .partial:
                    // The socket took part of it: the rest goes through the channel, which
                    // waits for room.
                    shard.directBatch.drain { emit(any: NIOAny($0), context) }
                }
            }
            guard let last = held else { break }
            held = nil
            let promise = context.eventLoop.makePromise(of: Void.self)
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { result in
                bound.value.batchDone(seq, result, sampledFrom: sampled ? issuedAt : nil)
            }
            lastWrite = promise.futureResult
            // May complete the promise, or even close the channel, before it returns.
            context.writeAndFlush(last, promise: promise)
        }
        guard lifecycle.isActive else { return }
        resumeReadsIfDrained()
        if hasWork {
            if context.channel.isWritable { shard.rounds.schedule(self) }
        } else if let p = pacer, cursor.hasMore {
            // Held back by the schedule: wake when the next payload is due.
            let due = p.intended(p.sent)
            if due != .max, due != paceWake {
                paceWake = due
                shard.schedulePace(self, due: due)
            }
        } else if cursor.draining, !cursor.hasMore {
            closeAfterWrites()
        }
    }

    /// `count` paced payloads were handed over at `now`: their lag is recorded, each
    /// against its own intended time.
    private func pacedWritten(_ count: Int, at now: UInt64) {
        guard let box = paceBox else { return }
        let latency = shard.latency
        for k in box.value.sent..<(box.value.sent + count) {
            let intended = box.value.intended(k)
            latency.record(.lag, nanoseconds: now > intended ? now - intended : 0)
        }
        box.value.didSend(count)
        shard.counters.add(.pacedPayloads, count)
    }

    // MARK: requests and replies (RESPONSE)

    /// The intended send time of the `i`-th payload of the run being written.
    @inline(__always)
    private func intendedTime(_ i: Int) -> UInt64 {
        if let p = paceBox { return p.value.intended(p.value.sent + i) }
        return handTime
    }

    /// Notes `k` requests with ids `copy(first)·step … copy(first+k-1)·step` (masked to the
    /// id's width), `copy` mapping this process's copy numbers to the single run's.
    private func registerRequests(first: UInt64, _ k: Int, lanes: CounterLanes, step: UInt64, mask: UInt64) {
        let table = requests ?? OutOfLine(RequestTable(matchesByID: shard.plan.settings.response != .inOrder))
        requests = table
        var replaced = 0
        for i in 0..<k {
            let id = (lanes.global(first &+ UInt64(i)) &* step) & mask
            if table.value.sent(id: id, at: intendedTime(i)) { replaced += 1 }
        }
        let counters = shard.counters
        counters.add(.requests, k)
        counters.add(.outstanding, k - replaced)
        if replaced > 0 { counters.add(.timeouts, replaced) }
    }

    /// A frame (TCP, header included) or datagram (UDP) arrived at `now`: match it to its
    /// request and record the response time.
    final func matchReply(_ frame: UnsafeRawBufferPointer, at now: UInt64) {
        guard let match = shard.plan.settings.response else { return }
        var id: UInt64 = 0
        if case .field(let field) = match {
            guard frame.count >= field.offset + field.size else {
                shard.counters.add(.unmatched)  // the id lies outside this frame
                return
            }
            id = field.read(frame) & shard.replyIDMask
        }
        let counters = shard.counters
        guard let requests else {
            counters.add(.unmatched)
            return
        }
        var timedOut = 0
        let outcome = requests.value.reply(id: id, at: now, timeout: shard.responseTimeout, timedOut: &timedOut)
        if timedOut > 0 {
            counters.add(.timeouts, timedOut)
            counters.add(.outstanding, -timedOut)
        }
        switch outcome {
        case .matched(let rtt, let reordered):
            counters.add(.replies)
            if reordered { counters.add(.repliesReordered) }
            counters.add(.outstanding, -1)
            shard.latency.record(.response, nanoseconds: rtt)
        case .unmatched: counters.add(.unmatched)
        case .duplicate: counters.add(.duplicates)
        }
        closeIfAnswered()
    }

    /// (ext) SEQUENCE: a message (TCP frame, header included, or datagram) read at `now`; one
    /// too short to hold the number is not counted as sequenced.
    final func trackSequence(_ message: UnsafeRawBufferPointer, at now: UInt64) {
        guard let field = shard.plan.settings.sequence, message.count >= field.offset + field.size,
            lifecycle.isActive
        else { return }
        if sequence == nil { sequence = OutOfLine(SequenceTracker(bytes: field.size)) }
        let sequence = sequence!
        let c = sequence.value.receive(field.read(message), at: now)
        let counters = shard.counters
        counters.add(.sequenced)
        if c.lost != 0 { counters.add(.sequenceLost, c.lost) }
        if c.reordered > 0 {
            counters.add(.sequenceReordered, c.reordered)
            counters.raise(.sequenceWorstReordered, to: sequence.value.reordered)
        }
        if c.duplicate {
            counters.add(.sequenceDuplicates)
            counters.raise(.sequenceWorstDuplicates, to: sequence.value.duplicates)
        }
        if c.jitterUpdated {
            // Clamped to the histogram's hour before converting: any estimate converts.
            let j = UInt64(min(max(sequence.value.jitter, 0), 3.6e12).rounded())
            shard.latency.record(.jitter, nanoseconds: j)
            counters.raise(.sequenceWorstJitterNanoseconds, to: Int(j))
        }
    }

    /// Counts requests older than TIMEOUT as timeouts (the shard's sweep, a close).
    final func expireRequests(now: UInt64) {
        guard let requests, !requests.value.isEmpty else { return }
        var timedOut = 0
        requests.value.expire(now: expiryClock(now), timeout: shard.responseTimeout, timedOut: &timedOut)
        if timedOut > 0 {
            shard.counters.add(.timeouts, timedOut)
            shard.counters.add(.outstanding, -timedOut)
        }
        closeIfAnswered()
    }

    // MARK: patched payloads

    /// Builds `k` patched copies of the current entry's packet, whole, in one buffer: one
    /// atomic reservation for the run's counter values and one clock read.
    final func patchedCopies(_ k: Int, _ entry: PayloadEntry, _ allocator: ByteBufferAllocator) -> ByteBuffer {
        patchedRegions(k, entry, lo: 0, len: shard.packets[entry.packet].size, allocator)
    }

    /// `k` copies of bytes `[lo, lo+len)` of the entry's packet, patched, back to back.
    final func patchedRegions(
        _ k: Int, _ entry: PayloadEntry, lo: Int, len: Int,
        _ allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let layout = shard.patches[entry.send]!
        let prepared = shard.packets[entry.packet]
        let first = layout.counter != nil ? shard.sendCounters.reserve(entry.send, k) : 0
        let lanes = shard.counterLanes[entry.send]
        if let c = layout.counter, let mask = shard.requestIDMasks[entry.send] {
            registerRequests(first: first, k, lanes: lanes, step: c.step, mask: mask)
        }
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
                    putInteger(
                        lanes.global(first &+ UInt64(i)) &* c.step, length: c.length, order: c.order, into: p,
                        at: base + c.offset)
                }
                if let t = layout.timestamp {
                    putInteger(now / t.unit.nanoseconds, length: t.length, order: t.order, into: p, at: base + t.offset)
                }
            }
        }
        return regions
    }
}
