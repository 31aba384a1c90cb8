import Foundation
import LoadshearEngine
import LoadshearMetrics
import LoadshearScript
import LoadshearTestSupport
import Testing
import WAT

@Suite struct UDPTests {
    @Test func eachPayloadIsOneDatagramWithUniqueCounters() async throws {
        try await withUDPServer { server in
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin", q : "q.bin" }
                }
                ORCHESTRATOR u {
                    CREATE 10 OFFSET 0ms
                    CONNECT 0:10 OFFSET 1ms
                    SEND 0:10 p COPIES 20 COUNTER 0:4 "big":1 OFFSET 30ms
                    SEND 0:10 q COPIES 3 OFFSET 30ms
                    DRAIN 0:10 OFFSET 10ms
                }
                """, packets: ["p.bin": hello, "q.bin": [7, 7, 7]], port: server.port)
            let s = try await run(plan)
            #expect(await server.wait { $0.count == 10 && $0.values.allSatisfy { $0.count == 23 } })
            var values: [UInt64] = []
            for (_, grams) in server.all {
                #expect(grams.prefix(20).allSatisfy { $0.count == 11 && $0.suffix(7).elementsEqual(hello.suffix(7)) })
                #expect(grams.suffix(3).allSatisfy { $0 == [7, 7, 7] })
                values += grams.prefix(20).map { integer($0.prefix(4)[...], bigEndian: true) }
            }
            #expect(values.sorted() == (0..<200).map { UInt64($0) })
            #expect(s.totals[.packetsSent] == 230)
            #expect(s.totals[.bytesSent] == 200 * 11 + 30 * 3)
            expectConsistent(s)
        }
    }

    @Test func handlerRepliesGoBackAsDatagrams() async throws {
        // Each session sends 5 pings; the server echoes them; the heartbeat handler answers
        // each echoed ping with a pong, which the server records (and echoes: pongs get no reply).
        let ping = frame(type: 1, body: Array("hb".utf8))
        let pong = frame(type: 2, body: Array("hb".utf8))
        try await withUDPServer(.echo) { server in
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    READ = "true"
                    BODYMAX = 512
                    HANDLER = "h.wasm"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { ping : "ping.bin" }
                }
                ORCHESTRATOR u {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:4 ping COPIES 5 OFFSET 30ms
                    DISCONNECT 0:4 OFFSET 1h
                }
                """, packets: ["ping.bin": ping, "h.wasm": try sdkModule("c/heartbeat.wasm")], port: server.port)
            let s = try await run(plan) { totals in
                let pongs = await server.wait {
                    $0.count == 4 && $0.values.allSatisfy { g in g.filter { $0 == pong }.count == 5 }
                }
                return await totals.wait { $0[.framesRead] == 4 * 10 } && pongs
            }
            #expect(server.all.values.allSatisfy { $0.filter { $0 == ping }.count == 5 })
            #expect(s.totals[.framesRead] == 4 * 10)
            #expect(s.totals[.handlerCalls] == 4 * 10)
            #expect(s.totals[.handlerReplies] == 4 * 5)
            #expect(s.totals[.responsesSent] == 4 * 5)
            expectConsistent(s)
        }
    }

    /// A handler reply longer than one datagram can carry is dropped and counted; the
    /// session goes on, and its next (small) replies go out as before.
    @Test func aReplyTooLongForADatagramIsDroppedAndTheSessionGoesOn() async throws {
        // Replies with 70,000 bytes of its memory to a message whose first byte is 1, and
        // echoes any other message.
        let module = try wat2wasm(
            """
            (module (memory (export "memory") 2)
              (global $top (mut i32) (i32.const 1024))
              (func $alloc (export "alloc") (param i32) (result i32) global.get $top global.get $top local.get 0 i32.add global.set $top)
              (func (export "dealloc") (param i32 i32) i32.const 1024 global.set $top)
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64) (local $o i32)
                local.get $p i32.load8_u i32.const 1 i32.eq
                if i64.const 300647710720000 return end
                local.get $n call $alloc local.set $o
                local.get $o local.get $p local.get $n memory.copy
                local.get $n i64.extend_i32_u i64.const 32 i64.shl local.get $o i64.extend_i32_u i64.or))
            """)
        let logs = Watched<[String]>([])
        try await withUDPServer(.echo) { server in
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    READ = "true"
                    BODYMAX = 512
                    HANDLER = "h.wasm"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { big : "big.bin", small : "small.bin" }
                }
                ORCHESTRATOR u {
                    CREATE 1 OFFSET 0ms
                    CONNECT 0:1 OFFSET 1ms
                    SEND 0:1 big COPIES 1 OFFSET 30ms
                    SEND 0:1 small COPIES 1 OFFSET 30ms
                    DISCONNECT 0:1 OFFSET 1h
                }
                """, packets: ["big.bin": [1, 1, 1], "small.bin": [2, 2, 2], "h.wasm": module], port: server.port)
            let s = try await run(plan, log: { line in logs.change { $0.append(line) } }) { totals in
                await totals.wait { $0[.oversizedReplies] == 1 && $0[.responsesSent] >= 1 }
            }
            #expect(s.totals[.oversizedReplies] == 1)
            #expect(s.totals[.localErrors] == 0)
            #expect(s.totals[.closedByUs] == 1)
            #expect(
                logs.value.contains { $0.contains("reply of 70000 bytes does not fit one UDP datagram") },
                "\(logs.value)")
            expectConsistent(s)
        }
    }

    /// ICMP "port unreachable" shows up on the connected socket: counted, not fatal. The
    /// port is held by a socket connected elsewhere, so nothing else can answer on it.
    @Test func portUnreachableIsCountedNotFatal() async throws {
        let unreachable = UnreachableUDPPort()
        let plan = try makePlan(
            """
            SETTINGS u {
                SESSION = "UDP"
                PORT = @PORT@
                READ = "true"
                BODYMAX = 64
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR u {
                CREATE 3 OFFSET 0ms
                CONNECT 0:3 OFFSET 1ms
                SEND 0:3 p COPIES 1 OFFSET 20ms
                DISCONNECT 0:3 OFFSET 1h
            }
            """, packets: ["p.bin": hello], port: unreachable.port)
        let engine = Engine(plan: plan, configuration: testConfiguration())
        let seen = Watched<Int>(0)
        async let result = engine.run { s in seen.change { $0 = s.totals[.icmpErrors] } }
        #expect(await seen.wait { $0 >= 1 })
        engine.stop()
        let s = try await result
        #expect(s.totals[.connectionsSucceeded] == 3)
        #expect(s.totals[.closedByUs] == 3, "the sockets outlived the ICMP errors")
        expectConsistent(s)
    }

    /// FLOOD + REPEAT over UDP, then DRAIN: whole passes, and never more datagrams arrive
    /// than were counted as sent.
    @Test func floodWithRepeatUntilDrain() async throws {
        try await withUDPServer { server in
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    REPEAT = "true"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR u {
                    CREATE 2 OFFSET 0ms
                    CONNECT 0:2 OFFSET 1ms
                    SEND 0:2 p COPIES 3 COUNTER 0:4 "big":1 OFFSET 20ms
                    FLOOD 0:2 OFFSET 0ms
                    DRAIN 0:2 OFFSET 100ms
                }
                """, packets: ["p.bin": hello], port: server.port)
            let s = try await run(plan)
            let sent = s.totals[.packetsSent]
            #expect(sent >= 2 * 3, "at least one pass")
            #expect(sent % 3 == 0, "DRAIN finishes the current pass of 3 payloads")
            expectConsistent(s)
            // Loopback may drop datagrams under a flood; what arrives is never more than was sent.
            #expect(await server.wait { $0.values.reduce(0) { $0 + $1.count } > 0 })
            #expect(server.all.values.reduce(0) { $0 + $1.count } <= sent)
        }
    }

    /// Datagrams above NIO's default 2,048-byte receive buffer arrive whole: counted at
    /// their real size, checked against BODYMAX at their real size, given whole to the handler.
    @Test func largeDatagramsArriveWhole() async throws {
        let big = frame(type: 1, body: [UInt8](repeating: 0x33, count: 6000))
        let tooBig = [UInt8](repeating: 0x44, count: 9000)
        try await withUDPServer(.replyOnce([big, tooBig])) { server in
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    READ = "true"
                    BODYMAX = 8000
                    HANDLER = "h.wasm"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR u {
                    CREATE 1 OFFSET 0ms
                    CONNECT 0:1 OFFSET 1ms
                    SEND 0:1 p COPIES 1 OFFSET 20ms
                    DISCONNECT 0:1 OFFSET 1h
                }
                """, packets: ["p.bin": hello, "h.wasm": try sdkModule("c/heartbeat.wasm")], port: server.port)
            let engine = try Engine(
                plan: plan, configuration: testConfiguration(),
                handlerFactoryFor: plan)
            async let result = engine.run()
            let pong = frame(type: 2, body: [UInt8](repeating: 0x33, count: 6000))
            #expect(await server.wait { $0.values.contains { $0.contains(pong) } })
            engine.stop()
            let s = try await result
            #expect(s.totals[.bytesRead] == big.count + tooBig.count)
            #expect(s.totals[.framesRead] == 2)
            #expect(s.totals[.oversizedDatagrams] == 1, "the 9,000-byte datagram is over BODYMAX")
            #expect(s.totals[.handlerReplies] == 1)
            #expect(s.totals[.datagramsTruncated] == 0)
        }
    }
}
