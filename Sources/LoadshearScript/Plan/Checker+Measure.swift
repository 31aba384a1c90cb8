/// (ext) The checks for measuring the server: PACE rates, RESPONSE and TIMEOUT, and the
/// EXPECT thresholds.
extension Checker {
    /// The most a PACE may ask of one session: beyond this the schedule is not a pace any
    /// more but a flood (use FLOOD).
    static let maxPacePerSession = 10_000_000.0

    /// A PACE rate (`50/s`, `0.5/s`, `30/m`) in payloads per second, with a located error.
    func paceRate(_ t: Token, _ what: String, _ d: inout DiagnosticBag) -> Double? {
        guard let s = valueText(t) else {
            d.error("\(what) must be a rate such as 50/s, got \(t.kind.spelling)", at: t.range)
            return nil
        }
        switch RateLiteral.parse(s) {
        case .success(let r):
            if r > Self.maxPacePerSession {
                d.error(
                    "\(what) \(s) is more than 10000000/s per session; for back-to-back sending use FLOOD",
                    at: t.range)
                return nil
            }
            return r
        case .failure(.noUnit):
            d.error("\(what) needs a unit: write \(s)/s (per second) or \(s)/m (per minute)", at: t.range)
        case .failure(.badUnit(let u)):
            d.error("unknown rate unit '/\(u)' in '\(s)'; expected /s or /m", at: t.range)
        case .failure(.malformed):
            d.error("'\(s)' is not a rate; expected a number and /s or /m, such as 50/s or 0.5/s", at: t.range)
        }
        return nil
    }

    /// `PACE a:b rate [TO rate OVER duration]`.
    func checkPace(_ p: PaceSyntax, _ d: inout DiagnosticBag) -> PaceSpec? {
        guard let rate = paceRate(p.rate, "the PACE rate", &d) else { return nil }
        guard let t = p.target else { return PaceSpec(rate: rate) }
        guard let target = paceRate(t, "the rate after TO", &d), let o = p.over,
            let ramp = duration(o, "the ramp after OVER", &d)
        else { return nil }
        if ramp == 0 {
            d.error("the ramp after OVER must be longer than 0; for a step, use a second PACE", at: o.range)
            return nil
        }
        return PaceSpec(rate: rate, target: target, ramp: ramp)
    }

    /// RESPONSE, TIMEOUT and SEQUENCE fields.
    func checkMeasureField(_ field: FieldSyntax, _ f: inout Fields, _ d: inout DiagnosticBag) {
        switch (field.key, field.value) {
        case (.RESPONSE, .scalar(let t)):
            if quoted(t, "RESPONSE", ["in-order"], &d) != nil {
                f.response = .inOrder
                f.responseField = field
            }
        case (.RESPONSE, .headerLength(let o, let s, let e)):
            if let id = byteField(o, s, e, "RESPONSE", sizeError: "the RESPONSE id is 1 to 8 bytes", &d) {
                f.response = .field(id)
                f.responseField = field
            }
        case (.SEQUENCE, .headerLength(let o, let s, let e)):
            if let n = byteField(o, s, e, "SEQUENCE", sizeError: "the sequence number is 1 to 8 bytes", &d) {
                f.sequence = n
                f.sequenceField = field
            }
        case (.TIMEOUT, .scalar(let t)):
            guard let v = duration(t, "TIMEOUT", &d) else { return }
            if v == 0 {
                d.error("TIMEOUT must be longer than 0", at: t.range)
            } else if v > 3_600_000_000_000 {
                d.error("TIMEOUT must be at most 1h (longer than any response time can be recorded)", at: t.range)
            } else {
                f.responseTimeout = v
                f.timeoutField = field
            }
        default:
            d.error(
                "\(field.key.rawValue) expects a single value, such as \(field.key.rawValue) = …", at: field.keyRange)
        }
    }

