/// (ext) One segment of a plan run by several processes (`--segment i/N`): segment `index` of
/// `count` owns a contiguous block of sessions, split as evenly as shards are; every action
/// applies to the part of its range inside the block. Each SEND's COUNTER takes values from
/// the segment's lanes, so values are unique across segments and, for SENDs whose copies are
/// bounded, the union over all segments is exactly the single run's `0, step, 2·step, …`.
package struct Segment: Sendable, Equatable {
    package var index: Int
    package var count: Int
    /// The sessions this segment runs (global numbers).
    package var block: Range<Int>
    /// Per SEND (index into ``Plan/sends``): how the segment's own copy numbers map to
    /// the single run's.
    package var lanes: [CounterLanes]
}

/// How one segment's copy numbers of one SEND (0, 1, 2, … as it sends them) map to copy
/// numbers of the single run. Copies are dealt round-robin to the segments that send the
/// SEND — copy `k` of segment `i` is `k·P + rank` while all `P` of them still have copies —
/// and, where their shares differ, the segments with more take the values the others leave:
/// with shares 400, 300 and 300 copies, the first 900 values go round-robin and 900–999 to
/// the first segment. Unbounded SENDs (REPEAT with FLOOD or PACE) are plain round-robin.
/// A segment that sends more than its share (it cannot, unless the plan changes) continues
/// above every segment's values, still unique.
package struct CounterLanes: Sendable, Equatable {
    /// From local copy `from` on (until the next interval's): `base + (k − from)·stride + rank`.
    package struct Interval: Sendable, Equatable {
        package var from: UInt64
        package var base: UInt64
        package var stride: UInt64
        package var rank: UInt64
    }

    package private(set) var intervals: [Interval]

    /// The single run's numbering: local copy `k` is copy `k`.
    package static let identity = CounterLanes(intervals: [Interval(from: 0, base: 0, stride: 1, rank: 0)])

    package init(intervals: [Interval]) {
        self.intervals = intervals
    }

    /// Lanes for segment `i` when segment `j` sends `shares[j]` copies (`nil`: unbounded).
    /// Segments with a share of 0 take no part.
    package init(segment i: Int, shares: [Int?]) {
        let n = UInt64(shares.count)
        let taking = shares.indices.filter { shares[$0] != 0 }
        let myRank = UInt64(taking.filter { $0 < i }.count)
        if shares.contains(where: { $0 == nil }) || shares[i] == nil {
            // Unbounded: round-robin among the segments that send it.
            intervals = [Interval(from: 0, base: 0, stride: UInt64(max(1, taking.count)), rank: myRank)]
            return
        }
        let finite = shares.map { UInt64($0 ?? 0) }
        let total = finite.reduce(0, +)
        let mine = finite[i]
        var out: [Interval] = []
        var previous: UInt64 = 0
        for cut in Set(finite.filter { $0 > 0 }).sorted() where cut <= mine {
            // Local copies previous..<cut: the segments whose share reaches past `previous`.
            let active = shares.indices.filter { finite[$0] >= cut }
            let base = finite.reduce(0) { $0 + min($1, previous) }
            let rank = UInt64(active.filter { $0 < i }.count)
            out.append(Interval(from: previous, base: base, stride: UInt64(active.count), rank: rank))
            previous = cut
        }
        // Beyond the share: above every segment's values, in lanes of all N.
        out.append(Interval(from: mine, base: total, stride: max(1, n), rank: UInt64(i)))
        intervals = out
    }

    /// The single run's copy number of this segment's copy `k`.
    @inline(__always)
    package func global(_ k: UInt64) -> UInt64 {
        var j = intervals.count - 1
        while j > 0, k < intervals[j].from { j -= 1 }
        let v = intervals[j]
        return v.base &+ (k &- v.from) &* v.stride &+ v.rank
    }

    /// `3k+1 for copies 0..<300, then 900+k…`: the dry run's description, in copy numbers.
    package var description: String {
        var parts: [String] = []
        for (j, v) in intervals.enumerated() {
            let end = j + 1 < intervals.count ? "..<\(intervals[j + 1].from)" : "…"
            let k = v.from == 0 ? "k" : "(k−\(v.from))"
            var f = v.stride == 1 ? k : "\(v.stride)·\(k)"
            if v.base > 0 { f = "\(v.base)+" + f }
            if v.rank > 0 { f += "+\(v.rank)" }
            parts.append("copies \(v.from)\(end) → \(f)")
        }
        return parts.joined(separator: ", ")
    }
}

