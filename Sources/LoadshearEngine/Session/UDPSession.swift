import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix

/// A UDP session: a connected datagram socket. Each payload is one datagram; with READ,
/// each received datagram goes to the handler whole and a non-empty reply goes back as
/// one datagram. ICMP errors (port unreachable) are counted; the socket stays open.
final class UDPSession: Session, ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = ByteBuffer

    override func openChannel(to address: SocketAddress, on loop: EventLoop) -> EventLoopFuture<Channel> {
        let config = shard.config
        return DatagramBootstrap(group: loop)
            .channelOption(.writeBufferWaterMark, value: .init(low: config.lowWatermark, high: config.highWatermark))
            .channelInitializer(Session.initializer(NIOLoopBound(self, eventLoop: loop)))
            .connect(to: address)
    }

    func channelActive(context: ChannelHandlerContext) { active(context) }
    func channelInactive(context: ChannelHandlerContext) { inactive() }
    func channelWritabilityChanged(context: ChannelHandlerContext) { writabilityChanged(context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let datagram = unwrapInboundIn(data).data
        let counters = shard.counters
        counters.add(.bytesRead, datagram.readableBytes)
        counters.add(.framesRead)
        let settings = shard.plan.settings
        guard settings.read, state == .active else { return }
        if datagram.readableBytes > settings.bodyMax ?? Int.max {
            counters.add(.protocolErrors)  // dropped; a datagram is its own frame, the session goes on
            return
        }
        let handler = shard.handler
        if handler is NOPHandler { return }
        var reply: ByteBuffer?
        let outcome = datagram.withUnsafeReadableBytes { message in
            handler.handle(message) { bytes in
                var b = context.channel.allocator.buffer(capacity: bytes.count)
                b.writeBytes(bytes)
                reply = b
            }
        }
        record(outcome, counters)
        if let reply {
            responses.append((reply, 1))
            pump()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? IOError, e.errnoCode == ECONNREFUSED {
            shard.counters.add(.icmpErrors)  // port unreachable: counted, not fatal
            return
        }
        context.close(promise: nil)
    }

    /// One datagram per payload: unpatched ones are the prepared buffer itself; patched
    /// ones are slices of one buffer of whole patched copies.
    override func writeNextRun(_ context: ChannelHandlerContext) -> (Int, Int)? {
        guard cursor.wrapIfAllowed() else { return nil }
        let entry = cursor.entry
        let prepared = shard.packets[entry.packet]
        let size = prepared.size
        if !entry.patched {
            emit(prepared.buffer, context)
            cursor.advance(1)
            return (size, 1)
        }
        let k = min(cursor.available, max(1, min(64, 65_536 / size)))
        let copies = patchedCopies(k, entry, context.channel.allocator)
        for i in 0..<k {
            emit(copies.getSlice(at: copies.readerIndex + i * size, length: size)!, context)
        }
        cursor.advance(k)
        return (k * size, k)
    }
}
