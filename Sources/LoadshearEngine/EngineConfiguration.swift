import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A switch read from the environment: on unless set to `0`.
package enum ProcessInfoFlag {
    package static func enabled(_ name: String) -> Bool {
        guard let v = getenv(name) else { return true }
        return String(cString: v) != "0"
    }
}

/// Tuning knobs, with the values measured best on the reference machine (2 vCPUs, loopback):
/// flushing every 16–64 writes is 10× faster than every write, watermarks of 256 KiB / 1 MiB
/// keep 64 flooding connections busy, and a few hundred connects in flight per loop is what
/// a server's accept backlog takes (`bench/` measures each).
package struct EngineConfiguration: Sendable {
    /// Writes per flush: flushing every write measured 10× slower than every 16–64.
    package var writesPerFlush = 64
    /// Bytes per flush batch, whichever limit comes first.
    package var bytesPerFlush = 256 * 1024
    /// Batches before the write loop yields to the event loop.
    package var batchesPerTurn = 4
    /// Handler replies that may wait for the socket, per session: past this the session stops
    /// reading until half of it has drained, so a server that writes but never reads cannot
    /// grow our memory without bound.
    package var replyBacklog = 256 * 1024
    /// Handler time one read may take, in nanoseconds: past it the session handles the rest
    /// of the read's frames on the loop's next turn (reads held meanwhile), so a slow handler
    /// flooded with frames cannot hold the timeline, the other sessions or the end of the
    /// run (one call is bounded by its fuel). 0: no limit.
    package var handlerTurnNanoseconds: UInt64 = 2_000_000
    /// Write-buffer watermarks: low 256 KiB, high 1 MiB.
    package var lowWatermark = 256 * 1024
    /// Above this many buffered bytes a channel is not writable and its session stops writing
    /// until it drops below `lowWatermark`.
    package var highWatermark = 1024 * 1024
    /// How long DRAINing sessions may take to finish once the timeline has ended.
    package var drainGrace: TimeAmount = .seconds(5)
    /// After this, sessions that still have not closed are abandoned.
    package var closeDeadline: TimeAmount = .seconds(10)
    /// Connect timeout per session.
    package var connectTimeout: TimeAmount = .seconds(10)
    /// (ext) TLS: how long a close waits for the server's close_notify after sending ours
    /// (swift-nio-ssl's default is 5 s): a DISCONNECT of thousands of sessions must not hang
    /// on servers that never answer it. A server that answers ends the close at once.
    package var tlsShutdownTimeout: TimeAmount = .milliseconds(100)
    /// (ext) UDP segmentation offload (`UDP_SEGMENT`) for runs of equal datagrams, where the
    /// kernel has it. `LOADSHEAR_UDP_GSO=0` in the environment turns it off (bench/udp.sh
    /// measures both).
    package var udpSegmentation = ProcessInfoFlag.enabled("LOADSHEAR_UDP_GSO")
    /// TCP to loopback: sockets connected by Loadshear itself and written to directly while
    /// nothing is buffered (``DirectSocket``). `LOADSHEAR_DIRECT_SOCKETS=0` in the environment
    /// turns it off: every connect through the bootstrap, every write through the channel.
    package var directSockets = ProcessInfoFlag.enabled("LOADSHEAR_DIRECT_SOCKETS")

    package init() {}
}
