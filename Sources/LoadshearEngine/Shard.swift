import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix

/// One event loop and the sessions it owns. Everything mutable here is touched only on
/// `loop`; the engine reaches in by scheduling tasks on it.
final class Shard: @unchecked Sendable {
    // @unchecked: all mutable state is confined to `loop` (checked with
    // `loop.preconditionInEventLoop` on entry points in debug builds).
    let index: Int
    let loop: EventLoop
    let plan: Plan
    let range: Range<Int>
    let counters: ShardCounters
    /// Loop-confined; the engine's snapshot timer takes its samples every 500 ms.
    let latency = LatencyRecorder()
    let sendCounters: SendCounters
    let config: EngineConfiguration
    let handler: MessageHandler
    let packets: [PreparedPacket]
    let patches: [PatchLayout?]
    let addresses: [SocketAddress]

    private var sessions: [Session]
    /// Sessions waiting for a connect slot, in order.
    private var connectQueue = CircularBuffer<Int>()
    private var connectsInFlight = 0
    /// Sessions not yet closed or failed (those that were ever asked to connect).
    private var openSessions = 0
    private var finishing = false
    private var finishPromise: EventLoopPromise<Void>?

    init(index: Int, loop: EventLoop, plan: Plan, counters: ShardCounters, sendCounters: SendCounters,
         config: EngineConfiguration, handler: MessageHandler, addresses: [SocketAddress]) {
        self.index = index
        self.loop = loop
        self.plan = plan
        self.range = plan.shards[index]
        self.counters = counters
        self.sendCounters = sendCounters
        self.config = config
        self.handler = handler
        self.addresses = addresses
        let allocator = ByteBufferAllocator()
        self.packets = plan.packets.map { PreparedPacket(bytes: $0.bytes, allocator: allocator) }
        self.patches = plan.sends.map { PatchLayout($0) }
        self.sessions = []
        // Sessions with the same SENDs share one payload-list array (copy-on-write).
        var lists: [(Range<Int>, [PayloadEntry])] = []
        for (r, _, sendIndices) in plan.payloadRuns() {
            let clipped = r.clamped(to: range)
            guard !clipped.isEmpty else { continue }
            let entries = sendIndices.map {
                PayloadEntry(send: $0, packet: plan.sends[$0].packet, copies: plan.sends[$0].copies,
                             patched: plan.sends[$0].counter != nil || plan.sends[$0].timestamp != nil)
            }
            lists.append((clipped, entries))
        }
        var all: [Session] = []
        let udp = plan.settings.session == .udp
        let repeats = plan.settings.repeatPayloads
        all.reserveCapacity(range.count)
        var listIndex = 0
        for s in range {
            while listIndex < lists.count, lists[listIndex].0.upperBound <= s { listIndex += 1 }
            let entries = listIndex < lists.count && lists[listIndex].0.contains(s) ? lists[listIndex].1 : []
            all.append(udp ? UDPSession(index: s, entries: entries, repeats: repeats)
                           : TCPSession(index: s, entries: entries, repeats: repeats))
        }
        self.sessions = all
        for session in sessions { session.shard = self }
    }

    @inline(__always)
    func session(_ s: Int) -> Session { sessions[s - range.lowerBound] }

    /// Runs one timeline action for the sessions of `r` this shard owns.
    func apply(_ action: PlannedAction) {
        loop.preconditionInEventLoop()
        let r = action.sessions.clamped(to: range)
        guard !r.isEmpty, !finishing else { return }
        switch action.kind {
        case .create:
            break  // sessions exist from the start; CREATE only marks the timeline
        case .connect:
            for s in r {
                openSessions += 1
                connectQueue.append(s)
            }
            pumpConnects()
        case .send(let si):
            let copies = plan.sends[si].copies
            for s in r { session(s).release(copies) }
        case .flood:
            for s in r { session(s).flood() }
        case .drain:
            for s in r { session(s).drain() }
        case .disconnect:
            for s in r { session(s).disconnect() }
        }
    }

    /// Starts queued connects up to the window.
    private func pumpConnects() {
        while connectsInFlight < config.connectWindow, let s = connectQueue.popFirst() {
            let session = session(s)
            guard session.state == .created else {
                // Disconnected before its turn came: nothing to open.
                sessionEnded()
                continue
            }
            connectsInFlight += 1
            counters.add(.connectionsAttempted)
            counters.connectAttempted(at: NIODeadline.now().uptimeNanoseconds)
            session.connect(to: addresses[s % addresses.count], on: loop)
        }
    }

    /// A connect finished, either way.
    func connectDone() {
        connectsInFlight -= 1
        pumpConnects()
    }

    /// A session is closed or failed for good.
    func sessionEnded() {
        openSessions -= 1
        if finishing, openSessions == 0 {
            finishPromise?.succeed(())
            finishPromise = nil
        }
    }

    /// End of run: close everything still open. Draining sessions get `drainGrace` to
    /// finish; the future completes when every session is closed.
    func finish(drainGrace: TimeAmount) -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        finishing = true
        let promise = loop.makePromise(of: Void.self)
        // Queued connects never start.
        while let s = connectQueue.popFirst() {
            session(s).abandon()
            openSessions -= 1
        }
        var draining = false
        for session in sessions {
            if session.isDraining {
                draining = true
            } else {
                session.disconnect()
            }
        }
        if openSessions == 0 {
            promise.succeed(())
            return promise.futureResult
        }
        finishPromise = promise
        if draining {
            loop.scheduleTask(in: drainGrace) { [self] in
                for session in sessions { session.disconnect() }
            }
        }
        return promise.futureResult
    }

    /// Forgets sessions that never finished closing (after the hard deadline).
    func abandonAll() {
        finishPromise?.succeed(())
        finishPromise = nil
    }
}
