import Foundation
import LoadshearMetrics
import LoadshearScript
import Testing
import WAT

/// Frames with a configurable header: type at bytes 0..3 and the body length at `offset`.
func frame(type: UInt8, body: [UInt8], headerSize: Int = 8, lengthAt offset: Int = 4) -> [UInt8] {
    var h = [UInt8](repeating: 0, count: headerSize)
    h[3] = type
    let n = UInt32(body.count)
    h[offset] = UInt8(n >> 24)
    h[offset + 1] = UInt8((n >> 16) & 0xFF)
    h[offset + 2] = UInt8((n >> 8) & 0xFF)
    h[offset + 3] = UInt8(n & 0xFF)
    return h + body
}

@Suite(.serialized) struct HandlerRunTests {
    func script(handler: String, extra: String = "", headerSize: Int = 8, sessions: Int = 4) -> String {
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
            DISCONNECT 0:\(sessions) OFFSET 2s
        }
        """
    }

    @Test(arguments: ["c/heartbeat.wasm", "swift/Heartbeat.wasm"])
    func everyPingGetsAPong(_ module: String) async throws {
        let n = 50
        let pings = (0..<n).map { frame(type: 1, body: Array("ping-\($0)".utf8)) }
        let server = try RecordingServer(.send([Array(pings.joined())]))
        defer { server.shutdown() }
        let plan = try makePlan(script(handler: "h.wasm"), packets: ["h.wasm": try sdkModule(module)], port: server.port)
        let expected = Array((0..<n).map { frame(type: 2, body: Array("ping-\($0)".utf8)) }.joined())
        async let result = run(plan)
        #expect(server.wait { $0.count == 4 && $0.allSatisfy { $0.bytes.count == expected.count } })
        let s = try await result
        #expect(server.allBytes.allSatisfy { $0 == expected })
        #expect(s.totals[.framesRead] == 4 * n)
        #expect(s.totals[.handlerCalls] == 4 * n)
        #expect(s.totals[.responsesSent] == 4 * n)
    }

    @Test func headerLengthTakesPrecedenceOverHandleHeader() async throws {
        // 12-byte header with the length at bytes 8..11; the module's handle_header would
        // read bytes 4..7 (zero here) and get it wrong, so only HEADER_LENGTH works.
        let one: [UInt8] = frame(type: 1, body: [UInt8](repeating: 0x61, count: 5), headerSize: 12, lengthAt: 8)
        let pings: [[UInt8]] = Array(repeating: one, count: 10)
        let server = try RecordingServer(.send([Array(pings.joined())]))
        defer { server.shutdown() }
        let echo = try wat2wasm("""
            (module (memory (export "memory") 1)
              (global $top (mut i32) (i32.const 1024))
              (func $alloc (export "alloc") (param i32) (result i32) global.get $top global.get $top local.get 0 i32.add global.set $top)
              (func (export "dealloc") (param i32 i32) i32.const 1024 global.set $top)
              (func (export "handle_header") (param i32 i32) (result i32) i32.const 0)
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64) (local $o i32)
                local.get $n call $alloc local.set $o
                local.get $o local.get $p local.get $n memory.copy
                local.get $n i64.extend_i32_u i64.const 32 i64.shl local.get $o i64.extend_i32_u i64.or))
            """)
        let plan = try makePlan(script(handler: "e.wasm", extra: "HEADER_LENGTH = 8:4 \"big\"", headerSize: 12, sessions: 2),
                                packets: ["e.wasm": echo], port: server.port)
        async let result = run(plan)
        let doneReading = server.wait { c in c.count == 2 && c.allSatisfy { $0.bytes.count == 170 } }
        #expect(doneReading)
        let s = try await result
        #expect(s.totals[.framesRead] == 20)
        #expect(server.allBytes.allSatisfy { $0 == Array(pings.joined()) })
    }

    @Test func hostileModuleNeverTakesTheRunDown() async throws {
        // Traps on every third message, answers the rest: every message is accounted for.
        let module = try wat2wasm("""
            (module (memory (export "memory") 1)
              (global $top (mut i32) (i32.const 1024))
              (global $count (mut i32) (i32.const 0))
              (func $alloc (export "alloc") (param i32) (result i32) global.get $top global.get $top local.get 0 i32.add global.set $top)
              (func (export "dealloc") (param i32 i32) i32.const 1024 global.set $top)
              (func (export "handle_header") (param $p i32) (param $n i32) (result i32)
                local.get $p i32.load offset=4 (; little-endian read of a big-endian length: byte-swap ;)
                drop local.get $p i32.load8_u offset=7)
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64) (local $o i32)
                global.get $count i32.const 1 i32.add global.set $count
                local.get $p i32.load8_u offset=8 i32.const 3 i32.rem_u i32.eqz
                if unreachable end
                local.get $n call $alloc local.set $o
                local.get $o local.get $p local.get $n memory.copy
                local.get $n i64.extend_i32_u i64.const 32 i64.shl local.get $o i64.extend_i32_u i64.or))
            """)
        let n = 30
        let frames = (0..<n).map { frame(type: 1, body: [UInt8($0), 0xEE]) }
        let server = try RecordingServer(.send([Array(frames.joined())]))
        defer { server.shutdown() }
        let plan = try makePlan(script(handler: "x.wasm"), packets: ["x.wasm": module], port: server.port)
        let answered = (0..<n).filter { $0 % 3 != 0 }.count
        async let result = run(plan)
        #expect(server.wait { $0.count == 4 && $0.allSatisfy { $0.bytes.count == answered * 10 } })
        let s = try await result
        #expect(s.totals[.framesRead] == 4 * n)
        #expect(s.totals[.handlerCalls] == 4 * n)
        #expect(s.totals[.handlerTraps] == 4 * (n - answered))
        #expect(s.totals[.responsesSent] == 4 * answered)
        #expect(s.totals[.protocolErrors] == 0)
        #expect(s.handlerFailuresByKind.count == 1)
        #expect(s.handlerFailuresByKind.first?.key.contains("unreachable") == true)
        #expect(s.handlerFailuresByKind.first?.value == 4 * (n - answered))
    }
}
