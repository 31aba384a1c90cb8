import Foundation
import NIOCore
import NIOPosix

/// A test server written apart from the product's targets: it records every byte of every
/// connection and can send scripted bytes to each connection it accepts. Tests wait on its
/// state with `wait(until:)`, which wakes on every change: no sleeping.
final class RecordingServer: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `condition`.
    struct Connection {
        var bytes: [UInt8] = []
        var closed = false
    }

    enum Behaviour: Sendable {
        case record
        /// Close each connection as soon as it is accepted.
        case closeOnAccept
        /// Write these chunks, each flushed on its own, then keep recording.
        case send([[UInt8]])
    }

    private let condition = NSCondition()
    private var connections: [Connection] = []
    private let group: MultiThreadedEventLoopGroup
    private var channel: Channel!
    private(set) var port = 0

    init(_ behaviour: Behaviour = .record) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = change { s in
                        s.connections.append(Connection())
                        return s.connections.count - 1
                    }
                    try channel.pipeline.syncOperations.addHandler(Handler(server: self, id: id, behaviour: behaviour))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress!.port!
    }

    /// Stops listening and closes every connection. (The child initializer holds the
    /// server, so tests shut it down explicitly rather than relying on deinit.)
    func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    @discardableResult
    func change<T>(_ body: (RecordingServer) -> T) -> T {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return body(self)
    }

    func read<T>(_ body: ([Connection]) -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body(connections)
    }

    /// Waits until `predicate` holds, re-checking on every change; false on timeout.
    func wait(timeout: TimeInterval = 30, until predicate: ([Connection]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(connections) {
            if !condition.wait(until: deadline) { return predicate(connections) }
        }
        return true
    }

    var totalBytes: Int { read { $0.reduce(0) { $0 + $1.bytes.count } } }
    var allBytes: [[UInt8]] { read { $0.map(\.bytes) } }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let server: RecordingServer
        let id: Int
        let behaviour: Behaviour

        init(server: RecordingServer, id: Int, behaviour: Behaviour) {
            self.server = server
            self.id = id
            self.behaviour = behaviour
        }

        func channelActive(context: ChannelHandlerContext) {
            switch behaviour {
            case .record:
                break
            case .closeOnAccept:
                context.close(promise: nil)
            case .send(let chunks):
                for c in chunks {
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: c)), promise: nil)
                }
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            server.change { $0.connections[id].bytes += b.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            server.change { $0.connections[id].closed = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}
