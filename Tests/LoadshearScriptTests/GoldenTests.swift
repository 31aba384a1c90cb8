import Testing

@testable import LoadshearScript

@Suite struct GoldenTests {
    @Test func diagnosticRendering() {
        let text = """
            SETTINGS t {
                SESSION = "TCP"
                PORT = 70000
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p1 : "hello.bin" }
            }
            ORCHESTRATOR t {
                CREATE 10
                CONNECT 0:10 OFFSET 100
            \tSEND 0:10 p1 COPIES 1 COUNTR 0:1
            }

            """
        let (_, rendered, _) = plan(text)
        #expect(
            rendered == """
                test.ldsh:3:12: error: PORT must be between 1 and 65535, got 70000
                    PORT = 70000
                           ^~~~~
                test.ldsh:9:25: error: OFFSET needs a time unit: write 100ms or 100s (units: us, ms, s, m or h)
                    CONNECT 0:10 OFFSET 100
                                        ^~~
                test.ldsh:10:24: error: unexpected 'COUNTR' after SEND; expected COPIES, COUNTER, TIMESTAMP, OFFSET or the next action
                \tSEND 0:10 p1 COPIES 1 COUNTR 0:1
                \t                      ^~~~~~

                """)
    }

    @Test func colouredRenderingOnlyWhenAsked() {
        let file = SourceFile(path: "f", text: "PORT = 1\n")
        let d = Diagnostic.error("x", at: SourceRange(start: 0, end: 4))
        #expect(!DiagnosticRenderer(useColor: false).render(d, in: file).contains("\u{1B}"))
        #expect(DiagnosticRenderer(useColor: true).render(d, in: file).contains("\u{1B}[1;31merror:"))
    }

    @Test func dryRunText() throws {
        let text = """
            SETTINGS demo {
                SESSION = "TCP"
                PORT = 55555
                HEADERSIZE = 8
                BODYMAX = 1024
                READ = "true"
                SHARDS = 3
                ENDPOINTS { "localhost", 127.0.0.1 }
                PACKETS { p1 : "hello.bin", p2 : "ping.bin" }
            }
            ORCHESTRATOR demo {
                CREATE 100 OFFSET 0ms
                CONNECT 0:50 OFFSET 100ms
                CONNECT 50:100
                SEND 0:100 p1 COPIES 5 TIMESTAMP 0:8 "little":"seconds" OFFSET 200ms
                SEND 0:40 p2 COPIES 2 COUNTER 4:4 "big":2
                FLOOD 0:100 OFFSET 1.5s
                DRAIN 0:100 OFFSET 500ms
                DISCONNECT 0:100 OFFSET 1m
            }

            """
        let (p, rendered, _) = plan(text)
        let planned = try #require(p, "\(rendered)")
        let out = planned.dryRunText().replacingOccurrences(of: planned.scriptPath, with: "demo.ldsh")
        #expect(
            out == """
                Loadshear plan: demo.ldsh

                Settings 'demo'
                  session       TCP
                  port          55555
                  read          true (header 8 bytes, body max 1024 bytes)
                  body length   none: header-only frames of 8 bytes (NOP without HEADER_LENGTH)
                  repeat        false
                  sample rate   first packet and every 100th
                  shards        3
                  connect window 1024 connects in flight per shard
                  handler       NOP

                Endpoints (2 addresses, used round-robin by session index)
                  localhost -> 127.0.0.1:55555, [::1]:55555
                  127.0.0.1 -> 127.0.0.1:55555

                Sessions 100 on 3 shards
                  shard 0  sessions 0:34 (0-33, 34 sessions)
                  shard 1  sessions 34:67 (34-66, 33 sessions)
                  shard 2  sessions 67:100 (67-99, 33 sessions)

                Packets
                  p1  11 bytes  hello.bin  [68 65 6c 6c 6f 20 77 6f 72 6c 64]
                  p2  16 bytes  ping.bin  [00 00 00 01 00 00 00 08 50 49 4e 47 50 49 4e 47]

                Timeline (8 actions, absolute start times)
                   t=0.000s  CREATE     sessions 0:100 (0-99, 100 sessions)  (line 12, +0ms)
                   t=0.100s  CONNECT    sessions 0:50 (0-49, 50 sessions)  (line 13, +100ms)
                   t=0.350s  CONNECT    sessions 50:100 (50-99, 50 sessions)  (line 14, +250ms)
                   t=0.550s  SEND       sessions 0:100 (0-99, 100 sessions) p1 COPIES 5 TIMESTAMP 0:8 little seconds  (line 15, +200ms)
                   t=0.800s  SEND       sessions 0:40 (0-39, 40 sessions) p2 COPIES 2 COUNTER 4:4 big step 2  (line 16, +250ms)
                   t=2.300s  FLOOD      sessions 0:100 (0-99, 100 sessions)  (line 17, +1.5s)
                   t=2.800s  DRAIN      sessions 0:100 (0-99, 100 sessions)  (line 18, +500ms)
                  t=62.800s  DISCONNECT sessions 0:100 (0-99, 100 sessions)  (line 19, +1m)
                  run ends after the last action, at t=62.800s

                Payloads per session
                  sessions 0:40 (0-39, 40 sessions): 7 payloads (p1×5, p2×2)
                  sessions 40:100 (40-99, 60 sessions): 5 payloads (p1×5)

                """)
    }
}
