// The certificate is made with the BoringSSL that swift-nio-ssl builds anyway (its C module,
// imported through NIOSSL). swift-certificates and swift-crypto would each bring a second
// BoringSSL and several large Swift modules: 3 to 4 minutes of a first build on two cores,
// for one function that runs once per `target --tls`. The C module is not a declared product
// of swift-nio-ssl, but it is the module NIOSSL itself is built on, and has been for years.
import CNIOBoringSSL
import Foundation
import NIOSSL

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

    /// A step of making the certificate failed, with BoringSSL's reason when it gave one
    /// (read from this thread's error queue when the error is made).
    package struct CertificateError: Error, CustomStringConvertible {
        let step: String
        let reason: String?
        init(step: String) {
            self.step = step
            let code = ERR_get_error()
            reason = code == 0 ? nil : ERR_reason_error_string(code).map { String(cString: $0) }
            ERR_clear_error()
        }
        package var description: String {
            "could not make the target's certificate (\(step)\(reason.map { ": " + $0 } ?? ""))"
        }
    }

    /// Makes the key pair and the certificate, signed by its own key.
    package static func selfSigned() throws -> TargetTLS {
        func check(_ ok: Bool, _ step: String) throws { if !ok { throw CertificateError(step: step) } }

        ERR_clear_error()  // so a failure reports its own reason, not an older one
        guard let key = EVP_PKEY_new() else { throw CertificateError(step: "key") }
        defer { EVP_PKEY_free(key) }
        guard let ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1) else { throw CertificateError(step: "P-256") }
        guard EC_KEY_generate_key(ec) == 1 else {
            EC_KEY_free(ec)
            throw CertificateError(step: "P-256 key")
        }
        // On success the key owns `ec`.
        guard EVP_PKEY_assign_EC_KEY(key, ec) == 1 else {
            EC_KEY_free(ec)
            throw CertificateError(step: "key")
        }

        guard let x509 = X509_new() else { throw CertificateError(step: "certificate") }
        defer { X509_free(x509) }
        try check(X509_set_version(x509, Int(X509_VERSION_3)) == 1, "version")
        // A random positive 128-bit serial number.
        var serial = (0..<16).map { _ in UInt8.random(in: 0...255) }
        serial[0] &= 0x7F
        serial[0] |= 0x01
        let bn = BN_bin2bn(serial, serial.count, nil)
        defer { BN_free(bn) }
        try check(bn != nil && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x509)) != nil, "serial number")
        try check(X509_gmtime_adj(X509_getm_notBefore(x509), -3600) != nil, "validity")
        try check(X509_gmtime_adj(X509_getm_notAfter(x509), 30 * 86_400) != nil, "validity")
        try check(X509_set_pubkey(x509, key) == 1, "public key")

        let name = X509_get_subject_name(x509)
        for (field, value) in [("CN", "loadshear target"), ("O", "Loadshear (self-signed, for local tests)")] {
            try check(
                X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, value, -1, -1, 0) == 1, "name")
        }
        try check(X509_set_issuer_name(x509, name) == 1, "issuer")

        // Its own trust anchor: a client can take it as its CA.
        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, x509, x509, nil, nil, 0)
        let extensions: [(Int32, String)] = [
            (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
            (NID_key_usage, "critical,digitalSignature,keyCertSign"),
            (NID_ext_key_usage, "serverAuth"),
            (NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"),
        ]
        for (nid, value) in extensions {
            guard let e = X509V3_EXT_nconf_nid(nil, &v3, nid, value) else { throw CertificateError(step: value) }
            defer { X509_EXTENSION_free(e) }
            try check(X509_add_ext(x509, e, -1) == 1, value)
        }
        try check(X509_sign(x509, key, EVP_sha256()) > 0, "signature")

        let certificateDER = try der("certificate") { i2d_X509(x509, $0) }
        let keyDER = try der("private key") { i2d_PrivateKey(key, $0) }
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: certificateDER, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: keyDER, format: .der)))
        // Offer the usual protocols, so a client's ALPN can be seen to negotiate.
        c.applicationProtocols = ["h2", "http/1.1", "loadshear"]
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        _ = SHA256(certificateDER, certificateDER.count, &digest)
        return TargetTLS(
            certificatePEM: pem(certificateDER),
            fingerprint: digest.map { String(format: "%02X", $0) }.joined(separator: ":"),
            context: try NIOSSLContext(configuration: c))
    }

    /// The DER bytes an `i2d_*` function writes: it is asked for the length first.
    private static func der(
        _ what: String, _ encode: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32
    ) throws -> [UInt8] {
        let length = Int(encode(nil))
        guard length > 0 else { throw CertificateError(step: what) }
        var bytes = [UInt8](repeating: 0, count: length)
        let written = bytes.withUnsafeMutableBufferPointer { buffer in
            var cursor = buffer.baseAddress
            return Int(encode(&cursor))
        }
        guard written == length else { throw CertificateError(step: what) }
        return bytes
    }

    /// `-----BEGIN CERTIFICATE-----`, base64 in lines of 64, the END line and a newline.
    static func pem(_ der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN CERTIFICATE-----\n\(base64)\n-----END CERTIFICATE-----\n"
    }
}
