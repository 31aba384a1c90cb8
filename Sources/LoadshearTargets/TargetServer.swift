import LoadshearMetrics
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The built-in loopback targets: quickstart, tests and benchmarks load these.
package enum TargetKind: String, Sendable, CaseIterable {
    /// Counts and discards everything.
    case sink
    /// Sends back whatever arrives.
    case echo
    /// Sends framed heartbeat pings at a rate and counts the frames that come back.
    case broadcast
}

/// How a built-in target runs.
package struct TargetOptions: Sendable {
    package var kind: TargetKind
    /// Loopback only: targets never listen beyond this machine.
    package var host = "127.0.0.1"
    /// 0 picks a free port.
    package var port = 0
    /// broadcast: header size (≥ 8): bytes 0–3 the type (1 = ping), 4–7 the body length,
    /// both big-endian.
    package var headerSize = 8
    /// broadcast: body bytes per frame.
    package var bodySize = 8
    /// broadcast: frames per second per connection; 0 = as fast as the socket takes them.
    package var rate = 10
    /// broadcast: stop after this many frames per connection (nil = no limit).
    package var count: Int?
    /// Serve UDP instead of TCP: each datagram is one message; broadcast sends to every
    /// peer that has sent it a datagram.
    package var udp = false
    /// echo: (ext) send each read back after this many nanoseconds (0: at once), a server
    /// with a known service time.
    package var delayNanoseconds: Int64 = 0
    /// (ext) `--tls`: serve TCP over TLS with this certificate.
    package var tls: TargetTLS?
    /// (ext) UDP broadcast: stamp each peer's pings with a 4-byte big-endian sequence number
    /// (0, 1, 2…) in the first body bytes; withhold each with probability `loss` (its number
    /// is used up: a gap) and hold one back behind the next with probability `reorder`.
    package var sequence = false
    package var loss = 0.0
    package var reorder = 0.0
    /// (ext) UDP broadcast with `count`: told, once per peer, when its stream is complete
    /// (a line such as `stream to 127.0.0.1:40000 done: 500 numbers, 480 sent, 20 withheld,
    /// 9 swapped`), so whoever reads it knows when everything is on its way.
    package var onStreamDone: (@Sendable (String) -> Void)?

    package init(kind: TargetKind) {
        self.kind = kind
    }
}

/// What a target has seen. Totals over all connections.
package struct TargetCounts: Sendable, Equatable, CustomStringConvertible {
    /// TCP connections accepted, or UDP peers seen.
    package var connections = 0
    package var bytesRead = 0
    /// Bytes sent: pings, or what echo sent back.
    package var bytesWritten = 0
    /// broadcast: pings sent; UDP echo: datagrams sent back.
    package var framesSent = 0
    /// broadcast: whole frames received; UDP: datagrams received.
    package var framesReceived = 0
    /// broadcast: frames of type 2 (pongs) among those received.
    package var pongsReceived = 0
    /// (ext) UDP broadcast impairments: pings withheld (`--loss`) and pings sent after the
    /// next one (`--reorder`).
    package var withheld = 0
    package var swapped = 0
    /// (ext) UDP: datagrams the kernel dropped on this socket (its receive queue was full),
    /// from `/proc/net/udp`; nil where the system does not tell.
    package var kernelDrops: Int?

    package var description: String {
        "connections \(connections), bytes read \(bytesRead), bytes written \(bytesWritten), frames sent \(framesSent), frames received \(framesReceived) (\(pongsReceived) pongs)"
    }
}

