import Histogram
import LoadshearDashboard
import LoadshearMetrics
import LoadshearTestSupport
import Testing

@Suite struct HistogramMergeTests {
    @Test func mergingShardHistogramsEqualsRecordingEverythingInOne() {
        var rng = SplitMix64(seed: 7)
        let shards = (0..<4).map { _ in LatencyRecorder() }
        var all = LatencySet()
        let everything = LatencyRecorder()
        for _ in 0..<20_000 {
            let ns = UInt64.random(in: 1...5_000_000_000, using: &rng)
            let kind = LatencySet.Kind.allCases.randomElement(using: &rng)!
            shards.randomElement(using: &rng)!.record(kind, nanoseconds: ns)
            everything.record(kind, nanoseconds: ns)
        }
        for s in shards { all.add(s.take()) }
        let one = everything.take()
        #expect(all == one)
        for k in LatencySet.Kind.allCases {
            #expect(LatencySummary(all[kind: k]) == LatencySummary(one[kind: k]))
        }
        // take() starts over empty.
        #expect(shards.allSatisfy { $0.take().connect.totalCount == 0 })
    }

    @Test func reportHistogramPairsRebuildTheHistogramExactly() {
        let r = LatencyRecorder()
        for v in [1, 2, 3, 999, 1000, 1001, 123_456, 9_999_999, 3_000_000_000] as [UInt64] {
            r.record(.read, nanoseconds: v * 1000)
        }
        let h = r.take().read
        var rebuilt = LatencySet.empty()
        for v in h.recordedValues() { _ = rebuilt.record(v.value, count: v.count) }
        #expect(
            Array(rebuilt.recordedValues().map { [$0.value, $0.count] })
                == Array(h.recordedValues().map { [$0.value, $0.count] }))
        #expect(rebuilt.valuesAreEquivalent(rebuilt.valueAtPercentile(99), h.valueAtPercentile(99)))
    }

    @Test func powerOfTwoBins() {
        let r = LatencyRecorder()
        for us in [10, 63, 64, 127, 128, 600_000, 990_000, 1_010_000, 5_000_000] as [UInt64] {
            r.record(.send, nanoseconds: us * 1000)
        }
        let bins = LatencySummary.bins(r.take().send)
        #expect(bins.count == 16)
        #expect(bins[0] == 2)  // < 64 µs
        #expect(bins[1] == 2)  // < 128 µs
        #expect(bins[2] == 1)  // < 256 µs
        #expect(bins[14] == 2)  // < 1 s
        #expect(bins[15] == 2)  // > 1 s
        #expect(LatencySummary.binLabel(0) == "< 64 µs")
        #expect(LatencySummary.binLabel(14) == "< 1.00 s")
        #expect(LatencySummary.binLabel(15) == "> 1 s")
    }
}

@Suite struct DashboardTests {
    func snapshot() -> Snapshot {
        var a = CounterValues()
        a[.bytesSent] = 1_500_000
        a[.packetsSent] = 1500
        a[.connectionsAttempted] = 10
        a[.connectionsSucceeded] = 9
        a[.connectionsFailed] = 1
        a[.connectionsActive] = 9
        let first = Snapshot(elapsed: 0.5, perShard: [a], previous: nil)
        var b = a
        b[.bytesSent] = 2_000_000
        b[.packetsSent] = 2000
        b[.framesRead] = 40
        let r = LatencyRecorder()
        for us in [100, 100, 200, 5000] as [UInt64] { r.record(.send, nanoseconds: us * 1000) }
        var s = Snapshot(elapsed: 1.0, perShard: [b], previous: first)
        s.latencyIncrement = r.take()
        s.latency = s.latencyIncrement
        return s
    }

    /// A snapshot with samples in every latency kind, as a run in full swing has.
    func busySnapshot() -> Snapshot {
        var s = snapshot()
        let r = LatencyRecorder()
        for us in [40, 90, 150, 300, 700, 1500, 3000, 9000, 20_000, 70_000] as [UInt64] {
            for kind in LatencySet.Kind.allCases { r.record(kind, nanoseconds: us * 1000) }
        }
        s.latency = r.take()
        return s
    }

