import LoadshearScript

/// What happened to one message given to a handler.
public enum HandlerOutcome: Sendable, Equatable {
    /// A non-empty reply was delivered to the `reply` closure.
    case reply
    /// The handler chose not to answer (size 0).
    case empty
    /// The guest trapped; the kind is the first line of the trap text.
    case trap(String)
    /// The guest returned a pointer or size outside its memory.
    case badPointer
    /// `alloc` returned 0.
    case allocFailed
}

/// Answers a session's framed messages. One instance per shard, used only on that shard's
/// event loop, so implementations need no locking.
public protocol MessageHandler: AnyObject {
    /// Whether `bodyLength(header:)` is implemented (the module exports `handle_header`).
    var readsHeaders: Bool { get }

    /// Failures by kind (trap texts' first lines, "bad pointer", …) since the handler began.
    var failuresByKind: [String: Int] { get }

    /// The body length encoded in a header, or nil when the handler failed to tell.
    func bodyLength(header: UnsafeRawBufferPointer) -> Int?

    /// Handles one message (header and body, contiguous). A non-empty reply is passed to
    /// `reply` while its bytes are valid; the caller copies them out.
    func handle(_ message: UnsafeRawBufferPointer, reply: (UnsafeRawBufferPointer) -> Void) -> HandlerOutcome
}

/// `HANDLER = "NOP"`: messages are read and dropped.
public final class NOPHandler: MessageHandler {
    public init() {}
    public var readsHeaders: Bool { false }
    public var failuresByKind: [String: Int] { [:] }
    public func bodyLength(header: UnsafeRawBufferPointer) -> Int? { 0 }
    public func handle(_ message: UnsafeRawBufferPointer, reply: (UnsafeRawBufferPointer) -> Void) -> HandlerOutcome {
        .empty
    }
}

/// Makes one handler per shard from the plan's handler spec.
public protocol HandlerFactory: Sendable {
    func makeHandler() throws -> MessageHandler
}

/// The factory for `HANDLER = "NOP"`.
public struct NOPHandlerFactory: HandlerFactory {
    public init() {}
    public func makeHandler() throws -> MessageHandler { NOPHandler() }
}
