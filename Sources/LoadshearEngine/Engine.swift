import Foundation
import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix
import Synchronization

/// Runs a plan: SHARDS event loops, sessions confined to their shard, and the orchestrator
/// firing every action at its absolute time. Snapshots are merged on an event loop of
/// their own, so the shards only hand over their latency samples (a swap) every 500 ms.
package final class Engine: Sendable {
    /// The plan being run.
    package let plan: Plan
    /// One set per shard, in shard order; snapshots read them from the control loop.
    package let counters: [ShardCounters]
    private let config: EngineConfiguration
    /// Makes each shard's handler, on that shard's loop.
    private let handlerFactory: any HandlerFactory
    /// Stop requests and how the run ended: written by ``stop(reason:)`` from any thread and by
    /// the control loop.
    private let state = Mutex(RunState())
    /// When the timeline started: 5 ms after the run began, to leave time to schedule the
    /// actions. Nil before.
    private let startedAt = Mutex<ContinuousClock.Instant?>(nil)
    /// The latest published snapshot (nil before the first); touched on the control loop.
    private let latest = Mutex<Snapshot?>(nil)

    private struct RunState {
        /// ``stop(reason:)`` was called, possibly before the run started.
        var stopRequested = false
        /// Who stopped the run before its timeline ended ("Ctrl-C", "SIGTERM", "q", …).
        var stoppedBy: String?
        /// Every action ran, with no stop before: the report calls the run complete.
        var timelineCompleted = false
        /// Succeeded to end the run, by the last action or by ``stop(reason:)``; nil outside a run.
        var endPromise: EventLoopPromise<Void>?
        /// While the run's end waits for draining sessions: closes them now. A stop then
        /// does not wait out the drain grace.
        var endDrainGrace: (@Sendable () -> Void)?
    }

    /// Where the first failure of each kind is explained (refused connects, oversized bodies…).
    private let failures: FailureLog
    /// (ext) TLS sessions' client context, made when the run starts.
    private let tlsClient = Mutex<TLSClient?>(nil)

    /// (ext) What the run's first TLS handshake negotiated ("TLS 1.3, ALPN h2"); nil for TCP
    /// and UDP runs and before a handshake completed.
    package var tlsNegotiated: String? { tlsClient.withLock { $0 }?.negotiated }

    /// `log` gets one line for the first failure of each kind; it is called on the event
    /// loops and must not block.
    package init(
        plan: Plan, handlerFactory: any HandlerFactory = NOPHandlerFactory(),
        configuration: EngineConfiguration = EngineConfiguration(),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.plan = plan
        self.config = configuration
        self.handlerFactory = handlerFactory
        self.counters = plan.shards.map { _ in ShardCounters() }
        self.failures = FailureLog(sink: log)
    }

    /// Seconds since the timeline started (0 before).
    package var elapsed: Double {
        guard let s = startedAt.withLock({ $0 }) else { return 0 }
        let d = ContinuousClock.now - s
        return max(0, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }

    /// Every 500 ms: counters from every shard and the latency samples each shard recorded
    /// since the last time, merged exactly into one snapshot.
    package static let snapshotInterval: TimeAmount = .milliseconds(500)

    /// Ends the run early but gracefully (Ctrl-C, SIGTERM, `q`): pending actions are dropped
    /// and the end-of-run closing happens now. Safe from any thread, more than once; the first
    /// `reason` is the one the report gives (when the timeline had not ended yet).
    package func stop(reason: String = "a stop request") {
        let (promise, endGrace) = state.withLock { s -> (EventLoopPromise<Void>?, (@Sendable () -> Void)?) in
            s.stopRequested = true
            if !s.timelineCompleted, s.stoppedBy == nil { s.stoppedBy = reason }
            let p = s.endPromise
            s.endPromise = nil
            let g = s.endDrainGrace
            s.endDrainGrace = nil
            return (p, g)
        }
        promise?.succeed(())
        endGrace?()
    }

    /// Why a run could not start.
    package enum RunError: Error, CustomStringConvertible {
        /// The plan has no endpoint address.
        case noAddresses
        /// A shard's handler could not be made.
        case handler(String)
        /// Too few free file descriptors for the shards' event loops; the message says what fits.
        case descriptors(String)
        /// A shard could not be set up (its write-round pipe, for one).
        case setup(String)

        package var description: String {
            switch self {
            case .noAddresses: "no endpoint address to connect to"
            case .handler(let m): "could not start the handler: \(m)"
            case .descriptors(let m): m
            case .setup(let m): "could not start the shards: \(m)"
            }
        }
    }

    /// Runs the whole timeline and returns the final snapshot. `onSnapshot` gets every
    /// 500 ms snapshot on the engine's control thread (hand it off; do not block).
    ///
    /// - Throws: ``RunError`` when the run cannot start; the event loops made so far are shut
    ///   down first.
    ///
    /// With `startIn` (ext: `--start-at`), the timeline starts that long after this call
    /// instead of at once: shards and sessions are made first, so the first action runs on
    /// time. Snapshots begin once it has started.
    package func run(
        startIn: Duration? = nil, onSnapshot: (@Sendable (Snapshot) -> Void)? = nil
    ) async throws -> Snapshot {
        let called = ContinuousClock.now
        let addresses = try plan.addresses.map { try SocketAddress(ipAddress: $0.ip, port: $0.port) }
        guard !addresses.isEmpty else { throw RunError.noAddresses }
        if let problem = FileDescriptors.checkShards(plan.shards.count) { throw RunError.descriptors(problem) }
        let tls = try plan.settings.tls.map {
            try TLSClient($0, hosts: plan.addressesWithHosts.map(\.host), shutdownTimeout: config.tlsShutdownTimeout)
        }
        tlsClient.withLock { $0 = tls }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: plan.shards.count)
        let control = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var shards: [Shard] = []
        do {
            try await makeShards(into: &shards, group: group, addresses: addresses, tls: tls)
            let result = try await run(
                shards, control: control.next(), startAt: startIn.map { called + $0 }, onSnapshot: onSnapshot)
            await shutdown(shards, group: group, control: control)
            return result
        } catch {
            await shutdown(shards, group: group, control: control)
            throw error
        }
    }

    /// One shard per loop, each built on its own loop: the handler instance and the write
    /// rounds never leave that thread. Shards are added as they are made, so that a failure
    /// part-way leaves the ones already made to be shut down.
    private func makeShards(
        into shards: inout [Shard], group: MultiThreadedEventLoopGroup,
        addresses: [SocketAddress], tls: TLSClient?
    ) async throws {
        let sendCounters = SendCounters(count: plan.sends.count)
        let allocator = ByteBufferAllocator()
        let packets = plan.packets.map { PreparedPacket(bytes: $0.bytes, allocator: allocator) }
        for (i, loop) in group.makeIterator().enumerated() {
            let counters = self.counters[i]
            let shard = try await loop.flatSubmit {
                [plan, config, handlerFactory, failures] () -> EventLoopFuture<Shard> in
                let handler: NIOLoopBound<MessageHandler>
                do { handler = NIOLoopBound(try handlerFactory.makeHandler(), eventLoop: loop) } catch {
                    return loop.makeFailedFuture(RunError.handler("\(error)"))
                }
                return WriteRounds.start(on: loop).map { rounds in
                    let shard = Shard(
                        index: i, loop: loop, plan: plan, counters: counters, sendCounters: sendCounters,
                        config: config, handler: handler.value, packets: packets, addresses: addresses,
                        rounds: rounds.value, failures: failures, tls: tls)
                    shard.makeSessions()
                    shard.startTimers()
                    return shard
                }
            }.flatMapErrorThrowing { error in
                if error is RunError { throw error }
                throw RunError.setup("\(error)")
            }.get()
            shards.append(shard)
        }
    }

    /// Schedules every action on each shard that owns sessions in its range, publishes a
    /// snapshot every 500 ms, and waits for the last action (or a stop). Then every shard
    /// finishes — draining sessions get the drain grace, and whatever is open at the close
    /// deadline is closed by force — and the final snapshot is returned, marked complete or
    /// stopped.
    private func run(
        _ shards: [Shard], control: EventLoop, startAt: ContinuousClock.Instant?,
        onSnapshot: (@Sendable (Snapshot) -> Void)?
    )
        async throws -> Snapshot
    {
        let endPromise = control.makePromise(of: Void.self)
        let alreadyStopped = state.withLock { s -> Bool in
            s.endPromise = endPromise
            return s.stopRequested
        }
        if alreadyStopped { endPromise.succeed(()) }

        // Schedule every action on every shard that owns sessions in its range, at its
        // absolute deadline, so dispatch never drifts with work done in between.
        // The same instant on both clocks: NIO's deadline and the ContinuousClock.
        var delay = Duration.milliseconds(5)
        if let startAt { delay = max(delay, startAt - ContinuousClock.now) }
        let (seconds, attoseconds) = delay.components
        let delayNanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let start = NIODeadline.now() + .nanoseconds(delayNanoseconds)
        startedAt.withLock { $0 = ContinuousClock.now + delay }
        var tasks: [Scheduled<Void>] = []
        for action in plan.actions {
            for shard in shards where action.sessions.overlaps(shard.range) {
                let deadline = start + .nanoseconds(action.at)
                tasks.append(
                    shard.loop.scheduleTask(deadline: deadline) {
                        shard.apply(action, intended: deadline.uptimeNanoseconds)
                    })
            }
        }
        // Snapshots at fixed instants (tick k at start + k × 500 ms); publishes run one after
        // another, so the final one cannot overlap a tick still in flight and no snapshot is
        // delivered after it.
        let ticker = try await control.submit {
            let ticker = SnapshotTicker(loop: control, start: start) { tick in
                self.publish(shards, on: control).map { snapshot -> Void in
                    var snapshot = snapshot
                    snapshot.tick = tick
                    onSnapshot?(snapshot)
                }
            }
            ticker.arm(1)
            return NIOLoopBound(ticker, eventLoop: control)
        }.get()
        // The run ends once the last action has executed everywhere (or on stop()).
        let lastActions = control.scheduleTask(deadline: start + .nanoseconds(plan.duration)) {}
        let shardFlush = lastActions.futureResult.flatMap { _ in
            EventLoopFuture.andAllComplete(shards.map { s in s.loop.submit {} }, on: control)
        }
        shardFlush.whenSuccess {
            self.state.withLock { s in if s.stoppedBy == nil { s.timelineCompleted = true } }
            endPromise.succeed(())
        }

        try? await endPromise.futureResult.get()
        state.withLock { $0.endPromise = nil }
        for t in tasks { t.cancel() }
        lastActions.cancel()

        // Close what is still open (pending connects are cancelled); draining sessions get a
        // grace period, unless the run was stopped (or is stopped meanwhile: the user asked
        // to end it, not to wait); after the hard deadline every channel left is closed by force.
        let stopped = state.withLock { $0.stopRequested }
        let grace = stopped ? .zero : config.drainGrace
        let finished = shards.map { shard in
            shard.loop.flatSubmit { shard.finish(drainGrace: grace) }
        }
        // Published only now: each shard runs the cut after its `finish` (tasks on a loop run
        // in order), so `finish` cannot come second and start the grace all the same.
        let endGrace: @Sendable () -> Void = { for shard in shards { shard.loop.execute { shard.endDrainGrace() } } }
        let stoppedMeanwhile = state.withLock { s -> Bool in
            if s.stopRequested { return !stopped }
            s.endDrainGrace = endGrace
            return false
        }
        if stoppedMeanwhile { endGrace() }
        let all = EventLoopFuture.andAllComplete(finished, on: control)
        let deadline = control.scheduleTask(in: config.closeDeadline) {
            for shard in shards { shard.loop.execute { shard.abandonAll() } }
        }
        try? await all.get()
        state.withLock { $0.endDrainGrace = nil }
        deadline.cancel()
        // Let the last write promises and close events land in the counters.
        for shard in shards { try? await shard.loop.submit {}.get() }
        var final = try await control.flatSubmit {
            ticker.value.stop().flatMap { self.publish(shards, on: control) }
        }.get()
        final.plannedDuration = Double(plan.duration) / 1e9
        final.stoppedEarlyBy = state.withLock { $0.timelineCompleted ? nil : ($0.stoppedBy ?? "a stop request") }
        return final
    }

    /// Takes the shards' latency samples (a swap, on each shard's loop) and merges them into a
    /// new snapshot here, on the control loop; the emptied sets go back to the shards.
    private func publish(_ shards: [Shard], on control: EventLoop) -> EventLoopFuture<Snapshot> {
        let takes = shards.map { shard in shard.loop.submit { shard.depositLatency() } }
        return EventLoopFuture.andAllSucceed(takes, on: control).map {
            var increment = LatencySet()
            for shard in shards {
                guard var set = shard.latencyOutbox.withLock({ $0.take() }) else { continue }
                increment.add(set)
                set.reset()
                let cleared = set
                shard.loop.execute { shard.latency.recycle(cleared) }
            }
            let previous = self.latest.withLock { $0 }
            let snapshot = Snapshot.take(
                self.counters, elapsed: self.elapsed, previous: previous,
                latencyIncrement: increment)
            self.latest.withLock { $0 = snapshot }
            return snapshot
        }
    }

    /// Stops the write rounds, closes whatever is still open, then the loops; only then are
    /// the shard ↔ session cycles broken, so no event can reach a freed session or shard.
    private func shutdown(
        _ shards: [Shard], group: MultiThreadedEventLoopGroup,
        control: MultiThreadedEventLoopGroup
    ) async {
        for shard in shards {
            try? await shard.loop.submit {
                shard.stop()
                shard.abandonAll()
            }.get()
        }
        try? await group.shutdownGracefully()
        try? await control.shutdownGracefully()
        for shard in shards { shard.releaseSessions() }
    }
}

