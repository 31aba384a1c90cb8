import ArgumentParser
import Foundation
import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript

/// (ext) `loadshear merge r1.json r2.json … [-o merged.json]`: one report from the reports of
/// a script's segments (`--segment i/N`), exactly: counters summed, HDR histograms merged
/// bucket by bucket, the 500 ms intervals merged by time; the usual summary, the script's
/// EXPECT checked on the merged figures (exit 4 when one fails).
package struct MergeCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "(ext) Merge the JSON reports of one script's segments into one report.",
        discussion: """
            Reports of different scripts (the report carries a digest of the script, its packets \
            and its handler) and overlapping segments are refused. '-' reads reports from standard \
            input, concatenated or one per line, so `kubectl logs … | loadshear merge -` works. \
            Exit codes: 0 merged, 1 unreadable input, 2 reports that cannot be merged (or a --script \
            that cannot be read or checked, as for a run), 4 an EXPECT threshold failed.
            """
    )

    @Argument(help: ArgumentHelp("JSON reports ('-' for standard input).", valueName: "report"))
    var reports: [String] = []

    @Option(
        name: [.customShort("o"), .customLong("output"), .customLong("json")],
        help: ArgumentHelp("Write the merged report as JSON to this file ('-' for stdout).", valueName: "file"))
    var output: String?

    @Option(
        help: ArgumentHelp(
            "Check this script's EXPECT block (it must be the script the reports ran) instead of the one in the reports.",
            valueName: "script"))
    var script: String?

    package init() {}

    package func validate() throws {
        if reports.isEmpty {
            throw ValidationError("Give the reports to merge: loadshear merge r1.json r2.json … or -")
        }
        if let output, let clash = ReportFile.clash([("--output", output)], inputs: reports) {
            throw ValidationError(clash)
        }
    }

    /// Segments started further apart than this get a warning: their intervals do not line up.
    static let startSpreadLimit = 0.5

    package func run() throws {
        var inputs: [(name: String, report: MergeInput)] = []
        for path in reports {
            let data: Data
            if path == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let d = FileManager.default.contents(atPath: path) else {
                    Console.error("loadshear: error: cannot read \(path)\n")
                    throw ExitCode.runtimeFailure
                }
                data = d
            }
            let found = MergeInput.split(data)
            let name = path == "-" ? "standard input" : path
            for e in found.errors {
                Console.error("loadshear: error: \(name) holds \(e)\n")
            }
            if !found.errors.isEmpty { throw ExitCode.invalidScript }
            if found.ignored > 0, !found.reports.isEmpty {
                Console.error(
                    "loadshear: \(name): skipped \(found.ignored) line\(found.ignored == 1 ? "" : "s") that \(found.ignored == 1 ? "is" : "are") not part of a report\n"
                )
            }
            if found.reports.isEmpty {
                Console.error("loadshear: error: \(path == "-" ? "standard input" : path) holds no Loadshear report\n")
                throw ExitCode.runtimeFailure
            }
            for (k, r) in found.reports.enumerated() {
                inputs.append((path == "-" ? "stdin report \(k + 1)" : path, r))
            }
        }
        var expectations: [Expectation]? = nil
        if let script {
            var options = PlanOptions.elsewhere()
            options.inspectFiles()
            let plan = try Planning.plan(script, options: options)
            if let other = inputs.first(where: { $0.report.run?.scriptHash != plan.identity }) {
                Console.error(
                    "loadshear: error: \(other.name) is not a report of \(script) (or its packets or handler changed since)\n"
                )
                throw ExitCode.invalidScript
            }
            expectations = plan.expectations
        }
        let merged: MergedReports
        switch MergedReports.merge(inputs) {
        case .success(let m): merged = m
        case .failure(let problem):
            Console.error("loadshear: error: \(problem.message)\n")
            throw ExitCode.invalidScript
        }
        if merged.startSpread > Self.startSpreadLimit {
            // Intervals are lined up by tick (time since each segment's own start).
            Console.error(
                "loadshear: warning: the segments started up to \(Figures.fixed(merged.startSpread, 1)) s apart: their interval series are lined up by time since each one's start, so the merged figures over time are not wall-clock figures (start segments together with --start-at)\n"
            )
        }
        let thresholds = ThresholdResult.evaluate(expectations ?? merged.expect, on: merged.snapshot)
        let verdict = GeneratorVerdict(lagLimit: merged.lagLimit, snapshot: merged.snapshot)
        let file: ReportFile?
        do {
            file = try output.map { try ReportFile.open($0, what: "the merged report") }
        } catch {
            Console.error("loadshear: error: \(error)\n")
            throw ExitCode.runtimeFailure
        }
        defer { file?.close() }
        if file?.isStdout != true {
            let summary = Summary(snapshot: merged.snapshot, shardCount: merged.shardCount, sessions: merged.sessions)
            Console.out(
                merged.heading + summary.text() + ThresholdResult.text(thresholds) + verdict.line + "\n")
        } else {
            Console.error(merged.heading)
        }
        if let file {
            var report = JSONReport(
                settings: merged.settings, timeline: merged.timeline, snapshot: merged.snapshot,
                thresholds: thresholds, generator: verdict)
            report.run = merged.run
            report.expect = expectations ?? merged.expect
            report.intervals = merged.intervals
            guard (try? report.write(to: file)) == true else {
                Console.error("loadshear: error: could not write the merged report to \(file.path)\n")
                throw ExitCode.runtimeFailure
            }
        }
        if ThresholdResult.reportFailures(thresholds) { throw ExitCode.thresholdFailed }
    }
}

