import Foundation
import Testing

@Suite struct RunTests {
    @Test func quickstartRunsEndToEnd() throws {
        let r = try BinaryRunner.run(["quickstart"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Summary"))
        #expect(r.stdout.contains("32 attempted, 32 connected, 0 failed"))
        // What the engine counted as sent is exactly what the sink received.
        let sent = r.stdout.firstMatch(of: /sent +(\d+) bytes/)?.1
        let received = r.stdout.firstMatch(of: /target +(\d+) bytes received/)?.1
        #expect(sent != nil && sent == received, "\(r.stdout)")
        #expect(Int(sent ?? "0") ?? 0 > 0)
    }

    @Test func targetPrintsItsCountsAtExit() throws {
        let r = try BinaryRunner.run(["target", "sink", "--port", "0", "--duration", "0.2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("listening on 127.0.0.1:"))
        #expect(r.stdout.contains("connections 0, bytes read 0"))
    }

    @Test func runAgainstNothingEndsNormallyWithFailuresCounted() throws {
        let dir = NSTemporaryDirectory() + "ldsh-run-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/p.bin"))
        try """
            SETTINGS n {
                SESSION = "TCP"
                PORT = 1
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR n {
                CREATE 4 OFFSET 0ms
                CONNECT 0:4 OFFSET 1ms
                SEND 0:4 p COPIES 1 OFFSET 50ms
                DISCONNECT 0:4 OFFSET 10ms
            }
            """.write(toFile: dir + "/n.ldsh", atomically: true, encoding: .utf8)
        let r = try BinaryRunner.run([dir + "/n.ldsh", "--quiet", "--json", dir + "/r.json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("4 attempted, 0 connected, 4 failed"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r.json"))) as? [String: Any]
        let totals = json?["totals"] as? [String: Int]
        #expect(totals?["connectionsFailed"] == 4)
    }

    @Test func nonLoopbackEndpointsNeedAcknowledgement() throws {
        let dir = NSTemporaryDirectory() + "ldsh-ack-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 192.0.2.0/24 is TEST-NET-1: never routed, and nothing is sent without --acknowledge.
        try """
            SETTINGS a {
                SESSION = "TCP"
                PORT = 9
                ENDPOINTS { 192.0.2.1 }
            }
            ORCHESTRATOR a {
                CREATE 1 OFFSET 0ms
                CONNECT 0:1
            }
            """.write(toFile: dir + "/a.ldsh", atomically: true, encoding: .utf8)
        let r = try BinaryRunner.run([dir + "/a.ldsh"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("192.0.2.1"))
        #expect(r.stderr.contains("--acknowledge"))
    }
}
