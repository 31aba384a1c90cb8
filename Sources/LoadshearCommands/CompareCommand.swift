import ArgumentParser
import Foundation
import LoadshearMetrics

/// (ext) `loadshear compare <base.json> <new.json> [--tolerance 5%] [--json]`: every headline
/// figure of two runs side by side, with the absolute and relative change; a figure that got
/// worse by more than the tolerance is a regression (exit 4).
package struct CompareCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "(ext) Compare two JSON reports figure by figure and flag regressions.",
        discussion: """
            Throughput (bytes, packets, frames, replies per second over each run), connections, \
            errors and the latency percentiles of every kind both runs measured. A regression is \
            lower throughput or fewer connections, or higher latency or more errors, beyond the \
            tolerance (errors: any, where the base had none). Reports of any format version \
            load. Exit codes: 0 no regression, 1 a report cannot be read, 4 a regression.
            """
    )

    @Argument(help: ArgumentHelp("The report to compare against.", valueName: "base.json"))
    var base: String

    @Argument(help: ArgumentHelp("The report to check.", valueName: "new.json"))
    var new: String

    @Option(
        help: ArgumentHelp("Relative change allowed before a figure is flagged, such as 5% or 0.05.", valueName: "p"))
    var tolerance: String = "5%"

    @Flag(help: "Print the comparison as JSON (for CI bots) instead of a table.")
    var json = false

    package init() {}

    /// The tolerance as a fraction: `5%` → 0.05, `0.05` → 0.05.
    package static func fraction(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let value = t.hasSuffix("%") ? Double(t.dropLast()).map { $0 / 100 } : Double(t)
        guard let value, value >= 0, value.isFinite else { return nil }
        return value
    }

    package func validate() throws {
        guard Self.fraction(tolerance) != nil else {
            throw ValidationError(
                "--tolerance must be a percentage such as 5% (or a fraction such as 0.05), got '\(tolerance)'")
        }
    }

    package func run() throws {
        let tol = Self.fraction(tolerance)!
        let a: ComparedRun
        let b: ComparedRun
        do {
            a = try ComparedRun(path: base)
            b = try ComparedRun(path: new)
        } catch let e as ComparedRun.LoadError {
            Console.error("loadshear: error: \(e)\n")
            throw ExitCode.runtimeFailure
        }
        let rows = Comparison.rows(base: a, new: b, tolerance: tol)
        if json {
            Console.out(try Comparison.json(rows, tolerance: tol, base: base, new: new) + "\n")
        } else {
            Console.out(Comparison.table(rows, tolerance: tol, base: base, new: new))
        }
        if rows.contains(where: \.regressed) { throw ExitCode.thresholdFailed }
    }
}

/// (ext) The figures `compare` reads from a report, whatever its format version.
package struct ComparedRun {
    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    var duration: Double
    var totals: [String: Double]
    /// Per latency kind with samples: percentile name → µs.
    var latency: [String: [String: Double]]

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "cannot read \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let report = object as? [String: Any] else {
            throw LoadError(description: "\(path) is not a JSON report (loadshear … --json <file> writes one)")
        }
        try self.init(report: report, name: path)
    }

    package init(report: [String: Any], name: String) throws {
        guard let totals = report["totals"] as? [String: Any], let duration = Self.number(report["durationSeconds"])
        else {
            throw LoadError(description: "\(name) has no totals or durationSeconds: not a Loadshear report")
        }
        self.duration = duration
        self.totals = totals.compactMapValues(Self.number)
        var latency: [String: [String: Double]] = [:]
        for (kind, value) in report["latencyMicroseconds"] as? [String: Any] ?? [:] {
            guard let figures = value as? [String: Any], (Self.number(figures["samples"]) ?? 0) > 0 else { continue }
            latency[kind] = figures.compactMapValues(Self.number)
        }
        self.latency = latency
    }

    static func number(_ v: Any?) -> Double? {
        switch v {
        case let n as NSNumber: n.doubleValue
        case let d as Double: d
        case let i as Int: Double(i)
        default: nil
        }
    }

    /// A total per second of the run.
    func rate(_ counter: String) -> Double? {
        guard let v = totals[counter], duration > 0 else { return nil }
        return v / duration
    }
}

