import Foundation
import LoadshearTestSupport
import Testing

@testable import LoadshearScript

@Suite struct PlanTests {
    @Test(arguments: [
        (100, 2, [0..<50, 50..<100]), (10, 3, [0..<4, 4..<7, 7..<10]), (5, 5, [0..<1, 1..<2, 2..<3, 3..<4, 4..<5]),
    ])
    func shardsAreContiguousAndEven(_ n: Int, _ s: Int, _ expected: [Range<Int>]) {
        #expect(Checker.split(n, into: s) == expected)
    }

    @Test func shardsDefaultToCoresCappedAtSessions() throws {
        let (p, r, _) = plan(
            script(actions: "    CONNECT 0:3", create: "    CREATE 3 OFFSET 0ms"), options: testOptions(cpus: 8))
        #expect(try #require(p, "\(r)").settings.shardCount == 3)
        let (p2, _, _) = plan(script(), options: testOptions(cpus: 4))
        #expect(p2?.shards == [0..<3, 3..<6, 6..<8, 8..<10])
    }

    @Test func offsetsAreCumulativeWithA250msDefault() throws {
        let (p, r, _) = plan(
            script(
                actions:
                    "    CONNECT 0:5\n    CONNECT 5:10 OFFSET 1.5s\n    SEND 0:10 p1 COPIES 1 OFFSET 10us\n    DISCONNECT 0:10"
            ))
        let planned = try #require(p, "\(r)")
        #expect(planned.actions.map(\.at) == [0, 250_000_000, 1_750_000_000, 1_750_010_000, 2_000_010_000])
        #expect(planned.duration == 2_000_010_000)
    }

    @Test func payloadListsFollowSendsInScriptOrder() throws {
        let (p, r, _) = plan(
            script(
                actions: "    CONNECT 0:10\n    SEND 0:10 p1 COPIES 2\n    SEND 5:10 p2 COPIES 3 COUNTER 0:2 \"big\":7")
        )
        let planned = try #require(p, "\(r)")
        #expect(planned.sendIndices(for: 0) == [0])
        #expect(planned.sendIndices(for: 7) == [0, 1])
        #expect(planned.payloadCount(for: 7) == 5)
        #expect(planned.sends[1].counter == CounterPatch(offset: 0, length: 2, order: .big, step: 7))
        #expect(planned.payloadRuns().map(\.0) == [0..<5, 5..<10])
    }

    @Test func packetsAreReadRelativeToTheScript() throws {
        let ws = Workspace.withPackets()
        try FileManager.default.createDirectory(atPath: ws.dir + "/sub", withIntermediateDirectories: true)
        ws.write("sub/x.bin", [1, 2, 3])
        let (p, r, _) = plan(script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"sub/x.bin\" }"), in: ws)
        let planned = try #require(p, "\(r)")
        #expect(planned.packets[0].bytes == [1, 2, 3])
        #expect(planned.packets[0].resolvedPath.hasSuffix("/sub/x.bin"))
    }

    @Test func tildeAndEnvironmentExpansion() throws {
        let ws = Workspace.withPackets()
        var o = testOptions()
        o.environment = ["HOME": ws.dir, "PKT": "hello", "DIR": ws.dir]
        let tilde = script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"~/ping.bin\" }")
        #expect(try #require(plan(tilde, in: ws, options: o).0).packets[0].bytes.count == 16)

        let env = script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"${DIR}/$PKT.bin\" }")
        #expect(plan(env, in: ws, options: o).0 == nil, "without --expand-envs $ is literal")
        o.expandEnvironment = true
        #expect(try #require(plan(env, in: ws, options: o).0).packets[0].bytes.count == 11)

        let unset = script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"$NOPE.bin\" }")
        #expect(plan(unset, in: ws, options: o).1.contains("environment variable NOPE is not set"))

        ws.write("$lit.bin", [9])
        let escaped = script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"\\$lit.bin\" }")
        #expect(try #require(plan(escaped, in: ws, options: o).0).packets[0].bytes == [9])
        // A private-use U+E000 in a name is itself, not the escaped dollar's stand-in, even
        // right after an escaped dollar.
        ws.write("pu\u{E000}x.bin", [7])
        let privateUse = script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"pu\u{E000}x.bin\" }")
        #expect(try #require(plan(privateUse, in: ws, options: o).0).packets[0].bytes == [7])
        ws.write("$\u{E000}\u{E001}.bin", [6])
        let both = script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"\\$\u{E000}\u{E001}.bin\" }")
        #expect(try #require(plan(both, in: ws, options: o).0).packets[0].bytes == [6])

        // Without --expand-envs, a missing file's '$' brings the hint, an escaped one does not.
        o.expandEnvironment = false
        let hint = "pass --expand-envs"
        #expect(
            plan(script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"$X.bin\" }"), in: ws, options: o).1.contains(
                hint))
        let plain = plan(script(base: fieldsNoPackets + "\n    PACKETS { p1 : \"\\$X.bin\" }"), in: ws, options: o).1
        #expect(plain.contains("packet file not found") && !plain.contains(hint), "\(plain)")
    }

    @Test func endpointsResolveAndDeduplicate() throws {
        let (p, r, _) = plan(
            script(
                base:
                    "    SESSION = \"TCP\"\n    PORT = 9\n    ENDPOINTS { \"localhost\", 127.0.0.1, \"::1\" }\n    PACKETS { p1 : \"hello.bin\" }"
            ))
        let planned = try #require(p, "\(r)")
        #expect(planned.addresses.map(\.description) == ["127.0.0.1:9", "[::1]:9"])
    }

    @Test func listsAcceptOptionalEqualsAndCommas() throws {
        let (p, r, _) = plan(
            script(
                base:
                    "    SESSION = \"UDP\"\n    PORT = 9\n    ENDPOINTS = { 127.0.0.1 \"127.0.0.2\", }\n    PACKETS = { p1 : \"hello.bin\" p2:\"ping.bin\" }"
            ))
        let planned = try #require(p, "\(r)")
        #expect(planned.settings.session == .udp)
        #expect(planned.packets.count == 2)
    }

    @Test func sampleRateZeroMeans100() throws {
        let (p, _, _) = plan(script(settings: "    SAMPLERATE = 0"))
        #expect(p?.settings.sampleRate == 100)
    }

    @Test func bundledExamplesPlan() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let dir = root.appendingPathComponent("examples").path
        let scripts = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".ldsh") }
        #expect(scripts.count >= 4)
        for s in scripts {
            let (p, d, file) = PlanBuilder.build(path: dir + "/" + s, options: testOptions())
            #expect(p != nil, "\(DiagnosticRenderer().render(d, in: file))")
        }
    }

    /// The dry run's sample-rate line reads as English: every 2nd, 3rd, 11th, 21st packet.
    @Test func ordinalsReadAsEnglish() {
        #expect(
            [1, 2, 3, 4, 11, 12, 13, 21, 22, 100, 101].map(Plan.ordinal) == [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "100th", "101st",
            ])
    }
}
