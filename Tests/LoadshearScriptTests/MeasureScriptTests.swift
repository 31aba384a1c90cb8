import LoadshearTestSupport
import Testing

@testable import LoadshearScript

/// (ext) PACE, RESPONSE, TIMEOUT and EXPECT in scripts: what they mean, and a located error
/// for each way to get them wrong.
@Suite struct MeasureScriptTests {
    /// A request/response script; `settings`, `actions` and `expect` are spliced in.
    /// Lines: 1 SETTINGS, 2-8 fields, 9 extra settings, 10 '}', 11 ORCHESTRATOR, 12 CREATE,
    /// 13 CONNECT, 14 SEND, 15+ actions.
    static func measured(
        settings: String = "    RESPONSE = 8:8 \"big\"", actions: String = "    PACE 0:10 50/s",
        expect: String = "", counter: String = " COUNTER 8:8 \"big\":1"
    ) -> String {
        """
        SETTINGS t {
            SESSION = "TCP"
            PORT = 5000
            READ = "true"
            HEADERSIZE = 8
            BODYMAX = 64
            ENDPOINTS { 127.0.0.1 }
            PACKETS { p1 : "ping.bin" }
        \(settings)
        }
        ORCHESTRATOR t {
            CREATE 10 OFFSET 0ms
            CONNECT 0:10
            SEND 0:10 p1 COPIES 5\(counter)
        \(actions)
        }
        \(expect)
        """
    }