/// A running target on loopback.
package final class TargetServer: Sendable {
    /// The port it listens on: the one picked, when port 0 was asked for.
    package let port: Int
    package let options: TargetOptions
    /// The listening (TCP) or bound (UDP) channel.
    private let channel: Channel
    private let group: MultiThreadedEventLoopGroup
    /// It made `group` itself, and shuts it down on ``stop(grace:)``.
    private let ownsGroup: Bool
    let stats: Stats

    /// Counters the handlers update on the event loops; ``counts`` reads them.
    final class Stats: Sendable {
        let connections = Atomic<Int>(0)
        let bytesRead = Atomic<Int>(0)
        let bytesWritten = Atomic<Int>(0)
        let framesSent = Atomic<Int>(0)
        let framesReceived = Atomic<Int>(0)
        let pongsReceived = Atomic<Int>(0)
        let withheld = Atomic<Int>(0)
        let swapped = Atomic<Int>(0)
        /// The kernel's drop count for the UDP socket, read just before it closes.
        let kernelDrops = Mutex<Int?>(nil)
        /// TCP connections open now, and who waits for none to be.
        private let open = Mutex<(count: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

        /// A TCP connection opened.
        func opened() {
            open.withLock { $0.count += 1 }
        }

        /// A TCP connection closed; when none is left open, the waiters resume.
        func closed() {
            let ready = open.withLock { o -> [CheckedContinuation<Void, Never>] in
                o.count -= 1
                guard o.count == 0 else { return [] }
                defer { o.waiters = [] }
                return o.waiters
            }
            for c in ready { c.resume() }
        }

        /// Returns once no connection is open.
        func allClosed() async {
            await withCheckedContinuation { c in
                let now = open.withLock { o -> Bool in
                    if o.count == 0 { return true }
                    o.waiters.append(c)
                    return false
                }
                if now { c.resume() }
            }
        }
    }

    private init(
        port: Int, options: TargetOptions, channel: Channel, group: MultiThreadedEventLoopGroup,
        ownsGroup: Bool, stats: Stats
    ) {
        self.port = port
        self.options = options
        self.channel = channel
        self.group = group
        self.ownsGroup = ownsGroup
        self.stats = stats
    }

    /// Starts a target; with no group given it runs its own (one thread per core).
    package static func start(
        _ options: TargetOptions, group: MultiThreadedEventLoopGroup? = nil
    ) async throws
        -> TargetServer
    {
        let g = group ?? MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        do {
            return try await start(options, on: g, owned: group == nil)
        } catch {
            // A port in use, say: the threads made for this target go too.
            if group == nil { try? await g.shutdownGracefully() }
            throw error
        }
    }

    private static func start(
        _ options: TargetOptions, on g: MultiThreadedEventLoopGroup, owned: Bool
    ) async throws -> TargetServer {
        let stats = Stats()
        let frame = BroadcastFrame(options: options)
        if options.udp {
            let gro = System.supportsUDPReceiveOffload
            let channel = try await DatagramBootstrap(group: g)
                // No SO_REUSEADDR: on UDP it lets a second socket bind the same port and take
                // the datagrams, so a second target would start silently instead of failing.
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                // With receive offload (UDP_GRO) one read takes up to 64 datagrams of a
                // flow, coalesced, with their segment size; otherwise up to 32 datagrams per
                // recvmmsg. Either way each has room for the largest datagram.
                .channelOption(.datagramVectorReadMessageCount, value: gro ? 0 : 32)
                .channelOption(
                    .recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: (gro ? 1 : 32) * 65_536)
                )
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if gro {
                            try channel.syncOptions?.setOption(.datagramReceiveOffload, value: true)
                            try channel.syncOptions?.setOption(.datagramReceiveSegmentSize, value: true)
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            UDPTargetHandler(stats: stats, options: options, frame: frame))
                    }
                }
                .bind(host: options.host, port: options.port)
                .get()
            return TargetServer(
                port: channel.localAddress?.port ?? options.port, options: options, channel: channel,
                group: g, ownsGroup: owned, stats: stats)
        }
        let channel = try await ServerBootstrap(group: g)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                stats.connections.wrappingAdd(1, ordering: .relaxed)
                stats.opened()
                channel.closeFuture.whenComplete { _ in stats.closed() }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls = options.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    let handler: ChannelHandler =
                        switch options.kind {
                        case .sink: SinkHandler(stats: stats)
                        case .echo: EchoHandler(stats: stats, delay: .nanoseconds(options.delayNanoseconds))
                        case .broadcast: BroadcastHandler(stats: stats, options: options, frame: frame)
                        }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: options.host, port: options.port)
            .get()
        let port = channel.localAddress?.port ?? options.port
        return TargetServer(
            port: port, options: options, channel: channel, group: g, ownsGroup: owned,
            stats: stats)
    }

    /// The counts so far.
    package var counts: TargetCounts {
        TargetCounts(
            connections: stats.connections.load(ordering: .relaxed),
            bytesRead: stats.bytesRead.load(ordering: .relaxed),
            bytesWritten: stats.bytesWritten.load(ordering: .relaxed),
            framesSent: stats.framesSent.load(ordering: .relaxed),
            framesReceived: stats.framesReceived.load(ordering: .relaxed),
            pongsReceived: stats.pongsReceived.load(ordering: .relaxed),
            withheld: stats.withheld.load(ordering: .relaxed),
            swapped: stats.swapped.load(ordering: .relaxed),
            kernelDrops: options.udp ? (stats.kernelDrops.withLock { $0 } ?? UDPDrops.count(port: port)) : nil)
    }

    /// Stops listening; then, for up to `grace`, lets the clients finish (a TCP target
    /// reads until each client has closed, so its counts include everything sent to it);
    /// then closes what is left.
    package func stop(grace: TimeAmount = .seconds(2)) async {
        if options.udp { stats.kernelDrops.withLock { $0 = UDPDrops.count(port: port) } }
        try? await channel.close()
        if !options.udp {
            let stats = self.stats
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let once = ResumeOnce(c)
                Task {
                    await stats.allClosed()
                    once.resume()
                }
                Task {
                    try? await Task.sleep(nanoseconds: UInt64(grace.nanoseconds))
                    once.resume()
                }
            }
        }
        if ownsGroup { try? await group.shutdownGracefully() }
    }
}
