import Foundation
import LoadshearEngine
import LoadshearTestSupport
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The direct socket path (`DirectSocket`, `DirectBatch`): which connects it takes, and
/// that a batch written to a socket that takes only part of it leaves exactly the rest, in
/// order. The engine's exactness tests run with the path on and off (EngineTests).
@Suite struct DirectSocketTests {
    @Test func loopbackAddressesAreRecognized() throws {
        for a in ["127.0.0.1", "127.200.3.4", "::1", "::ffff:127.0.0.9"] {
            #expect(DirectSocket.isLoopback(try SocketAddress(ipAddress: a, port: 1)), "\(a)")
        }
        for a in ["10.0.0.1", "128.0.0.1", "0.0.0.0", "::2", "::ffff:10.0.0.1", "fe80::1"] {
            #expect(!DirectSocket.isLoopback(try SocketAddress(ipAddress: a, port: 1)), "\(a)")
        }
    }

    @Test func aLoopbackConnectCompletesAndIsHandedOver() async throws {
        try await withServer { server in
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
            let fd = try #require(DirectSocket.connect(to: address, from: nil))
            defer { close(fd) }
            #expect(write(fd, "ping", 4) == 4)
            #expect(await server.wait { $0.count == 1 && $0[0].bytes == Array("ping".utf8) })
        }
    }

    /// Handed to NIO as the engine does, the socket is an active channel with `TCP_NODELAY`
    /// (the bootstrap's default option, which `DirectSocket` leaves to it).
    @Test func theHandedOverSocketIsAnActiveChannelWithNoDelay() async throws {
        try await withServer { server in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
            let fd = try #require(DirectSocket.connect(to: address, from: nil))
            let channel = try await ClientBootstrap(group: group).withConnectedSocket(fd).get()
            #expect(channel.isActive)
            #expect(try await channel.getOption(.tcpOption(.tcp_nodelay)).get() == 1)
            try await channel.close()
            try await group.shutdownGracefully()
        }
    }

    @Test func aSourceAddressIsBoundBeforeTheConnect() async throws {
        try await withServer { server in
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
            let source = try SocketAddress(ipAddress: "127.0.0.7", port: 0)
            let fd = try #require(DirectSocket.connect(to: address, from: source))
            defer { close(fd) }
            var local = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            #expect(UInt32(bigEndian: local.sin_addr.s_addr) == 0x7F00_0007)
        }
    }

    /// A refused connect and a non-loopback destination both take the bootstrap's way
    /// (which reports the error or waits for the handshake).
    @Test func otherConnectsAreLeftToTheBootstrap() throws {
        let refusing = RefusingPort()
        let refused = try SocketAddress(ipAddress: "127.0.0.1", port: refusing.port)
        #expect(DirectSocket.connect(to: refused, from: nil) == nil)
        let remote = try SocketAddress(ipAddress: "192.0.2.1", port: 9)
        #expect(DirectSocket.connect(to: remote, from: nil) == nil)
    }

    /// One side of a socket pair with a small send buffer and a peer that does not read:
    /// the batch is written in part; what is left plus what arrived is the batch, in order.
    @Test func aPartialWriteLeavesExactlyTheRest() throws {
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        var small: CInt = 4096
        _ = setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<CInt>.size))
        let batch = DirectBatch()
        var expected: [UInt8] = []
        for k in 0..<8 {
            let bytes = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &+ k * 31) }
            expected += bytes
            batch.append(ByteBuffer(bytes: bytes))
        }
        #expect(batch.write(to: fds[0]) == .partial)
        var arrived: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fds[1], &chunk, chunk.count)
            if n <= 0 { break }
            arrived += chunk[0..<n]
        }
        #expect(!arrived.isEmpty)
        var rest: [UInt8] = []
        batch.drain { rest += $0.readableBytesView }
        #expect(batch.isEmpty)
        #expect(arrived + rest == expected)
    }

    @Test func aWholeWriteEmptiesTheBatch() throws {
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let batch = DirectBatch()
        batch.append(ByteBuffer(string: "one "))
        batch.append(ByteBuffer(string: "two"))
        #expect(batch.write(to: fds[0]) == .written)
        #expect(batch.isEmpty)
        var chunk = [UInt8](repeating: 0, count: 16)
        #expect(read(fds[1], &chunk, 16) == 7)
        #expect(Array(chunk[0..<7]) == Array("one two".utf8))
    }

    /// The peer is gone: the write fails with its errno (EPIPE), and the batch is dropped
    /// (the session closes with the error). An empty batch makes no system call at all.
    @Test func aFailedWriteReportsItsErrorAndAnEmptyBatchIsWritten() throws {
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]) }
        close(fds[1])
        signal(SIGPIPE, SIG_IGN)  // as NIO does before any direct write
        let batch = DirectBatch()
        batch.append(ByteBuffer())
        #expect(batch.write(to: -1) == .written, "no bytes, no system call (-1 would fail it)")
        batch.append(ByteBuffer(string: "lost"))
        #expect(batch.write(to: fds[0]) == .failed(EPIPE))
        #expect(batch.isEmpty)
    }
}
