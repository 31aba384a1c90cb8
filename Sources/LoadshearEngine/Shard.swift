import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One event loop and the sessions it owns. Everything mutable here is touched only on
/// `loop`; the engine reaches in by scheduling tasks on it.
final class Shard: @unchecked Sendable {
    // @unchecked: all mutable state is confined to `loop` (checked with
    // `loop.preconditionInEventLoop` on entry points in debug builds).
    /// The shard's position: its sessions are `plan.shards[index]`.
    let index: Int
    let loop: EventLoop
    let plan: Plan
    /// The sessions it owns: a contiguous block of the plan's.
    let range: Range<Int>
    let counters: ShardCounters
    /// Loop-confined; the engine's snapshot timer takes its samples every 500 ms.
    let latency = LatencyRecorder()
    /// Where the loop leaves its latency samples for the engine's control loop to merge.
    let latencyOutbox = Mutex<LatencySet?>(nil)
    /// COUNTER values, shared by every shard.
    let sendCounters: SendCounters
    /// (ext) Per SEND: this process's copy numbers → the single run's (a segment's lanes).
    let counterLanes: [CounterLanes]
    let config: EngineConfiguration
    /// This shard's handler instance, used only on `loop`.
    let handler: MessageHandler
    /// Prepared once by the engine and shared by every shard (ByteBuffers are immutable
    /// here and safe to share): a big packet is held in memory once.
    let packets: [PreparedPacket]
    /// Each SEND's patch layout, by SEND index; nil for a SEND without patches.
    let patches: [PatchLayout?]
    /// The endpoints' addresses: session `s` connects to `addresses[s % addresses.count]`.
    let addresses: [SocketAddress]
    /// (ext) SOURCES: session `s` binds `sources[s % sources.count]` before it connects.
    let sources: [SocketAddress]
    /// (ext) `SESSION = "TLS"`: the run's TLS client context; nil for TCP and UDP.
    let tls: TLSClient?
    /// The write rounds that sessions with work left join.
    let rounds: WriteRounds
    /// The batch a session builds for a direct write (``DirectSocket``), reused by all.
    let directBatch: DirectBatch
    /// The run's failure log, shared by every shard.
    let failures: FailureLog
    /// Failure kinds this shard has already passed to `failures` (saves its lock).
    private var reportedKinds = Set<String>()
    /// (ext) RESPONSE: per SEND, the mask that turns its COUNTER value into a request id
    /// (nil: the SEND makes no requests); TIMEOUT in nanoseconds.
    let requestIDMasks: [UInt64?]
    /// The widest of them, applied to a reply's id field: a COUNTER narrower than the field
    /// is compared in its own width (the field's other bytes are the packet's).
    let replyIDMask: UInt64
    let responseTimeout: UInt64
    /// (ext) UDP segmentation offload: the segment size set on UDP sockets (0: off), and the
    /// most datagrams one write may carry. See ``udpSegmentation(plan:config:)``.
    let udpSegmentSize: Int
    let udpSegmentsPerWrite: Int
    /// (ext) PACE: sessions by next due payload, and when the pace timer fires next.
    private var paceQueue = PaceQueue()
    private var paceTimerDue: UInt64 = .max
    /// The due time of the last pace tick (not when it ran: a tick that woke late must not
    /// push the next one back by as much, or every tick inherits the wake-up latency: lag
    /// p50 26 µs instead of 15 µs at 50,000 payloads/s on one shard, bench/response.sh).
    private var lastPaceTick: UInt64 = 0
    /// Pace wake-ups closer together than this are served by one timer: it bounds the
    /// timers per second (each is a scheduled task) at a small cost in lag.
    static let paceTickSpacing: UInt64 = 20_000
    /// The loop thread's CPU time when the shard was made (µs).
    private let busyBaseline: Int

    /// The sessions of `range`, in order; ``session(_:)`` finds one by its global number.
    private(set) var sessions: [Session] = []
    /// Sessions waiting for a connect slot, in order.
    private var connectQueue = CircularBuffer<Int>()
    /// Connects started and not yet finished: at most `connectWindow`.
    private var connectsInFlight = 0
    /// Sessions queued, connecting, active or closing.
    private var live = 0
    /// Set by ``finish(drainGrace:)``: no action runs and no queued connect starts afterwards.
    private var finishing = false
    /// Succeeded once `live` drops to 0 after ``finish(drainGrace:)``, or by ``abandonAll()``.
    private var finishPromise: EventLoopPromise<Void>?