/// (ext) The comparison of two runs, figure by figure.
package enum Comparison {
    /// Which way a figure gets better.
    package enum Better: String {
        case higher, lower
    }

    package struct Row: Equatable {
        package var name: String
        package var unit: String
        package var base: Double
        package var new: Double
        package var better: Better
        package var regressed: Bool

        var change: Double { new - base }
        /// nil when the base is 0.
        var relative: Double? { base == 0 ? nil : (new - base) / base }
    }

    /// Throughput rates, then connections and errors, then latency percentiles: each figure
    /// either run has (a figure only one run has is compared against 0).
    package static func rows(base a: ComparedRun, new b: ComparedRun, tolerance: Double) -> [Row] {
        var rows: [Row] = []
        func add(_ name: String, _ unit: String, _ x: Double?, _ y: Double?, _ better: Better) {
            guard x != nil || y != nil else { return }
            let base = x ?? 0
            let new = y ?? 0
            let regressed: Bool
            switch better {
            case .higher: regressed = new < base * (1 - tolerance)
            case .lower: regressed = base == 0 ? new > 0 : new > base * (1 + tolerance)
            }
            rows.append(Row(name: name, unit: unit, base: base, new: new, better: better, regressed: regressed))
        }
        for (counter, name, unit) in [
            ("bytesSent", "sent", "B/s"), ("packetsSent", "packets sent", "/s"), ("bytesRead", "read", "B/s"),
            ("framesRead", "frames read", "/s"), ("responsesSent", "handler replies", "/s"),
            ("replies", "replies matched", "/s"),
        ] where (a.totals[counter] ?? 0) > 0 || (b.totals[counter] ?? 0) > 0 {
            add(name, unit, a.rate(counter), b.rate(counter), .higher)
        }
        add("connections", "", a.totals["connectionsSucceeded"], b.totals["connectionsSucceeded"], .higher)
        for counter in [
            "connectionsFailed", "connectionsCancelled", "resets", "localErrors", "protocolErrors", "timeouts",
            "unmatched", "duplicates", "pacedBehind", "handlerTraps", "handlerBadPointers", "handlerAllocFailures",
            "bytesUnconfirmed", "repliesReordered", "icmpErrors", "oversizedDatagrams", "datagramsTruncated",
            "oversizedReplies", "sequenceLost", "sequenceReordered", "sequenceDuplicates", "udpReceiveDrops",
        ] where (a.totals[counter] ?? 0) > 0 || (b.totals[counter] ?? 0) > 0 {
            add(counter, "", a.totals[counter], b.totals[counter], .lower)
        }
        let kinds = LatencySet.Kind.allCases.map(\.rawValue).filter { a.latency[$0] != nil && b.latency[$0] != nil }
        for kind in kinds {
            for p in ["p50", "p90", "p99", "p999", "max"] {
                add("\(kind) \(p)", "µs", a.latency[kind]?[p], b.latency[kind]?[p], .lower)
            }
        }
        return rows
    }

    /// One figure as people read it.
    static func show(_ v: Double, _ unit: String) -> String {
        switch unit {
        case "B/s": Figures.bytes(v) + "/s"
        case "/s": Figures.count(v) + "/s"
        case "µs": Figures.fixed(v, 0) + " µs"
        default: Figures.count(v)
        }
    }

    package static func table(_ rows: [Row], tolerance: Double, base: String, new: String) -> String {
        let header = ["figure", "base", "new", "change", ""]
        var lines = [header]
        for r in rows {
            let rel = r.relative.map { ($0 >= 0 ? "+" : "−") + Figures.fixed(abs($0) * 100, 1) + "%" } ?? "new"
            let sign = r.change >= 0 ? "+" : "−"
            let change = r.change == 0 ? "=" : "\(sign)\(show(abs(r.change), r.unit)) (\(rel))"
            lines.append([r.name, show(r.base, r.unit), show(r.new, r.unit), change, r.regressed ? "✗ REGRESSION" : ""])
        }
        let widths = (0..<header.count).map { c in lines.map { $0[c].count }.max() ?? 0 }
        var out = "Comparison: \(new) against \(base) (tolerance \(Figures.fixed(tolerance * 100, 1))%)\n"
        for (i, l) in lines.enumerated() {
            let cells = l.enumerated().map { c, s in
                c == 0
                    ? s.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - s.count) + s
            }
            out += "  " + cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
            if i == 0 {
                out += "  " + String(repeating: "─", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n"
            }
        }
        let flagged = rows.filter(\.regressed).count
        out +=
            flagged == 0
            ? "no regression beyond \(Figures.fixed(tolerance * 100, 1))%\n"
            : "\(flagged) regression\(flagged == 1 ? "" : "s") beyond \(Figures.fixed(tolerance * 100, 1))%: \(rows.filter(\.regressed).map(\.name).joined(separator: ", "))\n"
        return out
    }

    static func json(_ rows: [Row], tolerance: Double, base: String, new: String) throws -> String {
        let figures: [[String: Any]] = rows.map { r in
            var d: [String: Any] = [
                "name": r.name, "unit": r.unit, "base": r.base, "new": r.new, "change": r.change,
                "better": r.better.rawValue, "regressed": r.regressed,
            ]
            if let rel = r.relative { d["relative"] = rel }
            return d
        }
        let object: [String: Any] = [
            "base": base, "new": new, "tolerance": tolerance, "regressions": rows.filter(\.regressed).count,
            "figures": figures,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
