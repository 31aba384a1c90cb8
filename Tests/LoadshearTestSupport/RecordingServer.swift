import Foundation
import NIOCore
import NIOPosix

/// A test server written apart from the product's targets: it records every byte of every
/// connection and can play a scripted part (send frames, ping on a timer, never read,
/// half-close, reset). Tests wait on its state with `wait(until:)`, which suspends until a
/// change makes the predicate true: no sleeping, no blocked threads.
public final class RecordingServer: Sendable {
    public struct Connection: Sendable {
        /// Every byte received (left empty under `.ping`, which only counts frames).
        public var bytes: [UInt8] = []
        public var bytesReceived = 0
        /// `.ping` only: frames received by type (8-byte header: type at byte 3, body
        /// length at bytes 4..7, big-endian).
        public var framesByType: [UInt8: Int] = [:]
        public var closed = false
        /// Frames the server wrote (pings, scripted chunks).
        public var framesWritten = 0
        /// The client's address as the server saw it.
        public var peer: String?
        /// The client reset the connection (RST) rather than closing it (FIN).
        public var reset = false
    }

    public enum Behaviour: Sendable {
        case record
        /// Close each connection as soon as it is accepted.
        case closeOnAccept
        /// Write these chunks, each flushed on its own, then keep recording.
        case send([[UInt8]])
        /// Write `frame` every `interval`, `count` times, counting the frames that come back
        /// by type (not keeping their bytes: the client may flood).
        case ping(frame: [UInt8], every: TimeAmount, count: Int)
        /// Write `frame` as fast as the socket takes it and never read.
        case floodNeverRead(frame: [UInt8])
        /// Accept and do not read (nor write) until `startReading()`: the client's writes
        /// stall once the buffers fill.
        case neverRead
        /// Shut down the sending side at once (FIN), keep reading.
        case halfCloseOnAccept
        /// Read `bytes`, then reset the connection (SO_LINGER 0 and close).
        case resetAfter(bytes: Int)
        /// Cut what arrives into requests of `frameSize` bytes and write back, for each, the
        /// frames `reply` returns (none: the request is dropped); bytes are recorded.
        case answer(frameSize: Int, reply: @Sendable ([UInt8]) -> [[UInt8]])
    }

    /// The connections seen so far.
    public let connections: Watched<[Connection]>
    private let childChannels: Watched<[Channel]>
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    public let port: Int

    private init(
        group: MultiThreadedEventLoopGroup, channel: Channel, connections: Watched<[Connection]>,
        childChannels: Watched<[Channel]>
    ) {
        self.group = group
        self.channel = channel
        self.connections = connections
        self.childChannels = childChannels
        self.port = channel.localAddress!.port!
    }