    @Test func paceRatesRampsAndUnitsArePlanned() throws {
        let (p, rendered, _) = plan(
            Self.measured(
                actions: """
                        PACE 0:5 0.5/s
                        PACE 5:10 30/m TO 120/m OVER 1m
                        PACE 0:5 0/s OFFSET 2s
                    """))
        let plan = try #require(p, "\(rendered)")
        let paces = plan.actions.compactMap { a -> PaceSpec? in
            if case .pace(let s) = a.kind { return s }
            return nil
        }
        #expect(
            paces == [PaceSpec(rate: 0.5), PaceSpec(rate: 0.5, target: 2, ramp: 60_000_000_000), PaceSpec(rate: 0)])
        #expect(plan.settings.response == .field(HeaderLength(offset: 8, size: 8, bigEndian: true)))
        #expect(plan.settings.responseTimeout == 5_000_000_000)
    }

    @Test func theDryRunShowsPhasesResponseAndThresholds() throws {
        let (p, rendered, _) = plan(
            Self.measured(
                settings: "    RESPONSE = \"in-order\"\n    TIMEOUT = 2s",
                actions: "    PACE 0:10 50/s\n    DISCONNECT 0:10 OFFSET 10s",
                expect: "EXPECT {\n    response.p99 < 20ms\n    timeouts <= 0.1%\n}"))
        let text = try #require(p, "\(rendered)").dryRunText()
        #expect(text.contains("response      in order"))
        #expect(text.contains("timeout       2s"))
        #expect(text.contains("PACE       sessions 0:10 (0-9, 10 sessions) 50/s per session"))
        // 10 sessions × 50/s for 10 s, capped by their 5-payload lists (no REPEAT).
        #expect(text.contains("50/s per session, 500/s in all, ~50 payloads"), "\(text)")
        #expect(text.contains("response.p99 < 20ms  (line 20)"))
        #expect(text.contains("timeouts <= 0.1%  (line 21)"))
    }

    @Test func expectationsHaveTheirUnits() throws {
        let (p, rendered, _) = plan(
            Self.measured(
                expect: """
                    EXPECT {
                        response.p99 < 20ms
                        lag.max <= 1.5ms
                        timeouts < 0.1%
                        connect.failed = 0
                        sent.rate >= 9000/s
                        bytes.sent > 1MiB
                    }
                    """))
        let e = try #require(p, "\(rendered)").expectations
        #expect(
            e.map(\.threshold) == [
                .nanoseconds(20_000_000), .nanoseconds(1_500_000), .percent(0.1), .number(0), .perSecond(9000),
                .number(1_048_576),
            ])
        #expect(e.map(\.comparison) == [.less, .lessOrEqual, .less, .equal, .greaterOrEqual, .greater])
        #expect(e[2].text == "timeouts < 0.1%")
    }

    /// A `//` comment right after a rate or a percentage still ends the value.
    @Test func commentsAfterRatesStillWork() {
        let (p, rendered, _) = plan(
            Self.measured(
                actions: "    PACE 0:10 50/s// fifty", expect: "EXPECT {\n    timeouts < 1%// one\n}"))
        #expect(p != nil, "\(rendered)")
    }

    /// An EXPECT block whose one threshold is malformed has its error, not also a warning
    /// that it is empty; a block that is empty gets the warning.
    @Test func aMalformedThresholdIsNotAnEmptyBlock() {
        let (bad, rendered, _) = plan(Self.measured(expect: "EXPECT {\n    send.p99 == 20ms\n}"))
        #expect(bad == nil && !rendered.contains("EXPECT block is empty"), "\(rendered)")
        let (empty, warned, _) = plan(Self.measured(expect: "EXPECT {\n}"))
        #expect(empty != nil && warned.contains("EXPECT block is empty"), "\(warned)")
    }

    static let rules: [Rule] = [
        Rule(
            name: "rate without unit", script: measured(actions: "    PACE 0:10 50"),
            message: "the PACE rate needs a unit: write 50/s (per second) or 50/m (per minute)", line: 15),
        Rule(
            name: "rate unit", script: measured(actions: "    PACE 0:10 50/h"),
            message: "unknown rate unit '/h' in '50/h'; expected /s or /m", line: 15),
        Rule(
            name: "absurd rate", script: measured(actions: "    PACE 0:10 20000000/s"),
            message: "more than 10000000/s per session; for back-to-back sending use FLOOD", line: 15),
        Rule(
            name: "OVER without TO", script: measured(actions: "    PACE 0:10 5/s OVER 1s"),
            message: "OVER needs TO first", line: 15),
        Rule(
            name: "TO without OVER", script: measured(actions: "    PACE 0:10 5/s TO 10/s"),
            message: "expected OVER and the ramp's duration after TO '10/s'", line: 15),
        Rule(
            name: "zero ramp", script: measured(actions: "    PACE 0:10 5/s TO 10/s OVER 0s"),
            message: "the ramp after OVER must be longer than 0", line: 15),
        Rule(
            name: "PACE before CONNECT", script: measured(actions: "    PACE 0:11 5/s"),
            message: "goes past the 10 created sessions", line: 15),
        Rule(
            name: "RESPONSE without COUNTER", script: measured(counter: ""),
            message: "RESPONSE matches replies to requests, and a request is a payload with a COUNTER", line: 9),
        Rule(
            name: "RESPONSE id size", script: measured(settings: "    RESPONSE = 8:9 \"big\""),
            message: "the RESPONSE id is 1 to 8 bytes, got 9", line: 9),
        Rule(
            name: "RESPONSE choice", script: measured(settings: "    RESPONSE = \"In-Order\""),
            message: "did you mean \"in-order\"?", line: 9),
        Rule(
            name: "RESPONSE without READ",
            script: measured(settings: "    RESPONSE = 8:8 \"big\"\n    READ = \"false\""),
            message: "READ is set twice", line: 10),
        Rule(
            name: "TIMEOUT zero", script: measured(settings: "    RESPONSE = 8:8 \"big\"\n    TIMEOUT = 0ms"),
            message: "TIMEOUT must be longer than 0", line: 10),
        Rule(
            name: "unknown metric suggests", script: measured(expect: "EXPECT {\n    respons.p99 < 2ms\n}"),
            message: "unknown metric 'respons.p99'; did you mean response.p99?", line: 18),
        Rule(
            name: "response without RESPONSE",
            script: measured(settings: "", expect: "EXPECT {\n    response.p99 < 2ms\n}", counter: ""),
            message: "response.p99 needs RESPONSE in SETTINGS", line: 18),
        Rule(
            name: "latency needs a unit", script: measured(expect: "EXPECT {\n    connect.p99 < 20\n}"),
            message: "connect.p99 is a time: give a unit, such as 20ms", line: 18),
        Rule(
            name: "percentage without base", script: measured(expect: "EXPECT {\n    sent >= 90%\n}"),
            message: "a percentage of sent has no base", line: 18),
        Rule(
            name: "fraction of a count", script: measured(expect: "EXPECT {\n    sent = 1.5\n}"),
            message: "sent is a count: give a whole number below 9007199254740992, got '1.5'", line: 18),
        Rule(
            name: "count past 2^53", script: measured(expect: "EXPECT {\n    sent >= 99999999999999999999\n}"),
            message: "sent is a count: give a whole number", line: 18),
        Rule(
            name: "rate value", script: measured(expect: "EXPECT {\n    sent.rate >= 5ms\n}"),
            message: "sent.rate is a rate", line: 18),
        Rule(
            name: "missing comparison", script: measured(expect: "EXPECT {\n    timeouts 5\n}"),
            message: "expected a comparison (<, <=, >, >= or =) after 'timeouts'", line: 18),
        Rule(
            name: "SEQUENCE size", script: measured(settings: "    SEQUENCE = 0:9 \"big\""),
            message: "the sequence number is 1 to 8 bytes, got 9", line: 9),
        Rule(
            name: "SEQUENCE byte order", script: measured(settings: "    SEQUENCE = 0:4 \"bigg\""),
            message: "the SEQUENCE byte order must be \"big\" or \"little\", got \"bigg\"", line: 9),
        Rule(
            name: "SEQUENCE without offset", script: measured(settings: "    SEQUENCE = \"big\""),
            message: "expected ':' between the offset and the size of the sequence number", line: 9),
        Rule(
            name: "jitter without SEQUENCE", script: measured(expect: "EXPECT {\n    jitter.p99 < 2ms\n}"),
            message: "jitter.p99 needs SEQUENCE in SETTINGS", line: 18),
        Rule(
            name: "seq.lost without SEQUENCE", script: measured(expect: "EXPECT {\n    seq.lost < 1%\n}"),
            message: "seq.lost needs SEQUENCE in SETTINGS", line: 18),
        Rule(
            name: "two EXPECT blocks",
            script: measured(expect: "EXPECT {\n    timeouts = 0\n}\nEXPECT {\n    timeouts = 0\n}"),
            message: "a script has one EXPECT block; the first is at line 17", line: 20),
    ]

    @Test(arguments: rules)
    func ruleIsEnforcedAtTheRightLine(_ rule: Rule) {
        let (p, rendered, bag) = plan(rule.script)
        #expect(p == nil, "expected errors for \(rule.name)")
        let matching = bag.diagnostics.filter { $0.severity == .error && $0.message.contains(rule.message) }
        #expect(!matching.isEmpty, "no error containing '\(rule.message)'; got:\n\(rendered)")
        let file = SourceFile(path: "x", text: rule.script)
        if let first = matching.first {
            #expect(file.location(of: first.range.start).line == rule.line, "\(rendered)")
        }
    }

    /// (ext) SEQUENCE: planned with its field, shown by the dry run, its metrics accepted.
    @Test func sequenceIsPlannedAndShown() throws {
        let (p, rendered, _) = plan(
            Self.measured(
                settings: "    SEQUENCE = 8:2 \"little\"",
                expect: "EXPECT {\n    seq.lost < 0.1%\n    seq.reordered = 0\n    jitter.p99 < 5ms\n}"))
        let plan = try #require(p, "\(rendered)")
        #expect(plan.settings.sequence == HeaderLength(offset: 8, size: 2, bigEndian: false))
        #expect(plan.expectations.count == 3)
        #expect(plan.dryRunText().contains("sequence      number at message bytes 8..<10, little-endian"))
        let off = Self.measured(settings: "    SEQUENCE = 8:4 \"big\"")
            .replacingOccurrences(of: "READ = \"true\"", with: "READ = \"false\"")
        let (q, text, _) = LoadshearScriptTests.plan(off)
        #expect(q == nil)
        #expect(text.contains("SEQUENCE reads numbers from the messages Loadshear reads, so it needs READ = \"true\""))
    }

    /// RESPONSE with READ off is an error at RESPONSE.
    @Test func responseNeedsRead() {
        let text = Self.measured().replacingOccurrences(of: "READ = \"true\"", with: "READ = \"false\"")
        let (p, rendered, _) = plan(text)
        #expect(p == nil)
        #expect(rendered.contains("RESPONSE matches the replies Loadshear reads, so it needs READ = \"true\""))
    }
}
