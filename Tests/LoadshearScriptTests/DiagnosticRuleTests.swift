import LoadshearTestSupport
import Testing

@testable import LoadshearScript

/// One rule of the language: a script that breaks it, the message it must get and the line
/// the diagnostic must point at.
struct Rule: CustomTestStringConvertible, Sendable {
    var name: String
    var script: String
    var message: String
    var line: Int
    var testDescription: String { name }
}

let fieldsNoPackets = """
        SESSION = "TCP"
        PORT = 5000
        ENDPOINTS { 127.0.0.1 }
    """

// In `script(...)`: line 1 SETTINGS, 2-5 base fields (PACKETS on 5), 6 extra settings,
// 7 '}', 8 ORCHESTRATOR, 9 CREATE, 10+ actions.
let rules: [Rule] = [
    Rule(
        name: "unterminated string", script: script(settings: "    HANDLER = \"abc"), message: "unterminated string",
        line: 6),
    Rule(
        name: "unknown field suggests", script: script(settings: "    BODYMAXX = 5"),
        message: "unknown SETTINGS field 'BODYMAXX'; did you mean BODYMAX?", line: 6),
    Rule(
        name: "repeated field", script: script(settings: "    PORT = 6000"),
        message: "PORT is set twice; the first setting is at line 3", line: 6),
    Rule(
        name: "missing SESSION",
        script: script(base: "    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }\n"),
        message: "missing the required field SESSION", line: 1),
    Rule(
        name: "missing PORT",
        script: script(
            base: "    SESSION = \"TCP\"\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }\n"),
        message: "missing the required field PORT", line: 1),
    Rule(
        name: "missing ENDPOINTS",
        script: script(base: "    SESSION = \"TCP\"\n    PORT = 1\n    PACKETS { p1 : \"hello.bin\" }\n"),
        message: "missing the required field ENDPOINTS", line: 1),
    Rule(
        name: "bad SESSION",
        script: script(
            settings: "",
            base:
                "    SESSION = \"SCTP\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"),
        message: "SESSION must be \"TCP\" or \"UDP\" or \"TLS\", got \"SCTP\"", line: 2),
    Rule(
        name: "unquoted SESSION",
        script: script(
            settings: "",
            base: "    SESSION = TCP\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"),
        message: "SESSION must be \"TCP\" or \"UDP\" or \"TLS\" in quotes", line: 2),
    Rule(
        name: "TLS block on a TCP script",
        script: script(settings: "    TLS { VERIFY = \"false\" }"),
        message: "the TLS block applies to TLS sessions; this script has SESSION = \"TCP\"", line: 6),
    Rule(
        name: "unknown TLS setting",
        script: script(
            settings: "    TLS { SNII = \"x\" }",
            base: "    SESSION = \"TLS\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ),
        message: "unknown TLS setting 'SNII'; did you mean SNI?", line: 6),
    Rule(
        name: "SNI as an address",
        script: script(
            settings: "    TLS { SNI = \"127.0.0.1\" }",
            base: "    SESSION = \"TLS\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ),
        message: "SNI must be a host name, not an address ('127.0.0.1')", line: 6),
    Rule(
        name: "SNI not a host name",
        script: script(
            settings: "    TLS { SNI = \"a b\" }",
            base: "    SESSION = \"TLS\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ),
        message: "SNI 'a b' is not a host name", line: 6),
    Rule(
        name: "SNI with an underscore, verified",
        script: script(
            settings: "    TLS { SNI = \"my_svc.internal\" }",
            base: "    SESSION = \"TLS\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ),
        message: "SNI 'my_svc.internal' has a '_', which no certificate can be verified against", line: 6),
    Rule(
        name: "PORT out of range",
        script: script(
            settings: "",
            base:
                "    SESSION = \"TCP\"\n    PORT = 70000\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ), message: "PORT must be between 1 and 65535, got 70000", line: 3),
    Rule(
        name: "PORT zero",
        script: script(
            settings: "",
            base: "    SESSION = \"TCP\"\n    PORT = 0\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ), message: "PORT must be between 1 and 65535, got 0", line: 3),
    Rule(
        name: "READ without HEADERSIZE", script: script(settings: "    READ = \"true\"\n    BODYMAX = 10"),
        message: "READ = \"true\" needs HEADERSIZE", line: 6),
    Rule(
        name: "READ without BODYMAX", script: script(settings: "    READ = \"true\"\n    HEADERSIZE = 8"),
        message: "READ = \"true\" needs BODYMAX", line: 6),
    Rule(
        name: "HEADERSIZE 0", script: script(settings: "    HEADERSIZE = 0"),
        message: "HEADERSIZE must be greater than 0", line: 6),
    Rule(
        name: "BODYMAX 0", script: script(settings: "    BODYMAX = 0"), message: "BODYMAX must be greater than 0",
        line: 6),
    Rule(name: "SHARDS 0", script: script(settings: "    SHARDS = 0"), message: "SHARDS must be at least 1", line: 6),
    Rule(
        name: "SHARDS more than sessions", script: script(settings: "    SHARDS = 11"),
        message: "SHARDS = 11 is more than the 10 created sessions", line: 6),
    Rule(
        name: "READ not boolean", script: script(settings: "    READ = \"yes\""),
        message: "READ must be \"true\" or \"false\", got \"yes\"", line: 6),
    Rule(
        name: "choice in the wrong case",
        script: script(
            settings: "",
            base:
                "    SESSION = \"tcp\"\n    PORT = 80\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"),
        message: "SESSION must be \"TCP\" or \"UDP\" or \"TLS\", got \"tcp\"; did you mean \"TCP\"?", line: 2),
    Rule(
        name: "boolean in the wrong case", script: script(settings: "    READ = \"TRUE\""),
        message: "did you mean \"true\"?", line: 6),
    Rule(
        name: "byte order in the wrong case",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p2 COPIES 1 COUNTER 0:4 \"LITTLE\":1"),
        message: "did you mean \"little\"?", line: 11),
    Rule(
        name: "quoted number that is not one",
        script: script(
            settings: "",
            base:
                "    SESSION = \"TCP\"\n    PORT = \"8o\"\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ), message: "PORT must be a whole number, got '8o'", line: 3),
    Rule(
        name: "quoted number that is empty",
        script: script(
            settings: "",
            base:
                "    SESSION = \"TCP\"\n    PORT = \"\"\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        ), message: "PORT must be a whole number, got ''", line: 3),
    Rule(
        name: "HANDLER NOP in the wrong case", script: script(settings: "    HANDLER = \"nop\""),
        message: "got \"nop\"; did you mean \"NOP\"?", line: 6),
    Rule(
        name: "no ENDPOINTS entries",
        script: script(
            settings: "",
            base: "    SESSION = \"TCP\"\n    PORT = 1\n    ENDPOINTS { }\n    PACKETS { p1 : \"hello.bin\" }"),
        message: "ENDPOINTS is empty", line: 4),
    Rule(
        name: "endpoint not IPv4",
        script: script(
            settings: "",
            base: "    SESSION = \"TCP\"\n    PORT = 1\n    ENDPOINTS { 127.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"),
        message: "'127.0.1' is not an IPv4 address", line: 4),
    Rule(
        name: "endpoint unresolvable",
        script: script(
            settings: "",
            base:
                "    SESSION = \"TCP\"\n    PORT = 1\n    ENDPOINTS { \"nowhere.invalid\" }\n    PACKETS { p1 : \"hello.bin\" }"
        ), message: "cannot resolve endpoint 'nowhere.invalid'", line: 4),
    Rule(
        name: "packet file missing",
        script: script(settings: "", base: fieldsNoPackets + "\n    PACKETS { p1 : \"missing.bin\" }"),
        message: "packet file not found", line: 5),
    Rule(
        name: "packet file empty",
        script: script(settings: "", base: fieldsNoPackets + "\n    PACKETS { p1 : \"empty.bin\" }"),
        message: "packet file is empty", line: 5),
    Rule(
        name: "packet file is a directory",
        script: script(settings: "", base: fieldsNoPackets + "\n    PACKETS { p1 : \".\" }"),
        message: "packet file is a directory", line: 5),
    Rule(
        name: "packet id twice",
        script: script(settings: "", base: fieldsNoPackets + "\n    PACKETS { p1 : \"hello.bin\", p1 : \"ping.bin\" }"),
        message: "packet id 'p1' is defined twice", line: 5),
    Rule(
        name: "handler not wasm", script: script(settings: "    HANDLER = \"hello.bin\""),
        message: "HANDLER must be \"NOP\" or a path ending in .wasm", line: 6),
    Rule(
        name: "handler missing", script: script(settings: "    HANDLER = \"nope.wasm\""),
        message: "handler module not found", line: 6),
    Rule(
        name: "ORCHESTRATOR names unknown SETTINGS",
        script: script().replacingOccurrences(of: "ORCHESTRATOR t", with: "ORCHESTRATOR u"),
        message: "ORCHESTRATOR 'u' names no SETTINGS block; expected 't'", line: 8),
    Rule(name: "no actions", script: script(actions: "", create: ""), message: "has no actions", line: 8),
    Rule(name: "CREATE missing", script: script(create: ""), message: "has no CREATE", line: 10),
    Rule(
        name: "CREATE twice", script: script(actions: "    CREATE 5\n    CONNECT 0:10"),
        message: "CREATE appears twice", line: 10),
    Rule(
        name: "CREATE not first", script: script(actions: "    CREATE 5", create: "    CONNECT 0:1"),
        message: "CREATE must be the first action", line: 10),
    Rule(
        name: "CREATE zero", script: script(actions: "", create: "    CREATE 0"),
        message: "CREATE needs at least 1 session", line: 9),
    Rule(
        name: "range out of bounds", script: script(actions: "    CONNECT 0:11"),
        message: "range 0:11 goes past the 10 created sessions", line: 10),
    Rule(name: "range empty", script: script(actions: "    CONNECT 3:3"), message: "range 3:3 is empty", line: 10),
    Rule(
        name: "range backwards", script: script(actions: "    CONNECT 5:3"), message: "range 5:3 is backwards", line: 10
    ),
    Rule(
        name: "CONNECT twice", script: script(actions: "    CONNECT 0:10\n    CONNECT 5:6"),
        message: "session 5 is already connected", line: 11),
    Rule(
        name: "SEND not connected", script: script(actions: "    CONNECT 0:5\n    SEND 0:10 p1 COPIES 1"),
        message: "SEND 0:10: session 5 is not connected by then", line: 11),
    Rule(
        name: "FLOOD not connected", script: script(actions: "    FLOOD 0:10"),
        message: "FLOOD 0:10: session 0 is not connected", line: 10),
    Rule(
        name: "DRAIN not connected", script: script(actions: "    DRAIN 2:4"),
        message: "DRAIN 2:4: session 2 is not connected", line: 10),
    Rule(
        name: "DISCONNECT twice", script: script(actions: "    CONNECT 0:10\n    DISCONNECT 0:10\n    DISCONNECT 9:10"),
        message: "session 9 is already disconnected", line: 12),
    Rule(
        name: "SEND after DISCONNECT",
        script: script(actions: "    CONNECT 0:10\n    DISCONNECT 0:10\n    SEND 0:1 p1 COPIES 1"),
        message: "session 0 is already disconnected", line: 12),
    Rule(
        name: "undefined packet", script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p9 COPIES 1"),
        message: "packet 'p9' is not defined in PACKETS; did you mean 'p1'?", line: 11),
    Rule(
        name: "DRAIN names the DRAIN that drained the session",
        script: script(actions: "    CONNECT 0:10\n    DRAIN 0:5\n    DRAIN 5:10\n    SEND 2:3 p1 COPIES 1"),
        message: "session 2 is draining by then (DRAIN at line 11)", line: 13),
    Rule(
        name: "misspelt lower-case packet id",
        script: script(
            actions: "    CONNECT 0:10\n    SEND 0:10 pnig COPIES 1",
            base:
                "    SESSION = \"TCP\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { ping : \"ping.bin\" }"
        ),
        message: "packet 'pnig' is not defined in PACKETS; did you mean 'ping'?", line: 11),
    Rule(
        name: "SEND without PACKETS", script: script(base: fieldsNoPackets),
        message: "SEND needs packets, but SETTINGS has no PACKETS", line: 10),
    Rule(
        name: "SEND without COPIES", script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p1"),
        message: "SEND needs COPIES", line: 11),
    Rule(
        name: "COPIES zero", script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p1 COPIES 0"),
        message: "COPIES must be at least 1", line: 11),
    Rule(
        name: "COUNTER length 0",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p1 COPIES 1 COUNTER 0:0 \"big\":1"),
        message: "the COUNTER length must be 1 to 8 bytes, got 0", line: 11),
    Rule(
        name: "COUNTER length 9",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p2 COPIES 1 COUNTER 0:9 \"big\":1"),
        message: "the COUNTER length must be 1 to 8 bytes, got 9", line: 11),
    Rule(
        name: "COUNTER past the end",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p1 COPIES 1 COUNTER 8:4 \"big\":1"),
        message: "COUNTER bytes 8..<12 go past the end of packet 'p1' (11 bytes)", line: 11),
    Rule(
        name: "TIMESTAMP length 0",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p1 COPIES 1 TIMESTAMP 0:0 \"big\":\"seconds\""),
        message: "the TIMESTAMP length must be 1 to 8 bytes", line: 11),
    Rule(
        name: "TIMESTAMP past the end",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p1 COPIES 1 TIMESTAMP 4:8 \"big\":\"seconds\""),
        message: "TIMESTAMP bytes 4..<12 go past the end", line: 11),
    Rule(
        name: "overlapping patches",
        script: script(
            actions:
                "    CONNECT 0:10\n    SEND 0:10 p2 COPIES 1 COUNTER 0:4 \"big\":1 TIMESTAMP 2:4 \"big\":\"seconds\""),
        message: "overlap TIMESTAMP bytes 2..<6", line: 11),
    Rule(
        name: "bad endianness",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p2 COPIES 1 COUNTER 0:4 \"middle\":1"),
        message: "the COUNTER byte order must be \"big\" or \"little\", got \"middle\"", line: 11),
    Rule(
        name: "bad timestamp unit",
        script: script(actions: "    CONNECT 0:10\n    SEND 0:10 p2 COPIES 1 TIMESTAMP 0:4 \"big\":\"fortnights\""),
        message: "the TIMESTAMP unit must be", line: 11),
    Rule(
        name: "COUNTER twice",
        script: script(
            actions: "    CONNECT 0:10\n    SEND 0:10 p2 COPIES 1 COUNTER 0:4 \"big\":1 COUNTER 4:4 \"big\":1"),
        message: "a SEND takes at most one COUNTER", line: 11),
    Rule(
        name: "bad time unit", script: script(actions: "    CONNECT 0:10 OFFSET 5sec"),
        message: "unknown time unit 'sec' in '5sec'", line: 10),
    Rule(
        name: "bare number duration", script: script(actions: "    CONNECT 0:10 OFFSET 100"),
        message: "OFFSET needs a time unit: write 100ms or 100s", line: 10),
    Rule(
        name: "OFFSETs adding past the longest timeline",
        script: script(actions: "    CONNECT 0:10 OFFSET 2562047h\n    DISCONNECT 0:10 OFFSET 2562047h"),
        message: "the OFFSETs add up to more than the longest timeline (2562047h)", line: 11),
    Rule(
        name: "unsupported ext action", script: script(actions: "    CONNECT 0:10\n    RATE 0:10 100"),
        message: "RATE is not supported yet", line: 11),
    Rule(
        name: "unsupported ext field", script: script(settings: "    RATE = 5"),
        message: "RATE is not supported yet", line: 6),
    Rule(
        name: "unsupported ext modifier", script: script(actions: "    CONNECT 0:10 RECONNECT"),
        message: "RECONNECT is not supported yet", line: 10),
    Rule(
        name: "unknown action suggests", script: script(actions: "    CONECT 0:10"),
        message: "unknown action 'CONECT'; did you mean CONNECT?", line: 10),
    Rule(
        name: "HEADER_LENGTH outside the header",
        script: script(
            settings: "    READ = \"true\"\n    HEADERSIZE = 4\n    BODYMAX = 10\n    HEADER_LENGTH = 2:4 \"big\""),
        message: "HEADER_LENGTH bytes 2..<6 lie outside the 4-byte header", line: 9),
    Rule(
        name: "HEADER_LENGTH size 9", script: script(settings: "    HEADER_LENGTH = 0:9 \"big\""),
        message: "the HEADER_LENGTH size must be 1 to 8 bytes", line: 6),
    Rule(
        name: "UDP packet too large",
        script: script(
            settings: "",
            base: "    SESSION = \"UDP\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"big.bin\" }"),
        message: "larger than the 65507-byte maximum UDP datagram", line: 5),
    Rule(
        name: "stray token after action", script: script(actions: "    CONNECT 0:10 OFFSET 1s 5"),
        message: "unexpected '5' after CONNECT", line: 10),
    Rule(
        name: "missing brace", script: "SETTINGS t {\n    PORT = 1\nORCHESTRATOR t {\n    CREATE 1\n}\n",
        message: "missing '}' to close the SETTINGS block", line: 1),
    Rule(
        name: "no SETTINGS block", script: "ORCHESTRATOR t {\n    CREATE 1\n}\n",
        message: "the script has no SETTINGS block", line: 1),
    Rule(
        name: "no ORCHESTRATOR block",
        script: "SETTINGS t {\n    SESSION = \"TCP\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n}\n",
        message: "the script has no ORCHESTRATOR block", line: 6),
]

@Suite struct DiagnosticRuleTests {
    @Test(arguments: rules)
    func ruleIsEnforcedAtTheRightLine(_ rule: Rule) throws {
        let ws = Workspace.withPackets()
        ws.write("big.bin", [UInt8](repeating: 1, count: 65_508))
        let (p, rendered, bag) = plan(rule.script, in: ws)
        #expect(p == nil, "expected errors for \(rule.name)")
        let matching = bag.diagnostics.filter { $0.severity == .error && $0.message.contains(rule.message) }
        #expect(!matching.isEmpty, "no error containing '\(rule.message)'; got:\n\(rendered)")
        let file = SourceFile(path: "x", text: rule.script)
        if let first = matching.first {
            #expect(file.location(of: first.range.start).line == rule.line, "\(rendered)")
        }
    }

    @Test func independentErrorsAreAllReported() {
        let s = script(settings: "    SHARDS = 0\n    BODYMAX = 0", actions: "    CONNECT 0:11\n    FLOOD 3:3")
        let (_, _, bag) = plan(s)
        #expect(bag.errorCount == 4)
    }

    @Test func errorsStopAtTheLimit() {
        let lines = (0..<40).map { _ in "    FOO = 1" }.joined(separator: "\n")
        let (_, rendered, bag) = plan(script(settings: lines))
        #expect(bag.diagnostics.count == 20)
        #expect(bag.stopped, "the rest of the script is not read")
        #expect(rendered.contains("checking stopped after 20 errors"))
    }

    /// Megabytes of garbage are rejected after the diagnostics limit, without reading on.
    @Test func garbageStopsAtTheLimitWithoutReadingOn() {
        var rng = SplitMix64(seed: 9)
        let bytes = (0..<5_000_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var d = DiagnosticBag()
        let syntax = Parser.parse(SourceFile(path: "g.ldsh", bytes: bytes), diagnostics: &d)
        #expect(d.stopped)
        #expect(d.diagnostics.count == 20)
        #expect(syntax.settings.isEmpty && syntax.orchestrators.isEmpty)
    }

    @Test func aNulInAQuotedPathIsAnError() {
        let ws = Workspace.withPackets()
        let base = """
                SESSION = "TCP"
                PORT = 5000
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p1 : "hello.bin\u{0}.txt", p2 : "ping.bin" }
            """
        let (p, rendered, _) = plan(script(base: base), in: ws)
        #expect(p == nil)
        #expect(rendered.contains("the path contains a NUL byte"), "\(rendered)")
    }

    @Test func handlerWithoutHandleHeaderNeedsHeaderLength() {
        struct NoHeader: HandlerInspector {
            func inspect(_ bytes: [UInt8]) -> HandlerInspection {
                HandlerInspection(
                    exports: ["memory", "alloc", "dealloc", "handle_body"], hasHandleHeader: false, problems: [])
            }
        }
        var o = testOptions()
        o.handlerInspector = NoHeader()
        let (p, rendered, _) = plan(
            script(
                settings: "    READ = \"true\"\n    HEADERSIZE = 8\n    BODYMAX = 64\n    HANDLER = \"handler.wasm\""),
            options: o)
        #expect(p == nil)
        #expect(rendered.contains("HEADER_LENGTH = <offset>:<size> \"big\"|\"little\" is required"))
        let (p2, _, _) = plan(
            script(
                settings:
                    "    READ = \"true\"\n    HEADERSIZE = 8\n    BODYMAX = 64\n    HANDLER = \"handler.wasm\"\n    HEADER_LENGTH = 4:4 \"big\""
            ), options: o)
        #expect(p2 != nil)
    }

    @Test func inspectorProblemsAreLocatedOnTheHandlerLine() {
        struct Bad: HandlerInspector {
            func inspect(_ bytes: [UInt8]) -> HandlerInspection {
                HandlerInspection(
                    exports: [], hasHandleHeader: false, problems: ["export 'alloc' must be (i32) -> i32"])
            }
        }
        var o = testOptions()
        o.handlerInspector = Bad()
        let (_, rendered, _) = plan(script(settings: "    HANDLER = \"handler.wasm\""), options: o)
        #expect(rendered.contains("test.ldsh:6:15: error: export 'alloc' must be (i32) -> i32"))
    }
}
