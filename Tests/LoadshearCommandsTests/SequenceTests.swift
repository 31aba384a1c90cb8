import Foundation
import LoadshearTestSupport
import Testing

/// (ext) UDP measurement against independent servers (Python's socket module): SEQUENCE
/// counts exactly the gaps, swaps and duplicates a server made, and RESPONSE over UDP counts
/// exactly the requests it never answered.
@Suite struct SequenceTests {
    /// Sends each new peer the numbers 0…999 (4 bytes, big-endian, then 12 zero bytes) with
    /// peer j's own impairments: j+1 numbers omitted, two adjacent pairs swapped, three numbers
    /// sent twice. Paced (10 datagrams per 2 ms) so that no socket buffer overflows.
    static let numberingServer = """
        import json, socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        print("port", s.getsockname()[1], flush=True)
        peers = {}
        while True:
            _, peer = s.recvfrom(65536)
            if peer in peers:
                continue
            j = len(peers)
            peers[peer] = j
            order = list(range(1000))
            for k in range(j + 1):
                order.remove(100 + 10 * k)
            for a in (300, 500):
                i = order.index(a)
                order[i], order[i + 1] = order[i + 1], order[i]
            for d in (700, 800, 900):
                order.insert(order.index(d) + 1, d)
            for k, n in enumerate(order):
                s.sendto(n.to_bytes(4, "big") + bytes(12), peer)
                if k % 10 == 9:
                    time.sleep(0.002)
            print(json.dumps({"peer": j, "sent": len(order)}), flush=True)
        """

    /// Answers each request (its 4-byte id) with the id, except: ids ending in 7 are dropped,
    /// ids divisible by 25 are answered twice, and the answer to an id ending in 3 is held
    /// back and sent after the answer to that peer's next request (a swap). A held answer
    /// with no next request within 100 ms is sent then, unswapped. When idle it prints what
    /// it did: {"dropped", "duplicated", "swapped"}.
    static let replyServer = """
        import json, socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.1)
        print("port", s.getsockname()[1], flush=True)
        held = {}
        done = {"dropped": 0, "duplicated": 0, "swapped": 0}
        changed = False
        while True:
            try:
                data, peer = s.recvfrom(65536)
            except socket.timeout:
                for peer, reply in held.items():
                    s.sendto(reply, peer)
                held.clear()
                if changed:
                    print(json.dumps(done), flush=True)
                    changed = False
                continue
            changed = True
            rid = int.from_bytes(data[0:4], "big")
            reply = data[0:4] + bytes(4)
            if rid % 10 == 7:
                done["dropped"] += 1
                if peer in held:
                    s.sendto(held.pop(peer), peer)
                continue
            if rid % 10 == 3 and peer not in held:
                held[peer] = reply
                continue
            s.sendto(reply, peer)
            if rid % 25 == 0:
                s.sendto(reply, peer)
                done["duplicated"] += 1
            if peer in held:
                s.sendto(held.pop(peer), peer)
                done["swapped"] += 1
        """

    /// TCP: to each connection, frames of an 8-byte header (type 1, body length 8, both
    /// big-endian) and a body whose first 4 bytes are the number: 0…299 with 50 and 51
    /// missing, 100 sent twice and 200 after 201; then it closes.
    static let framingServer = """
        import socket, threading
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        print("port", ls.getsockname()[1], flush=True)
        def serve(c):
            order = [n for n in range(300) if n not in (50, 51)]
            order.insert(order.index(100) + 1, 100)
            i = order.index(200)
            order[i], order[i + 1] = order[i + 1], order[i]
            c.sendall(b"".join((1).to_bytes(4, "big") + (8).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(4) for n in order))
            c.recv(1)
            c.close()
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """

    /// A UDP script reading datagrams (READ, BODYMAX 64) to `port`: `settings` are added to
    /// SETTINGS, `sessions` are created and connected, then `actions` (ranges `0:sessions`).
    static func udpScript(port: Int, settings: String, sessions: Int, actions: String, expect: String = "") -> String {
        """
        SETTINGS u {
            SESSION = "UDP"
            PORT = \(port)
            READ = "true"
            BODYMAX = 64
            ENDPOINTS { 127.0.0.1 }
            PACKETS { p : "p.bin" }
        \(settings)
        }
        ORCHESTRATOR u {
            CREATE \(sessions) OFFSET 0ms
            CONNECT 0:\(sessions) OFFSET 10ms
        \(actions)
        }
        \(expect)
        """
    }

    static func start(_ ws: Workspace, _ name: String, _ code: String) async throws -> (LiveProcess, Int) {
        let script = ws.write(name, Array(code.utf8))
        let server = try LiveProcess(["python3", script], executable: URL(fileURLWithPath: "/usr/bin/env"))
        let started = await server.stdout(contains: "\n")
        #expect(started, "the Python UDP server did not start: \(server.stderrText)")
        let first = server.stdout.split(separator: "\n").first ?? ""
        return (server, Int(first.split(separator: " ").last ?? "") ?? 0)
    }

