import Synchronization

/// The global COUNTER of every SEND, shared by all shards: the only cross-thread state on
/// the send path. A session reserves a block of values with one atomic add for a run of
/// copies it is about to write, so values are never sent twice and never skipped.
final class SendCounters: Sendable {
    /// One SEND's next copy number; a class, so the atomic has a stable home.
    final class Box: Sendable {
        let next = Atomic<UInt64>(0)
    }

    private let boxes: [Box]

    /// Counters for `count` SENDs, each starting at 0.
    init(count: Int) {
        boxes = (0..<count).map { _ in Box() }
    }

    /// Reserves `n` consecutive copy numbers of SEND `index`; returns the first.
    @inline(__always)
    func reserve(_ index: Int, _ n: Int) -> UInt64 {
        boxes[index].next.wrappingAdd(UInt64(n), ordering: .relaxed).oldValue
    }
}
