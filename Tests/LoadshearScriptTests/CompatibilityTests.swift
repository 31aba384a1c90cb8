import Foundation
import LoadshearTestSupport
import Testing

@testable import LoadshearScript

/// Scripts written for the C++ original run unchanged: its syntax, as its docs show it.
@Suite struct CompatibilityTests {
    /// Quoted numbers and durations are values, as in the original's syntax docs.
    @Test func quotedNumbersAndDurations() throws {
        let text = """
            SETTINGS q {
                SESSION = "TCP"
                PORT = "55555"
                HEADERSIZE = "8"
                BODYMAX = "64"
                READ = "true"
                SAMPLERATE = "10"
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p1 : "hello.bin" }
            }
            ORCHESTRATOR q {
                CREATE "10" OFFSET "0ms"
                CONNECT "0":"10" OFFSET "500ms"
                SEND 0:10 p1 COPIES "3" COUNTER 0:"4" "big":"2" OFFSET "1s"
            }

            """
        let (p, r, _) = plan(text)
        let planned = try #require(p, "\(r)")
        #expect(planned.settings.port == 55555)
        #expect(planned.settings.headerSize == 8)
        #expect(planned.settings.sampleRate == 10)
        #expect(planned.sessionCount == 10)
        #expect(planned.actions.map(\.at) == [0, 500_000_000, 1_500_000_000])
        #expect(planned.sends.first?.copies == 3)
        #expect(planned.sends.first?.counter?.step == 2)
    }

    /// Line breaks are whitespace: modifiers on the following lines, two fields or two
    /// actions on one line, a block name and its brace on separate lines.
    @Test func lineBreaksAreWhitespace() throws {
        let text = """
            SETTINGS w
            {
                SESSION = "TCP" PORT = 5000
                ENDPOINTS
                { 127.0.0.1 }
                PACKETS { p1 : "hello.bin", p2 : "ping.bin" }
            }
            ORCHESTRATOR w {
                CREATE 10 OFFSET 0ms CONNECT 0:10
                    OFFSET 100ms
                SEND 0:10 p2 COPIES 2
                    COUNTER 0:4 "big":1
                    TIMESTAMP 8:8
                        "little":"microseconds"
                    OFFSET 1s
                DISCONNECT 0:10 }

            """
        let (p, r, _) = plan(text)
        let planned = try #require(p, "\(r)")
        #expect(planned.settings.port == 5000)
        #expect(planned.actions.map(\.kind.name) == ["CREATE", "CONNECT", "SEND", "DISCONNECT"])
        #expect(planned.actions.map(\.at) == [0, 100_000_000, 1_100_000_000, 1_350_000_000])
        let send = try #require(planned.sends.first)
        #expect(send.counter?.offset == 0 && send.timestamp?.offset == 8 && send.timestamp?.unit == .microseconds)
    }

    /// An SNI with a '_' is accepted when the certificate is not verified (it is only sent),
    /// wherever VERIFY stands in the block.
    @Test func anUnderscoredSNIIsFineWithoutVerification() throws {
        let text = script(
            settings: "    TLS { SNI = \"my_svc.internal\" VERIFY = \"false\" }",
            base: "    SESSION = \"TLS\"\n    PORT = 1\n    ENDPOINTS { 127.0.0.1 }\n    PACKETS { p1 : \"hello.bin\" }"
        )
        let (p, r, _) = plan(text)
        #expect(p != nil, "\(r)")
        #expect(p?.settings.tls?.serverName == "my_svc.internal")
    }

    /// An unterminated string is one error: the field still counts as given, and what its
    /// broken value would make of the field (here, an unknown SESSION) is not reported.
    @Test func anUnterminatedStringIsOneError() {
        let text = script(
            base: """
                    SESSION = "TCP
                    PORT = 5000
                    ENDPOINTS { 127.0.0.1 }
                    PACKETS { p1 : "hello.bin" }
                """)
        let (p, r, _) = plan(text)
        #expect(p == nil)
        #expect(r.contains("test.ldsh:2:15: error: unterminated string"), "\(r)")
        #expect(r.components(separatedBy: "error:").count == 2, "\(r)")
    }

    /// Errors in statements that span lines still point at the token at fault, and the next
    /// statement on its own line is checked on its own.
    @Test func errorsStayLocatedAcrossLines() {
        let text = """
            SETTINGS e {
                SESSION = "TCP"
                PORT = 5000
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p1 : "hello.bin" }
            }
            ORCHESTRATOR e {
                CREATE 10
                CONNECT 0:10
                SEND 0:10 p1 COPIES 1
                    COUNTER 0:4 "middle":1
                CONECT 0:10
            }

            """
        let (p, r, _) = plan(text)
        #expect(p == nil)
        #expect(
            r.contains("test.ldsh:11:21: error: the COUNTER byte order must be \"big\" or \"little\", got \"middle\""),
            "\(r)")
        #expect(r.contains("test.ldsh:12:5: error: unknown action 'CONECT'; did you mean CONNECT?"), "\(r)")
    }

    /// DISCONNECT of a range with never-connected sessions skips them; the dry run counts them.
    @Test func disconnectSkipsNeverConnectedSessions() throws {
        let (p, r, _) = plan(script(actions: "    CONNECT 0:5\n    DISCONNECT 0:10"))
        let planned = try #require(p, "\(r)")
        #expect(planned.actions.last?.kind == .disconnect(skipped: 5))
        #expect(
            planned.dryRunText().contains("DISCONNECT sessions 0:10 (0-9, 10 sessions) (5 never connected: skipped)"))
    }
}
