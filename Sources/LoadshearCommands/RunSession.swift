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
        let factory: any HandlerFactory
        do {
            factory = try WasmHandlerFactory.forPlan(plan) { Console.error("loadshear: \($0)\n") }
        } catch {
            Console.error("loadshear: cannot load the handler: \(error)\n")
            return 1
        }
        let engine = Engine(plan: plan, handlerFactory: factory, configuration: configuration)
        let interrupts = Interrupts { count in
            if count == 1 {
                Console.error("\nloadshear: stopping (Ctrl-C again to quit at once)\n")
                engine.stop()
            } else {
                exit(130)
            }
        }
        defer { interrupts.cancel() }
        if !quiet {
            Console.error("loadshear: running \(plan.scriptPath): \(plan.sessionCount) sessions on \(plan.shards.count) shard\(plan.shards.count == 1 ? "" : "s"), \(Self.seconds(plan.duration)) planned\n")
        }
        let output = Output.make(plan: plan, quiet: quiet, noTUI: noTUI, engine: engine, jsonInterval: jsonInterval)
        let final: Snapshot
        do {
            final = try await engine.run { output.show($0) }
        } catch {
            output.finish()
            Console.error("loadshear: \(error)\n")
            return 1
        }
        output.finish()
        let summary = Summary(snapshot: final, shardCount: plan.shards.count, sessions: plan.sessionCount)
        if json != "-" { Console.out(summary.text()) }
        if let json {
            let report = JSONReport(plan: plan, snapshot: final)
            do {
                try report.write(to: json)
            } catch {
                Console.error("loadshear: cannot write the JSON report to \(json): \(error)\n")
                return 1
            }
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

/// SIGINT handling: the first Ctrl-C stops gracefully, the second exits 130 at once.
final class Interrupts: @unchecked Sendable {
    // @unchecked: `count` is only touched on the serial `queue`.
    private let source: DispatchSourceSignal
    private let queue = DispatchQueue(label: "loadshear.signals")
    private var count = 0

    init(_ onInterrupt: @escaping @Sendable (Int) -> Void) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: queue)
        source.setEventHandler { [unowned self] in
            count += 1
            onInterrupt(count)
        }
        source.resume()
    }

    func cancel() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
