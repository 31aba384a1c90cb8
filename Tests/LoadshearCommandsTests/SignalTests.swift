import Foundation
import LoadshearTestSupport
import Testing

/// A script of `sessions` sessions connecting to `port` (a listener that holds them, or one
/// that refuses), disconnected after `duration`.
func connectScript(_ ws: Workspace, port: Int, sessions: Int = 2, duration: String = "1h") -> String {
    ws.script(
        """
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
        #expect(await p.exit() == 0, "an interrupted run still exits 0")
        let name = [SIGINT: "Ctrl-C", SIGTERM: "SIGTERM", SIGHUP: "SIGHUP"][signal]!
        #expect(p.stdout.contains("Summary (incomplete: stopped by \(name) after"), "\(p.stdout)")
        #expect(p.stdout.contains("2 attempted, 2 connected, 0 failed"))
        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
            as? [String: Any]
        #expect((report?["totals"] as? [String: Int])?["closedByUs"] == 2)
        #expect(report?["completed"] as? Bool == false)
        #expect(report?["stoppedBy"] as? String == name)
        #expect(report?["plannedDurationSeconds"] as? Double == 3600.001)
    }

    @Test func secondCtrlCExits130AtOnce() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = ws.script(
            """
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
        // The draining sessions cannot finish their 64 MB pass (nobody reads), so the graceful
        // stop waits for them, for the drain grace (5 s). The second Ctrl-C goes out as soon as
        // the first one is acknowledged, from the thread that reads stderr: a test task sending
        // it could be held back past the grace on a loaded machine (CI saw that).
        p.signal(SIGINT, whenStderrContains: "again to quit at once")
        kill(p.pid, SIGINT)
        #expect(await p.stderr(contains: "again to quit at once"))
        let code = await p.exit()
        #expect(code == 130, "exit status \(String(describing: code)); stderr: \(p.stderrText.suffix(2000))")
        _ = listener
    }

    /// One line per snapshot and a closing one: the increments sum to the report's totals.
    @Test(arguments: ["1200ms", "100ms"])
    func jsonIntervalLinesSumToTheReport(_ duration: String) async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = connectScript(ws, port: listener.port, sessions: 3, duration: duration)
        let out = ws.path("snap.ndjson")
        ws.write("snap.ndjson", Array("an older run's line\n".utf8))
        let r = try await BinaryRunner.run([path, "--quiet", "--json-interval", out, "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        // At least one periodic line before the closing one in a 1.2 s run (snapshots stretch
        // on a loaded machine, so not necessarily two).
        #expect(lines.count >= (duration == "1200ms" ? 2 : 1))
        var sums: [String: Int] = [:]
        var finals = 0
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o?["elapsedSeconds"] != nil && o?["totals"] != nil && o?["latencyMicroseconds"] != nil)
            if o?["final"] as? Bool == true { finals += 1 }
            for (k, v) in (o?["increment"] as? [String: Int]) ?? [:] { sums[k, default: 0] += v }
        }
        #expect(finals == 1)
        #expect(lines.last.map { $0.contains("\"final\":true") } == true)
        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
            as? [String: Any]
        let totals = report?["totals"] as? [String: Int] ?? [:]
        #expect(!totals.isEmpty)
        for (k, v) in totals where k != "connectionsActive" {
            #expect(sums[k, default: 0] == v, "\(k): lines sum to \(sums[k, default: 0]), report \(v)")
        }
        #expect(report?["completed"] as? Bool == true)
    }

    /// `--json-interval -` keeps stdout pure NDJSON; the summary goes to stderr instead.
    @Test func jsonIntervalOnStdoutIsPureNDJSON() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = connectScript(ws, port: listener.port, sessions: 1, duration: "600ms")
        let r = try await BinaryRunner.run([path, "--no-tui", "--json-interval", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count >= 2)
        for l in lines { #expect((try? JSONSerialization.jsonObject(with: Data(l.utf8))) != nil, "not JSON: \(l)") }
        #expect(r.stderr.contains("generator:"), "the summary belongs on stderr: \(r.stderr)")
    }

    /// `--json -`: stdout is the report alone; the summary is on stderr, except under
    /// --quiet (a pod's log, which `loadshear merge -` reads: the report is the summary).
    @Test(arguments: [false, true]) func jsonReportOnStdoutMovesTheSummary(quiet: Bool) async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = connectScript(ws, port: listener.port, sessions: 1, duration: "300ms")
        let r = try await BinaryRunner.run([path, "--no-tui", "--json", "-"] + (quiet ? ["--quiet"] : []))
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) != nil, "not JSON: \(r.stdout)")
        #expect(r.stderr.contains("generator:") == !quiet, "\(r.stderr)")
        // The HTML page on stdout likewise: one document.
        let html = try await BinaryRunner.run([path, "--no-tui", "--html", "-"] + (quiet ? ["--quiet"] : []))
        #expect(html.status == 0 && html.stdout.hasPrefix("<?xml"), "\(html.stdout.prefix(200))")
        #expect(html.stderr.contains("generator:") == !quiet, "\(html.stderr)")
    }
}

