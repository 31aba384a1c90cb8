import Foundation
import LoadshearEngine
import LoadshearMetrics
import LoadshearScript

/// The final report as JSON (`--json`). Field names are stable; see docs/report-format.md.
struct JSONReport: Encodable {
    /// The plan's settings as the report gives them.
    struct SettingsPart: Codable {
        /// The script path as given.
        var script: String
        /// The SETTINGS / ORCHESTRATOR name.
        var name: String
        /// `"TCP"`, `"UDP"` or (ext) `"TLS"`.
        var session: String
        var port: Int
        var read: Bool
        var shards: Int
        var sessions: Int
        /// `"NOP"`, or the module path as the script writes it.
        var handler: String
        /// Every resolved address as `ip:port` (`[ip]:port` for IPv6), in the order sessions use them.
        var endpoints: [String]
        /// (ext) SOURCES with the sessions of this run that bind each; absent without SOURCES.
        var sources: [SourcePart]? = nil
        /// (ext) TLS sessions: the TLS block and what the first handshake negotiated.
        var tls: TLSPart? = nil

        struct TLSPart: Codable {
            /// SNI, when the script gives one.
            var serverName: String?
            var verify: Bool
            /// The CA file as the script writes it; absent: the system trust store.
            var ca: String?
            var clientCertificate: String?
            var alpnOffered: [String]
            /// "TLS 1.3, ALPN h2"; absent when no handshake completed.
            var negotiated: String?

            enum CodingKeys: String, CodingKey {
                case serverName = "serverName"
                case verify = "verify"
                case ca = "ca"
                case clientCertificate = "clientCertificate"
                case alpnOffered = "alpnOffered"
                case negotiated = "negotiated"
            }
        }

        struct SourcePart: Codable {
            var address: String
            var sessions: Int

            enum CodingKeys: String, CodingKey {
                case address = "address"
                case sessions = "sessions"
            }
        }

        /// The report's field names, spelled out: renaming a property must not rename a field.
        enum CodingKeys: String, CodingKey {
            case script = "script"
            case name = "name"
            case session = "session"
            case port = "port"
            case read = "read"
            case shards = "shards"
            case sessions = "sessions"
            case handler = "handler"
            case endpoints = "endpoints"
            case sources = "sources"
            case tls = "tls"
        }
    }

    /// One action of the timeline.
    struct ActionPart: Codable {
        /// The keyword: `CREATE`, `CONNECT`, `SEND`, …
        var action: String
        /// `[start, end]`, end excluded.
        var sessions: [Int]
        /// Start time from the beginning of the run.
        var atNanoseconds: Int64
        /// The action's line in the script.
        var line: Int

        enum CodingKeys: String, CodingKey {
            case action = "action"
            case sessions = "sessions"
            case atNanoseconds = "atNanoseconds"
            case line = "line"
        }
    }

    /// Percentiles (µs) and the full histogram of one latency kind. `histogram` lists
    /// `[value, count]` pairs, one per non-empty HDR bucket (value = the bucket's highest
    /// equivalent value in µs); recording each pair into a histogram of the same
    /// configuration (1 µs … 1 h, 3 significant digits) rebuilds it exactly, so reports
    /// from several runs or machines merge without loss.
    struct LatencyPart: Encodable {
        var samples: UInt64
        var p50: UInt64
        var p90: UInt64
        var p99: UInt64
        var p999: UInt64
        var p9999: UInt64
        var max: UInt64
        var powerOfTwoBins: [Bin]
        var histogram: [[UInt64]]

        /// One power-of-two bin: its label (`< 64 µs` … `< 1 s`, `> 1 s`) and its count.
        struct Bin: Encodable {
            var below: String
            var count: UInt64

            enum CodingKeys: String, CodingKey {
                case below = "below"
                case count = "count"
            }
        }

        enum CodingKeys: String, CodingKey {
            case samples = "samples"
            case p50 = "p50"
            case p90 = "p90"
            case p99 = "p99"
            case p999 = "p999"
            case p9999 = "p9999"
            case max = "max"
            case powerOfTwoBins = "powerOfTwoBins"
            case histogram = "histogram"
        }

