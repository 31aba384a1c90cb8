import LoadshearMetrics
import NIOCore
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Says why things fail, once per kind per run: the first refused connect, the first body
/// above BODYMAX, the first local socket error. Every later one is only counted (the summary
/// and the report give the counts by reason). Lines go to the caller's sink, which must not
/// block (the command line queues them off the event loops).
final class FailureLog: Sendable {
    /// Kinds logged so far in the run, from every shard.
    private let seen = Mutex<Set<String>>([])
    /// Where the lines go; called on the event loops.
    private let sink: @Sendable (String) -> Void

    /// A log that writes to `sink`, which must not block.
    init(sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    /// Logs `message` if `kind` has not been logged in this run; true if it was logged now.
    @discardableResult
    func once(_ kind: String, _ message: () -> String) -> Bool {
        guard seen.withLock({ $0.insert(kind).inserted }) else { return false }
        sink(message() + " (the first of its kind: the summary counts them all)")
        return true
    }
}

/// Why a connect failed, as a counter and the words the log and the summary use.
enum ConnectFailure {
    /// The counter and the words for a connect error: refused, timed out (the socket's or
    /// NIO's connect timeout), unreachable, too many open files, no local address or port, or
    /// another error in the system's words.
    static func classify(_ error: Error) -> (counter: ShardCounters.Counter, reason: String) {
        if let e = error as? IOError {
            let text = String(cString: strerror(e.errnoCode)).lowercased()
            switch e.errnoCode {
            case ECONNREFUSED: return (.connectRefused, "connection refused")
            case ETIMEDOUT: return (.connectTimedOut, "timed out")
            case EHOSTUNREACH, ENETUNREACH: return (.connectUnreachable, text)
            case EMFILE, ENFILE:
                return (.connectTooManyFiles, "too many open files (raise ulimit -n, or use fewer sessions)")
            case EADDRNOTAVAIL, EADDRINUSE: return (.connectNoAddress, "no local address or port free (\(text))")
            default: return (.connectOtherError, text)
            }
        }
        if let e = error as? ChannelError, case .connectTimeout(let t) = e {
            return (.connectTimedOut, "timed out after \(t.nanoseconds / 1_000_000) ms")
        }
        if let tls = classifyTLS(error) { return tls }
        return (.connectOtherError, "\(error)")
    }

    /// (ext) TLS handshake failures: the certificate chain or the name did not verify; no
    /// handshake within the connect timeout; anything else the handshake raised (an alert, a
    /// protocol mismatch, a close) is a protocol error.
    private static func classifyTLS(_ error: Error) -> (counter: ShardCounters.Counter, reason: String)? {
        switch error {
        case TLSHandshakeError.timedOut(let t):
            return (.tlsHandshakeTimedOut, "TLS handshake timed out after \(t.nanoseconds / 1_000_000) ms")
        case TLSHandshakeError.closed:
            return (.tlsProtocolError, "TLS handshake failed: the connection closed before it completed")
        case let e as NIOSSLExtraError where e == .failedToValidateHostname || e == .serverHostnameImpossibleToMatch:
            return (.tlsVerifyFailed, "TLS certificate verify failed: \(e)")
        case NIOSSLError.handshakeFailed(let e):
            let text = "\(e)"
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return (.tlsVerifyFailed, "TLS certificate verify failed (\(text))")
            }
            return (.tlsProtocolError, "TLS handshake failed: \(text)")
        case let e as NIOSSLError:
            return (.tlsProtocolError, "TLS handshake failed: \(e)")
        case let e as NIOSSLExtraError:
            return (.tlsProtocolError, "TLS handshake failed: \(e)")
        default:
            return nil
        }
    }
}
