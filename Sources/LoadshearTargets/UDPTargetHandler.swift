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
    /// (ext) `--reorder`: the ping held back for each peer until its next one is sent.
    private var held: [ByteBuffer?] = []
    /// (ext) Per peer: pings sent, withheld and swapped, for the line at the end of its stream.
    private var tally: [(sent: Int, withheld: Int, swapped: Int)] = []
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

    /// Sends each peer its share of pings for this tick, never past `count` per peer. (ext)
    /// With `--sequence` each ping carries the peer's next number; `--loss` withholds a ping
    /// (its number becomes a gap) and `--reorder` holds one back until the next is sent (in
    /// this tick or a later one). A ping still held when the peer's `count` is reached goes
    /// last and is not counted as swapped.
    private func tick(_ context: ChannelHandlerContext, _ perTick: Int) {
        var n = 0
        let impaired = options.sequence || options.loss > 0 || options.reorder > 0
        for (i, peer) in peers.enumerated() {
            let allowed = options.count.map { max(0, min(perTick, $0 - sentTo[i])) } ?? perTick
            for k in 0..<allowed {
                guard impaired else {
                    context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: frame)), promise: nil)
                    n += 1
                    tally[i].sent += 1
                    continue
                }
                var ping = frame
                if options.sequence {
                    ping.setInteger(
                        UInt32(truncatingIfNeeded: sentTo[i] + k), at: ping.readerIndex + options.headerSize)
                }
                if options.loss > 0, Double.random(in: 0..<1) < options.loss {
                    stats.withheld.wrappingAdd(1, ordering: .relaxed)
                    tally[i].withheld += 1
                    continue
                }
                let last = options.count.map { sentTo[i] + k + 1 >= $0 } ?? false
                if held[i] == nil, !last, options.reorder > 0, Double.random(in: 0..<1) < options.reorder {
                    held[i] = ping
                    continue
                }
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: ping)), promise: nil)
                n += 1
                tally[i].sent += 1
                if let h = held[i] {
                    context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: h)), promise: nil)
                    stats.swapped.wrappingAdd(1, ordering: .relaxed)
                    held[i] = nil
                    n += 1
                    tally[i].sent += 1
                    tally[i].swapped += 1
                }
            }
            let before = sentTo[i]
            sentTo[i] += allowed
            if let count = options.count, sentTo[i] >= count {
                if let h = held[i] {
                    context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: h)), promise: nil)
                    held[i] = nil
                    n += 1
                    tally[i].sent += 1
                }
                if before < count, let done = options.onStreamDone {
                    let t = tally[i]
                    done(
                        "stream to \(peer) done: \(count) numbers, \(t.sent) sent, \(t.withheld) withheld, \(t.swapped) swapped"
                    )
                }
            }
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
    /// datagram back. (ext) With receive offload a read may hold several datagrams of one
    /// peer back to back, cut at `segmentSize` (the last may be shorter): each is counted,
    /// and echo returns them as the same datagrams, in one send the kernel cuts again.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let n = envelope.data.readableBytes
        let segment = envelope.metadata?.segmentSize ?? 0
        let datagrams = segment > 0 && n > segment ? (n + segment - 1) / segment : 1
        stats.bytesRead.wrappingAdd(n, ordering: .relaxed)
        stats.framesReceived.wrappingAdd(datagrams, ordering: .relaxed)
        if known.insert(envelope.remoteAddress).inserted {
            peers.append(envelope.remoteAddress)
            sentTo.append(0)
            held.append(nil)
            tally.append((0, 0, 0))
            stats.connections.wrappingAdd(1, ordering: .relaxed)
        }
        switch options.kind {
        case .sink, .broadcast:
            break
        case .echo:
            stats.bytesWritten.wrappingAdd(n, ordering: .relaxed)
            stats.framesSent.wrappingAdd(datagrams, ordering: .relaxed)
            if datagrams > 1 {
                let metadata = AddressedEnvelope<ByteBuffer>.Metadata(
                    ecnState: .transportNotCapable, packetInfo: nil, segmentSize: segment)
                context.write(
                    wrapOutboundOut(
                        AddressedEnvelope(
                            remoteAddress: envelope.remoteAddress, data: envelope.data, metadata: metadata)),
                    promise: nil)
            } else {
                context.write(
                    wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: envelope.data)),
                    promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram socket outlives ICMP errors from one peer.
    }
}