        /// Summarises `h`: percentiles, power-of-two bins and every recorded value with its count.
        init(_ h: LatencyHistogram) {
            let s = LatencySummary(h)
            (samples, p50, p90, p99, p999, p9999, max) = (s.count, s.p50, s.p90, s.p99, s.p999, s.p9999, s.max)
            powerOfTwoBins = LatencySummary.bins(h).enumerated().map {
                Bin(below: LatencySummary.binLabel($0.offset), count: $0.element)
            }
            histogram = h.recordedValues().map { [$0.value, UInt64($0.count)] }
        }
    }

    /// (ext) Which run this is, for `loadshear merge`: the script's identity, the segment,
    /// the host and when the timeline started.
    struct RunPart: Codable {
        /// ``Plan/identity``: a digest of the script, its packets and its handler.
        var scriptHash: String
        /// Set for `--segment i/N` runs (and, in a merged report, absent).
        var segment: SegmentPart?
        /// In a merged report: the segments merged, and how many there are.
        var merged: MergedPart?
        /// The host's name.
        var host: String
        /// When the timeline started (RFC 3339, UTC).
        var startedAt: String
        /// `--start-at` as given, resolved (RFC 3339); absent without it.
        var requestedStart: String?

        struct SegmentPart: Codable {
            var index: Int
            var count: Int
            /// `[start, end]` of the segment's sessions, end excluded.
            var sessions: [Int]

            enum CodingKeys: String, CodingKey {
                case index = "index"
                case count = "count"
                case sessions = "sessions"
            }
        }

        struct MergedPart: Codable {
            /// Indices of the segments whose reports were merged.
            var segments: [Int]
            /// The number of segments the plan was split into.
            var of: Int

            enum CodingKeys: String, CodingKey {
                case segments = "segments"
                case of = "of"
            }
        }

        enum CodingKeys: String, CodingKey {
            case scriptHash = "scriptHash"
            case segment = "segment"
            case merged = "merged"
            case host = "host"
            case startedAt = "startedAt"
            case requestedStart = "requestedStart"
        }

        init(plan: Plan, startedAt: Date, requestedStart: Date?) {
            scriptHash = plan.identity
            segment = plan.segment.map {
                SegmentPart(index: $0.index, count: $0.count, sessions: [$0.block.lowerBound, $0.block.upperBound])
            }
            host = ProcessInfo.processInfo.hostName
            self.startedAt = StartTime.format(startedAt)
            self.requestedStart = requestedStart.map(StartTime.format)
        }
    }

    /// (ext) One 500 ms snapshot of the run: what changed in it. Histograms as in
    /// ``LatencyPart/histogram``, for the kinds that have samples; counters that did not
    /// change are left out. Reports of segments merge interval by interval.
    struct Interval: Codable {
        /// The snapshot's number (1 for the first 500 ms; the final snapshot is the last):
        /// `merge` adds up the reports' intervals of the same number.
        var tick: Int?
        /// Seconds from the start of the timeline to this snapshot.
        var elapsedSeconds: Double
        /// Seconds the interval covers.
        var intervalSeconds: Double
        var increment: [String: Int]
        var latencyHistograms: [String: [[UInt64]]]

        enum CodingKeys: String, CodingKey {
            case tick = "tick"
            case elapsedSeconds = "elapsedSeconds"
            case intervalSeconds = "intervalSeconds"
            case increment = "increment"
            case latencyHistograms = "latencyHistograms"
            case ratesPerSecond = "ratesPerSecond"
            case latencyPercentiles = "latencyPercentiles"
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            tick = try c.decodeIfPresent(Int.self, forKey: .tick)
            elapsedSeconds = try c.decode(Double.self, forKey: .elapsedSeconds)
            intervalSeconds = try c.decode(Double.self, forKey: .intervalSeconds)
            increment = try c.decode([String: Int].self, forKey: .increment)
            latencyHistograms = try c.decode([String: [[UInt64]]].self, forKey: .latencyHistograms)
        }

