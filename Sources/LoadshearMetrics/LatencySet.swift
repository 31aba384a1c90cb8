import Histogram

/// The histogram type every latency figure uses.
public typealias LatencyHistogram = Histogram<UInt64>

/// Latency histograms in microseconds: 1 µs … 1 h at 3 significant digits, so percentiles
/// are exact to 0.1% and histograms from different shards (or runs) merge exactly.
public struct LatencySet: Sendable, Codable, Equatable {
    public static let highest: UInt64 = 3_600_000_000

    public static func empty() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: .three)
    }

    public var connect = LatencySet.empty()
    public var send = LatencySet.empty()
    public var read = LatencySet.empty()

    public init() {}

    public mutating func add(_ other: LatencySet) {
        connect.add(other.connect)
        send.add(other.send)
        read.add(other.read)
    }

    public enum Kind: String, CaseIterable, Sendable {
        case connect, send, read
    }

    public subscript(kind kind: Kind) -> Histogram<UInt64> {
        switch kind {
        case .connect: connect
        case .send: send
        case .read: read
        }
    }

    public static func == (a: LatencySet, b: LatencySet) -> Bool {
        Kind.allCases.allSatisfy { k in
            a[kind: k].totalCount == b[kind: k].totalCount
                && Array(a[kind: k].recordedValues().map { [$0.value, $0.count] }) == Array(b[kind: k].recordedValues().map { [$0.value, $0.count] })
        }
    }
}

extension LatencySet {
    /// Empties every histogram, keeping its storage.
    public mutating func reset() {
        connect.reset()
        send.reset()
        read.reset()
    }
}
