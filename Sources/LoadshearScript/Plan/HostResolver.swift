import Foundation

/// Why a host did not resolve.
package struct ResolveError: Error, Sendable {
    /// The resolver's reason (`gai_strerror`), or "no addresses".
    package var message: String
    package init(_ message: String) { self.message = message }
}

/// getaddrinfo, once per host at plan time; numeric addresses, duplicates removed.
package enum HostResolver {
    /// The numeric addresses of `host`, a name or an address: IPv4 first, duplicates removed.
    /// Blocks while the system resolves the name.
    @Sendable
    package static func resolve(_ host: String) -> Result<[String], ResolveError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let first = result else {
            return .failure(ResolveError(String(cString: gai_strerror(rc))))
        }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(
                ai.pointee.ai_addr, ai.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0,
                NI_NUMERICHOST) == 0
            {
                let ip = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !out.contains(ip) { out.append(ip) }
            }
            p = ai.pointee.ai_next
        }
        // IPv4 first: the common case for load targets, and loopback ::1 may be disabled.
        out.sort { !$0.contains(":") && $1.contains(":") }
        return out.isEmpty ? .failure(ResolveError("no addresses")) : .success(out)
    }
}
