import Foundation
import Testing

@testable import LoadshearCommands

/// (ext) The HTML report's y axes: whatever the data, the tick labels are distinct, in one
/// unit, and the top tick covers the largest value.
@Suite struct ChartTicksTests {
    static let cases: [(unit: String, values: [Double])] = [
        ("µs", [0]), ("µs", [1, 1, 1]), ("µs", [0.3]), ("µs", [999]), ("µs", [1800]), ("µs", [2497, 10]),
        ("µs", [9551]), ("µs", [1e9]), ("B/s", [0]), ("B/s", [2]), ("B/s", [10]), ("B/s", [583_900]),
        ("B/s", [5.2e9]), ("", [0]), ("", [1]), ("", [9]), ("", [20]), ("", [15_000]),
    ]

    /// The `<text>` labels at the left of the plot (the y ticks), bottom to top.
    static func yLabels(_ svg: String) -> [String] {
        svg.components(separatedBy: "\n").compactMap { line in
            guard line.contains("<line x1=\"64.0\""), let open = line.range(of: "text-anchor=\"end\">"),
                let close = line.range(of: "</text>", range: open.upperBound..<line.endIndex)
            else { return nil }
            return String(line[open.upperBound..<close.lowerBound])
        }
    }

    @Test(arguments: 0..<cases.count)
    func tickLabelsAreDistinctAndCoverTheData(_ i: Int) {
        let (unit, values) = Self.cases[i]
        let svg = SVGChart.line(
            title: "t", unit: unit, series: [("s", values.enumerated().map { (Double($0.offset), $0.element) })])
        let labels = Self.yLabels(svg)
        #expect(labels.count >= 2 && labels.count <= 6, "\(labels)")
        #expect(Set(labels).count == labels.count, "distinct: \(labels)")
        if unit == "µs" {
            let inMs = labels.filter { $0.hasSuffix(" ms") }.count
            #expect(inMs == 0 || inMs == labels.count, "one unit: \(labels)")
        }
        let step = SVGChart.niceStep(max(values.max() ?? 0, 1) / 4, whole: unit != "µs")
        #expect(step * Double(labels.count - 1) >= values.max() ?? 0, "\(labels)")
    }
}
