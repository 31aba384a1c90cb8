import Foundation
import LoadshearTestSupport
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// (ext) The HTML report: written at the end of a real run (`--html`) and after the fact
/// (`loadshear report`), well-formed (it is parsed as XML), with its sections and charts,
/// and with nothing it would fetch.
@Suite struct HTMLReportTests {
    /// The page's elements by name, counted; fails the test when it is not well-formed.
    static func elements(_ path: String) throws -> [String: Int] {
        final class Counter: NSObject, XMLParserDelegate {
            var counts: [String: Int] = [:]
            var attributes: [String] = []
            func parser(
                _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]
            ) {
                counts[name, default: 0] += 1
                for (k, v) in attributes where k == "src" || k == "href" { self.attributes.append(v) }
            }
        }
        let parser = try #require(XMLParser(contentsOf: URL(fileURLWithPath: path)))
        let counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "well-formed: \(String(describing: parser.parserError))")
        #expect(counter.attributes.isEmpty, "nothing fetched: \(counter.attributes)")
        return counter.counts
    }

    @Test func aRunWritesAPageWithItsChartsAndTheReportCommandMakesTheSame() async throws {
        let ws = Workspace()
        let (target, port) = try await BinaryRunner.target(["echo"])
        defer { target.stop() }
        let path = ws.script(
            """
            // A paced request/response run with a threshold.
            SETTINGS h {
                SESSION = "TCP"
                PORT = \(port)
                READ = "true"
                HEADERSIZE = 4
                BODYMAX = 64
                HEADER_LENGTH = 0:4 "big"
                RESPONSE = 4:4 "big"
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR h {
                CREATE 4 OFFSET 0ms
                CONNECT 0:4 OFFSET 10ms
                SEND 0:4 p COPIES 1 COUNTER 4:4 "big":1
                PACE 0:4 200/s OFFSET 10ms
                DISCONNECT 0:4 OFFSET 2s
            }
            EXPECT {
                response.p99 < 5s
            }
            """, files: ["p.bin": [0, 0, 0, 4, 0, 0, 0, 0]])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json"), "--html", ws.path("r.html")])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // The interval series carries rates and percentiles, derived from its counts.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ws.path("r.json"))))
        let intervals = (json as? [String: Any])?["intervals"] as? [[String: Any]] ?? []
        #expect(intervals.count >= 2)
        for iv in intervals {
            let span = iv["intervalSeconds"] as? Double ?? 0
            let sent = (iv["increment"] as? [String: Any])?["bytesSent"] as? Int ?? 0
            let rate = (iv["ratesPerSecond"] as? [String: Any])?["bytesSent"] as? Double ?? 0
            #expect(abs(rate - Double(sent) / span) < 0.01, "\(iv)")
        }
        let response = intervals.compactMap {
            ($0["latencyPercentiles"] as? [String: Any])?["response"] as? [String: Int]
        }
        #expect(!response.isEmpty)
        #expect(response.allSatisfy { $0["p50"]! <= $0["p99"]! && $0["p99"]! <= $0["max"]! }, "\(response)")
        let counts = try Self.elements(ws.path("r.html"))
        // Throughput, connections, response and connect per 500 ms; percentile curves.
        #expect((counts["svg"] ?? 0) >= 6, "\(counts)")
        #expect((counts["polyline"] ?? 0) >= 8)
        #expect((counts["h2"] ?? 0) >= 5)
        let page = try String(contentsOfFile: ws.path("r.html"), encoding: .utf8)
        for section in ["Thresholds", "Over time", "Latency", "Shards", "Script", "response.p99 &lt; 5s"] {
            #expect(page.contains(section), "\(section)")
        }
        // Percentile axes tick at whole decades from 0% (90%, 99%… as far as the samples go).
        for tick in [">0%<", ">90%<"] { #expect(page.contains(tick), "\(tick)") }
        #expect(page.contains("<span class=\"kw\">SETTINGS</span>"), "the script is highlighted")
        #expect(!page.contains("<script"), "no scripts")

        let again = try await BinaryRunner.run(["report", ws.path("r.json"), "-o", ws.path("again.html")])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Self.elements(ws.path("again.html"))["svg"] == counts["svg"])
        let bad = try await BinaryRunner.run(["report", path, "-o", ws.path("x.html")])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("is not a readable Loadshear JSON report"), "\(bad.stderr)")
    }

    static func chromiumAndPillow() async -> Bool {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"),
            let r = try? await BinaryRunner.run(
                ["python3", "-c", "import PIL"], executable: URL(fileURLWithPath: "/usr/bin/env"), timeout: 60)
        else { return false }
        return r.status == 0
    }

    /// A real browser draws the page: headless Chromium renders it to a PNG, and the series'
    /// colours (the charts' lines) are on it.
    @Test(
        .enabled(
            "headless Chromium (Debian: chromium) or Pillow (PyPI) is not installed; .ci/run installs both",
            { await HTMLReportTests.chromiumAndPillow() }))
    func chromiumRendersTheCharts() async throws {
        let ws = Workspace()
        let report = """
            {"version": 2, "durationSeconds": 2, "settings": {"name": "shot", "sessions": 2, "shards": 1},
             "totals": {"bytesSent": 4000, "connectionsSucceeded": 2},
             "intervals": [
               {"elapsedSeconds": 0.5, "intervalSeconds": 0.5, "increment": {"bytesSent": 1000, "connectionsActive": 2},
                "latencyHistograms": {"send": [[100, 5], [300, 1]]}},
               {"elapsedSeconds": 1.0, "intervalSeconds": 0.5, "increment": {"bytesSent": 2000},
                "latencyHistograms": {"send": [[120, 5], [900, 1]]}},
               {"elapsedSeconds": 1.5, "intervalSeconds": 0.5, "increment": {"bytesSent": 1000, "connectionsActive": -2},
                "latencyHistograms": {"send": [[110, 5], [500, 1]]}}],
             "latencyMicroseconds": {"send": {"samples": 18, "p50": 110, "p90": 500, "p99": 900, "p999": 900,
                                              "max": 900, "histogram": [[100, 5], [110, 5], [120, 5], [300, 1], [500, 1], [900, 1]]}}}
            """
        ws.write("r.json", Array(report.utf8))
        let r = try await BinaryRunner.run(["report", ws.path("r.json"), "-o", ws.path("r.html")])
        #expect(r.status == 0, "\(r.stderr)")
        // The same page with its lines hidden: the difference in the series' colours is the
        // lines the browser drew (labels in those colours are on both).
        let page = try String(contentsOfFile: ws.path("r.html"), encoding: .utf8)
        ws.write(
            "hidden.html",
            Array(page.replacingOccurrences(of: "<polyline ", with: "<polyline visibility=\"hidden\" ").utf8))
        func colours(_ name: String) async throws -> [Int] {
            let shot = try await BinaryRunner.run(
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,1400",
                    "--screenshot=\(ws.path(name + ".png"))", "file://\(ws.path(name + ".html"))",
                ], executable: URL(fileURLWithPath: "/usr/bin/chromium"), timeout: 120)
            #expect(FileManager.default.fileExists(atPath: ws.path(name + ".png")), "\(shot.stderr)")
            // Pixels near the first series' blue (#1f77b4) and the second's red (#d62728).
            let count = try await BinaryRunner.run(
                [
                    "python3", "-c",
                    "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); "
                        + "b = im.tobytes(); px = list(zip(b[0::3], b[1::3], b[2::3])); "
                        + "near = lambda c: sum(1 for p in px if all(abs(p[i] - c[i]) < 40 for i in range(3))); "
                        + "print(near((0x1f, 0x77, 0xb4)), near((0xd6, 0x27, 0x28)))",
                    ws.path(name + ".png"),
                ], executable: URL(fileURLWithPath: "/usr/bin/env"))
            let counts = count.stdout.split(separator: " ").compactMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            #expect(counts.count == 2, "\(count.stdout)\(count.stderr)")
            return counts.count == 2 ? counts : [0, 0]
        }
        let drawn = try await colours("r")
        let hidden = try await colours("hidden")
        #expect(drawn[0] > hidden[0] + 300 && drawn[1] > hidden[1] + 300, "lines drawn: \(drawn) vs \(hidden) without")
    }

    /// The totals carry what the summary says about requests and SEQUENCE: unmatched,
    /// duplicate and reordered replies; lost, reordered and duplicate numbers with the loss,
    /// and the worst session.
    @Test func theTotalsShowRequestAndSequenceBreakdowns() async throws {
        let ws = Workspace()
        let report = """
            {"version": 2, "durationSeconds": 2, "settings": {"name": "m", "sessions": 1, "shards": 1},
             "totals": {"bytesSent": 100, "connectionsSucceeded": 1, "requests": 100, "replies": 90,
                        "timeouts": 10, "unmatched": 3, "duplicates": 20, "repliesReordered": 4,
                        "sequenced": 196, "sequenceLost": 24, "sequenceReordered": 8, "sequenceDuplicates": 20,
                        "sequenceWorstLost": 9, "sequenceWorstReordered": 5, "sequenceWorstDuplicates": 6},
             "latencyMicroseconds": {}}
            """
        ws.write("m.json", Array(report.utf8))
        let r = try await BinaryRunner.run(["report", ws.path("m.json"), "-o", ws.path("m.html")])
        #expect(r.status == 0, "\(r.stderr)")
        let page = try String(contentsOfFile: ws.path("m.html"), encoding: .utf8)
        #expect(page.contains("3 matched no request, 20 duplicates, 4 reordered"), "\(page)")
        #expect(page.contains("196 numbered messages: 24 lost (12.000%), 8 reordered, 20 duplicates"))
        #expect(page.contains("9 lost, 5 reordered, 6 duplicates"))
    }

    /// A report without an interval series (format version 1) still renders, and says why
    /// it has no charts over time.
    @Test func aVersionOneReportRenders() async throws {
        let ws = Workspace()
        let old = """
            {"version": 1, "durationSeconds": 2, "settings": {"name": "old", "sessions": 1, "shards": 1},
             "totals": {"bytesSent": 100, "connectionsSucceeded": 1},
             "latencyMicroseconds": {"connect": {"samples": 1, "p50": 90, "p90": 90, "p99": 90, "p999": 90,
                                                 "max": 90, "histogram": [[90, 1]]}}}
            """
        ws.write("old.json", Array(old.utf8))
        let r = try await BinaryRunner.run(["report", ws.path("old.json"), "-o", ws.path("old.html")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.elements(ws.path("old.html"))["svg"] == 1)
        #expect(try String(contentsOfFile: ws.path("old.html"), encoding: .utf8).contains("no interval series"))
    }
}
