import Foundation
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix
import Testing

/// An independent UDP server for the tests: records every datagram by peer, optionally
/// echoing it back. Waits wake on every datagram.
final class RecordingUDPServer: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var datagrams: [String: [[UInt8]]] = [:]
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: Channel!
    private(set) var port = 0

    init(echo: Bool) throws {
        channel = try DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(server: self, echo: echo))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress!.port!
    }

    func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    func record(_ peer: String, _ bytes: [UInt8]) {
        condition.lock()
        datagrams[peer, default: []].append(bytes)
        condition.broadcast()
        condition.unlock()
    }

    func wait(timeout: TimeInterval = 30, until predicate: ([String: [[UInt8]]]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(datagrams) {
            if !condition.wait(until: deadline) { return predicate(datagrams) }
        }
        return true
    }

    var all: [String: [[UInt8]]] {
        condition.lock()
        defer { condition.unlock() }
        return datagrams
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let server: RecordingUDPServer
        let echo: Bool

        init(server: RecordingUDPServer, echo: Bool) {
            self.server = server
            self.echo = echo
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let e = unwrapInboundIn(data)
            server.record("\(e.remoteAddress)", Array(e.data.readableBytesView))
            if echo { context.writeAndFlush(data, promise: nil) }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {}
    }
}

@Suite(.serialized) struct UDPTests {
    @Test func eachPayloadIsOneDatagramWithUniqueCounters() async throws {
        let server = try RecordingUDPServer(echo: false)
        defer { server.shutdown() }
        let plan = try makePlan("""
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
                DISCONNECT 0:10 OFFSET 300ms
            }
            """, packets: ["p.bin": hello, "q.bin": [7, 7, 7]], port: server.port)
        let s = try await run(plan)
        #expect(server.wait { $0.count == 10 && $0.values.allSatisfy { $0.count == 23 } })
        var values: [UInt64] = []
        for (_, grams) in server.all {
            #expect(grams.prefix(20).allSatisfy { $0.count == 11 && $0.suffix(7).elementsEqual(hello.suffix(7)) })
            #expect(grams.suffix(3).allSatisfy { $0 == [7, 7, 7] })
            values += grams.prefix(20).map { integer($0.prefix(4)[...], bigEndian: true) }
        }
        #expect(values.sorted() == (0..<200).map { UInt64($0) })
        #expect(s.totals[.packetsSent] == 230)
        #expect(s.totals[.bytesSent] == 200 * 11 + 30 * 3)
    }

    @Test func handlerRepliesGoBackAsDatagrams() async throws {
        let server = try RecordingUDPServer(echo: true)
        defer { server.shutdown() }
        // Each session sends 5 pings; the server echoes them; the heartbeat handler answers
        // each echoed ping with a pong, which the server records (and echoes: pongs get no reply).
        let ping = frame(type: 1, body: Array("hb".utf8))
        let plan = try makePlan("""
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
                DISCONNECT 0:4 OFFSET 1s
            }
            """, packets: ["ping.bin": ping, "h.wasm": try sdkModule("c/heartbeat.wasm")], port: server.port)
        let pong = frame(type: 2, body: Array("hb".utf8))
        async let result = run(plan)
        #expect(server.wait { $0.count == 4 && $0.values.allSatisfy { g in g.filter { $0 == pong }.count == 5 } })
        let s = try await result
        #expect(server.all.values.allSatisfy { $0.filter { $0 == ping }.count == 5 })
        #expect(s.totals[.framesRead] == 4 * 10)
        #expect(s.totals[.handlerCalls] == 4 * 10)
        #expect(s.totals[.responsesSent] == 4 * 5)
    }

    @Test func portUnreachableIsCountedNotFatal() async throws {
        let port = try { let s = try RecordingUDPServer(echo: false); s.shutdown(); return s.port }()
        let plan = try makePlan("""
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
                SEND 0:3 p COPIES 1 OFFSET 50ms
                DISCONNECT 0:3 OFFSET 100ms
            }
            """, packets: ["p.bin": hello], port: port)
        let s = try await run(plan)
        #expect(s.totals[.icmpErrors] >= 1)
        #expect(s.totals[.connectionsSucceeded] == 3)
        #expect(s.totals[.closedByUs] == 3)
    }

    @Test func floodWithRepeatUntilDrain() async throws {
        let server = try RecordingUDPServer(echo: false)
        defer { server.shutdown() }
        let plan = try makePlan("""
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
        #expect(sent > 2 * 3 * 10)
        #expect(sent % 3 == 0, "DRAIN finishes the current pass of 3 payloads")
        #expect(s.totals[.connectionsActive] == 0)
        // Loopback may drop datagrams under a flood; what arrives is never more than was sent.
        #expect(server.wait(timeout: 5) { $0.values.reduce(0) { $0 + $1.count } > 0 })
        #expect(server.all.values.reduce(0) { $0 + $1.count } <= sent)
    }
}
