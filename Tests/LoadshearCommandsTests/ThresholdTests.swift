import Foundation
import LoadshearTestSupport
import Testing

/// (ext) EXPECT and the generator verdict, through the built binary.
@Suite struct ThresholdTests {
    static let request: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 8] + [UInt8](repeating: 0, count: 8)

    static func script(port: Int, expect: String, pace: String = "100/s", copies: Int = 10) -> String {
        """
        SETTINGS e {
            SESSION = "TCP"
            PORT = \(port)
            READ = "true"
            HEADERSIZE = 8
            BODYMAX = 64
            HEADER_LENGTH = 4:4 "big"
            RESPONSE = 8:8 "big"
            TIMEOUT = 2s
            ENDPOINTS { 127.0.0.1 }
            PACKETS { req : "req.bin" }
        }
        ORCHESTRATOR e {
            CREATE 2 OFFSET 0ms
            CONNECT 0:2 OFFSET 1ms
            SEND 0:2 req COPIES \(copies) COUNTER 8:8 "big":1 OFFSET 20ms
            PACE 0:2 \(pace) OFFSET 0ms
            DRAIN 0:2 OFFSET 50ms
        }
        EXPECT {
        \(expect)
        }
        """
    }

    static func report(_ ws: Workspace) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: ws.path("r.json")))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// A threshold that fails: exit 4, the failed line on stderr, ✗ in the summary, and the
    /// results in the report; the one that passes is ✓.
    @Test func aFailedThresholdExitsFour() async throws {
        let server = try await RecordingServer.start(.answer(frameSize: 16) { [$0] })
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(
            Self.script(port: server.port, expect: "    requests = 20\n    replies < 5\n    response.max < 1h"),
            files: ["req.bin": Self.request])
        let r = try await BinaryRunner.run([path, "--no-tui", "--json", ws.path("r.json")])
        #expect(r.status == 4, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("loadshear: threshold failed: replies < 5 (measured 20, line 22)"), "\(r.stderr)")
        #expect(r.stdout.contains("Thresholds: 1 of 3 FAILED"))
        #expect(r.stdout.contains("✓ requests = 20"))
        #expect(r.stdout.contains("✗ replies < 5"))
        #expect(r.stdout.contains("generator: "))
        let results = try Self.report(ws)["thresholds"] as? [[String: Any]]
        #expect(results?.map { $0["ok"] as? Bool } == [true, false, true])
        #expect(results?[1]["value"] as? Double == 20)
        #expect(results?[1]["expression"] as? String == "replies < 5")
    }

    /// All thresholds met: exit 0, and the report says the generator kept up or why not.
    @Test func passingThresholdsExitZero() async throws {
        let server = try await RecordingServer.start(.answer(frameSize: 16) { [$0] })
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(
            Self.script(port: server.port, expect: "    timeouts = 0\n    unmatched = 0%\n    connect.failed = 0"),
            files: ["req.bin": Self.request])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("Thresholds: all 3 passed"))
        let generator = try Self.report(ws)["generator"] as? [String: Any]
        #expect(generator?["saturated"] is Bool)
        #expect((generator?["busy"] as? [[String: Any]])?.count == 2)
    }

    /// A pace the socket cannot take (a server that never reads, 64 KiB payloads at 100k/s):
    /// the verdict says SATURATED and why.
    @Test func anImpossiblePaceIsSaturated() async throws {
        let listener = StallingListener()
        let ws = Workspace()
        let path = ws.script(
            """
            SETTINGS s {
                SESSION = "TCP"
                PORT = \(listener.port)
                REPEAT = "true"
                ENDPOINTS { 127.0.0.1 }
                PACKETS { big : "big.bin" }
            }
            ORCHESTRATOR s {
                CREATE 1 OFFSET 0ms
                CONNECT 0:1 OFFSET 1ms
                SEND 0:1 big COPIES 1 OFFSET 20ms
                PACE 0:1 100000/s OFFSET 0ms
                DISCONNECT 0:1 OFFSET 300ms
            }
            """, files: ["big.bin": [UInt8](repeating: 1, count: 65_536)])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("generator: SATURATED — results are not trustworthy"), "\(r.stdout)")
        #expect(r.stdout.contains("behind schedule"))
        // The tests run the debug build, whose verdict says what it is.
        #expect(r.stdout.contains("(this is a debug build, many times slower"), "\(r.stdout)")
        let generator = try Self.report(ws)["generator"] as? [String: Any]
        #expect(generator?["saturated"] as? Bool == true)
        _ = listener
    }

    // Written apart too: `--rate -1` reaches the target's own check, not "missing value".
    @Test(arguments: [
        ["--count=-1"], ["--duration=-2"], ["--rate", "-1"], ["--body-size", "-1"], ["--duration", "-1"],
    ])
    func theTargetRejectsNegativeLimits(_ option: [String]) async throws {
        let r = try await BinaryRunner.run(["target", "broadcast", "--port", "0"] + option)
        #expect(r.status == 64)
        #expect(r.stderr.contains("cannot be negative") || r.stderr.contains("0 or more"), "\(r.stderr)")
    }

    /// The broadcast target's options are refused by the others, as theirs are by it.
    @Test func broadcastOptionsApplyToBroadcastOnly() async throws {
        let r = try await BinaryRunner.run(["target", "sink", "--port", "0", "--rate", "5"])
        #expect(r.status == 64 && r.stderr.contains("apply to the broadcast target"), "\(r.stderr)")
    }

    @Test func aUDPBroadcastNeedsARate() async throws {
        let r = try await BinaryRunner.run(["target", "broadcast", "--udp", "--port", "0", "--rate", "0"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--rate 0 (as fast as possible) is for TCP broadcast"), "\(r.stderr)")
    }

    @Test func theEchoTargetRejectsABadDelay() async throws {
        let r = try await BinaryRunner.run(["target", "echo", "--port", "0", "--delay", "5", "--duration", "0.1"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--delay must be a duration such as 1ms"))
    }
}
