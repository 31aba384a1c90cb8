import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import NIOPosix

/// A UDP session: a connected datagram socket. Each payload is one datagram; with READ,
/// each received datagram goes to the handler whole and a non-empty reply goes back as
/// one datagram. ICMP errors (port unreachable) reported on a read are counted; the socket
/// stays open.
final class UDPSession: Session, ChannelDuplexHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Room for the largest datagram (65,507 bytes over IPv4, 65,527 over IPv6), so nothing
    /// is ever cut short: byte counts and BODYMAX see the real size. The buffer is per read
    /// and freed with the datagram.
    static let receiveCapacity = 65_536
    /// The socket's receive buffer with READ: 1 MiB, about a thousand small datagrams.
    static let receiveBuffer: SocketOptionValue = 1 << 20

    /// A datagram channel connected to `address`, with the write watermarks and a receive
    /// buffer of ``receiveCapacity`` bytes per datagram.
    override func openChannel(to address: SocketAddress, from source: SocketAddress?) -> EventLoopFuture<Channel> {
        let config = shard.config
        let bound = NIOLoopBound(self, eventLoop: shard.loop)
        let reads = shard.plan.settings.read
        return DatagramBootstrap(group: shard.loop)
            .channelOption(.writeBufferWaterMark, value: .init(low: config.lowWatermark, high: config.highWatermark))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.receiveCapacity))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let session = bound.value
                    if reads {
                        // Room for bursts while the loop is busy elsewhere (capped by
                        // net.core.rmem_max); what still overflows is counted (udpReceiveDrops).
                        try channel.syncOptions?.setOption(.socketOption(.so_rcvbuf), value: Self.receiveBuffer)
                    }
                    try session.initialize(channel, handler: session)
                }
            }
            .connect(to: address)
    }

    /// (ext) Segmentation offload on this connection: the segment size (0: off), the shard's
    /// unless the route's MTU is too small for it, and the connected address that segmented
    /// writes carry (the size goes with each such write, never on the socket, so a single
    /// datagram is sent exactly as without offload).
    private var segment = 0
    private var peer: SocketAddress?

    func channelActive(context: ChannelHandlerContext) { active(context) }

    /// Turns segmentation on when the route's MTU (`IP_MTU`, `IPV6_MTU`) holds a segment and
    /// its headers: the kernel refuses a segmented send that would not fit.
    override func didBecomeActive(_ context: ChannelHandlerContext) {
        guard shard.udpSegmentSize > 0, let remote = context.channel.remoteAddress else { return }
        let v6 = remote.protocol == .inet6
        let mtuOption = ChannelOptions.Types.SocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: v6 ? 41 : 0),  // IPPROTO_IPV6, IPPROTO_IP
            name: NIOBSDSocket.Option(rawValue: v6 ? 24 : 14))  // IPV6_MTU, IP_MTU
        guard let mtu = try? context.channel.syncOptions?.getOption(mtuOption),
            Int(mtu) >= shard.udpSegmentSize + (v6 ? 48 : 28)
        else { return }
        peer = remote
        segment = shard.udpSegmentSize
    }

    /// With READ, adds what the kernel dropped on this socket because its receive queue was
    /// full (`SO_MEMINFO`'s drops): datagrams the server sent that Loadshear never read.
    override func willClose(_ channel: Channel) {
        guard shard.plan.settings.read, let provider = channel as? SocketOptionProvider else { return }
        let counters = shard.counters
        // SO_MEMINFO is 55 on Linux.
        let info: EventLoopFuture<SocketMemoryInfo> = provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: 55))
        info.whenSuccess { m in
            if m.drops > 0 { counters.add(.udpReceiveDrops, Int(m.drops)) }
        }
    }
    func channelInactive(context: ChannelHandlerContext) { inactive() }
    func channelWritabilityChanged(context: ChannelHandlerContext) { writabilityChanged(context) }
    func read(context: ChannelHandlerContext) { interceptRead(context) }

    /// Counts the datagram. With READ, one above BODYMAX is dropped (counted, the first logged)
    /// and any other goes to the handler, whose non-empty reply is queued as one datagram.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let datagram = unwrapInboundIn(data).data
        let counters = shard.counters
        counters.add(.bytesRead, datagram.readableBytes)
        counters.add(.framesRead)
        if datagram.readableBytes >= Self.receiveCapacity { counters.add(.datagramsTruncated) }
        let settings = shard.plan.settings
        guard settings.read, lifecycle.isActive else { return }
        if datagram.readableBytes > settings.bodyMax ?? Int.max {
            counters.add(.oversizedDatagrams)  // dropped; a datagram is its own frame, the session goes on
            let n = datagram.readableBytes
            shard.reportOnce("oversized datagram") {
                "\(Self.describe(context.channel.remoteAddress)) sent a datagram of \(n) bytes, more than BODYMAX \(settings.bodyMax ?? 0): dropped, the session goes on"
            }
            return
        }
        if settings.response != nil || settings.sequence != nil {
            let now = NIODeadline.now().uptimeNanoseconds
            datagram.withUnsafeReadableBytes { d in
                if settings.response != nil { matchReply(d, at: now) }
                if settings.sequence != nil { trackSequence(d, at: now) }
            }
        }
        let handler = shard.handler
        if handler is NOPHandler { return }
        var reply: ByteBuffer?
        var tooLarge = 0
        let outcome = datagram.withUnsafeReadableBytes { message in
            handler.handle(message) { bytes in
                guard
                    bytes.count <= PlanBuilder.maxUDPPayload
                        || (bytes.count <= PlanBuilder.maxUDPPayloadIPv6 && context.remoteAddress?.protocol == .inet6)
                else {
                    // No datagram carries it: dropped, and the session goes on.
                    tooLarge = bytes.count
                    return
                }
                var b = replyBuffer(context.channel.allocator, capacity: bytes.count)
                b.writeBytes(bytes)
                reply = b
                replyProduced(size: bytes.count)
            }
        }
        record(outcome)
        recordMemoryDenials()
        if tooLarge > 0 {
            shard.counters.add(.oversizedReplies)
            shard.reportOnce("udp reply too large") {
                "the handler's reply of \(tooLarge) bytes does not fit one UDP datagram (at most \(PlanBuilder.maxUDPPayload) bytes over IPv4, \(PlanBuilder.maxUDPPayloadIPv6) over IPv6): dropped, counted as oversizedReplies"
            }
        }
        if let reply { queueReplies(reply, count: 1) }
    }

    /// Port unreachable (ECONNREFUSED) is counted and the session goes on; any other error
    /// closes it.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? IOError, e.errnoCode == ECONNREFUSED {
            shard.counters.add(.icmpErrors)  // port unreachable: counted, not fatal
            return
        }
        socketError(error)
    }

    /// One datagram per payload: unpatched ones are the prepared buffer itself; patched
    /// ones are slices of one buffer of whole patched copies. (ext) With segmentation offload,
    /// a run of the segment size goes out as one write of back-to-back copies (a slice of the
    /// prepared repeated buffer, or the patched copies whole) that the kernel cuts into
    /// datagrams: one send for up to 64 of them.
    override func writeNextRun(_ context: ChannelHandlerContext) -> (count: Int, size: Int)? {
        guard cursor.budget > 0, cursor.wrapIfAllowed() else { return nil }
        let entry = cursor.entry
        let prepared = shard.packets[entry.packet]
        let size = prepared.size
        let segmented = size == segment && cursor.available > 1
        if !entry.patched {
            guard segmented else {
                emit(prepared.buffer, context)
                cursor.advance(1)
                return (1, size)
            }
            let k = min(cursor.available, prepared.repeatCount, shard.udpSegmentsPerWrite)
            emitSegmented(prepared.copies(k), size: size, context)
            cursor.advance(k)
            return (k, size)
        }
        let k = min(cursor.available, segmented ? shard.udpSegmentsPerWrite : max(1, min(64, 65_536 / size)))
        let copies = patchedCopies(k, entry, context.channel.allocator)
        if segmented {
            emitSegmented(copies, size: size, context)
        } else {
            for i in 0..<k {
                emit(copies.getSlice(at: copies.readerIndex + i * size, length: size)!, context)
            }
        }
        cursor.advance(k)
        return (k, size)
    }

    /// One write of back-to-back datagrams of `size` bytes that the kernel cuts apart.
    private func emitSegmented(_ buffer: ByteBuffer, size: Int, _ context: ChannelHandlerContext) {
        guard buffer.readableBytes > size, let peer else {
            emit(buffer, context)
            return
        }
        let metadata = AddressedEnvelope<ByteBuffer>.Metadata(
            ecnState: .transportNotCapable, packetInfo: nil, segmentSize: size)
        emit(any: NIOAny(AddressedEnvelope(remoteAddress: peer, data: buffer, metadata: metadata)), context)
    }
}

/// `SO_MEMINFO`: the socket's memory figures, `SK_MEMINFO_DROPS` last.
struct SocketMemoryInfo: Sendable {
    var rmemAlloc: UInt32 = 0
    var rcvbuf: UInt32 = 0
    var wmemAlloc: UInt32 = 0
    var sndbuf: UInt32 = 0
    var fwdAlloc: UInt32 = 0
    var wmemQueued: UInt32 = 0
    var optmem: UInt32 = 0
    var backlog: UInt32 = 0
    var drops: UInt32 = 0
}
