import Foundation
import LoadshearTestSupport
import Testing

/// (ext) One script as three processes (`--segment i/3 --start-at T`), then `merge`.
@Suite struct SegmentRunTests {
    static func script(port: Int, copies: Int) -> String {
        """
        SETTINGS s {
            SESSION = "TCP"
            SHARDS = 1
            PORT = \(port)
            ENDPOINTS { 127.0.0.1 }
            PACKETS { p : "p.bin" }
        }
        ORCHESTRATOR s {
            CREATE 10 OFFSET 0ms
            CONNECT 0:10 OFFSET 10ms
            SEND 0:10 p COPIES \(copies) COUNTER 0:4 "big":1 OFFSET 50ms
            DISCONNECT 0:10 OFFSET 300ms
        }
        EXPECT {
            sent = 1000
            connect.failed = 0
        }
        """
    }

    static func time(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)
    }

    /// `text` (a JSON report) with `change` applied, as JSON again.
    static func edited(_ text: String, _ change: (inout JSONPath) -> Void) throws -> String {
        var r = JSONPath(value: try JSONSerialization.jsonObject(with: Data(text.utf8)))
        change(&r)
        return String(decoding: try JSONSerialization.data(withJSONObject: r.value), as: UTF8.self)
    }

    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
    }

    static func histogram(_ report: [String: Any], _ kind: String) -> [UInt64: UInt64] {
        let latency = report["latencyMicroseconds"] as? [String: Any]
        let pairs = (latency?[kind] as? [String: Any])?["histogram"] as? [[Any]] ?? []
        var out: [UInt64: UInt64] = [:]
        for p in pairs {
            guard let v = (p[0] as? NSNumber)?.uint64Value, let c = (p[1] as? NSNumber)?.uint64Value else { continue }
            out[v, default: 0] += c
        }
        return out
    }

    /// Three segments started together send, between them, exactly the single run's COUNTER
    /// values 0–999 (the server sees each once); `merge` sums them exactly from files and
    /// from standard input, and its histograms are the three reports' combined.
    @Test func threeSegmentsMergeIntoTheSingleRun() async throws {
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(Self.script(port: server.port, copies: 100), files: ["p.bin": Array("abcdefgh".utf8)])
        // Slack for three binaries starting on a loaded machine (a start past by more than
        // 1 s is refused).
        // (Seen: 6.5 s for a binary to start while the suite ran beside a headless browser.)
        let start = String(format: "%.3f", Date().timeIntervalSince1970 + 20)
        async let r0 = BinaryRunner.run([
            path, "--segment", "0/3", "--start-at", start, "--quiet", "--json", ws.path("r0.json"),
        ])
        async let r1 = BinaryRunner.run([
            path, "--segment", "1/3", "--start-at", start, "--quiet", "--json", ws.path("r1.json"),
        ])
        async let r2 = BinaryRunner.run([
            path, "--segment", "2/3", "--start-at", start, "--quiet", "--json", ws.path("r2.json"),
        ])
        let runs = try await [r0, r1, r2]
        for r in runs {
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            #expect(r.stdout.contains("EXPECT is checked by `loadshear merge`"), "\(r.stdout)")
        }
        #expect(
            await server.wait { c in
                c.count == 10 && c.allSatisfy(\.closed) && c.reduce(0) { $0 + $1.bytes.count } == 8000
            })
        var values: [UInt32] = []
        for c in server.connections.value {
            for k in stride(from: 0, to: c.bytes.count, by: 8) {
                values.append(c.bytes[k..<(k + 4)].reduce(0) { $0 << 8 | UInt32($1) })
            }
        }
        #expect(values.sorted() == Array(0..<1000))

        let reports = try (0..<3).map { try Self.json(ws.path("r\($0).json")) }
        for (i, r) in reports.enumerated() {
            let run = r["run"] as? [String: Any]
            #expect((run?["segment"] as? [String: Any])?["index"] as? Int == i)
            // Started at the requested instant, or later when this process itself was late.
            let requested = (run?["requestedStart"] as? String).flatMap(Self.time)
            let started = (run?["startedAt"] as? String).flatMap(Self.time)
            #expect(requested != nil && started != nil && started! >= requested!, "\(String(describing: run))")
        }
        let m = try await BinaryRunner.run(
            ["merge", ws.path("r0.json"), ws.path("r1.json"), ws.path("r2.json"), "-o", ws.path("m.json")])
        #expect(m.status == 0, "\(m.stdout)\n\(m.stderr)")
        #expect(m.stdout.contains("segments 0–2 — 3 of 3 segments"), "\(m.stdout)")
        #expect(m.stdout.contains("Thresholds: all 2 passed"), "\(m.stdout)")
        let merged = try Self.json(ws.path("m.json"))
        #expect((merged["totals"] as? [String: Any])?["packetsSent"] as? Int == 1000)
        #expect((merged["totals"] as? [String: Any])?["connectionsSucceeded"] as? Int == 10)
        // Segments that did not start together are merged all the same, with a warning: their
        // interval series line up by time since each one's start.
        var late = reports[1]
        var lateRun = late["run"] as? [String: Any] ?? [:]
        let lateStart = try #require((lateRun["startedAt"] as? String).flatMap(Self.time)).addingTimeInterval(3)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        lateRun["startedAt"] = formatter.string(from: lateStart)
        late["run"] = lateRun
        ws.write("r1late.json", Array(try JSONSerialization.data(withJSONObject: late)))
        let skewed = try await BinaryRunner.run([
            "merge", ws.path("r0.json"), ws.path("r1late.json"), ws.path("r2.json"),
        ])
        #expect(skewed.status == 0, "\(skewed.stderr)")
        #expect(skewed.stderr.contains("warning: the segments started up to "), "\(skewed.stderr)")
        #expect(skewed.stderr.contains(" s apart: their interval series are lined up"), "\(skewed.stderr)")
        var combined: [UInt64: UInt64] = [:]
        for r in reports { combined.merge(Self.histogram(r, "connect"), uniquingKeysWith: +) }
        #expect(Self.histogram(merged, "connect") == combined)
        #expect(combined.values.reduce(0, +) == 10)

        // The same from standard input, the reports concatenated, with stray log lines.
        let piped = try await BinaryRunner.shell(
            "{ echo 'loadshear: a log line'; cat '\(ws.path("r2.json"))' '\(ws.path("r0.json"))'; echo 'x {'; cat '\(ws.path("r1.json"))'; } | \"$LOADSHEAR\" merge - --json -"
        )
        #expect(piped.status == 0, "\(piped.stderr)")
        let fromStdin = try JSONSerialization.jsonObject(with: Data(piped.stdout.utf8)) as? [String: Any]
        #expect((fromStdin?["totals"] as? [String: Any])?["packetsSent"] as? Int == 1000)

        // A missing segment is said; a threshold on the whole run then fails (exit 4).
        let two = try await BinaryRunner.run(["merge", ws.path("r0.json"), ws.path("r2.json")])
        #expect(two.status == 4)
        #expect(two.stdout.contains("2 of 3 segments") && two.stdout.contains("missing: 1;"), "\(two.stdout)")
        // The HTML page of a segment, or of a partial merge, says which share it covers: its
        // sessions (blocks of 4, 3 and 3), not the whole plan's 10.
        _ = try await BinaryRunner.run(["merge", ws.path("r0.json"), ws.path("r2.json"), "-o", ws.path("two.json")])
        for (json, covered, part) in [
            ("two.json", "7 sessions", "merged from 2 of 3 segments (missing: 1)"),
            ("r1.json", "3 sessions", "segment 1/3 only (of 10 sessions)"),
            ("m.json", "10 sessions", "merged from 3 segments"),
        ] {
            let page = try await BinaryRunner.run(["report", ws.path(json), "-o", ws.path(json + ".html")])
            #expect(page.status == 0, "\(page.stderr)")
            let html = try String(contentsOfFile: ws.path(json + ".html"), encoding: .utf8)
            #expect(html.contains(covered) && html.contains(part), "\(json): \(html.prefix(3000))")
        }

        // Intervals: numbered, the final stretch included; merged by number, they add up to
        // the totals.
        let intervals = try #require(merged["intervals"] as? [[String: Any]])
        let sent = intervals.compactMap { ($0["increment"] as? [String: Any])?["packetsSent"] as? Int }.reduce(0, +)
        #expect(sent == 1000)
        let ticks = intervals.compactMap { $0["tick"] as? Int }
        #expect(ticks == Array(1...ticks.count) && ticks.count == intervals.count)

        // Reports that are not what they claim are refused, saying what is wrong.
        let text = try String(contentsOfFile: ws.path("r0.json"), encoding: .utf8)
        for (name, bad, message) in [
            ("v1", text.replacingOccurrences(of: "\"version\" : 2", with: "\"version\" : 1"), "format version 1"),
            (
                "count", text.replacingOccurrences(of: "\"count\" : 3", with: "\"count\" : -1"),
                "run.segment.count is -1"
            ),
            ("cut", String(text.prefix(text.count / 2)), "a report cut short"),
            (
                "field", text.replacingOccurrences(of: "\"durationSeconds\"", with: "\"duration\""),
                ".durationSeconds is missing"
            ),
            ("merged", try String(contentsOfFile: ws.path("m.json"), encoding: .utf8), "itself a merged report"),
            ("early", String(text.prefix(300)), "a report cut short"),
            (
                "block", try Self.edited(text) { r in r["run", "segment", "sessions"] = [0, 10] },
                "run.segment.sessions is [0, 10], but segment 0/3 of 10 sessions is [0, 4]"
            ),
            (
                "negative",
                try Self.edited(text) { r in r["latencyMicroseconds", "connect", "histogram"] = [[-5, 1]] },
                "a number does not fit its field"
            ),
        ] {
            let path = ws.write("\(name).json", Array(bad.utf8))
            let r = try await BinaryRunner.run(["merge", path, ws.path("r1.json")])
            #expect(r.status == 2 && r.stderr.contains(message), "\(name): \(r.stderr)")
        }
        // From standard input too, wherever the report was cut.
        for cut in [10, 300, text.utf8.count / 2] {
            let piped = try await BinaryRunner.shell(
                "{ cat '\(ws.path("r1.json"))'; head -c \(cut) '\(ws.path("r0.json"))'; } | \"$LOADSHEAR\" merge -")
            #expect(piped.status == 2 && piped.stderr.contains("a report cut short"), "\(cut): \(piped.stderr)")
        }
        // A byte order mark and CRLF line ends (an editor's) are no part of a report's content.
        let crlf = ws.write("crlf.json", Array(("\u{FEFF}" + text.replacingOccurrences(of: "\n", with: "\r\n")).utf8))
        let edited = try await BinaryRunner.run(["merge", crlf, ws.path("r1.json"), ws.path("r2.json")])
        #expect(edited.status == 0 && !edited.stderr.contains("skipped"), "\(edited.stderr)")

        // Overlap and another script's report are refused.
        let twice = try await BinaryRunner.run(["merge", ws.path("r0.json"), ws.path("r0.json")])
        #expect(twice.status == 2 && twice.stderr.contains("overlap"), "\(twice.stderr)")
        let other = ws.script(
            Self.script(port: server.port, copies: 1), name: "other.ldsh", files: ["p.bin": Array("abcdefgh".utf8)])
        let o = try await BinaryRunner.run([other, "--segment", "1/3", "--quiet", "--json", ws.path("o.json")])
        #expect(o.status == 0, "\(o.stderr)")
        let mixed = try await BinaryRunner.run(["merge", ws.path("r0.json"), ws.path("o.json")])
        #expect(mixed.status == 2 && mixed.stderr.contains("different script"), "\(mixed.stderr)")
    }

    /// Bad options: a malformed segment, a start long past, too many segments.
    @Test func badSegmentOptionsAreClearErrors() async throws {
        let ws = Workspace()
        let path = ws.script(Self.script(port: 9, copies: 1), files: ["p.bin": [1, 2, 3, 4, 5, 6, 7, 8]])
        let malformed = try await BinaryRunner.run([path, "--segment", "3/3", "--dry-run"])
        #expect(malformed.status == 64 && malformed.stderr.contains("expected i/N"), "\(malformed.stderr)")
        // A negative index is ours to refuse, not "missing value" (it looks like an option).
        let negative = try await BinaryRunner.run([path, "--segment", "-1/2", "--dry-run"])
        #expect(negative.status == 64 && negative.stderr.contains("expected i/N"), "\(negative.stderr)")
        let past = try await BinaryRunner.run([path, "--start-at", "2020-01-01T00:00:00Z", "--dry-run"])
        #expect(past.status == 64 && past.stderr.contains("more than 1 s in the past"), "\(past.stderr)")
        let many = try await BinaryRunner.run([path, "--segment", "0/11", "--dry-run"])
        #expect(many.status == 2 && many.stderr.contains("cannot be split into 11 segments"), "\(many.stderr)")
        let dry = try await BinaryRunner.run([path, "--segment", "2/3", "--dry-run"])
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("Segment 2 of 3 (--segment 2/3): sessions 7:10"), "\(dry.stdout)")
        #expect(dry.stdout.contains("copies 0..<3 → 3·k+2"), "\(dry.stdout)")
    }
}

/// A JSON value from JSONSerialization whose nested objects can be set by key path.
struct JSONPath {
    var value: Any

    subscript(_ keys: String...) -> Any? {
        get { keys.reduce(value as Any?) { ($0 as? [String: Any])?[$1] } }
        set { value = Self.set(value, keys[...], newValue) }
    }

    private static func set(_ object: Any, _ keys: ArraySlice<String>, _ new: Any?) -> Any {
        guard let key = keys.first, var dict = object as? [String: Any] else { return new ?? NSNull() }
        dict[key] = keys.count == 1 ? new : set(dict[key] ?? [String: Any](), keys.dropFirst(), new)
        return dict
    }
}
