import Foundation
import LoadshearTestSupport
import Testing

/// A script of `sessions` sessions connecting to `port` (a listener that holds them, or one
/// that refuses), disconnected after `duration`.
func connectScript(_ ws: Workspace, port: Int, sessions: Int = 2, duration: String = "1h") -> String {
    ws.script("""
        SETTINGS s {
            SESSION = "TCP"
            PORT = \(port)
            ENDPOINTS { 127.0.0.1 }
        }
        ORCHESTRATOR s {
            CREATE \(sessions) OFFSET 0ms
            CONNECT 0:\(sessions) OFFSET 1ms
            DISCONNECT 0:\(sessions) OFFSET \(duration)
        }
        """)
}

@Suite struct SignalTests {
    /// Ctrl-C, `timeout`, container runtimes and Kubernetes (SIGTERM), a closed terminal
    /// (SIGHUP): the first one stops gracefully, with the summary and the report.
    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func theFirstSignalStopsGracefullyWithTheSummaryAndTheReport(_ signal: Int32) async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = connectScript(ws, port: listener.port)
        let p = try LiveProcess([path, "--no-tui", "--json", ws.path("r.json")])
        // The per-second line shows the sessions are connected (the listener's backlog holds them).
        #expect(await p.stderr(contains: "conn 2 active"))
        kill(p.pid, signal)
        #expect(await p.exit() == 0)
        #expect(p.stdout.contains("Summary"))
        #expect(p.stdout.contains("2 attempted, 2 connected, 0 failed"))
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json")))) as? [String: Any]
        #expect((report?["totals"] as? [String: Int])?["closedByUs"] == 2)
    }

    @Test func secondCtrlCExits130AtOnce() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = ws.script("""
            SETTINGS s {
                SESSION = "TCP"
                PORT = \(listener.port)
                REPEAT = "true"
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR s {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 1ms
                SEND 0:2 p COPIES 1000 OFFSET 10ms
                FLOOD 0:2 OFFSET 0ms
                DRAIN 0:2 OFFSET 10ms
                DISCONNECT 0:2 OFFSET 1h
            }
            """, files: ["p.bin": [UInt8](repeating: 1, count: 65536)])
        let p = try LiveProcess([path, "--no-tui"])
        #expect(await p.stderr(contains: "loadshear: running"))
        kill(p.pid, SIGINT)
        // The draining sessions cannot finish their 64 MB pass (nobody reads), so the graceful
        // stop waits for them.
        #expect(await p.stderr(contains: "again to quit at once"))
        kill(p.pid, SIGINT)
        #expect(await p.exit() == 130)
        _ = listener
    }

    @Test func jsonIntervalWritesOneLinePerSnapshot() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = connectScript(ws, port: listener.port, sessions: 1, duration: "1200ms")
        let out = ws.path("snap.ndjson")
        ws.write("snap.ndjson", Array("an older run's line\n".utf8))
        let r = try await BinaryRunner.run([path, "--quiet", "--json-interval", out])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 2)
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o?["elapsedSeconds"] != nil && o?["totals"] != nil && o?["latencyMicroseconds"] != nil)
        }
    }
}
