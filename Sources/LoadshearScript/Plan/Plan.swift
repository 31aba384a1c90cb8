import Foundation

/// The immutable result of parsing and checking a script: everything a run needs and
/// nothing it has to look up again. `--dry-run` prints it; a run executes exactly it.
package struct Plan: Sendable {
    /// The script path as given.
    package var scriptPath: String
    /// The SETTINGS / ORCHESTRATOR name.
    package var name: String
    /// The checked SETTINGS, defaults filled in.
    package var settings: Settings
    /// ENDPOINTS in script order, each with its resolved addresses.
    package var endpoints: [Endpoint]
    /// PACKETS in script order, with their bytes; ``SendSpec/packet`` indexes them.
    package var packets: [Packet]
    /// Sessions `0..<sessionCount` are created.
    package var sessionCount: Int
    /// Shard `i` owns `shards[i]`: contiguous, as even as possible, covering all sessions.
    package var shards: [Range<Int>]
    /// The timeline in execution order, with absolute start times.
    package var actions: [PlannedAction]
    /// Every SEND, in script order; `PlannedAction.Kind.send` refers to them by index.
    package var sends: [SendSpec]
    /// NOP, or the WebAssembly module read at plan time.
    package var handler: HandlerSpec
    /// (ext) The EXPECT thresholds, in script order.
    package var expectations: [Expectation] = []
    /// (ext) Set when this process runs one segment of the plan (`--segment i/N`).
    package var segment: Segment?
    /// (ext) The script's identity across processes (``identity(script:packets:handler:)``).
    package var identity = ""

    /// Start time of the last action: the run ends once it has executed.
    package var duration: Nanoseconds { actions.last?.at ?? 0 }

    /// Every resolved address in the order sessions use them (round-robin by session index).
    package var addresses: [ResolvedAddress] { addressesWithHosts.map(\.address) }

    /// ``addresses``, each with the ENDPOINTS host it came from (the first, when two
    /// hosts resolve to one address): the TLS server name when SNI is not given.
    package var addressesWithHosts: [(address: ResolvedAddress, host: String)] {
        var seen = Set<ResolvedAddress>()
        var out: [(address: ResolvedAddress, host: String)] = []
        for e in endpoints {
            for a in e.addresses where seen.insert(a).inserted { out.append((a, e.host)) }
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

/// Durations and times on the timeline, in nanoseconds.
package typealias Nanoseconds = Int64

/// The transport of every session, `SESSION = "TCP"` or `"UDP"`; raw values are the
/// script's spelling.
package enum SessionKind: String, Sendable {
    case tcp = "TCP"
    case udp = "UDP"
    /// (ext) TCP with TLS: everything a TCP session does, over TLS.
    case tls = "TLS"

    /// TCP or TLS: a byte stream, framed on read.
    package var isStream: Bool { self != .udp }
}

/// (ext) The `TLS { … }` block of a `SESSION = "TLS"` script, its files read at plan time.
package struct TLSSettings: Sendable, Equatable {
    /// SNI: the server name sent and verified; nil: each endpoint's host as written (no SNI
    /// for a numeric address, which is then verified against the certificate's IP names).
    package var serverName: String?
    /// VERIFY: whether the server's certificate chain and name are verified.
    package var verify = true
    /// CA: PEM certificates trusted instead of the system's store.
    package var ca: TLSFile?
    /// CERT and KEY: a client certificate (PEM chain) and its private key (PEM).
    package var certificate: TLSFile?
    package var key: TLSFile?
    /// ALPN: protocols offered, in order of preference.
    package var alpn: [String] = []

    package init() {}
}

/// (ext) A PEM file named in the TLS block.
package struct TLSFile: Sendable, Equatable {
    /// As written in the script.
    package var path: String
    /// After resolving against the script's directory, `~/` and environment.
    package var resolvedPath: String
    package var bytes: [UInt8]

    /// The path as written, and what it expanded to when it named environment variables.
    package var shown: String {
        path.contains("$") ? "\(path) (= \(resolvedPath))" : path
    }
}

/// (ext) Checks the TLS block's files at plan time (PEM parses, the key matches the
/// certificate); `LoadshearScript` knows no TLS, the engine supplies it.
package protocol TLSInspector: Sendable {
    /// Problems, each with the sub-field it is about ("CA", "CERT", "KEY").
    func inspect(_ tls: TLSSettings) -> [(field: String, problem: String)]
}

/// The SETTINGS block, checked, with defaults where the script says nothing.
package struct Settings: Sendable {
    package var session: SessionKind
    /// The port every endpoint address is loaded on, 1 to 65535.
    package var port: Int
    /// Fixed header size of a framed read; set when READ is on for TCP.
    package var headerSize: Int?
    /// Largest accepted body (TCP) or datagram (UDP) when reading.
    package var bodyMax: Int?
    /// READ: whether sessions frame what they receive and hand it to the handler. Received
    /// bytes are counted either way.
    package var read: Bool
    /// REPEAT: whether FLOOD starts a session's payload list over each time it has all been
    /// sent (until DRAIN).
    package var repeatPayloads: Bool
    /// Sample the first and every `sampleRate`-th packet's latency (0 in the script means 100).
    package var sampleRate: Int
    /// Event loops to run: SHARDS, or the CPU count capped at the session count.
    package var shardCount: Int
    /// (ext) where the body length sits in the header.
    package var headerLength: HeaderLength?
    /// (ext) `HANDLER_MEMORY`: the most linear memory one handler instance may grow to, in bytes.
    package var handlerMemory: Int = SizeLiteral.defaultHandlerMemory
    /// (ext) `RESPONSE`: how replies are matched to requests (nil: no response tracking).
    package var response: ResponseMatch? = nil
    /// (ext) `TIMEOUT`: a request without its reply after this long is a timeout.
    package var responseTimeout: Nanoseconds = 5_000_000_000
    /// (ext) `SEQUENCE`: where inbound messages carry their sequence number (nil: no analysis).
    package var sequence: HeaderLength? = nil
    /// (ext) `SOURCES`, expanded: session `s` binds `sources[s % count]` (empty: the kernel picks).
    package var sources: [String] = []
    /// (ext) `CONNECT_WINDOW`: connects in flight per shard, at most.
    package var connectWindow = 1024
    /// (ext) `SESSION = "TLS"`: the TLS block (defaults when the script has none); nil otherwise.
    package var tls: TLSSettings? = nil
}

/// (ext) `RESPONSE = off:size "endian"` or `RESPONSE = "in-order"`.
package enum ResponseMatch: Sendable, Equatable {
    /// The reply carries the request's COUNTER value at these bytes of the frame (header
    /// included).
    case field(HeaderLength)
    /// Each reply answers the oldest unanswered request of its session.
    case inOrder
}

/// (ext) A PACE action's schedule for each session of its range: `rate` payloads per
/// second, ramping linearly to `target` over `ramp` nanoseconds when given.
package struct PaceSpec: Sendable, Equatable {
    package var rate: Double
    package var target: Double?
    package var ramp: Nanoseconds

    package init(rate: Double, target: Double? = nil, ramp: Nanoseconds = 0) {
        self.rate = rate
        self.target = target
        self.ramp = ramp
    }

    /// The per-session rate `t` nanoseconds into the phase.
    package func rate(at t: Nanoseconds) -> Double {
        guard let target, ramp > 0 else { return rate }
        if t >= ramp { return target }
        return rate + (target - rate) * Double(max(0, t)) / Double(ramp)
    }

    /// Payloads one session is scheduled to send in the first `t` nanoseconds of the phase
    /// (the integral of the rate).
    package func payloads(in t: Nanoseconds) -> Double {
        let seconds = Double(max(0, t)) / 1e9
        guard let target, ramp > 0 else { return rate * seconds }
        let r = Double(ramp) / 1e9
        if seconds <= r { return rate * seconds + (target - rate) * seconds * seconds / (2 * r) }
        return (rate + target) / 2 * r + target * (seconds - r)
    }

    /// How late a payload of this phase may go out before it counts as behind schedule, and
    /// the lag p99 above which the generator is saturated: the larger of 1 ms and a tenth of
    /// the fastest period of the phase.
    package var lagTolerance: Nanoseconds {
        let fastest = max(rate, target ?? 0)
        return max(1_000_000, fastest > 0 ? Nanoseconds(1e8 / fastest) : 0)
    }

    /// `50/s`, `10/s → 200/s over 1m`.
    package var description: String {
        var s = "\(PaceSpec.format(rate))/s"
        if let target { s += " → \(PaceSpec.format(target))/s over \(DurationLiteral.format(ramp))" }
        return s
    }

    /// A rate without needless decimals: `50`, `0.5`, `0.0167`.
    package static func format(_ r: Double) -> String {
        if r == r.rounded(), abs(r) < 1e15 { return String(Int64(r)) }
        var s = String(format: r >= 1 ? "%.3f" : "%.4g", r)
        if s.contains("."), !s.contains("e") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }
}

/// `HEADER_LENGTH = offset:size "big"|"little"`.
package struct HeaderLength: Sendable, Equatable {
    /// The first byte of the length within the header.
    package var offset: Int
    /// The length's size in bytes, 1 to 8.
    package var size: Int
    /// Whether the length is big-endian (else little-endian).
    package var bigEndian: Bool

    /// A length field of `size` bytes at `offset` in the header.
    package init(offset: Int, size: Int, bigEndian: Bool) {
        self.offset = offset
        self.size = size
        self.bigEndian = bigEndian
    }

    /// Reads the unsigned body length from a header.
    /// `header` must hold at least `offset + size` bytes.
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
    /// Its numeric addresses with ``Settings/port``: IPv4 first, no duplicates.
    package var addresses: [ResolvedAddress]
}

/// A numeric address and port, ready for a socket.
package struct ResolvedAddress: Sendable, Hashable, CustomStringConvertible {
    /// The numeric address: dotted IPv4 or IPv6 text, without brackets.
    package var ip: String
    package var port: Int
    /// An IPv6 address: its text holds a ':'.
    package var isIPv6: Bool { ip.contains(":") }
    /// `127.0.0.1:7000`, or `[::1]:7000` for IPv6.
    package var description: String { isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    package init(ip: String, port: Int) {
        self.ip = ip
        self.port = port
    }
}

/// A packet file, read once at plan time.
package struct Packet: Sendable {
    /// The id SENDs name it by.
    package var id: String
    /// The path as written in the script.
    package var path: String
    /// The path after resolving against the script's directory, `~/` and environment.
    package var resolvedPath: String
    /// The whole file, at least one byte.
    package var bytes: [UInt8]
}

/// The byte order of a patched integer, spelled as in the script.
package enum ByteOrder: String, Sendable {
    case big
    case little
}

/// COUNTER: bytes `[offset, offset+length)` carry `n·step` for the n-th copy sent.
package struct CounterPatch: Sendable, Equatable {
    /// The first patched byte in the packet.
    package var offset: Int
    /// Bytes patched, 1 to 8: the value's low bytes are written.
    package var length: Int
    package var order: ByteOrder
    /// The increment between copies, at least 1.
    package var step: UInt64
}

/// The unit of a TIMESTAMP, spelled as in the script.
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
    /// The first patched byte in the packet.
    package var offset: Int
    /// Bytes patched, 1 to 8: the time's low bytes are written.
    package var length: Int
    package var order: ByteOrder
    /// What the written time counts: seconds, milliseconds, microseconds or nanoseconds.
    package var unit: TimeUnit
}

/// A SEND action: `copies` payloads of `packet` for each session in range.
package struct SendSpec: Sendable {
    /// Index into ``Plan/packets``.
    package var packet: Int
    /// The sessions given these payloads, end excluded.
    package var sessions: Range<Int>
    /// Payloads per session, at least 1.
    package var copies: Int
    package var counter: CounterPatch?
    package var timestamp: TimestampPatch?
    /// The SEND's line in the script.
    package var line: Int
}

/// One action of the timeline, checked, with its absolute start time.
package struct PlannedAction: Sendable {
    /// What the action does.
    package enum Kind: Sendable, Equatable {
        /// CREATE and its session count; sessions exist from the start, so it only marks the
        /// timeline.
        case create(Int)
        /// CONNECT: each session in the range starts connecting (as connect slots allow).
        case connect
        /// Index into `Plan.sends`.
        case send(Int)
        /// FLOOD: each session's whole payload list is released (again and again with REPEAT).
        case flood
        /// (ext) Sends the list on a schedule from here on (`PACE a:b 50/s`).
        case pace(PaceSpec)
        /// (ext) Each session closes and reconnects every `period` from here on (`CHURN a:b
        /// EVERY 1s`), spread over the first period, until DRAIN or DISCONNECT.
        case churn(period: Nanoseconds)
        /// DRAIN: each session sends what is released (with FLOOD, to the end of its current
        /// pass), then closes.
        case drain
        /// `skipped`: sessions in the range that were never connected (skipped, as in the
        /// original).
        /// (ext) `reset`: `DISCONNECT a:b "reset"` closes with RST instead of FIN.
        case disconnect(skipped: Int, reset: Bool = false)

        /// The keyword as scripts spell it.
        package var name: String {
            switch self {
            case .create: "CREATE"
            case .connect: "CONNECT"
            case .send: "SEND"
            case .flood: "FLOOD"
            case .pace: "PACE"
            case .churn: "CHURN"
            case .drain: "DRAIN"
            case .disconnect: "DISCONNECT"
            }
        }
    }

    package var kind: Kind
    /// The sessions it applies to, end excluded (`0..<n` for CREATE).
    package var sessions: Range<Int>
    /// Absolute start time from the beginning of the run.
    package var at: Nanoseconds
    /// The offset from the previous action (as written or the 250ms default).
    package var offset: Nanoseconds
    /// The action's line in the script.
    package var line: Int
    /// The action's keyword in the script: where problems found after checking (the
    /// preflight's) point.
    package var keywordRange: SourceRange? = nil
}

/// The message handler the plan uses.
package enum HandlerSpec: Sendable {
    /// `HANDLER = "NOP"`, the default: frames are read and dropped.
    case nop
    /// A WebAssembly module, read at plan time.
    case wasm(WasmHandlerSpec)

    package var isNOP: Bool {
        if case .nop = self { return true }
        return false
    }
}

/// A HANDLER module: its bytes and what the plan-time inspection found.
package struct WasmHandlerSpec: Sendable {
    /// As written in the script.
    package var path: String
    /// The path the bytes were read from.
    package var resolvedPath: String
    /// The module, read at plan time.
    package var bytes: [UInt8]
    /// What the inspector found (empty when no inspector ran).
    package var exports: [String]
    /// Whether it can read headers, `handle_header` or (fast path) `body_length`, with the
    /// contract's type (false when no inspector ran).
    package var hasHandleHeader: Bool
    /// The module's memory when instantiated (nil when no inspector ran).
    package var initialMemoryBytes: Int? = nil
    /// (ext) Whether it takes the fast path (false when no inspector ran).
    package var fastPath = false
    /// The inspection found problems (each an error at the HANDLER path): what else the
    /// plan would say of the module follows from them and is not said.
    package var refused = false
}

extension WasmHandlerSpec {
    /// Which calls a message goes through, for `--dry-run` (`headerLength`: the module reads
    /// no headers — HEADER_LENGTH finds the length, or UDP needs none).
    func pathDescription(headerLength: Bool) -> String {
        Self.describePath(fast: fastPath, header: hasHandleHeader && !headerLength ? headerFunction : nil)
    }

    /// The export that reads headers: `body_length` on the fast path when exported, else
    /// `handle_header` (a fast-path module may read headers the original way).
    package static func headerFunction(fast: Bool, exports: [String]) -> String {
        fast && exports.contains("body_length") ? "body_length" : "handle_header"
    }

    /// This module's export that reads headers (``headerFunction(fast:exports:)``).
    package var headerFunction: String { Self.headerFunction(fast: fastPath, exports: exports) }

    /// `fast` (scratch + handle_message) or `original` (alloc/handle_body/dealloc), with the
    /// guest calls each costs per message.
    /// With `header`, the export that finds each body's length, its cost too: `body_length`
    /// is one call, `handle_header` three (with alloc and dealloc).
    package static func describePath(fast: Bool, header: String?) -> String {
        let cost = header.map { ", \($0) \($0 == "body_length" ? 1 : 3) more per frame" } ?? ""
        return fast
            ? "fast (scratch buffer + handle_message: 1 guest call per message\(cost))"
            : "original (alloc, handle_body, dealloc ×2: 4 guest calls per message\(cost))"
    }
}
