import Foundation
import Histogram
import LoadshearMetrics
import LoadshearScript

/// (ext) The EXPECT thresholds evaluated on a run's totals: one function that a run (and a
/// merge of several runs' reports) uses on its final snapshot.
struct ThresholdResult: Codable, Equatable {
    /// As written: `response.p99 < 20ms`.
    var expression: String
    /// The measured value in the threshold's unit (µs are shown as durations), or nil when
    /// the run produced no sample for it (a latency without samples fails).
    var value: Double?
    /// How the value reads in the summary: `12.3ms`, `0.02%`, `9,870/s`.
    var shown: String
    var ok: Bool
    var line: Int

    enum CodingKeys: String, CodingKey {
        case expression = "expression"
        case value = "value"
        case shown = "shown"
        case ok = "ok"
        case line = "line"
    }

    /// `value` is written as null when there is none (report-format.md), not left out.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(expression, forKey: .expression)
        if let value { try c.encode(value, forKey: .value) } else { try c.encodeNil(forKey: .value) }
        try c.encode(shown, forKey: .shown)
        try c.encode(ok, forKey: .ok)
        try c.encode(line, forKey: .line)
    }

    /// Prints each failed threshold on stderr; true when any failed (exit code 4).
    static func reportFailures(_ results: [ThresholdResult]) -> Bool {
        let failed = results.filter { !$0.ok }
        for r in failed {
            Console.error("loadshear: threshold failed: \(r.expression) (measured \(r.shown), line \(r.line))\n")
        }
        return !failed.isEmpty
    }

    /// Every threshold of `expectations` against `snapshot` (its totals and whole-run
    /// histograms).
    static func evaluate(_ expectations: [Expectation], on snapshot: Snapshot) -> [ThresholdResult] {
        expectations.map { evaluate($0, snapshot) }
    }

    private static func evaluate(_ e: Expectation, _ s: Snapshot) -> ThresholdResult {
        let t = s.totals
        var value: Double?
        var shown = "no samples"
        switch (e.metric, e.threshold) {
        case (.latency(let kind, let stat), .nanoseconds(let limit)):
            let h = s.latency[kind: latencyKind(kind)]
            if h.totalCount > 0 {
                let us: Double
                switch stat {
                case .p50: us = Double(h.valueAtPercentile(50))
                case .p90: us = Double(h.valueAtPercentile(90))
                case .p99: us = Double(h.valueAtPercentile(99))
                case .p999: us = Double(h.valueAtPercentile(99.9))
                case .max: us = Double(h.max)
                case .mean: us = h.mean
                }
                value = us * 1000  // compared in nanoseconds, as the threshold is
                shown = Figures.micros(UInt64(us.rounded()))
            }
            return ThresholdResult(
                expression: e.text, value: value.map { $0 / 1000 }, shown: shown,
                ok: value.map { e.comparison.holds($0, Double(limit)) } ?? false, line: e.line)
        case (.count(let c), .percent(let limit)):
            let base = Double(percentBase(c, t))
            let v = base > 0 ? Double(count(c, t)) / base * 100 : 0
            value = v
            shown = "\(Figures.fixed(v, v < 1 ? 3 : 2))% (\(count(c, t)) of \(Int(base)))"
            return ThresholdResult(
                expression: e.text, value: v, shown: shown, ok: e.comparison.holds(v, limit), line: e.line)
        case (.count(let c), .number(let limit)):
            let v = Double(count(c, t))
            shown = "\(count(c, t))"
            return ThresholdResult(
                expression: e.text, value: v, shown: shown, ok: e.comparison.holds(v, limit), line: e.line)
        case (.rate(let c), .perSecond(let limit)):
            let v = Double(count(c, t)) / max(s.elapsed, 1e-9)
            shown = Figures.count(v) + "/s"
            return ThresholdResult(
                expression: e.text, value: v, shown: shown, ok: e.comparison.holds(v, limit), line: e.line)
        default:
            // The checker pairs each metric with its unit; nothing else reaches here.
            return ThresholdResult(expression: e.text, value: nil, shown: "unit mismatch", ok: false, line: e.line)
        }
    }

    static func latencyKind(_ k: Expectation.LatencyKind) -> LatencySet.Kind {
        switch k {
        case .response: .response
        case .connect: .connect
        case .handshake: .handshake
        case .send: .send
        case .read: .read
        case .lag: .lag
        case .jitter: .jitter
        }
    }

    static func count(_ c: Expectation.Count, _ t: CounterValues) -> Int {
        switch c {
        case .sent: t[.packetsSent]
        case .read: t[.framesRead]
        case .requests: t[.requests]
        case .replies: t[.replies]
        case .timeouts: t[.timeouts]
        case .unmatched: t[.unmatched]
        case .duplicates: t[.duplicates]
        case .connectFailed: t[.connectionsFailed]
        case .connectOK: t[.connectionsSucceeded]
        case .protocolErrors: t[.protocolErrors]
        case .handlerTraps: t[.handlerTraps]
        case .bytesSent: t[.bytesSent]
        case .bytesRead: t[.bytesRead]
        case .repliesReordered: t[.repliesReordered]
        case .seqReceived: t[.sequenced]
        case .seqLost: t[.sequenceLost]
        case .seqReordered: t[.sequenceReordered]
        case .seqDuplicated: t[.sequenceDuplicates]
        }
    }

    private static func percentBase(_ c: Expectation.Count, _ t: CounterValues) -> Int {
        switch c.percentBase {
        case .requests: t[.requests]
        case .connectsAttempted: t[.connectionsAttempted]
        case .sequenceExpected: t[.sequenced] &- t[.sequenceDuplicates] &+ t[.sequenceLost]
        case nil: 0
        }
    }

    /// The summary's threshold lines: `  ✓ response.p99 < 20ms   12.3ms`.
    static func text(_ results: [ThresholdResult]) -> String {
        guard !results.isEmpty else { return "" }
        let failed = results.filter { !$0.ok }.count
        var out =
            failed == 0
            ? "Thresholds: all \(results.count) passed\n"
            : "Thresholds: \(failed) of \(results.count) FAILED\n"
        let width = results.map(\.expression.count).max() ?? 0
        for r in results {
            let pad = String(repeating: " ", count: width - r.expression.count)
            out += "  \(r.ok ? "✓" : "✗") \(r.expression)\(pad)   \(r.shown)  (line \(r.line))\n"
        }
        return out
    }
}

