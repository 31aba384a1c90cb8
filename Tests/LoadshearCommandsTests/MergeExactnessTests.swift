import Testing

@testable import LoadshearCommands
@testable import LoadshearMetrics

/// (ext) `merge` is exact: per-shard histograms that went through the report's `[value,
/// count]` pairs and were merged equal one histogram that recorded every sample.
@Suite struct MergeExactnessTests {
    @Test(arguments: [1, 7, 42]) func mergedShardsEqualOneRecording(seed: UInt64) {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 20
        }
        var one = LatencySet()
        var shards = [LatencySet(), LatencySet(), LatencySet()]
        for k in 0..<30_000 {
            // A wide spread: µs to tens of seconds, heavy at the low end.
            let v = 1 + next() % (k % 10 == 0 ? 30_000_000 : 5_000)
            _ = one.response.record(v)
            _ = shards[k % 3].response.record(v)
        }
        var merged = LatencySet()
        for s in shards {
            let pairs = JSONReport.LatencyPart(s.response).histogram
            merged.record(.response, pairs: pairs)
        }
        #expect(merged.response.totalCount == one.response.totalCount)
        for p in [50.0, 90, 99, 99.9, 99.99] {
            #expect(merged.response.valueAtPercentile(p) == one.response.valueAtPercentile(p), "p\(p)")
        }
        #expect(merged == one)
        // The exact maximum is not in the pairs (a bucket's highest value stands for it):
        // within the histogram's 0.1%.
        let (a, b) = (Double(merged.response.max), Double(one.response.max))
        #expect(a >= b && a <= b * 1.001)
    }

    @Test func segmentListsAreShownAsRuns() {
        #expect(MergedReports.ranges([0, 1, 2, 3, 5, 7, 8, 9]) == "0–3, 5, 7–9")
        #expect(MergedReports.ranges([4]) == "4")
        #expect(MergedReports.ranges([]) == "")
    }

    /// A long run's interval series stays bounded: neighbours merge, nothing is lost.
    @Test func longSeriesAreCoarsenedWithoutLoss() {
        var series: [JSONReport.Interval] = []
        var span = 1
        var one = LatencySet()
        for tick in 1...3000 {
            var h = LatencySet()
            _ = h.lag.record(UInt64(1 + tick % 700))
            _ = one.lag.record(UInt64(1 + tick % 700))
            let i = JSONReport.Interval(
                tick: tick, elapsedSeconds: Double(tick) / 2, intervalSeconds: 0.5, increment: ["packetsSent": 2],
                latency: h)
            JSONReport.Interval.append(i, to: &series, span: &span)
        }
        #expect(series.count <= JSONReport.Interval.kept)
        #expect(span == 4)
        #expect(series.map { $0.increment["packetsSent"] ?? 0 }.reduce(0, +) == 6000)
        #expect(abs(series.map(\.intervalSeconds).reduce(0, +) - 1500) < 1e-6)
        let ticks = series.compactMap(\.tick)
        #expect(ticks == ticks.sorted() && Set(ticks).count == ticks.count && ticks.first == 1)
        var merged = LatencySet()
        for i in series { merged.record(.lag, pairs: i.latencyHistograms["lag"] ?? []) }
        #expect(merged == one)
    }

    /// Coarsened entries sit on a grid of ticks: a series that skipped a tick (its next
    /// snapshot covers two) still lines up, entry for entry, with one that did not, so
    /// `merge` adds up the same stretches of time.
    @Test func seriesWithASkippedTickStayOnTheGrid() {
        func series(skipping skipped: Int?) -> [JSONReport.Interval] {
            var out: [JSONReport.Interval] = []
            var span = 1
            for tick in 1...2500 where tick != skipped {
                let covers = tick == (skipped ?? 0) + 1 ? 2 : 1
                let i = JSONReport.Interval(
                    tick: tick, elapsedSeconds: Double(tick) / 2, intervalSeconds: 0.5 * Double(covers),
                    increment: ["packetsSent": covers], latency: LatencySet())
                JSONReport.Interval.append(i, to: &out, span: &span)
            }
            return out
        }
        let whole = series(skipping: nil)
        let gappy = series(skipping: 701)
        #expect(gappy.compactMap(\.tick) == whole.compactMap(\.tick))
        #expect(gappy.map { $0.increment["packetsSent"] ?? 0 }.reduce(0, +) == 2500)
        #expect(whole.compactMap(\.tick).allSatisfy { ($0 - 1) % 4 == 0 })
    }
}
