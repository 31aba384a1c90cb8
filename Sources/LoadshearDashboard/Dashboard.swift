import LoadshearMetrics

/// Renders the live dashboard from a snapshot: a pure function of its inputs, so frames can
/// be compared as text in tests. The terminal handling lives with the command.
package struct Dashboard: Sendable {
    package enum Mode: Sendable {
        /// Totals since the start of the run.
        case totals
        /// What happened in the last 500 ms interval (rates per second).
        case increments
    }

    /// Where the run is on its timeline.
    package struct Progress: Sendable {
        /// Seconds since the timeline started.
        package var elapsed: Double
        /// The last action's start time, in seconds.
        package var planned: Double
        /// The last action that has started, such as `SEND 0:50 (line 12)`, or `starting`.
        package var action: String
        /// (ext) All sessions' intended paced rate now (nil: the plan has no PACE).
        package var intendedRate: Double?

        package init(elapsed: Double, planned: Double, action: String, intendedRate: Double? = nil) {
            self.elapsed = elapsed
            self.planned = planned
            self.action = action
            self.intendedRate = intendedRate
        }
    }

    /// Columns the panels are laid out for, at least 40.
    package var width: Int
    /// The terminal's columns: every line is cut to them (a narrower terminal would wrap
    /// each line and scroll the header away).
    package var columns: Int
    /// Whether to style text with ANSI escapes.
    package var color: Bool
    /// Shown after the name on the first line: the script path.
    package var title: String

    /// A dashboard for a terminal `width` columns wide (laid out for 40 if narrower).
    package init(width: Int, color: Bool, title: String) {
        self.width = max(40, width)
        self.columns = max(1, width)
        self.color = color
        self.title = title
    }

    /// `s` in bold, when colors are on.
    private func bold(_ s: String) -> String { color ? "\u{1B}[1m\(s)\u{1B}[0m" : s }
    /// `s` dimmed, when colors are on.
    private func dim(_ s: String) -> String { color ? "\u{1B}[2m\(s)\u{1B}[0m" : s }
    /// `s` in cyan, when colors are on: bars.
    private func accent(_ s: String) -> String { color ? "\u{1B}[36m\(s)\u{1B}[0m" : s }

    /// The frame for a terminal of `width` × `height`: never more than `height` lines, so the
    /// header, the progress bar and the keys stay on screen. The fixed panels come first;
    /// each latency kind gets its percentiles, and the power-of-two bins go to the kinds with
    /// samples as far as the rows allow (read, then send, then connect), so a bigger
    /// terminal shows more.
    package func render(_ s: Snapshot, progress: Progress, mode: Mode, height: Int = Int.max) -> [String] {
        var lines: [String] = []
        let modeName = mode == .totals ? "totals" : "last 500 ms"
        lines.append(bold("loadshear") + " " + title + "  " + dim("[\(modeName)]  ←/→ totals/increments  q stop"))
        lines.append(progressBar(progress))
        lines.append("")
        let t = s.totals
        let inc = s.increment
        func rate(_ c: ShardCounters.Counter) -> Double { Double(inc[c]) / s.interval }
        lines.append(bold("Throughput"))
        if mode == .totals {
            lines.append(
                "  sent      \(Figures.bytes(Double(t[.bytesSent]))) · \(Figures.count(Double(t[.packetsSent]))) packets"
            )
            lines.append(
                "  read      \(Figures.bytes(Double(t[.bytesRead]))) · \(Figures.count(Double(t[.framesRead]))) frames")
            lines.append(
                "  responses \(Figures.count(Double(t[.responsesSent])))   handler calls \(Figures.count(Double(t[.handlerCalls]))) (\(t[.handlerTraps]) traps)"
            )
        } else {
            lines.append(
                "  sent      \(Figures.bytes(rate(.bytesSent)))/s · \(Figures.count(rate(.packetsSent))) packets/s")
            lines.append(
                "  read      \(Figures.bytes(rate(.bytesRead)))/s · \(Figures.count(rate(.framesRead))) frames/s")
            lines.append(
                "  responses \(Figures.count(rate(.responsesSent)))/s   handler calls \(Figures.count(rate(.handlerCalls)))/s"
            )
        }
        if t[.requests] > 0 || t[.unmatched] > 0 {
            // (ext) RESPONSE: the server's side first.
            // In the increments view, requests and answers are both rates; the rest are counts.
            let (requests, answered) =
                mode == .totals
                ? (Figures.count(Double(t[.requests])), Figures.count(Double(t[.replies])))
                : (Figures.count(rate(.requests)) + "/s", Figures.count(rate(.replies)) + "/s")
            lines.insert(
                "  requests \(requests)   answered \(answered)   timeouts \(t[.timeouts])   outstanding \(t[.outstanding])   unmatched \(t[.unmatched])",
                at: lines.count - 3)
        }
        if t[.sequenced] > 0 {
            // (ext) SEQUENCE: the stream's health, then the worst session.
            lines.insert(
                "  sequence  lost \(t[.sequenceLost])   reordered \(t[.sequenceReordered])   duplicates \(t[.sequenceDuplicates])   worst session lost (at close) \(s.totals[.sequenceWorstLost]) · jitter \(Figures.micros(UInt64(max(0, s.totals[.sequenceWorstJitterNanoseconds]) / 1000)))",
                at: lines.count - 3)
        }
        if let intended = progress.intendedRate {
            lines.insert(
                "  paced     \(Figures.count(rate(.pacedPayloads)))/s of \(Figures.count(intended))/s intended   behind \(t[.pacedBehind])",
                at: lines.count - 3)
        }
        lines.append(bold("Connections"))
        lines.append(
            "  active \(t[.connectionsActive])\(s.totals[.peakOpenSessions] > 0 ? " (peak \(s.totals[.peakOpenSessions]))" : "")   attempted \(t[.connectionsAttempted])   connected \(t[.connectionsSucceeded])   failed \(t[.connectionsFailed])"
                + (s.totals[.reconnects] > 0 ? "   reconnects \(t[.reconnects])" : "")
        )
        lines.append(
            "  closed: by us \(t[.closedByUs])\(t[.resetsSent] > 0 ? " (RST \(t[.resetsSent]))" : "")   by server \(t[.closedByPeer])   resets \(t[.resets])   errors \(t[.localErrors])   protocol \(t[.protocolErrors])"
        )
        let latency = mode == .totals ? s.latency : s.latencyIncrement
        // Each kind: a blank line, its title and its percentiles (3 rows) at least.
        // Response time first when replies are matched; lag when payloads are paced.
        var kinds: [LatencySet.Kind] = []
        if t[.requests] > 0 || s.latency.response.totalCount > 0 { kinds.append(.response) }
        kinds += [.connect, .send, .read]
        if t[.pacedPayloads] > 0 { kinds.append(.lag) }
        if t[.sequenced] > 0 { kinds.append(.jitter) }
        var spare = max(0, height - lines.count - 3 * kinds.count)
        var showBins = Set<LatencySet.Kind>()
        for kind in [LatencySet.Kind.response, .read, .send, .connect] where kinds.contains(kind) {
            let rows = LatencySummary.binRows(latency[kind: kind])
            if rows > 0, rows <= spare {
                showBins.insert(kind)
                spare -= rows
            }
        }
        for kind in kinds {
            guard lines.count + 3 <= height else { break }
            lines.append("")
            lines += histogram(kind, latency[kind: kind], bins: showBins.contains(kind))
        }
        return Array(lines.prefix(height)).map(clip)
    }

    /// `[████······] 1.5s / 3.0s  SEND 0:50 (line 12)`: the filled share is the elapsed share
    /// of the planned time; the bar is 10 to 50 cells wide.
    private func progressBar(_ p: Progress) -> String {
        let fraction = p.planned > 0 ? min(1, max(0, p.elapsed / p.planned)) : 1
        let label = " \(Figures.fixed(p.elapsed, 1))s / \(Figures.fixed(p.planned, 1))s  \(p.action)"
        let barWidth = max(10, min(50, width - label.count - 2))
        let filled = Int((Double(barWidth) * fraction).rounded())
        return "[" + accent(String(repeating: "█", count: filled)) + String(repeating: "·", count: barWidth - filled)
            + "]" + label
    }

    /// One latency histogram: its title and percentiles, then (with `bins`) the original's
    /// power-of-two view.
    func histogram(_ kind: LatencySet.Kind, _ h: LatencyHistogram, bins: Bool = true) -> [String] {
        let count = h.totalCount
        let name: String =
            switch kind {
            case .response: "Response time"
            case .lag: "Lag (generator)"
            case .jitter: "Jitter (sequence)"
            case .handshake: "TLS handshake latency"
            default: "\(kind.rawValue.capitalized) latency"
            }
        let head = bold(name) + dim("  \(count) samples")
        guard count > 0 else { return [head, dim("  no samples yet")] }
        let view = LatencySummary.view(h, width: width, bar: accent)
        return [head] + (bins ? view : Array(view.prefix(1)))
    }

    /// `s` padded with spaces to `w` characters: on the right, or with `right` on the left.
    private func pad(_ s: String, _ w: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, w - s.count))
        return right ? fill + s : s + fill
    }

    /// Cuts a line to the terminal width (counting visible characters only).
    private func clip(_ line: String) -> String {
        var visible = 0
        var out = ""
        var inEscape = false
        for ch in line {
            if ch == "\u{1B}" { inEscape = true }
            if inEscape {
                out.append(ch)
                if ch == "m" { inEscape = false }
                continue
            }
            if visible >= columns { continue }
            out.append(ch)
            visible += 1
        }
        return out
    }
}