    /// Starts listening on 127.0.0.1, port 0. `receiveBuffer` fixes SO_RCVBUF of every
    /// connection (no autotuning), so a server that never reads holds little in its kernel.
    public static func start(
        _ behaviour: Behaviour = .record, receiveBuffer: Int? = nil
    ) async throws -> RecordingServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = Watched<[Connection]>([])
        let children = Watched<[Channel]>([])
        var bootstrap = ServerBootstrap(group: group)
        if let receiveBuffer {
            bootstrap = bootstrap.serverChannelOption(.socketOption(.so_rcvbuf), value: receiveBuffer)
        }
        let channel =
            try await bootstrap
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = state.change { s in
                        s.append(Connection())
                        return s.count - 1
                    }
                    children.change { $0.append(channel) }
                    switch behaviour {
                    case .floodNeverRead, .neverRead: try channel.syncOptions?.setOption(.autoRead, value: false)
                    default: break
                    }
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state, id: id, behaviour: behaviour))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RecordingServer(group: group, channel: channel, connections: state, childChannels: children)
    }

    /// Waits until `predicate` holds over the connections; false after `timeout`.
    public func wait(
        timeout: Duration = .seconds(90), until predicate: @escaping @Sendable ([Connection]) -> Bool
    ) async -> Bool {
        await connections.wait(timeout: timeout, until: predicate)
    }

    public var totalBytes: Int { connections.read { $0.reduce(0) { $0 + $1.bytes.count } } }
    public var allBytes: [[UInt8]] { connections.read { $0.map(\.bytes) } }

    /// `.neverRead`: starts reading every connection (it then sees what the client sent, and
    /// its close).
    public func startReading() async {
        let children = childChannels.value
        for c in children { try? await c.setOption(.autoRead, value: true).get() }
        for c in children { c.read() }
    }

    /// Stops listening and closes every connection.
    public func shutdown() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let state: Watched<[Connection]>
        let id: Int
        let behaviour: Behaviour
        private var timer: RepeatedTask?
        private var received = 0
        private var pingsSent = 0
        private var resetting = false
        /// `.ping`: the unparsed tail of the stream.
        private var tail = ByteBuffer()

        init(state: Watched<[Connection]>, id: Int, behaviour: Behaviour) {
            self.state = state
            self.id = id
            self.behaviour = behaviour
        }

        func channelActive(context: ChannelHandlerContext) {
            let id = self.id
            let peer = context.remoteAddress?.ipAddress
            state.change { $0[id].peer = peer }
            switch behaviour {
            case .record, .resetAfter, .neverRead, .answer:
                break
            case .closeOnAccept:
                context.close(promise: nil)
            case .send(let chunks):
                for c in chunks {
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: c)), promise: nil)
                }
                state.change { $0[id].framesWritten += chunks.count }
            case .ping(let frame, let interval, let count):
                let buffer = ByteBuffer(bytes: frame)
                let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                let me = NIOLoopBound(self, eventLoop: context.eventLoop)
                timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) {
                    [state] task in
                    let context = ctx.value
                    let handler = me.value
                    guard handler.pingsSent < count, context.channel.isActive else {
                        task.cancel()
                        return
                    }
                    handler.pingsSent += 1
                    context.writeAndFlush(NIOAny(buffer), promise: nil)
                    state.change { $0[id].framesWritten += 1 }
                }
            case .floodNeverRead(let frame):
                flood(context, ByteBuffer(bytes: frame))
            case .halfCloseOnAccept:
                context.close(mode: .output, promise: nil)
            }
        }

        private func flood(_ context: ChannelHandlerContext, _ frame: ByteBuffer) {
            var n = 0
            while context.channel.isWritable, n < 256 {
                context.write(NIOAny(frame), promise: nil)
                n += 1
            }
            context.flush()
            let id = self.id
            state.change { $0[id].framesWritten += n }
            if context.channel.isActive {
                let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                let me = NIOLoopBound(self, eventLoop: context.eventLoop)
                if context.channel.isWritable {
                    context.eventLoop.execute { me.value.flood(ctx.value, frame) }
                }
            }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if case .floodNeverRead(let frame) = behaviour, context.channel.isWritable {
                flood(context, ByteBuffer(bytes: frame))
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            let id = self.id
            received += b.readableBytes
            if case .ping = behaviour {
                var buffer = b
                tail.writeBuffer(&buffer)
                var counts: [UInt8: Int] = [:]
                while tail.readableBytes >= 8 {
                    let type = tail.getInteger(at: tail.readerIndex + 3, as: UInt8.self)!
                    let length = Int(tail.getInteger(at: tail.readerIndex + 4, as: UInt32.self)!)
                    guard tail.readableBytes >= 8 + length else { break }
                    tail.moveReaderIndex(forwardBy: 8 + length)
                    counts[type, default: 0] += 1
                }
                tail.discardReadBytes()
                let n = b.readableBytes
                state.change { c in
                    c[id].bytesReceived += n
                    c[id].framesByType.merge(counts, uniquingKeysWith: +)
                }
            } else {
                state.change {
                    $0[id].bytes += b.readableBytesView
                    $0[id].bytesReceived += b.readableBytes
                }
            }
            if case .answer(let size, let reply) = behaviour {
                var buffer = b
                tail.writeBuffer(&buffer)
                var wrote = false
                while tail.readableBytes >= size, let request = tail.readBytes(length: size) {
                    for frame in reply(request) {
                        context.write(wrapOutboundOut(ByteBuffer(bytes: frame)), promise: nil)
                        wrote = true
                    }
                }
                tail.discardReadBytes()
                if wrote { context.flush() }
            }
            if case .resetAfter(let limit) = behaviour, received >= limit, !resetting,
                let provider = context.channel as? SocketOptionProvider
            {
                resetting = true
                let channel = context.channel
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // The client half-closed: close our side too, as a plain server would.
            if let e = event as? ChannelEvent, e == .inputClosed { context.close(promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            timer?.cancel()
            let id = self.id
            state.change { $0[id].closed = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if let e = error as? IOError, e.errnoCode == ECONNRESET {
                let id = self.id
                state.change { $0[id].reset = true }
            }
            context.close(promise: nil)
        }
    }
}

/// Runs `body` with a server, shutting it down afterwards whatever happens.
public func withServer<T>(
    _ behaviour: RecordingServer.Behaviour = .record, receiveBuffer: Int? = nil,
    _ body: (RecordingServer) async throws -> T
) async throws -> T {
    let server = try await RecordingServer.start(behaviour, receiveBuffer: receiveBuffer)
    do {
        let result = try await body(server)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

/// Runs `body` with a UDP server, shutting it down afterwards whatever happens.
public func withUDPServer<T>(
    _ behaviour: RecordingUDPServer.Behaviour = .record,
    _ body: (RecordingUDPServer) async throws -> T
) async throws -> T {
    let server = try await RecordingUDPServer.start(behaviour)
    do {
        let result = try await body(server)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}
