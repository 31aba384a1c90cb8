import Foundation
import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix
import Synchronization

/// Runs a plan: SHARDS event loops, sessions confined to their shard, and the orchestrator
/// firing every action at its absolute time.
public final class Engine: Sendable {
    public let plan: Plan
    public let counters: [ShardCounters]
    private let config: EngineConfiguration
    private let handlerFactory: any HandlerFactory
    private let state = Mutex(RunState())
    private let startedAt = Mutex<ContinuousClock.Instant?>(nil)

    private struct RunState {
        var stopRequested = false
        var endPromise: EventLoopPromise<Void>?
    }

    public init(plan: Plan, handlerFactory: any HandlerFactory = NOPHandlerFactory(),
                configuration: EngineConfiguration = EngineConfiguration()) {
        self.plan = plan
        self.config = configuration
        self.handlerFactory = handlerFactory
        self.counters = plan.shards.map { _ in ShardCounters() }
    }

    /// Seconds since the timeline started (0 before).
    public var elapsed: Double {
        guard let s = startedAt.withLock({ $0 }) else { return 0 }
        let d = ContinuousClock.now - s
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The latest published snapshot (nil before the first).
    private let latest = Mutex<Snapshot?>(nil)

    /// Every 500 ms: counters from every shard and the latency samples each shard recorded
    /// since the last time, merged exactly into one snapshot.
    public static let snapshotInterval: TimeAmount = .milliseconds(500)

    /// Takes the shards' latency samples (on their loops) and publishes a new snapshot.
    private func publish(_ shards: [Shard], on loop: EventLoop) -> EventLoopFuture<Snapshot> {
        let takes = shards.map { shard in shard.loop.submit { shard.latency.take() } }
        return EventLoopFuture.whenAllSucceed(takes, on: loop).map { sets in
            var increment = LatencySet()
            for s in sets { increment.add(s) }
            return self.latest.withLock { latest in
                let snapshot = Snapshot.take(self.counters, elapsed: self.elapsed, previous: latest,
                                             latencyIncrement: increment)
                latest = snapshot
                return snapshot
            }
        }
    }

    /// Ends the run early but gracefully (Ctrl-C, `q`): pending actions are dropped and the
    /// end-of-run closing happens now. Safe from any thread, more than once.
    public func stop() {
        let promise = state.withLock { s -> EventLoopPromise<Void>? in
            s.stopRequested = true
            let p = s.endPromise
            s.endPromise = nil
            return p
        }
        promise?.succeed(())
    }

    public enum RunError: Error, CustomStringConvertible {
        case noAddresses
        case handler(String)

        public var description: String {
            switch self {
            case .noAddresses: "no endpoint address to connect to"
            case .handler(let m): "could not start the handler: \(m)"
            }
        }
    }

    /// Runs the whole timeline and returns the final snapshot. `onSnapshot` gets every
    /// 500 ms snapshot (on an event loop thread: hand it off, do not block).
    public func run(onSnapshot: (@Sendable (Snapshot) -> Void)? = nil) async throws -> Snapshot {
        let addresses = try plan.addresses.map { try SocketAddress(ipAddress: $0.ip, port: $0.port) }
        guard !addresses.isEmpty else { throw RunError.noAddresses }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: plan.shards.count)
        do {
            let result = try await run(group: group, addresses: addresses, onSnapshot: onSnapshot)
            try? await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func run(group: MultiThreadedEventLoopGroup, addresses: [SocketAddress],
                     onSnapshot: (@Sendable (Snapshot) -> Void)?) async throws -> Snapshot {
        let loops = Array(group.makeIterator())
        let sendCounters = SendCounters(count: plan.sends.count)
        var shards: [Shard] = []
        for (i, loop) in loops.enumerated() {
            // The handler instance is created on its own loop: it never leaves that thread.
            let counters = self.counters[i]
            let shard = try await loop.submit { [plan, config, handlerFactory] in
                let handler: MessageHandler
                do { handler = try handlerFactory.makeHandler() } catch { throw RunError.handler("\(error)") }
                return Shard(index: i, loop: loop, plan: plan, counters: counters, sendCounters: sendCounters,
                             config: config, handler: handler, addresses: addresses)
            }.get()
            shards.append(shard)
        }
        let allShards = shards
        let endPromise = loops[0].makePromise(of: Void.self)
        let alreadyStopped = state.withLock { s -> Bool in
            s.endPromise = endPromise
            return s.stopRequested
        }
        if alreadyStopped { endPromise.succeed(()) }

        // Schedule every action on every shard that owns sessions in its range, at its
        // absolute deadline, so dispatch never drifts with work done in between.
        let start = NIODeadline.now() + .milliseconds(5)
        startedAt.withLock { $0 = ContinuousClock.now + .milliseconds(5) }
        var tasks: [Scheduled<Void>] = []
        for action in plan.actions {
            for shard in shards where action.sessions.overlaps(shard.range) {
                tasks.append(shard.loop.scheduleTask(deadline: start + .nanoseconds(action.at)) {
                    shard.apply(action)
                })
            }
        }
        let ticker = loops[0].scheduleRepeatedAsyncTask(initialDelay: Self.snapshotInterval,
                                                        delay: Self.snapshotInterval) { _ in
            self.publish(allShards, on: loops[0]).map { onSnapshot?($0) }
        }
        // The run ends once the last action has executed everywhere (or on stop()).
        let lastActions = loops[0].scheduleTask(deadline: start + .nanoseconds(plan.duration)) {}
        let shardFlush = lastActions.futureResult.flatMap { _ in
            EventLoopFuture.andAllComplete(allShards.map { s in s.loop.submit {} }, on: loops[0])
        }
        shardFlush.whenComplete { _ in endPromise.succeed(()) }

        try? await endPromise.futureResult.get()
        state.withLock { $0.endPromise = nil }
        for t in tasks { t.cancel() }
        lastActions.cancel()

        // Close what is still open; draining sessions get a grace period.
        let finished = shards.map { shard in
            shard.loop.flatSubmit { shard.finish(drainGrace: self.config.drainGrace) }
        }
        let all = EventLoopFuture.andAllComplete(finished, on: loops[0])
        let deadline = loops[0].scheduleTask(in: config.closeDeadline) {
            for shard in allShards { shard.loop.execute { shard.abandonAll() } }
        }
        try? await all.get()
        deadline.cancel()
        // Let the last write promises and close events land in the counters.
        for shard in shards { try? await shard.loop.submit {}.get() }
        let stopped = loops[0].makePromise(of: Void.self)
        ticker.cancel(promise: stopped)
        try? await stopped.futureResult.get()
        var final = try await publish(allShards, on: loops[0]).get()
        for shard in allShards {
            let kinds = try await shard.loop.submit { shard.handler.failuresByKind }.get()
            final.handlerFailuresByKind.merge(kinds, uniquingKeysWith: +)
        }
        return final
    }
}

