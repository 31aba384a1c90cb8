import NIOCore
import NIOPosix
import Synchronization

/// Resumes a continuation the first time it is asked to, whoever asks first.
final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Void, Never>?>

    init(_ c: CheckedContinuation<Void, Never>) { continuation = Mutex(c) }

    func resume() {
        continuation.withLock { $0.take() }?.resume()
    }
}

/// A prebuilt heartbeat ping frame.
struct BroadcastFrame: Sendable {
    let bytes: [UInt8]

    /// How broadcast paces `rate` frames per second per peer: ticks of at most 1 ms, each
    /// sending its share of the rate. Returns (frames per tick, tick interval).
    static func ticks(rate: Int) -> (Int, TimeAmount) {
        let rate = max(1, rate)
        let perTick = max(1, rate / 1000)
        return (perTick, .nanoseconds(Int64(1_000_000_000 / max(1, rate / perTick))))
    }

    init(options: TargetOptions) {
        let h = max(8, options.headerSize)
        var b = [UInt8](repeating: 0, count: h + options.bodySize)
        b[3] = 1  // type 1 = ping
        let n = UInt32(options.bodySize)
        b[4] = UInt8(n >> 24)
        b[5] = UInt8((n >> 16) & 0xFF)
        b[6] = UInt8((n >> 8) & 0xFF)
        b[7] = UInt8(n & 0xFF)
        for i in 0..<options.bodySize { b[h + i] = UInt8(truncatingIfNeeded: 0x41 + i % 26) }
        bytes = b
    }
}

final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let stats: TargetServer.Stats

    init(stats: TargetServer.Stats) { self.stats = stats }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        stats.bytesRead.wrappingAdd(unwrapInboundIn(data).readableBytes, ordering: .relaxed)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let stats: TargetServer.Stats

    init(stats: TargetServer.Stats) { self.stats = stats }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let n = unwrapInboundIn(data).readableBytes
        stats.bytesRead.wrappingAdd(n, ordering: .relaxed)
        stats.bytesWritten.wrappingAdd(n, ordering: .relaxed)
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Sends ping frames at the configured rate and counts framed replies (any type, length
/// at bytes 4–7).
final class BroadcastHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let stats: TargetServer.Stats
    let options: TargetOptions
    let frame: ByteBuffer
    let headerSize: Int
    private var sent = 0
    private var timer: RepeatedTask?
    private var inbound: ByteBuffer?
    private var flooding = false

    init(stats: TargetServer.Stats, options: TargetOptions, frame: BroadcastFrame) {
        self.stats = stats
        self.options = options
        self.headerSize = max(8, options.headerSize)
        var b = ByteBufferAllocator().buffer(capacity: frame.bytes.count)
        b.writeBytes(frame.bytes)
        self.frame = b
    }

    private var remaining: Int { options.count.map { max(0, $0 - sent) } ?? Int.max }

    func channelActive(context: ChannelHandlerContext) {
        if options.rate <= 0 {
            flooding = true
            floodWrite(context)
            return
        }
        let (perTick, interval) = BroadcastFrame.ticks(rate: options.rate)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { task in
            let ctx = bound.value
            let handler = me.value
            let n = min(perTick, handler.remaining)
            if n == 0 || !ctx.channel.isActive {
                task.cancel()
                return
            }
            for _ in 0..<n { ctx.write(handler.wrapOutboundOut(handler.frame), promise: nil) }
            ctx.flush()
            handler.sent += n
            handler.stats.framesSent.wrappingAdd(n, ordering: .relaxed)
            handler.stats.bytesWritten.wrappingAdd(n * handler.frame.readableBytes, ordering: .relaxed)
        }
    }

    private func floodWrite(_ context: ChannelHandlerContext) {
        var n = 0
        while context.channel.isWritable, remaining > 0, n < 256 {
            context.write(wrapOutboundOut(frame), promise: nil)
            sent += 1
            n += 1
        }
        if n > 0 {
            context.flush()
            stats.framesSent.wrappingAdd(n, ordering: .relaxed)
            stats.bytesWritten.wrappingAdd(n * frame.readableBytes, ordering: .relaxed)
        }
        if context.channel.isWritable, remaining > 0, context.channel.isActive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let me = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { me.value.floodWrite(bound.value) }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if flooding, context.channel.isWritable { floodWrite(context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        stats.bytesRead.wrappingAdd(buffer.readableBytes, ordering: .relaxed)
        if var pending = inbound {
            pending.writeBuffer(&buffer)
            buffer = pending
            inbound = nil
        }
        var frames = 0
        var pongs = 0
        while buffer.readableBytes >= headerSize {
            let length = Int(buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)!)
            guard buffer.readableBytes >= headerSize + length else { break }
            if buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) == 2 { pongs += 1 }
            buffer.moveReaderIndex(forwardBy: headerSize + length)
            frames += 1
        }
        if frames > 0 { stats.framesReceived.wrappingAdd(frames, ordering: .relaxed) }
        if pongs > 0 { stats.pongsReceived.wrappingAdd(pongs, ordering: .relaxed) }
        if buffer.readableBytes > 0 { inbound = buffer }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
