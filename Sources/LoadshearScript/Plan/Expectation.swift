/// (ext) One EXPECT threshold, checked: a metric, a comparison and a value in the metric's
/// unit. The run's figures are compared with it at the end (`ThresholdCheck` in the
/// commands); the plan only knows what each name means and which runs can produce it.
package struct Expectation: Sendable, Equatable {
    /// Latency histograms a threshold can name.
    package enum LatencyKind: String, Sendable, CaseIterable {
        case response, connect, handshake, send, read, lag, jitter
    }

    /// Figures read from a latency histogram.
    package enum Statistic: String, Sendable, CaseIterable {
        case p50, p90, p99, p999, max, mean
    }

    /// Counters a threshold can name (the name is the script's spelling).
    package enum Count: String, Sendable, CaseIterable {
        case sent, read, requests, replies, timeouts, unmatched, duplicates
        case connectFailed = "connect.failed"
        case connectOK = "connect.ok"
        case protocolErrors = "protocol_errors"
        case handlerTraps = "handler.traps"
        case bytesSent = "bytes.sent"
        case bytesRead = "bytes.read"
        case repliesReordered = "replies.reordered"
        case seqReceived = "seq.received"
        case seqLost = "seq.lost"
        case seqReordered = "seq.reordered"
        case seqDuplicated = "seq.duplicated"

        /// What a percentage of this counter is relative to; nil when a percentage has no
        /// meaning for it.
        package var percentBase: PercentBase? {
            switch self {
            case .replies, .timeouts, .unmatched, .duplicates, .repliesReordered: .requests
            case .connectFailed, .connectOK: .connectsAttempted
            case .seqLost, .seqReordered, .seqDuplicated: .sequenceExpected
            default: nil
            }
        }

        /// True for the counters only RESPONSE produces.
        package var needsResponse: Bool {
            switch self {
            case .requests, .replies, .timeouts, .unmatched, .duplicates, .repliesReordered: true
            default: false
            }
        }

        /// True for the counters only SEQUENCE produces.
        package var needsSequence: Bool {
            switch self {
            case .seqReceived, .seqLost, .seqReordered, .seqDuplicated: true
            default: false
            }
        }
    }

    package enum PercentBase: String, Sendable {
        case requests
        case connectsAttempted = "connects attempted"
        /// Distinct sequence numbers received plus those lost.
        case sequenceExpected = "sequence numbers expected"
    }

    package enum Metric: Sendable, Equatable {
        case latency(LatencyKind, Statistic)
        case count(Count)
        /// A counter per second over the run.
        case rate(Count)
    }

    package enum Comparison: String, Sendable, CaseIterable {
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
        case equal = "="

        package func holds(_ value: Double, _ threshold: Double) -> Bool {
            switch self {
            case .less: value < threshold
            case .lessOrEqual: value <= threshold
            case .greater: value > threshold
            case .greaterOrEqual: value >= threshold
            case .equal: value == threshold
            }
        }
    }

    /// The threshold in the metric's unit: nanoseconds for latencies, a count, a
    /// percentage (0–100) of `percentBase`, or a rate per second.
    package enum Threshold: Sendable, Equatable {
        case nanoseconds(Int64)
        case number(Double)
        case percent(Double)
        case perSecond(Double)
    }

    package var metric: Metric
    package var comparison: Comparison
    package var threshold: Threshold
    /// As written in the script, spacing normalised: `response.p99 < 20ms`.
    package var text: String
    package var line: Int

    package init(metric: Metric, comparison: Comparison, threshold: Threshold, text: String, line: Int) {
        self.metric = metric
        self.comparison = comparison
        self.threshold = threshold
        self.text = text
        self.line = line
    }

    /// Every metric name a script may use, for "did you mean" and the docs.
    package static let metricNames: [String] = {
        var names: [String] = []
        for k in LatencyKind.allCases {
            for s in Statistic.allCases { names.append("\(k.rawValue).\(s.rawValue)") }
        }
        for c in Count.allCases {
            names.append(c.rawValue)
            names.append(c.rawValue + ".rate")
        }
        return names
    }()

    /// Reads a metric name; nil when it is not one.
    package static func metric(named name: String) -> Metric? {
        if name.hasSuffix(".rate"), let c = Count(rawValue: String(name.dropLast(5))) { return .rate(c) }
        if let c = Count(rawValue: name) { return .count(c) }
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2, let k = LatencyKind(rawValue: parts[0]), let s = Statistic(rawValue: parts[1]) {
            return .latency(k, s)
        }
        return nil
    }
}

