/// One shard's latency recorder. Confined to the shard's loop: recording is a plain array
/// increment — no lock, no allocation. The histograms are double-buffered: `take()` hands
/// the filled set to the reader and records into the spare one; the reader clears the set
/// it took (``LatencySet/reset()``, which leaves every histogram with storage of its own) and
/// gives it back with `recycle(_:)`. Only when the reader has not given the last set back yet
/// does `take()` make a fresh one.
package final class LatencyRecorder {
    /// The set being recorded into.
    private var current = LatencySet.cleared()
    /// The cleared set the next ``take()`` swaps in; nil while the reader holds it.
    private var spare: LatencySet? = LatencySet.cleared()

    package init() {}

    /// Records one latency given in nanoseconds; it is kept in µs, clamped to 1 µs … 1 h.
    @inline(__always)
    package func record(_ kind: LatencySet.Kind, nanoseconds: UInt64) {
        let us = Swift.min(Swift.max(nanoseconds / 1000, 1), LatencySet.highest)
        switch kind {
        case .response: _ = current.response.record(us)
        case .connect: _ = current.connect.record(us)
        case .handshake: _ = current.handshake.record(us)
        case .send: _ = current.send.record(us)
        case .read: _ = current.read.record(us)
        case .lag: _ = current.lag.record(us)
        case .jitter: _ = current.jitter.record(us)
        }
    }

    /// The samples since the last `take()`; recording goes on into the spare set.
    package func take() -> LatencySet {
        let next = spare ?? LatencySet.cleared()
        spare = nil
        let out = current
        current = next
        return out
    }

    /// Gives back a set from `take()`, already cleared with `LatencySet.reset()`.
    package func recycle(_ cleared: LatencySet) {
        spare = cleared
    }
}