extension Plan {
    /// Why `--segment i/N` cannot split this plan, or nil.
    package func segmentProblem(_ i: Int, of n: Int) -> String? {
        if n < 1 { return "--segment \(i)/\(n): the number of segments must be at least 1" }
        if i < 0 || i >= n { return "--segment \(i)/\(n): the index must be 0 to \(n - 1)" }
        if n > sessionCount {
            return
                "--segment \(i)/\(n): \(sessionCount) session\(sessionCount == 1 ? "" : "s") cannot be split into \(n) segments; use at most \(sessionCount)"
        }
        return nil
    }

    /// The session blocks of `n` segments of `sessions` sessions, in segment order (a report
    /// names its segments by index: this tells their sizes).
    package static func segmentBlocks(sessions: Int, count n: Int) -> [Range<Int>] {
        Checker.split(sessions, into: n)
    }

    /// Segment `i` of `n` of this plan (see ``Segment``); ``segmentProblem(_:of:)`` must be nil.
    package func segmented(_ i: Int, of n: Int) -> Plan {
        precondition(segmentProblem(i, of: n) == nil)
        let blocks = Self.segmentBlocks(sessions: sessionCount, count: n)
        let block = blocks[i]
        let bounded = !(settings.repeatPayloads && actions.contains { $0.kind.keepsSending })
        let lanes = sends.map { send in
            CounterLanes(
                segment: i,
                shares: blocks.map { b in
                    let (copies, overflow) = send.copies.multipliedReportingOverflow(
                        by: send.sessions.clamped(to: b).count)
                    if copies == 0 { return 0 }
                    return bounded && !overflow && copies < Int(UInt32.max) * 65_536 ? copies : nil
                })
        }
        var plan = self
        let shardCount = min(settings.shardCount, block.count)
        plan.shards = Checker.split(block.count, into: shardCount).map {
            ($0.lowerBound + block.lowerBound)..<($0.upperBound + block.lowerBound)
        }
        plan.settings.shardCount = shardCount
        plan.segment = Segment(index: i, count: n, block: block, lanes: lanes)
        return plan
    }

    /// The sessions this process runs: the segment's block, or all of them.
    package var ownSessions: Range<Int> { segment?.block ?? 0..<sessionCount }
}

extension PlannedAction.Kind {
    /// FLOOD and PACE make a session send its whole list, again and again with REPEAT.
    var keepsSending: Bool {
        switch self {
        case .flood, .pace: true
        default: false
        }
    }
}

extension Plan {
    /// (ext) What identifies a script's runs across processes and hosts: a 128-bit digest of
    /// the script's bytes, every packet's bytes, the handler module and (TLS) the CA,
    /// certificate and key files, each length-prefixed (the TLS files only when there are
    /// any, so the identity of a script without them is what it always was).
    /// Reports whose identities differ come from different scripts (or files) and are never
    /// merged. It guards against mix-ups, not forgery: two FNV-1a 64 passes with different
    /// offsets, no cryptography needed.
    package static func identity(
        script: [UInt8], packets: [[UInt8]], handler: [UInt8]?, tlsFiles: [[UInt8]] = []
    ) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x6c62_272e_07bb_0142
        func mix(_ byte: UInt8) {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        func part(_ bytes: [UInt8]) {
            var n = UInt64(bytes.count)
            for _ in 0..<8 {
                mix(UInt8(truncatingIfNeeded: n))
                n >>= 8
            }
            for x in bytes { mix(x) }
        }
        part(script)
        for p in packets { part(p) }
        part(handler ?? [])
        for f in tlsFiles { part(f) }
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return hex(a) + hex(b)
    }
}
