import NIOCore
import NIOPosix
import NIOTLS
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
    /// The header (type 1 at bytes 0–3, the body length at 4–7, big-endian, zeros after),
    /// then the body: `A` to `Z`, over and over.
    let bytes: [UInt8]

    /// How broadcast paces `rate` frames per second per peer: from 1,000 frames/s up, ticks of
    /// 1 ms, each sending its share of the rate; below that, one frame every 1/rate seconds. Returns (frames per tick, tick interval).
    static func ticks(rate: Int) -> (Int, TimeAmount) {
        let rate = max(1, rate)
        let perTick = max(1, rate / 1000)
        return (perTick, .nanoseconds(Int64(1_000_000_000 / max(1, rate / perTick))))
    }

    /// The ping for `options`: a header of `headerSize` bytes (at least 8) and `bodySize` body
    /// bytes.
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

/// TCP sink: counts the bytes it reads and drops them; closes on an error.
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

/// TCP echo: writes back whatever it reads, flushing once per read burst; closes on an error.
/// With a delay, each read goes back `delay` after it arrived, in order: the reads wait in a
/// queue, and one timer per connection, armed for the oldest, sends everything due with one
/// flush (rather than a scheduled task, a promise and a flush per read).
/// It reads no more while the client does not take the echo (the channel is not writable)
/// or more than ``waitingLimit`` bytes wait for their delay: a client that sends and never
/// reads is held back by TCP, not by the target's memory.
final class EchoHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    /// Bytes that may wait for their delay before reads stop.
    static let waitingLimit = 4 << 20
    let stats: TargetServer.Stats
    /// How long each read waits before it is sent back (zero: at once).
    let delay: TimeAmount
    /// Reads waiting for their time (monotonic ns), oldest first.
    private var waiting = CircularBuffer<(due: UInt64, buffer: ByteBuffer)>(initialCapacity: 16)
    /// The due time the timer is armed for (0: none).
    private var armedFor: UInt64 = 0
    private var context: ChannelHandlerContext?
    /// Bytes in `waiting`.
    private var waitingBytes = 0
    /// A read the channel asked for while reads were held.
    private var readHeld = false

    init(stats: TargetServer.Stats, delay: TimeAmount = .zero) {
        self.stats = stats
        self.delay = delay
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        waiting.removeAll()
        waitingBytes = 0
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let n = buffer.readableBytes
        stats.bytesRead.wrappingAdd(n, ordering: .relaxed)
        guard delay > .zero else {
            stats.bytesWritten.wrappingAdd(n, ordering: .relaxed)
            context.write(data, promise: nil)
            return
        }
        let due = NIODeadline.now().uptimeNanoseconds &+ UInt64(delay.nanoseconds)
        waiting.append((due, buffer))
        waitingBytes += n
        arm(context.eventLoop)
    }

    /// Reads only while the echo can go out and the delay queue has room.
    func read(context: ChannelHandlerContext) {
        if mayRead(context) {
            context.read()
        } else {
            readHeld = true
        }
    }

    private func mayRead(_ context: ChannelHandlerContext) -> Bool {
        context.channel.isWritable && waitingBytes <= Self.waitingLimit
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReading(context)
        context.fireChannelWritabilityChanged()
    }

    private func resumeReading(_ context: ChannelHandlerContext) {
        guard readHeld, mayRead(context) else { return }
        readHeld = false
        context.read()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if delay == .zero { context.flush() }
    }

    /// Arms the timer for the oldest waiting read, unless it is armed for it already.
    private func arm(_ loop: EventLoop) {
        guard let first = waiting.first, armedFor != first.due else { return }
        armedFor = first.due
        _ = try? loop.assumeIsolatedUnsafeUnchecked().scheduleCallback(
            at: .uptimeNanoseconds(first.due), handler: DueTimer(echo: self, due: first.due))
    }

    /// The timer: one small value, no closure or promise.
    private struct DueTimer: NIOScheduledCallbackHandler {
        let echo: EchoHandler
        let due: UInt64
        func handleScheduledCallback(eventLoop: some EventLoop) { echo.sendDue(armed: due) }
    }

    /// Sends every read whose time has come, with one flush, then re-arms for the next.
    private func sendDue(armed: UInt64) {
        guard armed == armedFor, let context else { return }
        armedFor = 0
        guard context.channel.isActive else {
            waiting.removeAll()
            waitingBytes = 0
            return
        }
        let now = NIODeadline.now().uptimeNanoseconds
        var wrote = false
        while let first = waiting.first, first.due <= now {
            _ = waiting.popFirst()
            waitingBytes -= first.buffer.readableBytes
            stats.bytesWritten.wrappingAdd(first.buffer.readableBytes, ordering: .relaxed)
            context.write(NIOAny(first.buffer), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        arm(context.eventLoop)
        resumeReading(context)
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
    /// Frames sent on this connection.
    private var sent = 0
    /// The pacing timer; nil when flooding.
    private var timer: RepeatedTask?
    /// The start of a frame whose rest has not arrived yet.
    private var inbound: ByteBuffer?
    /// `rate` is 0: frames go out as fast as the socket takes them.
    private var flooding = false

    init(stats: TargetServer.Stats, options: TargetOptions, frame: BroadcastFrame) {
        self.stats = stats
        self.options = options
        self.headerSize = max(8, options.headerSize)
        var b = ByteBufferAllocator().buffer(capacity: frame.bytes.count)
        b.writeBytes(frame.bytes)
        self.frame = b
    }

    /// Frames this connection may still send: `count` less those sent, unlimited without one.
    private var remaining: Int { options.count.map { max(0, $0 - sent) } ?? Int.max }

    /// Starts sending once connected — under TLS, once the handshake is done: frames written
    /// before it would pile up in swift-nio-ssl's buffer (which the channel's writability does
    /// not see), so a flood grew without bound and starved the handshake itself.
    func channelActive(context: ChannelHandlerContext) {
        if options.tls == nil { start(context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { start(context) }
        context.fireUserInboundEventTriggered(event)
    }

    /// `rate` frames a second on a timer, or as fast as possible when `rate` is 0.
    private func start(_ context: ChannelHandlerContext) {
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

    /// Writes up to 256 frames while the channel is writable, then queues itself again; when
    /// the channel is not writable, writability resumes it.
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

    /// Counts the bytes, the whole frames (body length at bytes 4–7, big-endian) and the
    /// pongs among them (type 2 at bytes 0–3).
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