/// (ext) Whether the generator kept up, so the figures can be trusted: lag of actions and
/// paced payloads, each shard's loop busy time, paced payloads left behind schedule.
struct GeneratorVerdict: Codable, Equatable {
    struct ShardBusy: Codable, Equatable {
        var shard: Int
        /// Share of the run the shard's event-loop thread spent on the CPU (0–1).
        var busy: Double

        enum CodingKeys: String, CodingKey {
            case shard = "shard"
            case busy = "busy"
        }
    }

    var saturated: Bool
    var reasons: [String]
    /// Lag percentiles in µs (nil when nothing was scheduled).
    var lagP50: UInt64?
    var lagP99: UInt64?
    var lagMax: UInt64?
    /// The lag p99 above which the generator counts as saturated, µs.
    var lagLimit: UInt64
    var busy: [ShardBusy]
    /// The run was too short (under 0.5 s: stopped before it began, say) for its loops'
    /// busy share to mean anything; the summary says so instead of a share.
    var tooShortToJudge = false

    enum CodingKeys: String, CodingKey {
        case saturated = "saturated"
        case reasons = "reasons"
        case lagP50 = "lagP50Microseconds"
        case lagP99 = "lagP99Microseconds"
        case lagMax = "lagMaxMicroseconds"
        case lagLimit = "lagLimitMicroseconds"
        case busy = "busy"
        case tooShortToJudge = "tooShortToJudge"
    }

