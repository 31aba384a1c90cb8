import Foundation
import LoadshearTestSupport
import Testing

@Suite struct RunTests {
    @Test func quickstartRunsEndToEnd() async throws {
        let r = try await BinaryRunner.run(["quickstart"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Summary"))
        #expect(r.stdout.contains("32 attempted, 32 connected, 0 failed"))
        // What the engine counted as sent is exactly what the target received.
        let sent = r.stdout.firstMatch(of: /sent +(\d+) bytes/)?.1
        let received = r.stdout.firstMatch(of: /target +(\d+) bytes received/)?.1
        #expect(sent != nil && sent == received, "\(r.stdout)")
        #expect(Int(sent ?? "0") ?? 0 > 0)
        // Every heartbeat read was answered, and every answer reached the target. The target's
        // heartbeats all go out long before the sessions drain, but a machine loaded as hard as
        // this test suite loads it (TLS peers, a headless browser) can delay several past a
        // session's close: those are never read. Most are.
        let heartbeats = Int(r.stdout.firstMatch(of: /(\d+) heartbeats sent/)?.1 ?? "") ?? -1
        let pongs = Int(r.stdout.firstMatch(of: /(\d+) pongs received/)?.1 ?? "") ?? -2
        let frames = Int(r.stdout.firstMatch(of: /read +\d+ bytes \([^)]*\), (\d+) frames/)?.1 ?? "") ?? -3
        let responses = Int(r.stdout.firstMatch(of: /responses +(\d+) sent/)?.1 ?? "") ?? -4
        #expect(heartbeats == 32 * 16)
        #expect(
            frames == responses && responses == pongs && frames >= heartbeats / 2,
            "heartbeats \(heartbeats), frames \(frames), responses \(responses), pongs \(pongs)\n\(r.stdout)")
    }

    @Test func targetPrintsItsCountsAtExit() async throws {
        let r = try await BinaryRunner.run(["target", "sink", "--port", "0", "--duration", "0.2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("listening on 127.0.0.1:"))
        #expect(r.stdout.contains("connections 0, bytes read 0"))
    }

    /// Connects that never finish (TLS to a listener that never accepts, so no handshake
    /// answer comes) are cancelled by the DISCONNECT: nothing connected, so the run exits 1
    /// like one whose connects failed, and says so.
    @Test func aRunWhoseConnectsWereAllCancelledExitsOne() async throws {
        let ws = Workspace()
        let listener = StallingListener()
        let path = ws.script(
            """
            SETTINGS n {
                SESSION = "TLS"
                PORT = \(listener.port)
                ENDPOINTS { 127.0.0.1 }
                TLS { VERIFY = "false" }
            }
            ORCHESTRATOR n {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 1ms
                DISCONNECT 0:2 OFFSET 300ms
            }
            """)
        let r = try await BinaryRunner.run([path, "--quiet"])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("2 attempted, 0 connected, 0 failed, 2 cancelled"), "\(r.stdout)")
        #expect(r.stderr.contains("error: no session connected (cancelled while connecting ×2)"), "\(r.stderr)")
    }

    /// Connects to a closed port: the first refusal is explained, the failures are counted by
    /// reason, and a run in which no session connected exits 1 saying why.
    @Test func aRunWhereNothingConnectsSaysWhyAndExitsOne() async throws {
        let ws = Workspace()
        let refusing = RefusingPort()
        let path = ws.script(
            """
            SETTINGS n {
                SESSION = "TCP"
                PORT = \(refusing.port)
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR n {
                CREATE 4 OFFSET 0ms
                CONNECT 0:4 OFFSET 1ms
                SEND 0:4 p COPIES 1 OFFSET 50ms
                DRAIN 0:4 OFFSET 10ms
            }
            """, files: ["p.bin": [1, 2, 3]])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.contains("4 attempted, 0 connected, 4 failed"))
        #expect(r.stdout.contains("failed: connection refused ×4"))
        #expect(r.stderr.contains("connect 127.0.0.1:\(refusing.port): connection refused"), "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "connection refused (the first").count == 2, "logged once")
        #expect(r.stderr.contains("error: no session connected (connection refused ×4)"))
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
            as? [String: Any]
        let totals = json?["totals"] as? [String: Int]
        #expect(totals?["connectionsFailed"] == 4)
        #expect(totals?["connectRefused"] == 4)
        #expect((json?["connectFailuresByReason"] as? [String: Int]) == ["connection refused": 4])

        // Every field the report writes is documented, so the docs' promise of stable names
        // covers all of them.
        let docs = try String(
            contentsOf: BinaryRunner.repositoryRoot.appendingPathComponent("docs/report-format.md"), encoding: .utf8)
        let latency = (json?["latencyMicroseconds"] as? [String: [String: Any]])?["connect"]
        let fields = Set(json?.keys.map { $0 } ?? []).union(totals?.keys.map { $0 } ?? [])
            .union(latency?.keys.map { $0 } ?? [])
        #expect(fields.count > 50)
        let undocumented = fields.filter { !docs.contains("\"\($0)\"") }.sorted()
        #expect(undocumented.isEmpty, "fields missing from docs/report-format.md: \(undocumented)")
    }

    @Test func nonLoopbackEndpointsNeedAcknowledgement() async throws {
        let ws = Workspace()
        // 192.0.2.0/24 is TEST-NET-1: never routed, and nothing is sent without --acknowledge.
        let path = ws.script(
            """
            SETTINGS a {
                SESSION = "TCP"
                PORT = 9
                ENDPOINTS { 192.0.2.1 }
            }
            ORCHESTRATOR a {
                CREATE 1 OFFSET 0ms
                CONNECT 0:1
            }
            """)
        let r = try await BinaryRunner.run([path])
        #expect(r.status == 3)
        #expect(r.stderr.contains("192.0.2.1"))
        #expect(r.stderr.contains("--acknowledge"))
    }
}
