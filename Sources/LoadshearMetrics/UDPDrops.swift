import Foundation

/// (ext) What the kernel dropped on UDP sockets because their receive queue was full: the
/// `drops` column of `/proc/net/udp` and `/proc/net/udp6` (the count `SO_RXQ_OVFL` reports
/// per read): a target that cannot keep up says so instead of passing its losses off as the
/// client's. (A run reads its own sessions' drops from each socket as it closes.)
package enum UDPDrops {
    /// The tables, IPv4 then IPv6.
    static let tables = ["/proc/net/udp", "/proc/net/udp6"]

    /// One socket's row: its local port, inode and drops.
    struct Row {
        var port: Int
        var inode: Int
        var drops: Int
    }

    /// The drops of the UDP sockets bound to `port`; nil where `/proc` does not tell.
    package static func count(port: Int) -> Int? {
        let rows = tables.compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }.compactMap(parse)
        guard !rows.isEmpty else { return nil }
        return rows.joined().filter { $0.port == port }.reduce(0) { $0 + $1.drops }
    }

    /// The rows of a table: `sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref
    /// pointer drops`; nil when the header is not that of such a table.
    static func parse(_ text: String) -> [Row]? {
        var lines = text.split(separator: "\n")
        guard !lines.isEmpty, lines.removeFirst().contains("drops") else { return nil }
        return lines.compactMap { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 13, let colon = f[1].lastIndex(of: ":"),
                let port = Int(f[1][f[1].index(after: colon)...], radix: 16), let inode = Int(f[9]),
                let drops = Int(f[12])
            else { return nil }
            return Row(port: port, inode: inode, drops: drops)
        }
    }

    /// The drops of the rows of `text` bound to `port` (for tests).
    package static func parse(_ text: String, port: Int) -> Int? {
        parse(text).map { $0.filter { $0.port == port }.reduce(0) { $0 + $1.drops } }
    }
}