        /// The stored fields, and for readers who want figures rather than counts: each changed
        /// counter per second of the interval (`ratesPerSecond`), and p50/p90/p99/max in µs of
        /// each kind's histogram (`latencyPercentiles`). Derived when written, so they stay
        /// right after intervals are merged (`merge`, or a long run's coarsening).
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(tick, forKey: .tick)
            try c.encode(elapsedSeconds, forKey: .elapsedSeconds)
            try c.encode(intervalSeconds, forKey: .intervalSeconds)
            try c.encode(increment, forKey: .increment)
            try c.encode(latencyHistograms, forKey: .latencyHistograms)
            let span = max(intervalSeconds, 1e-9)
            try c.encode(increment.mapValues { (Double($0) / span * 1000).rounded() / 1000 }, forKey: .ratesPerSecond)
            try c.encode(latencyHistograms.mapValues(Self.percentiles), forKey: .latencyPercentiles)
        }

        /// p50, p90, p99 and max of (value, count) pairs sorted by value.
        static func percentiles(_ pairs: [[UInt64]]) -> [String: UInt64] {
            let total = pairs.reduce(UInt64(0)) { $0 &+ ($1.count == 2 ? $1[1] : 0) }
            var out: [String: UInt64] = [:]
            guard total > 0 else { return out }
            var seen: UInt64 = 0
            var wanted: [(String, Double)] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
            for p in pairs where p.count == 2 {
                seen &+= p[1]
                while let (name, q) = wanted.first, Double(seen) >= q * Double(total) {
                    out[name] = p[0]
                    wanted.removeFirst()
                }
                out["max"] = p[0]
            }
            return out
        }

        init(
            tick: Int?, elapsedSeconds: Double, intervalSeconds: Double, increment: [String: Int], latency: LatencySet
        ) {
            self.tick = tick
            self.elapsedSeconds = elapsedSeconds
            self.intervalSeconds = intervalSeconds
            self.increment = increment.filter { $0.value != 0 }
            var h: [String: [[UInt64]]] = [:]
            for k in LatencySet.Kind.allCases where latency[kind: k].totalCount > 0 {
                h[k.rawValue] = latency[kind: k].recordedValues().map { [$0.value, UInt64($0.count)] }
            }
            latencyHistograms = h
        }

        /// This interval and the next one as one: counters summed, histograms merged bucket
        /// by bucket (their pairs are sorted by value), the later time, the tick of the first.
        func merged(with next: Interval) -> Interval {
            var out = self
            out.elapsedSeconds = next.elapsedSeconds
            out.intervalSeconds += next.intervalSeconds
            out.increment.merge(next.increment) { $0 &+ $1 }
            for (kind, pairs) in next.latencyHistograms {
                let mine = out.latencyHistograms[kind] ?? []
                var merged: [[UInt64]] = []
                merged.reserveCapacity(mine.count + pairs.count)
                var (a, b) = (0, 0)
                while a < mine.count || b < pairs.count {
                    if b == pairs.count || (a < mine.count && mine[a][0] < pairs[b][0]) {
                        merged.append(mine[a])
                        a += 1
                    } else if a == mine.count || pairs[b][0] < mine[a][0] {
                        merged.append(pairs[b])
                        b += 1
                    } else {
                        merged.append([mine[a][0], mine[a][1] &+ pairs[b][1]])
                        a += 1
                        b += 1
                    }
                }
                out.latencyHistograms[kind] = merged
            }
            return out
        }

        /// Most intervals a report keeps: past it, pairs of neighbours are merged (1 s, then
        /// 2 s, … each), so a day-long run's report stays the size of a 10-minute one.
        static let kept = 1200

        /// The length of one tick, in seconds: the engine's snapshot interval.
        static let tickSeconds = Double(Engine.snapshotInterval.nanoseconds) / 1e9

        /// Appends `next`, halving the resolution of the series when it would grow past
        /// ``kept``; `span` is how many 500 ms ticks each entry now covers. Entries sit on a
        /// grid of `span` ticks (ticks 1…span, span+1…2·span, …), each labelled with its
        /// first tick, so two reports coarsened alike line up tick for tick in `merge`, even
        /// when one skipped a tick.
        static func append(_ next: Interval, to series: inout [Interval], span: inout Int) {
            place(next, in: &series, span: span)
            guard series.count > kept else { return }
            span *= 2
            var halved: [Interval] = []
            halved.reserveCapacity(series.count / 2 + 1)
            for entry in series { place(entry, in: &halved, span: span) }
            series = halved
        }

