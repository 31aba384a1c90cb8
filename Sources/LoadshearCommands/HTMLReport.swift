import Foundation
import LoadshearMetrics
import LoadshearScript

/// (ext) A run's report as one self-contained HTML page: no scripts, no fetches, charts as
/// inline SVG, so it opens from disk, prints, and can be mailed. Written as well-formed XML
/// (every tag closed, numeric character references only) so that it is also machine-checkable.
/// It reads the JSON report generically, so reports of any version render (a version-1
/// report has no interval series: its time charts say so).
enum HTMLReport {
    /// The page for `report`; `script` is the script's text when it can be read.
    static func render(_ report: [String: Any], script: String?) -> String {
        let settings = report["settings"] as? [String: Any] ?? [:]
        let totals = report["totals"] as? [String: Any] ?? [:]
        let name = settings["name"] as? String ?? "run"
        let duration = number(report["durationSeconds"]) ?? 0
        var body = ""
        body += "<h1>Loadshear: \(esc(name))</h1>\n"
        let share = Self.share(report)
        var facts = [
            "script \(esc(settings["script"] as? String ?? "?"))",
            "\(settings["session"] as? String ?? "?") to \(esc((settings["endpoints"] as? [String] ?? []).joined(separator: ", ")))",
            Self.plural(share.sessions, "session") + " on " + Self.plural(int(settings["shards"]), "shard"),
            "\(Figures.fixed(duration, 3)) s",
        ]
        if let part = share.part { facts.append(part) }
        if report["completed"] as? Bool == false {
            facts.append("stopped early by \(esc(report["stoppedBy"] as? String ?? "a stop"))")
        }
        if let run = report["run"] as? [String: Any], let at = run["startedAt"] as? String {
            facts.append("started \(esc(at))")
        }
        body += "<p class=\"facts\">" + facts.joined(separator: " · ") + "</p>\n"
        body += verdict(report)
        body += headline(totals, duration: duration)
        body += "<h2>Over time</h2>\n"
        let intervals = report["intervals"] as? [[String: Any]] ?? []
        if intervals.count < 2 {
            body +=
                "<p>This report has no interval series (a report of format version 1, or a run under a second).</p>\n"
        } else {
            body += timeCharts(intervals)
        }
        body += "<h2>Latency</h2>\n" + latencyCurves(report["latencyMicroseconds"] as? [String: Any] ?? [:])
        body += shardTable(report["shards"] as? [[String: Any]] ?? [])
        if let script {
            body += "<h2>Script</h2>\n<pre class=\"script\">" + highlight(script) + "</pre>\n"
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <title>Loadshear report: \(esc(name))</title>
            <style>
            body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
            h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
            table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; }
            td:first-child, th:first-child { text-align: left; } tr:nth-child(even) { background: #f6f6f6; }
            .ok { color: #17702a; } .bad { color: #b00020; font-weight: bold; } .facts { color: #555; }
            .charts { display: flex; flex-wrap: wrap; gap: 12px; } svg { background: #fff; border: 1px solid #ddd; }
            pre.script { background: #f6f6f6; padding: 8px; overflow-x: auto; } .kw { color: #0033b3; font-weight: bold; }
            .str { color: #067d17; } .cm { color: #8c8c8c; }
            @media print { .charts { display: block; } svg { page-break-inside: avoid; } }
            </style>
            </head>
            <body>
            \(body)<p class="facts">Made by loadshear from its JSON report; charts are inline SVG.</p>
            </body>
            </html>

            """
    }

    // MARK: sections

    static func verdict(_ report: [String: Any]) -> String {
        var out = ""
        let thresholds = report["thresholds"] as? [[String: Any]] ?? []
        if !thresholds.isEmpty {
            out += "<h2>Thresholds</h2>\n<ul>\n"
            for t in thresholds {
                let ok = t["ok"] as? Bool ?? false
                out +=
                    "<li class=\"\(ok ? "ok" : "bad")\">\(ok ? "&#x2713;" : "&#x2717;") \(esc(t["expression"] as? String ?? "")) (measured \(esc(t["shown"] as? String ?? "")))</li>\n"
            }
            out += "</ul>\n"
        }
        if let g = report["generator"] as? [String: Any] {
            let saturated = g["saturated"] as? Bool ?? false
            let reasons = (g["reasons"] as? [String] ?? []).map(esc).joined(separator: "; ")
            out +=
                "<p class=\"\(saturated ? "bad" : "ok")\">generator: \(saturated ? "SATURATED &#x2014; " + reasons : "ok")</p>\n"
        }
        return out
    }

    static func headline(_ t: [String: Any], duration: Double) -> String {
        let secs = max(duration, 1e-9)
        func row(_ label: String, _ value: String) -> String { "<tr><td>\(label)</td><td>\(value)</td></tr>\n" }
        var out = "<h2>Totals</h2>\n<table>\n"
        out += row(
            "sent",
            "\(Figures.bytes(num(t["bytesSent"]))) (\(Figures.bytes(num(t["bytesSent"]) / secs))/s), \(Figures.count(num(t["packetsSent"]))) packets"
        )
        out += row(
            "read",
            "\(Figures.bytes(num(t["bytesRead"]))) (\(Figures.bytes(num(t["bytesRead"]) / secs))/s), \(Figures.count(num(t["framesRead"]))) frames"
        )
        out += row(
            "connections",
            "\(int(t["connectionsAttempted"])) attempted, \(int(t["connectionsSucceeded"])) connected, \(int(t["connectionsFailed"])) failed"
        )
        out += row(
            "closes",
            "\(int(t["closedByUs"])) by us, \(int(t["closedByPeer"])) by the server, \(int(t["resets"])) reset, \(int(t["localErrors"])) local errors, \(int(t["protocolErrors"])) protocol errors"
        )
        if num(t["requests"]) > 0 || num(t["unmatched"]) > 0 {
            out += row(
                "requests",
                "\(int(t["requests"])) sent, \(int(t["replies"])) answered, \(int(t["timeouts"])) timed out, \(int(t["outstanding"])) outstanding\(int(t["requestsCutOff"]) > 0 ? ", \(int(t["requestsCutOff"])) cut off by CHURN" : "")"
            )
            out += row(
                "replies",
                "\(int(t["unmatched"])) matched no request, \(int(t["duplicates"])) duplicates, \(int(t["repliesReordered"])) reordered"
            )
        }
        if num(t["sequenced"]) > 0 {
            // (ext) SEQUENCE: loss as the summary gives it, and the worst session's figures.
            let loss = Summary.sequenceLossPercent(
                lost: int(t["sequenceLost"]), sequenced: int(t["sequenced"]), duplicates: int(t["sequenceDuplicates"]))
            out += row(
                "sequence",
                "\(int(t["sequenced"])) numbered messages: \(int(t["sequenceLost"])) lost (\(loss)%), \(int(t["sequenceReordered"])) reordered, \(int(t["sequenceDuplicates"])) duplicates"
            )
            out += row(
                "worst session",
                "\(int(t["sequenceWorstLost"])) lost, \(int(t["sequenceWorstReordered"])) reordered, \(int(t["sequenceWorstDuplicates"])) duplicates"
            )
        }
        return out + "</table>\n"
    }

    /// Throughput, connections and latency percentiles per 500 ms interval.
    static func timeCharts(_ intervals: [[String: Any]]) -> String {
        var sent: [(Double, Double)] = []
        var read: [(Double, Double)] = []
        var active: [(Double, Double)] = []
        var open = 0.0
        var percentiles: [String: [String: [(Double, Double)]]] = [:]
        for iv in intervals {
            let t = num(iv["elapsedSeconds"])
            let span = max(num(iv["intervalSeconds"]), 1e-9)
            let inc = iv["increment"] as? [String: Any] ?? [:]
            sent.append((t, num(inc["bytesSent"]) / span))
            read.append((t, num(inc["bytesRead"]) / span))
            open += num(inc["connectionsActive"])
            active.append((t, open))
            for (kind, pairs) in iv["latencyHistograms"] as? [String: Any] ?? [:] {
                let values = (pairs as? [[Any]] ?? []).compactMap { p -> (Double, Double)? in
                    p.count == 2 ? (num(p[0]), num(p[1])) : nil
                }
                for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
                    if let v = percentile(values, q) {
                        percentiles[kind, default: [:]][label, default: []].append((t, v))
                    }
                }
            }
        }
        var out = "<div class=\"charts\">\n"
        out += SVGChart.line(title: "Throughput", unit: "B/s", series: [("sent", sent), ("read", read)])
        out += SVGChart.line(title: "Open connections", unit: "", series: [("active", active)])
        // A kind sampled in one interval only (connects, usually) has no line to draw over
        // time: its percentile curve below shows it.
        for kind in LatencySet.Kind.allCases.map(\.rawValue) where (percentiles[kind]?["p50"]?.count ?? 0) >= 2 {
            let p = percentiles[kind]!
            out += SVGChart.line(
                title: "\(kind) latency per 500 ms", unit: "µs",
                series: [("p50", p["p50"] ?? []), ("p99", p["p99"] ?? [])])
        }
        return out + "</div>\n"
    }

    /// HDR percentile curves (as HdrHistogram's plotter draws them): latency against
    /// 1/(1 − percentile) on a log axis (0% to at most 99.999%), one chart per kind.
    static func latencyCurves(_ latency: [String: Any]) -> String {
        var out =
            "<table>\n<tr><th>kind</th><th>samples</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n"
        var charts = ""
        for kind in LatencySet.Kind.allCases.map(\.rawValue) {
            guard let l = latency[kind] as? [String: Any], num(l["samples"]) > 0 else { continue }
            let cells = ["p50", "p90", "p99", "p999", "max"].map { "<td>\(Figures.fixed(num(l[$0]), 0)) µs</td>" }
            out += "<tr><td>\(kind)</td><td>\(int(l["samples"]))</td>\(cells.joined())</tr>\n"
            let pairs = (l["histogram"] as? [[Any]] ?? []).compactMap { p -> (Double, Double)? in
                p.count == 2 ? (num(p[0]), num(p[1])) : nil
            }
            let total = pairs.reduce(0) { $0 + $1.1 }
            var below = 0.0
            var curve: [(Double, Double)] = []
            for (v, c) in pairs.sorted(by: { $0.0 < $1.0 }) {
                // Each value at the percentile where it begins (the share of samples below
                // it): the curve starts at 0% and reaches only as far as the samples resolve
                // (2 samples: to 50%; a million: past 99.999%, where the axis stops).
                let q = min(below / total, 0.99999)
                curve.append((1 / (1 - q), v))
                below += c
            }
            charts += SVGChart.line(
                title: "\(kind) latency by percentile", unit: "µs", series: [(kind, curve)], logX: true,
                xLabel: "percentile (log scale)")
        }
        return out + "</table>\n<div class=\"charts\">\n" + charts + "</div>\n"
    }

    static func shardTable(_ shards: [[String: Any]]) -> String {
        guard !shards.isEmpty else { return "" }
        var out =
            "<h2>Shards</h2>\n<table>\n<tr><th>shard</th><th>sent</th><th>packets</th><th>read</th><th>connected</th><th>failed</th><th>busy CPU</th></tr>\n"
        for (i, s) in shards.enumerated() {
            out +=
                "<tr><td>\(i)</td><td>\(Figures.bytes(num(s["bytesSent"])))</td><td>\(Figures.count(num(s["packetsSent"])))</td><td>\(Figures.bytes(num(s["bytesRead"])))</td><td>\(int(s["connectionsSucceeded"]))</td><td>\(int(s["connectionsFailed"]))</td><td>\(Figures.fixed(num(s["loopBusyMicroseconds"]) / 1e6, 2)) s</td></tr>\n"
        }
        return out + "</table>\n"
    }

    /// Keywords, strings and comments of a Loadshear Script, marked up.
    static func highlight(_ script: String) -> String {
        var out = ""
        for line in script.split(separator: "\n", omittingEmptySubsequences: false) {
            var code = Substring(line)
            var comment = ""
            if let c = line.range(of: "//") {
                code = line[..<c.lowerBound]
                comment = "<span class=\"cm\">" + esc(String(line[c.lowerBound...])) + "</span>"
            }
            var marked = ""
            var inString = false
            var word = ""
            func flush() {
                guard !word.isEmpty else { return }
                marked +=
                    word.uppercased() == word && word.first?.isLetter == true && word.count > 2
                    ? "<span class=\"kw\">\(esc(word))</span>" : esc(word)
                word = ""
            }
            for ch in code {
                if ch == "\"" {
                    flush()
                    marked += inString ? "&quot;</span>" : "<span class=\"str\">&quot;"
                    inString.toggle()
                } else if inString {
                    marked += esc(String(ch))
                } else if ch.isLetter || ch == "_" {
                    word.append(ch)
                } else {
                    flush()
                    marked += esc(String(ch))
                }
            }
            flush()
            if inString { marked += "</span>" }
            out += marked + comment + "\n"
        }
        return out
    }

    // MARK: helpers

    /// The value at quantile `q` of (value, count) pairs; nil when there are none.
    static func percentile(_ pairs: [(Double, Double)], _ q: Double) -> Double? {
        let total = pairs.reduce(0) { $0 + $1.1 }
        guard total > 0 else { return nil }
        var seen = 0.0
        for (v, c) in pairs.sorted(by: { $0.0 < $1.0 }) {
            seen += c
            if seen >= q * total { return v }
        }
        return pairs.last?.0
    }

    static func esc(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func number(_ v: Any?) -> Double? { ComparedRun.number(v) }
    static func num(_ v: Any?) -> Double { number(v) ?? 0 }
    /// A whole number from the report; 0 for one no report of ours holds (not finite, or
    /// beyond ±2^62): a hand-edited file renders, it does not trap.
    static func int(_ v: Any?) -> Int {
        let d = num(v)
        return d.isFinite && abs(d) < 0x1p62 ? Int(d) : 0
    }

    /// `1 session`, `3 sessions`.
    static func plural(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// Which share of the run the figures are: the sessions they cover (a segment's block,
    /// the merged segments' blocks, or the whole plan's: `settings.sessions` is always the
    /// whole plan's), and, when not all of it, what to say (a segment's, or those of the
    /// segments a merge had; a partial merge names the missing ones).
    static func share(_ report: [String: Any]) -> (sessions: Int, part: String?) {
        let total = int((report["settings"] as? [String: Any])?["sessions"])
        let run = report["run"] as? [String: Any]
        if let segment = run?["segment"] as? [String: Any] {
            let block = segment["sessions"] as? [Any] ?? []
            return (
                block.count == 2 ? int(block[1]) - int(block[0]) : total,
                "segment \(int(segment["index"]))/\(int(segment["count"])) only (of \(total) sessions): `loadshear merge` combines the segments"
            )
        }
        guard let merged = run?["merged"] as? [String: Any], let present = merged["segments"] as? [Any] else {
            return (total, nil)
        }
        let n = int(merged["of"])
        let indices = present.map { int($0) }
        // No more segments than sessions, and as many as merge takes at most: a report
        // claiming otherwise is not ours.
        var sessions = total
        if n >= 1, n <= total {
            let blocks = Plan.segmentBlocks(sessions: total, count: n)
            sessions = indices.filter { blocks.indices.contains($0) }.map { blocks[$0].count }.reduce(0, +)
        }
        guard (2...10_000).contains(n) else { return (sessions, nil) }
        let have = Set(indices)
        let missing = (0..<n).filter { !have.contains($0) }
        if missing.isEmpty { return (sessions, "merged from \(n) segments") }
        return (
            sessions,
            "<span class=\"bad\">merged from \(have.count) of \(n) segments (missing: \(MergedReports.ranges(missing))): the figures cover only these</span>"
        )
    }
}

/// (ext) Line charts as inline SVG: axes with a few round ticks, one polyline per series.
enum SVGChart {
    static let width = 480.0
    static let height = 260.0
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

    static func line(
        title: String, unit: String, series: [(String, [(Double, Double)])], logX: Bool = false,
        xLabel: String = "seconds"
    ) -> String {
        let left = 64.0
        let right = 12.0
        let top = 28.0
        let bottom = 40.0
        let points = series.flatMap(\.1)
        let fx: (Double) -> Double = { logX ? log10(max($0, 1)) : $0 }
        let xs = points.map { fx($0.0) }
        // A percentile axis spans whole decades from 0% (90%, 99%, 99.9%… at its ticks), so a
        // curve of equal samples still has an axis to stand on.
        let xMin = logX ? 0 : xs.min() ?? 0
        let xMax = logX ? max((xs.max() ?? 1).rounded(.up), 1) : max(xs.max() ?? 1, xMin + 1e-9)
        // Round ticks (1, 2, 2.5 or 5 times a power of ten), so labels are distinct and
        // read at a glance; counts step by whole numbers.
        let dataMax = max(points.map(\.1).filter(\.isFinite).max() ?? 0, 1)
        let step = niceStep(dataMax / 4, whole: unit != "µs")
        let ticks = max(1, Int((dataMax / step - 1e-9).rounded(.up)))
        let yMax = step * Double(ticks)
        func px(_ x: Double) -> Double { left + (fx(x) - xMin) / (xMax - xMin) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - y / yMax * (height - top - bottom) }
        var out =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\n"
        out += "<title>\(HTMLReport.esc(title))</title>\n"
        out +=
            "<text x=\"\(left)\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(HTMLReport.esc(title))\(unit.isEmpty ? "" : " (\(HTMLReport.esc(unit)))")</text>\n"
        out +=
            "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - right)\" y2=\"\(height - bottom)\" stroke=\"#999\"/>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"#999\"/>\n"
        for i in 0...ticks {
            let v = step * Double(i)
            let y = py(v)
            out +=
                "<line x1=\"\(left)\" y1=\"\(r(y))\" x2=\"\(width - right)\" y2=\"\(r(y))\" stroke=\"#eee\"/><text x=\"\(left - 4)\" y=\"\(r(y + 4))\" font-size=\"10\" text-anchor=\"end\">\(HTMLReport.esc(short(v, unit, step: step, top: yMax)))</text>\n"
        }
        let xTicks = logX ? Int(xMax) : 4
        for i in 0...xTicks {
            let xv = logX ? Double(i) : xMin + (xMax - xMin) * Double(i) / 4
            // Decade d is the percentile 100·(1 − 10^−d): 0%, 90%, 99%, 99.9%…
            let label = logX ? Figures.fixed(100 * (1 - 1 / pow(10, xv)), max(0, i - 2)) + "%" : Figures.fixed(xv, 1)
            let x = left + (xv - xMin) / (xMax - xMin) * (width - left - right)
            // The last label ends at the plot's edge instead of running past the picture.
            let anchor = i == xTicks ? "end" : "middle"
            out +=
                "<text x=\"\(r(x))\" y=\"\(height - bottom + 14)\" font-size=\"10\" text-anchor=\"\(anchor)\">\(HTMLReport.esc(label))</text>\n"
        }
        out +=
            "<text x=\"\((width + left) / 2)\" y=\"\(height - 6)\" font-size=\"10\" text-anchor=\"middle\">\(HTMLReport.esc(xLabel))</text>\n"
        for (i, (name, pts)) in series.enumerated() where !pts.isEmpty {
            let color = colors[i % colors.count]
            let path = pts.map { "\(r(px($0.0))),\(r(py($0.1)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            // A series of one value (every sample the same) draws no line: a dot shows it.
            if Set(pts.map { r(px($0.0)) }).count == 1 {
                let (x, y) = (pts[0].0, pts.map(\.1).max() ?? 0)
                out += "<circle cx=\"\(r(px(x)))\" cy=\"\(r(py(y)))\" r=\"3\" fill=\"\(color)\"/>\n"
            }
            out +=
                "<text x=\"\(width - right - 4)\" y=\"\(top + 12 + Double(i) * 13)\" font-size=\"11\" text-anchor=\"end\" fill=\"\(color)\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">\(HTMLReport.esc(name))</text>\n"
        }
        return out + "</svg>\n"
    }

    static func r(_ v: Double) -> String { Figures.fixed(v, 1) }

    /// The tick step: `raw` rounded up to 1, 2, 2.5 or 5 times a power of ten; when `whole`
    /// (counts and bytes), a whole number, and 2.5 is skipped below 10.
    static func niceStep(_ raw: Double, whole: Bool) -> Double {
        let power = pow(10, (log10(raw)).rounded(.down))
        let factors: [Double] = whole && power < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]
        let step = factors.map { $0 * power }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * power
        return whole ? max(1, step.rounded(.up)) : step
    }

    /// A tick label: as many decimals as the step needs (a step of 0.25 µs gets two), so
    /// neighbouring labels never read the same; a µs axis whose top tick reaches 1 ms is
    /// labelled in ms throughout.
    static func short(_ v: Double, _ unit: String, step: Double, top: Double) -> String {
        func decimals(_ step: Double) -> Int {
            (0...9).first { d in
                let scaled = step * pow(10, Double(d))
                return abs(scaled - scaled.rounded()) <= 1e-9 * scaled
            } ?? 9
        }
        switch unit {
        case "B/s": return Figures.bytes(v)
        case "µs":
            if top >= 1000 { return Figures.fixed(v / 1000, decimals(step / 1000)) + " ms" }
            return Figures.fixed(v, decimals(step))
        default: return step < 1 ? Figures.fixed(v, decimals(step)) : Figures.count(v)
        }
    }
}
