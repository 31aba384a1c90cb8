/// One entry of a session's payload list: `copies` payloads of one SEND.
struct PayloadEntry: Sendable {
    var send: Int
    var packet: Int
    var copies: Int
    var patched: Bool
}

/// A session's place in its payload list. The list is fixed at plan time (the SENDs that
/// name the session, in script order); SENDs release payloads from its front, FLOOD
/// releases all of it, and FLOOD with REPEAT starts a new pass whenever one ends — until
/// DRAIN, which lets the current pass finish.
struct PayloadCursor {
    let entries: [PayloadEntry]
    let count: Int
    let repeats: Bool
    private(set) var entryIndex = 0
    private(set) var copyIndex = 0
    /// Payloads into the current pass.
    private(set) var position = 0
    /// Payloads released by SENDs so far (first pass).
    private(set) var released = 0
    var flooding = false
    var draining = false

    init(entries: [PayloadEntry], repeats: Bool) {
        self.entries = entries
        self.count = entries.reduce(0) { $0 + $1.copies }
        self.repeats = repeats
    }

    mutating func release(_ copies: Int) {
        released = min(released + copies, count)
    }

    /// Where the current pass stops for now.
    var limit: Int { flooding ? count : released }

    var hasPayload: Bool {
        guard count > 0 else { return false }
        if flooding { return position < count || (repeats && !draining) }
        return position < released
    }

    var entry: PayloadEntry { entries[entryIndex] }
    /// Copies left in the current entry, within what is released.
    var available: Int { min(entries[entryIndex].copies - copyIndex, limit - position) }

    @inline(__always)
    mutating func advance(_ n: Int) {
        copyIndex += n
        position += n
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