/// What `merge` reads of a report (format version 2; see docs/report-format.md).
struct MergeInput: Decodable {
    struct Histogram: Decodable {
        var histogram: [[UInt64]]
    }

    var version: Int
    var run: JSONReport.RunPart?
    var expect: [Expectation]?
    var intervals: [JSONReport.Interval]?
    var settings: JSONReport.SettingsPart
    var timeline: [JSONReport.ActionPart]
    var durationSeconds: Double
    var completed: Bool
    var stoppedBy: String?
    var plannedDurationSeconds: Double
    var shards: [[String: Int]]
    var latencyMicroseconds: [String: Histogram]
    var connectPhaseSeconds: Double?
    var peakRSSBytes: Int?
    var generator: GeneratorVerdict

    /// The reports in `data`: one JSON report, several concatenated (pretty-printed or one
    /// per line), with other lines between them ignored — `kubectl logs` mixes in stderr. A
    /// JSON object with a `version` is taken for a report: one of another format version, or
    /// one that does not decode or holds impossible values, is an error, never skipped.
    static func split(_ data: Data) -> (reports: [MergeInput], errors: [String], ignored: Int) {
        struct Probe: Decodable { var version: Int? }
        let bytes = [UInt8](data)
        var reports: [MergeInput] = []
        var errors: [String] = []
        var ignored = 0
        var i = 0
        let decoder = JSONDecoder()
        while i < bytes.count {
            // A report starts with `{` at the start of a line (after blanks, and a byte order
            // mark an editor may have put there).
            var j = i
            if bytes[j...].starts(with: [0xEF, 0xBB, 0xBF]) { j += 3 }
            while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x09 || bytes[j] == 0x0D { j += 1 }
            let end = j < bytes.count && bytes[j] == UInt8(ascii: "{") ? objectEnd(bytes, from: j) : nil
            if let end, let probe = try? decoder.decode(Probe.self, from: Data(bytes[j..<end])),
                let version = probe.version
            {
                i = end
                guard version == 2 else {
                    errors.append(
                        "a report of format version \(version); merge reads version 2 (run the script again with this loadshear)"
                    )
                    continue
                }
                do {
                    let r = try decoder.decode(MergeInput.self, from: Data(bytes[j..<end]))
                    if let problem = r.problem {
                        errors.append("a report that cannot be merged: \(problem)")
                    } else {
                        reports.append(r)
                    }
                } catch {
                    errors.append("a report that does not decode: \(Self.describe(error))")
                }
                continue
            }
            if end == nil, j < bytes.count, bytes[j] == UInt8(ascii: "{"), Self.opensAReport(bytes, at: j) {
                errors.append("a report cut short (its JSON does not close)")
                break
            }
            // Not a report: skip the line.
            while i < bytes.count, bytes[i] != 0x0A { i += 1 }
            i += 1
            if j < bytes.count, bytes[j] != 0x0A { ignored += 1 }
        }
        return (reports, errors, ignored)
    }

