import Foundation
import LoadshearMetrics
import LoadshearScript
import LoadshearTestSupport
import NIOCore
import Testing

@testable import LoadshearEngine

@Suite struct FrameReaderTests {
    func collect(
        _ chunks: [[UInt8]], bodyMax: Int = 100,
        source: FrameReader.LengthSource =
            .headerLength(HeaderLength(offset: 4, size: 4, bigEndian: true))
    ) -> ([[UInt8]], Bool) {
        var reader = FrameReader(headerSize: 8, bodyMax: bodyMax, lengthSource: source)
        var frames: [[UInt8]] = []
        var failed = false
        for c in chunks {
            reader.feed(
                ByteBuffer(bytes: c), bodyLengthFromHandler: { _ in nil },
                emit: { e in
                    switch e {
                    case .frame(let f):
                        frames.append(Array(f.readableBytesView))
                        return .more
                    default:
                        failed = true
                        return .stop
                    }
                })
            if failed { break }
        }
        return (frames, failed)
    }

    @Test func oneByteReads() {
        let stream = frame(body: [1, 2, 3]) + frame(body: []) + frame(body: Array(repeating: 9, count: 50))
        let (frames, failed) = collect(stream.map { [$0] })
        #expect(!failed)
        #expect(frames == [frame(body: [1, 2, 3]), frame(body: []), frame(body: Array(repeating: 9, count: 50))])
    }

    @Test func manyFramesInOneRead() {
        let frames = (0..<100).map { frame(body: Array(repeating: UInt8($0), count: $0 % 7)) }
        let (got, _) = collect([Array(frames.joined())])
        #expect(got == frames)
    }

    @Test func splitsAtEveryPosition() {
        let stream = frame(body: [1, 2]) + frame(body: [3])
        for cut in 0...stream.count {
            let (got, _) = collect([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(got == [frame(body: [1, 2]), frame(body: [3])])
        }
    }

    @Test func bodyMaxPlusOneFails() {
        let (ok, okFailed) = collect([frame(body: Array(repeating: 0, count: 100))])
        #expect(ok.count == 1 && !okFailed)
        let (got, failed) = collect([frame(body: [1]) + frame(body: Array(repeating: 0, count: 101))])
        #expect(got.count == 1)
        #expect(failed)
    }

    /// An 8-byte length past what an Int holds is reported as the header says it (the
    /// message about it gave Int.max).
    @Test func aTooLargeLengthIsReportedAsDeclared() {
        var reader = FrameReader(
            headerSize: 8, bodyMax: 100, lengthSource: .headerLength(HeaderLength(offset: 0, size: 8, bigEndian: true)))
        var declared: UInt64?
        reader.feed(
            ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 8)), bodyLengthFromHandler: { _ in nil },
            emit: { e in
                if case .tooLarge(let n) = e { declared = n }
                return .stop
            })
        #expect(declared == UInt64.max)
    }

    @Test func headerOnlyWithoutALengthSource() {
        let (got, _) = collect([Array(repeating: 5, count: 20)], source: .none)
        #expect(got == [Array(repeating: 5, count: 8), Array(repeating: 5, count: 8)])
    }

    @Test func littleEndianOddWidth() {
        var reader = FrameReader(
            headerSize: 4, bodyMax: 1000,
            lengthSource: .headerLength(HeaderLength(offset: 1, size: 3, bigEndian: false)))
        var sizes: [Int] = []
        reader.feed(
            ByteBuffer(bytes: [9, 2, 1, 0] + Array(repeating: 0, count: 258)), bodyLengthFromHandler: { _ in nil },
            emit: {
                if case .frame(let f) = $0 { sizes.append(f.readableBytes) }
                return .more
            })
        #expect(sizes == [4 + 258])
    }

