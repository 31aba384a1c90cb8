import Foundation
import Histogram
import LoadshearDashboard
import LoadshearEngine
import LoadshearMetrics
import LoadshearScript
import Synchronization

/// What the user sees while a run goes on: the live dashboard on a terminal, one plain line
/// per second otherwise (or with --no-tui), nothing with --quiet; plus the optional NDJSON
/// stream of every snapshot. Snapshots arrive on an event-loop thread every 500 ms.
final class Output: Sendable {
    /// Nothing (`--quiet`), plain lines, or the dashboard.
    private enum Kind {
        case silent, lines, dashboard
    }

    /// What is shown; chosen once by ``make(plan:quiet:noTUI:engine:stream:)``.
    private let kind: Kind
    private let plan: Plan
    /// The running engine: `q` stops it.
    private let engine: Engine
    /// Shared by the output queue and the key-reading thread.
    private let state = Mutex(State())
    /// The `--json-interval` stream, when asked for.
    private let ndjson: ReportFile?
    /// Snapshots arrive on the engine's control loop; encoding, rendering and terminal writes
    /// happen here instead, in order, so they never delay the snapshots.
    private let queue = DispatchQueue(label: "loadshear.output")
    /// (ext) The PACE phases, for the intended rate next to the achieved one.
    private let pacePhases: [Plan.PacePhase]

    private struct State {
        /// The latest snapshot: what the dashboard draws.
        var last: Snapshot?
        /// The snapshot the last plain line was printed from.
        var lastLine: Snapshot?
        /// Totals or increments; ←/→ switch it.
        var mode = Dashboard.Mode.totals
        /// Snapshots presented: a plain line goes out on every second one.
        var ticks = 0
        /// Response-time samples since the last plain line (RESPONSE only).
        var responses: Histogram<UInt64>?
        /// Set by ``finish(final:)``: nothing is drawn afterwards and the key reader ends.
        var finished = false
        /// The dashboard owns the terminal (from `make`, or from the first snapshot when the
        /// start is deferred so a `--start-at` countdown shows on the normal screen).
        var terminalStarted = false
    }

    private init(kind: Kind, plan: Plan, engine: Engine, ndjson: ReportFile?) {
        self.kind = kind
        self.plan = plan
        self.engine = engine
        self.ndjson = ndjson
        self.pacePhases = plan.pacePhases()
    }

    /// All sessions' intended paced rate at `elapsed` seconds (nil when the plan has no PACE).
    func intendedRate(elapsed: Double) -> Double? {
        guard !pacePhases.isEmpty else { return nil }
        let t = Nanoseconds(elapsed * 1e9)
        return pacePhases.reduce(0) { $0 + $1.aggregateRate(at: t) }
    }

    /// The output for a run: the dashboard only when stdin and stdout are terminals, `--no-tui`
    /// is off and the NDJSON stream does not go to stdout; it then takes over the terminal
    /// and starts reading keys.
    static func make(
        plan: Plan, quiet: Bool, noTUI: Bool, engine: Engine, stream: ReportFile?, deferTerminal: Bool = false
    ) -> Output {
        let kind: Kind =
            quiet
            ? .silent
            : (!noTUI && Console.stdoutIsTTY && Console.stdinIsTTY && stream?.isStdout != true && !Console.dumbTerminal)
                ? .dashboard : .lines
        let output = Output(kind: kind, plan: plan, engine: engine, ndjson: stream)
        if kind == .dashboard, !deferTerminal { output.takeTerminal() }
        return output
    }

    /// Called for every 500 ms snapshot (on the engine's control loop): hands it to the output queue.
    func show(_ s: Snapshot) {
        queue.async { self.present(s) }
    }

