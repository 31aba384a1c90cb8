import Foundation
import LoadshearMetrics
import LoadshearScript
import LoadshearTargets
import LoadshearTestSupport
import NIOCore
import Testing

@testable import LoadshearEngine

/// (ext) PACE, RESPONSE and TIMEOUT against independent in-process servers: what is counted
/// must equal what the server did, whatever the timing.
@Suite struct MeasureTests {
    /// A 16-byte request: an 8-byte header whose bytes 4..<8 say "8 more bytes", then the
    /// 8-byte id the COUNTER writes.
    static let request: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 8] + [UInt8](repeating: 0, count: 8)

    static func id(_ frame: [UInt8]) -> UInt64 {
        frame[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A request/response script: `sessions` sessions, each with `copies` requests paced at
    /// `pace`, then `tail` of quiet before DISCONNECT (long enough for TIMEOUT to pass).
    static func script(
        sessions: Int = 4, copies: Int, pace: String = "200/s", response: String = "8:8 \"big\"",
        timeout: String = "2s", tail: String = "1h"
    ) -> String {
        """
        SETTINGS m {
            SESSION = "TCP"
            PORT = @PORT@
            READ = "true"
            HEADERSIZE = 8
            BODYMAX = 64
            HEADER_LENGTH = 4:4 "big"
            RESPONSE = \(response)
            TIMEOUT = \(timeout)
            ENDPOINTS { 127.0.0.1 }
            PACKETS { req : "req.bin" }
        }
        ORCHESTRATOR m {
            CREATE \(sessions) OFFSET 0ms
            CONNECT 0:\(sessions) OFFSET 1ms
            SEND 0:\(sessions) req COPIES \(copies) COUNTER 8:8 "big":1 OFFSET 20ms
            PACE 0:\(sessions) \(pace) OFFSET 0ms
            DISCONNECT 0:\(sessions) OFFSET \(tail)
        }
        """
    }

    /// CHURN under RESPONSE against a server that answers each request after 50 ms: the
    /// requests each churn close cuts off are counted as cut off, never as the server's
    /// timeouts (TIMEOUT is 5 s: none of its own), and the sums hold. In order and by id.
    @Test(arguments: ["\"in-order\"", "8:8 \"big\""])
    func churnCutsOffRequestsInsteadOfTimingThemOut(response: String) async throws {
        var options = TargetOptions(kind: .echo)
        options.delayNanoseconds = 50_000_000
        let target = try await TargetServer.start(options)
        let text = Self.script(sessions: 2, copies: 1, pace: "100/s", response: response, timeout: "5s")
            .replacingOccurrences(of: "    DISCONNECT", with: "    CHURN 0:2 EVERY 200ms OFFSET 0ms\n    DISCONNECT")
            .replacingOccurrences(
                of: "PACKETS { req : \"req.bin\" }", with: "PACKETS { req : \"req.bin\" }\n    REPEAT = \"true\"")
        let plan = try makePlan(text, packets: ["req.bin": Self.request], port: target.port)
        let s = try await run(
            plan,
            until: { totals in
                await totals.wait(timeout: .seconds(60)) {
                    $0[.reconnects] >= 4 && $0[.requestsCutOff] > 0 && $0[.replies] >= 20
                }
            })
        await target.stop()
        #expect(s.totals[.timeouts] == 0, "\(s.totals)")
        expectRequestSums(s)
        expectConsistent(s)
    }

    /// The sums RESPONSE promises.
    func expectRequestSums(_ s: Snapshot, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let t = s.totals
        #expect(
            t[.requests] == t[.replies] + t[.timeouts] + t[.outstanding] + t[.requestsCutOff],
            "requests = replies + timeouts + outstanding + cut off", sourceLocation: sourceLocation)
        #expect(
            s.latency.response.totalCount == UInt64(t[.replies]), "one sample per answered request",
            sourceLocation: sourceLocation)
    }

    /// Every request answered: each gets exactly one response-time sample, and every paced
    /// payload one lag sample.
    @Test func everyAnsweredRequestIsOneSample() async throws {
        let server = try await RecordingServer.start(.answer(frameSize: 16) { [$0] })
        defer { Task { await server.shutdown() } }
        let plan = try makePlan(Self.script(copies: 25), packets: ["req.bin": Self.request], port: server.port)
        let s = try await run(plan) { totals in await totals.wait { $0[.replies] == 100 } }
        let t = s.totals
        #expect(t[.requests] == 100)
        #expect(t[.timeouts] == 0 && t[.unmatched] == 0 && t[.duplicates] == 0 && t[.outstanding] == 0)
        #expect(t[.pacedPayloads] == 100)
        #expect(s.latency.lag.totalCount >= 100)
        expectRequestSums(s)
        expectConsistent(s)
    }

    /// A server that drops known requests: exactly those time out; one that answers some twice:
    /// exactly those are duplicates.
    @Test func droppedRequestsTimeOutAndRepeatedRepliesAreDuplicates() async throws {
        // Ids are global across sessions: 0..<80. Drop the multiples of 8, answer multiples
        // of 5 twice.
        let server = try await RecordingServer.start(
            .answer(frameSize: 16) { frame in
                let id = Self.id(frame)
                if id % 8 == 0 { return [] }
                return id % 5 == 0 ? [frame, frame] : [frame]
            })
        defer { Task { await server.shutdown() } }
        let plan = try makePlan(Self.script(copies: 20), packets: ["req.bin": Self.request], port: server.port)
        let dropped = (0..<80).filter { $0 % 8 == 0 }.count
        let doubled = (0..<80).filter { $0 % 8 != 0 && $0 % 5 == 0 }.count
        let s = try await run(plan) { totals in
            await totals.wait { $0[.timeouts] == dropped && $0[.replies] == 80 - dropped }
        }
        let t = s.totals
        #expect(t[.timeouts] == dropped)
        #expect(t[.duplicates] == doubled)
        #expect(t[.unmatched] == 0)
        expectRequestSums(s)
    }

    /// Replies that cannot be matched are counted, never crash: an id field beyond the
    /// frame, and ids nobody sent.
    @Test(arguments: [false, true])
    func unmatchableRepliesAreCounted(shortFrames: Bool) async throws {
        let server = try await RecordingServer.start(
            .answer(frameSize: 16) { frame in
                // A header-only frame (no id), or the id plus 1,000,000 (never sent).
                if shortFrames { return [[0, 0, 0, 0, 0, 0, 0, 0]] }
                var f = frame
                let id = Self.id(frame) + 1_000_000
                for i in 0..<8 { f[8 + i] = UInt8(truncatingIfNeeded: id >> (8 * (7 - UInt64(i)))) }
                return [f]
            })
        defer { Task { await server.shutdown() } }
        let plan = try makePlan(Self.script(copies: 10), packets: ["req.bin": Self.request], port: server.port)
        let s = try await run(plan) { totals in await totals.wait { $0[.unmatched] == 40 && $0[.timeouts] == 40 } }
        #expect(s.totals[.replies] == 0)
        #expect(s.totals[.unmatched] == 40)
        expectRequestSums(s)
    }

    /// Coordinated omission corrected: the server freezes for 400 ms once (its event loop
    /// blocked on request 10). Requests that were due during the freeze waited for it, each
    /// measured from its intended time, so many samples — not one — show the stall: at 200
    /// requests/s about 80 were due in it, waiting 400 ms down to 0. Bounds are lower bounds
    /// the freeze itself guarantees, whatever the machine's speed.
    @Test func aStallShowsInEveryRequestThatWasDueDuringIt() async throws {
        let server = try await RecordingServer.start(
            .answer(frameSize: 16) { frame in
                if Self.id(frame) == 10 { usleep(400_000) }
                return [frame]
            })
        defer { Task { await server.shutdown() } }
        let plan = try makePlan(
            Self.script(sessions: 1, copies: 200, pace: "200/s", timeout: "5s"), packets: ["req.bin": Self.request],
            port: server.port)
        let s = try await run(plan) { totals in await totals.wait { $0[.replies] == 200 } }
        let h = s.latency.response
        #expect(h.max >= 390_000, "the request that met the freeze waited for all of it")
        // Requests due in the first 300 ms of the freeze each waited at least 100 ms: about 60.
        let slow = h.recordedValues().filter { $0.value >= 100_000 }.reduce(0) { $0 + $1.count }
        #expect(slow >= 40, "\(slow) samples over 100 ms; without the correction there would be one")
        #expect(h.valueAtPercentile(90) >= 100_000)
    }

    /// A COUNTER narrower than the RESPONSE field is compared in its own width: the field's
    /// other bytes (here 0xAB, the packet's) do not spoil the match.
    @Test func aNarrowCounterMatchesInItsOwnWidth() async throws {
        let server = try await RecordingServer.start(.answer(frameSize: 16) { [$0] })
        defer { Task { await server.shutdown() } }
        let request: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 8, 0xAB, 0xAB, 0xAB, 0xAB, 0, 0, 0, 0]
        let text = Self.script(copies: 10).replacingOccurrences(
            of: "COUNTER 8:8 \"big\":1", with: "COUNTER 12:4 \"big\":1")
        let plan = try makePlan(text, packets: ["req.bin": request], port: server.port)
        let s = try await run(plan) { totals in await totals.wait { $0[.replies] == 40 } }
        #expect(s.totals[.requests] == 40 && s.totals[.unmatched] == 0)
        expectRequestSums(s)
    }

    /// In-order matching: each reply answers the oldest outstanding request.
    @Test func inOrderRepliesAnswerTheOldestRequest() async throws {
        let server = try await RecordingServer.start(.answer(frameSize: 16) { [$0] })
        defer { Task { await server.shutdown() } }
        let plan = try makePlan(
            Self.script(copies: 15, response: "\"in-order\""), packets: ["req.bin": Self.request], port: server.port)
        let s = try await run(plan) { totals in await totals.wait { $0[.replies] == 60 } }
        #expect(s.totals[.requests] == 60 && s.totals[.timeouts] == 0 && s.totals[.unmatched] == 0)
        expectRequestSums(s)
    }

    /// A server that never answers: requests time out once TIMEOUT has passed, and the
    /// session's table is emptied (outstanding back to 0).
    @Test func aSilentServerTimesEveryRequestOut() async throws {
        let server = try await RecordingServer.start(.record)
        defer { Task { await server.shutdown() } }
        let plan = try makePlan(
            Self.script(copies: 30, pace: "1000/s", timeout: "50ms"), packets: ["req.bin": Self.request],
            port: server.port)
        let s = try await run(plan) { totals in await totals.wait { $0[.timeouts] == 120 } }
        #expect(s.totals[.outstanding] == 0)
        #expect(s.totals[.replies] == 0)
        expectRequestSums(s)
    }

    /// PACE 0/s holds everything back; a FLOOD afterwards sends the whole list. Nothing
    /// paced is sent, so no payload lag is recorded.
    @Test func aZeroPacePausesUntilFlood() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS p {
                    SESSION = "TCP"
                    PORT = @PORT@
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR p {
                    CREATE 3 OFFSET 0ms
                    CONNECT 0:3 OFFSET 1ms
                    SEND 0:3 p COPIES 50 OFFSET 10ms
                    PACE 0:3 0/s OFFSET 0ms
                    FLOOD 0:3 OFFSET 300ms
                    DISCONNECT 0:3 OFFSET 1h
                }
                """, packets: ["p.bin": [1, 2, 3, 4]], port: server.port)
            let s = try await run(plan) { _ in
                await server.wait { c in c.count == 3 && c.allSatisfy { $0.bytes.count == 200 } }
            }
            #expect(s.totals[.packetsSent] == 150)
            #expect(s.totals[.pacedPayloads] == 0)
            #expect(s.totals[.pacedBehind] == 0)
        }
    }

    /// A schedule the socket cannot keep (a server that never reads, a huge rate): payloads
    /// fall behind and the run says so.
    @Test func anImpossiblePaceFallsBehind() async throws {
        try await withServer(.neverRead) { server in
            let plan = try makePlan(
                """
                SETTINGS p {
                    SESSION = "TCP"
                    PORT = @PORT@
                    REPEAT = "true"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR p {
                    CREATE 1 OFFSET 0ms
                    CONNECT 0:1 OFFSET 1ms
                    SEND 0:1 p COPIES 1 OFFSET 10ms
                    PACE 0:1 100000/s OFFSET 0ms
                    DISCONNECT 0:1 OFFSET 400ms
                }
                """, packets: ["p.bin": [UInt8](repeating: 7, count: 65_536)], port: server.port)
            let s = try await run(plan, configure: { $0.closeDeadline = .milliseconds(200) })
            #expect(s.totals[.pacedBehind] > 0)
            #expect(s.latency.lag.totalCount > 0)
        }
    }

    /// UDP: each echoed datagram answers its request.
    @Test func udpRepliesAreMatched() async throws {
        try await withUDPServer(.echo) { server in
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    READ = "true"
                    BODYMAX = 64
                    RESPONSE = 8:8 "big"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { req : "req.bin" }
                }
                ORCHESTRATOR u {
                    CREATE 2 OFFSET 0ms
                    CONNECT 0:2 OFFSET 1ms
                    SEND 0:2 req COPIES 20 COUNTER 8:8 "big":1 OFFSET 10ms
                    PACE 0:2 500/s OFFSET 0ms
                    DISCONNECT 0:2 OFFSET 1h
                }
                """, packets: ["req.bin": Self.request], port: server.port)
            let s = try await run(plan) { totals in await totals.wait { $0[.replies] == 40 } }
            #expect(s.totals[.requests] == 40 && s.totals[.unmatched] == 0)
            expectRequestSums(s)
        }
    }
}

