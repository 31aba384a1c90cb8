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
/// highest seen (the nearest one with those low bits), as RTP does, and every distance is
/// taken relative to the highest with wrapping arithmetic, so no value a server sends can
/// overflow. A jump of more than ``maxJump`` either way is taken as the stream starting over
/// (a server restart, a wrong offset): counting restarts from that number, no gap booked.
/// Whether a number arrived is remembered for the ``window`` numbers below the highest; one
/// further back is counted as reordered, never as a duplicate or as filling a gap.
struct SequenceTracker {
    /// Numbers below the highest whose arrival is remembered (a power of two): 512 bytes.
    static let window: UInt64 = 4096
    /// The largest jump, forward or back, still taken as the same stream.
    static let maxJump: UInt64 = 1 << 20

    /// One bit per number, at `n & (window - 1)`.
    private var seen = [UInt64](repeating: 0, count: Int(SequenceTracker.window / 64))
    /// The highest number seen, unwrapped (wrapping arithmetic throughout).
    private var highest: UInt64 = 0
    /// How far below the highest the lowest number seen is.
    private var span: UInt64 = 0
    /// The field's width in bits (8 to 64).
    private let bits: UInt64
    /// Mean arrival interval: in-order arrivals so far, as (numbers, nanoseconds) covered
    /// since the first, and the latest in-order arrival's time.
    private var covered: (numbers: UInt64, nanoseconds: UInt64) = (0, 0)
    private var lastAt: UInt64 = 0
    private var started = false
    private(set) var lost = 0
    private(set) var reordered = 0
    private(set) var duplicates = 0
    /// The jitter estimate, in nanoseconds.
    private(set) var jitter: Double = 0

    init(bytes: Int) {
        bits = UInt64(bytes * 8)
    }

    /// What one message's number changed: added to the shard's totals by the caller.
    struct Change {
        var lost = 0
        var reordered = 0
        var duplicate = false
        /// True when the jitter estimate was updated (an in-order arrival after the second).
        var jitterUpdated = false
    }

    /// A message carrying `raw` (the field's value) arrived at `now` (monotonic ns).
    mutating func receive(_ raw: UInt64, at now: UInt64) -> Change {
        var change = Change()
        guard started else {
            restart(at: raw, now)
            return change
        }
        // The nearest number with these low bits: sign-extend the difference to the width.
        let shift = 64 - bits
        let delta = Int64(bitPattern: (raw &- highest) << shift) >> Int64(shift)
        let distance = delta.magnitude
        if distance > Self.maxJump {
            restart(at: highest &+ UInt64(bitPattern: delta), now)
            return change
        }
        if delta > 0 {
            // Newer than anything so far: the numbers skipped are a gap.
            change.lost = Int(distance - 1)
            advance(by: distance)
            if covered.numbers > 0, now >= lastAt {
                let interval = Double(covered.nanoseconds) / Double(covered.numbers)
                let d = Double(now - lastAt) - Double(distance) * interval
                jitter += (abs(d) - jitter) / 16
                change.jitterUpdated = true
            }
            if now >= lastAt {
                covered.numbers &+= distance
                covered.nanoseconds &+= now - lastAt
            }
            lastAt = now
        } else if delta == 0 {
            change.duplicate = true
        } else if distance > span {
            // Below everything so far: what lies between is a gap, this one is late.
            change.lost = Int(distance - span - 1)
            change.reordered = 1
            span = distance
            if distance < Self.window { mark(highest &- distance) }
        } else if distance >= Self.window {
            // Too far back to remember: late (it may be a duplicate; it cannot be told).
            change.reordered = 1
        } else if isMarked(highest &- distance) {
            change.duplicate = true
        } else {
            mark(highest &- distance)
            change.reordered = 1
            // It filled a gap (after a jump past the window forgot what had arrived, it may
            // not have: the count never goes below 0).
            change.lost = lost > 0 ? -1 : 0
        }
        lost &+= change.lost
        reordered &+= change.reordered
        if change.duplicate { duplicates &+= 1 }
        return change
    }

    /// Starts counting afresh from `n`, keeping the counts so far.
    private mutating func restart(at n: UInt64, _ now: UInt64) {
        started = true
        for i in seen.indices { seen[i] = 0 }
        highest = n
        span = 0
        covered = (0, 0)
        lastAt = now
        mark(n)
    }

    /// Moves the highest up by `distance` (≥ 1), forgetting the numbers that fall out of
    /// the window.
    private mutating func advance(by distance: UInt64) {
        if distance >= Self.window {
            for i in seen.indices { seen[i] = 0 }
        } else {
            for i in 1...distance {
                let slot = Int((highest &+ i) & (Self.window - 1))
                seen[slot >> 6] &= ~(1 << UInt64(slot & 63))
            }
        }
        highest &+= distance
        span = min(span &+ distance, Self.maxJump << 1)
        mark(highest)
    }

    private mutating func mark(_ n: UInt64) {
        let slot = Int(n & (Self.window - 1))
        seen[slot >> 6] |= 1 << UInt64(slot & 63)
    }

    private func isMarked(_ n: UInt64) -> Bool {
        let slot = Int(n & (Self.window - 1))
        return seen[slot >> 6] & (1 << UInt64(slot & 63)) != 0
    }
}
