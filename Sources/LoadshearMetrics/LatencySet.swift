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
    /// until the first value is recorded into it, which copies the counts with one `memcpy`
    /// (inlined, specialized code).
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
    package mutating func add(_ other: LatencySet) {
        response.add(other.response)
        connect.add(other.connect)
        handshake.add(other.handshake)
        send.add(other.send)
        read.add(other.read)
        lag.add(other.lag)
        jitter.add(other.jitter)
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
    /// Empties every histogram: at once, by sharing the empty template (see ``empty()``).
    package mutating func reset() {
        // An untouched histogram keeps its own storage; a used one takes the template's.
        func clear(_ h: inout Histogram<UInt64>) { if h.totalCount > 0 { h = LatencySet.template } }
        clear(&response)
        clear(&connect)
        clear(&handshake)
        clear(&send)
        clear(&read)
        clear(&lag)
        clear(&jitter)
    }
}
