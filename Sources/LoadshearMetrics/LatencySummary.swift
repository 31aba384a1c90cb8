import Histogram

/// Percentiles and the original's power-of-two view of one histogram.
package struct LatencySummary: Sendable, Equatable {
    /// Samples in the histogram.
    package var count: UInt64
    package var p50: UInt64
    package var p90: UInt64
    package var p99: UInt64
    package var p999: UInt64
    package var p9999: UInt64
    package var max: UInt64

    /// The percentiles and the maximum of `h`, in its unit (µs for latency); all 0 when it is
    /// empty.
    package init(_ h: Histogram<UInt64>) {
        count = h.totalCount
        if count == 0 {
            (p50, p90, p99, p999, p9999, max) = (0, 0, 0, 0, 0, 0)
        } else {
            p50 = h.valueAtPercentile(50)
            p90 = h.valueAtPercentile(90)
            p99 = h.valueAtPercentile(99)
            p999 = h.valueAtPercentile(99.9)
            p9999 = h.valueAtPercentile(99.99)
            max = h.max
        }
    }

    /// Exclusive upper bounds of the power-of-two bins, in µs: 64 µs doubling to 524 ms,
    /// then 1 s; the last bin is "> 1 s".
    package static let binBounds: [UInt64] = (0..<14).map { 64 << UInt64($0) } + [1_000_000]

    /// The label of bin `i`: `< 64 µs` … `< 1 s`, and `> 1 s` for the last.
    package static func binLabel(_ i: Int) -> String {
        guard i < binBounds.count else { return "> 1 s" }
        return "< " + Figures.micros(binBounds[i])
    }

    /// Rows the power-of-two view of `h` takes (first to last bin with samples; 0 when empty).
    package static func binRows(_ h: Histogram<UInt64>) -> Int {
        let b = bins(h)
        guard let first = b.firstIndex(where: { $0 > 0 }), let last = b.lastIndex(where: { $0 > 0 }) else { return 0 }
        return last - first + 1
    }

    /// Counts per power-of-two bin (`binBounds.count + 1` bins).
    package static func bins(_ h: Histogram<UInt64>) -> [UInt64] {
        var out: [UInt64] = []
        var lower: UInt64 = 0
        for b in binBounds {
            out.append(lower < b ? h.count(within: lower...(b - 1)) : 0)
            lower = b
        }
        out.append(h.totalCount - out.reduce(0, +))
        return out
    }
}

extension LatencySummary {
    /// Percentiles, then one row per power-of-two bin from the first to the last that holds
    /// samples: label, count, and a bar scaled to the fullest bin. `bar` styles the bar.
    package static func view(
        _ h: LatencyHistogram, width: Int, indent: String = "  ",
        bar: (String) -> String = { $0 }
    ) -> [String] {
        let s = LatencySummary(h)
        let figures = [
            ("p50", s.p50), ("p90", s.p90), ("p99", s.p99), ("p99.9", s.p999), ("p99.99", s.p9999), ("max", s.max),
        ]
        .map { "\($0.0) \(Figures.micros($0.1))" }
        var line = indent + figures.joined(separator: "  ")
        if line.count > width { line = indent + figures.joined(separator: " ") }  // narrow terminals
        var out = [line]
        let bins = Self.bins(h)
        let peak = Swift.max(1, bins.max() ?? 1)
        let barWidth = Swift.max(10, width - 30)
        guard let first = bins.firstIndex(where: { $0 > 0 }), let last = bins.lastIndex(where: { $0 > 0 }) else {
            return out
        }
        for i in first...last {
            let n = Int((Double(bins[i]) / Double(peak) * Double(barWidth)).rounded(.up))
            let drawn = bins[i] == 0 ? "" : String(repeating: "▇", count: Swift.max(1, n))
            let label = Self.binLabel(i)
            let count = String(bins[i])
            out.append(
                indent + label + String(repeating: " ", count: Swift.max(0, 10 - label.count)) + " "
                    + String(repeating: " ", count: Swift.max(0, 9 - count.count)) + count + " " + bar(drawn))
        }
        return out
    }
}

extension Figures {
    /// `850 µs`, `12.3 ms`, `1.20 s`.
    package static func micros(_ us: UInt64) -> String {
        if us < 1000 { return "\(us) µs" }
        if us < 1_000_000 {
            let ms = Double(us) / 1000
            return (ms == ms.rounded() ? String(Int(ms)) : fixed(ms, ms < 10 ? 2 : 1)) + " ms"
        }
        return fixed(Double(us) / 1_000_000, 2) + " s"
    }
}
