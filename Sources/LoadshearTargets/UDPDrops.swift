import Foundation

/// (ext) What the kernel dropped on a UDP socket because its receive queue was full: the
/// `drops` column of `/proc/net/udp` (the count `SO_RXQ_OVFL` reports per read), so a target
/// that cannot keep up says so instead of passing its losses off as the client's.
enum UDPDrops {
    /// The drops of the IPv4 UDP sockets bound to `port`; nil where `/proc` does not tell.
    static func count(port: Int, table: String = "/proc/net/udp") -> Int? {
        guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { return nil }
        return parse(text, port: port)
    }

    /// Sums the last column of the rows whose local address has `port`.
    static func parse(_ text: String, port: Int) -> Int? {
        let suffix = ":" + String(format: "%04X", port)
        var lines = text.split(separator: "\n")
        guard !lines.isEmpty, lines.removeFirst().contains("drops") else { return nil }
        var total = 0
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 2, fields[1].hasSuffix(suffix), let drops = fields.last.flatMap({ Int($0) }) else {
                continue
            }
            total += drops
        }
        return total
    }
}