    /// On the output queue: the snapshot's NDJSON line, then a plain line (every second
    /// snapshot) or a dashboard frame.
    private func present(_ s: Snapshot) {
        if kind == .dashboard { takeTerminal() }
        if let ndjson, let line = try? JSONReport.snapshotLine(s, intendedRate: intendedRate(elapsed: s.elapsed)) {
            ndjson.write(line)
        }
        // Only the plain lines show the response time since the last line.
        let tracksResponses = kind == .lines && plan.settings.response != nil
        let tick = state.withLock { st -> Int in
            st.last = s
            st.ticks += 1
            if tracksResponses {
                if st.responses == nil { st.responses = LatencySet.empty() }
                st.responses!.add(s.latencyIncrement.response)
            }
            return st.ticks
        }
        switch kind {
        case .silent:
            break
        case .lines:
            // Once a second, over the whole second since the last line (both snapshots).
            if tick % 2 == 0 {
                let (since, responses) = state.withLock { st -> (Snapshot?, Histogram<UInt64>?) in
                    defer {
                        st.lastLine = s
                        st.responses = nil
                    }
                    return (st.lastLine, st.responses)
                }
                let line = Summary.line(
                    s, since: since, responses: responses, intendedRate: intendedRate(elapsed: s.elapsed))
                Console.error(line + "\n")
            }
        case .dashboard:
            draw()
        }
    }

    /// Where the run is on its timeline: the last action whose start time has passed.
    func progress(elapsed: Double) -> Dashboard.Progress {
        let ns = Int64(elapsed * 1e9)
        let current = plan.actions.last { $0.at <= ns }
        let text =
            current.map { "\($0.kind.name) \($0.sessions.lowerBound):\($0.sessions.upperBound) (line \($0.line))" }
            ?? "starting"
        return Dashboard.Progress(
            elapsed: elapsed, planned: Double(plan.duration) / 1e9, action: text,
            intendedRate: intendedRate(elapsed: elapsed))
    }

    /// Draws the latest snapshot as one frame over the whole screen; nothing once finished.
    private func draw() {
        let (snapshot, mode, finished) = state.withLock { ($0.last, $0.mode, $0.finished) }
        guard let snapshot, !finished else { return }
        let (width, height) = (Terminal.width(), Terminal.height())
        let color = Console.colorAllowed
        let dashboard = Dashboard(width: width, color: color, title: plan.scriptPath)
        let lines = dashboard.render(
            snapshot, progress: progress(elapsed: snapshot.elapsed), mode: mode, height: height)
        // Home, draw each line clearing its tail, clear below: no flicker, no scrolling (no
        // line break after the last row, which would scroll a full screen by one).
        var frame = "\u{1B}[H"
        frame += lines.map { $0 + "\u{1B}[K" }.joined(separator: "\n")
        frame += "\u{1B}[J"
        Console.out(frame)
    }

    // MARK: terminal

    /// Switches the terminal to the dashboard and starts the thread that reads keys.
    /// Starts the dashboard's terminal once (never after `finish`).
    private func takeTerminal() {
        let take = state.withLock { st -> Bool in
            guard !st.terminalStarted, !st.finished else { return false }
            st.terminalStarted = true
            return true
        }
        if take { startTerminal() }
    }

    private func startTerminal() {
        Terminal.enterDashboard()
        let thread = Thread { [self] in readKeys() }
        thread.start()
    }

    /// Keys: ←/→ switch totals and increments, q stops the run gracefully.
    private func readKeys() {
        var keys = KeyDecoder()
        while true {
            var byte: UInt8 = 0
            let n = read(0, &byte, 1)
            if n <= 0 {
                if state.withLock({ $0.finished }) { return }
                continue  // the read timed out (VTIME); look at `finished` again
            }
            if state.withLock({ $0.finished }) { return }
            switch keys.feed(byte) {
            case .switchMode:
                state.withLock { $0.mode = $0.mode == .totals ? .increments : .totals }
                queue.async { self.draw() }
            case .stop:
                engine.stop(reason: "q")
            case nil:
                break
            }
        }
    }

    /// Writes what is still queued, then the closing NDJSON line (the final snapshot, whose
    /// increment covers the rest of the run: the lines' increments sum to the report's
    /// totals, and a run under 500 ms gets one line), then restores the terminal; safe to
    /// call more than once.
    func finish(final: Snapshot? = nil) {
        queue.sync {}
        if let final, let ndjson,
            let line = try? JSONReport.snapshotLine(final, intendedRate: intendedRate(elapsed: final.elapsed))
        {
            ndjson.write(line)
        }
        let wasDashboard = state.withLock { st -> Bool in
            let first = !st.finished
            st.finished = true
            return first && st.terminalStarted
        }
        if wasDashboard { Terminal.leaveDashboard() }
    }
}
