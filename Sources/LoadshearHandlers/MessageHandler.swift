import LoadshearScript

/// Why a handler call gave no reply: a trap of one of five kinds, or a breach of the
/// contract. A fixed set, so counting by kind stays bounded whatever the guest does.
package enum HandlerFailure: String, CaseIterable, Sendable, Hashable {
    /// The guest executed `unreachable` (a panic or an abort, in most languages).
    case unreachable
    /// A memory or table access out of bounds.
    case outOfBounds
    /// The call ran past its fuel (``WasmContract/fuelPerCall``).
    case outOfFuel
    /// The call stack overflowed: deep or endless recursion.
    case stackExhausted
    /// Any other trap (integer divide by zero, overflow, indirect-call mismatch, …).
    case otherTrap
    /// The guest returned a pointer or size outside its memory.
    case badPointer
    /// `alloc` returned 0 for a non-empty message.
    case allocFailed

    /// Whether it is a trap (counted in `handlerTraps` too) rather than a contract breach.
    package var isTrap: Bool {
        switch self {
        case .unreachable, .outOfBounds, .outOfFuel, .stackExhausted, .otherTrap: true
        case .badPointer, .allocFailed: false
        }
    }

    /// One line for the log.
    package var explanation: String {
        switch self {
        case .unreachable: "handler trap: unreachable executed"
        case .outOfBounds: "handler trap: out of bounds memory or table access"
        case .outOfFuel: "handler trap: out of fuel (a call ran past its budget)"
        case .stackExhausted: "handler trap: call stack exhausted"
        case .otherTrap: "handler trap"
        case .badPointer: "handler returned a pointer or size outside its memory"
        case .allocFailed: "handler alloc returned 0"
        }
    }
}

/// What happened to one message given to a handler: exactly one of these, so each call is
/// counted once, the same way for TCP and UDP.
package enum HandlerOutcome: Sendable, Equatable {
    /// A non-empty reply was delivered to the `reply` closure.
    case reply
    /// The handler chose not to answer (size 0).
    case empty
    /// The call failed; no reply was delivered.
    case failed(HandlerFailure)
}

/// What a handler said about a frame header.
package enum HeaderOutcome: Sendable, Equatable {
    /// The body length in bytes, 0 or more.
    case length(Int)
    /// The handler returned a negative length.
    case invalid
    /// The call failed (trap or contract breach).
    case failed(HandlerFailure)
}

/// Answers a session's framed messages. One instance per shard, used only on that shard's
/// event loop, so implementations need no locking.
package protocol MessageHandler: AnyObject {
    /// Whether `bodyLength(header:)` is implemented (the module exports `handle_header`).
    var readsHeaders: Bool { get }

    /// The body length encoded in a header.
    func bodyLength(header: UnsafeRawBufferPointer) -> HeaderOutcome

    /// Handles one message (header and body, contiguous). A non-empty reply is passed to
    /// `reply` while its bytes are valid, and only once the whole call sequence has succeeded;
    /// the caller copies them out.
    func handle(_ message: UnsafeRawBufferPointer, reply: (UnsafeRawBufferPointer) -> Void) -> HandlerOutcome

    /// Guest memory-growth requests refused at the memory cap since the last call of this.
    func takeMemoryDenials() -> Int
}

/// `HANDLER = "NOP"`: messages are read and dropped.
package final class NOPHandler: MessageHandler {
    package init() {}
    package var readsHeaders: Bool { false }
    /// Always 0; never asked during a run, since ``readsHeaders`` is false.
    package func bodyLength(header: UnsafeRawBufferPointer) -> HeaderOutcome { .length(0) }
    package func handle(_ message: UnsafeRawBufferPointer, reply: (UnsafeRawBufferPointer) -> Void) -> HandlerOutcome {
        .empty
    }
    package func takeMemoryDenials() -> Int { 0 }
}

/// Makes one handler per shard from the plan's handler spec.
package protocol HandlerFactory: Sendable {
    /// Makes one handler; the engine calls it once per shard, on that shard's loop.
    func makeHandler() throws -> MessageHandler
}

/// The factory for `HANDLER = "NOP"`.
package struct NOPHandlerFactory: HandlerFactory {
    package init() {}
    package func makeHandler() throws -> MessageHandler { NOPHandler() }
}
