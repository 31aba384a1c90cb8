import Foundation
import LoadshearEngine
import LoadshearMetrics
import LoadshearScript
import LoadshearTestSupport
import Testing
import WAT

@Suite struct HandlerRunTests {
    func script(
        handler: String, extra: String = "", headerSize: Int = 8, sessions: Int = 4,
        disconnect: String = "1h"
    ) -> String {
        """
        SETTINGS h {
            SESSION = "TCP"
            PORT = @PORT@
            READ = "true"
            HEADERSIZE = \(headerSize)
            BODYMAX = 1024
            SHARDS = 2
            HANDLER = "\(handler)"
            \(extra)
            ENDPOINTS { 127.0.0.1 }
        }
        ORCHESTRATOR h {
            CREATE \(sessions) OFFSET 0ms
            CONNECT 0:\(sessions) OFFSET 1ms
            DISCONNECT 0:\(sessions) OFFSET \(disconnect)
        }
        """
    }

    /// A bump allocator that rewinds on dealloc, and `handle_body` copying the input out.
    static func echoModule(
        header: String = "i32.const 0", dealloc: String = "i32.const 1024 global.set $top",
        extra: String = ""
    ) throws -> [UInt8] {
        try wat2wasm(
            """
            (module (memory (export "memory") 1)
              (global $top (mut i32) (i32.const 1024))
              (func $alloc (export "alloc") (param i32) (result i32) global.get $top global.get $top local.get 0 i32.add global.set $top)
              (func (export "dealloc") (param $p i32) (param $n i32) \(dealloc))
              (func (export "handle_header") (param $p i32) (param $n i32) (result i32) \(header))
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64) (local $o i32)
                local.get $n call $alloc local.set $o
                local.get $o local.get $p local.get $n memory.copy
                local.get $n i64.extend_i32_u i64.const 32 i64.shl local.get $o i64.extend_i32_u i64.or)
              \(extra))
            """)
    }

    @Test(arguments: ["c/heartbeat.wasm", "swift/Heartbeat.wasm", "c/heartbeat-fast.wasm", "swift/Heartbeat-fast.wasm"])
    func everyPingGetsAPong(_ module: String) async throws {
        let n = 50
        let pings = (0..<n).map { frame(type: 1, body: Array("ping-\($0)".utf8)) }
        try await withServer(.send([Array(pings.joined())])) { server in
            let plan = try makePlan(
                script(handler: "h.wasm"), packets: ["h.wasm": try sdkModule(module)], port: server.port)
            let expected = Array((0..<n).map { frame(type: 2, body: Array("ping-\($0)".utf8)) }.joined())
            let s = try await run(plan) { totals in
                let pongs = await server.wait { $0.count == 4 && $0.allSatisfy { $0.bytes.count == expected.count } }
                return await totals.wait { $0[.responsesSent] == 4 * n } && pongs
            }
            #expect(server.allBytes.allSatisfy { $0 == expected })
            #expect(s.totals[.framesRead] == 4 * n)
            #expect(s.totals[.handlerCalls] == 4 * n)
            #expect(s.totals[.handlerReplies] == 4 * n)
            #expect(s.totals[.responsesSent] == 4 * n)
            expectConsistent(s)
        }
    }

    @Test func headerLengthTakesPrecedenceOverHandleHeader() async throws {
        // 12-byte header with the length at bytes 8..11; the module's handle_header would
        // read bytes 4..7 (zero here) and get it wrong, so only HEADER_LENGTH works.
        let one: [UInt8] = frame(type: 1, body: [UInt8](repeating: 0x61, count: 5), headerSize: 12, lengthAt: 8)
        let pings: [[UInt8]] = Array(repeating: one, count: 10)
        try await withServer(.send([Array(pings.joined())])) { server in
            let plan = try makePlan(
                script(handler: "e.wasm", extra: "HEADER_LENGTH = 8:4 \"big\"", headerSize: 12, sessions: 2),
                packets: ["e.wasm": try Self.echoModule()], port: server.port)
            let s = try await run(plan) { totals in
                let echoed = await server.wait { c in c.count == 2 && c.allSatisfy { $0.bytes.count == 170 } }
                return await totals.wait { $0[.framesRead] == 20 } && echoed
            }
            #expect(s.totals[.framesRead] == 20)
            #expect(server.allBytes.allSatisfy { $0 == Array(pings.joined()) })
        }
    }

