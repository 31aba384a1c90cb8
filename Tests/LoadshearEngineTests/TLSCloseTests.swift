import LoadshearMetrics
import LoadshearScript
import LoadshearTargets
import LoadshearTestSupport
import NIOCore
import Testing

@testable import LoadshearEngine

/// (ext) TLS sessions against the built-in TLS targets.
@Suite struct TLSCloseTests {
    /// A close ends when the server answers our close_notify, not at swift-nio-ssl's shutdown
    /// timeout. With remote half-closure allowed (as sessions have it), the server's answer
    /// used to be taken as a half-close, and every close waited out the whole timeout. Made
    /// 2 minutes here, it would hold the DISCONNECT's sessions open past the wait below (a
    /// fifth session keeps the timeline going meanwhile); the run then ends when it expires.
    @Test func aCloseEndsWhenTheServerAnswersItsCloseNotify() async throws {
        let tls = try TargetTLS.selfSigned()
        var options = TargetOptions(kind: .sink)
        options.tls = tls
        let target = try await TargetServer.start(options)
        let plan = try makePlan(
            """
            SETTINGS t {
                SESSION = "TLS"
                PORT = @PORT@
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
                TLS { SNI = "localhost" CA = "ca.pem" }
            }
            ORCHESTRATOR t {
                CREATE 5 OFFSET 0ms
                CONNECT 0:5 OFFSET 1ms
                SEND 0:4 p COPIES 3 OFFSET 1ms
                DISCONNECT 0:4 OFFSET 1s
                DISCONNECT 4:5 OFFSET 1h
            }
            """, packets: ["p.bin": [1, 2, 3, 4], "ca.pem": Array(tls.certificatePEM.utf8)], port: target.port)
        let final = try await run(
            plan, configure: { $0.tlsShutdownTimeout = .seconds(120) },
            until: { totals in
                await totals.wait(timeout: .seconds(30)) { $0[.closedByUs] == 4 && $0[.connectionsActive] == 1 }
            })
        await target.stop()
        #expect(final.totals[.connectionsSucceeded] == 5)
        #expect(final.totals[.packetsSent] == 12)
        expectConsistent(final)
    }

    /// `target broadcast --tls --rate 0` floods only once the handshake is done: frames
    /// written before it piled up in swift-nio-ssl's buffer without bound, and the
    /// handshake itself never finished. (One session: a second one's handshake would wait on
    /// the target's loop behind the first one's flood on a loaded machine.)
    @Test func aFloodingTLSBroadcastTargetFinishesTheHandshake() async throws {
        let tls = try TargetTLS.selfSigned()
        var options = TargetOptions(kind: .broadcast)
        options.tls = tls
        options.rate = 0
        options.bodySize = 1000
        let target = try await TargetServer.start(options)
        let plan = try makePlan(
            """
            SETTINGS t {
                SESSION = "TLS"
                PORT = @PORT@
                READ = "true"
                HEADERSIZE = 8
                HEADER_LENGTH = 4:4 "big"
                BODYMAX = 4096
                ENDPOINTS { 127.0.0.1 }
                TLS { SNI = "localhost" CA = "ca.pem" }
            }
            ORCHESTRATOR t {
                CREATE 1 OFFSET 0ms
                CONNECT 0:1 OFFSET 1ms
                DISCONNECT 0:1 OFFSET 1h
            }
            """, packets: ["ca.pem": Array(tls.certificatePEM.utf8)], port: target.port)
        let final = try await run(
            plan,
            until: { totals in
                await totals.wait(timeout: .seconds(60)) { $0[.connectionsSucceeded] == 1 && $0[.framesRead] >= 1000 }
            })
        await target.stop()
        #expect(final.totals[.connectionsFailed] == 0 && final.totals[.connectionsCancelled] == 0)
        expectConsistent(final)
    }
}