    /// (ext) With RESPONSE and PACE: requests and the paced rate against the intended one
    /// in the throughput panel, response time as the first latency panel, lag last; and the
    /// frame still fits 80×24 with the header, progress and keys on screen.
    @Test func responseTimeComesFirstAndStillFits() {
        var s = busySnapshot()
        var t = s.totals
        t[.requests] = 1000
        t[.replies] = 990
        t[.timeouts] = 4
        t[.outstanding] = 6
        t[.pacedPayloads] = 1000
        s.totals = t
        let d = Dashboard(width: 80, color: false, title: "paced.ldsh")
        let progress = Dashboard.Progress(elapsed: 1, planned: 4, action: "PACE 0:10 (line 9)", intendedRate: 1000)
        let big = d.render(s, progress: progress, mode: .totals, height: 200)
        let titles = big.filter { $0.hasPrefix("Response time") || $0.hasSuffix("samples") }
        #expect(titles.first?.hasPrefix("Response time") == true, "\(titles)")
        #expect(titles.last?.hasPrefix("Lag (generator)") == true, "\(titles)")
        #expect(
            big.contains { $0.contains("requests 1.0k") && $0.contains("timeouts 4") && $0.contains("outstanding 6") })
        #expect(big.contains { $0.contains("paced") && $0.contains("of 1.0k/s intended") })
        let small = d.render(s, progress: progress, mode: .totals, height: 24)
        #expect(small.count <= 24)
        #expect(small[0].contains("q stop") && small[1].contains("PACE 0:10"))
        #expect(small.contains { $0.hasPrefix("Response time") })
    }

    @Test func totalsFrameAtFixedWidth() {
        let d = Dashboard(width: 72, color: false, title: "demo.ldsh")
        let lines = d.render(
            snapshot(), progress: .init(elapsed: 1, planned: 4, action: "FLOOD 0:10 (line 9)"), mode: .totals)
        #expect(
            lines.joined(separator: "\n") == """
                loadshear demo.ldsh  [totals]  ←/→ totals/increments  q stop
                [█████████····························] 1.0s / 4.0s  FLOOD 0:10 (line 9)

                Throughput
                  sent      2.00 MB · 2.0k packets
                  read      0 B · 40 frames
                  responses 0   handler calls 0 (0 traps)
                Connections
                  active 9   attempted 10   connected 9   failed 1
                  closed: by us 0   by server 0   resets 0   errors 0   protocol 0

                Connect latency  0 samples
                  no samples yet

                Send latency  4 samples
                  p50 100 µs  p90 5 ms  p99 5 ms  p99.9 5 ms  p99.99 5 ms  max 5.00 ms
                  < 128 µs           2 ▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇
                  < 256 µs           1 ▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇
                  < 512 µs           0 
                  < 1.02 ms          0 
                  < 2.05 ms          0 
                  < 4.10 ms          0 
                  < 8.19 ms          1 ▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇

                Read latency  0 samples
                  no samples yet
                """)
    }

    /// At 80×24 the frame fits: header, progress and keys on top, every kind's percentiles,
    /// bins only where rows remain.
    @Test func eightyByTwentyFourFits() {
        let d = Dashboard(width: 80, color: false, title: "a-long-script-name.ldsh")
        let lines = d.render(
            busySnapshot(), progress: .init(elapsed: 12, planned: 60, action: "FLOOD 0:100 (line 14)"),
            mode: .totals, height: 24)
        #expect(lines.count <= 24)
        #expect(lines.allSatisfy { $0.count <= 80 })
        #expect(lines[0].hasPrefix("loadshear a-long-script-name.ldsh  [totals]  ←/→ totals/increments  q stop"))
        #expect(lines[1].hasPrefix("[") && lines[1].contains("12.0s / 60.0s"))
        for kind in ["Connect", "Send", "Read"] {
            let i = lines.firstIndex { $0.hasPrefix("\(kind) latency") }
            #expect(i != nil, "\(kind) shown")
            if let i { #expect(lines[i + 1].contains("p99.99")) }
        }
    }

    /// A terminal narrower than the 40-column layout gets every line cut to its width: a
    /// longer line would wrap and scroll the header away.
    @Test func aNarrowTerminalGetsLinesItsWidth() {
        let d = Dashboard(width: 20, color: true, title: "a-long-script-name.ldsh")
        let lines = d.render(
            busySnapshot(), progress: .init(elapsed: 12, planned: 60, action: "FLOOD 0:100 (line 14)"),
            mode: .totals, height: 20)
        let visible = lines.map { $0.replacing(/\u{1B}\[[0-9;]*m/, with: "") }
        #expect(visible.allSatisfy { $0.count <= 20 }, "\(visible)")
        #expect(lines.count <= 20)
    }

    /// A bigger terminal shows every kind's bins.
    @Test func aBigTerminalUsesTheRoom() {
        let d = Dashboard(width: 160, color: false, title: "demo.ldsh")
        let small = d.render(
            busySnapshot(), progress: .init(elapsed: 1, planned: 4, action: "SEND"), mode: .totals, height: 24)
        let big = d.render(
            busySnapshot(), progress: .init(elapsed: 1, planned: 4, action: "SEND"), mode: .totals, height: 48)
        let huge = d.render(
            busySnapshot(), progress: .init(elapsed: 1, planned: 4, action: "SEND"), mode: .totals, height: 60)
        func binRows(_ lines: [String]) -> Int { lines.filter { $0.hasPrefix("  < ") }.count }
        #expect(big.count <= 48 && big.count > small.count)
        #expect(binRows(small) < binRows(big) && binRows(big) < binRows(huge))
        #expect(binRows(big) == 2 * 12, "read and send get their 12 bins; connect only percentiles")
        #expect(binRows(huge) == 3 * 12, "every bin of every kind")
        #expect(big.allSatisfy { $0.count <= 160 })
    }

    @Test func incrementsFrameShowsRates() {
        let d = Dashboard(width: 60, color: false, title: "demo")
        let lines = d.render(snapshot(), progress: .init(elapsed: 1, planned: 4, action: "SEND"), mode: .increments)
        #expect(lines[0].contains("[last 500 ms]"))
        #expect(lines[4] == "  sent      1.00 MB/s · 1.0k packets/s")
        #expect(lines.allSatisfy { $0.count <= 60 })
    }

    @Test func colourOnlyWhenAsked() {
        let s = snapshot()
        let p = Dashboard.Progress(elapsed: 1, planned: 2, action: "x")
        #expect(
            !Dashboard(width: 80, color: false, title: "t").render(s, progress: p, mode: .totals).joined().contains(
                "\u{1B}"))
        #expect(
            Dashboard(width: 80, color: true, title: "t").render(s, progress: p, mode: .totals).joined().contains(
                "\u{1B}[1m"))
    }
}