    /// A handler that uses up its turn leaves the read's other frames for the loop's next
    /// turn: with a turn of 1 ns every frame waits for a turn of its own, and every one is
    /// still handled, answered in order and counted exactly once.
    @Test func framesLeftForTheNextTurnAreAllHandledInOrder() async throws {
        let n = 40
        let frames = (0..<n).map { frame(type: 1, body: [UInt8($0), 0xEE, UInt8(255 - $0)]) }
        try await withServer(.send([Array(frames.joined())])) { server in
            let plan = try makePlan(
                script(handler: "e.wasm", extra: "HEADER_LENGTH = 4:4 \"big\""),
                packets: ["e.wasm": try Self.echoModule()], port: server.port)
            let s = try await run(plan, configure: { $0.handlerTurnNanoseconds = 1 }) { totals in
                let echoed = await server.wait { c in c.count == 4 && c.allSatisfy { $0.bytes.count == 11 * n } }
                return await totals.wait { $0[.handlerCalls] == 4 * n } && echoed
            }
            #expect(s.totals[.framesRead] == 4 * n)
            #expect(s.totals[.handlerCalls] == 4 * n)
            #expect(s.totals[.responsesSent] == 4 * n)
            #expect(s.totals[.handlerYields] > 0, "a read of more than one frame left frames for the next turn")
            let summary = Summary(snapshot: s, shardCount: 2, sessions: 4).text()
            #expect(summary.contains("handler turns \(s.totals[.handlerYields]) reads left frames"), "\(summary)")
            #expect(server.allBytes.allSatisfy { $0 == Array(frames.joined()) })
            expectConsistent(s)
        }
    }

    @Test func hostileModuleNeverTakesTheRunDown() async throws {
        // Traps on every third message, answers the rest: every message is accounted for.
        let module = try wat2wasm(
            """
            (module (memory (export "memory") 1)
              (global $top (mut i32) (i32.const 1024))
              (func $alloc (export "alloc") (param i32) (result i32) global.get $top global.get $top local.get 0 i32.add global.set $top)
              (func (export "dealloc") (param i32 i32) i32.const 1024 global.set $top)
              (func (export "handle_header") (param $p i32) (param $n i32) (result i32)
                local.get $p i32.load8_u offset=7)
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64) (local $o i32)
                local.get $p i32.load8_u offset=8 i32.const 3 i32.rem_u i32.eqz
                if unreachable end
                local.get $n call $alloc local.set $o
                local.get $o local.get $p local.get $n memory.copy
                local.get $n i64.extend_i32_u i64.const 32 i64.shl local.get $o i64.extend_i32_u i64.or))
            """)
        let n = 30
        let frames = (0..<n).map { frame(type: 1, body: [UInt8($0), 0xEE]) }
        try await withServer(.send([Array(frames.joined())])) { server in
            let plan = try makePlan(script(handler: "x.wasm"), packets: ["x.wasm": module], port: server.port)
            let answered = (0..<n).filter { $0 % 3 != 0 }.count
            let logs = Watched<[String]>([])
            let s = try await run(plan, handlerLog: { line in logs.change { $0.append(line) } }) { totals in
                let replies = await server.wait { $0.count == 4 && $0.allSatisfy { $0.bytes.count == answered * 10 } }
                return await totals.wait { $0[.handlerCalls] == 4 * n } && replies
            }
            #expect(s.totals[.framesRead] == 4 * n)
            #expect(s.totals[.handlerCalls] == 4 * n)
            #expect(s.totals[.handlerTraps] == 4 * (n - answered))
            #expect(s.totals[.trapUnreachable] == 4 * (n - answered))
            #expect(s.totals[.responsesSent] == 4 * answered)
            #expect(s.totals[.protocolErrors] == 0)
            #expect(s.handlerFailuresByKind == ["unreachable": 4 * (n - answered)])
            // Both shards trapped; the kind is explained once for the run.
            #expect(logs.value.count == 1, "\(logs.value)")
            expectConsistent(s)
        }
    }

    /// A `handle_header` that traps is a handler failure (counted by kind) and, since the
    /// frame cannot be delimited, a protocol error that closes the session.
    @Test func handleHeaderTrapsAreCountedAsHandlerFailures() async throws {
        let module = try Self.echoModule(header: "unreachable")
        let ping = frame(type: 1, body: [1, 2, 3])
        try await withServer(.send([ping])) { server in
            let plan = try makePlan(
                script(handler: "x.wasm", sessions: 3), packets: ["x.wasm": module], port: server.port)
            let s = try await run(plan) { totals in await totals.wait { $0[.protocolErrors] == 3 } }
            #expect(s.totals[.trapUnreachable] == 3)
            #expect(s.totals[.handlerTraps] == 3)
            #expect(s.totals[.protocolErrors] == 3)
            #expect(s.totals[.headerUnreadable] == 3)
            #expect(s.totals[.framesRead] == 0)
            expectConsistent(s)
        }
    }

