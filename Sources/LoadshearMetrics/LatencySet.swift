import Histogram

/// The histogram type every latency figure uses.
package typealias LatencyHistogram = Histogram<UInt64>

/// Latency histograms in microseconds: 1 µs … 1 h at 3 significant digits, so percentiles
/// are exact to 0.1% and histograms from different shards (or runs) merge exactly.
package struct LatencySet: Sendable, Codable, Equatable {
    /// The largest value a histogram tracks: 1 h in µs. The recorder clamps longer latencies to it.
    package static let highest: UInt64 = 3_600_000_000

    /// An empty histogram in the shared configuration: a copy of one made once. Making one
    /// (and `Histogram.reset()`) runs hdrhistogram-swift's generic code element by element
    /// over ~23,000 counts — about 1 ms each, 7 per set, every shard every 500 ms: that was
    /// most of a snapshot publish's 10–17 ms. A copy shares the template's zeroed storage
    /// until something is recorded into it, which copies the counts first (one `memcpy`, in
    /// specialized code); ``reset()`` makes that copy itself, so recording into a set it
    /// cleared allocates nothing.
    package static func empty() -> Histogram<UInt64> { template }

    private static let template = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: .three)

    /// (ext) Server response time: reply arrival − the request's intended send time
    /// (coordinated omission corrected); every matched reply, not sampled.
    package var response = LatencySet.empty()
    /// Connect latency: connect started → channel active.
    package var connect = LatencySet.empty()
    /// (ext) TLS handshake latency: TCP connected → handshake completed, every handshake.
    package var handshake = LatencySet.empty()
    /// Send latency of sampled batches: writes issued → the kernel took the whole batch.
    package var send = LatencySet.empty()
    /// Read latency of sampled frames: the read that brought a frame's first bytes → the read
    /// that completed it.
    package var read = LatencySet.empty()
    /// (ext) The generator's own lateness: actual − intended time of every timeline action
    /// and paced payload.
    package var lag = LatencySet.empty()
    /// (ext) SEQUENCE: each session's RFC 3550 inter-arrival jitter estimate, recorded at
    /// every in-order message that carries a number.
    package var jitter = LatencySet.empty()

    package init() {}

    /// Merges `other` in, kind by kind; exact, since the configurations are the same.
    /// An empty kind is skipped: merging it would still walk (and first copy, when shared)
    /// all ~23,000 counts of this side's histogram.
    package mutating func add(_ other: LatencySet) {
        func merge(_ h: inout Histogram<UInt64>, _ o: Histogram<UInt64>) { if o.totalCount > 0 { h.add(o) } }
        merge(&response, other.response)
        merge(&connect, other.connect)
        merge(&handshake, other.handshake)
        merge(&send, other.send)
        merge(&read, other.read)
        merge(&lag, other.lag)
        merge(&jitter, other.jitter)
    }

    /// The kinds, in the order reports show them (response time first when there is any);
    /// the raw values are their names in reports.
    package enum Kind: String, CaseIterable, Sendable {
        case response, connect, handshake, send, read, lag, jitter
    }

    /// The histogram of `kind`.
    package subscript(kind kind: Kind) -> Histogram<UInt64> {
        switch kind {
        case .response: response
        case .connect: connect
        case .handshake: handshake
        case .send: send
        case .read: read
        case .lag: lag
        case .jitter: jitter
        }
    }

    /// Equal when every kind holds the same recorded values with the same counts.
    package static func == (a: LatencySet, b: LatencySet) -> Bool {
        Kind.allCases.allSatisfy { k in
            a[kind: k].totalCount == b[kind: k].totalCount
                && Array(a[kind: k].recordedValues().map { [$0.value, $0.count] })
                    == Array(b[kind: k].recordedValues().map { [$0.value, $0.count] })
        }
    }
}

extension LatencySet {
    /// An empty set whose histograms own their storage (see ``reset()``).
    package static func cleared() -> LatencySet {
        var s = LatencySet()
        s.reset()
        return s
    }

    /// Empties every histogram and leaves each with storage of its own, so that recording
    /// into the set allocates nothing: a histogram with values takes a copy of the zeroed
    /// template (see ``empty()``), an empty one keeps what it has. The engine calls this on
    /// its own loop, for the shards' recorders.
    package mutating func reset() {
        func clear(_ h: inout Histogram<UInt64>) {
            if h.totalCount > 0 { h = LatencySet.template }
            // A count of 0 at value 0 changes no figure, but writes to the counts, which gives
            // the histogram its own copy of a storage it shared.
            h.record(0, count: 0)
        }
        clear(&response)
        clear(&connect)
        clear(&handshake)
        clear(&send)
        clear(&read)
        clear(&lag)
        clear(&jitter)
    }
}
