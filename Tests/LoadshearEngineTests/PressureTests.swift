import Foundation
import LoadshearEngine
import LoadshearMetrics
import LoadshearScript
import LoadshearTestSupport
import Testing

/// The engine under hostile servers and heavy write load: reads keep their turn, memory
/// stays bounded, pending connects are cancelled, every close is classified once.
@Suite struct PressureTests {
    static let ping = frame(type: 1, body: Array("heartbeat".utf8))
    static let pong = frame(type: 2, body: Array("heartbeat".utf8))

    /// An independent server pings every session every 20 ms while half of the sessions
    /// flood (FLOOD + REPEAT) framed data packets, small and patched or 1 KiB: every
    /// session, flooding or not, reads and answers its pings while the flood goes on. (The
    /// server reads the stream in order, so it sees a pong only after the flood data queued
    /// before it; the test waits for that, with the flood still running.)
    @Test(arguments: [(1, 16), (2, 16), (1, 1024), (2, 1024)])
    func pingsAreAnsweredUnderAFlood(shards: Int, packetSize: Int) async throws {
        let pings = 10
        try await withServer(.ping(frame: Self.ping, every: .milliseconds(20), count: pings)) { server in
            let data = frame(type: 3, body: [UInt8](repeating: 0x5A, count: packetSize - 8))
            let patch = packetSize == 16 ? "COUNTER 8:4 \"big\":1" : ""
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    READ = "true"
                    REPEAT = "true"
                    HEADERSIZE = 8
                    BODYMAX = 4096
                    SHARDS = \(shards)
                    HANDLER = "h.wasm"
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { d : "d.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 8 OFFSET 0ms
                    CONNECT 0:8 OFFSET 1ms
                    SEND 0:8 d COPIES 4 \(patch) OFFSET 10ms
                    FLOOD 0:4 OFFSET 0ms
                    DISCONNECT 0:8 OFFSET 1h
                }
                """, packets: ["d.bin": data, "h.wasm": try sdkModule("c/heartbeat.wasm")], port: server.port,
                shards: shards)
            let engine = try Engine(plan: plan, configuration: testConfiguration(), handlerFactoryFor: plan)
            let flooded = Watched<Int>(0)
            async let result = engine.run { s in flooded.change { $0 = s.totals[.packetsSent] } }
            let answered = await server.wait { c in c.count == 8 && c.allSatisfy { ($0.framesByType[2] ?? 0) == pings }
            }
            let floodingMeanwhile = flooded.value
            engine.stop()
            let s = try await result
            for (i, c) in server.connections.value.enumerated() {
                #expect(c.framesWritten == pings)
                #expect(
                    c.framesByType[2] ?? 0 == pings,
                    "session \(i) answered \((c.framesByType[2] ?? 0)) of \(pings) pings")
            }
            #expect(answered)
            #expect(floodingMeanwhile > 0 || s.totals[.packetsSent] > 0)
            #expect(s.totals[.handlerReplies] == 8 * pings)
            expectConsistent(s)
        }
    }

    /// A server that writes as fast as it can and never reads (with a small receive
    /// buffer): the heartbeat handler's replies cannot be written, so the session stops
    /// reading instead of queueing them without bound. What it produced stays within our
    /// socket's send buffer, the server's receive buffer, the channel's high watermark, one
    /// batch, the reply backlog and one read's worth — and stops growing.
    @Test func aServerThatNeverReadsCannotGrowOurMemory() async throws {
        let bigPing = frame(type: 1, body: [UInt8](repeating: 0x42, count: 4088))  // 4 KiB pings and pongs
        let receiveBuffer = 65_536
        try await withServer(.floodNeverRead(frame: bigPing), receiveBuffer: receiveBuffer) { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    READ = "true"
                    HEADERSIZE = 8
                    HEADER_LENGTH = 4:4 "big"
                    BODYMAX = 8192
                    SHARDS = 1
                    HANDLER = "h.wasm"
                    ENDPOINTS { 127.0.0.1 }
                }
                ORCHESTRATOR t {
                    CREATE 1 OFFSET 0ms
                    CONNECT 0:1 OFFSET 1ms
                    DISCONNECT 0:1 OFFSET 1h
                }
                """, packets: ["h.wasm": try sdkModule("c/heartbeat.wasm")], port: server.port, shards: 1)
            let config = testConfiguration()
            let engine = try Engine(plan: plan, configuration: config, handlerFactoryFor: plan)
            // (snapshots seen, read pauses, replies produced)
            let seen = Watched<(Int, Int, Int)>((0, 0, 0))
            async let result = engine.run { s in
                seen.change { $0 = ($0.0 + 1, s.totals[.readPauses], s.totals[.handlerReplies]) }
            }
            #expect(await seen.wait { $0.1 >= 1 }, "reads paused")
            let pausedAt = seen.value.0
            // Three more snapshots (1.5 s) with the server still flooding.
            #expect(await seen.wait { $0.0 >= pausedAt + 3 })
            engine.stop()
            let s = try await result
            let produced = s.totals[.handlerReplies] * bigPing.count
            let kernel = Self.sysctlMax("/proc/sys/net/ipv4/tcp_wmem") + 2 * receiveBuffer
            let bound = kernel + config.highWatermark + config.bytesPerFlush + config.replyBacklog + 256 * 1024
            #expect(produced <= bound, "replies produced: \(produced) bytes, bound \(bound)")
            #expect(s.totals[.closedByUs] == 1)
            expectConsistent(s)
        }
    }

    static func sysctlMax(_ path: String) -> Int {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }.last
            ?? (8 << 20)
    }

    /// Sessions draining into a server that never reads cannot finish; after the hard
    /// deadline every channel is closed by force, the run ends, and the counts add up.
    @Test func theAbandonPathClosesEveryChannel() async throws {
        try await withServer(.neverRead) { server in
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
                    CREATE 6 OFFSET 0ms
                    CONNECT 0:6 OFFSET 1ms
                    SEND 0:6 p COPIES 4 OFFSET 10ms
                    FLOOD 0:6 OFFSET 0ms
                    DRAIN 0:6 OFFSET 100ms
                }
                """, packets: ["p.bin": [UInt8](repeating: 9, count: 65_536)], port: server.port)
            let s = try await run(plan) { config in
                config.drainGrace = .seconds(60)
                config.closeDeadline = .milliseconds(200)
            }
            // A connect still pending at the deadline is cancelled; the rest are closed by us.
            #expect(s.totals[.closedByUs] + s.totals[.connectionsCancelled] == 6)
            #expect(s.totals[.closedByUs] == s.totals[.connectionsSucceeded])
            expectConsistent(s)
            // Reading now, the server finds every connection it accepted closed by the client.
            await server.startReading()
            #expect(await server.wait { $0.allSatisfy(\.closed) })
        }
    }

    /// Eight sessions connecting to a listener whose accept queue is full: one or two connect
    /// through the backlog, the rest stay pending.
    func pendingConnects(_ listener: StallingListener, disconnect: String) throws -> Plan {
        try makePlan(
            """
            SETTINGS t {
                SESSION = "TCP"
                PORT = @PORT@
                SHARDS = 1
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR t {
                CREATE 8 OFFSET 0ms
                CONNECT 0:8 OFFSET 1ms
                DISCONNECT 0:8 OFFSET \(disconnect)
            }
            """, port: listener.port, shards: 1)
    }

    /// DISCONNECT cancels pending connects (counted as cancelled, not failed) instead of
    /// waiting for the connect timeout.
    @Test func disconnectCancelsPendingConnects() async throws {
        let listener = StallingListener(backlog: 0)
        let s = try await run(pendingConnects(listener, disconnect: "300ms")) { $0.connectTimeout = .seconds(60) }
        #expect(s.totals[.connectionsAttempted] == 8)
        #expect(s.totals[.connectionsCancelled] >= 1)
        #expect(s.totals[.connectionsFailed] == 0)
        expectConsistent(s)
    }

    /// Stopping the run (Ctrl-C, SIGTERM) cancels pending connects as well.
    @Test func stopCancelsPendingConnects() async throws {
        let listener = StallingListener(backlog: 0)
        let s = try await run(
            pendingConnects(listener, disconnect: "1h"), configure: { $0.connectTimeout = .seconds(60) },
            until: { totals in await totals.wait { $0[.connectionsAttempted] == 8 } })
        #expect(s.totals[.connectionsCancelled] >= 1)
        #expect(s.totals[.connectionsFailed] == 0)
        expectConsistent(s)
    }

    /// The server half-closes at once (FIN) but keeps reading: the session keeps sending
    /// every copy it is given, and the close is the server's.
    @Test func afterAHalfCloseTheSessionKeepsSending() async throws {
        try await withServer(.halfCloseOnAccept) { server in
            let plan = try makePlan(
                """
                SETTINGS t {
                    SESSION = "TCP"
                    PORT = @PORT@
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR t {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 1ms
                    SEND 0:4 p COPIES 2 OFFSET 100ms
                    SEND 0:4 p COPIES 3 OFFSET 100ms
                    DRAIN 0:4 OFFSET 10ms
                }
                """, packets: ["p.bin": hello], port: server.port)
            let s = try await run(plan)
            #expect(await server.wait { $0.count == 4 && $0.allSatisfy { $0.closed && $0.bytes.count == 5 * 11 } })
            #expect(s.totals[.bytesSent] == 4 * 5 * 11)
            // Who closed depends on whether the FIN was read before the DISCONNECT (the
            // lifecycle tests pin down that a FIN seen first makes it the server's close).
            #expect(s.totals[.closedByPeer] + s.totals[.closedByUs] == 4)
            expectConsistent(s)
        }
    }

    /// Two TCP sessions that connect, then `then` (actions, one per line).
    static func twoSessions(then actions: String) -> String {
        """
        SETTINGS t {
            SESSION = "TCP"
            PORT = @PORT@
            ENDPOINTS { 127.0.0.1 }
        }
        ORCHESTRATOR t {
            CREATE 2 OFFSET 0ms
            CONNECT 0:2 OFFSET 1ms
            \(actions)
        }
        """
    }

    /// (ext) CHURN against a server that half-closes every connection: each turn closes and
    /// reconnects all the same (the close counts as the server's). It used to end the
    /// session instead: no reconnect, nothing sent after the first turn.
    @Test func churnReconnectsSessionsTheServerHalfClosed() async throws {
        try await withServer(.halfCloseOnAccept) { server in
            let plan = try makePlan(
                Self.twoSessions(then: "CHURN 0:2 EVERY 100ms OFFSET 0ms\n    DISCONNECT 0:2 OFFSET 1h"),
                port: server.port)
            let s = try await run(
                plan, until: { totals in await totals.wait(timeout: .seconds(60)) { $0[.reconnects] >= 6 } })
            #expect(s.totals[.connectionsAttempted] == 2 + s.totals[.reconnects])
            expectConsistent(s)
        }
    }

    /// DISCONNECT "reset" of sessions the server half-closed (at once, on accept: its FIN is
    /// read long before the DISCONNECT): the RST ends them, so they are closed by us. (A FIN
    /// read after it makes them ours anyway; a connect still under way at the DISCONNECT, on
    /// a machine slow beyond a second, is cancelled: then only the invariants are checked.)
    @Test func aResetAfterTheServersHalfCloseIsOurClose() async throws {
        try await withServer(.halfCloseOnAccept) { server in
            let plan = try makePlan(Self.twoSessions(then: "DISCONNECT 0:2 \"reset\" OFFSET 1s"), port: server.port)
            let s = try await run(plan)
            if s.totals[.connectionsSucceeded] == 2 {
                #expect(s.totals[.resetsSent] == 2 && s.totals[.closedByUs] == 2, "\(s.totals)")
            }
            expectConsistent(s)
        }
    }

    /// A server that resets each connection after reading 100 kB, under a flood: every reset
    /// is counted as a reset (whether it shows up on a read or on a write), and what the
    /// server read never exceeds what we counted as sent plus what is unconfirmed.
    @Test func resetsAreCountedAndTotalsStayHonest() async throws {
        try await withServer(.resetAfter(bytes: 100_000)) { server in
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
                    SEND 0:8 p COPIES 10 OFFSET 10ms
                    FLOOD 0:8 OFFSET 0ms
                    DISCONNECT 0:8 OFFSET 1h
                }
                """, packets: ["p.bin": [UInt8](repeating: 1, count: 1024)], port: server.port)
            let s = try await run(plan) { totals in await totals.wait { $0[.resets] == 8 } }
            #expect(await server.wait { $0.count == 8 && $0.allSatisfy(\.closed) })
            #expect(s.totals[.resets] == 8)
            #expect(server.totalBytes <= s.totals[.bytesSent] + s.totals[.bytesUnconfirmed])
            expectConsistent(s)
        }
    }
}

