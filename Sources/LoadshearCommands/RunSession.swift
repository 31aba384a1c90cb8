import ArgumentParser
import Dispatch
import Foundation
import LoadshearEngine
import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import NIOCore
import Synchronization

/// One real run of a plan from the command line: the responsible-use check, the engine,
/// progress lines, Ctrl-C, the summary and the JSON report.
struct RunSession {
    /// The checked plan to run.
    var plan: Plan
    /// `--acknowledge`: endpoints beyond loopback need no prompt.
    var acknowledge: Bool
    /// `--quiet`: no progress output, only warnings, errors and the summary.
    var quiet: Bool
    /// `--json`: where the final report goes, `-` for stdout.
    var json: String?
    /// `--no-tui`: plain lines even on a terminal.
    var noTUI: Bool
    /// `--json-interval`: where every snapshot goes as an NDJSON line, `-` for stdout.
    var jsonInterval: String? = nil
    /// (ext) `--start-at`: when the timeline starts (now when nil).
    var startAt: Date? = nil
    /// The engine's tuning; the commands leave it at its defaults.
    var configuration = EngineConfiguration()
    /// (ext) `--prometheus host:port`: serve `/metrics` during the run.
    var prometheus: String? = nil
    /// (ext) `--html <file>`: the final report as a self-contained page.
    var htmlPath: String? = nil

