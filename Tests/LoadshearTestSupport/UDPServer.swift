import Foundation
import NIOCore
import NIOPosix

/// An independent UDP server for the tests: records every datagram by peer, and can echo
/// each one back or answer with scripted datagrams.
public final class RecordingUDPServer: Sendable {
    public enum Behaviour: Sendable {
        case record
        case echo
        /// Answer the first datagram of each peer with these datagrams (once per peer).
        case replyOnce([[UInt8]])
    }

    /// Datagrams received, by peer address.
    public let datagrams = Watched<[String: [[UInt8]]]>([:])
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    public let port: Int

    private init(group: MultiThreadedEventLoopGroup, channel: Channel) {
        self.group = group
        self.channel = channel
        self.port = channel.localAddress!.port!
    }

    public static func start(_ behaviour: Behaviour = .record) async throws -> RecordingUDPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let box = Box()
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(box: box, behaviour: behaviour))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = RecordingUDPServer(group: group, channel: channel)
        box.server = server
        return server
    }

    /// Lets the handler (created before the server object) reach it.
    final class Box: @unchecked Sendable {
        // @unchecked: set once before the first datagram can arrive.
        var server: RecordingUDPServer?
    }

    public func wait(
        timeout: Duration = .seconds(90), until predicate: @escaping @Sendable ([String: [[UInt8]]]) -> Bool
    ) async -> Bool {
        await datagrams.wait(timeout: timeout, until: predicate)
    }

    public var all: [String: [[UInt8]]] { datagrams.value }

    public func shutdown() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let box: Box
        let behaviour: Behaviour
        private var answered = Set<String>()

        init(box: Box, behaviour: Behaviour) {
            self.box = box
            self.behaviour = behaviour
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let e = unwrapInboundIn(data)
            let peer = "\(e.remoteAddress)"
            box.server?.datagrams.change { $0[peer, default: []].append(Array(e.data.readableBytesView)) }
            switch behaviour {
            case .record:
                break
            case .echo:
                context.writeAndFlush(data, promise: nil)
            case .replyOnce(let grams):
                if answered.insert(peer).inserted {
                    for g in grams {
                        context.write(
                            wrapOutboundOut(
                                AddressedEnvelope(remoteAddress: e.remoteAddress, data: ByteBuffer(bytes: g))),
                            promise: nil)
                    }
                    context.flush()
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {}
    }
}

/// A TCP port on 127.0.0.1 where connects are refused, held for as long as this lives: a
/// socket bound to it that does not listen. No race with other tests for a "free" port,
/// and nothing else can start listening there meanwhile.
public final class RefusingPort: @unchecked Sendable {
    // @unchecked: immutable after init.
    public let port: Int
    private let fd: Int32

    public init() {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        port = Self.bindLoopback(fd)
    }

    deinit { close(fd) }

    /// Binds `fd` to 127.0.0.1:0 and returns the port.
    static func bindLoopback(_ fd: Int32) -> Int {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, len)
                _ = getsockname(fd, $0, &len)
            }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// A UDP port on 127.0.0.1 where datagrams get ICMP "port unreachable": a socket bound to
/// it but connected to another peer, so the kernel delivers nothing from anyone else.
public final class UnreachableUDPPort: @unchecked Sendable {
    // @unchecked: immutable after init.
    public let port: Int
    private let fd: Int32

    public init() {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        port = RefusingPort.bindLoopback(fd)
        var peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        peer.sin_addr.s_addr = inet_addr("127.0.0.2")
        peer.sin_port = UInt16(9).bigEndian
        withUnsafePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    deinit { close(fd) }
}

/// A listening socket that never accepts: connects succeed through the backlog (up to
/// `backlog`), and writes stall once the buffers are full.
public final class StallingListener: @unchecked Sendable {
    // @unchecked: immutable after init.
    public let port: Int
    private let fd: Int32

    public init(backlog: Int32 = 64) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        port = RefusingPort.bindLoopback(fd)
        _ = listen(fd, backlog)
    }

    deinit { close(fd) }
}