    /// A shard owning `plan.shards[index]`; it has no sessions until ``makeSessions()``.
    init(
        index: Int, loop: EventLoop, plan: Plan, counters: ShardCounters, sendCounters: SendCounters,
        config: EngineConfiguration, handler: MessageHandler, packets: [PreparedPacket], addresses: [SocketAddress],
        rounds: WriteRounds, failures: FailureLog, tls: TLSClient? = nil
    ) {
        self.index = index
        self.loop = loop
        self.plan = plan
        self.range = plan.shards[index]
        self.counters = counters
        self.sendCounters = sendCounters
        self.config = config
        self.handler = handler
        self.packets = packets
        self.addresses = addresses
        self.sources = plan.settings.sources.compactMap { try? SocketAddress(ipAddress: $0, port: 0) }
        self.rounds = rounds
        self.directBatch = DirectBatch()
        self.failures = failures
        self.tls = tls
        self.patches = plan.sends.map { PatchLayout($0) }
        self.counterLanes = plan.segment?.lanes ?? plan.sends.map { _ in .identity }
        let response = plan.settings.response
        self.requestIDMasks = plan.sends.map { send in
            guard let response, let c = send.counter else { return nil }
            let bytes: Int
            switch response {
            case .field(let f): bytes = min(c.length, f.size)
            case .inOrder: bytes = c.length
            }
            return bytes >= 8 ? .max : (1 << (8 * UInt64(bytes))) - 1
        }
        self.replyIDMask = requestIDMasks.compactMap { $0 }.max() ?? .max
        self.responseTimeout = UInt64(plan.settings.responseTimeout)
        (self.udpSegmentSize, self.udpSegmentsPerWrite) = Self.udpSegmentation(plan: plan, config: config)
        self.busyBaseline = Self.threadCPUMicroseconds()
    }

    /// The segment size for UDP sockets: the largest packet, so a write of one payload is
    /// one datagram as before and a run of the largest packet goes out as one write the kernel
    /// cuts into datagrams (`UDP_SEGMENT`). Off (0) without kernel support, for packets that
    /// would not fit a 1500-byte MTU (1452 bytes over IPv6), and with a WASM handler, whose
    /// replies may be longer than the segment size and must stay one datagram each.
    static func udpSegmentation(plan: Plan, config: EngineConfiguration) -> (size: Int, perWrite: Int) {
        guard plan.settings.session == .udp, config.udpSegmentation, System.supportsUDPSegmentationOffload,
            case .nop = plan.handler, let largest = plan.packets.map(\.bytes.count).max(), (1...1452).contains(largest)
        else { return (0, 1) }
        // The kernel takes at most 64 segments (UDP_MAX_SEGMENTS) and 64 KiB less headers per send.
        return (largest, max(1, min(64, 65_000 / largest)))
    }

    /// CPU time the calling thread has used, in µs (0 where the system cannot tell).
    static func threadCPUMicroseconds() -> Int {
        #if canImport(Glibc)
        var ts = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 else { return 0 }
        return ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
        #else
        return 0
        #endif
    }

    /// Starts the shard's own timers: the RESPONSE sweep that turns requests older than
    /// TIMEOUT into timeouts on sessions no reply reaches.
    func startTimers() {
        loop.preconditionInEventLoop()
        guard plan.settings.response != nil else { return }
        let every = TimeAmount.nanoseconds(Int64(min(100_000_000, max(1_000_000, responseTimeout / 10))))
        loop.scheduleRepeatedTask(initialDelay: every, delay: every) { [self] _ in
            let now = NIODeadline.now().uptimeNanoseconds
            for session in sessions { session.expireRequests(now: now) }
        }
    }

    /// Queues a paced session's wake-up for when its next payload is due.
    func schedulePace(_ session: Session, due: UInt64) {
        paceQueue.push(
            .init(
                due: due, session: Int32(session.index - range.lowerBound), generation: session.paceGeneration))
        armPaceTimer()
    }

    /// (ext) Queues a session's next CHURN turn (the pace timer serves both).
    func scheduleChurn(_ session: Session, due: UInt64, generation: UInt32) {
        paceQueue.push(
            .init(due: due, session: Int32(session.index - range.lowerBound), generation: generation, churn: true))
        armPaceTimer()
    }