    /// The exit code, as the README and `--help` list them.
    func execute() async -> ExitCode {
        // A usage error first, before any prompt: two outputs in one place.
        let outputs = [("--json", json), ("--html", htmlPath), ("--json-interval", jsonInterval)]
            .compactMap { option, path in path.map { (option: option, path: $0) } }
        if let clash = ReportFile.clash(outputs) {
            Console.error("loadshear: error: \(clash)\n")
            return .usage
        }
        if let refusal = ResponsibleUse.check(plan: plan, acknowledged: acknowledge) {
            return refusal
        }
        // Report files first: a path that cannot be written is an error before any load. They
        // are emptied only when the run begins: a failure before leaves earlier reports as
        // they were.
        // Every file opened, whatever happens next: closed once the run began, else left as
        // it was (abandoned).
        var opened: [ReportFile] = []
        var began = false
        defer {
            for file in opened {
                if began { file.close() } else { file.abandon() }
            }
        }
        func open(_ path: String?, _ what: String) throws -> ReportFile? {
            guard let path else { return nil }
            let file = try ReportFile.open(path, what: what)
            opened.append(file)
            return file
        }
        let report: ReportFile?
        let stream: ReportFile?
        let html: ReportFile?
        do {
            report = try open(json, "the JSON report")
            html = try open(htmlPath, "the HTML report")
            stream = try open(jsonInterval, "the snapshot stream")
        } catch {
            Console.error("loadshear: error: \(error)\n")
            return .runtimeFailure
        }
        // (ext) The metrics endpoint listens before any load: a taken port is an error now.
        var started: PrometheusEndpoint?
        if let prometheus {
            guard let (host, port) = PrometheusEndpoint.parse(prometheus) else {
                Console.error("loadshear: error: --prometheus must be host:port or a port, got '\(prometheus)'\n")
                return .usage
            }
            do {
                started = try await PrometheusEndpoint(host: host, port: port, shards: plan.shards.count)
            } catch {
                // NIO's IOError names its syscall wrapper: the system's words are enough.
                let why = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
                Console.error("loadshear: error: cannot serve Prometheus metrics on \(host):\(port): \(why)\n")
                return .runtimeFailure
            }
            Console.error("loadshear: Prometheus metrics at http://\(started!.address)/metrics\n")
        }
        let metrics = started
        defer { if let metrics { Task { await metrics.stop() } } }
        let factory: any HandlerFactory
        do {
            factory = try WasmHandlerFactory.forPlan(plan) { Console.log("loadshear: \($0)\n") }
        } catch {
            Console.error("loadshear: cannot load the handler: \(error)\n")
            return .runtimeFailure
        }
        let engine = Engine(plan: plan, handlerFactory: factory, configuration: configuration) {
            Console.log("loadshear: \($0)\n")
        }
        let signals = StopSignals { signal, count in
            if count == 1 {
                Console.error(
                    "\nloadshear: stopping on \(StopSignals.name(signal)) (\(StopSignals.name(signal)) again to quit at once)\n"
                )
                engine.stop(reason: StopSignals.name(signal))
            } else {
                // At once: the terminal restored, then `_exit`, not `exit`. Its atexit handlers
                // and static destructors would run while the event loops still run, which can
                // crash the process on its way out (CI once saw the exit code lost that way).
                Terminal.leaveDashboard()
                Console.flushLogs()
                _exit(ExitCode.interrupted(by: signal).rawValue)
            }
        }
        defer { signals.cancel() }
        if !quiet {
            Console.error(
                "loadshear: running \(plan.scriptPath): \(plan.ownSessions.count) sessions on \(plan.shards.count) shard\(plan.shards.count == 1 ? "" : "s"), \(Self.seconds(plan.duration)) planned\n"
            )
        }
        let output = Output.make(
            plan: plan, quiet: quiet, noTUI: noTUI, engine: engine, stream: stream, deferTerminal: startAt != nil)
        // The 500 ms series for the report, coarsened past 1200 entries; ticks counted here.
        let intervals = Mutex<(series: [JSONReport.Interval], span: Int, ticks: Int)>(([], 1, 0))
        let final: Snapshot
        let startIn = startAt.map { max(0, $0.timeIntervalSinceNow) }
        if let startAt, -startAt.timeIntervalSinceNow > 0.1 {
            Console.error(
                "loadshear: warning: starting \(Figures.fixed(-startAt.timeIntervalSinceNow, 3)) s after --start-at \(StartTime.format(startAt)) (this process was late)\n"
            )
        }
        let countdown = startAt.map { Countdown(to: $0, quiet: quiet) }
        began = true
        for file in opened { file.begin() }
        do {
            final = try await engine.run(startIn: startIn.map { .nanoseconds(Int64($0 * 1e9)) }) { snapshot in
                intervals.withLock { i in
                    i.ticks = snapshot.tick ?? i.ticks + 1
                    JSONReport.Interval.append(
                        JSONReport.Interval(snapshot, tick: i.ticks), to: &i.series, span: &i.span)
                }
                output.show(snapshot)
                metrics?.update(snapshot)
            }
        } catch {
            countdown?.cancel()
            output.finish()
            Console.flushLogs()
            Console.error("loadshear: error: \(error)\n")
            return .runtimeFailure
        }
        countdown?.cancel()
        // When the timeline really started, from the engine's own clock; a run stopped while
        // it waited for --start-at never started: the instant it was to start stands (not the
        // stop, which would read as a start before the requested one, and skew a merge).
        let elapsed = engine.elapsed
        let startedAt = elapsed > 0 ? Date(timeIntervalSinceNow: -elapsed) : (startAt ?? Date())
        output.finish(final: final)
        Console.flushLogs()
        var summary = Summary(snapshot: final, shardCount: plan.shards.count, sessions: plan.ownSessions.count)
        summary.sources = plan.sessionsPerSource
        summary.tls = engine.tlsNegotiated
        // A segment's thresholds are checked by `loadshear merge` on all segments' reports:
        // one segment's rates and counts are only its share.
        let thresholds = plan.segment == nil ? ThresholdResult.evaluate(plan.expectations, on: final) : []
        let verdict = GeneratorVerdict(plan: plan, snapshot: final)
        // The summary goes to stdout; when stdout holds a report (`--json -`, `--html -`), to
        // stderr, so the report stays one document — except under --quiet, where the report is the summary
        // (a pod's log: `kubectl logs | loadshear merge -`).
        let stdoutTaken = opened.contains { $0.isStdout }
        if !stdoutTaken || !quiet {
            var deferred = ""
            if let seg = plan.segment, !plan.expectations.isEmpty {
                deferred =
                    "thresholds: segment \(seg.index)/\(seg.count) — EXPECT is checked by `loadshear merge` on all segments' reports\n"
            }
            let text = summary.text() + ThresholdResult.text(thresholds) + deferred + verdict.line + "\n"
            if stdoutTaken { Console.error(text) } else { Console.out(text) }
        }
        if report != nil || html != nil {
            do {
                var json = JSONReport(plan: plan, snapshot: final, thresholds: thresholds, generator: verdict)
                json.run = JSONReport.RunPart(plan: plan, startedAt: startedAt, requestedStart: startAt)
                json.settings.tls?.negotiated = engine.tlsNegotiated
                // The last stretch, from the last 500 ms snapshot to the end, is the final one.
                json.intervals = intervals.withLock { i in
                    JSONReport.Interval.append(
                        JSONReport.Interval(
                            final,
                            tick: max(i.ticks + 1, Int((final.elapsed / JSONReport.Interval.tickSeconds).rounded(.up)))),
                        to: &i.series, span: &i.span)
                    return i.series
                }
                if let report, try !json.write(to: report) {
                    Console.error("loadshear: error: could not write the JSON report to \(report.path)\n")
                    return .runtimeFailure
                }
                // (ext) --html: the same report as a page.
                if let html {
                    let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(json)) as? [String: Any]
                    let page = HTMLReport.render(
                        object ?? [:], script: try? String(contentsOfFile: plan.scriptPath, encoding: .utf8))
                    guard html.write(Data(page.utf8)) else {
                        Console.error("loadshear: error: could not write the HTML report to \(html.path)\n")
                        return .runtimeFailure
                    }
                }
            } catch {
                Console.error("loadshear: error: could not encode the JSON report: \(error)\n")
                return .runtimeFailure
            }
        }
        // A snapshot stream to a file that failed (a full disk) was not delivered: as for the
        // report. On stdout, only a reader that went away loses it, which is quiet by design.
        if let stream, !stream.isStdout, stream.hasFailed {
            Console.error("loadshear: error: could not write the snapshot stream to \(stream.path)\n")
            return .runtimeFailure
        }
        if let why = Summary.nothingConnected(final) {
            Console.error("loadshear: error: \(why)\n")
            return .runtimeFailure
        }
        if let by = final.stoppedEarlyBy, elapsed == 0 {
            // Stopped while waiting for --start-at: nothing was tested, which a script in CI
            // (or a Job's pod) must not read as success.
            Console.error("loadshear: error: stopped by \(by) before the timeline started: nothing ran\n")
            return .runtimeFailure
        }
        if ThresholdResult.reportFailures(thresholds) { return .thresholdFailed }
        return .success
    }

    /// `ns` as seconds with three decimals: `1.250 s`.
    static func seconds(_ ns: Nanoseconds) -> String {
        Figures.fixed(Double(ns) / 1e9, 3) + " s"
    }
}

/// (ext) `--start-at`: until the start, a line on stderr that counts down (rewritten in
/// place on a terminal, once otherwise); nothing under `--quiet`.
final class Countdown: Sendable {
    private let task: Task<Void, Never>?

    init(to start: Date, quiet: Bool) {
        guard !quiet else {
            task = nil
            return
        }
        let when = StartTime.format(start)
        let live = Console.stderrIsTTY && !Console.dumbTerminal  // a dumb terminal cannot rewrite a line
        task = Task {
            var first = true
            while !Task.isCancelled {
                let left = start.timeIntervalSinceNow
                if left <= 0 { break }
                if live || first {
                    let text = "loadshear: starting at \(when), in \(Int(left.rounded(.up))) s"
                    Console.error(live ? "\r\u{1B}[K" + text : text + "\n")
                }
                first = false
                try? await Task.sleep(for: .milliseconds(Int(min(1000, max(1, left * 1000)))))
            }
            if live { Console.error("\r\u{1B}[K") }
        }
    }

    func cancel() { task?.cancel() }
}
