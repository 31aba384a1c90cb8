import NIOCore
import NIOEmbedded
import Testing

@testable import LoadshearEngine

/// The 500 ms snapshots keep to fixed instants, on a virtual clock: tick k is due k × 500 ms
/// after the start however long the publishes take; a tick that comes while the one before
/// is still publishing is taken once it is done (skipped only when a later tick has come
/// too); nothing is published after `stop()`.
@Suite struct SnapshotTickerTests {
    /// A ticker on `loop` whose publishes stay open until the test completes them.
    final class Recorder {
        var published: [(tick: Int, at: UInt64)] = []
        var pending: EventLoopPromise<Void>?
        var ticks: [Int] { published.map(\.tick) }
    }

    /// A ticker started at 0 on a virtual clock, its first tick armed.
    static func armedTicker() -> (EmbeddedEventLoop, Recorder, SnapshotTicker) {
        let loop = EmbeddedEventLoop()
        let recorder = Recorder()
        let ticker = SnapshotTicker(loop: loop, start: .uptimeNanoseconds(0)) { tick in
            recorder.published.append((tick, loop.now.uptimeNanoseconds))
            let promise = loop.makePromise(of: Void.self)
            recorder.pending = promise
            return promise.futureResult
        }
        ticker.arm(1)
        return (loop, recorder, ticker)
    }

    @Test func ticksKeepToFixedInstantsAndWaitForTheOneBefore() throws {
        let (loop, r, ticker) = Self.armedTicker()
        loop.advanceTime(by: .milliseconds(499))
        #expect(r.published.isEmpty)
        loop.advanceTime(by: .milliseconds(1))
        #expect(r.ticks == [1])
        // A slow publish: tick 2 comes at 1.0 s while tick 1 is still publishing, and is
        // taken when it is done, at 1.2 s.
        loop.advanceTime(by: .milliseconds(500))
        #expect(r.ticks == [1])
        loop.advanceTime(by: .milliseconds(200))
        r.pending?.succeed()
        #expect(r.ticks == [1, 2])
        r.pending?.succeed()
        // Tick 3 is at 1.5 s, not 500 ms after the slow publish ended (1.7 s).
        loop.advanceTime(by: .milliseconds(300))
        #expect(r.ticks == [1, 2, 3])
        #expect(r.published.map(\.at) == [500_000_000, 1_200_000_000, 1_500_000_000])
        // A publish longer than 500 ms: ticks 4 (2.0 s) and 5 (2.5 s) both come during it;
        // only the later is taken.
        loop.advanceTime(by: .milliseconds(1000))
        r.pending?.succeed()
        #expect(r.ticks == [1, 2, 3, 5])
        // stop() waits for the publish in flight; no tick after it.
        let stopped = ticker.stop()
        let done = NIOLoopBoundBox(false, eventLoop: loop)
        stopped.whenComplete { _ in done.value = true }
        #expect(!done.value)
        r.pending?.succeed()
        #expect(done.value)
        loop.advanceTime(by: .seconds(5))
        #expect(r.ticks == [1, 2, 3, 5])
        try loop.syncShutdownGracefully()
    }

    @Test func stopBeforeTheFirstTickPublishesNothing() throws {
        let (loop, r, ticker) = Self.armedTicker()
        loop.advanceTime(by: .milliseconds(300))
        let done = NIOLoopBoundBox(false, eventLoop: loop)
        ticker.stop().whenComplete { _ in done.value = true }
        #expect(done.value)
        loop.advanceTime(by: .seconds(2))
        #expect(r.published.isEmpty)
        try loop.syncShutdownGracefully()
    }
}