    /// Reports written before `tooShortToJudge` existed decode too (`loadshear merge`).
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        saturated = try c.decode(Bool.self, forKey: .saturated)
        reasons = try c.decode([String].self, forKey: .reasons)
        lagP50 = try c.decodeIfPresent(UInt64.self, forKey: .lagP50)
        lagP99 = try c.decodeIfPresent(UInt64.self, forKey: .lagP99)
        lagMax = try c.decodeIfPresent(UInt64.self, forKey: .lagMax)
        lagLimit = try c.decode(UInt64.self, forKey: .lagLimit)
        busy = try c.decode([ShardBusy].self, forKey: .busy)
        tooShortToJudge = try c.decodeIfPresent(Bool.self, forKey: .tooShortToJudge) ?? false
    }

    /// The lag p99 (µs) that marks a run without paced payloads as saturated.
    static let unpacedLagLimit: UInt64 = 100_000

    /// Share of the run above which a shard's loop counts as saturated.
    static let busyLimit = 0.95

    init(plan: Plan, snapshot s: Snapshot) {
        // The tightest PACE's tolerance: max(1 ms, a tenth of the fastest pace's period).
        let tolerance = plan.actions.compactMap { a -> Nanoseconds? in
            if case .pace(let p) = a.kind { return p.lagTolerance }
            return nil
        }.min()
        // Paced: lag delays every payload and so every response time, so the bound is tight.
        // Unpaced, lag holds only the timeline's few actions (CONNECT, FLOOD, DRAIN…), whose
        // lateness shifts the timeline but no figure: it counts beyond 100 ms.
        let paced = s.totals[.pacedPayloads] > 0
        self.init(lagLimit: paced ? UInt64(tolerance ?? 1_000_000) / 1000 : Self.unpacedLagLimit, snapshot: s)
    }

    /// The verdict on `s` with lag p99 bounded by `lagLimit` µs (`loadshear merge` takes it
    /// from the reports).
    init(lagLimit: UInt64, snapshot s: Snapshot) {
        let paced = s.totals[.pacedPayloads] > 0
        self.lagLimit = lagLimit
        var reasons: [String] = []
        let lag = s.latency.lag
        if lag.totalCount > 0 {
            lagP50 = lag.valueAtPercentile(50)
            lagP99 = lag.valueAtPercentile(99)
            lagMax = lag.max
            if let p99 = lagP99, p99 > lagLimit {
                reasons.append(
                    paced
                        ? "lag p99 \(Figures.micros(p99)) is above \(Figures.micros(lagLimit)): actions and paced payloads went out late"
                        : "lag p99 \(Figures.micros(p99)) is above \(Figures.micros(lagLimit)): timeline actions ran late"
                )
            }
        }
        let seconds = Swift.max(s.elapsed, 1e-9)
        busy = s.perShard.enumerated().map { i, v in
            ShardBusy(shard: i, busy: Swift.min(1, Double(v[.loopBusyMicroseconds]) / 1e6 / seconds))
        }
        // A loop can only be judged over a run long enough to mean something.
        tooShortToJudge = seconds < 0.5
        if !tooShortToJudge {
            for b in busy where b.busy > Self.busyLimit {
                reasons.append("shard \(b.shard) was busy \(Figures.fixed(b.busy * 100, 0))% of the run")
            }
        }
        let dropped = s.totals[.udpReceiveDrops]
        if dropped > 0 {
            reasons.append(
                "the kernel dropped \(dropped) datagrams on Loadshear's own sockets before they were read: losses measured include ours"
            )
        }
        let behind = s.totals[.pacedBehind]
        if behind > 0 {
            reasons.append("\(behind) paced payloads were behind schedule when pacing ended")
        }
        self.reasons = reasons
        saturated = !reasons.isEmpty
    }

    /// A debug build (what `swift run` makes) is many times slower than a release build:
    /// its verdict says so, so a saturated quickstart is not taken for the tool's limit.
    static var buildHint: String {
        #if DEBUG
        return " (this is a debug build, many times slower: measure with `swift build -c release`)"
        #else
        return ""
        #endif
    }

    /// The summary's last line.
    var line: String {
        if saturated {
            return "generator: SATURATED — results are not trustworthy: " + reasons.joined(separator: "; ")
                + Self.buildHint
        }
        var parts: [String] = []
        if let p99 = lagP99 { parts.append("lag p99 " + Figures.micros(p99)) }
        let busiest = busy.map(\.busy).max() ?? 0
        parts.append(
            tooShortToJudge
                ? "the run was too short to judge the shards' load"
                : "busiest shard " + Figures.fixed(busiest * 100, 0) + "% busy")
        return "generator: ok (" + parts.joined(separator: ", ") + ")"
    }
}
