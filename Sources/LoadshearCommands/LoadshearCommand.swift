import ArgumentParser
import Foundation
import LoadshearScript
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The `loadshear` command: runs a script by default; `quickstart`, `target`, `check` and
/// `kubernetes` are the other jobs.
package struct LoadshearCommand: AsyncParsableCommand {
    /// What `--version` and `-v` print.
    package static let version = "0.1.0"

    package static let configuration = CommandConfiguration(
        commandName: "loadshear",
        abstract: "A load generator for TCP and UDP servers that speak your own binary protocol.",
        discussion: """
            Write a Loadshear Script (.ldsh) with a SETTINGS block and an ORCHESTRATOR timeline, \
            check it with --dry-run, then run it. See docs/language.md.
            """,
        version: version,
        subcommands: [
            RunCommand.self, QuickstartCommand.self, TargetCommand.self, CheckCommand.self, MergeCommand.self,
            CompareCommand.self, ReportCommand.self,
            KubernetesCommand.self,
            BenchRecordCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )

    package init() {}
}