    /// `offset:size "endian"` (HEADER_LENGTH, RESPONSE, SEQUENCE): a number of 1 to 8 bytes at
    /// a byte offset; nil after a located error.
    func byteField(
        _ o: Token, _ s: Token, _ e: Token, _ name: String, sizeError: String, _ d: inout DiagnosticBag
    ) -> HeaderLength? {
        let off = integer(o, "the \(name) offset", &d)
        let size = integer(s, "the \(name) size", &d)
        let order = quoted(e, "the \(name) byte order", ["big", "little"], &d)
        if let size, !(1...8).contains(size) {
            d.error("\(sizeError), got \(size)", at: s.range)
            return nil
        }
        guard let off, let size, let order else { return nil }
        return HeaderLength(offset: off, size: size, bigEndian: order == "big")
    }

    /// What RESPONSE and SEQUENCE need from the other fields.
    func checkResponseRules(_ f: Fields, _ d: inout DiagnosticBag) {
        if let q = f.sequenceField, let n = f.sequence {
            if !f.read {
                d.error(
                    "SEQUENCE reads numbers from the messages Loadshear reads, so it needs READ = \"true\" (and, for TCP, HEADERSIZE and BODYMAX to frame them)",
                    at: q.keyRange)
            } else if let bodyMax = f.bodyMax, n.offset + n.size > (f.session == .udp ? 0 : f.headerSize ?? 0) + bodyMax
            {
                d.warning(
                    "SEQUENCE bytes \(n.offset)..<\(n.offset + n.size) lie beyond the largest message BODYMAX allows: no message will carry a number",
                    at: q.valueRange)
            }
        }
        if let t = f.timeoutField, f.responseField == nil {
            d.warning("TIMEOUT has no effect without RESPONSE", at: t.keyRange)
        }
        guard let r = f.responseField else { return }
        if !f.read {
            d.error(
                "RESPONSE matches the replies Loadshear reads, so it needs READ = \"true\" (and, for TCP, HEADERSIZE and BODYMAX to frame them)",
                at: r.keyRange)
        }
        if case .field(let id) = f.response, let bodyMax = f.bodyMax,
            id.offset + id.size > (f.session == .udp ? 0 : f.headerSize ?? 0) + bodyMax
        {
            d.warning(
                "RESPONSE bytes \(id.offset)..<\(id.offset + id.size) lie beyond the largest frame BODYMAX allows: every reply will be unmatched",
                at: r.valueRange)
        }
    }

    /// The EXPECT block: each threshold's metric, comparison and value, and whether this
    /// run can produce the metric at all.
    func checkExpect(_ blocks: [ExpectSyntax], _ f: Fields, _ d: inout DiagnosticBag) -> [Expectation] {
        guard let block = blocks.first else { return [] }
        for extra in blocks.dropFirst() {
            d.error(
                "a script has one EXPECT block; the first is at line \(lineOf(block.keywordRange))",
                at: extra.keywordRange)
        }
        // (A block whose thresholds the parser refused is not empty: its errors say why.)
        if block.items.isEmpty, !d.hasErrors {
            d.warning("the EXPECT block is empty; nothing will be checked", at: block.keywordRange)
        }
        var out: [Expectation] = []
        for item in block.items {
            if let e = checkExpectation(item, f, &d) { out.append(e) }
        }
        return out
    }

