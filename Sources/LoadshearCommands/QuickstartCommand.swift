import ArgumentParser
import Foundation
import LoadshearHandlers
import LoadshearScript
import LoadshearTargets

/// `loadshear quickstart`: a built-in target on a free loopback port and a bundled script
/// against it, end to end in a few seconds.
package struct QuickstartCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "quickstart",
        abstract: "Run a bundled example against a built-in loopback target."
    )

    @Flag(help: "Print only warnings, errors and the final summary.")
    var quiet = false

    @Flag(help: "Print the bundled script before running it.")
    var showScript = false

    package init() {}

    /// The bundled script; `@PORT@` becomes the target's port.
    static let script = """
        // Loadshear quickstart: 32 sessions against the built-in broadcast target on loopback.
        // The target sends each session 16 heartbeat pings, 20 a second (8-byte header: type 1
        // at bytes 0..3, body length at bytes 4..7, big-endian); the bundled WebAssembly
        // handler answers each with a pong — also on the sessions that flood meanwhile.
        SETTINGS quickstart {
            SESSION = "TCP"
            PORT = @PORT@
            SHARDS = 2
            REPEAT = "true"
            READ = "true"
            HEADERSIZE = 8
            BODYMAX = 4096
            HANDLER = "heartbeat.wasm"
            ENDPOINTS { 127.0.0.1 }
            PACKETS { hello : "hello.bin" }
        }

        ORCHESTRATOR quickstart {
            CREATE 32 OFFSET 0ms
            CONNECT 0:32 OFFSET 10ms
            SEND 0:32 hello COPIES 10 COUNTER 8:4 "big":1 TIMESTAMP 12:8 "big":"microseconds" OFFSET 200ms
            FLOOD 0:16 OFFSET 250ms        // a short flood from half the sessions
            DRAIN 0:32 OFFSET 1500ms       // finish the current pass, then close
            DISCONNECT 0:32 OFFSET 500ms
        }

        """

    /// Heartbeats per session and their rate: all sent well before the DRAIN, so every one
    /// can be answered and the summary's counts add up.
    static let heartbeats = 16
    static let heartbeatRate = 20

    /// A data frame (type 3) with a 24-byte body: counter at 8..11, timestamp at 12..19.
    static let packet: [UInt8] = [0, 0, 0, 3, 0, 0, 0, 24] + Array("ctr.timestamp...qs-hello".utf8)

    /// Starts the broadcast target, writes the script, the packet and the bundled module to a
    /// temporary directory (removed afterwards), runs the plan, then prints what the target saw.
    package func run() async throws {
        let target: TargetServer
        do {
            var options = TargetOptions(kind: .broadcast)
            options.rate = Self.heartbeatRate
            options.count = Self.heartbeats
            target = try await TargetServer.start(options)
        } catch {
            Console.error("loadshear quickstart: cannot start the built-in target: \(error)\n")
            throw ExitCode.runtimeFailure
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loadshear-quickstart-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let scriptPath = dir.appendingPathComponent("quickstart.ldsh").path
        let text = Self.script.replacingOccurrences(of: "@PORT@", with: String(target.port))
        try text.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        try Data(Self.packet).write(to: dir.appendingPathComponent("hello.bin"))
        try Data(BundledHeartbeat.wasm).write(to: dir.appendingPathComponent("heartbeat.wasm"))
        if showScript { Console.out(text + "\n") }
        if !quiet {
            Console.out(
                "Quickstart: built-in broadcast target (heartbeats) on 127.0.0.1:\(target.port); running the bundled script (see `loadshear quickstart --show-script`)\n"
            )
        }
        let plan: Plan
        do {
            var options = PlanOptions()
            options.inspectFiles()
            plan = try Planning.plan(scriptPath, options: options)
        } catch {
            await target.stop()
            throw error
        }
        let code = await RunSession(plan: plan, acknowledge: true, quiet: quiet, json: nil, noTUI: true).execute()
        await target.stop()
        let c = target.counts
        Console.out(
            "  target        \(c.bytesRead) bytes received over \(c.connections) connections; \(c.framesSent) heartbeats sent, \(c.pongsReceived) pongs received, \(c.framesReceived - c.pongsReceived) data frames received\n"
        )
        if code != .success { throw code }
    }
}
