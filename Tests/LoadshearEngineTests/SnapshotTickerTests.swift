import NIOCore
import NIOEmbedded
import Testing

@testable import LoadshearEngine

/// The 500 ms snapshots keep to fixed instants, on a virtual clock: tick k is due k × 500 ms
/// after the start however long the publishes take, a tick that comes while the one before
/// is still publishing is skipped, and nothing is published after `stop()`.
@Suite struct SnapshotTickerTests {
    @Test func ticksKeepToFixedInstantsAndSkipWhilePublishing() throws {
        let loop = EmbeddedEventLoop()
        var published: [(tick: Int, at: Int64)] = []
        var pending: EventLoopPromise<Void>?
        let ticker = SnapshotTicker(loop: loop, start: .uptimeNanoseconds(0)) { tick in
            published.append((tick, Int64(loop.now.uptimeNanoseconds)))
            let promise = loop.makePromise(of: Void.self)
            pending = promise
            return promise.futureResult
        }
        ticker.arm(1)
        loop.advanceTime(by: .milliseconds(499))
        #expect(published.isEmpty)
        loop.advanceTime(by: .milliseconds(1))
        #expect(published.map(\.tick) == [1])
        // A slow publish: tick 2 comes while tick 1 is still publishing, and is skipped.
        loop.advanceTime(by: .milliseconds(500))
        #expect(published.map(\.tick) == [1])
        pending?.succeed()
        // Tick 3 is at 1.5 s, not 500 ms after the slow publish ended.
        loop.advanceTime(by: .milliseconds(500))
        #expect(published.map(\.tick) == [1, 3])
        #expect(published.map(\.at) == [500_000_000, 1_500_000_000])
        pending?.succeed()
        loop.advanceTime(by: .milliseconds(500))
        #expect(published.map(\.tick) == [1, 3, 4])
        // stop() waits for the publish in flight; no tick after it.
        let stopped = ticker.stop()
        var done = false
        stopped.whenComplete { _ in done = true }
        #expect(!done)
        pending?.succeed()
        #expect(done)
        loop.advanceTime(by: .seconds(5))
        #expect(published.map(\.tick) == [1, 3, 4])
        try loop.syncShutdownGracefully()
    }
}
