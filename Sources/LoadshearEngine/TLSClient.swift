import LoadshearScript
import NIOCore
import NIOSSL
import Synchronization

/// (ext) What TLS sessions share: one client context (swift-nio-ssl's `NIOSSLContext` is
/// safe to use from every loop), the server name of each address, and what the first
/// handshake negotiated.
package final class TLSClient: Sendable {
    let context: NIOSSLContext
    /// Per address, in the order of ``Plan/addresses``: the name sent as SNI and verified;
    /// nil for a numeric address with no SNI given (no SNI is sent, and the certificate is
    /// verified against the address itself).
    let serverNames: [String?]
    /// "TLS 1.3, ALPN h2": what the first completed handshake negotiated.
    private let firstNegotiated = Mutex<String?>(nil)

    /// - Throws: ``Engine/RunError/setup(_:)`` when the files do not make a context (the plan's
    ///   inspector normally catches that first).
    package init(_ settings: TLSSettings, hosts: [String], shutdownTimeout: TimeAmount) throws {
        do {
            context = try NIOSSLContext(configuration: Self.configuration(settings, shutdownTimeout: shutdownTimeout))
        } catch {
            throw Engine.RunError.setup("TLS: \(error)")
        }
        serverNames = hosts.map { host in
            settings.serverName ?? ((try? SocketAddress(ipAddress: host, port: 0)) != nil ? nil : host)
        }
    }

    /// The client configuration of a TLS block: the system trust store or CA, full
    /// verification unless VERIFY is "false", the client certificate, ALPN.
    static func configuration(_ settings: TLSSettings, shutdownTimeout: TimeAmount) throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.certificateVerification = settings.verify ? .fullVerification : .none
        if let ca = settings.ca {
            c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca.bytes))
        }
        if let cert = settings.certificate, let key = settings.key {
            c.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert.bytes).map { .certificate($0) }
            c.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key.bytes, format: .pem))
        }
        c.applicationProtocols = settings.alpn
        // A close sends close_notify, then waits at most this long for the server's
        // (``EngineConfiguration/tlsShutdownTimeout``).
        c.shutdownTimeout = shutdownTimeout
        return c
    }

    /// What the first handshake of the run negotiated (nil before one completed).
    package var negotiated: String? { firstNegotiated.withLock { $0 } }

    /// Notes what a handshake negotiated, if none was noted yet.
    func note(version: TLSVersion?, alpn: String?) {
        firstNegotiated.withLock { n in
            guard n == nil else { return }
            var text = version.map(Self.describe) ?? "TLS"
            text += alpn.map { ", ALPN \($0)" } ?? ", no ALPN"
            n = text
        }
    }

    static func describe(_ v: TLSVersion) -> String {
        switch v {
        case .tlsv1: "TLS 1.0"
        case .tlsv11: "TLS 1.1"
        case .tlsv12: "TLS 1.2"
        case .tlsv13: "TLS 1.3"
        }
    }
}

/// (ext) Checks a TLS block's PEM files at plan time: each parses, a CA file holds at least
/// one certificate, and the client key matches its certificate.
package struct TLSFileInspector: TLSInspector {
    package init() {}

    package func inspect(_ tls: TLSSettings) -> [(field: String, problem: String)] {
        var problems: [(field: String, problem: String)] = []
        if let ca = tls.ca {
            do {
                if try NIOSSLCertificate.fromPEMBytes(ca.bytes).isEmpty {
                    problems.append(("CA", "\(ca.path) holds no PEM certificate"))
                }
            } catch {
                problems.append(("CA", "\(ca.path) is not a readable PEM certificate file (\(error))"))
            }
        }
        var chain: [NIOSSLCertificate] = []
        if let cert = tls.certificate {
            do {
                chain = try NIOSSLCertificate.fromPEMBytes(cert.bytes)
                if chain.isEmpty { problems.append(("CERT", "\(cert.path) holds no PEM certificate")) }
            } catch {
                problems.append(("CERT", "\(cert.path) is not a readable PEM certificate file (\(error))"))
            }
        }
        var key: NIOSSLPrivateKey?
        if let k = tls.key {
            do {
                key = try NIOSSLPrivateKey(bytes: k.bytes, format: .pem)
            } catch {
                problems.append(("KEY", "\(k.path) is not a readable PEM private key (\(error))"))
            }
        }
        if let key, let leaf = chain.first, let keyPath = tls.key?.path, let certPath = tls.certificate?.path {
            // The server sees a certificate whose key we do not hold: find out now.
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateChain = [.certificate(leaf)]
            c.privateKey = .privateKey(key)
            if (try? NIOSSLContext(configuration: c)) == nil {
                problems.append(("KEY", "the private key \(keyPath) does not match the certificate \(certPath)"))
            }
        }
        return problems
    }
}
