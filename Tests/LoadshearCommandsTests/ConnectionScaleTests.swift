import Foundation
import LoadshearTestSupport
import Testing

/// (ext) SOURCES, DISCONNECT "reset" and the preflight, through the built binary against
/// an in-process server that records each client's address and how it closed.
@Suite struct ConnectionScaleTests {
    static func script(port: Int, sessions: Int, sources: String?, tail: String) -> String {
        """
        SETTINGS s {
            SESSION = "TCP"
            PORT = \(port)
            ENDPOINTS { 127.0.0.1 }
            \(sources.map { "SOURCES { \($0) }" } ?? "")
            PACKETS { p : "p.bin" }
        }
        ORCHESTRATOR s {
            CREATE \(sessions) OFFSET 0ms
            CONNECT 0:\(sessions) OFFSET 10ms
        \(tail)
        }
        """
    }

    /// 300 sessions over three loopback sources split 100/100/100; the first half closes
    /// with RST, and the server sees exactly those 150 resets; the report counts them.
    @Test func sourcesSplitEvenlyAndResetsArriveAsResets() async throws {
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(
            Self.script(
                port: server.port, sessions: 300, sources: "127.0.0.2-127.0.0.4",
                tail: """
                        SEND 0:300 p COPIES 1 OFFSET 100ms
                        DISCONNECT 0:150 "reset" OFFSET 6s
                        DISCONNECT 150:300 OFFSET 10ms
                    """), files: ["p.bin": [1, 2, 3, 4]])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(
            r.stdout.contains("sessions per source: 127.0.0.2 100, 127.0.0.3 100, 127.0.0.4 100\n"), "\(r.stdout)")
        #expect(await server.wait { c in c.count == 300 && c.allSatisfy(\.closed) })
        let connections = server.connections.value
        var perSource: [String: Int] = [:]
        for c in connections { perSource[c.peer ?? "?", default: 0] += 1 }
        #expect(perSource == ["127.0.0.2": 100, "127.0.0.3": 100, "127.0.0.4": 100])
        #expect(connections.filter(\.reset).count == 150)
        #expect(connections.allSatisfy { $0.bytes == [1, 2, 3, 4] })
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
        let totals = (report as? [String: Any])?["totals"] as? [String: Any]
        #expect(totals?["resetsSent"] as? Int == 150)
        #expect(totals?["closedByUs"] as? Int == 300)
        #expect(totals?["peakOpenSessions"] as? Int == 300)
        let sources = ((report as? [String: Any])?["settings"] as? [String: Any])?["sources"] as? [[String: Any]]
        #expect(sources?.map { $0["sessions"] as? Int } == [100, 100, 100])
    }

    /// With `ulimit -n 512`, 2,000 sessions do not fit: exit 2 with the largest count that
    /// fits, pointing at the CONNECT that reaches the peak, and the server sees no connection.
    @Test func aShortFileLimitIsRefusedBeforeAnyConnection() async throws {
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(
            Self.script(port: server.port, sessions: 2000, sources: nil, tail: "    DISCONNECT 0:2000 OFFSET 1s"),
            files: ["p.bin": [1]])
        let r = try await BinaryRunner.shell("ulimit -n 512; \"$LOADSHEAR\" '\(path)' --quiet")
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        // Located like any script error: line and column, the line itself, a caret under CONNECT.
        #expect(r.stderr.contains("test.ldsh:10:5: error: 2000 sessions are open at once here"), "\(r.stderr)")
        #expect(r.stderr.contains("    CONNECT 0:2000 OFFSET 10ms\n    ^~~~~~~\n"), "\(r.stderr)")
        #expect(r.stderr.contains("but the limit is 512"), "\(r.stderr)")
        #expect(r.stderr.contains("nothing was connected"))
        #expect(server.connections.value.isEmpty)
        // The dry run shows the same, and says so in its preflight section.
        let dry = try await BinaryRunner.shell("ulimit -n 512; \"$LOADSHEAR\" '\(path)' --dry-run")
        #expect(dry.status == 2)
        #expect(dry.stdout.contains("does NOT fit"), "\(dry.stdout)")
    }

    /// CHURN EVERY 200ms for 1.01 s: each of 10 sessions takes 5 turns (reconnects plus
    /// turns skipped while still connecting = 50), every reconnect is a connect attempt, and
    /// the payload list continues where it was: each SEND's COUNTER values 0–49 arrive once.
    @Test func churnReconnectsOnScheduleAndKeepsThePayloadPosition() async throws {
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(
            Self.script(
                port: server.port, sessions: 10, sources: nil,
                tail: """
                        SEND 0:10 p COPIES 5 COUNTER 0:4 "big":1 OFFSET 500ms
                        CHURN 0:10 EVERY 200ms OFFSET 100ms
                        SEND 0:10 p COPIES 5 COUNTER 0:4 "big":1 OFFSET 300ms
                        DISCONNECT 0:10 OFFSET 710ms
                    """), files: ["p.bin": [0, 0, 0, 0]])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
        let totals = try #require((report as? [String: Any])?["totals"] as? [String: Int])
        let reconnects = totals["reconnects"] ?? -1
        #expect(reconnects + (totals["churnSkipped"] ?? 0) == 50, "\(totals)")
        #expect(reconnects > 0)
        #expect(totals["connectionsAttempted"] == 10 + reconnects)
        #expect(r.stdout.contains("churn         \(reconnects) reconnects"), "\(r.stdout)")
        #expect(
            await server.wait { c in
                c.count >= 10 && c.allSatisfy(\.closed) && c.reduce(0) { $0 + $1.bytes.count } == 400
            })
        var values: [UInt32] = []
        for c in server.connections.value {
            for k in stride(from: 0, to: c.bytes.count, by: 4) {
                values.append(c.bytes[k..<(k + 4)].reduce(0) { $0 << 8 | UInt32($1) })
            }
        }
        // Each SEND has its own COUNTER: 0–49 from each, once — nothing resent, nothing lost.
        #expect(values.sorted() == (0..<50).flatMap { [UInt32($0), UInt32($0)] })
    }

    /// As an unprivileged user (a container's USER 65532), sessions connect and send: no
    /// socket option that needs a capability is set (TCP_NODELAY once went out as
    /// SOL_SOCKET's SO_DEBUG, which needs CAP_NET_ADMIN, and every connect failed).
    /// Runs where the tests are root and `setpriv` can drop to another user.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func connectsAsAnUnprivilegedUser() async throws {
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(
            Self.script(
                port: server.port, sessions: 2, sources: nil,
                tail: "        SEND 0:2 p COPIES 3 OFFSET 50ms\n        DISCONNECT 0:2 OFFSET 200ms"),
            files: ["p.bin": [1, 2, 3, 4]])
        let r = try await BinaryRunner.shell(
            "chmod 755 '\(ws.dir)' && chmod 644 '\(ws.dir)'/* && setpriv --reuid=65532 --regid=65532 --clear-groups \"$LOADSHEAR\" '\(path)' --quiet"
        )
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("2 attempted, 2 connected, 0 failed"), "\(r.stdout)\n\(r.stderr)")
        #expect(await server.wait { c in c.count == 2 && c.allSatisfy { $0.closed && $0.bytes.count == 12 } })
    }
}
