import ArgumentParser
import Foundation
import LoadshearMetrics

/// `loadshear _bench-record`: the cost of recording one metric sample on the hot path —
/// a counter add and a latency-histogram record — in ns. Hidden; bench/record.sh runs it.
package struct BenchRecordCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "_bench-record", abstract: "Measure the per-sample cost of metric recording.",
        shouldDisplay: false)

    /// Samples recorded per measurement.
    @Option var iterations = 50_000_000

    package init() {}

    /// Times `iterations` counter adds, then as many latency records, and prints the cost of
    /// each in ns as `name=value` lines, then a check line that keeps the work from being
    /// optimised away.
    package func run() {
        let counters = ShardCounters()
        let recorder = LatencyRecorder()
        let clock = ContinuousClock()
        func ns(_ d: Duration) -> Double {
            (Double(d.components.seconds) * 1e18 + Double(d.components.attoseconds)) / 1e9 / Double(iterations)
        }
        let counterTime = clock.measure {
            for i in 0..<iterations { counters.add(.bytesSent, i & 1023) }
        }
        let latencyTime = clock.measure {
            for i in 0..<iterations { recorder.record(.send, nanoseconds: UInt64(1000 + (i & 0xFFFFF))) }
        }
        print("counter_add_ns=\(String(format: "%.2f", ns(counterTime)))")
        print("latency_record_ns=\(String(format: "%.2f", ns(latencyTime)))")
        print("# check: \(counters.get(.bytesSent)) \(recorder.take().send.totalCount)")
    }
}
