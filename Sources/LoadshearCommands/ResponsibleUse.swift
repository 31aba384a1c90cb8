import ArgumentParser
import Foundation
import LoadshearScript

/// The responsible-use notice (`cli.md`): real endpoints need the user's confirmation.
enum ResponsibleUse {
    static func isLoopback(_ ip: String) -> Bool {
        ip.hasPrefix("127.") || ip == "::1" || ip == "0:0:0:0:0:0:0:1"
    }

    /// Nil when the run may go ahead; otherwise the exit code (3).
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