    /// A pause keeps the rest: an empty feed goes on from the next frame, and bytes that
    /// came meanwhile follow in order.
    @Test func aPauseKeepsTheRestForTheNextFeed() {
        var reader = FrameReader(
            headerSize: 8, bodyMax: 100, lengthSource: .headerLength(HeaderLength(offset: 4, size: 4, bigEndian: true)))
        var bodies: [UInt8] = []
        func feed(_ bytes: [UInt8], pauseEvery: Bool) {
            reader.feed(
                ByteBuffer(bytes: bytes), bodyLengthFromHandler: { _ in nil },
                emit: {
                    guard case .frame(let f) = $0 else { return .stop }
                    bodies.append(f.getInteger(at: f.readerIndex + 8)!)
                    return pauseEvery ? .pause : .more
                })
        }
        let stream = (1...4).flatMap { frame(body: [UInt8($0)]) }
        feed(Array(stream[..<20]), pauseEvery: true)  // two whole frames and a part
        #expect(bodies == [1])
        #expect(reader.hasPending)
        feed([], pauseEvery: true)
        #expect(bodies == [1, 2])
        feed(Array(stream[20...]), pauseEvery: false)
        #expect(bodies == [1, 2, 3, 4])
        #expect(!reader.hasPending)
    }
}

@Suite struct FramedReadTests {
    func script(headerLength: String, bodyMax: Int = 64, disconnect: String = "400ms") -> String {
        """
        SETTINGS t {
            SESSION = "TCP"
            PORT = @PORT@
            READ = "true"
            HEADERSIZE = 8
            BODYMAX = \(bodyMax)
            \(headerLength)
            ENDPOINTS { 127.0.0.1 }
        }
        ORCHESTRATOR t {
            CREATE 3 OFFSET 0ms
            CONNECT 0:3 OFFSET 1ms
            DISCONNECT 0:3 OFFSET \(disconnect)
        }
        """
    }

    @Test func framesSplitAcrossWritesAndZeroLengthBodies() async throws {
        let stream = (0..<40).map { frame(body: Array(repeating: UInt8($0), count: $0 % 5)) }.joined()
        // Chunks of 3 bytes, each flushed on its own, cut frames everywhere.
        let chunks = stride(from: 0, to: stream.count, by: 3).map {
            Array(Array(stream)[$0..<min($0 + 3, stream.count)])
        }
        try await withServer(.send(chunks)) { server in
            let plan = try makePlan(
                script(headerLength: "HEADER_LENGTH = 4:4 \"big\"", disconnect: "1h"), port: server.port)
            let s = try await run(plan) { totals in await totals.wait { $0[.framesRead] == 3 * 40 } }
            #expect(s.totals[.framesRead] == 3 * 40)
            #expect(s.totals[.bytesRead] == 3 * stream.count)
            #expect(s.totals[.protocolErrors] == 0)
        }
    }

    @Test func nopWithoutHeaderLengthReadsHeaderOnlyFrames() async throws {
        try await withServer(.send([Array(repeating: 1, count: 8 * 10 + 5)])) { server in
            let plan = try makePlan(script(headerLength: "", disconnect: "1h"), port: server.port)
            let s = try await run(plan) { totals in await totals.wait { $0[.framesRead] == 3 * 10 } }
            #expect(s.totals[.framesRead] == 3 * 10)
        }
    }

    @Test func bodyMaxPlusOneClosesTheSession() async throws {
        try await withServer(.send([frame(body: [1, 2]) + frame(body: Array(repeating: 0, count: 65))])) { server in
            let plan = try makePlan(
                script(headerLength: "HEADER_LENGTH = 4:4 \"big\"", disconnect: "1h"), port: server.port)
            let s = try await run(plan) { totals in await totals.wait { $0[.protocolErrors] == 3 } }
            #expect(s.totals[.framesRead] == 3)
            #expect(s.totals[.protocolErrors] == 3)
            #expect(s.totals[.bodyTooLarge] == 3)
            #expect(s.protocolErrorsByReason == ["body above BODYMAX": 3])
            #expect(s.totals[.closedByUs] == 0)
            expectConsistent(s)
            #expect(await server.wait { $0.count == 3 && $0.allSatisfy(\.closed) })
        }
    }
}