/// (ext) The pace schedule's arithmetic.
@Suite struct PacerTests {
    @Test func aConstantRateDuesOnePayloadPerPeriod() {
        let p = Pacer(PaceSpec(rate: 100), phaseStart: 1_000_000_000, session: 0, of: 1)
        #expect(p.due(at: 999_999_999) == 0)
        #expect(p.due(at: 1_000_000_000) == 1)
        #expect(p.due(at: 1_000_000_000 + 9_999_999) == 1)
        #expect(p.due(at: 1_000_000_000 + 10_000_000) == 2)
        #expect(p.intended(3) == 1_030_000_000)
    }

    @Test func sessionsAreSpreadOverTheFirstPeriod() {
        let a = Pacer(PaceSpec(rate: 10), phaseStart: 0, session: 0, of: 4)
        let b = Pacer(PaceSpec(rate: 10), phaseStart: 0, session: 3, of: 4)
        #expect(a.intended(0) == 0)
        #expect(b.intended(0) == 75_000_000)
    }

    /// Over a ramp the payloads due are the rate's integral, and `due` and `intended` agree
    /// at every payload.
    @Test(arguments: [(10.0, 200.0), (200.0, 10.0), (0.0, 100.0)])
    func aRampIntegratesTheRate(from: Double, to: Double) {
        let p = Pacer(PaceSpec(rate: from, target: to, ramp: 2_000_000_000), phaseStart: 0, session: 0, of: 1)
        let total = (from + to) / 2 * 2  // payloads in the 2 s ramp
        #expect(abs(Double(p.due(at: 2_000_000_000)) - (total + 1)) <= 1)
        for k in [0, 1, 5, Int(total) - 1, Int(total) + 10] {
            let t = p.intended(k)
            #expect(p.due(at: t) >= k + 1, "payload \(k) is due at its own intended time")
            if t > 0 { #expect(p.due(at: t - 1) <= k + 1) }
        }
    }

    /// During a ramp the sessions are spread by a fraction of a payload, not by a period of
    /// the starting rate: together they send what the rate's integral says, however slow
    /// the ramp starts (from 0.001/s, a period is 1000 s).
    @Test(arguments: [(0.001, 100.0), (1.0, 1001.0), (10.0, 110.0), (100.0, 100.0)])
    func sessionsOfARampTogetherSendItsIntegral(from: Double, to: Double) {
        let n = 4
        let ramp: UInt64 = 2_000_000_000
        let pacers = (0..<n).map {
            Pacer(PaceSpec(rate: from, target: to, ramp: Int64(ramp)), phaseStart: 0, session: $0, of: n)
        }
        let integral = (from + to) / 2 * 2  // per session, over the 2 s ramp
        let sent = pacers.reduce(0) { $0 + $1.due(at: ramp) }
        #expect(abs(Double(sent) - Double(n) * integral) <= Double(n), "\(sent) of \(Double(n) * integral)")
        for p in pacers { #expect(p.intended(0) <= ramp) }
        // In order: session i's payload k comes after session i-1's and before session 0's next.
        for k in [0, 5, 50] {
            let times = pacers.map { $0.intended(k) }
            #expect(times == times.sorted())
            #expect(times.last! <= pacers[0].intended(k + 1))
        }
    }

    @Test func zeroPausesForever() {
        let p = Pacer(PaceSpec(rate: 0), phaseStart: 0, session: 0, of: 1)
        #expect(p.isPaused)
        #expect(p.due(at: .max / 2) == 0)
        #expect(p.intended(0) == .max)
    }
}

/// (ext) The request table on its own.
@Suite struct RequestTableTests {
    /// A CHURN reconnect: what the closed connection left unanswered is cut off (no reply can
    /// come), not matched by the new connection's replies and never a timeout; matching goes
    /// on with the new connection's own requests.
    @Test(arguments: [false, true]) func aReconnectCutsOffTheOldConnectionsRequests(byID: Bool) {
        var t = RequestTable(matchesByID: byID)
        var timedOut = 0
        var cutOff = 0
        _ = t.sent(id: 1, at: 0)
        _ = t.sent(id: 2, at: 10)
        guard case .matched = t.reply(id: 1, at: 20, timeout: 1_000, timedOut: &timedOut) else {
            Issue.record("the first request should match")
            return
        }
        t.connectionReplaced(cutOff: &cutOff)
        #expect(cutOff == 1 && t.outstanding == 0 && t.isEmpty)
        _ = t.sent(id: 3, at: 100)
        guard case .matched(let rtt, _) = t.reply(id: 3, at: 150, timeout: 1_000, timedOut: &timedOut) else {
            Issue.record("the new connection's request should match")
            return
        }
        #expect(rtt == 50)
        // By id, the old request's id names nothing any more; in order, nothing is left.
        guard case .unmatched = t.reply(id: 2, at: 160, timeout: 1_000, timedOut: &timedOut) else {
            Issue.record("nothing of the old connection is matched")
            return
        }
        t.expire(now: 5_000, timeout: 1_000, timedOut: &timedOut)
        #expect(timedOut == 0 && t.outstanding == 0)
    }

    @Test func matchesDuplicatesUnmatchedAndTimeouts() {
        var t = RequestTable(matchesByID: true)
        var timedOut = 0
        let replaced = [t.sent(id: 1, at: 100), t.sent(id: 2, at: 200), t.sent(id: 3, at: 300)]
        #expect(replaced == [false, false, false])
        guard case .matched(let rtt, let late) = t.reply(id: 2, at: 1_200, timeout: 10_000, timedOut: &timedOut) else {
            Issue.record("id 2 should match")
            return
        }
        #expect(rtt == 1_000)
        #expect(!late)
        guard case .duplicate = t.reply(id: 2, at: 1_300, timeout: 10_000, timedOut: &timedOut) else {
            Issue.record("a second reply to id 2 is a duplicate")
            return
        }
        guard case .unmatched = t.reply(id: 9, at: 1_300, timeout: 10_000, timedOut: &timedOut) else {
            Issue.record("id 9 was never sent")
            return
        }
        // id 1 went out before id 2, which is answered already: a reordered reply.
        guard case .matched(_, let reordered) = t.reply(id: 1, at: 1_300, timeout: 10_000, timedOut: &timedOut)
        else {
            Issue.record("id 1 should match")
            return
        }
        #expect(reordered)
        #expect(t.outstanding == 1)
        t.expire(now: 10_300, timeout: 10_000, timedOut: &timedOut)
        #expect(timedOut == 1)  // id 3; 1 and 2 were answered
        #expect(t.outstanding == 0 && t.isEmpty)
        guard case .unmatched = t.reply(id: 3, at: 10_400, timeout: 10_000, timedOut: &timedOut) else {
            Issue.record("a reply after TIMEOUT matches nothing")
            return
        }
    }

    @Test func inOrderAnswersTheOldest() {
        var t = RequestTable(matchesByID: false)
        var timedOut = 0
        _ = t.sent(id: 0, at: 100)
        _ = t.sent(id: 0, at: 200)
        guard case .matched(let first, _) = t.reply(id: 0, at: 1_000, timeout: 10_000, timedOut: &timedOut) else {
            Issue.record("the oldest request answers")
            return
        }
        #expect(first == 900)
        guard case .matched(let second, _) = t.reply(id: 0, at: 1_000, timeout: 10_000, timedOut: &timedOut) else {
            Issue.record("then the next")
            return
        }
        #expect(second == 800)
        guard case .unmatched = t.reply(id: 0, at: 1_000, timeout: 10_000, timedOut: &timedOut) else {
            Issue.record("nothing left to answer")
            return
        }
    }
}
