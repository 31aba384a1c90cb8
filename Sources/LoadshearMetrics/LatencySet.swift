import Histogram

/// The histogram type every latency figure uses.
package typealias LatencyHistogram = Histogram<UInt64>

/// Latency histograms in microseconds: 1 µs … 1 h at 3 significant digits, so percentiles
/// are exact to 0.1% and histograms from different shards (or runs) merge exactly.
package struct LatencySet: Sendable, Codable, Equatable {
    package static let highest: UInt64 = 3_600_000_000

    package static func empty() -> Histogram<UInt64> {
        Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: .three)
    }

    package var connect = LatencySet.empty()
    package var send = LatencySet.empty()
    package var read = LatencySet.empty()

    package init() {}

    package mutating func add(_ other: LatencySet) {
        connect.add(other.connect)
        send.add(other.send)
        read.add(other.read)
    }

    package enum Kind: String, CaseIterable, Sendable {
        case connect, send, read
    }

    package subscript(kind kind: Kind) -> Histogram<UInt64> {
        switch kind {
        case .connect: connect
        case .send: send
        case .read: read
        }
    }

    package static func == (a: LatencySet, b: LatencySet) -> Bool {
        Kind.allCases.allSatisfy { k in
            a[kind: k].totalCount == b[kind: k].totalCount
                && Array(a[kind: k].recordedValues().map { [$0.value, $0.count] })
                    == Array(b[kind: k].recordedValues().map { [$0.value, $0.count] })
        }
    }
}

extension LatencySet {
    /// Empties every histogram, keeping its storage.
    package mutating func reset() {
        connect.reset()
        send.reset()
        read.reset()
    }
}
