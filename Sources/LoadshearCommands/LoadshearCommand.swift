import ArgumentParser
import Foundation
import LoadshearScript
import Synchronization

/// The `loadshear` command: runs a script by default; `quickstart`, `target` and `check`
/// are the other jobs.
package struct LoadshearCommand: AsyncParsableCommand {
    package static let version = "0.1.0"

    package static let configuration = CommandConfiguration(
        commandName: "loadshear",
        abstract: "A load generator for TCP and UDP servers that speak your own binary protocol.",
        discussion: """
            Write a Loadshear Script (.ldsh) with a SETTINGS block and an ORCHESTRATOR timeline, \
            check it with --dry-run, then run it. See docs/language.md.
            """,
        version: version,
        subcommands: [RunCommand.self, QuickstartCommand.self, TargetCommand.self, CheckCommand.self, BenchRecordCommand.self],
        defaultSubcommand: RunCommand.self
    )

    package init() {}
}

/// Where diagnostics and logs go: stderr, in colour only on a terminal without NO_COLOR.
package enum Console {
    package static var stderrIsTTY: Bool { isatty(2) == 1 }
    package static var stdoutIsTTY: Bool { isatty(1) == 1 }
    package static var stdinIsTTY: Bool { isatty(0) == 1 }
    package static var colorAllowed: Bool { ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

    /// While the dashboard owns the screen, stderr text is held back and printed once it
    /// is gone, so logs never land in the dashboard's area.
    private static let held = Mutex<[String]?>(nil)

    package static func error(_ s: String) {
        let printNow = held.withLock { h -> Bool in
            guard h != nil else { return true }
            h!.append(s)
            return false
        }
        if printNow { FileHandle.standardError.write(Data(s.utf8)) }
    }

    /// Starts holding stderr text back (the dashboard is about to draw).
    package static func holdErrors() {
        held.withLock { if $0 == nil { $0 = [] } }
    }

    /// Prints what was held back and stops holding.
    package static func releaseErrors() {
        let lines = held.withLock { h -> [String] in
            let v = h ?? []
            h = nil
            return v
        }
        for l in lines { FileHandle.standardError.write(Data(l.utf8)) }
    }

    package static func out(_ s: String) {
        FileHandle.standardOutput.write(Data(s.utf8))
    }
}
