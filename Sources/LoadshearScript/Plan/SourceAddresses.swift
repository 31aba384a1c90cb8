import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// (ext) `SOURCES { 127.0.0.2, 127.0.0.10-127.0.0.40, "fd00::1-fd00::8" }`: local addresses
/// sessions bind before they connect, round-robin by session number.
package enum SourceAddresses {
    /// Most addresses SOURCES may expand to (a range is written out in the plan).
    package static let maxAddresses = 65_536

    /// One address as 16 bytes (IPv4 in the last 4) and its family.
    struct Address: Comparable {
        var bytes: [UInt8]
        var isIPv6: Bool

        static func < (a: Address, b: Address) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

        init?(_ text: String) {
            var v4 = in_addr()
            var v6 = in6_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                bytes = [UInt8](repeating: 0, count: 12) + withUnsafeBytes(of: &v4) { Array($0) }
                isIPv6 = false
            } else if inet_pton(AF_INET6, text, &v6) == 1 {
                bytes = withUnsafeBytes(of: &v6) { Array($0) }
                isIPv6 = true
            } else {
                return nil
            }
        }

        /// Why a connection cannot come from this address, or nil for a unicast one: the
        /// kernel binds a multicast, broadcast or wildcard address all the same, then
        /// connects from another (or fails), so the bind test does not catch these.
        var notASource: String? {
            if isIPv6 {
                if bytes.allSatisfy({ $0 == 0 }) { return "the unspecified address is no source" }
                if bytes[0] == 0xFF { return "a multicast address is no source" }
                if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                    return
                        "an IPv4-mapped address is IPv4: write it as \(bytes[12...].map(String.init).joined(separator: "."))"
                }
                return nil
            }
            let b = Array(bytes[12...])
            if b[0] == 0 { return "an address of 0.0.0.0/8 (this network) is no source" }
            if b == [255, 255, 255, 255] { return "the broadcast address is no source" }
            if (224...239).contains(b[0]) { return "a multicast address is no source" }
            if b[0] >= 240 { return "a reserved address (240.0.0.0/4) is no source" }
            return nil
        }

        /// The next address (wrapping is the caller's business).
        mutating func increment() {
            var i = 15
            while i >= 0 {
                bytes[i] &+= 1
                if bytes[i] != 0 { return }
                i -= 1
            }
        }

        var text: String {
            if isIPv6 {
                var a = in6_addr()
                withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
                var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                inet_ntop(AF_INET6, &a, &out, socklen_t(out.count))
                return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            return bytes[12...].map(String.init).joined(separator: ".")
        }
    }

    /// An entry's addresses (`a` or `a-b`, ends included), or why it is not one.
    package static func expand(_ entry: String) -> Result<(addresses: [String], isIPv6: Bool), SourceError> {
        let ends = entry.split(separator: "-", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard ends.count <= 2, let first = Address(ends[0]) else {
            return .failure(SourceError("'\(entry)' is not an IP address or a range a-b of them"))
        }
        guard ends.count == 2 else {
            if let why = first.notASource { return .failure(SourceError("\(first.text): \(why)")) }
            return .success(([first.text], first.isIPv6))
        }
        guard let last = Address(ends[1]) else {
            return .failure(SourceError("'\(ends[1])' (the end of the range '\(entry)') is not an IP address"))
        }
        guard first.isIPv6 == last.isIPv6 else {
            return .failure(SourceError("the range '\(entry)' mixes IPv4 and IPv6"))
        }
        guard first <= last else {
            return .failure(SourceError("the range '\(entry)' starts after it ends; write the lower address first"))
        }
        var out: [String] = []
        var a = first
        while a <= last {
            if let why = a.notASource {
                return .failure(SourceError("the range '\(entry)' holds \(a.text): \(why)"))
            }
            out.append(a.text)
            if out.count > maxAddresses {
                return .failure(SourceError("the range '\(entry)' holds more than \(maxAddresses) addresses"))
            }
            if a == last { break }
            a.increment()
        }
        return .success((out, first.isIPv6))
    }

    /// Binds a throw-away socket to `ip` (port 0, `IP_BIND_ADDRESS_NO_PORT` so no port is
    /// taken): nil when this host can use it as a source, else why not.
    package static func bindCheck(_ ip: String) -> String? {
        guard let a = Address(ip) else { return "not an IP address" }
        let fd = socket(a.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_IP), ipBindAddressNoPort, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc: Int32
        if a.isIPv6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: a.bytes) }
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: a.bytes[12...]) }
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if rc == 0 { return nil }
        if errno == EADDRNOTAVAIL { return "not an address of this host" }
        return String(cString: strerror(errno))
    }

    /// `IP_BIND_ADDRESS_NO_PORT` (Linux): bind the address now, the port at connect, per
    /// destination — so one source serves many destinations with the full port range each.
    package static let ipBindAddressNoPort: Int32 = 24
}

package struct SourceError: Error, Sendable {
    package var message: String
    init(_ message: String) { self.message = message }
}
