import Foundation
import LoadshearTestSupport
import Testing

/// The binary against broken stdio, bad files and short limits: a clear error and a
/// meaningful exit code, never a crash or a hang.
@Suite struct FaultTests {
    /// A script that runs briefly (its sessions held in a listener's backlog) and prints a
    /// summary on stdout.
    func shortRun(_ ws: Workspace, _ listener: StallingListener) -> String {
        connectScript(ws, port: listener.port, duration: "300ms")
    }

    /// `| head -1` and `| true`: the reader goes away; Loadshear ends normally, quietly.
    @Test(arguments: ["head -1 >/dev/null", "true"])
    func aClosedStdoutIsNotACrash(_ reader: String) async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = shortRun(ws, listener)
        // The dry run writes a lot to stdout; the run writes its summary there.
        for args in ["\"\(path)\" --dry-run", "\"\(path)\" --quiet"] {
            let r = try await BinaryRunner.shell("\"$LOADSHEAR\" \(args) | \(reader); echo \"status=${PIPESTATUS[0]}\"")
            #expect(r.status == 0)
            #expect(r.stdout.contains("status=0"), "\(args) | \(reader): \(r.stdout) \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Broken pipe"), "\(r.stderr)")
        }
    }

    /// The JSON report on a stdout nobody reads any more: said so, exit 1.
    @Test func aJSONReportToAClosedStdoutFailsClearly() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = shortRun(ws, listener)
        let r = try await BinaryRunner.shell(
            "\"$LOADSHEAR\" \"\(path)\" --quiet --json - | true; echo \"status=${PIPESTATUS[0]}\"")
        #expect(r.stdout.contains("status=1"), "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("could not write the JSON report"))
    }

    /// A report path that cannot be written is an error before any load, not after it.
    @Test(arguments: ["--json", "--json-interval"])
    func aBadReportPathFailsBeforeTheRun(_ flag: String) async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = shortRun(ws, listener)
        let r = try await BinaryRunner.run([path, "--no-tui", flag, "/nonexistent-dir/r.json"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot write"))
        #expect(r.stderr.contains("/nonexistent-dir/r.json: No such file or directory"))
        #expect(!r.stderr.contains("loadshear: running"), "nothing ran")
        #expect(r.stdout.isEmpty)
    }

    /// Too few file descriptors for the shards' event loops: a clear error and exit 1
    /// (not a fatal error inside NIO).
    @Test func tooFewDescriptorsForTheShardsIsAClearError() async throws {
        let ws = Workspace()
        let refusing = RefusingPort()
        let path = ws.script(
            """
            SETTINGS s {
                SESSION = "TCP"
                PORT = \(refusing.port)
                SHARDS = 400
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR s {
                CREATE 400 OFFSET 0ms
                CONNECT 0:400 OFFSET 1ms
            }
            """)
        let r = try await BinaryRunner.shell("ulimit -n 512 && \"$LOADSHEAR\" \"\(path)\" --no-tui")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("SHARDS = 400 needs 2016 file descriptors for its event loops alone"), "\(r.stderr)")
        #expect(r.stderr.contains("nothing was connected"))
    }

    /// A big packet is held in memory about twice (the plan's copy and one shared buffer),
    /// not once per shard plus copies made while reading it.
    @Test func aBigPacketIsNotCopiedPerShard() async throws {
        let size = 40 << 20
        try await withServer(.neverRead) { server in
            let ws = Workspace()
            let path = ws.script(
                """
                SETTINGS s {
                    SESSION = "TCP"
                    PORT = \(server.port)
                    SHARDS = 2
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR s {
                    CREATE 2 OFFSET 0ms
                    CONNECT 0:2 OFFSET 1ms
                    SEND 0:2 p COPIES 1 OFFSET 10ms
                    DISCONNECT 0:2 OFFSET 300ms
                }
                """, files: ["p.bin": [UInt8](repeating: 0x77, count: size)])
            let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
            #expect(r.status == 0, "\(r.stderr)")
            let report =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
                as? [String: Any]
            let rss = report?["peakRSSBytes"] as? Int ?? Int.max
            // Two copies of the packet plus the process itself (well under 100 MB here).
            #expect(rss < 2 * size + (100 << 20), "peak RSS \(rss >> 20) MiB for a \(size >> 20) MiB packet")
        }
    }
}

extension FaultTests {
    /// Started with stderr (or stdout) closed: the report still lands in its file, and
    /// nothing meant for the terminal ends up in it.
    @Test(arguments: ["2>&-", ">&-"])
    func aClosedStandardStreamDoesNotCaptureTheReport(_ redirect: String) async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = shortRun(ws, listener)
        let report = ws.path("r.json")
        let r = try await BinaryRunner.shell(
            "\"$LOADSHEAR\" \"\(path)\" --no-tui --json \"\(report)\" \(redirect); echo \"status=$?\"")
        #expect(r.stdout.contains("status=0") || redirect == ">&-", "\(r.stdout) \(r.stderr)")
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        #expect((json?["totals"] as? [String: Int])?["connectionsSucceeded"] == 2)
    }
}