    /// On the fast path the header is read by `body_length`: a negative length is a protocol
    /// error that names that export (not `handle_header`, which the module does not have).
    @Test func aNegativeBodyLengthOnTheFastPathNamesBodyLength() async throws {
        let module = try wat2wasm(
            """
            (module (memory (export "memory") 1)
              (func (export "scratch") (param i32) (result i32) i32.const 1024)
              (func (export "body_length") (param i32) (result i32) i32.const -1)
              (func (export "handle_message") (param i32) (result i64) i64.const 0))
            """)
        let ping = frame(type: 1, body: [1, 2, 3])
        let logs = Watched<[String]>([])
        try await withServer(.send([ping])) { server in
            let plan = try makePlan(
                script(handler: "x.wasm", sessions: 2), packets: ["x.wasm": module], port: server.port)
            let s = try await run(plan, log: { line in logs.change { $0.append(line) } }) { totals in
                await totals.wait { $0[.protocolErrors] == 2 }
            }
            #expect(s.totals[.headerUnreadable] == 2)
            #expect(
                logs.value.contains { $0.contains("the handler's body_length returned a negative length") },
                "\(logs.value)")
            expectConsistent(s)
        }
    }

    /// `dealloc` traps when it frees the reply: the call failed, so the reply is not sent —
    /// the same on TCP and UDP — and the call is counted once, as a trap.
    @Test func aReplyIsNotSentWhenItsDeallocTraps() async throws {
        // dealloc traps for any pointer other than the input's (always at 1024).
        let module = try Self.echoModule(
            header: "local.get $p i32.load8_u offset=7",
            dealloc: "local.get $p i32.const 1024 i32.ne if unreachable end i32.const 1024 global.set $top")
        let ping = frame(type: 1, body: [9, 9])
        let tcp = try await withServer(.send([ping, ping])) { server in
            let plan = try makePlan(
                script(handler: "x.wasm", sessions: 2), packets: ["x.wasm": module], port: server.port)
            return try await run(plan) { totals in await totals.wait { $0[.handlerCalls] == 4 } }
        }
        let udp = try await withUDPServer(.replyOnce([ping, ping])) { server in
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    READ = "true"
                    BODYMAX = 64
                    HANDLER = "x.wasm"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR u {
                    CREATE 2 OFFSET 0ms
                    CONNECT 0:2 OFFSET 1ms
                    SEND 0:2 p COPIES 1 OFFSET 10ms
                    DISCONNECT 0:2 OFFSET 1h
                }
                """, packets: ["x.wasm": module, "p.bin": hello], port: server.port)
            return try await run(plan) { totals in await totals.wait { $0[.handlerCalls] == 4 } }
        }
        for s in [tcp, udp] {
            #expect(s.totals[.handlerCalls] == 4)
            #expect(s.totals[.trapUnreachable] == 4)
            #expect(s.totals[.handlerReplies] == 0)
            #expect(s.totals[.responsesSent] == 0)
            expectConsistent(s)
        }
    }

    /// A handler that grows its memory by 16 MiB per message is stopped at HANDLER_MEMORY:
    /// the refusals are counted, the host never copies or holds more than the cap.
    @Test func memoryGrowthIsCappedAndCounted() async throws {
        // handle_body grows by 256 pages each call before echoing; a refused grow (-1) is ignored.
        let grower = try wat2wasm(
            """
            (module (memory (export "memory") 1)
              (global $top (mut i32) (i32.const 1024))
              (func $alloc (export "alloc") (param i32) (result i32) global.get $top global.get $top local.get 0 i32.add global.set $top)
              (func (export "dealloc") (param i32 i32) i32.const 1024 global.set $top)
              (func (export "handle_header") (param $p i32) (param $n i32) (result i32) local.get $p i32.load8_u offset=7)
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64)
                i32.const 256 memory.grow drop
                i64.const 0))
            """)
        let n = 12
        let pings = (0..<n).map { _ in frame(type: 1, body: [1]) }
        try await withServer(.send([Array(pings.joined())])) { server in
            let plan = try makePlan(
                script(handler: "g.wasm", extra: "HANDLER_MEMORY = 40MiB", sessions: 2),
                packets: ["g.wasm": grower], port: server.port)
            let s = try await run(plan) { totals in await totals.wait { $0[.handlerCalls] == 2 * n } }
            #expect(s.totals[.handlerCalls] == 2 * n)
            #expect(s.totals[.handlerEmpty] == 2 * n)
            // Each shard's instance: 64 KiB + 2 × 16 MiB fit under 40 MiB; every later grow is refused.
            #expect(s.totals[.handlerMemoryDenied] == 2 * (n - 2))
            expectConsistent(s)
        }
    }
}
