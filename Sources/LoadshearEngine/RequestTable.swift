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
        sentCount += 1
        if matchesByID, let old = byID.updateValue((at, sentCount), forKey: id), old.at & Self.answered == 0 {
            outstanding -= 1
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
            return .matched(now &- min(now, first.at), reordered: false)
        }
        guard let stored = byID[id] else { return .unmatched }
        if stored.at & Self.answered != 0 { return .duplicate }
        byID[id] = (stored.at | Self.answered, stored.n)
        outstanding -= 1
        let reordered = stored.n < latestAnswered
        latestAnswered = max(latestAnswered, stored.n)
        return .matched(now &- min(now, stored.at), reordered: reordered)
    }

    /// Drops requests sent more than `timeout` before `now`, counting the unanswered ones.
    mutating func expire(now: UInt64, timeout: UInt64, timedOut: inout Int) {
        while let first = order.first, now >= first.at, now - first.at >= timeout {
            order.removeFirst()
            if matchesByID {
                guard let stored = byID[first.id], stored.at & ~Self.answered == first.at else { continue }
                byID[first.id] = nil
                if stored.at & Self.answered == 0 {
                    outstanding -= 1
                    timedOut += 1
                }
            } else {
                outstanding -= 1
                timedOut += 1
            }
        }
    }

    /// CHURN closed the connection and reconnects: what it left unanswered can get no reply
    /// (not on another connection), so it is cut off, counted in `cutOff`, and nothing of the
    /// old connection is matched or held any more (the session's COUNTER goes on, so the new
    /// connection's ids are new).
    mutating func connectionReplaced(cutOff: inout Int) {
        cutOff += outstanding
        outstanding = 0
        order.removeAll(keepingCapacity: true)
        byID.removeAll(keepingCapacity: true)
    }

    /// Nothing is held.
    var isEmpty: Bool { order.isEmpty }
}
