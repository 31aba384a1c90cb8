/// The immutable result of parsing and checking a script: everything a run needs and
/// nothing it has to look up again. `--dry-run` prints it; a run executes exactly it.
public struct Plan: Sendable {
    /// The script path as given.
    public var scriptPath: String
    /// The SETTINGS / ORCHESTRATOR name.
    public var name: String
    public var settings: Settings
    public var endpoints: [Endpoint]
    public var packets: [Packet]
    /// Sessions `0..<sessionCount` are created.
    public var sessionCount: Int
    /// Shard `i` owns `shards[i]`: contiguous, as even as possible, covering all sessions.
    public var shards: [Range<Int>]
    /// The timeline in execution order, with absolute start times.
    public var actions: [PlannedAction]
    /// Every SEND, in script order; `PlannedAction.Kind.send` refers to them by index.
    public var sends: [SendSpec]
    public var handler: HandlerSpec

    /// Start time of the last action: the run ends once it has executed.
    public var duration: Nanoseconds { actions.last?.at ?? 0 }

    /// Every resolved address in the order sessions use them (round-robin by session index).
    public var addresses: [ResolvedAddress] {
        var seen = Set<ResolvedAddress>()
        var out: [ResolvedAddress] = []
        for e in endpoints {
            for a in e.addresses where seen.insert(a).inserted { out.append(a) }
        }
        return out
    }

    /// Indices into `sends` of the SENDs whose range holds `session`, in script order.
    /// Their payloads, `copies` each, form the session's payload list.
    public func sendIndices(for session: Int) -> [Int] {
        sends.indices.filter { sends[$0].sessions.contains(session) }
    }

    /// The number of payloads in a session's list.
    public func payloadCount(for session: Int) -> Int {
        sends.reduce(0) { $0 + ($1.sessions.contains(session) ? $1.copies : 0) }
    }
}

public typealias Nanoseconds = Int64

public enum SessionKind: String, Sendable {
    case tcp = "TCP"
    case udp = "UDP"
}

public struct Settings: Sendable {
    public var session: SessionKind
    public var port: Int
    /// Fixed header size of a framed read; set when READ is on for TCP.
    public var headerSize: Int?
    /// Largest accepted body (TCP) or datagram (UDP) when reading.
    public var bodyMax: Int?
    public var read: Bool
    public var repeatPayloads: Bool
    /// Sample the first and every `sampleRate`-th packet's latency (0 in the script means 100).
    public var sampleRate: Int
    public var shardCount: Int
    /// (ext) where the body length sits in the header.
    public var headerLength: HeaderLength?
    /// (ext) `HANDLER_MEMORY`: the most linear memory one handler instance may grow to, in bytes.
    public var handlerMemory: Int = SizeLiteral.defaultHandlerMemory
}

/// `HEADER_LENGTH = offset:size "big"|"little"`.
public struct HeaderLength: Sendable, Equatable {
    public var offset: Int
    public var size: Int
    public var bigEndian: Bool

    public init(offset: Int, size: Int, bigEndian: Bool) {
        self.offset = offset
        self.size = size
        self.bigEndian = bigEndian
    }

    /// Reads the unsigned body length from a header.
    @inlinable
    public func read(_ header: UnsafeRawBufferPointer) -> UInt64 {
        var v: UInt64 = 0
        if bigEndian {
            for i in 0..<size { v = (v << 8) | UInt64(header[offset + i]) }
        } else {
            for i in (0..<size).reversed() { v = (v << 8) | UInt64(header[offset + i]) }
        }
        return v
    }
}

/// One ENDPOINTS entry and what it resolved to.
public struct Endpoint: Sendable {
    /// As written in the script.
    public var host: String
    public var addresses: [ResolvedAddress]
}

/// A numeric address and port, ready for a socket.
public struct ResolvedAddress: Sendable, Hashable, CustomStringConvertible {
    public var ip: String
    public var port: Int
    public var isIPv6: Bool { ip.contains(":") }
    public var description: String { isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    public init(ip: String, port: Int) {
        self.ip = ip
        self.port = port
    }
}

/// A packet file, read once at plan time.
public struct Packet: Sendable {
    public var id: String
    /// The path as written in the script.
    public var path: String
    /// The path after resolving against the script's directory, `~/` and environment.
    public var resolvedPath: String
    public var bytes: [UInt8]
}

public enum ByteOrder: String, Sendable {
    case big
    case little
}

/// COUNTER: bytes `[offset, offset+length)` carry `n·step` for the n-th copy sent.
public struct CounterPatch: Sendable, Equatable {
    public var offset: Int
    public var length: Int
    public var order: ByteOrder
    public var step: UInt64
}

public enum TimeUnit: String, Sendable, CaseIterable {
    case seconds, milliseconds, microseconds, nanoseconds

    /// Nanoseconds in one unit.
    public var nanoseconds: UInt64 {
        switch self {
        case .seconds: 1_000_000_000
        case .milliseconds: 1_000_000
        case .microseconds: 1_000
        case .nanoseconds: 1
        }
    }
}

/// TIMESTAMP: bytes `[offset, offset+length)` carry the Unix time at send.
public struct TimestampPatch: Sendable, Equatable {
    public var offset: Int
    public var length: Int
    public var order: ByteOrder
    public var unit: TimeUnit
}

/// A SEND action: `copies` payloads of `packet` for each session in range.
public struct SendSpec: Sendable {
    public var packet: Int
    public var sessions: Range<Int>
    public var copies: Int
    public var counter: CounterPatch?
    public var timestamp: TimestampPatch?
    public var line: Int
}

public struct PlannedAction: Sendable {
    public enum Kind: Sendable, Equatable {
        case create(Int)
        case connect
        /// Index into `Plan.sends`.
        case send(Int)
        case flood
        case drain
        /// `skipped`: sessions in the range that were never connected (skipped, as in the
        /// original).
        case disconnect(skipped: Int)

        public var name: String {
            switch self {
            case .create: "CREATE"
            case .connect: "CONNECT"
            case .send: "SEND"
            case .flood: "FLOOD"
            case .drain: "DRAIN"
            case .disconnect: "DISCONNECT"
            }
        }
    }

    public var kind: Kind
    public var sessions: Range<Int>
    /// Absolute start time from the beginning of the run.
    public var at: Nanoseconds
    /// The offset from the previous action (as written or the 250ms default).
    public var offset: Nanoseconds
    public var line: Int
}

/// The message handler the plan uses.
public enum HandlerSpec: Sendable {
    case nop
    case wasm(WasmHandlerSpec)

    public var isNOP: Bool {
        if case .nop = self { return true }
        return false
    }
}

public struct WasmHandlerSpec: Sendable {
    /// As written in the script.
    public var path: String
    public var resolvedPath: String
    public var bytes: [UInt8]
    /// What the inspector found (empty when no inspector ran).
    public var exports: [String]
    public var hasHandleHeader: Bool
    /// The module's memory when instantiated (nil when no inspector ran).
    public var initialMemoryBytes: Int? = nil
}
