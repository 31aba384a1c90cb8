import Synchronization

/// The counters one shard records into. Only the shard's event loop writes them; the
/// reporter reads them from another thread. Each counter is an atomic written with a
/// relaxed load+store (no read-modify-write, since there is one writer), so recording is
/// a plain memory write: no lock, no allocation, no contended cache-line bounce.
package final class ShardCounters: Sendable {
    /// Every figure a shard records. `docs/metrics.md` says what each one counts; the sums
    /// that must hold are checked by the tests:
    /// - attempted = connected + failed + cancelled (once every connect has finished);
    /// - connected = closedByUs + closedByPeer + resets + localErrors + protocolErrors + active;
    /// - handlerCalls = handlerReplies + handlerEmpty + handlerTraps + handlerBadPointers + handlerAllocFailures;
    /// - handlerTraps = the five trap kinds.
    package enum Counter: Int, CaseIterable, Sendable {
        /// Bytes the kernel took (payloads and replies), bytes read, payloads the kernel took
        /// whole, frames read (every datagram, on UDP), and handler replies the kernel took whole.
        case bytesSent, bytesRead, packetsSent, framesRead, responsesSent
        /// Bytes of a batch of writes that failed because the peer closed or reset the connection
        /// mid-batch: between none and all of them reached the kernel (NIO reports per batch).
        case bytesUnconfirmed
        /// Connects started, connected, failed, and cancelled while under way; connections open now.
        case connectionsAttempted, connectionsSucceeded, connectionsFailed, connectionsCancelled, connectionsActive
        /// Why connects failed, each failure counted once (they sum to connectionsFailed).
        case connectRefused, connectTimedOut, connectUnreachable, connectTooManyFiles, connectNoAddress,
            connectOtherError
        /// How connections ended, each counted once: we closed, the peer sent FIN, the peer
        /// reset, a local socket error, or a protocol error (BODYMAX, unreadable header).
        case closedByUs, closedByPeer, resets, localErrors, protocolErrors
        /// Why sessions closed with a protocol error (they sum to protocolErrors): a body
        /// above BODYMAX, or a header whose length could not be read.
        case bodyTooLarge, headerUnreadable
        /// Sessions whose server sent FIN while we kept the connection open to send the rest
        /// (they end as closed by the server).
        case finsReceived
        /// Times a session stopped reading because its handler replies could not be written.
        case readPauses
        /// Handler calls, and how they ended: a reply, no reply, a trap (of any kind).
        case handlerCalls, handlerReplies, handlerEmpty, handlerTraps
        /// Traps by kind; they sum to handlerTraps.
        case trapUnreachable, trapOutOfBounds, trapOutOfFuel, trapStackExhausted, trapOther
        /// Contract breaches: a pointer or size outside guest memory, and `alloc` returning 0.
        case handlerBadPointers, handlerAllocFailures
        /// Guest `memory.grow` requests refused at the memory cap (HANDLER_MEMORY).
        case handlerMemoryDenied
        /// Port-unreachable errors on connected UDP sockets: counted, and the session goes on.
        case icmpErrors
        /// Datagrams that filled the receive buffer whole, so may have been cut short.
        case datagramsTruncated
        /// Datagrams over BODYMAX: dropped, the session goes on.
        case oversizedDatagrams
        /// (ext) RESPONSE: payloads with a COUNTER sent as requests; replies matched to one;
        /// replies that match no outstanding request (or came after its TIMEOUT); replies
        /// for a request already answered; requests unanswered after TIMEOUT; requests
        /// still waiting (a gauge); requests a CHURN close cut off (no reply can come on a
        /// closed connection: not the server's loss). requests = replies + timeouts +
        /// outstanding + requestsCutOff.
        case requests, replies, unmatched, duplicates, timeouts, outstanding, requestsCutOff
        /// (ext) PACE: payloads sent on a schedule, and payloads that were due (by more than
        /// the lag tolerance) but not sent when the run ended.
        case pacedPayloads, pacedBehind
        /// (ext) CPU time the shard's event-loop thread has used since the shard started, µs
        /// (set, not added, at each snapshot).
        case loopBusyMicroseconds
        /// (ext) Of `closedByUs`: closed with RST (`DISCONNECT a:b "reset"`), not FIN.
        case resetsSent
        /// (ext) CHURN: reconnects started, and turns skipped because the session was still
        /// connecting (a period shorter than the connect).
        case reconnects, churnSkipped
        /// (ext) The most connections this shard had open at once (in `totals`, the sum of the
        /// shards' peaks: exact when they peak together, as one CONNECT makes them).
        case peakOpenSessions
        /// (ext) TLS handshakes that failed, by reason (each also a failed connect): the
        /// server's certificate or name did not verify; another TLS protocol error (or the
        /// server closed during the handshake); no handshake within the connect timeout.
        case tlsVerifyFailed, tlsProtocolError, tlsHandshakeTimedOut
        /// (ext) RESPONSE: matched replies whose request went out before that of a reply
        /// already matched (by id only).
        case repliesReordered
        /// (ext) SEQUENCE: messages read that carried a number, numbers never received (gaps),
        /// messages that arrived after a higher number, and numbers received again.
        case sequenced, sequenceLost, sequenceReordered, sequenceDuplicates
        /// (ext) SEQUENCE, the worst session's figures (the largest, not a sum: see
        /// ``maxCounters``): lost as a connection's final count at its close; reordered,
        /// duplicates and jitter (nanoseconds, the highest estimate reached) as they happen.
        case sequenceWorstLost, sequenceWorstReordered, sequenceWorstDuplicates, sequenceWorstJitterNanoseconds
        /// (ext) UDP with READ: datagrams the kernel dropped on this run's sockets because their
        /// receive queue was full (Loadshear did not read them in time), read from each socket
        /// (`SO_MEMINFO`) as Loadshear closes it.
        case udpReceiveDrops
        /// (ext) Connects Loadshear completed on a socket of its own (TCP to loopback, see
        /// the engine's `DirectSocket`); the others took NIO's bootstrap (another host, a
        /// connect still in progress, the path switched off).
        case directConnects
        /// Times a handler used up its turn (2 ms of handler time in one read) and the read's
        /// other frames waited for the loop's next turn, so the timeline and the other
        /// sessions ran in between.
        case handlerYields
        /// (ext) UDP handler replies longer than one datagram can carry (65,507 bytes): dropped
        /// (logged once), the session goes on.
        case oversizedReplies

        /// The counter's name in the JSON report and the NDJSON lines. Spelled out, not derived
        /// from the case name, because the report format promises these names stay.
        package var name: String {
            switch self {
            case .bytesSent: "bytesSent"
            case .bytesRead: "bytesRead"
            case .packetsSent: "packetsSent"
            case .framesRead: "framesRead"
            case .responsesSent: "responsesSent"
            case .bytesUnconfirmed: "bytesUnconfirmed"
            case .connectionsAttempted: "connectionsAttempted"
            case .connectionsSucceeded: "connectionsSucceeded"
            case .connectionsFailed: "connectionsFailed"
            case .connectionsCancelled: "connectionsCancelled"
            case .connectionsActive: "connectionsActive"
            case .connectRefused: "connectRefused"
            case .connectTimedOut: "connectTimedOut"
            case .connectUnreachable: "connectUnreachable"
            case .connectTooManyFiles: "connectTooManyFiles"
            case .connectNoAddress: "connectNoAddress"
            case .connectOtherError: "connectOtherError"
            case .closedByUs: "closedByUs"
            case .closedByPeer: "closedByPeer"
            case .resets: "resets"
            case .localErrors: "localErrors"
            case .protocolErrors: "protocolErrors"
            case .bodyTooLarge: "bodyTooLarge"
            case .headerUnreadable: "headerUnreadable"
            case .finsReceived: "finsReceived"
            case .readPauses: "readPauses"
            case .handlerCalls: "handlerCalls"
            case .handlerReplies: "handlerReplies"
            case .handlerEmpty: "handlerEmpty"
            case .handlerTraps: "handlerTraps"
            case .trapUnreachable: "trapUnreachable"
            case .trapOutOfBounds: "trapOutOfBounds"
            case .trapOutOfFuel: "trapOutOfFuel"
            case .trapStackExhausted: "trapStackExhausted"
            case .trapOther: "trapOther"
            case .handlerBadPointers: "handlerBadPointers"
            case .handlerAllocFailures: "handlerAllocFailures"
            case .handlerMemoryDenied: "handlerMemoryDenied"
            case .icmpErrors: "icmpErrors"
            case .datagramsTruncated: "datagramsTruncated"
            case .oversizedDatagrams: "oversizedDatagrams"
            case .requests: "requests"
            case .replies: "replies"
            case .unmatched: "unmatched"
            case .duplicates: "duplicates"
            case .timeouts: "timeouts"
            case .outstanding: "outstanding"
            case .requestsCutOff: "requestsCutOff"
            case .pacedPayloads: "pacedPayloads"
            case .pacedBehind: "pacedBehind"
            case .loopBusyMicroseconds: "loopBusyMicroseconds"
            case .resetsSent: "resetsSent"
            case .reconnects: "reconnects"
            case .churnSkipped: "churnSkipped"
            case .peakOpenSessions: "peakOpenSessions"
            case .tlsVerifyFailed: "tlsVerifyFailed"
            case .tlsProtocolError: "tlsProtocolError"
            case .tlsHandshakeTimedOut: "tlsHandshakeTimedOut"
            case .repliesReordered: "repliesReordered"
            case .sequenced: "sequenced"
            case .sequenceLost: "sequenceLost"
            case .sequenceReordered: "sequenceReordered"
            case .sequenceDuplicates: "sequenceDuplicates"
            case .sequenceWorstLost: "sequenceWorstLost"
            case .sequenceWorstReordered: "sequenceWorstReordered"
            case .sequenceWorstDuplicates: "sequenceWorstDuplicates"
            case .sequenceWorstJitterNanoseconds: "sequenceWorstJitterNanoseconds"
            case .udpReceiveDrops: "udpReceiveDrops"
            case .directConnects: "directConnects"
            case .handlerYields: "handlerYields"
            case .oversizedReplies: "oversizedReplies"
            }
        }
    }

    /// Counters that combine by the largest value, not the sum (shards, segments): the worst
    /// session's figures.
    package static let maxCounters: Set<Counter> = [
        .sequenceWorstLost, .sequenceWorstReordered, .sequenceWorstDuplicates, .sequenceWorstJitterNanoseconds,
    ]

    /// Raises a worst-session counter to `n`; call only from the owning shard's loop.
    @inline(__always)
    package func raise(_ c: Counter, to n: Int) {
        if n > get(c) { set(c, n) }
    }

    /// Connect failures by reason: the counter and the name the summary and the report use.
    package static let connectFailureReasons: [(Counter, String)] = [
        (.connectRefused, "connection refused"), (.connectTimedOut, "timed out"),
        (.connectUnreachable, "unreachable"), (.connectTooManyFiles, "too many open files"),
        (.connectNoAddress, "no local address or port free"), (.connectOtherError, "other error"),
        (.tlsVerifyFailed, "TLS certificate verify failed"), (.tlsProtocolError, "TLS protocol error"),
        (.tlsHandshakeTimedOut, "TLS handshake timed out"),
    ]

    /// Protocol errors by reason.
    package static let protocolErrorReasons: [(Counter, String)] = [
        (.bodyTooLarge, "body above BODYMAX"), (.headerUnreadable, "header length unreadable"),
    ]

    /// Handler failures by kind: the counter and the name the summary and the report use.
    package static let handlerFailureKinds: [(Counter, String)] = [
        (.trapUnreachable, "unreachable"), (.trapOutOfBounds, "out of bounds"), (.trapOutOfFuel, "out of fuel"),
        (.trapStackExhausted, "stack exhausted"), (.trapOther, "other trap"),
        (.handlerBadPointers, "bad pointer"), (.handlerAllocFailures, "alloc failure"),
    ]

    /// One slot per counter, indexed by the counter's raw value.
    private let slots: [Slot]
    /// Monotonic nanoseconds of the shard's first connect attempt and latest successful
    /// connect (0 = none yet): the connect phase the summary reports.
    private let firstConnectAttempt = Atomic<UInt64>(0)
    private let lastConnect = Atomic<UInt64>(0)

    /// One counter. A class so that the noncopyable atomic has a stable home.
    final class Slot: Sendable {
        let value = Atomic<Int>(0)
    }

    package init() {
        slots = Counter.allCases.map { _ in Slot() }
    }

    /// Adds `n`; call only from the owning shard's loop.
    @inline(__always)
    package func add(_ c: Counter, _ n: Int = 1) {
        let slot = slots[c.rawValue]
        slot.value.store(slot.value.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    /// Sets a gauge-like counter; call only from the owning shard's loop.
    @inline(__always)
    package func set(_ c: Counter, _ n: Int) {
        slots[c.rawValue].value.store(n, ordering: .relaxed)
    }

    /// Reads a counter from any thread.
    @inline(__always)
    package func get(_ c: Counter) -> Int {
        slots[c.rawValue].value.load(ordering: .relaxed)
    }

    /// Notes a connect attempt at monotonic time `now`; call only from the owning loop.
    package func connectAttempted(at now: UInt64) {
        if firstConnectAttempt.load(ordering: .relaxed) == 0 { firstConnectAttempt.store(now, ordering: .relaxed) }
    }

    /// Notes a successful connect at monotonic time `now`; call only from the owning loop.
    package func connected(at now: UInt64) {
        lastConnect.store(now, ordering: .relaxed)
    }

    /// (first attempt, last success) in monotonic nanoseconds, 0 when none.
    package var connectPhase: (UInt64, UInt64) {
        (firstConnectAttempt.load(ordering: .relaxed), lastConnect.load(ordering: .relaxed))
    }

    /// Every counter's value now, read from any thread; each is read on its own, so the set is
    /// not one atomic instant.
    package func snapshot() -> CounterValues {
        CounterValues(values: Counter.allCases.map { get($0) })
    }
}

/// Counter values at one moment; sums and differences are exact.
package struct CounterValues: Sendable, Equatable {
    /// Indexed by ``ShardCounters/Counter`` raw value.
    package var values: [Int]

    /// All zeros by default.
    package init(values: [Int] = [Int](repeating: 0, count: ShardCounters.Counter.allCases.count)) {
        self.values = values
    }

    /// The value of counter `c`.
    package subscript(_ c: ShardCounters.Counter) -> Int {
        get { values[c.rawValue] }
        set { values[c.rawValue] = newValue }
    }

    /// The sum, counter by counter; the largest of the two for ``ShardCounters/maxCounters``.
    package static func + (a: CounterValues, b: CounterValues) -> CounterValues {
        var out = CounterValues(values: zip(a.values, b.values).map { $0 &+ $1 })
        for c in ShardCounters.maxCounters { out[c] = Swift.max(a[c], b[c]) }
        return out
    }

    /// The difference, counter by counter.
    package static func - (a: CounterValues, b: CounterValues) -> CounterValues {
        CounterValues(values: zip(a.values, b.values).map { $0 &- $1 })
    }
}
