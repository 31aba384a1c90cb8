import NIOCore
import NIOPosix

/// The UDP side of the built-in targets: sink counts datagrams, echo sends each one back,
/// broadcast sends heartbeat pings at the rate to every peer that has sent it anything.
final class UDPTargetHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let stats: TargetServer.Stats
    let options: TargetOptions
    let frame: ByteBuffer
    /// Every peer that has sent a datagram (all kinds count them; broadcast pings them).
    private var peers: [SocketAddress] = []
    /// `peers` as a set, to spot new ones.
    private var known = Set<SocketAddress>()
    /// Pings sent to each peer, by its index in `peers`.
    private var sentTo: [Int] = []
    private var timer: RepeatedTask?

    init(stats: TargetServer.Stats, options: TargetOptions, frame: BroadcastFrame) {
        self.stats = stats
        self.options = options
        var b = ByteBufferAllocator().buffer(capacity: frame.bytes.count)
        b.writeBytes(frame.bytes)
        self.frame = b
    }

    /// broadcast: starts the pacing timer, whose first tick comes one interval in.
    func channelActive(context: ChannelHandlerContext) {
        guard options.kind == .broadcast else { return }
        let (perTick, interval) = BroadcastFrame.ticks(rate: options.rate)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            me.value.tick(ctx.value, perTick)
        }
    }

    /// Sends each peer its share of pings for this tick, never past `count` per peer.
    private func tick(_ context: ChannelHandlerContext, _ perTick: Int) {
        var n = 0
        for (i, peer) in peers.enumerated() {
            let allowed = options.count.map { max(0, min(perTick, $0 - sentTo[i])) } ?? perTick
            for _ in 0..<allowed {
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: frame)), promise: nil)
            }
            sentTo[i] += allowed
            n += allowed
        }
        if n > 0 {
            context.flush()
            stats.framesSent.wrappingAdd(n, ordering: .relaxed)
            stats.bytesWritten.wrappingAdd(n * frame.readableBytes, ordering: .relaxed)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    /// Counts the datagram and its sender (a new peer counts as a connection); echo sends the
    /// datagram back.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let n = envelope.data.readableBytes
        stats.bytesRead.wrappingAdd(n, ordering: .relaxed)
        stats.framesReceived.wrappingAdd(1, ordering: .relaxed)
        if known.insert(envelope.remoteAddress).inserted {
            peers.append(envelope.remoteAddress)
            sentTo.append(0)
            stats.connections.wrappingAdd(1, ordering: .relaxed)
        }
        switch options.kind {
        case .sink, .broadcast:
            break
        case .echo:
            stats.bytesWritten.wrappingAdd(n, ordering: .relaxed)
            stats.framesSent.wrappingAdd(1, ordering: .relaxed)
            context.write(data, promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram socket outlives ICMP errors from one peer.
    }
}
