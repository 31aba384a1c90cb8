import Histogram

/// The end-of-run summary for people: exact totals and average rates.
package struct Summary: Sendable {
    /// The run's final snapshot.
    package var snapshot: Snapshot
    /// Shards the run used.
    package var shardCount: Int
    /// Sessions in the plan.
    package var sessions: Int
    /// (ext) SOURCES: each local address with the sessions of this run bound to it.
    package var sources: [(address: String, sessions: Int)] = []
    /// (ext) TLS sessions: what the first handshake negotiated ("TLS 1.3, ALPN h2").
    package var tls: String?

    package init(snapshot: Snapshot, shardCount: Int, sessions: Int) {
        self.snapshot = snapshot
        self.shardCount = shardCount
        self.sessions = sessions
    }

    /// The summary as lines, each ending in a newline: duration, sent, read, responses,
    /// connections and closes, with rates averaged over the whole run; then lines that appear
    /// only when they have something to say (unconfirmed bytes, half-closes, backpressure,
    /// handler calls and failures…), each latency kind with samples, and the peak RSS. The
    /// title says when the run was stopped early.
    package func text() -> String {
        let t = snapshot.totals
        let secs = max(snapshot.elapsed, 1e-9)
        func rate(_ v: Int) -> String { Figures.count(Double(v) / secs) + "/s" }
        func byteRate(_ v: Int) -> String { Figures.bytes(Double(v) / secs) + "/s" }
        var out = "Summary\n"
        if let by = snapshot.stoppedEarlyBy {
            let planned = snapshot.plannedDuration.map { " of \(Figures.fixed($0, 3)) s planned" } ?? ""
            out = "Summary (incomplete: stopped by \(by) after \(Figures.fixed(secs, 3)) s\(planned))\n"
        }
        out +=
            "  duration      \(Figures.fixed(secs, 3)) s, \(sessions) sessions on \(shardCount) shard\(shardCount == 1 ? "" : "s")\n"
        out +=
            "  sent          \(t[.bytesSent]) bytes (\(byteRate(t[.bytesSent]))), \(t[.packetsSent]) packets (\(rate(t[.packetsSent])))\n"
        if t[.bytesUnconfirmed] > 0 {
            out +=
                "                + \(t[.bytesUnconfirmed]) bytes unconfirmed (in batches cut off mid-write, by the server or by our close of a TLS session: between none and all reached the kernel)\n"
        }
        out +=
            "  read          \(t[.bytesRead]) bytes (\(byteRate(t[.bytesRead]))), \(t[.framesRead]) frames (\(rate(t[.framesRead])))\n"
        if t[.udpReceiveDrops] > 0 {
            out +=
                "                \(t[.udpReceiveDrops]) datagrams dropped by this machine's kernel before Loadshear read them (receive queues full)\n"
        }
        if t[.oversizedDatagrams] > 0 {
            out += "                \(t[.oversizedDatagrams]) datagrams over BODYMAX dropped\n"
        }
        if t[.oversizedReplies] > 0 {
            out += "                \(t[.oversizedReplies]) handler replies too long for one datagram dropped\n"
        }
        if t[.datagramsTruncated] > 0 {
            out +=
                "                \(t[.datagramsTruncated]) datagrams filled the receive buffer and may have been cut short\n"
        }
        out += "  responses     \(t[.responsesSent]) sent\n"
        if t[.requests] > 0 || t[.unmatched] > 0 {
            let answered = t[.requests] > 0 ? Figures.fixed(Double(t[.replies]) / Double(t[.requests]) * 100, 2) : "0"
            let lost = t[.requests] > 0 ? Figures.fixed(Double(t[.timeouts]) / Double(t[.requests]) * 100, 2) : "0"
            out +=
                "  requests      \(t[.requests]) sent: \(t[.replies]) answered (\(answered)%), \(t[.timeouts]) timed out (loss \(lost)%), \(t[.outstanding]) outstanding at the end\(t[.requestsCutOff] > 0 ? ", \(t[.requestsCutOff]) cut off by CHURN" : "")\n"
            out +=
                "                \(t[.unmatched]) replies matched no request, \(t[.duplicates]) duplicates, \(t[.repliesReordered]) reordered (\(rate(t[.replies])) answered)\n"
        }
        if t[.sequenced] > 0 {
            out += Self.sequenceLines(t)
        }
        if t[.pacedPayloads] > 0 {
            out += "  paced         \(t[.pacedPayloads]) payloads on schedule (\(rate(t[.pacedPayloads])) over the run)"
            out += t[.pacedBehind] > 0 ? ", \(t[.pacedBehind]) behind schedule when pacing ended\n" : "\n"
        }
        var connections =
            "\(t[.connectionsAttempted]) attempted, \(t[.connectionsSucceeded]) connected, \(t[.connectionsFailed]) failed"
        if t[.connectionsCancelled] > 0 { connections += ", \(t[.connectionsCancelled]) cancelled while connecting" }
        if t[.peakOpenSessions] > 0 { connections += ", peak \(t[.peakOpenSessions]) open" }
        out += "  connections   \(connections)\n"
        if let tls {
            out += "  tls           \(tls) (the first handshake; swift-nio-ssl does not expose the cipher)\n"
        }
        if !sources.isEmpty {
            let shown = sources.prefix(8).map { "\($0.address) \($0.sessions)" }.joined(separator: ", ")
            let more = sources.count > 8 ? ", … (\(sources.count) addresses)" : ""
            out += "                sessions per source: \(shown)\(more)\n"
        }
        if !snapshot.connectFailuresByReason.isEmpty {
            out += "                failed: " + Self.list(snapshot.connectFailuresByReason) + "\n"
        }
        if let c = snapshot.connectPhase, t[.connectionsSucceeded] > 0 {
            out +=
                "  connect phase \(t[.connectionsSucceeded]) connected in \(Figures.fixed(c, 3)) s (\(Figures.count(Double(t[.connectionsSucceeded]) / max(c, 1e-6)))/s)\n"
        }
        out +=
            (t[.reconnects] + t[.churnSkipped] > 0
                ? "  churn         \(t[.reconnects]) reconnects\(t[.churnSkipped] > 0 ? ", \(t[.churnSkipped]) turns skipped (still connecting)" : "")\n"
                : "")
            + "  closes        \(t[.closedByUs]) by us\(t[.resetsSent] > 0 ? " (\(t[.resetsSent]) with RST)" : ""), \(t[.closedByPeer]) by the server, \(t[.resets]) reset by the server, \(t[.localErrors]) local errors, \(t[.protocolErrors]) protocol errors\n"
        if !snapshot.protocolErrorsByReason.isEmpty {
            out += "                protocol errors: " + Self.list(snapshot.protocolErrorsByReason) + "\n"
        }
        if t[.finsReceived] > 0 {
            out +=
                "  half-closes   the server sent FIN to \(t[.finsReceived]) sessions; they kept sending until they closed\n"
        }
        if t[.readPauses] > 0 {
            out += "  backpressure  reads paused \(t[.readPauses]) times while handler replies waited for the socket\n"
        }
        if t[.icmpErrors] > 0 {
            out += "  icmp errors   \(t[.icmpErrors]) (port unreachable on connected UDP sockets; counted, not fatal)\n"
        }
        if t[.handlerCalls] > 0 {
            out +=
                "  handler       \(t[.handlerCalls]) calls: \(t[.handlerReplies]) replies, \(t[.handlerEmpty]) empty, \(t[.handlerTraps]) traps, \(t[.handlerBadPointers]) bad pointers, \(t[.handlerAllocFailures]) alloc failures\n"
            for (kind, n) in snapshot.handlerFailuresByKind.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
                out += "    \(n) × \(kind)\n"
            }
        }
        if t[.handlerMemoryDenied] > 0 {
            out += "  handler memory \(t[.handlerMemoryDenied]) memory.grow requests refused at HANDLER_MEMORY\n"
        }
        if t[.handlerYields] > 0 {
            // (ext) The handler, not the server, set the pace of these reads (docs/handlers.md).
            out +=
                "  handler turns \(t[.handlerYields]) reads left frames for a later turn (over 2 ms of handler time each)\n"
        }
        for kind in LatencySet.Kind.allCases {
            let h = snapshot.latency[kind: kind]
            guard h.totalCount > 0 else { continue }
            out += "  \(Self.title(kind)) (\(h.totalCount) samples)\n"
            out += LatencySummary.view(h, width: 72, indent: "    ").joined(separator: "\n") + "\n"
        }
        if let rss = snapshot.peakRSS {
            out += "  memory        peak RSS \(Figures.bytes(Double(rss)))\n"
        }
        return out
    }

    /// (ext) SEQUENCE loss in %, as the summary and the HTML report give it: lost /
    /// (sequenced − duplicates + lost), to 3 decimals.
    package static func sequenceLossPercent(lost: Int, sequenced: Int, duplicates: Int) -> String {
        let expected = sequenced &- duplicates &+ lost
        return expected > 0 ? Figures.fixed(Double(lost) / Double(expected) * 100, 3) : "0"
    }

    /// (ext) SEQUENCE: totals over the sessions, then the worst session's figures.
    static func sequenceLines(_ t: CounterValues) -> String {
        let lost = sequenceLossPercent(
            lost: t[.sequenceLost], sequenced: t[.sequenced], duplicates: t[.sequenceDuplicates])
        let jitter = Figures.micros(UInt64(max(0, t[.sequenceWorstJitterNanoseconds]) / 1000))
        return
            "  sequence      \(t[.sequenced]) numbered messages: \(t[.sequenceLost]) lost (\(lost)%), \(t[.sequenceReordered]) reordered, \(t[.sequenceDuplicates]) duplicates\n"
            + "                worst session: \(t[.sequenceWorstLost]) lost, \(t[.sequenceWorstReordered]) reordered, \(t[.sequenceWorstDuplicates]) duplicates, jitter \(jitter)\n"
    }

    /// How each latency kind is introduced.
    static func title(_ kind: LatencySet.Kind) -> String {
        switch kind {
        case .response: "response time (reply − intended send, every request)"
        case .lag: "lag (actual − intended time of actions and paced payloads)"
        case .jitter: "jitter (RFC 3550 inter-arrival jitter of sequenced messages, per session)"
        case .handshake: "TLS handshake latency (TCP connected → handshake done)"
        default: "\(kind.rawValue) latency"
        }
    }

    /// `connection refused ×10, timed out ×2`, most first.
    static func list(_ counts: [String: Int]) -> String {
        counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) ×\($0.value)" }.joined(
            separator: ", ")
    }

    /// Why a run in which no session connected failed, or nil when some did (or none tried).
    /// Connects cancelled while under way (a DISCONNECT or the end came first: a server
    /// that never completes a TLS handshake, say) count as not connected too.
    package static func nothingConnected(_ s: Snapshot) -> String? {
        let t = s.totals
        let cancelled = t[.connectionsCancelled]
        guard t[.connectionsSucceeded] == 0, t[.connectionsFailed] + cancelled > 0 else { return nil }
        var reasons = s.connectFailuresByReason
        if cancelled > 0 { reasons["cancelled while connecting"] = cancelled }
        return "no session connected (\(list(reasons)))"
    }

    /// One line for non-TTY progress: elapsed, rates since `since` (the snapshot of the
    /// previous line; the start when nil), connections.
    /// With RESPONSE the line starts with the response time of `responses` (the samples
    /// since the last line); with PACE it gives the achieved against the `intendedRate`.
    package static func line(
        _ s: Snapshot, since: Snapshot? = nil, responses: Histogram<UInt64>? = nil,
        intendedRate: Double? = nil
    ) -> String {
        let t = s.totals
        let delta = t - (since?.totals ?? CounterValues())
        let secs = max(1e-9, s.elapsed - (since?.elapsed ?? 0))
        func rate(_ c: ShardCounters.Counter) -> Double { Double(delta[c]) / secs }
        var measured = ""
        if let h = responses {
            measured =
                h.totalCount > 0
                ? "response p50 \(Figures.micros(h.valueAtPercentile(50))) p99 \(Figures.micros(h.valueAtPercentile(99))), \(delta[.timeouts]) timeouts | "
                : "response -, \(delta[.timeouts]) timeouts | "
        }
        if let intended = intendedRate {
            measured += "paced \(Figures.count(rate(.pacedPayloads)))/s of \(Figures.count(intended))/s | "
        }
        return
            "[\(Figures.fixed(s.elapsed, 1))s] \(measured)sent \(Figures.bytes(rate(.bytesSent)))/s \(Figures.count(rate(.packetsSent))) pkt/s | read \(Figures.bytes(rate(.bytesRead)))/s \(Figures.count(rate(.framesRead))) frames/s | conn \(t[.connectionsActive]) active, \(t[.connectionsFailed]) failed"
    }
}