extension PressureTests {
    /// UDP connects complete at once: thousands of sessions on one shard connect without the
    /// completion of one starting the next inside it (that recursion overflowed the stack).
    @Test func thousandsOfImmediateConnectsOnOneShard() async throws {
        try await withUDPServer { server in
            let n = 6000
            let plan = try makePlan(
                """
                SETTINGS u {
                    SESSION = "UDP"
                    PORT = @PORT@
                    SHARDS = 1
                    ENDPOINTS { 127.0.0.1 }
                }
                ORCHESTRATOR u {
                    CREATE \(n) OFFSET 0ms
                    CONNECT 0:\(n) OFFSET 1ms
                    DISCONNECT 0:\(n) OFFSET 1h
                }
                """, port: server.port, shards: 1)
            let s = try await run(plan) { totals in await totals.wait { $0[.connectionsSucceeded] == n } }
            #expect(s.totals[.connectionsSucceeded] == n)
            #expect(s.totals[.closedByUs] == n)
            expectConsistent(s)
        }
    }

    /// A DISCONNECT that cancels pending connects does not start the queued ones on the way
    /// (they would only be cancelled in turn): no more are attempted than the window allows.
    @Test func disconnectDoesNotStartQueuedConnects() async throws {
        let listener = StallingListener(backlog: 0)
        let plan = try makePlan(
            """
            SETTINGS t {
                SESSION = "TCP"
                PORT = @PORT@
                SHARDS = 1
                CONNECT_WINDOW = 256
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR t {
                CREATE 600 OFFSET 0ms
                CONNECT 0:600 OFFSET 1ms
                DISCONNECT 0:600 OFFSET 1h
            }
            """, port: listener.port, shards: 1)
        let s = try await run(
            plan, configure: { $0.connectTimeout = .seconds(60) },
            until: { totals in await totals.wait { $0[.connectionsAttempted] >= 256 } })
        // The window (256) plus the few that got through the backlog and freed their slot.
        #expect(s.totals[.connectionsAttempted] < 300, "\(s.totals[.connectionsAttempted]) attempted")
        expectConsistent(s)
    }
}