    /// (ext) A session closed for CHURN connects again, through the connect window.
    func reconnect(_ s: Int) {
        connectQueue.append(s)
        pumpConnects()
    }

    private func armPaceTimer() {
        // Draining sessions keep their schedule after the timeline ends; the others are
        // disconnected at the end, which makes their entries stale.
        guard let top = paceQueue.first else { return }
        let due = max(top.due, lastPaceTick &+ Self.paceTickSpacing)
        guard due < paceTimerDue else { return }  // an earlier timer serves it (or a tick runs)
        paceTimerDue = due
        // A scheduled callback costs one allocation, where scheduleTask makes a promise too.
        _ = try? loop.assumeIsolatedUnsafeUnchecked().scheduleCallback(
            at: .uptimeNanoseconds(due), handler: PaceTimer(shard: self, due: due))
    }

    /// The pace timer's callback: one small value, no closure or promise.
    private struct PaceTimer: NIOScheduledCallbackHandler {
        unowned let shard: Shard
        let due: UInt64
        func handleScheduledCallback(eventLoop: some EventLoop) { shard.paceTick(due) }
    }

    /// Wakes every paced session whose payload is due, then re-arms for the next one.
    fileprivate func paceTick(_ due: UInt64) {
        guard due == paceTimerDue else { return }  // superseded by an earlier timer
        // While the tick runs, sessions queue their next wake-ups without arming a timer
        // each: one is armed at the end, for the earliest.
        paceTimerDue = 0
        let now = NIODeadline.now().uptimeNanoseconds
        lastPaceTick = due
        while let top = paceQueue.first, top.due <= now {
            _ = paceQueue.pop()
            if top.churn {
                sessions[Int(top.session)].churnDue(generation: top.generation, due: top.due)
            } else {
                sessions[Int(top.session)].paceDue(generation: top.generation, due: top.due)
            }
        }
        paceTimerDue = .max
        armPaceTimer()
    }

    /// Creates the shard's sessions (they hold the shard, so this follows `init`). Sessions
    /// with the same SENDs share one payload-list array (copy-on-write).
    func makeSessions() {
        var lists: [(Range<Int>, [PayloadEntry])] = []
        for (r, _, sendIndices) in plan.payloadRuns() {
            let clipped = r.clamped(to: range)
            guard !clipped.isEmpty else { continue }
            let entries = sendIndices.map {
                PayloadEntry(
                    send: $0, packet: plan.sends[$0].packet, copies: plan.sends[$0].copies,
                    patched: plan.sends[$0].counter != nil || plan.sends[$0].timestamp != nil)
            }
            lists.append((clipped, entries))
        }
        let udp = plan.settings.session == .udp
        let repeats = plan.settings.repeatPayloads
        var all: [Session] = []
        all.reserveCapacity(range.count)
        var listIndex = 0
        for s in range {
            while listIndex < lists.count, lists[listIndex].0.upperBound <= s { listIndex += 1 }
            let entries = listIndex < lists.count && lists[listIndex].0.contains(s) ? lists[listIndex].1 : []
            all.append(
                udp
                    ? UDPSession(index: s, shard: self, entries: entries, repeats: repeats)
                    : TCPSession(index: s, shard: self, entries: entries, repeats: repeats))
        }
        sessions = all
    }

    /// Breaks the shard ↔ session cycle once every channel is closed and the loop is gone.
    func releaseSessions() {
        sessions = []
    }

    /// Session `s` by its global number, which must be in `range`.
    @inline(__always)
    func session(_ s: Int) -> Session { sessions[s - range.lowerBound] }

