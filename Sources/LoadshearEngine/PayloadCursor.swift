/// One entry of a session's payload list: `copies` payloads of one SEND.
struct PayloadEntry: Sendable {
    /// Index into the plan's SENDs.
    var send: Int
    /// Index into the plan's packets.
    var packet: Int
    /// Payloads in this entry: the SEND's COPIES.
    var copies: Int
    /// The SEND has a COUNTER or TIMESTAMP, so every copy is built rather than sliced.
    var patched: Bool
}

/// A session's place in its payload list. The list is fixed at plan time (the SENDs that
/// name the session, in script order); SENDs release payloads from its front, FLOOD
/// releases all of it, and FLOOD with REPEAT starts a new pass whenever one ends — until
/// DRAIN, which lets the current pass finish.
struct PayloadCursor {
    /// The session's payload list.
    let entries: [PayloadEntry]
    /// Payloads in one pass over the whole list.
    let count: Int
    /// Index into `entries` of the current entry.
    private(set) var entryIndex = 0
    /// Copies of the current entry already sent in this pass.
    private(set) var copyIndex = 0
    /// Payloads into the current pass.
    private(set) var position = 0
    /// Payloads released by SENDs so far (first pass).
    private(set) var released = 0
    /// (ext) PACE: payloads the schedule allows now (`Int.max` when not paced).
    var budget = Int.max
    // The three flags last, together (a cursor is 64 bytes, not 80: one per session).
    /// REPEAT: a FLOOD starts another pass each time one ends.
    let repeats: Bool
    /// FLOOD reached the session: the whole list is released.
    var flooding = false
    /// DRAIN reached the session: no new pass starts.
    var draining = false

    /// A cursor at the start of `entries`, nothing released.
    init(entries: [PayloadEntry], repeats: Bool) {
        self.entries = entries
        self.count = entries.reduce(0) { $0 + $1.copies }
        self.repeats = repeats
    }

    /// SEND: `copies` more payloads of the first pass are released, never past the list's end.
    mutating func release(_ copies: Int) {
        released = min(released + copies, count)
    }

    /// Where the current pass stops for now.
    var limit: Int { flooding ? count : released }

    /// Something may be written now: the pace budget allows it, and released payloads are
    /// left or FLOOD with REPEAT may start a new pass.
    var hasPayload: Bool { budget > 0 && hasMore }

    /// Something is left to send, now or later (a paced session's schedule may hold it back).
    var hasMore: Bool {
        guard count > 0 else { return false }
        if flooding { return position < count || (repeats && !draining) }
        return position < released
    }

    /// The current entry; valid after ``wrapIfAllowed()`` returned true.
    var entry: PayloadEntry { entries[entryIndex] }
    /// Copies left in the current entry, within what is released.
    var available: Int { min(entries[entryIndex].copies - copyIndex, limit - position, budget) }

    /// `n` payloads of the current entry were sent; `n` is at most ``available``.
    @inline(__always)
    mutating func advance(_ n: Int) {
        copyIndex += n
        position += n
        if budget != .max { budget -= n }
        if copyIndex == entries[entryIndex].copies {
            entryIndex += 1
            copyIndex = 0
        }
    }

    /// At the end of the released part: start the next pass if FLOOD + REPEAT allow it.
    /// False when nothing more may be sent now.
    @inline(__always)
    mutating func wrapIfAllowed() -> Bool {
        guard position >= limit else { return true }
        guard flooding, repeats, !draining, count > 0 else { return false }
        position = 0
        entryIndex = 0
        copyIndex = 0
        return true
    }
}
