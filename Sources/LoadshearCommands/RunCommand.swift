import ArgumentParser
import Foundation
import LoadshearHandlers
import LoadshearScript

/// `loadshear <script> [options]`: plan the script, then print the plan or run it.
package struct RunCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a Loadshear Script (the default command).",
        discussion: """
            Ctrl-C, SIGTERM or SIGHUP stop the run gracefully (summary and report included); a second one exits at once. \
            Exit codes: 0 done, 1 runtime failure, 2 invalid script, 3 acknowledgement missing, \
            4 an EXPECT threshold failed, 64 usage, 129/130/143 stopped twice by SIGHUP/SIGINT/SIGTERM.
            """
    )

    @Argument(help: ArgumentHelp("The Loadshear Script (.ldsh) to run.", valueName: "script"))
    var scriptArgument: String?

    @Option(
        name: [.customShort("s"), .customLong("script")],
        help: ArgumentHelp("The script, given as an option (the C++ original's form).", valueName: "file"))
    var scriptOption: String?

    @Option(
        help: ArgumentHelp(
            "Accepted for scripts and tools written for the C++ original; it has no effect here (Loadshear allocates as it goes).",
            valueName: "n"))
    var arenaInitMb: Int?

    /// The script, however it was given.
    var script: String? { scriptArgument ?? scriptOption }

    @Flag(name: [.short, .long], help: "Print the execution plan and exit without running it.")
    var dryRun = false

    @Flag(name: [.short, .long], help: "Expand $NAME and ${NAME} in script paths from the environment.")
    var expandEnvs = false

    @Flag(help: "Accept the responsible-use notice without the prompt.")
    var acknowledge = false

    @Flag(help: "Print only warnings, errors and the final summary.")
    var quiet = false

    @Flag(help: "Plain periodic lines instead of the live dashboard.")
    var noTui = false

    @Option(help: ArgumentHelp("Write the final report as JSON to this file ('-' for stdout).", valueName: "file"))
    var json: String?

    @Option(
        help: ArgumentHelp(
            "(ext) Write every 500 ms snapshot as one JSON line to this file ('-' for stdout).", valueName: "file"))
    var jsonInterval: String?

    @Flag(name: .customShort("v"), help: "Print the version (same as --version).")
    var shortVersion = false

    package init() {}

    /// The script must be given once, as the argument or with `-s`, unless `-v` only asks for
    /// the version.
    package func validate() throws {
        if scriptArgument != nil, scriptOption != nil {
            throw ValidationError("Give the script once: as an argument or with -s/--script, not both")
        }
        if !shortVersion, script == nil {
            throw ValidationError("Missing the script to run: loadshear <script.ldsh> [--dry-run]")
        }
    }

    /// Prints the version for `-v`. Otherwise builds the plan (exit 2 on errors), prints it
    /// for `--dry-run`, or runs it through ``RunSession`` and exits with its code.
    package func run() async throws {
        if shortVersion {
            print(LoadshearCommand.version)
            return
        }
        guard let script else { return }
        var options = PlanOptions()
        options.expandEnvironment = expandEnvs
        options.handlerInspector = WasmModuleInspector()
        let plan = try Planning.plan(script, options: options)
        if dryRun {
            plan.writeDryRun { Console.out($0) }
            return
        }
        let code = await RunSession(
            plan: plan, acknowledge: acknowledge, quiet: quiet, json: json, noTUI: noTui,
            jsonInterval: jsonInterval
        ).execute()
        if code != .success { throw code }
    }
}

/// Building a plan from the command line: diagnostics to stderr, exit 2 on errors.
package enum Planning {
    /// Reads and checks the script at `path`, printing its diagnostics, warnings included, to
    /// stderr; the last line counts the errors when there are any.
    ///
    /// - Throws: ``ExitCode/invalidScript`` when the file cannot be read or has errors.
    package static func plan(_ path: String, options: PlanOptions) throws -> Plan {
        let file: SourceFile
        switch PlanBuilder.read(path: path) {
        case .success(let f): file = f
        case .failure(let why):
            // Not a problem inside the script: no line to show, no caret.
            Console.error("loadshear: error: cannot read \(path): \(why.reason)\n")
            throw ExitCode.invalidScript
        }
        let (plan, diagnostics) = PlanBuilder.build(file, options: options)
        let renderer = DiagnosticRenderer(useColor: Console.stderrIsTTY && Console.colorAllowed)
        // Warnings are printed even under --quiet: they are few and they matter.
        if !diagnostics.diagnostics.isEmpty {
            Console.error(renderer.render(diagnostics, in: file))
        }
        guard let plan else {
            let n = diagnostics.errorCount
            let count = diagnostics.stopped ? "at least \(n) errors" : "\(n) error\(n == 1 ? "" : "s")"
            Console.error("\(count) in \(path); nothing was run\n")
            throw ExitCode.invalidScript
        }
        return plan
    }
}
