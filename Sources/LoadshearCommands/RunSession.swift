import Dispatch
import Foundation
import LoadshearEngine
import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript

/// One real run of a plan from the command line: the responsible-use check, the engine,
/// progress lines, Ctrl-C, the summary and the JSON report.
struct RunSession {
    var plan: Plan
    var acknowledge: Bool
    var quiet: Bool
    var json: String?
    var noTUI: Bool
    var jsonInterval: String? = nil
    var configuration = EngineConfiguration()

    /// Exit code as `cli.md` lists them.
    func execute() async -> Int32 {
        if let refusal = ResponsibleUse.check(plan: plan, acknowledged: acknowledge) {
            return refusal
        }
        // Report files first: a path that cannot be written is an error before any load.
        let report: ReportFile?
        let stream: ReportFile?
        do {
            report = try json.map { try ReportFile.open($0, what: "the JSON report") }
            stream = try jsonInterval.map { try ReportFile.open($0, what: "the snapshot stream") }
        } catch {
            Console.error("loadshear: error: \(error)\n")
            return 1
        }
        defer {
            report?.close()
            stream?.close()
        }
        let factory: any HandlerFactory
        do {
            factory = try WasmHandlerFactory.forPlan(plan) { Console.log("loadshear: \($0)\n") }
        } catch {
            Console.error("loadshear: cannot load the handler: \(error)\n")
            return 1
        }
        let engine = Engine(plan: plan, handlerFactory: factory, configuration: configuration) {
            Console.log("loadshear: \($0)\n")
        }
        let signals = StopSignals { signal, count in
            if count == 1 {
                Console.error("\nloadshear: stopping on \(StopSignals.name(signal)) (\(StopSignals.name(signal)) again to quit at once)\n")
                engine.stop(reason: StopSignals.name(signal))
            } else {
                exit(128 + signal)
            }
        }
        defer { signals.cancel() }
        if !quiet {
            Console.error("loadshear: running \(plan.scriptPath): \(plan.sessionCount) sessions on \(plan.shards.count) shard\(plan.shards.count == 1 ? "" : "s"), \(Self.seconds(plan.duration)) planned\n")
        }
        let output = Output.make(plan: plan, quiet: quiet, noTUI: noTUI, engine: engine, stream: stream)
        let final: Snapshot
        do {
            final = try await engine.run { output.show($0) }
        } catch {
            output.finish()
            Console.flushLogs()
            Console.error("loadshear: error: \(error)\n")
            return 1
        }
        output.finish(final: final)
        Console.flushLogs()
        let summary = Summary(snapshot: final, shardCount: plan.shards.count, sessions: plan.sessionCount)
        if report?.isStdout != true && stream?.isStdout != true { Console.out(summary.text()) }
        if let report {
            do {
                guard try JSONReport(plan: plan, snapshot: final).write(to: report) else {
                    Console.error("loadshear: error: could not write the JSON report to \(report.path)\n")
                    return 1
                }
            } catch {
                Console.error("loadshear: error: could not encode the JSON report: \(error)\n")
                return 1
            }
        }
        if let why = Summary.nothingConnected(final) {
            Console.error("loadshear: error: \(why)\n")
            return 1
        }
        return 0
    }

    static func seconds(_ ns: Nanoseconds) -> String {
        Figures.fixed(Double(ns) / 1e9, 3) + " s"
    }
}

/// The responsible-use notice (`cli.md`): real endpoints need the user's confirmation.
enum ResponsibleUse {
    static func isLoopback(_ ip: String) -> Bool {
        ip.hasPrefix("127.") || ip == "::1" || ip == "0:0:0:0:0:0:0:1"
    }

    /// Nil when the run may go ahead; otherwise the exit code (3).
    static func check(plan: Plan, acknowledged: Bool) -> Int32? {
        let addresses = plan.addresses
        if acknowledged || addresses.allSatisfy({ isLoopback($0.ip) }) { return nil }
        var notice = "Loadshear is about to load these endpoints:\n"
        for e in plan.endpoints {
            notice += "  \(e.host) -> " + e.addresses.map(\.description).joined(separator: ", ") + "\n"
        }
        notice += "Only load systems you own or are authorised to test.\n"
        guard Console.stdinIsTTY else {
            Console.error(notice + "loadshear: refusing to run without confirmation: stdin is not a terminal; pass --acknowledge to confirm\n")
            return 3
        }
        Console.error(notice + "Type 'yes' to confirm you are authorised: ")
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
        if answer == "yes" || answer == "y" { return nil }
        Console.error("loadshear: not confirmed; nothing was run\n")
        return 3
    }
}

/// SIGINT, SIGTERM and SIGHUP: the first stops the run gracefully (summary and report
/// included) — Ctrl-C, `timeout`, container runtimes and Kubernetes all end a process with
/// one of these; a second one exits at once with 128 + the signal number.
final class StopSignals: @unchecked Sendable {
    // @unchecked: `count` is only touched on the serial `queue`.
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "loadshear.signals")
    private var count = 0

    init(_ onSignal: @escaping @Sendable (Int32, Int) -> Void) {
        for sig in Self.handled {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                count += 1
                onSignal(sig, count)
            }
            source.resume()
            sources.append(source)
        }
    }

    static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGINT: "Ctrl-C"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(sig)"
        }
    }

    func cancel() {
        for s in sources { s.cancel() }
        for sig in Self.handled { signal(sig, SIG_DFL) }
    }
}
