import NIOCore

/// (ext) One session's requests awaiting replies (RESPONSE). Requests are kept in send
/// order with their intended send times; by id as well when replies carry the id.
///
/// Memory is bounded by what was sent within TIMEOUT: an entry leaves when it is older than
/// TIMEOUT (a timeout if unanswered) — answered entries stay until then too, so a second
/// reply to the same id within TIMEOUT is recognised as a duplicate. At `rate` requests per
/// second a session holds at most `rate × TIMEOUT` entries, about 40 bytes each (a server
/// that never answers 100k requests/s with TIMEOUT = 5s: 500k entries, ~20 MB).
struct RequestTable {
    /// Top bit of a stored time: the request has been answered.
    private static let answered: UInt64 = 1 << 63

    /// Requests in send order: (id, intended send time). In-order matching uses only this.
    private var order = CircularBuffer<(id: UInt64, at: UInt64)>(initialCapacity: 16)
    /// id → intended send time (| `answered`) and send number, for id matching.
    private var byID: [UInt64: (at: UInt64, n: UInt64)] = [:]
    /// Requests sent so far, and the send number of the latest-sent request answered.
    private var sentCount: UInt64 = 0
    private var latestAnswered: UInt64 = 0
    private let matchesByID: Bool
    /// Requests neither answered nor timed out.
    private(set) var outstanding = 0
    /// Of those, the ones sent on the current connection: the only ones a reply can still
    /// come for. A draining session waits for these (CHURN's closed connections left the rest).
    private(set) var awaitable = 0
    /// Send number of the current connection's first request (id matching tells its own).
    private var connectionFirst: UInt64 = 1
    /// In-order matching: requests that went out on a connection that has closed (CHURN
    /// reconnects), in send order. No reply can come for them any more, so replies on the
    /// new connection match `order` only; these time out as usual. All of them predate
    /// everything in `order`, so they expire first.
    private var stale = CircularBuffer<(id: UInt64, at: UInt64)>()

    init(matchesByID: Bool) {
        self.matchesByID = matchesByID
    }

    enum Outcome {
        /// Response time in nanoseconds; `reordered` when a request sent after this one was
        /// answered first (id matching only).
        case matched(UInt64, reordered: Bool)
        case unmatched
        case duplicate
    }

    /// A request went out; `at` is its intended send time. True when its id was still
    /// outstanding from an earlier request (a counter that wrapped within TIMEOUT): that one
    /// can no longer be told apart, and is given up as a timeout.
    mutating func sent(id: UInt64, at: UInt64) -> Bool {
        order.append((id, at))
        outstanding += 1
        awaitable += 1
        sentCount += 1
        if matchesByID, let old = byID.updateValue((at, sentCount), forKey: id), old.at & Self.answered == 0 {
            outstanding -= 1
            if old.n >= connectionFirst { awaitable -= 1 }
            return true
        }
        return false
    }

    /// A reply arrived at `now` carrying `id` (ignored in in-order mode). Requests older
    /// than `timeout` are expired first, so a late reply matches nothing.
    mutating func reply(id: UInt64, at now: UInt64, timeout: UInt64, timedOut: inout Int) -> Outcome {
        expire(now: now, timeout: timeout, timedOut: &timedOut)
        if !matchesByID {
            // The oldest unanswered request of this connection (answered ones never stay in
            // order here).
            guard let first = order.popFirst() else { return .unmatched }
            outstanding -= 1
            awaitable -= 1
            return .matched(now &- min(now, first.at), reordered: false)
        }
        guard let stored = byID[id] else { return .unmatched }
        if stored.at & Self.answered != 0 { return .duplicate }
        byID[id] = (stored.at | Self.answered, stored.n)
        outstanding -= 1
        if stored.n >= connectionFirst { awaitable -= 1 }
        let reordered = stored.n < latestAnswered
        latestAnswered = max(latestAnswered, stored.n)
        return .matched(now &- min(now, stored.at), reordered: reordered)
    }

    /// Drops requests sent more than `timeout` before `now`, counting the unanswered ones.
    mutating func expire(now: UInt64, timeout: UInt64, timedOut: inout Int) {
        while let first = stale.first, now >= first.at, now - first.at >= timeout {
            stale.removeFirst()
            outstanding -= 1
            timedOut += 1
        }
        while let first = order.first, now >= first.at, now - first.at >= timeout {
            order.removeFirst()
            if matchesByID {
                guard let stored = byID[first.id], stored.at & ~Self.answered == first.at else { continue }
                byID[first.id] = nil
                if stored.at & Self.answered == 0 {
                    outstanding -= 1
                    if stored.n >= connectionFirst { awaitable -= 1 }
                    timedOut += 1
                }
            } else {
                outstanding -= 1
                awaitable -= 1
                timedOut += 1
            }
        }
    }

    /// The connection closed: what it left unanswered can only time out now. In in-order
    /// mode it is never matched by a later connection's replies (by id, a reply names its own
    /// request anyway).
    mutating func connectionClosed() {
        awaitable = 0
        connectionFirst = sentCount + 1
        guard !matchesByID, !order.isEmpty else { return }
        stale.append(contentsOf: order)
        order.removeAll(keepingCapacity: true)
    }

    /// The session ends for good: requests that earlier connections (closed by CHURN) left
    /// unanswered can get no reply; they count as timeouts now rather than stay outstanding —
    /// as they would have at TIMEOUT, had the run gone on. The current connection's are left.
    mutating func giveUpEarlierConnections(timedOut: inout Int) {
        timedOut += stale.count
        outstanding -= stale.count
        stale.removeAll()
        guard matchesByID else { return }
        while let first = order.first {
            guard let stored = byID[first.id], stored.at & ~Self.answered == first.at else {
                order.removeFirst()  // superseded by a later request with the same id
                continue
            }
            guard stored.n < connectionFirst else { break }
            order.removeFirst()
            byID[first.id] = nil
            if stored.at & Self.answered == 0 {
                outstanding -= 1
                timedOut += 1
            }
        }
    }

    /// Nothing is held.
    var isEmpty: Bool { order.isEmpty && stale.isEmpty }
}