        /// Labels `entry` with the first tick of its grid entry of `span` ticks, and merges it
        /// into the series' last entry when that is the same grid entry, else appends it.
        private static func place(_ entry: Interval, in series: inout [Interval], span: Int) {
            var entry = entry
            entry.tick = entry.tick.map { (max(1, $0) - 1) / span * span + 1 }
            if let last = series.last, let t = last.tick, t == entry.tick {
                series[series.count - 1] = last.merged(with: entry)
            } else {
                series.append(entry)
            }
        }

        init(_ s: Snapshot, tick: Int) {
            self.init(
                tick: tick, elapsedSeconds: s.elapsed, intervalSeconds: s.interval,
                increment: JSONReport.dictionary(s.increment),
                latency: s.latencyIncrement)
        }
    }

    /// The report format's version: 2 added `run`, `expect` and `intervals`.
    var version = 2
    /// (ext) Which run this is (see ``RunPart``).
    var run: RunPart?
    /// (ext) The script's EXPECT thresholds, so `merge` can check them on merged reports.
    var expect: [Expectation] = []
    /// (ext) The run's 500 ms snapshots, in order.
    var intervals: [Interval] = []
    /// What was run.
    var settings: SettingsPart
    /// The plan's actions in order.
    var timeline: [ActionPart]
    /// Seconds from the start of the timeline to the final snapshot.
    var durationSeconds: Double
    /// False when the run was stopped before its timeline ended; then `stoppedBy` says how.
    var completed: Bool
    /// Who stopped the run early (`Ctrl-C`, `SIGTERM`, `q`, …); absent when it completed.
    var stoppedBy: String?
    /// The last action's start time, in seconds: how long the timeline was planned to take.
    var plannedDurationSeconds: Double
    /// Every counter over all shards, by its report name.
    var totals: [String: Int]
    /// The same counters for each shard, in shard order.
    var shards: [[String: Int]]
    /// Latency over the whole run by kind: `connect`, `send`, `read`.
    var latencyMicroseconds: [String: LatencyPart]
    /// From the first connect attempt to the last successful connect; absent when none connected.
    var connectPhaseSeconds: Double?
    /// Handler failures by kind; kinds that did not occur are left out.
    var handlerFailuresByKind: [String: Int]
    /// Failed connects by reason; reasons that did not occur are left out.
    var connectFailuresByReason: [String: Int]
    /// Protocol errors by reason; reasons that did not occur are left out.
    var protocolErrorsByReason: [String: Int]
    /// The process's peak resident memory; absent where the system does not tell (no /proc).
    var peakRSSBytes: Int?
    /// (ext) EXPECT results, in script order (empty without EXPECT).
    var thresholds: [ThresholdResult]
    /// (ext) Whether the generator kept up.
    var generator: GeneratorVerdict

    enum CodingKeys: String, CodingKey {
        case version = "version"
        case run = "run"
        case expect = "expect"
        case intervals = "intervals"
        case settings = "settings"
        case timeline = "timeline"
        case durationSeconds = "durationSeconds"
        case completed = "completed"
        case stoppedBy = "stoppedBy"
        case plannedDurationSeconds = "plannedDurationSeconds"
        case totals = "totals"
        case shards = "shards"
        case latencyMicroseconds = "latencyMicroseconds"
        case connectPhaseSeconds = "connectPhaseSeconds"
        case handlerFailuresByKind = "handlerFailuresByKind"
        case connectFailuresByReason = "connectFailuresByReason"
        case protocolErrorsByReason = "protocolErrorsByReason"
        case peakRSSBytes = "peakRSSBytes"
        case thresholds = "thresholds"
        case generator = "generator"
    }

    /// The report of a run of `plan`; `snapshot` is the engine's final one.
    init(plan: Plan, snapshot: Snapshot, thresholds: [ThresholdResult], generator: GeneratorVerdict) {
        var handler = "NOP"
        if case .wasm(let w) = plan.handler { handler = w.path }
        self.init(
            settings: SettingsPart(
                script: plan.scriptPath, name: plan.name, session: plan.settings.session.rawValue,
                port: plan.settings.port, read: plan.settings.read, shards: plan.shards.count,
                sessions: plan.sessionCount, handler: handler, endpoints: plan.addresses.map(\.description),
                sources: plan.settings.sources.isEmpty
                    ? nil
                    : plan.sessionsPerSource.map { SettingsPart.SourcePart(address: $0, sessions: $1) },
                tls: plan.settings.tls.map {
                    SettingsPart.TLSPart(
                        serverName: $0.serverName, verify: $0.verify, ca: $0.ca?.path,
                        clientCertificate: $0.certificate?.path, alpnOffered: $0.alpn)
                }),
            timeline: plan.actions.map {
                ActionPart(
                    action: $0.kind.name, sessions: [$0.sessions.lowerBound, $0.sessions.upperBound],
                    atNanoseconds: $0.at, line: $0.line)
            }, snapshot: snapshot, thresholds: thresholds, generator: generator)
        plannedDurationSeconds = Double(plan.duration) / 1e9
        expect = plan.expectations
    }

    /// A report from its parts (`loadshear merge` takes settings and timeline from the
    /// merged reports).
    init(
        settings: SettingsPart, timeline: [ActionPart], snapshot: Snapshot, thresholds: [ThresholdResult],
        generator: GeneratorVerdict
    ) {
        self.settings = settings
        self.timeline = timeline
        self.thresholds = thresholds
        self.generator = generator
        durationSeconds = snapshot.elapsed
        completed = snapshot.stoppedEarlyBy == nil
        stoppedBy = snapshot.stoppedEarlyBy
        plannedDurationSeconds = snapshot.plannedDuration ?? 0
        totals = Self.dictionary(snapshot.totals)
        shards = snapshot.perShard.map(Self.dictionary)
        latencyMicroseconds = Dictionary(
            uniqueKeysWithValues: LatencySet.Kind.allCases.map {
                ($0.rawValue, LatencyPart(snapshot.latency[kind: $0]))
            })
        connectPhaseSeconds = snapshot.connectPhase
        handlerFailuresByKind = snapshot.handlerFailuresByKind
        connectFailuresByReason = snapshot.connectFailuresByReason
        protocolErrorsByReason = snapshot.protocolErrorsByReason
        peakRSSBytes = snapshot.peakRSS
    }

    /// One NDJSON line for `--json-interval`: the snapshot's totals, increments and the
    /// interval's latency percentiles.
    struct SnapshotLine: Encodable {
        /// The closing line (the run's final snapshot).
        var final: Bool
        /// Seconds since the run started.
        var elapsedSeconds: Double
        /// Seconds `increment` covers.
        var intervalSeconds: Double
        /// Every counter over all shards, by its report name.
        var totals: [String: Int]
        /// Counter changes since the previous line.
        var increment: [String: Int]
        /// Latency samples since the previous line, by kind.
        var latencyMicroseconds: [String: LatencyPart]
        /// (ext) With PACE: all sessions' intended payloads per second at this moment (the
        /// achieved rate is `increment.pacedPayloads / intervalSeconds`).
        var intendedRate: Double?

        enum CodingKeys: String, CodingKey {
            case intendedRate = "intendedRate"
            case final = "final"
            case elapsedSeconds = "elapsedSeconds"
            case intervalSeconds = "intervalSeconds"
            case totals = "totals"
            case increment = "increment"
            case latencyMicroseconds = "latencyMicroseconds"
        }
    }

    /// One NDJSON line, keys sorted, ending in a newline. `final` is set for the engine's final
    /// snapshot, the only one that carries a planned duration.
    static func snapshotLine(_ s: Snapshot, intendedRate: Double? = nil) throws -> Data {
        let line = SnapshotLine(
            final: s.plannedDuration != nil, elapsedSeconds: s.elapsed, intervalSeconds: s.interval,
            totals: dictionary(s.totals),
            increment: dictionary(s.increment),
            latencyMicroseconds: Dictionary(
                uniqueKeysWithValues: LatencySet.Kind.allCases.map {
                    ($0.rawValue, LatencyPart(s.latencyIncrement[kind: $0]))
                }), intendedRate: intendedRate)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = try encoder.encode(line)
        data.append(0x0A)
        return data
    }

    /// Counter values by their report names.
    static func dictionary(_ v: CounterValues) -> [String: Int] {
        var d: [String: Int] = [:]
        for c in ShardCounters.Counter.allCases { d[c.name] = v[c] }
        return d
    }

    /// Writes the report; false when it could not be written.
    func write(to file: ReportFile) throws -> Bool {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return file.write(data)
    }
}