    /// Runs one timeline action for the sessions of `r` this shard owns; `intended` is its
    /// scheduled time (monotonic ns): how late it runs is recorded as lag.
    func apply(_ action: PlannedAction, intended: UInt64) {
        loop.preconditionInEventLoop()
        let r = action.sessions.clamped(to: range)
        guard !r.isEmpty, !finishing else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        latency.record(.lag, nanoseconds: now > intended ? now - intended : 0)
        switch action.kind {
        case .create:
            break  // sessions exist from the start; CREATE only marks the timeline
        case .connect:
            for s in r where session(s).queueConnect() {
                live += 1
                connectQueue.append(s)
            }
            pumpConnects()
        case .send(let si):
            let copies = plan.sends[si].copies
            for s in r { session(s).release(copies) }
        case .flood:
            for s in r { session(s).flood(at: intended) }
        case .pace(let spec):
            let whole = action.sessions
            for s in r {
                session(s).pace(spec, phaseStart: intended, index: s - whole.lowerBound, of: whole.count)
            }
        case .churn(let period):
            let whole = action.sessions
            for s in r {
                session(s).churn(
                    every: UInt64(period), phaseStart: intended, index: s - whole.lowerBound, of: whole.count)
            }
        case .drain:
            for s in r { session(s).drain() }
        case .disconnect(_, let reset):
            // Cancelling a pending connect frees its slot at once; no queued session may take
            // it until the whole range is through (it might be about to be disconnected too).
            holdingConnects = true
            for s in r { session(s).disconnect(at: intended, reset: reset) }
            holdingConnects = false
            pumpConnects()
        }
    }

    /// Set while connects are being started, or while a DISCONNECT goes through its range:
    /// a connect that completes at once (UDP, a refused or failed socket) must not start the
    /// next one from inside `startConnect` — with many queued sessions that recursion would
    /// exhaust the stack.
    private var holdingConnects = false

    /// Starts queued connects up to the window.
    private func pumpConnects() {
        guard !holdingConnects, !finishing else { return }
        holdingConnects = true
        defer { holdingConnects = false }
        while connectsInFlight < plan.settings.connectWindow, let s = connectQueue.popFirst() {
            // The slot is taken before the connect starts: it may complete before it returns.
            connectsInFlight += 1
            // False when it was disconnected while it waited: already ended, no slot used.
            let source = sources.isEmpty ? nil : sources[s % sources.count]
            if !session(s).startConnect(to: addresses[s % addresses.count], from: source) { connectsInFlight -= 1 }
        }
    }

    /// Explains the first failure of `kind` in the run (this shard asks at most once per kind).
    func reportOnce(_ kind: String, _ message: () -> String) {
        guard reportedKinds.insert(kind).inserted else { return }
        failures.once(kind, message)
    }

    /// A connect finished, either way.
    func connectDone() {
        connectsInFlight -= 1
        pumpConnects()
    }

    /// A session left the live set (closed, failed, cancelled, or disconnected while queued).
    func sessionEnded() {
        live -= 1
        if finishing, live == 0 {
            finishPromise?.succeed(())
            finishPromise = nil
        }
    }

    /// End of run: close everything still open, cancel pending connects. Draining sessions
    /// get `drainGrace` to finish; the future completes when every session has ended.
    func finish(drainGrace: TimeAmount) -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        finishing = true  // no queued connect starts from here on
        let promise = loop.makePromise(of: Void.self)
        var draining = false
        for session in sessions {
            if session.isDraining {
                draining = true
            } else {
                session.disconnect()
            }
        }
        connectQueue.removeAll()
        if live == 0 {
            promise.succeed(())
            return promise.futureResult
        }
        finishPromise = promise
        if draining {
            if drainGrace <= .zero {
                endDrainGrace()
            } else {
                loop.scheduleTask(in: drainGrace) { [self] in endDrainGrace() }
            }
        }
        return promise.futureResult
    }

    /// The drain grace is over (or cut short by a stop): sessions still draining are closed.
    func endDrainGrace() {
        loop.preconditionInEventLoop()
        guard finishing else { return }
        for session in sessions { session.disconnect() }
    }

    /// After the hard deadline: close every channel that is still open. The sessions see
    /// their channels close as usual, so what they hold is still counted; the shard then
    /// reports itself finished whatever is left.
    func abandonAll() {
        loop.preconditionInEventLoop()
        for session in sessions where session.lifecycle.isLive { session.forceClose() }
        finishPromise?.succeed(())
        finishPromise = nil
    }

    /// Hands the samples recorded since the last time to the control loop (a swap). The
    /// engine takes them before it asks again; should they still be there, they are merged,
    /// never lost.
    func depositLatency() {
        counters.set(.loopBusyMicroseconds, max(0, Self.threadCPUMicroseconds() - busyBaseline))
        let set = latency.take()
        latencyOutbox.withLock { box in
            if box == nil {
                box = set
            } else {
                box!.add(set)
            }
        }
    }

    /// Stops the write rounds (closing their pipe): nothing is pumped afterwards.
    func stop() {
        loop.preconditionInEventLoop()
        rounds.stop()
    }
}
