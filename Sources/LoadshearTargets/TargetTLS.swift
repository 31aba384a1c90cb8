import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// (ext) `target --tls`: a self-signed certificate made at start (P-256, valid from an hour
/// ago for 30 days, for `localhost` and 127.0.0.1), so TLS sessions can be tested locally
/// with `VERIFY = "false"`, or with the certificate as their CA (`--write-ca`).
package struct TargetTLS: Sendable {
    /// The certificate, PEM.
    package let certificatePEM: String
    /// SHA-256 of the certificate's DER bytes, as colon-separated hex pairs.
    package let fingerprint: String
    /// The server context the target's connections use.
    let context: NIOSSLContext

    /// Makes the key pair and the certificate, signed by its own key.
    package static func selfSigned() throws -> TargetTLS {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName("loadshear target")
            OrganizationName("Loadshear (self-signed, for local tests)")
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(30 * 86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                // Its own trust anchor: a client can take it as its CA.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                ])
            },
            issuerPrivateKey: .init(key))
        let pem = try certificate.serializeAsPEM()
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: pem.derBytes, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
        // Offer the usual protocols, so a client's ALPN can be seen to negotiate.
        c.applicationProtocols = ["h2", "http/1.1", "loadshear"]
        let digest = SHA256.hash(data: pem.derBytes)
        return TargetTLS(
            certificatePEM: pem.pemString + "\n",
            fingerprint: digest.map { String(format: "%02X", $0) }.joined(separator: ":"),
            context: try NIOSSLContext(configuration: c))
    }
}
