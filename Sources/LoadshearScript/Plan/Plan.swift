/// The immutable result of parsing and checking a script: everything a run needs and
/// nothing it has to look up again. `--dry-run` prints it; a run executes exactly it.
package struct Plan: Sendable {
    /// The script path as given.
    package var scriptPath: String
    /// The SETTINGS / ORCHESTRATOR name.
    package var name: String
    package var settings: Settings
    package var endpoints: [Endpoint]
    package var packets: [Packet]
    /// Sessions `0..<sessionCount` are created.
    package var sessionCount: Int
    /// Shard `i` owns `shards[i]`: contiguous, as even as possible, covering all sessions.
    package var shards: [Range<Int>]
    /// The timeline in execution order, with absolute start times.
    package var actions: [PlannedAction]
    /// Every SEND, in script order; `PlannedAction.Kind.send` refers to them by index.
    package var sends: [SendSpec]
    package var handler: HandlerSpec

    /// Start time of the last action: the run ends once it has executed.
    package var duration: Nanoseconds { actions.last?.at ?? 0 }

    /// Every resolved address in the order sessions use them (round-robin by session index).
    package var addresses: [ResolvedAddress] {
        var seen = Set<ResolvedAddress>()
        var out: [ResolvedAddress] = []
        for e in endpoints {
            for a in e.addresses where seen.insert(a).inserted { out.append(a) }
        }
        return out
    }

    /// Indices into `sends` of the SENDs whose range holds `session`, in script order.
    /// Their payloads, `copies` each, form the session's payload list.
    package func sendIndices(for session: Int) -> [Int] {
        sends.indices.filter { sends[$0].sessions.contains(session) }
    }

    /// The number of payloads in a session's list.
    package func payloadCount(for session: Int) -> Int {
        sends.reduce(0) { $0 + ($1.sessions.contains(session) ? $1.copies : 0) }
    }
}

package typealias Nanoseconds = Int64

package enum SessionKind: String, Sendable {
    case tcp = "TCP"
    case udp = "UDP"
}

package struct Settings: Sendable {
    package var session: SessionKind
    package var port: Int
    /// Fixed header size of a framed read; set when READ is on for TCP.
    package var headerSize: Int?
    /// Largest accepted body (TCP) or datagram (UDP) when reading.
    package var bodyMax: Int?
    package var read: Bool
    package var repeatPayloads: Bool
    /// Sample the first and every `sampleRate`-th packet's latency (0 in the script means 100).
    package var sampleRate: Int
    package var shardCount: Int
    /// (ext) where the body length sits in the header.
    package var headerLength: HeaderLength?
    /// (ext) `HANDLER_MEMORY`: the most linear memory one handler instance may grow to, in bytes.
    package var handlerMemory: Int = SizeLiteral.defaultHandlerMemory
}

/// `HEADER_LENGTH = offset:size "big"|"little"`.
package struct HeaderLength: Sendable, Equatable {
    package var offset: Int
    package var size: Int
    package var bigEndian: Bool

    package init(offset: Int, size: Int, bigEndian: Bool) {
        self.offset = offset
        self.size = size
        self.bigEndian = bigEndian
    }

    /// Reads the unsigned body length from a header.
    @inlinable
    package func read(_ header: UnsafeRawBufferPointer) -> UInt64 {
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
package struct Endpoint: Sendable {
    /// As written in the script.
    package var host: String
    package var addresses: [ResolvedAddress]
}

/// A numeric address and port, ready for a socket.
package struct ResolvedAddress: Sendable, Hashable, CustomStringConvertible {
    package var ip: String
    package var port: Int
    package var isIPv6: Bool { ip.contains(":") }
    package var description: String { isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    package init(ip: String, port: Int) {
        self.ip = ip
        self.port = port
    }
}

/// A packet file, read once at plan time.
package struct Packet: Sendable {
    package var id: String
    /// The path as written in the script.
    package var path: String
    /// The path after resolving against the script's directory, `~/` and environment.
    package var resolvedPath: String
    package var bytes: [UInt8]
}

package enum ByteOrder: String, Sendable {
    case big
    case little
}

/// COUNTER: bytes `[offset, offset+length)` carry `n·step` for the n-th copy sent.
package struct CounterPatch: Sendable, Equatable {
    package var offset: Int
    package var length: Int
    package var order: ByteOrder
    package var step: UInt64
}

package enum TimeUnit: String, Sendable, CaseIterable {
    case seconds, milliseconds, microseconds, nanoseconds

    /// Nanoseconds in one unit.
    package var nanoseconds: UInt64 {
        switch self {
        case .seconds: 1_000_000_000
        case .milliseconds: 1_000_000
        case .microseconds: 1_000
        case .nanoseconds: 1
        }
    }
}

/// TIMESTAMP: bytes `[offset, offset+length)` carry the Unix time at send.
package struct TimestampPatch: Sendable, Equatable {
    package var offset: Int
    package var length: Int
    package var order: ByteOrder
    package var unit: TimeUnit
}

/// A SEND action: `copies` payloads of `packet` for each session in range.
package struct SendSpec: Sendable {
    package var packet: Int
    package var sessions: Range<Int>
    package var copies: Int
    package var counter: CounterPatch?
    package var timestamp: TimestampPatch?
    package var line: Int
}

package struct PlannedAction: Sendable {
    package enum Kind: Sendable, Equatable {
        case create(Int)
        case connect
        /// Index into `Plan.sends`.
        case send(Int)
        case flood
        case drain
        /// `skipped`: sessions in the range that were never connected (skipped, as in the
        /// original).
        case disconnect(skipped: Int)

        package var name: String {
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

    package var kind: Kind
    package var sessions: Range<Int>
    /// Absolute start time from the beginning of the run.
    package var at: Nanoseconds
    /// The offset from the previous action (as written or the 250ms default).
    package var offset: Nanoseconds
    package var line: Int
}

/// The message handler the plan uses.
package enum HandlerSpec: Sendable {
    case nop
    case wasm(WasmHandlerSpec)

    package var isNOP: Bool {
        if case .nop = self { return true }
        return false
    }
}

package struct WasmHandlerSpec: Sendable {
    /// As written in the script.
    package var path: String
    package var resolvedPath: String
    package var bytes: [UInt8]
    /// What the inspector found (empty when no inspector ran).
    package var exports: [String]
    package var hasHandleHeader: Bool
    /// The module's memory when instantiated (nil when no inspector ran).
    package var initialMemoryBytes: Int? = nil
}
