import Foundation
import LoadshearEngine
import LoadshearMetrics
import LoadshearScript
import LoadshearTestSupport
import Testing

@Suite struct EngineTests {
    /// Both write paths: straight to a socket Loadshear connected itself (the default to
    /// loopback) and through NIO's bootstrap and channel (`LOADSHEAR_DIRECT_SOCKETS=0`).
    static let writePaths = [true, false]

    @Test(arguments: writePaths) func sendCopiesDeliverExactBytes(direct: Bool) async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 20 OFFSET 0ms
                    CONNECT 0:20 OFFSET 1ms
                    SEND 0:20 p COPIES 5 OFFSET 50ms
                    DRAIN 0:20 OFFSET 50ms
                }
                """, packets: ["p.bin": hello], port: server.port)
            let s = try await run(plan) { $0.directSockets = direct }
            #expect(
                await server.wait {
                    $0.count == 20 && $0.allSatisfy(\.closed) && $0.reduce(0) { $0 + $1.bytes.count } == 1100
                })
            #expect(server.totalBytes == 1100)
            #expect(s.totals[.bytesSent] == 1100)
            #expect(s.totals[.packetsSent] == 100)
            #expect(s.totals[.connectionsSucceeded] == 20)
            // Every loopback connect completes inside connect() (20 is far below the backlog).
            #expect(s.totals[.directConnects] == (direct ? 20 : 0))
            #expect(s.totals[.closedByUs] == 20)
            expectConsistent(s)
            for c in server.allBytes { #expect(c == Array([[UInt8]](repeating: hello, count: 5).joined())) }
        }
    }

    @Test(arguments: [(ByteOrder.big, 4, UInt64(3)), (.little, 8, 1), (.big, 1, 1)])
    func countersAreGloballyUniqueAndDense(order: ByteOrder, width: Int, step: UInt64) async throws {
        try await withServer { server in
            let copies = 7
            let sessions = 10
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE \(sessions) OFFSET 0ms
                    CONNECT 0:\(sessions) OFFSET 1ms
                    SEND 0:\(sessions) p COPIES \(copies) COUNTER 2:\(width) "\(order.rawValue)":\(step) OFFSET 50ms
                    DRAIN 0:\(sessions) OFFSET 10ms
                }
                """, packets: ["p.bin": hello], port: server.port)
            let s = try await run(plan)
            let total = sessions * copies
            #expect(await server.wait { $0.reduce(0) { $0 + $1.bytes.count } == total * 11 })
            var values: [UInt64] = []
            for stream in server.allBytes {
                for p in packets(stream, size: 11) {
                    values.append(integer(p[(p.startIndex + 2)..<(p.startIndex + 2 + width)], bigEndian: order == .big))
                    // Bytes outside the patch are the packet's own.
                    #expect(p.prefix(2).elementsEqual(hello.prefix(2)))
                    #expect(p.suffix(11 - 2 - width).elementsEqual(hello.suffix(11 - 2 - width)))
                }
            }
            let mask: UInt64 = width == 8 ? .max : (1 << UInt64(8 * width)) - 1
            let expected = (0..<UInt64(total)).map { ($0 &* step) & mask }.sorted()
            #expect(values.sorted() == expected)
            #expect(s.totals[.packetsSent] == total)
        }
    }

    /// Packets above the whole-copy limit go out as slices around the patched region.
    @Test(arguments: writePaths) func largePatchedPacketsKeepEveryUnpatchedByte(direct: Bool) async throws {
        try await withServer { server in
            let big = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 6 OFFSET 0ms
                    CONNECT 0:6 OFFSET 1ms
                    SEND 0:6 p COPIES 40 COUNTER 500:8 "little":1 TIMESTAMP 100:8 "big":"nanoseconds" OFFSET 30ms
                    DRAIN 0:6 OFFSET 10ms
                }
                """, packets: ["p.bin": big], port: server.port)
            _ = try await run(plan) { $0.directSockets = direct }
            #expect(await server.wait { $0.count == 6 && $0.allSatisfy { $0.bytes.count == 40 * 1000 } })
            var values = Set<UInt64>()
            for stream in server.allBytes {
                for p in packets(stream, size: 1000) {
                    let b = Array(p)
                    #expect(b[0..<100] == big[0..<100])
                    #expect(b[108..<500] == big[108..<500])
                    #expect(b[508...] == big[508...])
                    values.insert(integer(p[(p.startIndex + 500)..<(p.startIndex + 508)], bigEndian: false))
                }
            }
            #expect(values == Set(0..<240))
        }
    }

    @Test func timestampsCarryTheSendTime() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin", q : "q.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:4 p COPIES 3 TIMESTAMP 0:8 "big":"milliseconds" OFFSET 20ms
                    SEND 0:4 q COPIES 2 TIMESTAMP 1:4 "little":"seconds" OFFSET 10ms
                    DRAIN 0:4 OFFSET 10ms
                }
                """,
                packets: ["p.bin": [UInt8](repeating: 0xAA, count: 12), "q.bin": [UInt8](repeating: 0xBB, count: 6)],
                port: server.port)
            let before = UInt64(Date().timeIntervalSince1970 * 1000)
            _ = try await run(plan)
            let after = UInt64(Date().timeIntervalSince1970 * 1000) + 1
            #expect(await server.wait { $0.count == 4 && $0.allSatisfy { $0.bytes.count == 3 * 12 + 2 * 6 } })
            for stream in server.allBytes {
                for p in packets(Array(stream.prefix(36)), size: 12) {
                    let ms = integer(p.prefix(8), bigEndian: true)
                    #expect(ms >= before && ms <= after)
                    #expect(p.suffix(4).allSatisfy { $0 == 0xAA })
                }
                for p in packets(Array(stream.suffix(12)), size: 6) {
                    let secs = integer(p[(p.startIndex + 1)..<(p.startIndex + 5)], bigEndian: false)
                    #expect(secs >= before / 1000 && secs <= after / 1000)
                    #expect(p.first == 0xBB && p.last == 0xBB)
                }
            }
        }
    }

    /// DRAIN under FLOOD + REPEAT finishes the current pass: every session sends whole passes.
    @Test func drainFinishesTheCurrentPass() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    REPEAT = "true"
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 8 OFFSET 0ms
                    CONNECT 0:8 OFFSET 1ms
                    SEND 0:8 p COPIES 2 COUNTER 0:4 "big":1 OFFSET 20ms
                    FLOOD 0:8 OFFSET 1ms
                    DRAIN 0:8 OFFSET 100ms
                }
                """, packets: ["p.bin": hello], port: server.port)
            let s = try await run(plan)
            #expect(await server.wait { $0.count == 8 && $0.allSatisfy(\.closed) })
            let sent = s.totals[.packetsSent]
            #expect(sent >= 8 * 2, "at least the first pass")
            #expect(server.totalBytes == s.totals[.bytesSent])
            #expect(server.totalBytes == sent * 11)
            for stream in server.allBytes { #expect(stream.count % 22 == 0) }
            var values = Set<UInt64>()
            for stream in server.allBytes {
                for p in packets(stream, size: 11) { values.insert(integer(p.prefix(4), bigEndian: true)) }
            }
            #expect(values.count == sent)
            expectConsistent(s)
        }
    }

    /// FLOOD + REPEAT loops the list with counters that keep counting; waits for the loops
    /// to happen (at the server), then stops the run.
    @Test func floodWithRepeatLoopsTheListWithUniqueCounters() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    REPEAT = "true"
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:4 p COPIES 2 COUNTER 0:4 "big":1 OFFSET 20ms
                    FLOOD 0:4 OFFSET 1ms
                    DISCONNECT 0:4 OFFSET 1h
                }
                """, packets: ["p.bin": hello], port: server.port)
            let engine = Engine(plan: plan, configuration: testConfiguration())
            async let result = engine.run()
            // Ten passes from every session, as seen by the server.
            #expect(await server.wait { c in c.count == 4 && c.allSatisfy { $0.bytes.count >= 10 * 22 } })
            engine.stop()
            let s = try await result
            #expect(await server.wait { $0.allSatisfy(\.closed) })
            #expect(server.totalBytes == s.totals[.bytesSent])
            let sent = s.totals[.packetsSent]
            #expect(sent * 11 == server.totalBytes)
            var values = Set<UInt64>()
            for stream in server.allBytes {
                for p in packets(stream, size: 11) { values.insert(integer(p.prefix(4), bigEndian: true)) }
            }
            #expect(values.count == sent, "no counter value twice")
            #expect(values.max().map { $0 + 1 } == UInt64(sent), "and none skipped")
        }
    }

    @Test func floodWithoutRepeatSendsTheListOnce() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 3 OFFSET 0ms
                    CONNECT 0:3 OFFSET 1ms
                    SEND 0:3 p COPIES 1 OFFSET 20ms
                    SEND 0:3 p COPIES 4 OFFSET 5ms
                    FLOOD 0:3 OFFSET 0ms
                    DRAIN 0:3 OFFSET 10ms
                }
                """, packets: ["p.bin": hello], port: server.port)
            _ = try await run(plan)
            #expect(await server.wait { $0.count == 3 && $0.allSatisfy { $0.closed } })
            #expect(server.allBytes.allSatisfy { $0.count == 5 * 11 })
        }
    }

    @Test func sessionsOnlySendWhatTheirSendsReleased() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { a : "a.bin", b : "b.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:2 a COPIES 2 OFFSET 20ms
                    SEND 1:4 b COPIES 1
                    DRAIN 0:4 OFFSET 10ms
                }
                """, packets: ["a.bin": [1, 1, 1], "b.bin": [2, 2]], port: server.port)
            _ = try await run(plan)
            #expect(await server.wait { $0.count == 4 && $0.allSatisfy(\.closed) })
            let streams = Set(server.allBytes)
            #expect(streams == Set([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 2, 2], [2, 2]]))
        }
    }

    @Test func refusedConnectsAreCountedFailuresAndTheRunEndsNormally() async throws {
        let refusing = RefusingPort()
        let plan = try makePlan(
            """
            SETTINGS t {
                SESSION = "TCP"
                PORT = @PORT@
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR t {
                CREATE 5 OFFSET 0ms
                CONNECT 0:5 OFFSET 1ms
                SEND 0:5 p COPIES 1 OFFSET 50ms
                DISCONNECT 0:5 OFFSET 1h
            }
            """, packets: ["p.bin": hello], port: refusing.port)
        let logged = Watched<[String]>([])
        let s = try await run(
            plan, log: { line in logged.change { $0.append(line) } },
            until: { totals in await totals.wait { $0[.connectionsFailed] == 5 } })
        // The first refusal is explained once for the run, not once per session or shard.
        #expect(logged.value.count == 1)
        #expect(
            logged.value.first?.hasPrefix("connect 127.0.0.1:\(refusing.port): connection refused") == true,
            "\(logged.value)")
        #expect(s.totals[.connectionsAttempted] == 5)
        #expect(s.totals[.connectionsFailed] == 5)
        #expect(s.totals[.connectRefused] == 5)
        #expect(s.connectFailuresByReason == ["connection refused": 5])
        #expect(s.totals[.bytesSent] == 0)
        expectConsistent(s)
    }

    @Test func serverClosesAreCountedAndTheRunGoesOn() async throws {
        try await withServer(.closeOnAccept) { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 6 OFFSET 0ms
                    CONNECT 0:6 OFFSET 1ms
                    DISCONNECT 0:6 OFFSET 1h
                }
                """, packets: ["p.bin": hello], port: server.port)
            // The server's FIN is seen at once; the sessions stay open (they could still send)
            // until the run ends them, and then count as closed by the server.
            let s = try await run(plan) { totals in await totals.wait { $0[.finsReceived] == 6 } }
            #expect(s.totals[.connectionsSucceeded] == 6)
            #expect(s.totals[.closedByPeer] == 6)
            expectConsistent(s)
        }
    }

    /// Stopping a run in the middle of a flood ends it without hanging: every session is
    /// closed by us, and the server sees every connection close.
    @Test func runEndsWhileFloodingWithoutHanging() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    REPEAT = "true"
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:4 p COPIES 100 OFFSET 10ms
                    FLOOD 0:4 OFFSET 1ms
                    DISCONNECT 0:4 OFFSET 1h
                }
                """, packets: ["p.bin": [UInt8](repeating: 7, count: 4096)], port: server.port)
            let s = try await run(plan) { _ in
                await server.wait { c in c.count == 4 && c.allSatisfy { $0.bytes.count >= 100 * 4096 } }
            }
            #expect(s.totals[.closedByUs] == 4)
            expectConsistent(s)
            #expect(await server.wait { $0.count == 4 && $0.allSatisfy(\.closed) })
        }
    }

    /// DISCONNECT in the middle of a flood: bytes still buffered in the channel are not
    /// counted, bytes the kernel took are, so the count matches the server's exactly.
    @Test(arguments: writePaths) func bytesSentMatchTheServerExactlyWhenAFloodIsCutOff(direct: Bool) async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    REPEAT = "true"
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:4 p COPIES 3 OFFSET 10ms
                    FLOOD 0:4 OFFSET 0ms
                    DISCONNECT 0:4 OFFSET 1h
                }
                """, packets: ["p.bin": [UInt8](repeating: 3, count: 1000)], port: server.port)
            let s = try await run(plan, configure: { $0.directSockets = direct }) { _ in
                await server.wait { c in c.count == 4 && c.allSatisfy { $0.bytes.count >= 200_000 } }
            }
            let sent = s.totals[.bytesSent]
            #expect(sent > 0)
            #expect(await server.wait { $0.count == 4 && $0.allSatisfy(\.closed) })
            #expect(server.totalBytes == sent)
        }
    }

    /// Cut off mid-flood with two packet sizes interleaved: packets count only when whole,
    /// so the count equals the whole packets the server received (not a share of bytes).
    @Test(arguments: writePaths) func packetsCountOnlyWhenWholeWhenWeCloseMidBatch(direct: Bool) async throws {
        try await withServer { server in
            let a = [UInt8](repeating: 0xA1, count: 700)
            let b = [UInt8](repeating: 0xB2, count: 333)
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    REPEAT = "true"
                    SHARDS = 1
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { a : "a.bin", b : "b.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:4 a COPIES 1 OFFSET 10ms
                    SEND 0:4 b COPIES 1 OFFSET 0ms
                    FLOOD 0:4 OFFSET 0ms
                    DISCONNECT 0:4 OFFSET 1h
                }
                """, packets: ["a.bin": a, "b.bin": b], port: server.port)
            let s = try await run(plan, configure: { $0.directSockets = direct }) { _ in
                await server.wait { c in c.count == 4 && c.allSatisfy { $0.bytes.count >= 200_000 } }
            }
            #expect(await server.wait { $0.count == 4 && $0.allSatisfy(\.closed) })
            #expect(server.totalBytes == s.totals[.bytesSent])
            // Whole packets in each stream: the pattern a, b, a, b, …
            var whole = 0
            for stream in server.allBytes {
                var i = 0
                var next = a.count
                while i + next <= stream.count {
                    i += next
                    whole += 1
                    next = next == a.count ? b.count : a.count
                }
            }
            #expect(s.totals[.packetsSent] == whole)
        }
    }

    @Test func stopEndsARunEarly() async throws {
        try await withServer { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 2 OFFSET 0ms
                    CONNECT 0:2 OFFSET 1ms
                    SEND 0:2 p COPIES 1 OFFSET 10ms
                    DISCONNECT 0:2 OFFSET 1h
                }
                """, packets: ["p.bin": hello], port: server.port)
            let engine = Engine(plan: plan)
            async let result = engine.run()
            #expect(await server.wait { $0.count == 2 && $0.allSatisfy { $0.bytes.count == 11 } })
            engine.stop()
            let s = try await result
            #expect(s.totals[.bytesSent] == 22)
            #expect(await server.wait { $0.allSatisfy(\.closed) })
        }
    }

    /// A stop while the run's end waits for draining sessions (a server that never reads:
    /// the DRAIN cannot finish) closes them at once: the user asked to end the run, not to
    /// wait out the grace (an hour here, so waiting it out would fail the time limit).
    @Test(.timeLimit(.minutes(1))) func aStopCutsTheDrainGraceShort() async throws {
        let listener = StallingListener()
        let plan = try makePlan(
            """
            SETTINGS t {
                SESSION = "TCP"
                PORT = @PORT@
                REPEAT = "true"
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR t {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 1ms
                SEND 0:2 p COPIES 1 OFFSET 10ms
                FLOOD 0:2 OFFSET 0ms
                DRAIN 0:2 OFFSET 40ms
            }
            """, packets: ["p.bin": [UInt8](repeating: 7, count: 1024)], port: listener.port)
        let longGrace: (inout EngineConfiguration) -> Void = {
            $0.drainGrace = .hours(1)
            $0.closeDeadline = .hours(1)
        }
        let s = try await run(plan, configure: longGrace) { totals in
            await totals.wait { $0[.connectionsSucceeded] == 2 && $0[.bytesSent] > 0 }
        }
        #expect(s.totals[.closedByUs] == 2)
        expectConsistent(s)
    }

    /// Latency samples: every connect; the send batch with the first packet and each batch
    /// that holds a SAMPLERATE-th packet; the first frame and every SAMPLERATE-th frame.
    @Test func latencyIsSampledAsDocumented() async throws {
        let n = 40
        let pings = (0..<n).map { frame(type: 1, body: Array("ping-\($0)".utf8)) }
        try await withServer(.send([Array(pings.joined())])) { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    READ = "true"
                    HEADERSIZE = 8
                    BODYMAX = 64
                    HEADER_LENGTH = 4:4 "big"
                    SAMPLERATE = 10
                    SHARDS = 1
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 3 OFFSET 0ms
                    CONNECT 0:3 OFFSET 1ms
                    SEND 0:3 p COPIES 1 OFFSET 100ms
                    DISCONNECT 0:3 OFFSET 1h
                }
                """, packets: ["p.bin": hello], port: server.port)
            let s = try await run(plan) { totals in
                let read = await totals.wait { $0[.framesRead] == 3 * n }
                return await server.wait { $0.count == 3 && $0.allSatisfy { $0.bytes.count == 11 } } && read
            }
            #expect(s.totals[.framesRead] == 3 * n)
            #expect(s.latency.connect.totalCount == 3)
            // One batch of one packet per session: the first packet is sampled.
            #expect(s.latency.send.totalCount == 3)
            // Frames 0, 10, 20, 30 of each session.
            #expect(s.latency.read.totalCount == 3 * 4)
        }
    }
}
