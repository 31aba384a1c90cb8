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
        defer { target.process.terminate() }
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
        let counts = try Self.elements(ws.path("r.html"))
        // Throughput, connections, response and connect per 500 ms; percentile curves.
        #expect((counts["svg"] ?? 0) >= 6, "\(counts)")
        #expect((counts["polyline"] ?? 0) >= 8)
        #expect((counts["h2"] ?? 0) >= 5)
        let page = try String(contentsOfFile: ws.path("r.html"), encoding: .utf8)
        for section in ["Thresholds", "Over time", "Latency", "Shards", "Script", "response.p99 &lt; 5s"] {
            #expect(page.contains(section), "\(section)")
        }
        #expect(page.contains("<span class=\"kw\">SETTINGS</span>"), "the script is highlighted")
        #expect(!page.contains("<script"), "no scripts")

        let again = try await BinaryRunner.run(["report", ws.path("r.json"), "-o", ws.path("again.html")])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Self.elements(ws.path("again.html"))["svg"] == counts["svg"])
        let bad = try await BinaryRunner.run(["report", path, "-o", ws.path("x.html")])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("is not a readable Loadshear JSON report"), "\(bad.stderr)")
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
