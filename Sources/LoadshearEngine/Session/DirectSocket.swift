import LoadshearScript
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The direct socket path for TCP: sockets Loadshear opens and connects itself, and writes
/// that go straight to such a socket while the channel has nothing of ours buffered.
///
/// Why: `ClientBootstrap.connect` costs a long chain of futures and closures and a
/// connect-timeout task per connect, and a write through the channel costs a promise, its
/// callback and NIO's pending-writes bookkeeping per batch. At loopback speed that is a
/// large part of the work (docs/metrics.md has the figures, on and off): 24k → 32k
/// connects/s at 15,000 sessions (bench/connect.sh), 10–20% more request/response round
/// trips (bench/handler.sh's workload), paced lag p99 at 100,000 payloads/s 70 → 10 ms.
///
/// The direct connect is for loopback destinations only, where the kernel completes the
/// handshake inside `connect()`: the socket is then handed to NIO already connected
/// (`ClientBootstrap.withConnectedSocket`). Anything else — another host, a connect still
/// in progress (a full accept backlog), any error — closes the socket and takes the
/// bootstrap's way, which waits, times out and reports errors as before.
///
/// The descriptor is written to only while the session's lifecycle is active, and that
/// is enough for it to still be the session's socket (not one that reuses its number):
/// NIO closes it only inside `close0`, on the loop, which fires `channelInactive` before
/// it returns (the session then forgets the descriptor). The only code of ours that runs
/// in between is the failure of write promises and `errorCaught`, and both close the
/// lifecycle first; nothing there writes. (Asking `Channel.isActive` before each write
/// instead cost 0.9% of the CPU at 100,000 paced payloads/s.)
/// `LOADSHEAR_DIRECT_SOCKETS=0` turns the path off (bench/connect.sh, bench/handler.sh and
/// bench/pace.sh measure both).
package enum DirectSocket {
    /// A socket of `address`'s family, connected to it (bound to `source` first when given,
    /// with `IP_BIND_ADDRESS_NO_PORT`); nil unless `address` is a loopback address and the
    /// connect completed at once. (`TCP_NODELAY` is the bootstrap's default option, which
    /// it sets on the socket it is handed.) Three system calls (`socket`, `connect`, `poll`),
    /// five with a source: every one counts at 30,000 connects/s.
    package static func connect(to address: SocketAddress, from source: SocketAddress?) -> CInt? {
        guard isLoopback(address) else { return nil }
        let family: CInt
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        default: return nil
        }
        let fd = socket(
            family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var ok = true
        if let source {
            var one: CInt = 1
            ok =
                setsockopt(
                    fd, CInt(IPPROTO_IP), SourceAddresses.ipBindAddressNoPort, &one, socklen_t(MemoryLayout<CInt>.size))
                == 0
                && source.withSockAddr { bind(fd, $0, socklen_t($1)) } == 0
        }
        if ok {
            let rc = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
            ok = rc == 0 || (errno == EINPROGRESS && isConnected(fd))
        }
        guard ok else {
            close(fd)
            return nil
        }
        return fd
    }

    /// 127.0.0.0/8, `::1` and IPv4-mapped 127.0.0.0/8.
    package static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let a):
            return UInt32(bigEndian: a.address.sin_addr.s_addr) >> 24 == 127
        case .v6(let a):
            return withUnsafeBytes(of: a.address.sin6_addr) { b in
                if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }
                return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff && b[12] == 127
            }
        default:
            return false
        }
    }

    /// A connect that returned `EINPROGRESS` has finished, successfully: the socket is
    /// writable and has no error pending (a refused or reset one reports `POLLERR`).
    private static func isConnected(_ fd: CInt) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&p, 1, 0) == 1 && p.revents == Int16(POLLOUT)
    }
}

/// A shard's storage for one direct batch: the buffers a session's batch is built from
/// and the vector they are written with, reused batch after batch (no allocation once
/// grown). Loop-confined, like the shard.
package final class DirectBatch {
    private var buffers: [ByteBuffer] = []
    private let vectors: UnsafeMutablePointer<iovec>

    /// Linux's `IOV_MAX`: a batch of more buffers (slices around many patches) goes through
    /// the channel instead.
    static let vectorLimit = 1024

    package init() {
        vectors = .allocate(capacity: Self.vectorLimit)
        buffers.reserveCapacity(64)
    }

    deinit { vectors.deallocate() }

    package var isEmpty: Bool { buffers.isEmpty }

    package func append(_ buffer: ByteBuffer) {
        buffers.append(buffer)
    }

    /// What a direct write came to.
    package enum Outcome: Equatable {
        /// All of it: the batch is empty again.
        case written
        /// The socket had no room for all of it: what is left (the first buffer trimmed to
        /// its unwritten part) is for the channel to write, which waits for room.
        case partial
        /// The socket failed with this errno: the batch is dropped; the session closes with
        /// the error, classified as any write error is.
        case failed(CInt)
    }

    /// Writes the batch to `fd` with one `write` (one buffer) or `writev`, as NIO does. A
    /// peer gone raises no SIGPIPE: the socket was handed to NIO before any direct write,
    /// and NIO ignores SIGPIPE process-wide from its first socket on. (`sendmsg` with
    /// `MSG_NOSIGNAL` cost 1.7 µs more system time per reply here: 8.3 against 6.5 µs per
    /// round trip in bench/handler.sh's workload.) A batch of no bytes (empty replies) is
    /// written without a system call.
    package func write(to fd: CInt) -> Outcome {
        guard buffers.count <= Self.vectorLimit else { return .partial }
        var total = 0
        var written: Int
        if buffers.count == 1 {
            total = buffers[0].readableBytes
            written = total == 0 ? 0 : buffers[0].withUnsafeReadableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        } else {
            for (i, b) in buffers.enumerated() {
                // The storage stays alive in `buffers` for the call.
                b.withUnsafeReadableBytes {
                    vectors[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
                }
                total += b.readableBytes
            }
            written = total == 0 ? 0 : writev(fd, vectors, CInt(buffers.count))
        }
        if written == total {
            buffers.removeAll(keepingCapacity: true)
            return .written
        }
        if written < 0 {
            let code = errno
            guard code == EAGAIN || code == EWOULDBLOCK || code == EINTR else {
                buffers.removeAll(keepingCapacity: true)
                return .failed(code)
            }
            written = 0
        }
        var drop = 0
        while drop < buffers.count, written >= buffers[drop].readableBytes {
            written -= buffers[drop].readableBytes
            drop += 1
        }
        buffers.removeFirst(drop)
        if written > 0 { buffers[0].moveReaderIndex(forwardBy: written) }
        return .partial
    }

    /// Hands each remaining buffer to `body` in order, then empties the batch.
    package func drain(_ body: (ByteBuffer) -> Void) {
        for b in buffers { body(b) }
        buffers.removeAll(keepingCapacity: true)
    }
}
