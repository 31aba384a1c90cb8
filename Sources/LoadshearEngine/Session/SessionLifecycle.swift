/// Why a connection ended. Every connection that became active ends with exactly one.
enum CloseReason: Sendable, Equatable {
    /// We closed it: DISCONNECT, DRAIN, the end of the run, Ctrl-C.
    case us
    /// The server closed it (FIN), whoever closed the socket afterwards.
    case peerFin
    /// The server reset it (ECONNRESET, EPIPE; on UDP, port unreachable on a write).
    case peerReset
    /// A socket error on our side (ENOBUFS, ENOMEM, …).
    case localError
    /// The server broke the framing: a body above BODYMAX, a header nobody could read.
    case protocolError
}

/// The lifecycle of one session as a value: events in, actions out. It knows nothing of
/// sockets, so every path — a DISCONNECT racing a connect, an error after a FIN, a close
/// during a close — is switched exhaustively here and unit-tested without a network.
struct SessionLifecycle: Equatable {
    enum State: Equatable {
        /// Created; no CONNECT has reached it (a DISCONNECT skips it).
        case idle
        /// CONNECT reached it; waiting for a connect slot on its shard.
        case queued
        /// The connect is under way; `cancelled` once a DISCONNECT asked to give it up.
        case connecting(cancelled: Bool)
        /// Connected. `peerFinished` once the server half-closed (we keep sending).
        case active(peerFinished: Bool)
        /// A close is under way; the reason is final.
        case closing(CloseReason)
        /// Done; how it ended is final.
        case closed(Ending)
    }

    /// How a session that left `idle` ended.
    enum Ending: Equatable {
        /// Disconnected while it waited for a connect slot: no connect was attempted.
        case notStarted
        /// The connect failed: refused, timed out, unreachable, …
        case failed
        /// The connect was under way when a DISCONNECT (or the end of the run) cancelled it.
        case cancelled
        /// It was connected, and closed for this reason.
        case closed(CloseReason)
    }

    /// Where the session is now; only the event methods change it.
    private(set) var state = State.idle

    /// Connected and not closing: the only state in which it reads and writes.
    var isActive: Bool {
        if case .active = state { return true }
        return false
    }

    /// Done, however it ended.
    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Open in the sense the shard counts: queued, connecting, active or closing.
    var isLive: Bool {
        switch state {
        case .idle, .closed: false
        case .queued, .connecting, .active, .closing: true
        }
    }

    // MARK: events

    /// CONNECT reached the session. False when it cannot be queued (it already was).
    mutating func queue() -> Bool {
        guard case .idle = state else { return false }
        state = .queued
        return true
    }

    /// A connect slot is free. True: open the channel now. False: skip it (it was
    /// disconnected while it waited).
    mutating func startConnect() -> Bool {
        guard case .queued = state else { return false }
        state = .connecting(cancelled: false)
        return true
    }

    /// What the session must do for a DISCONNECT.
    enum DisconnectAction: Equatable {
        /// Nothing: it never had a CONNECT, or its connect is already cancelled, or it is closing
        /// or closed.
        case none
        /// It never started: count it as ended, nothing to close.
        case ended
        /// Close the channel that is still connecting; the connect then fails as cancelled.
        case cancelConnect
        /// Close the connection.
        case close
    }

    /// DISCONNECT, the end of the run or a stop. A session the server half-closed ends as
    /// closed by the server, unless we `reset` it: an RST ends both directions, so we did.
    mutating func disconnect(reset: Bool = false) -> DisconnectAction {
        switch state {
        case .idle:
            return .none
        case .queued:
            state = .closed(.notStarted)
            return .ended
        case .connecting(cancelled: false):
            state = .connecting(cancelled: true)
            return .cancelConnect
        case .active(let peerFinished):
            state = .closing(peerFinished && !reset ? .peerFin : .us)
            return .close
        case .connecting(cancelled: true), .closing, .closed:
            return .none
        }
    }

    /// What the session must do when its channel becomes active.
    enum ConnectedAction: Equatable {
        /// Nothing: the channel was not expected to become active now.
        case none
        /// Count the connection and start reading and writing.
        case start
        /// Count the connection, then close it: it was disconnected while connecting.
        case startThenClose
    }

    /// The channel became active.
    mutating func connected() -> ConnectedAction {
        switch state {
        case .connecting(cancelled: false):
            state = .active(peerFinished: false)
            return .start
        case .connecting(cancelled: true):
            state = .closing(.us)
            return .startThenClose
        case .idle, .queued, .active, .closing, .closed:
            return .none
        }
    }

    /// The connect failed (refused, timed out, cancelled). Nil when it was not connecting.
    mutating func connectFailed() -> Ending? {
        switch state {
        case .connecting(let cancelled):
            let ending: Ending = cancelled ? .cancelled : .failed
            state = .closed(ending)
            return ending
        case .idle, .queued, .active, .closing, .closed:
            return nil
        }
    }

    /// The server half-closed: its input is done; we keep sending. True the first time.
    mutating func peerFinished() -> Bool {
        guard case .active(peerFinished: false) = state else { return false }
        state = .active(peerFinished: true)
        return true
    }

    /// We decided to close (`.us`, `.protocolError`) or an error says the connection is gone
    /// (`.peerReset`, `.localError`). True: close the channel now. Errors that arrive while
    /// a close is under way change nothing: the first reason wins.
    mutating func close(_ reason: CloseReason) -> Bool {
        guard case .active(let peerFinished) = state else { return false }
        state = .closing(reason == .us && peerFinished ? .peerFin : reason)
        return true
    }

    /// (ext) CHURN: a connection CHURN closed goes back to the connect queue — also one the
    /// server had half-closed (it counts as closed by the server, but the turn closed it).
    /// False when it ended any other way (a reset, an error, a DISCONNECT came first).
    mutating func requeue() -> Bool {
        switch state {
        case .closed(.closed(.us)), .closed(.closed(.peerFin)):
            state = .queued
            return true
        default:
            return false
        }
    }

    /// The channel is closed. Returns the reason to count, or nil when it was never active.
    mutating func channelClosed() -> CloseReason? {
        switch state {
        case .active:
            // Closed under us with no error we saw and no close of ours: the peer ended it.
            state = .closed(.closed(.peerFin))
            return .peerFin
        case .closing(let reason):
            state = .closed(.closed(reason))
            return reason
        case .idle, .queued, .connecting, .closed:
            return nil
        }
    }
}