    /// A decoding error as the field it is about and what is wrong.
    static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let c): return "\(path(c.codingPath + [key])) is missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "\(path(c.codingPath)) has the wrong type"
        case .dataCorrupted(let c) where c.codingPath.isEmpty:
            // Foundation says "not valid JSON" for a number its field cannot hold, path unknown.
            return "a number does not fit its field (a negative or fractional count, or one out of range)"
        case .dataCorrupted(let c): return "\(path(c.codingPath)): \(c.debugDescription)"
        default: return "\(error)"
        }
    }

    /// Why this report cannot be merged as it is, or nil: values a report of ours never has.
    var problem: String? {
        guard let run else { return "run is missing" }
        if run.merged != nil { return "it is itself a merged report; merge the segments' own reports" }
        if let s = run.segment {
            if !(1...10_000).contains(s.count) { return "run.segment.count is \(s.count) (1 to 10000)" }
            if !(0..<s.count).contains(s.index) { return "run.segment.index is \(s.index), not 0 to \(s.count - 1)" }
            if s.sessions.count != 2 || s.sessions[0] < 0 || s.sessions[0] > s.sessions[1]
                || s.sessions[1] > 10_000_000
            {
                return "run.segment.sessions is \(s.sessions), not [start, end]"
            }
            // Segment i of N always has the same block of the plan's sessions.
            if (1...10_000_000).contains(settings.sessions), s.count <= settings.sessions {
                let block = Plan.segmentBlocks(sessions: settings.sessions, count: s.count)[s.index]
                if s.sessions != [block.lowerBound, block.upperBound] {
                    return
                        "run.segment.sessions is \(s.sessions), but segment \(s.index)/\(s.count) of \(settings.sessions) sessions is [\(block.lowerBound), \(block.upperBound)]"
                }
            }
        }
        func sane(_ v: Double) -> Bool { v.isFinite && v >= 0 && v < 1e7 }
        if !sane(durationSeconds) || !sane(plannedDurationSeconds) { return "durationSeconds is out of range" }
        for i in intervals ?? []
        where !sane(i.elapsedSeconds) || !sane(i.intervalSeconds) || !(0...100_000_000).contains(i.tick ?? 0) {
            return "an interval's elapsedSeconds, intervalSeconds or tick is out of range"
        }
        for shard in shards {
            for (name, v) in shard where v < 0 || v > 1 << 56 { return "shards[].\(name) is \(v)" }
        }
        for (kind, h) in latencyMicroseconds {
            for p in h.histogram where p.count != 2 || p[1] > 1 << 52 {
                return "latencyMicroseconds.\(kind).histogram holds \(p)"
            }
        }
        return nil
    }

    /// Whether the object at `start` (a `{`) begins as a report of ours does: its keys are
    /// sorted, so `"completed"` comes first whatever else it holds. (`latencyMicroseconds`
    /// further on marks a report of another layout.)
    private static func opensAReport(_ b: [UInt8], at start: Int) -> Bool {
        var k = start + 1
        while k < b.count, [0x20, 0x09, 0x0D, 0x0A].contains(b[k]) { k += 1 }
        let key = Array("\"completed\"".utf8)
        // Cut before the key ended (the input ends within it), or after it.
        if b[k...].starts(with: key) || key.starts(with: b[k...]) { return true }
        return String(decoding: b[start...], as: UTF8.self).contains("\"latencyMicroseconds\"")
    }

    /// The index after the object that starts at `start` (a `{`), strings and escapes
    /// respected; nil when it does not close.
    private static func objectEnd(_ b: [UInt8], from start: Int) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        var k = start
        while k < b.count {
            let c = b[k]
            if inString {
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") {
                    escaped = true
                } else if c == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "{") {
                depth += 1
            } else if c == UInt8(ascii: "}") {
                depth -= 1
                if depth == 0 { return k + 1 }
            }
            k += 1
        }
        return nil
    }

    /// The counters of shard `i` as the engine's values.
    func counters(_ shard: [String: Int]) -> CounterValues {
        var v = CounterValues()
        for c in ShardCounters.Counter.allCases { v[c] = shard[c.name] ?? 0 }
        return v
    }
}

/// Several reports as one: ``merge(_:)`` checks they belong together and combines them.
struct MergedReports {
    struct Problem: Error {
        var message: String
    }