/// The 500 ms snapshots, at fixed instants: tick `k` is due at `start + k × 500 ms` whatever
/// the publishes before it cost (one takes 10–17 ms), so a long run's
/// series keeps to wall time, and the ticks of processes started together (`--segment`,
/// merged by tick) cover the same stretch of time. Before, each tick waited 500 ms after the
/// previous publish ended, and a 20-second run had drifted by 0.4 s. Publishes run one after
/// another: a tick that comes while the one before is still publishing is taken as soon as
/// that one is done, so the ticks stay consecutive; only a publish longer than 500 ms makes
/// a tick be skipped (the next snapshot covers its time). Confined to the control loop.
final class SnapshotTicker {
    private let loop: EventLoop
    private let start: NIODeadline
    /// Takes tick `k`'s snapshot and delivers it.
    private let publish: (Int) -> EventLoopFuture<Void>
    private var last: EventLoopFuture<Void>?
    private var publishing = false
    /// A tick that came while publishing, to take once that publish is done.
    private var waiting: Int?
    private var next: Scheduled<Void>?
    private var stopped = false

    init(loop: EventLoop, start: NIODeadline, publish: @escaping (Int) -> EventLoopFuture<Void>) {
        self.loop = loop
        self.start = start
        self.publish = publish
    }

    /// Schedules tick `k`.
    func arm(_ k: Int) {
        loop.preconditionInEventLoop()
        let bound = NIOLoopBound(self, eventLoop: loop)
        next = loop.scheduleTask(deadline: start + Engine.snapshotInterval * Int64(k)) { bound.value.fire(k) }
    }

    private func fire(_ k: Int) {
        guard !stopped else { return }
        arm(k + 1)
        take(k)
    }

    private func take(_ k: Int) {
        guard !publishing else {
            waiting = k
            return
        }
        publishing = true
        let published = publish(k)
        last = published
        let bound = NIOLoopBound(self, eventLoop: loop)
        published.hop(to: loop).whenComplete { _ in
            let ticker = bound.value
            ticker.publishing = false
            if let k = ticker.waiting, !ticker.stopped {
                ticker.waiting = nil
                ticker.take(k)
            }
        }
    }

    /// No tick after this; completes when the publish in flight (if any) has delivered.
    func stop() -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        stopped = true
        next?.cancel()
        return (last ?? loop.makeSucceededVoidFuture()).recover { _ in () }
    }
}
