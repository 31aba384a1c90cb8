import Synchronization

/// The counters one shard records into. Only the shard's event loop writes them; the
/// reporter reads them from another thread. Each counter is an atomic written with a
/// relaxed load+store (no read-modify-write, since there is one writer), so recording is
/// a plain memory write: no lock, no allocation, no contended cache-line bounce.
public final class ShardCounters: Sendable {
    public enum Counter: Int, CaseIterable, Sendable {
        case bytesSent, bytesRead, packetsSent, framesRead, responsesSent
        case connectionsAttempted, connectionsSucceeded, connectionsFailed, connectionsActive
        case closedByPeer, resets, protocolErrors, closedByUs
        case handlerCalls, handlerEmpty, handlerTraps, handlerBadPointers, handlerAllocFailures
        case icmpErrors
    }

    private let slots: [Slot]
    /// Monotonic nanoseconds of the shard's first connect attempt and latest successful
    /// connect (0 = none yet): the connect phase the summary reports.
    private let firstConnectAttempt = Atomic<UInt64>(0)
    private let lastConnect = Atomic<UInt64>(0)

    /// One counter. A class so that the noncopyable atomic has a stable home.
    final class Slot: Sendable {
        let value = Atomic<Int>(0)
    }

    public init() {
        slots = Counter.allCases.map { _ in Slot() }
    }

    /// Adds `n`; call only from the owning shard's loop.
    @inline(__always)
    public func add(_ c: Counter, _ n: Int = 1) {
        let slot = slots[c.rawValue]
        slot.value.store(slot.value.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    /// Reads a counter from any thread.
    @inline(__always)
    public func get(_ c: Counter) -> Int {
        slots[c.rawValue].value.load(ordering: .relaxed)
    }

    /// Notes a connect attempt at monotonic time `now`; call only from the owning loop.
    public func connectAttempted(at now: UInt64) {
        if firstConnectAttempt.load(ordering: .relaxed) == 0 { firstConnectAttempt.store(now, ordering: .relaxed) }
    }

    /// Notes a successful connect at monotonic time `now`; call only from the owning loop.
    public func connected(at now: UInt64) {
        lastConnect.store(now, ordering: .relaxed)
    }

    /// (first attempt, last success) in monotonic nanoseconds, 0 when none.
    public var connectPhase: (UInt64, UInt64) {
        (firstConnectAttempt.load(ordering: .relaxed), lastConnect.load(ordering: .relaxed))
    }

    public func snapshot() -> CounterValues {
        CounterValues(values: Counter.allCases.map { get($0) })
    }
}

/// Counter values at one moment; sums and differences are exact.
public struct CounterValues: Sendable, Equatable {
    public var values: [Int]

    public init(values: [Int] = [Int](repeating: 0, count: ShardCounters.Counter.allCases.count)) {
        self.values = values
    }

    public subscript(_ c: ShardCounters.Counter) -> Int {
        get { values[c.rawValue] }
        set { values[c.rawValue] = newValue }
    }

    public static func + (a: CounterValues, b: CounterValues) -> CounterValues {
        CounterValues(values: zip(a.values, b.values).map { $0 + $1 })
    }

    public static func - (a: CounterValues, b: CounterValues) -> CounterValues {
        CounterValues(values: zip(a.values, b.values).map { $0 - $1 })
    }
}