    static func totals(_ path: String) throws -> [String: Int] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        return ((object as? [String: Any])?["totals"] as? [String: Int]) ?? [:]
    }

    /// Three sessions, 1,000 numbers each with known gaps, swaps and duplicates: the report's
    /// totals and worst-session figures are exactly those.
    @Test func gapsSwapsAndDuplicatesOfAnIndependentServerAreCountedExactly() async throws {
        let ws = Workspace()
        let (server, port) = try await Self.start(ws, "numbers.py", Self.numberingServer)
        defer { server.stop() }
        let path = ws.script(
            Self.udpScript(
                port: port, settings: "    SEQUENCE = 0:4 \"big\"", sessions: 3,
                actions: "    SEND 0:3 p COPIES 1 OFFSET 20ms\n    DISCONNECT 0:3 OFFSET 8s",
                expect: "EXPECT {\n    seq.lost = 6\n    seq.duplicated < 1%\n}"),
            files: ["p.bin": Array("hello".utf8)])
        let r = try await BinaryRunner.run([path, "--no-tui", "--json", ws.path("r.json")])
        // The server had sent everything before the run ended (else the counts below are short).
        #expect(server.stdout.split(separator: "\n").count == 4, "\(server.stdout)")
        let t = try Self.totals(ws.path("r.json"))
        // Our own kernel dropped nothing (else the counts below include our losses).
        #expect(t["udpReceiveDrops"] == 0, "\(t)")
        let sent = (0..<3).map { 1000 - ($0 + 1) + 3 }.reduce(0, +)
        #expect(t["sequenced"] == sent, "\(t)")
        #expect(t["sequenceLost"] == 6)
        #expect(t["sequenceReordered"] == 6)
        #expect(t["sequenceDuplicates"] == 9)
        #expect(t["sequenceWorstLost"] == 3)
        #expect(t["sequenceWorstReordered"] == 2)
        #expect(t["sequenceWorstDuplicates"] == 3)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("\(sent) numbered messages: 6 lost"), "\(r.stdout)")
        #expect(r.stdout.contains("worst session: 3 lost, 2 reordered, 3 duplicates"), "\(r.stdout)")
        #expect(r.stdout.contains("jitter (RFC 3550"), "\(r.stdout)")
        #expect(r.stdout.contains("✓ seq.lost = 6"), "\(r.stdout)")
    }

    /// Request/reply over UDP: every request the server dropped is a timeout (the loss), its
    /// duplicate answers are duplicates, and its swapped answers are reordered replies.
    @Test func udpRequestsWithoutAReplyAreTheLoss() async throws {
        let ws = Workspace()
        let (server, port) = try await Self.start(ws, "replies.py", Self.replyServer)
        defer { server.stop() }
        let path = ws.script(
            Self.udpScript(
                port: port, settings: "    RESPONSE = 0:4 \"big\"\n    TIMEOUT = 1s", sessions: 2,
                actions: """
                        SEND 0:2 p COPIES 100 COUNTER 0:4 "big":1 OFFSET 20ms
                        PACE 0:2 500/s OFFSET 0ms
                        DRAIN 0:2 OFFSET 300ms
                    """,
                expect: "EXPECT {\n    timeouts = 10%\n}"),
            files: ["p.bin": [UInt8](repeating: 0, count: 8)])
        let r = try await BinaryRunner.run([path, "--no-tui", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        // What the server did, from its last line.
        _ = await server.stdout(contains: "\"dropped\": 20")
        let last = server.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let did = (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Int] ?? [:]
        #expect(did["dropped"] == 20, "\(server.stdout)")
        #expect(did["duplicated"] == 8)
        let t = try Self.totals(ws.path("r.json"))
        #expect(t["requests"] == 200, "\(t)")
        #expect(t["timeouts"] == 20)
        #expect(t["replies"] == 180)
        #expect(t["duplicates"] == 8)
        #expect(t["unmatched"] == 0)
        #expect(t["repliesReordered"] == did["swapped"])
        #expect((did["swapped"] ?? 0) > 0)
        #expect(r.stdout.contains("20 timed out (loss 10.00%)"), "\(r.stdout)")
    }

    /// The built-in broadcast target numbers, withholds and swaps pings; the run counts what it
    /// says it did. A stream's first or last ping withheld leaves no gap to see, so the lost
    /// count may fall short of the withheld by up to two per session. The run is stopped once
    /// it has read every ping the target says it sent.
    @Test func theBroadcastTargetsImpairmentsAreWhatTheRunMeasures() async throws {
        let (target, port) = try await BinaryRunner.target([
            "broadcast", "--udp", "--sequence", "--loss", "0.05", "--reorder", "0.05", "--count", "500", "--rate",
            "1000",
        ])
        defer { target.stop() }
        let ws = Workspace()
        let path = ws.script(
            Self.udpScript(
                port: port, settings: "    SEQUENCE = 8:4 \"big\"", sessions: 2,
                actions: "    SEND 0:2 p COPIES 1 OFFSET 20ms\n    DISCONNECT 0:2 OFFSET 120s"),
            files: ["p.bin": Array("hi".utf8)])
        let run = try LiveProcess([path, "--quiet", "--json", ws.path("r.json"), "--json-interval", "-"])
        defer { run.stop() }
        // Both streams done, by the target's word: how many pings it sent, withheld, swapped.
        #expect(await target.stdout(lines: 3, timeout: 120), "\(target.stdout)")
        var sent = 0
        var withheld = 0
        var swapped = 0
        for m in target.stdout.matches(of: /done: 500 numbers, (\d+) sent, (\d+) withheld, (\d+) swapped/) {
            sent += Int(m.output.1)!
            withheld += Int(m.output.2)!
            swapped += Int(m.output.3)!
        }
        #expect(sent > 0 && sent + withheld == 1000, "\(target.stdout)")
        // Every ping sent has been read, then the run is stopped (Ctrl-C) and reports.
        #expect(await run.stdout(contains: "\"sequenced\":\(sent),", timeout: 120), "\(run.stdout.suffix(2000))")
        kill(run.pid, SIGINT)
        #expect(await run.exit(timeout: 60) == 0, "\(run.stderrText)")
        let t = try Self.totals(ws.path("r.json"))
        #expect(t["udpReceiveDrops"] == 0, "\(t)")
        #expect(t["sequenced"] == sent, "\(t)")
        #expect(t["sequenceReordered"] == swapped)
        #expect(t["sequenceLost"].map { $0 <= withheld && $0 >= withheld - 4 } == true, "\(t) \(target.stdout)")
        #expect(t["sequenceDuplicates"] == 0)
    }

    /// SEQUENCE on TCP frames: the offset counts from the frame's start, header included.
    @Test func tcpFramesAreSequencedToo() async throws {
        let ws = Workspace()
        let (server, port) = try await Self.start(ws, "frames.py", Self.framingServer)
        defer { server.stop() }
        let path = ws.script(
            """
            SETTINGS t {
                SESSION = "TCP"
                PORT = \(port)
                READ = "true"
                HEADERSIZE = 8
                BODYMAX = 64
                HEADER_LENGTH = 4:4 "big"
                SEQUENCE = 8:4 "big"
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR t {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 10ms
                DISCONNECT 0:2 OFFSET 60s
            }
            EXPECT {
                seq.lost = 4
            }
            """, files: ["p.bin": [0]])
        let run = try LiveProcess([path, "--quiet", "--json", ws.path("r.json"), "--json-interval", "-"])
        defer { run.stop() }
        // Every frame read (299 per connection), then the run is stopped (Ctrl-C).
        #expect(await run.stdout(contains: "\"sequenced\":598,", timeout: 120), "\(run.stdout.suffix(2000))")
        kill(run.pid, SIGINT)
        #expect(await run.exit(timeout: 60) == 0, "\(run.stderrText)")
        let t = try Self.totals(ws.path("r.json"))
        #expect(t["sequenced"] == 598, "\(t)")
        #expect(t["sequenceLost"] == 4)
        #expect(t["sequenceDuplicates"] == 2)
        #expect(t["sequenceReordered"] == 2)
        #expect(t["sequenceWorstLost"] == 2)
    }

    /// A flood echoed back faster than the sessions read it: what the kernel dropped on our
    /// own sockets is counted (never more than was echoed and not read) and the verdict says
    /// the generator was the bottleneck.
    @Test func ourOwnReceiveDropsAreCountedAndJudged() async throws {
        let (target, port) = try await BinaryRunner.target(["echo", "--udp"])
        defer { target.stop() }
        let ws = Workspace()
        let path = ws.script(
            Self.udpScript(
                port: port, settings: "    REPEAT = \"true\"", sessions: 4,
                actions: """
                        SEND 0:4 p COPIES 16 OFFSET 10ms
                        FLOOD 0:4 OFFSET 0ms
                        DISCONNECT 0:4 OFFSET 2s
                    """),
            files: ["p.bin": [UInt8](repeating: 0, count: 64)])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        kill(target.pid, SIGINT)
        _ = await target.exit(timeout: 30)
        let echoed = target.stdout.firstMatch(of: /datagrams sent (\d+)/).flatMap { Int($0.output.1) } ?? 0
        let t = try Self.totals(ws.path("r.json"))
        let read = t["framesRead"] ?? 0
        let drops = t["udpReceiveDrops"] ?? -1
        #expect(drops >= 0 && drops <= echoed - read, "\(t) \(target.stdout)")
        // Tens of thousands echoed and never read cannot all wait in a 1 MiB receive queue.
        if echoed - read > 50_000 {
            #expect(drops > 0, "\(t) \(target.stdout)")
        }
        if drops > 0 {
            #expect(r.stdout.contains("generator: SATURATED"), "\(r.stdout)")
            #expect(r.stdout.contains("datagrams dropped by this machine's kernel before Loadshear read them"))
        }
    }
}