    var snapshot: Snapshot
    var settings: JSONReport.SettingsPart
    var timeline: [JSONReport.ActionPart]
    var run: JSONReport.RunPart
    var expect: [Expectation]
    var intervals: [JSONReport.Interval]
    var lagLimit: UInt64
    var shardCount: Int
    var sessions: Int
    /// `merged 3 reports: segments 0, 1, 2 of 3 of <script>` (and what is missing).
    var heading: String
    /// Seconds between the first and the last segment's start (0 when they say nothing).
    var startSpread: Double = 0

    /// Merges `inputs` after checking they are one script's distinct segments.
    static func merge(_ inputs: [(name: String, report: MergeInput)]) -> Result<MergedReports, Problem> {
        guard let first = inputs.first else { return .failure(Problem(message: "no reports to merge")) }
        for (name, r) in inputs where r.run == nil {
            return .failure(
                Problem(
                    message:
                        "\(name) has no script identity (report format \(r.version); made by an older loadshear): run the script again to merge it"
                ))
        }
        let hash = first.report.run!.scriptHash
        if let other = inputs.first(where: { $0.report.run!.scriptHash != hash }) {
            return .failure(
                Problem(
                    message:
                        "\(other.name) is a report of a different script than \(first.name) (\(other.report.settings.script) vs \(first.report.settings.script), or their packets or handler differ); only one script's segments merge"
                ))
        }
        // Segments: one count; each index once. A whole run counts as segment 0 of 1.
        let segments = inputs.map { $0.report.run!.segment ?? .init(index: 0, count: 1, sessions: []) }
        let n = segments[0].count
        if let k = segments.firstIndex(where: { $0.count != n }) {
            return .failure(
                Problem(
                    message:
                        "\(inputs[k].name) is segment \(segments[k].index)/\(segments[k].count) but \(first.name) is one of \(n) segments; merge reports of one split"
                ))
        }
        var seen: [Int: String] = [:]
        for (k, s) in segments.enumerated() {
            if let earlier = seen[s.index] {
                let what = n == 1 ? "both whole runs of the script" : "both segment \(s.index)/\(n)"
                return .failure(
                    Problem(
                        message: "\(earlier) and \(inputs[k].name) overlap: \(what); each segment may be merged once"))
            }
            seen[s.index] = inputs[k].name
        }
        let order = inputs.indices.sorted { segments[$0].index < segments[$1].index }
        let reports = order.map { inputs[$0].report }

        var perShard: [CounterValues] = []
        var latency = LatencySet()
        for r in reports {
            perShard += r.shards.map(r.counters)
            for kind in LatencySet.Kind.allCases {
                guard let pairs = r.latencyMicroseconds[kind.rawValue]?.histogram else { continue }
                latency.record(kind, pairs: pairs)
            }
        }
        // Counters of our reports never come near Int.max; sums that would are refused.
        var sums = [Int](repeating: 0, count: ShardCounters.Counter.allCases.count)
        let maxima = Set(ShardCounters.maxCounters.map(\.rawValue))
        for v in perShard {
            // The worst-session figures combine by the largest: never summed, never too big.
            for (k, x) in v.values.enumerated() where !maxima.contains(k) {
                let (sum, overflow) = sums[k].addingReportingOverflow(x)
                if overflow {
                    return .failure(Problem(message: "the reports' counters add up to more than a counter holds"))
                }
                sums[k] = sum
            }
        }
        var snapshot = Snapshot(
            elapsed: reports.map(\.durationSeconds).max() ?? 0, perShard: perShard, previous: nil)
        snapshot.latency = latency
        snapshot.connectPhase = reports.compactMap(\.connectPhaseSeconds).max()
        snapshot.peakRSS = reports.compactMap(\.peakRSSBytes).max()
        snapshot.plannedDuration = reports.map(\.plannedDurationSeconds).max()
        let stopped = zip(order, reports).compactMap { k, r -> String? in
            guard !r.completed else { return nil }
            return "segment \(segments[k].index): \(r.stoppedBy ?? "a stop request")"
        }
        snapshot.stoppedEarlyBy = stopped.isEmpty ? nil : stopped.joined(separator: ", ")

        // Intervals by time: each report's 500 ms snapshots, in slots of 500 ms from its start.
        var slots: [Int: (elapsed: Double, interval: Double, increment: [String: Int], latency: LatencySet)] = [:]
        for r in reports {
            for i in r.intervals ?? [] {
                // By snapshot number: the ticks drift apart in time, not in number.
                let slot = i.tick ?? Int((i.elapsedSeconds / JSONReport.Interval.tickSeconds).rounded())
                var e = slots[slot] ?? (0, 0, [:], LatencySet())
                e.elapsed = max(e.elapsed, i.elapsedSeconds)
                e.interval = max(e.interval, i.intervalSeconds)
                e.increment.merge(i.increment) { $0 &+ $1 }
                for (name, pairs) in i.latencyHistograms {
                    if let kind = LatencySet.Kind(rawValue: name) { e.latency.record(kind, pairs: pairs) }
                }
                slots[slot] = e
            }
        }
        let intervals = slots.keys.sorted().map { k in
            let e = slots[k]!
            return JSONReport.Interval(
                tick: k, elapsedSeconds: e.elapsed, intervalSeconds: e.interval, increment: e.increment,
                latency: e.latency)
        }

        let present = segments.map(\.index).sorted()
        var settings = reports[0].settings
        settings.shards = reports.map(\.settings.shards).reduce(0, +)
        let sessions = segments.enumerated().map { k, s in
            s.sessions.count == 2 ? s.sessions[1] - s.sessions[0] : inputs[k].report.settings.sessions
        }.reduce(0, +)
        var run = first.report.run!
        run.segment = nil
        run.merged = .init(segments: present, of: n)
        let startTexts = reports.compactMap { $0.run?.startedAt }
        run.startedAt = startTexts.min() ?? run.startedAt
        let starts = startTexts.compactMap(StartTime.parse)
        let startSpread = starts.max().map { $0.timeIntervalSince(starts.min()!) } ?? 0
        run.host = Array(Set(reports.compactMap { $0.run?.host })).sorted().joined(separator: ",")
        let paced = snapshot.totals[.pacedPayloads] > 0
        let lagLimit =
            paced
            ? (reports.filter { $0.shards.contains { ($0["pacedPayloads"] ?? 0) > 0 } }.map(\.generator.lagLimit).min()
                ?? GeneratorVerdict.unpacedLagLimit)
            : GeneratorVerdict.unpacedLagLimit
        var heading =
            "merged \(reports.count) report\(reports.count == 1 ? "" : "s") of \(settings.script): "
            + (n == 1
                ? "a whole run"
                : "segments \(Self.ranges(present)) — \(present.count) of \(n) segments")
        let missing = (0..<n).filter { !present.contains($0) }
        if !missing.isEmpty {
            heading += " (missing: \(Self.ranges(missing)); the figures cover only these)"
        }
        heading += "\n"
        return .success(
            MergedReports(
                snapshot: snapshot, settings: settings, timeline: reports[0].timeline, run: run,
                expect: reports[0].expect ?? [], intervals: intervals, lagLimit: lagLimit,
                shardCount: settings.shards, sessions: sessions, heading: heading, startSpread: startSpread))
    }
}

