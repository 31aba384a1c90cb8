import LoadshearScript
import Testing

/// (ext) `--segment i/N`: blocks partition the sessions; COUNTER lanes partition the values.
@Suite struct SegmentTests {
    /// A tiny deterministic generator, so a failure names its seed.
    struct Seeded {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    /// For random session counts, SEND ranges, copies and N: the segments' blocks cover every
    /// session once, and the values every segment sends (its copies mapped through its
    /// lanes) are together exactly 0..<total — no value twice, none missing.
    @Test(arguments: 0..<60) func blocksAndLanesPartition(seed: Int) throws {
        var rng = Seeded(state: UInt64(seed) &+ 17)
        let sessions = 1 + rng.next(40)
        let n = 1 + rng.next(min(sessions, 7))
        let lo = rng.next(sessions)
        let hi = lo + 1 + rng.next(sessions - lo)
        let copies = 1 + rng.next(9)
        let text = script(
            actions: "    CONNECT 0:\(sessions)\n    SEND \(lo):\(hi) p1 COPIES \(copies) COUNTER 0:4 \"big\":1",
            create: "    CREATE \(sessions) OFFSET 0ms")
        let (p, rendered, _) = plan(text)
        let whole = try #require(p, "\(rendered)")
        var covered: [Int] = []
        var values: [UInt64] = []
        for i in 0..<n {
            #expect(whole.segmentProblem(i, of: n) == nil)
            let seg = whole.segmented(i, of: n)
            let block = try #require(seg.segment).block
            covered += Array(block)
            #expect(seg.shards.first?.lowerBound == block.lowerBound && seg.shards.last?.upperBound == block.upperBound)
            let sent = copies * (lo..<hi).clamped(to: block).count
            let lanes = try #require(seg.segment).lanes[0]
            values += (0..<UInt64(sent)).map { lanes.global($0) }
        }
        #expect(covered == Array(0..<sessions), "seed \(seed)")
        #expect(values.sorted() == Array(0..<UInt64(copies * (hi - lo))), "seed \(seed): n=\(n) \(lo):\(hi)")
    }

    /// REPEAT with FLOOD: copies are unbounded, so lanes are round-robin among the segments
    /// that send the SEND, still unique; a segment going past its share stays unique too.
    @Test func unboundedAndOverflowingLanesStayUnique() {
        let unbounded = (0..<3).map { CounterLanes(segment: $0, shares: [nil, nil, nil]) }
        let u = unbounded.flatMap { l in (0..<1000).map { l.global($0) } }
        #expect(Set(u).count == 3000)
        #expect(Set(u) == Set(0..<3000))
        // Segment 1 sends nothing of it: the other two share the values.
        let two = [CounterLanes(segment: 0, shares: [nil, 0, nil]), CounterLanes(segment: 2, shares: [nil, 0, nil])]
        #expect(Set(two.flatMap { l in (0..<10).map { l.global($0) } }) == Set(0..<20))
        // Shares 4, 3, 3: values 0–9 exactly; copies beyond a share go above all of them.
        let lanes = (0..<3).map { CounterLanes(segment: $0, shares: [4, 3, 3]) }
        let within = [4, 3, 3].enumerated().flatMap { i, m in (0..<UInt64(m)).map { lanes[i].global($0) } }
        #expect(within.sorted() == Array(0..<10))
        let beyond = (0..<3).flatMap { i in (UInt64([4, 3, 3][i])..<20).map { lanes[i].global($0) } }
        #expect(Set(beyond).count == beyond.count && beyond.allSatisfy { $0 >= 10 })
    }

    /// More segments than sessions, or an index out of range: a clear problem, no plan.
    @Test func impossibleSegmentsAreRefused() throws {
        let (p, _, _) = plan(script())
        let whole = try #require(p)
        #expect(whole.segmentProblem(0, of: 11)?.contains("10 sessions cannot be split into 11 segments") == true)
        #expect(whole.segmentProblem(3, of: 3)?.contains("the index must be 0 to 2") == true)
        #expect(whole.segmentProblem(2, of: 3) == nil)
    }

    /// The identity changes with a packet's bytes, not with where the script is.
    @Test func identityCoversScriptPacketsAndHandler() {
        let a = Plan.identity(script: [1, 2], packets: [[3]], handler: nil)
        #expect(a == Plan.identity(script: [1, 2], packets: [[3]], handler: nil))
        #expect(a != Plan.identity(script: [1, 2], packets: [[4]], handler: nil))
        #expect(a != Plan.identity(script: [1], packets: [[2, 3]], handler: nil))
        #expect(a != Plan.identity(script: [1, 2], packets: [[3]], handler: [0]))
        // (ext) TLS files count when there are any; none leaves the identity as it was.
        #expect(a == Plan.identity(script: [1, 2], packets: [[3]], handler: nil, tlsFiles: []))
        #expect(a != Plan.identity(script: [1, 2], packets: [[3]], handler: nil, tlsFiles: [[5]]))
        #expect(
            Plan.identity(script: [1, 2], packets: [[3]], handler: nil, tlsFiles: [[5]])
                != Plan.identity(script: [1, 2], packets: [[3]], handler: nil, tlsFiles: [[6]]))
        #expect(a.count == 32)
    }
}
