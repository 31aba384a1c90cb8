import Foundation
import LoadshearTestSupport
import Testing

/// (ext) `--prometheus`: an independent parser (PyPI `prometheus_client`) reads `/metrics`
/// during a run, until a counter has grown between two reads; a taken port is an error
/// before any load.
@Suite struct PrometheusTests {
    static func parserInstalled() async -> Bool {
        guard
            let r = try? await BinaryRunner.run(
                ["python3", "-c", "import prometheus_client"], executable: URL(fileURLWithPath: "/usr/bin/env"),
                timeout: 60)
        else { return false }
        return r.status == 0
    }

    /// Scrapes until `loadshear_bytes_sent_total` grew between two reads (20 s at most),
    /// then checks the families; prints what it saw as JSON.
    static let scraper = """
        import json, sys, time, urllib.request
        from prometheus_client.parser import text_string_to_metric_families
        url = sys.argv[1]
        def scrape():
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            return {f.name: f for f in text_string_to_metric_families(text)}
        def sent(fams):
            return sum(s.value for s in fams["loadshear_bytes_sent"].samples if s.name.endswith("_total"))
        first = scrape()
        deadline = time.time() + 20
        while True:
            second = scrape()
            if sent(second) > sent(first) or time.time() > deadline:
                break
        hist = second.get("loadshear_latency_seconds")
        print(json.dumps({
            "grew": sent(second) > sent(first),
            "first": sent(first), "second": sent(second),
            "sentType": second["loadshear_bytes_sent"].type,
            "shards": sorted({s.labels.get("shard") for s in second["loadshear_bytes_sent"].samples}),
            "histType": hist.type if hist else None,
            "connectCount": sum(s.value for s in hist.samples
                                if s.name.endswith("_count") and s.labels.get("kind") == "connect") if hist else 0,
            "active": [s.value for s in second["loadshear_connections_active"].samples],
            "sentHelp": second["loadshear_bytes_sent"].documentation,
            "busyType": second["loadshear_loop_busy_seconds"].type if "loadshear_loop_busy_seconds" in second else None,
            "busy": sum(s.value for s in second["loadshear_loop_busy_seconds"].samples)
                    if "loadshear_loop_busy_seconds" in second else -1,
        }))
        """