extension MergedReports {
    /// `0–3, 5, 7–9`: sorted numbers as runs.
    static func ranges(_ numbers: [Int]) -> String {
        var parts: [String] = []
        var k = 0
        while k < numbers.count {
            var e = k
            while e + 1 < numbers.count, numbers[e + 1] == numbers[e] + 1 { e += 1 }
            parts.append(e > k ? "\(numbers[k])–\(numbers[e])" : "\(numbers[k])")
            k = e + 1
        }
        return parts.joined(separator: ", ")
    }
}

extension LatencySet {
    /// Records a report's `[value, count]` pairs into `kind`: the same buckets, so exact.
    mutating func record(_ kind: Kind, pairs: [[UInt64]]) {
        for p in pairs where p.count == 2 && p[1] > 0 {
            let v = Swift.min(Swift.max(p[0], 1), LatencySet.highest)
            switch kind {
            case .response: _ = response.record(v, count: p[1])
            case .connect: _ = connect.record(v, count: p[1])
            case .handshake: _ = handshake.record(v, count: p[1])
            case .send: _ = send.record(v, count: p[1])
            case .read: _ = read.record(v, count: p[1])
            case .lag: _ = lag.record(v, count: p[1])
            case .jitter: _ = jitter.record(v, count: p[1])
            }
        }
    }
}