    private func checkExpectation(
        _ item: ExpectationSyntax, _ f: Fields,
        _ d: inout DiagnosticBag
    ) -> Expectation? {
        guard case .identifier(let name) = item.metric.kind else { return nil }
        guard let metric = Expectation.metric(named: name) else {
            var message = "unknown metric '\(name)'"
            if let s = Suggest.closest(to: name, in: Expectation.metricNames.map { $0.uppercased() }) {
                message += "; did you mean \(s.lowercased())?"
            } else {
                message +=
                    "; expected response|connect|handshake|send|read|lag|jitter with .p50 .p90 .p99 .p999 .max .mean, or a counter such as sent, timeouts, connect.failed (see docs/language.md)"
            }
            d.error(message, at: item.metric.range)
            return nil
        }
        let noResponse =
            "\(name) needs RESPONSE in SETTINGS: without it no reply is matched to a request, so the run cannot measure it"
        let noSequence =
            "\(name) needs SEQUENCE in SETTINGS: without it no message's sequence number is read, so the run cannot measure it"
        switch metric {
        case .latency(.response, _):
            if f.response == nil { d.error(noResponse, at: item.metric.range) }
        case .latency(.read, _):
            if !f.read { d.error("\(name) needs READ = \"true\": nothing is read otherwise", at: item.metric.range) }
        case .latency(.handshake, _):
            if f.session != .tls {
                d.error("\(name) needs SESSION = \"TLS\": only TLS sessions have a handshake", at: item.metric.range)
            }
        case .latency(.jitter, _):
            if f.sequence == nil { d.error(noSequence, at: item.metric.range) }
        case .count(let c), .rate(let c):
            if c.needsResponse, f.response == nil { d.error(noResponse, at: item.metric.range) }
            if c.needsSequence, f.sequence == nil { d.error(noSequence, at: item.metric.range) }
        default:
            break
        }
        let opText: String
        switch item.op.kind {
        case .comparison(let s): opText = s
        default: opText = "="
        }
        let comparison = Expectation.Comparison(rawValue: opText)!
        guard let text = valueText(item.value) else {
            d.error(
                "expected a number, a duration, a percentage or a rate, got \(item.value.kind.spelling)",
                at: item.value.range)
            return nil
        }
        guard let threshold = threshold(text, for: metric, comparison, name, item.value, &d) else { return nil }
        return Expectation(
            metric: metric, comparison: comparison, threshold: threshold, text: "\(name) \(opText) \(text)",
            line: lineOf(item.metric.range))
    }

    /// Count thresholds stay below 2^53, where a double holds every integer exactly.
    static let countLimit: Double = 9_007_199_254_740_992

    /// The value in the metric's unit, or a located error that says which units fit.
    private func threshold(
        _ text: String, for metric: Expectation.Metric, _ comparison: Expectation.Comparison, _ name: String,
        _ t: Token, _ d: inout DiagnosticBag
    ) -> Expectation.Threshold? {
        switch metric {
        case .latency:
            if RateLiteral.decimal(text) != nil {
                d.error(
                    "\(name) is a time: give a unit, such as \(text)ms (units: \(DurationLiteral.unitList))",
                    at: t.range)
                return nil
            }
            return duration(t, name, &d).map { .nanoseconds($0) }
        case .rate:
            if let v = RateLiteral.decimal(text) { return .perSecond(v) }
            switch RateLiteral.parse(text) {
            case .success(let v): return .perSecond(v)
            default:
                d.error("\(name) is a rate: write a number per second such as 9000/s (or /m)", at: t.range)
                return nil
            }
        case .count(let c):
            if text.hasSuffix("%") {
                guard let v = RateLiteral.decimal(text.dropLast()), v <= 100 else {
                    d.error("'\(text)' is not a percentage from 0% to 100%", at: t.range)
                    return nil
                }
                guard c.percentBase != nil else {
                    d.error(
                        "a percentage of \(name) has no base; percentages apply to replies, timeouts, unmatched, duplicates (of requests) and connect.failed, connect.ok (of connects attempted)",
                        at: t.range)
                    return nil
                }
                return .percent(v)
            }
            if let v = RateLiteral.decimal(text) {
                // Compared exactly: below 2^53, where a double holds every integer. A count is
                // whole, so `=` with a fraction could never hold (`timeouts < 0.5` can).
                guard v < Self.countLimit, comparison != .equal || v == v.rounded() else {
                    d.error(
                        "\(name) is a count: give a whole number below \(Int64(Self.countLimit)), got '\(text)'",
                        at: t.range)
                    return nil
                }
                return .number(v)
            }
            if c == .bytesSent || c == .bytesRead, case .success(let v) = SizeLiteral.parse(text) {
                return .number(Double(v))
            }
            d.error(
                "\(name) is a count: give a number\(c.percentBase != nil ? " or a percentage" : ""), got '\(text)'",
                at: t.range)
            return nil
        }
    }
}
