import ArgumentParser
import Foundation
import LoadshearScript

/// The responsible-use notice (`cli.md`): real endpoints need the user's confirmation.
enum ResponsibleUse {
    /// 127.0.0.0/8 and `::1` (short or fully written out); every other address is a real
    /// endpoint.
    static func isLoopback(_ ip: String) -> Bool {
        ip.hasPrefix("127.") || ip == "::1" || ip == "0:0:0:0:0:0:0:1"
    }

    /// Nil when the run may go ahead; otherwise the exit code (3).
    /// A plan that loads only loopback, or `--acknowledge`, goes ahead. Otherwise the endpoints
    /// are listed and the user must answer `yes` (or `y`) on the terminal; without a terminal
    /// on stdin the run is refused.
    static func check(plan: Plan, acknowledged: Bool) -> ExitCode? {
        let addresses = plan.addresses
        if acknowledged || addresses.allSatisfy({ isLoopback($0.ip) }) { return nil }
        var notice = "Loadshear is about to load these endpoints:\n"
        for e in plan.endpoints {
            notice += "  \(e.host) -> " + e.addresses.map(\.description).joined(separator: ", ") + "\n"
        }
        notice += "Only load systems you own or are authorised to test.\n"
        guard Console.stdinIsTTY else {
            Console.error(
                notice
                    + "loadshear: refusing to run without confirmation: stdin is not a terminal; pass --acknowledge to confirm\n"
            )
            return .notAcknowledged
        }
        Console.error(notice + "Type 'yes' to confirm you are authorised: ")
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
        if answer == "yes" || answer == "y" { return nil }
        Console.error("loadshear: not confirmed; nothing was run\n")
        return .notAcknowledged
    }
}