extension SignalTests {
    /// Under a terminal the dashboard draws (alternate screen); with `TERM=dumb`, which cannot
    /// move the cursor, plain lines come instead, as with --no-tui.
    @Test func aDumbTerminalGetsPlainLines() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = connectScript(ws, port: listener.port, sessions: 1, duration: "1200ms")
        // Runs the binary on a pseudo-terminal (stdin, stdout, stderr) and prints what it wrote.
        let pty = ws.write(
            "on_a_terminal.py",
            Array(
                """
                import os, pty, subprocess, sys
                master, slave = pty.openpty()
                env = dict(os.environ, TERM=sys.argv[1])
                p = subprocess.Popen([os.environ["LOADSHEAR"], sys.argv[2], "--acknowledge"],
                                     stdin=slave, stdout=slave, stderr=slave, env=env)
                os.close(slave)
                out = b""
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
                p.wait()
                sys.stdout.write(out.decode("utf-8", "replace"))
                sys.exit(p.returncode)
                """.utf8))
        for (term, dashboard) in [("xterm", true), ("dumb", false)] {
            let r = try await BinaryRunner.shell("python3 '\(pty)' \(term) '\(path)'")
            #expect(r.status == 0, "loadshear's exit; its output: \(r.stdout.suffix(400))")
            #expect(r.stdout.contains("\u{1B}[?1049h") == dashboard, "TERM=\(term): \(r.stdout.prefix(400))")
            #expect(r.stdout.contains("generator:"), "TERM=\(term): the summary")
        }
        _ = listener
    }

    /// A run stopped while it waits for --start-at never started: its report's `startedAt`
    /// is the requested instant, not the moment of the stop (which would read as a start
    /// before the requested one and skew a merge), and the generator is not judged on it.
    @Test func aRunStoppedBeforeItsStartGivesTheRequestedStart() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = connectScript(ws, port: listener.port)
        let start = Int(Date().timeIntervalSince1970) + 120
        let p = try LiveProcess([path, "--no-tui", "--start-at", "\(start)", "--json", ws.path("r.json")])
        #expect(await p.stderr(contains: "loadshear: starting at"))
        kill(p.pid, SIGTERM)
        // Nothing was tested: not a success.
        #expect(await p.exit() == 1, "\(p.stderrText)")
        #expect(p.stderrText.contains("stopped by SIGTERM before the timeline started: nothing ran"))
        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
            as? [String: Any]
        let run = report?["run"] as? [String: Any]
        #expect(
            run?["startedAt"] as? String != nil && run?["startedAt"] as? String == run?["requestedStart"] as? String)
        #expect((report?["generator"] as? [String: Any])?["tooShortToJudge"] as? Bool == true)
        _ = listener
    }

    /// The once-a-second line covers the whole second, not only its last 500 ms: packets
    /// sent early in the first second show in the first line. The run lasts 3 s so that the
    /// second snapshot (≥ 1 s) comes well before the end even on a loaded machine.
    @Test func perSecondLinesCoverTheWholeSecond() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = ws.script(
            """
            SETTINGS s {
                SESSION = "TCP"
                PORT = \(listener.port)
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR s {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 1ms
                SEND 0:2 p COPIES 100 OFFSET 50ms
                DISCONNECT 0:2 OFFSET 3s
            }
            """, files: ["p.bin": [UInt8](repeating: 1, count: 100)])
        let r = try await BinaryRunner.run([path, "--no-tui"])
        #expect(r.status == 0, "\(r.stderr)")
        // The first per-second line, "[1.0 s] …" (on a loaded machine it may come a second
        // late: it must still cover its whole second, which holds every packet sent).
        let first = r.stderr.split(separator: "\n").first {
            $0.hasPrefix("[") && $0.dropFirst().first?.isNumber == true
        }
        #expect(first != nil && !first!.contains("sent 0 B/s"), "\(r.stderr)")
    }
}
