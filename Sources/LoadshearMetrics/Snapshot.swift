import Foundation

/// What the reporter publishes: totals, per-shard totals and the increment since the
/// previous snapshot. An immutable value: the dashboard, the plain lines and the final
/// report only ever read snapshots.
package struct Snapshot: Sendable {
    /// Seconds since the run started.
    package var elapsed: Double
    /// Every counter summed over the shards.
    package var totals: CounterValues
    /// Each shard's counters, in shard order.
    package var perShard: [CounterValues]
    /// Counter changes since the previous snapshot (the totals, for the first).
    package var increment: CounterValues
    /// Seconds the increment covers.
    package var interval: Double
    /// (ext) The 500 ms slot this snapshot closes: tick `k` is taken `k × 500 ms` after the
    /// start (a tick skipped because a publish took over 500 ms leaves a gap). Nil for the
    /// final snapshot and for snapshots not taken by the ticker.
    package var tick: Int?
    /// Seconds from the first connect attempt to the last successful connect (nil before any).
    package var connectPhase: Double?
    /// Peak resident memory of the process in bytes, when the system tells.
    package var peakRSS: Int?
    /// Latency since the start of the run, merged from every shard.
    package var latency = LatencySet()
    /// Latency samples since the previous snapshot.
    package var latencyIncrement = LatencySet()
    /// Final snapshot only: who stopped the run before its timeline ended (nil: it ran to
    /// the end), and how long the timeline was planned to take, in seconds.
    package var stoppedEarlyBy: String?
    package var plannedDuration: Double?
    /// Handler failures by kind over the whole run (a fixed set of kinds; zero kinds left out).
    package var handlerFailuresByKind: [String: Int] { byName(ShardCounters.handlerFailureKinds) }

    /// Connect failures by reason (zero reasons left out).
    package var connectFailuresByReason: [String: Int] { byName(ShardCounters.connectFailureReasons) }

    /// Protocol errors by reason (zero reasons left out).
    package var protocolErrorsByReason: [String: Int] { byName(ShardCounters.protocolErrorReasons) }

    /// The counters of `counters` that are not zero, by their names.
    private func byName(_ counters: [(ShardCounters.Counter, String)]) -> [String: Int] {
        var out: [String: Int] = [:]
        for (c, name) in counters where totals[c] > 0 { out[name] = totals[c] }
        return out
    }

    /// Sums `perShard` and takes the increment and interval against `previous`; latency, the
    /// connect phase and the peak RSS are left to
    /// ``take(_:elapsed:previous:latencyIncrement:)``.
    package init(elapsed: Double, perShard: [CounterValues], previous: Snapshot?) {
        self.elapsed = elapsed
        self.perShard = perShard
        self.totals = perShard.reduce(CounterValues(), +)
        self.increment = totals - (previous?.totals ?? CounterValues())
        self.interval = max(1e-9, elapsed - (previous?.elapsed ?? 0))
    }

    /// Reads every shard's counters now; `latencyIncrement` holds the latency samples taken
    /// from the shards since the previous snapshot. Merging copies the running histograms and
    /// reads `/proc`: call it off the shards' event loops.
    package static func take(
        _ shards: [ShardCounters], elapsed: Double, previous: Snapshot?,
        latencyIncrement: LatencySet = LatencySet()
    ) -> Snapshot {
        var s = Snapshot(elapsed: elapsed, perShard: shards.map { $0.snapshot() }, previous: previous)
        s.latency = previous?.latency ?? LatencySet()
        s.latency.add(latencyIncrement)
        s.latencyIncrement = latencyIncrement
        let phases = shards.map(\.connectPhase)
        let starts = phases.map(\.0).filter { $0 > 0 }
        let ends = phases.map(\.1).filter { $0 > 0 }
        if let a = starts.min(), let b = ends.max(), b >= a { s.connectPhase = Double(b - a) / 1e9 }
        s.peakRSS = ProcessMemory.peakRSS()
        return s
    }

    /// A per-second rate of a counter over the last interval.
    package func rate(_ c: ShardCounters.Counter) -> Double {
        Double(increment[c]) / interval
    }
}