/// (ext) Rates in scripts: `50/s`, `0.5/s`, `30/m` (per minute), as payloads or events per
/// second.
package enum RateLiteral {
    package enum ParseError: Error, Equatable {
        /// No `/s` or `/m`.
        case noUnit
        case badUnit(String)
        case malformed
    }

    /// Per-second value of a rate token's text.
    package static func parse(_ text: String) -> Result<Double, ParseError> {
        guard let slash = text.firstIndex(of: "/") else { return .failure(.noUnit) }
        let number = text[..<slash]
        let unit = text[text.index(after: slash)...]
        guard let v = decimal(number) else { return .failure(.malformed) }
        switch unit {
        case "s": return .success(v)
        case "m": return .success(v / 60)
        default: return .failure(.badUnit(String(unit)))
        }
    }

    /// A plain decimal number: digits with at most one point (no sign, no exponent).
    package static func decimal<S: StringProtocol>(_ s: S) -> Double? {
        var dots = 0
        for c in s.utf8 {
            if c == UInt8(ascii: ".") {
                dots += 1
            } else if c < 0x30 || c > 0x39 {
                return nil
            }
        }
        guard dots <= 1, s.first != ".", s.last != "." else { return nil }
        return Double(String(s))
    }
}

/// (ext) An expectation travels in the JSON report so `loadshear merge` can check it on the
/// merged result: `{"metric": "response.p99", "comparison": "<", "unit": "ns", "value":
/// 20000000, "text": "response.p99 < 20ms", "line": 12}`.
extension Expectation: Codable {
    private enum Keys: String, CodingKey {
        case metric, comparison, unit, value, text, line
    }

    /// The metric as scripts spell it: `response.p99`, `timeouts`, `sent.rate`.
    package var metricName: String {
        switch metric {
        case .latency(let k, let s): "\(k.rawValue).\(s.rawValue)"
        case .count(let c): c.rawValue
        case .rate(let c): c.rawValue + ".rate"
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(metricName, forKey: .metric)
        try c.encode(comparison.rawValue, forKey: .comparison)
        switch threshold {
        case .nanoseconds(let v):
            try c.encode("ns", forKey: .unit)
            try c.encode(Double(v), forKey: .value)
        case .number(let v):
            try c.encode("number", forKey: .unit)
            try c.encode(v, forKey: .value)
        case .percent(let v):
            try c.encode("percent", forKey: .unit)
            try c.encode(v, forKey: .value)
        case .perSecond(let v):
            try c.encode("perSecond", forKey: .unit)
            try c.encode(v, forKey: .value)
        }
        try c.encode(text, forKey: .text)
        try c.encode(line, forKey: .line)
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let name = try c.decode(String.self, forKey: .metric)
        guard let metric = Expectation.metric(named: name) else {
            throw DecodingError.dataCorruptedError(forKey: .metric, in: c, debugDescription: "unknown metric \(name)")
        }
        let op = try c.decode(String.self, forKey: .comparison)
        guard let comparison = Comparison(rawValue: op) else {
            throw DecodingError.dataCorruptedError(
                forKey: .comparison, in: c, debugDescription: "unknown comparison \(op)")
        }
        let value = try c.decode(Double.self, forKey: .value)
        let threshold: Threshold
        switch try c.decode(String.self, forKey: .unit) {
        case "ns":
            guard let ns = Int64(exactly: value.rounded()) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .value, in: c, debugDescription: "\(value) ns is out of range")
            }
            threshold = .nanoseconds(ns)
        case "number": threshold = .number(value)
        case "percent": threshold = .percent(value)
        case "perSecond": threshold = .perSecond(value)
        case let u:
            throw DecodingError.dataCorruptedError(forKey: .unit, in: c, debugDescription: "unknown unit \(u)")
        }
        self.init(
            metric: metric, comparison: comparison, threshold: threshold,
            text: try c.decode(String.self, forKey: .text), line: try c.decode(Int.self, forKey: .line))
    }
}
