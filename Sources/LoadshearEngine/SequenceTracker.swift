/// (ext) SEQUENCE: one session's analysis of the numbers its inbound messages carry.
///
/// - **lost**: numbers between the lowest and the highest seen that never arrived. A gap
///   counts as lost at once and stops counting when its number turns up late, so the figure
///   is exact whenever the run ends.
/// - **reordered**: a message that arrived after a higher number (a late one).
/// - **duplicates**: a number that had already arrived.
/// - **jitter**: the RFC 3550 §6.4.1 estimator, J += (|D| − J) / 16, over in-order arrivals.
///   The messages carry no send time, so the difference of send times is taken as the
///   difference of numbers times the session's mean arrival interval so far: a stream that
///   arrives evenly spaced has jitter 0, whatever its rate.
///
/// Numbers are unsigned fields of 1 to 8 bytes and may wrap: each is placed relative to the
/// highest seen (the nearest one with those low bits), as RTP does. Whether a number arrived
/// is remembered for the ``window`` numbers below the highest; a number further back than
/// that is counted as reordered and as filling a gap, never as a duplicate.
struct SequenceTracker {
    /// Numbers below the highest whose arrival is remembered (a power of two): 512 bytes.
    static let window: Int64 = 4096

    /// One bit per number, at `n & (window - 1)`.
    private var seen = [UInt64](repeating: 0, count: Int(SequenceTracker.window / 64))
    /// The highest and lowest numbers seen, unwrapped.
    private var highest: Int64 = 0
    private var lowest: Int64 = 0
    /// The field's width in bits (8 to 64).
    private let bits: Int
    /// First and latest in-order arrival: (number, monotonic ns), for the mean interval.
    private var first: (n: Int64, at: UInt64) = (0, 0)
    private var last: (n: Int64, at: UInt64) = (0, 0)
    private(set) var lost = 0
    private(set) var reordered = 0
    private(set) var duplicates = 0
    /// The jitter estimate, in nanoseconds.
    private(set) var jitter: Double = 0

    init(bytes: Int) {
        bits = bytes * 8
    }

    /// What one message's number changed: added to the shard's totals by the caller.
    struct Change {
        var lost = 0
        var reordered = 0
        var duplicate = false
        /// True when the jitter estimate was updated (an in-order arrival after the first).
        var jitterUpdated = false
    }

    /// A message carrying `raw` (the field's value) arrived at `now` (monotonic ns).
    mutating func receive(_ raw: UInt64, at now: UInt64) -> Change {
        var change = Change()
        if first.at == 0 {
            let n = Int64(bitPattern: raw)
            highest = n
            lowest = n
            first = (n, now)
            last = first
            mark(n)
            return change
        }
        // The nearest number with these low bits: sign-extend the difference to the width.
        let shift = UInt64(64 - bits)
        let delta = Int64(bitPattern: (raw &- UInt64(bitPattern: highest)) << shift) >> Int64(shift)
        let n = highest &+ delta
        if delta > 0 {
            // Newer than anything so far: the numbers skipped are a gap.
            let gap = Int(min(delta - 1, Int64(Int.max / 2)))
            change.lost = gap
            advance(to: n)
            if n > last.n, last.n > first.n, last.at >= first.at, now >= last.at {
                let interval = Double(last.at - first.at) / Double(last.n - first.n)
                let d = Double(now - last.at) - Double(n - last.n) * interval
                jitter += (abs(d) - jitter) / 16
                change.jitterUpdated = true
            }
            last = (n, now)
        } else if delta == 0 {
            change.duplicate = true
        } else if n < lowest {
            // Below everything so far: what lies between is a gap, this one is late.
            change.lost = Int(min(lowest - n - 1, Int64(Int.max / 2)))
            change.reordered = 1
            if highest - n < Self.window { mark(n) }
            lowest = n
        } else if highest - n >= Self.window {
            // Too far back to remember: late, and taken to fill a gap.
            change.reordered = 1
            change.lost = lost > 0 ? -1 : 0
        } else if isMarked(n) {
            change.duplicate = true
        } else {
            mark(n)
            change.reordered = 1
            change.lost = -1
        }
        lost += change.lost
        reordered += change.reordered
        if change.duplicate { duplicates += 1 }
        return change
    }

    /// Moves the highest to `n`, forgetting the numbers that fall out of the window.
    private mutating func advance(to n: Int64) {
        if n - highest >= Self.window {
            for i in seen.indices { seen[i] = 0 }
        } else {
            var k = highest &+ 1
            while k <= n {
                let slot = Int(k & (Self.window - 1))
                seen[slot >> 6] &= ~(1 << UInt64(slot & 63))
                k += 1
            }
        }
        highest = n
        mark(n)
    }

    private mutating func mark(_ n: Int64) {
        let slot = Int(n & (Self.window - 1))
        seen[slot >> 6] |= 1 << UInt64(slot & 63)
    }

    private func isMarked(_ n: Int64) -> Bool {
        let slot = Int(n & (Self.window - 1))
        return seen[slot >> 6] & (1 << UInt64(slot & 63)) != 0
    }
}
