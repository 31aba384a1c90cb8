import LoadshearMetrics
import LoadshearTargets
import LoadshearTestSupport
import NIOCore
import NIOPosix
import Testing

/// A client for the tests: records what the target sends and writes what it is given.
final class TestClient: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received = Watched<[UInt8]>([])

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        received.change { $0 += b.readableBytesView }
    }

    static func connect(_ port: Int, group: EventLoopGroup) async throws -> (Channel, TestClient) {
        let client = TestClient()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(client) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return (channel, client)
    }
}

@Suite struct TargetTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test func sinkCountsEveryByte() async throws {
        let target = try await TargetServer.start(TargetOptions(kind: .sink))
        let (channel, _) = try await TestClient.connect(target.port, group: group)
        try await channel.writeAndFlush(ByteBuffer(bytes: [UInt8](repeating: 1, count: 100_000)))
        // Half-close and wait for the target to close in turn: it has then read to the end.
        // (Closing at once and stopping the target could race the accept itself.)
        try await channel.close(mode: .output)
        try await channel.closeFuture.get()
        await target.stop(grace: .seconds(30))
        #expect(target.counts.bytesRead == 100_000)
        #expect(target.counts.connections == 1)
    }

    /// A second UDP target on a port one holds fails, as on TCP: with SO_REUSEADDR both
    /// bound it and the second took the datagrams.
    @Test func aSecondUDPTargetOnATakenPortFails() async throws {
        var options = TargetOptions(kind: .sink)
        options.udp = true
        let first = try await TargetServer.start(options)
        options.port = first.port
        if let second = try? await TargetServer.start(options) {
            Issue.record("a second UDP target bound port \(first.port)")
            await second.stop()
        }
        await first.stop()
    }

    @Test func echoSendsBackWhatArrives() async throws {
        let target = try await TargetServer.start(TargetOptions(kind: .echo))
        let (channel, client) = try await TestClient.connect(target.port, group: group)
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        try await channel.writeAndFlush(ByteBuffer(bytes: data))
        #expect(await client.received.wait { $0.count == data.count })
        #expect(client.received.value == data)
        try await channel.close()
        await target.stop()
        #expect(target.counts.bytesWritten == data.count)
    }

    /// echo with `--delay`: every read comes back, in order, and none sooner than the delay
    /// after it was sent (a lower bound only: how late is the machine's business).
    @Test func delayedEchoSendsEachReadBackInOrderAfterTheDelay() async throws {
        var options = TargetOptions(kind: .echo)
        options.delayNanoseconds = 50_000_000
        let target = try await TargetServer.start(options)
        let (channel, client) = try await TestClient.connect(target.port, group: group)
        var expected: [UInt8] = []
        let sentAt = ContinuousClock.now
        for k in 0..<20 {
            let chunk = [UInt8](repeating: UInt8(k), count: 100 + k)
            expected += chunk
            try await channel.writeAndFlush(ByteBuffer(bytes: chunk))
        }
        #expect(await client.received.wait { !$0.isEmpty })
        // Nothing came back before the first write's delay was over.
        #expect(ContinuousClock.now - sentAt >= .milliseconds(50))
        let all = expected
        #expect(await client.received.wait { $0.count == all.count })
        #expect(client.received.value == all)
        try await channel.close()
        await target.stop()
        #expect(target.counts.bytesWritten == all.count)
    }

    /// broadcast with `count`: exactly that many heartbeats per connection, then it stops;
    /// pongs that come back are counted apart from other frames.
    @Test func broadcastSendsItsCountAndCountsPongs() async throws {
        var options = TargetOptions(kind: .broadcast)
        options.rate = 200
        options.count = 7
        options.bodySize = 4
        let target = try await TargetServer.start(options)
        let (channel, client) = try await TestClient.connect(target.port, group: group)
        let frame = 8 + 4
        #expect(await client.received.wait { $0.count == 7 * frame })
        let pings = client.received.value
        for i in 0..<7 {
            #expect(pings[i * frame + 3] == 1, "type 1")
            #expect(pings[i * frame + 7] == 4, "body length")
        }
        // Two pongs and one data frame back.
        var pong: [UInt8] = [0, 0, 0, 2, 0, 0, 0, 1, 9]
        pong += pong
        try await channel.writeAndFlush(ByteBuffer(bytes: pong + [0, 0, 0, 3, 0, 0, 0, 0]))
        try await channel.close()
        await target.stop()
        #expect(target.counts.framesSent == 7)
        #expect(target.counts.framesReceived == 3)
        #expect(target.counts.pongsReceived == 2)
        #expect(client.received.value.count == 7 * frame, "nothing after the count")
    }
}

extension TargetTests {
    /// The UDP targets count their peers whatever their kind (the sink said 0).
    @Test func udpTargetsCountTheirPeers() async throws {
        var options = TargetOptions(kind: .echo)
        options.udp = true
        let target = try await TargetServer.start(options)
        for _ in 0..<3 {
            let echoed = Watched(0)
            let channel = try await DatagramBootstrap(group: group)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(EchoCounter(echoed)) }
                }
                .connect(host: "127.0.0.1", port: target.port).get()
            try await channel.writeAndFlush(ByteBuffer(bytes: [1, 2, 3]))
            #expect(await echoed.wait { $0 == 1 })
            try await channel.close()
        }
        #expect(target.counts.connections == 3)
        await target.stop()
    }

    /// (ext) 64 datagrams sent in one segmented write reach the UDP echo target as 64 (one
    /// coalesced read or many) and come back as 64 datagrams; its socket dropped none.
    @Test func segmentedDatagramsAreCountedAndEchoedOneByOne() async throws {
        guard System.supportsUDPSegmentationOffload else { return }
        var options = TargetOptions(kind: .echo)
        options.udp = true
        let target = try await TargetServer.start(options)
        let echoed = Watched(0)
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.datagramSegmentSize, value: 100)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(EchoCounter(echoed)) }
            }
            .connect(host: "127.0.0.1", port: target.port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: [UInt8](repeating: 7, count: 64 * 100)))
        #expect(await echoed.wait { $0 == 64 })
        #expect(target.counts.framesReceived == 64)
        #expect(target.counts.framesSent == 64)
        #expect(target.counts.bytesRead == 6400)
        try await channel.close()
        await target.stop()
        #expect(target.counts.kernelDrops == 0)
    }

    /// (ext) The kernel's drop count of a port, from a `/proc/net/udp` table.
    @Test func kernelDropsAreReadFromTheProcTable() {
        let table = """
               sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
              101: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 17
              102: 0100007F:1F91 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4243 2 0000000000000000 5
            """
        #expect(UDPDrops.parse(table, port: 8080) == 17)
        #expect(UDPDrops.parse(table, port: 8081) == 5)
        #expect(UDPDrops.parse(table, port: 9) == 0)
        #expect(UDPDrops.parse("nothing", port: 9) == nil)
    }
}

/// Counts the datagrams that come back.
final class EchoCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let count: Watched<Int>
    init(_ count: Watched<Int>) { self.count = count }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { count.change { $0 += 1 } }
}
