import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Write rounds: how a shard lets every session write as fast as its socket takes data
/// without starving reads, replies or timers. A session whose handler used up its turn
/// (``Session/framesWaiting``) handles the rest of its frames in a round too, for the same
/// reason.
///
/// A session that still has work after its turn (a few batches) joins the next round. A
/// round runs when the shard's wake-up pipe becomes readable — from the event loop's I/O
/// phase, together with the sockets that are ready at that moment. Re-queueing the write
/// loop as a task would not do: NIO runs every task that becomes ready during a tick before
/// it polls for I/O again, so a write loop that re-queues itself keeps the loop from ever
/// reading. The pipe costs one `write` and one `read` per round per shard, not per session.
final class WriteRounds: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// The pipe's write end: one byte written arms the next round.
    private let wakeFD: CInt
    /// The next round is already coming: a byte is in the pipe, or a task is queued.
    private var armed = false
    /// Sessions for the next round, in the order they joined.
    private var next: [Session] = []
    /// The round being run; kept to reuse its storage.
    private var current: [Session] = []
    /// The pipe's read end as a NIO channel; nil once stopped.
    private var channel: Channel?
    /// Once stopped the pipe's descriptors are closed (and may be reused): never touch them.
    private var stopped = false

    private init(wakeFD: CInt) {
        self.wakeFD = wakeFD
    }

    /// Opens the wake-up pipe and registers its read end with `loop`; call on `loop`.
    static func start(on loop: EventLoop) -> EventLoopFuture<NIOLoopBound<WriteRounds>> {
        loop.preconditionInEventLoop()
        var fds: [CInt] = [-1, -1]
        guard pipe(&fds) == 0 else { return loop.makeFailedFuture(IOError(errnoCode: errno, reason: "pipe")) }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        let (readFD, writeFD) = (fds[0], fds[1])
        let bound = NIOLoopBound(WriteRounds(wakeFD: writeFD), eventLoop: loop)
        return NIOPipeBootstrap(group: loop)
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .takingOwnershipOfDescriptor(input: readFD)
            .map { channel in
                bound.value.channel = channel
                return bound
            }
            .flatMapErrorThrowing { error in
                // The read end may already be closed by NIO with the half-made channel: leave
                // it (a leaked descriptor on a failure path beats closing one reused since).
                close(writeFD)
                throw error
            }
    }

    /// Puts `session` in the next round (once).
    func schedule(_ session: Session) {
        guard !session.inRound else { return }
        session.inRound = true
        next.append(session)
        arm()
    }

    /// Writes the wake-up byte, once per round; when the write fails, runs the round as a task.
    private func arm() {
        guard !armed, !stopped else { return }
        armed = true
        var byte: UInt8 = 1
        if write(wakeFD, &byte, 1) != 1, let loop = channel?.eventLoop {
            // The pipe is gone (shutting down): fall back to a task so nothing is lost.
            let me = NIOLoopBound(self, eventLoop: loop)
            loop.execute { me.value.runRound() }
        }
    }

    /// The wake-up bytes themselves mean nothing.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    /// The pipe was readable: the round runs now, in this pass through the loop's I/O.
    func channelReadComplete(context: ChannelHandlerContext) {
        runRound()
    }

    /// Gives each session of the round its turn (frames left waiting, then writes); those
    /// with work left join the next round.
    private func runRound() {
        armed = false
        swap(&next, &current)
        for session in current {
            session.inRound = false
            session.roundTurn()
        }
        current.removeAll(keepingCapacity: true)
    }

    /// Closes the pipe (both ends) and forgets the sessions.
    func stop() {
        guard !stopped else { return }
        stopped = true
        channel?.close(promise: nil)
        channel = nil
        close(wakeFD)
        next.removeAll()
    }
}
