import Foundation
import LoadshearCommands
import LoadshearTestSupport
import Testing

/// (ext) `loadshear compare`: which changes are regressions (table-driven), and the command
/// on real reports: a run against itself passes, a run at a quarter of the throughput fails.
@Suite struct CompareTests {
    /// A report with these totals over `seconds`, and a connect histogram's percentiles.
    static func report(
        seconds: Double = 10, bytes: Int = 10_000_000, packets: Int = 10_000, connected: Int = 10, failed: Int = 0,
        connectP99: Int = 500, lost: Int = 10, duplicates: Int = 0
    ) -> [String: Any] {
        [
            "version": 2, "durationSeconds": seconds,
            "totals": [
                "bytesSent": bytes, "packetsSent": packets, "connectionsSucceeded": connected,
                "connectionsFailed": failed, "sequenceLost": lost, "duplicates": duplicates,
            ],
            "latencyMicroseconds": [
                "connect": ["samples": connected, "p50": 100, "p90": 200, "p99": connectP99, "p999": 600, "max": 700],
                "read": ["samples": 0],
            ],
        ]
    }

    /// (what changed, the new report, the figures flagged against `report()` at 5%).
    static func cases() -> [(String, [String: Any], [String])] {
        [
            ("the same run", report(), []),
            ("4% less throughput is within 5%", report(bytes: 9_600_000, packets: 9_600), []),
            ("a quarter of the throughput", report(bytes: 2_500_000, packets: 2_500), ["sent", "packets sent"]),
            ("the same bytes in twice the time", report(seconds: 20), ["sent", "packets sent"]),
            ("more throughput is no regression", report(bytes: 40_000_000, packets: 40_000), []),
            ("slower connects beyond 5%", report(connectP99: 530), ["connect p99"]),
            ("slower connects within 5%", report(connectP99: 520), []),
            ("failures where there were none", report(failed: 1), ["connectionsFailed"]),
            ("fewer connections", report(connected: 8), ["connections"]),
            ("more sequence numbers lost", report(lost: 20), ["sequenceLost"]),
            ("replies answered twice where none were", report(duplicates: 20), ["duplicates"]),
        ]
    }

    @Test(arguments: 0..<11)
    func regressionsAreFlaggedByDirectionAndTolerance(_ i: Int) throws {
        let (name, new, flagged) = Self.cases()[i]
        let rows = Comparison.rows(
            base: try ComparedRun(report: Self.report(), name: "base"), new: try ComparedRun(report: new, name: "new"),
            tolerance: 0.05)
        #expect(rows.filter(\.regressed).map(\.name) == flagged, "\(name)")
        #expect(!rows.contains { $0.name.hasPrefix("read") }, "a kind without samples is not compared")
    }

    @Test func toleranceParses() {
        #expect(CompareCommand.fraction("5%") == 0.05)
        #expect(CompareCommand.fraction("0.1") == 0.1)
        #expect(CompareCommand.fraction("-1%") == nil)
        #expect(CompareCommand.fraction("five") == nil)
    }

    /// Through the binary, on the reports of real runs against the built-in sink.
    @Test func aRunAgainstItselfPassesAndAQuarterOfTheThroughputFails() async throws {
        let ws = Workspace()
        let (target, port) = try await BinaryRunner.target(["sink"])
        defer { target.stop() }
        #expect(port != 0, "\(target.stdout)")
        func run(_ copies: Int, _ name: String) async throws {
            let path = ws.script(
                """
                SETTINGS c {
                    SESSION = "TCP"
                    PORT = \(port)
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p : "p.bin" }
                }
                ORCHESTRATOR c {
                    CREATE 4 OFFSET 0ms
                    CONNECT 0:4 OFFSET 10ms
                    SEND 0:4 p COPIES \(copies) OFFSET 100ms
                    DISCONNECT 0:4 OFFSET 1s
                }
                """, name: name + ".ldsh", files: ["p.bin": [UInt8](repeating: 7, count: 512)])
            let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path(name + ".json")])
            #expect(r.status == 0, "\(r.stderr)")
        }
        try await run(400, "full")
        try await run(100, "quarter")
        let same = try await BinaryRunner.run(["compare", ws.path("full.json"), ws.path("full.json")])
        #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
        #expect(same.stdout.contains("no regression beyond 5.0%"), "\(same.stdout)")
        let worse = try await BinaryRunner.run(["compare", ws.path("full.json"), ws.path("quarter.json"), "--json"])
        #expect(worse.status == 4, "\(worse.stdout)\(worse.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(worse.stdout.utf8)) as? [String: Any]
        let figures = object?["figures"] as? [[String: Any]] ?? []
        let sent = figures.first { $0["name"] as? String == "sent" }
        #expect(sent?["regressed"] as? Bool == true, "\(figures)")
        // A quarter of the bytes in about as long a run: about −75% (the runs' lengths differ
        // a little on a loaded machine).
        #expect((sent?["relative"] as? Double ?? 0) < -0.5, "\(String(describing: sent))")
        let table = try await BinaryRunner.run(["compare", ws.path("full.json"), ws.path("quarter.json")])
        #expect(table.stdout.contains("✗ REGRESSION"), "\(table.stdout)")
        let missing = try await BinaryRunner.run(["compare", ws.path("full.json"), ws.path("nope.json")])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read"), "\(missing.stderr)")
    }
}
