import Foundation
import LoadshearTestSupport
import Testing

/// (ext) TLS sessions through the built binary, against independent TLS servers: Python's
/// `ssl` module (many connections, recording what each received and the SNI it was sent)
/// and `openssl s_server`, with a throw-away CA made by the `openssl` command.
@Suite(
    .enabled(
        "the openssl command is not installed (Debian: apt-get install openssl)",
        { FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") }))
struct TLSTests {
    /// A CA, a server certificate it signed for localhost and 127.0.0.1, a client certificate
    /// it signed, and an unrelated second CA, in a fresh workspace.
    static func pki() async throws -> Workspace {
        let ws = Workspace()
        let commands = """
            set -e
            cd '\(ws.dir)'
            ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
            openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj '/CN=throwaway CA'
            openssl req -x509 $ec -keyout other.key -out other.pem -days 2 -subj '/CN=another CA'
            openssl req $ec -keyout server.key -out server.csr -subj '/CN=localhost'
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.cnf
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.cnf
            openssl req $ec -keyout client.key -out client.csr -subj '/CN=a client'
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2
            """
        let r = try await BinaryRunner.shell(commands)
        #expect(r.status == 0, "\(r.stderr)")
        return ws
    }

    /// A Python TLS server on 127.0.0.1 port 0 that prints `port N`, then per connection one
    /// JSON line when it closes: the SNI it was sent, the ALPN chosen, the bytes received
    /// (hex), or the handshake error. It serves until killed.
    static let pythonServer = """
        import json, socket, ssl, sys, threading
        cert, key, client_ca = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["loadshear", "h2"])
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        names = {}
        def on_sni(sock, name, _ctx):
            names[id(sock)] = name
        ctx.sni_callback = on_sni
        lock = threading.Lock()
        def emit(d):
            with lock:
                print(json.dumps(d), flush=True)
        def serve(raw):
            try:
                s = ctx.wrap_socket(raw, server_side=True)
            except Exception as e:
                emit({"error": str(e)})
                raw.close()
                return
            data = bytearray()
            while True:
                try:
                    chunk = s.recv(65536)
                except Exception:
                    break
                if not chunk:
                    break
                data += chunk
            try:
                peer = s.getpeercert()
                emit({"sni": names.get(id(s)), "alpn": s.selected_alpn_protocol(), "received": len(data),
                      "bytes": data.hex() if len(data) < 100000 else None,
                      "client": dict(x[0] for x in peer["subject"])["commonName"] if peer else None})
            except Exception as e:
                # A connection cut short still reports what it read.
                emit({"received": len(data), "after": repr(e)})
            try:
                s.close()
            except Exception:
                pass
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(512)
        print("port", ls.getsockname()[1], flush=True)
        while True:
            conn, _ = ls.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        """

    /// Starts the Python server with the workspace's files; returns it and its port.
    static func startPython(_ ws: Workspace, clientCA: String? = nil) async throws -> (LiveProcess, Int) {
        let script = ws.write("server.py", Array(pythonServer.utf8))
        var args = [script, ws.path("server.pem"), ws.path("server.key")]
        if let clientCA { args.append(ws.path(clientCA)) }
        let server = try LiveProcess(["python3"] + args, executable: URL(fileURLWithPath: "/usr/bin/env"))
        let started = await server.stdout(contains: "\n")
        #expect(started, "the Python TLS server did not start: \(server.stderrText)")
        let first = server.stdout.split(separator: "\n").first ?? ""
        let port = Int(first.split(separator: " ").last ?? "") ?? 0
        return (server, port)
    }

    /// The JSON lines the Python server printed for closed connections, once there are `n`
    /// (or what there is after two minutes).
    static func connections(_ server: LiveProcess, _ n: Int) async -> [[String: Any]] {
        _ = await server.stdout(lines: n + 1, timeout: 120)
        return server.stdout.split(separator: "\n").dropFirst().compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Sessions that send `copies` numbered packets at `sendAt` and close at `closeAt`.
    static func script(
        port: Int, sessions: Int, tls: String, copies: Int = 100, sendAt: String = "300ms",
        closeAt: String = "500ms"
    ) -> String {
        """
        SETTINGS t {
            SESSION = "TLS"
            PORT = \(port)
            ENDPOINTS { 127.0.0.1 }
            \(tls)
            PACKETS { p : "p.bin" }
        }
        ORCHESTRATOR t {
            CREATE \(sessions) OFFSET 0ms
            CONNECT 0:\(sessions) OFFSET 10ms
            SEND 0:\(sessions) p COPIES \(copies) COUNTER 0:4 "big":1 OFFSET \(sendAt)
            DISCONNECT 0:\(sessions) OFFSET \(closeAt)
        }
        """
    }

    static func report(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
    }

    /// With the right CA and SNI, every session completes its handshake, every COUNTER value
    /// arrives exactly once and intact, the server sees the SNI and the ALPN we offered, and
    /// the report carries handshake latency and what was negotiated.
    @Test func packetsArriveIntactOverTLSWithTheRightCAAndSNI() async throws {
        let ws = try await Self.pki()
        let (server, port) = try await Self.startPython(ws)
        defer { server.stop() }
        let path = ws.script(
            Self.script(
                port: port, sessions: 5,
                tls: #"TLS { SNI = "localhost" CA = "ca.pem" ALPN { "loadshear" } }"#,
                // Every handshake must be done before the send: a second, not 300 ms, since a
                // loaded machine once held one Python handshake past 500 ms (CI saw it).
                sendAt: "1s", closeAt: "2s"),
            files: ["p.bin": [0, 0, 0, 0, 0xAB, 0xCD]])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("tls           TLS 1.3, ALPN loadshear"), "\(r.stdout)")
        let conns = await Self.connections(server, 5)
        #expect(conns.count == 5, "\(conns)")
        var values: [UInt32] = []
        for c in conns {
            #expect(c["sni"] as? String == "localhost")
            #expect(c["alpn"] as? String == "loadshear")
            let hex = c["bytes"] as? String ?? ""
            let bytes = stride(from: 0, to: hex.count, by: 2).map {
                UInt8(hex.dropFirst($0).prefix(2), radix: 16)!
            }
            #expect(bytes.count == 600)
            for i in stride(from: 0, to: bytes.count, by: 6) {
                values.append(
                    UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8
                        | UInt32(bytes[i + 3]))
                #expect(bytes[i + 4] == 0xAB && bytes[i + 5] == 0xCD)
            }
        }
        #expect(values.sorted() == Array(0..<500))
        let report = try Self.report(ws.path("r.json"))
        let latency = report["latencyMicroseconds"] as? [String: Any]
        #expect((latency?["handshake"] as? [String: Any])?["samples"] as? Int == 5)
        let tls = (report["settings"] as? [String: Any])?["tls"] as? [String: Any]
        #expect(tls?["negotiated"] as? String == "TLS 1.3, ALPN loadshear")
        #expect(tls?["serverName"] as? String == "localhost")
        #expect((report["totals"] as? [String: Any])?["packetsSent"] as? Int == 500)
    }

    /// An unrelated CA: every handshake fails verification, counted by reason; no crash, no
    /// hang, and the run says nothing connected (exit 1).
    @Test func aWrongCAFailsEveryHandshakeAndCountsIt() async throws {
        let ws = try await Self.pki()
        let (server, port) = try await Self.startPython(ws)
        defer { server.stop() }
        let path = ws.script(
            Self.script(port: port, sessions: 4, tls: #"TLS { SNI = "localhost" CA = "other.pem" }"#),
            files: ["p.bin": [0, 0, 0, 0]])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("TLS certificate verify failed"), "\(r.stderr)")
        let totals = try Self.report(ws.path("r.json"))["totals"] as? [String: Any]
        #expect(totals?["tlsVerifyFailed"] as? Int == 4, "\(String(describing: totals))")
        #expect(totals?["connectionsFailed"] as? Int == 4)
        #expect(totals?["connectionsSucceeded"] as? Int == 0)
    }

    /// A flood closed mid-stream: what the report counts as sent is what the server read
    /// (TLS buffers ciphertext, so the count at close comes from the writes' own promises).
    @Test func aFloodClosedMidStreamCountsExactlyWhatTheServerRead() async throws {
        let ws = try await Self.pki()
        let (server, port) = try await Self.startPython(ws)
        defer { server.stop() }
        let path = ws.script(
            """
            SETTINGS t {
                SESSION = "TLS"
                PORT = \(port)
                REPEAT = "true"
                ENDPOINTS { 127.0.0.1 }
                TLS { VERIFY = "false" }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR t {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 10ms
                SEND 0:2 p COPIES 1 OFFSET 200ms
                FLOOD 0:2 OFFSET 0ms
                DISCONNECT 0:2 OFFSET 1s
            }
            """, files: ["p.bin": [UInt8](repeating: 9, count: 1024)])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let conns = await Self.connections(server, 2)
        let received = conns.reduce(0) { $0 + ($1["received"] as? Int ?? 0) }
        let totals = try Self.report(ws.path("r.json"))["totals"] as? [String: Any]
        let sent = totals?["bytesSent"] as? Int ?? 0
        let unconfirmed = totals?["bytesUnconfirmed"] as? Int ?? 0
        #expect(received > 0, "the server said: \(server.stdout)\n\(server.stderrText)")
        #expect(
            received <= sent + unconfirmed,
            "sent \(sent), unconfirmed \(unconfirmed), server read \(received)")
    }

    /// A TLS connect to a port where nothing listens fails as refused, like TCP: no crash,
    /// no leaked handshake.
    @Test func aRefusedTLSConnectIsCountedAsRefused() async throws {
        let ws = Workspace()
        let refusing = RefusingPort()
        let path = ws.script(
            Self.script(port: refusing.port, sessions: 3, tls: #"TLS { VERIFY = "false" }"#),
            files: ["p.bin": [0, 0, 0, 0]])
        let r = try await BinaryRunner.run([path, "--quiet"])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("failed: connection refused ×3"), "\(r.stdout)\n\(r.stderr)")
    }

    /// A server that accepts TCP and never answers the hello: sessions disconnected during
    /// the handshake end as cancelled; the others time out after the connect timeout (10 s),
    /// counted as handshake timeouts. No hang either way.
    @Test func aSilentServerTimesTheHandshakeOutOrItIsCancelled() async throws {
        let server = try await RecordingServer.start()
        defer { Task { await server.shutdown() } }
        let ws = Workspace()
        let path = ws.script(
            """
            SETTINGS t {
                SESSION = "TLS"
                PORT = \(server.port)
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR t {
                CREATE 4 OFFSET 0ms
                CONNECT 0:4 OFFSET 10ms
                DISCONNECT 0:2 OFFSET 300ms
                DISCONNECT 2:4 OFFSET 11s
            }
            """)
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        let totals = try Self.report(ws.path("r.json"))["totals"] as? [String: Any]
        #expect(totals?["connectionsCancelled"] as? Int == 2, "\(String(describing: totals))")
        #expect(totals?["tlsHandshakeTimedOut"] as? Int == 2, "\(String(describing: totals))")
        #expect(r.stderr.contains("TLS handshake timed out after 10000 ms"), "\(r.stderr)")
    }

    /// VERIFY = "false" connects whatever the certificate; a client certificate is presented
    /// to a server that requires one.
    @Test func verifyFalseConnectsAndAClientCertificateIsPresented() async throws {
        let ws = try await Self.pki()
        let (server, port) = try await Self.startPython(ws, clientCA: "ca.pem")
        defer { server.stop() }
        let path = ws.script(
            Self.script(
                port: port, sessions: 2,
                tls: #"TLS { VERIFY = "false" CERT = "client.pem" KEY = "client.key" }"#, copies: 3),
            files: ["p.bin": [0, 0, 0, 0]])
        let r = try await BinaryRunner.run([path, "--quiet"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("2 attempted, 2 connected, 0 failed"), "\(r.stdout)")
        let conns = await Self.connections(server, 2)
        #expect(conns.map { $0["client"] as? String } == ["a client", "a client"], "\(conns)")
        #expect(conns.allSatisfy { ($0["bytes"] as? String)?.count == 24 })
    }

    /// `openssl s_server` as the peer: the packets arrive, ALPN is negotiated.
    @Test func opensslServerReceivesThePackets() async throws {
        let ws = try await Self.pki()
        // s_server ends when its stdin does: give it one that stays open (it serves one
        // connection, -naccept 1, then exits).
        let server = try LiveProcess(
            [
                "-c",
                "sleep 120 | exec openssl s_server -accept 0 -cert '\(ws.path("server.pem"))' -key '\(ws.path("server.key"))' -alpn x-test -naccept 1",
            ], executable: URL(fileURLWithPath: "/bin/bash"))
        defer { server.stop() }
        let started = await server.stdout(contains: "ACCEPT")
        #expect(started, "\(server.stderrText)")
        let port =
            Int(server.stdout.split(separator: "\n").first { $0.hasPrefix("ACCEPT") }?.split(separator: ":").last ?? "")
            ?? 0
        let path = ws.script(
            """
            SETTINGS t {
                SESSION = "TLS"
                PORT = \(port)
                ENDPOINTS { 127.0.0.1 }
                TLS { CA = "ca.pem" ALPN { "x-test" } }
                PACKETS { p : "p.txt" }
            }
            ORCHESTRATOR t {
                CREATE 1 OFFSET 0ms
                CONNECT 0:1 OFFSET 10ms
                SEND 0:1 p COPIES 3 COUNTER 6:1 "big":1 OFFSET 300ms
                DISCONNECT 0:1 OFFSET 300ms
            }
            """, files: ["p.txt": Array("hello-0\n".utf8)])
        let r = try await BinaryRunner.run([path, "--quiet", "--json", ws.path("r.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(await server.stdout(contains: "hello-\u{2}\n"), "\(server.stdout)")
        #expect(server.stdout.contains("hello-\u{0}\nhello-\u{1}\nhello-\u{2}\n"), "\(server.stdout)")
        let tls = (try Self.report(ws.path("r.json"))["settings"] as? [String: Any])?["tls"] as? [String: Any]
        #expect((tls?["negotiated"] as? String)?.hasSuffix("ALPN x-test") == true, "\(String(describing: tls))")
    }

    /// The built-in target serves TLS with a certificate made at start; written out with
    /// --write-ca, it verifies (SNI localhost), and the fingerprint is printed.
    @Test func theBuiltInTargetServesTLSWithItsOwnCertificate() async throws {
        let ws = Workspace()
        let (target, port) = try await BinaryRunner.target(["sink", "--tls", "--write-ca", ws.path("target-ca.pem")])
        defer { target.stop() }
        let started = await target.stdout(contains: "fingerprint")
        #expect(started, "\(target.stderrText)")
        #expect(target.stdout.contains(/SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}/), "\(target.stdout)")
        let path = ws.script(
            Self.script(port: port, sessions: 3, tls: #"TLS { SNI = "localhost" CA = "target-ca.pem" }"#, copies: 10),
            files: ["p.bin": [0, 0, 0, 0]])
        let r = try await BinaryRunner.run([path, "--quiet"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("3 attempted, 3 connected, 0 failed"), "\(r.stdout)")
        #expect(r.stdout.contains("TLS handshake latency"), "\(r.stdout)")
    }

    /// `loadshear kubernetes` ships the TLS block's files in the ConfigMap, next to the script.
    @Test func kubernetesManifestsCarryTheTLSFiles() async throws {
        let ws = try await Self.pki()
        let path = ws.script(
            Self.script(port: 9, sessions: 2, tls: #"TLS { CA = "ca.pem" CERT = "client.pem" KEY = "client.key" }"#),
            files: ["p.bin": [0, 0, 0, 0]])
        let r = try await BinaryRunner.run(["kubernetes", path, "--segments", "2", "--image", "registry.example/l:1"])
        #expect(r.status == 0, "\(r.stderr)")
        let ca = try String(contentsOfFile: ws.path("ca.pem"), encoding: .utf8)
        let firstLine = ca.split(separator: "\n")[1]
        #expect(r.stdout.contains(firstLine), "the CA's PEM is in the ConfigMap")
        for placed in ["path: ca.pem", "path: client.pem", "path: client.key"] {
            #expect(r.stdout.contains(placed), "\(placed): \(r.stdout)")
        }
    }

    /// Bad TLS blocks are refused at plan time with located errors.
    @Test func badTLSBlocksGetLocatedErrors() async throws {
        let ws = try await Self.pki()
        ws.write("junk.pem", Array("not a certificate\n".utf8))
        let cases: [(String, String)] = [
            (#"TLS { CA = "junk.pem" }"#, "test.ldsh:5:16: error: junk.pem is not a readable PEM certificate file"),
            (#"TLS { CA = "missing.pem" }"#, "test.ldsh:5:16: error: CA certificate file not found"),
            (#"TLS { VERIFY = "maybe" }"#, #"test.ldsh:5:20: error: VERIFY must be "true" or "false", got "maybe""#),
            (#"TLS { CERT = "client.pem" KEY = "server.key" }"#, "does not match the certificate"),
            (#"TLS { CERT = "client.pem" }"#, "test.ldsh:5:11: error: CERT needs KEY"),
            (#"TLS { VERIFI = "false" }"#, "unknown TLS setting 'VERIFI'; did you mean VERIFY?"),
        ]
        for (block, message) in cases {
            let path = ws.script(Self.script(port: 9, sessions: 1, tls: block), files: ["p.bin": [0, 0, 0, 0]])
            let r = try await BinaryRunner.run([path, "--dry-run"])
            #expect(r.status == 2, "\(block): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(block): \(r.stderr)")
        }
        let tcp = ws.script(
            Self.script(port: 9, sessions: 1, tls: #"TLS { VERIFY = "false" }"#).replacingOccurrences(
                of: #"SESSION = "TLS""#, with: #"SESSION = "TCP""#), files: ["p.bin": [0, 0, 0, 0]])
        let r = try await BinaryRunner.run([tcp, "--dry-run"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("the TLS block applies to TLS sessions"), "\(r.stderr)")
        let good = ws.script(
            Self.script(port: 9, sessions: 1, tls: #"TLS { SNI = "localhost" CA = "ca.pem" ALPN { "h2" } }"#),
            files: ["p.bin": [0, 0, 0, 0]])
        let dry = try await BinaryRunner.run([good, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(
            dry.stdout.contains(#"tls           server name "localhost" (SNI); verify against CA ca.pem; ALPN h2"#),
            "\(dry.stdout)")
        // With --expand-envs the dry run shows what a path expanded to, as for packets.
        let env = ws.script(
            Self.script(port: 9, sessions: 1, tls: #"TLS { SNI = "localhost" CA = "$CADIR/ca.pem" }"#),
            files: ["p.bin": [0, 0, 0, 0]])
        let expanded = try await BinaryRunner.run([env, "--dry-run", "-e"], environment: ["CADIR": ws.dir])
        #expect(expanded.status == 0, "\(expanded.stderr)")
        #expect(expanded.stdout.contains("verify against CA $CADIR/ca.pem (= \(ws.dir)/ca.pem)"), "\(expanded.stdout)")
    }
}