    @Test(
        .enabled(
            "prometheus_client (PyPI) is not installed: `python3 -m pip install prometheus_client` to run this check",
            { await PrometheusTests.parserInstalled() }))
    func aPrometheusParserReadsGrowingCountersAndHistogramsDuringARun() async throws {
        let ws = Workspace()
        let (target, port) = try await BinaryRunner.target(["sink"])
        defer { target.stop() }
        #expect(port != 0, "\(target.stdout)")
        let path = ws.script(
            """
            SETTINGS p {
                SESSION = "TCP"
                PORT = \(port)
                SHARDS = 2
                REPEAT = "true"             // PACE goes on sending the one payload, 500/s
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR p {
                CREATE 4 OFFSET 0ms
                CONNECT 0:4 OFFSET 10ms
                SEND 0:4 p COPIES 1
                PACE 0:4 500/s OFFSET 10ms
                DISCONNECT 0:4 OFFSET 120s
            }
            """, files: ["p.bin": [UInt8](repeating: 1, count: 32)])
        let run = try LiveProcess([path, "--quiet", "--prometheus", "0"])
        defer { run.stop() }
        let announced = await run.stderr(contains: "/metrics\n")
        #expect(announced, "\(run.stderrText)")
        let url = run.stderrText.split(separator: " ").last { $0.hasPrefix("http://") }.map {
            String($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let scraperPath = ws.write("scrape.py", Array(Self.scraper.utf8))
        let r = try await BinaryRunner.run(
            ["python3", scraperPath, try #require(url)], executable: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(r.status == 0, "\(r.stderr)")
        let seen = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(seen?["grew"] as? Bool == true, "\(r.stdout)")
        #expect(seen?["sentType"] as? String == "counter")
        #expect(seen?["shards"] as? [String] == ["0", "1"])
        #expect(seen?["histType"] as? String == "histogram")
        #expect(seen?["connectCount"] as? Double == 4)
        #expect((seen?["active"] as? [Double])?.reduce(0, +) == 4)
        // Each family says what it is: the report's name for it.
        #expect(seen?["sentHelp"] as? String == "The JSON report's bytesSent, per shard; docs/report-format.md")
        // Durations are in seconds: the loops' busy time, a few ms per second of run at most.
        #expect(seen?["busyType"] as? String == "counter")
        #expect((seen?["busy"] as? Double).map { $0 > 0 && $0 < 60 } == true, "\(r.stdout)")
        // The run lasts until stopped, however slowly the scraper started: stop it now.
        kill(run.pid, SIGINT)
        let status = await run.exit(timeout: 60)
        #expect(status == 0, "\(run.stderrText)")
    }

    /// One session to `port` that connects and (with `disconnect`) closes again.
    static func oneSession(_ ws: Workspace, port: Int, disconnect: String? = nil) -> String {
        ws.script(
            """
            SETTINGS p {
                SESSION = "TCP"
                PORT = \(port)
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR p {
                CREATE 1 OFFSET 0ms
                CONNECT 0:1 OFFSET 10ms
            \(disconnect.map { "    DISCONNECT 0:1 OFFSET \($0)" } ?? "")
            }
            """)
    }

    /// A port already in use is refused before anything connects.
    @Test func aTakenPortIsAnErrorBeforeTheRun() async throws {
        let ws = Workspace()
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let path = Self.oneSession(ws, port: server.port)
        // An earlier report is left as it was, and no new file is left behind.
        ws.write("old.json", Array("an earlier report".utf8))
        let r = try await BinaryRunner.run([
            path, "--quiet", "--prometheus", "127.0.0.1:\(server.port)", "--json", ws.path("old.json"),
            "--html", ws.path("new.html"),
        ])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(
            r.stderr.contains("cannot serve Prometheus metrics on 127.0.0.1:\(server.port): Address already in use\n"),
            "\(r.stderr)")
        #expect(server.connections.value.isEmpty, "nothing connected")
        #expect(try String(contentsOfFile: ws.path("old.json"), encoding: .utf8) == "an earlier report")
        #expect(!FileManager.default.fileExists(atPath: ws.path("new.html")))
        let malformed = try await BinaryRunner.run([path, "--prometheus", "abc", "--json", ws.path("old.json")])
        #expect(malformed.status == 64, "\(malformed.stderr)")
        #expect(try String(contentsOfFile: ws.path("old.json"), encoding: .utf8) == "an earlier report")
    }

    /// Two outputs in one place are refused before the run; so is a stream that cannot be
    /// written (a full disk) at its end.
    @Test func outputsThatCannotAllBeDeliveredAreErrors() async throws {
        let ws = Workspace()
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let path = Self.oneSession(ws, port: server.port, disconnect: "100ms")
        for (args, message) in [
            (
                ["--json", ws.path("same.json"), "--html", ws.path("./same.json")],
                "--json and --html name the same file"
            ),
            (["--json", "-", "--json-interval", "-"], "--json - and --json-interval - would both write to stdout"),
        ] {
            let r = try await BinaryRunner.run([path, "--quiet"] + args)
            #expect(r.status == 64 && r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        #expect(server.connections.value.isEmpty, "nothing connected")
        // An output that cannot be opened leaves no empty file of the ones opened before it.
        let missingDirectory = try await BinaryRunner.run([
            path, "--quiet", "--json", ws.path("new.json"), "--html", ws.path("no/such/dir/x.html"),
        ])
        #expect(missingDirectory.status == 1, "\(missingDirectory.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.path("new.json")))
        let report = try await BinaryRunner.run(["report", path, "-o", path])
        #expect(report.status == 64 && report.stderr.contains("would overwrite the input"), "\(report.stderr)")
        if FileManager.default.isWritableFile(atPath: "/dev/full") {
            let full = try await BinaryRunner.run([path, "--quiet", "--json-interval", "/dev/full"])
            #expect(full.status == 1, "\(full.stderr)")
            #expect(full.stderr.contains("could not write the snapshot stream to /dev/full"), "\(full.stderr)")
        }
    }
}
