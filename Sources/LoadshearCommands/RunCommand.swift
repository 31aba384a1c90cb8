import ArgumentParser
import Foundation
import LoadshearHandlers
import LoadshearMetrics
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

    @Flag(help: "Print only warnings, errors and the final summary (none when stdout holds a report).")
    var quiet = false

    @Flag(help: "Plain periodic lines instead of the live dashboard.")
    var noTui = false

    @Option(
        help: ArgumentHelp(
            "Write the final report as JSON to this file ('-' for stdout; the summary then goes to stderr, unless --quiet).",
            valueName: "file"))
    var json: String?

    @Option(
        help: ArgumentHelp(
            "(ext) Write every 500 ms snapshot as one JSON line to this file ('-' for stdout).", valueName: "file"))
    var jsonInterval: String?

    // Unconditional: `--segment -1/2` reaches our own check ("must be 1…N") rather than
    // reading as an option with its value missing.
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "(ext) Run only segment i of N of the plan (contiguous session blocks; COUNTER values stay unique across segments). See docs/distributed.md.",
            valueName: "i/N"))
    var segment: String?

    @Option(
        help: ArgumentHelp(
            "(ext) Start the timeline at this instant (RFC 3339, e.g. 2026-11-30T12:00:00Z, or Unix seconds), so several processes start together.",
            valueName: "time"))
    var startAt: String?

    @Option(
        help: ArgumentHelp(
            "(ext) Write the final report as one self-contained HTML page (charts as inline SVG) to this file.",
            valueName: "file"))
    var html: String?

    @Option(
        help: ArgumentHelp(
            "(ext) Serve the run's metrics at http://host:port/metrics in the Prometheus text format (a bare port is 127.0.0.1; 0 picks a free one, printed).",
            valueName: "host:port"))
    var prometheus: String?

    @Flag(name: .customShort("v"), help: "Print the version (same as --version).")
    var shortVersion = false

    package init() {}

    /// The furthest ahead `--start-at` may be: a day, plus 10 minutes, so that a start
    /// `loadshear kubernetes --start-in 24h` wrote (rounded up to a whole second) holds in a
    /// pod that starts at once, or on a node whose clock is a little behind.
    static let maxStartAhead: TimeInterval = 86_400 + 600

    /// The script must be given once, as the argument or with `-s`, unless `-v` only asks for
    /// the version.
    package func validate() throws {
        if scriptArgument != nil, scriptOption != nil {
            throw ValidationError("Give the script once: as an argument or with -s/--script, not both")
        }
        if !shortVersion, script == nil {
            throw ValidationError("Missing the script to run: loadshear <script.ldsh> [--dry-run]")
        }
        if let segment, SegmentOption.parse(segment) == nil {
            throw ValidationError("--segment \(segment): expected i/N with 0 ≤ i < N, e.g. --segment 0/3")
        }
        if let startAt {
            guard let t = StartTime.parse(startAt) else {
                throw ValidationError(
                    "--start-at \(startAt): expected an RFC 3339 time (2026-11-30T12:00:00Z) or Unix seconds")
            }
            let late = Date().timeIntervalSince(t)
            if late < -Self.maxStartAhead {
                let hint =
                    (Double(startAt) ?? 0) > 1e11 ? " (it looks like milliseconds; --start-at takes Unix seconds)" : ""
                throw ValidationError(
                    "--start-at \(startAt) is more than a day ahead\(hint); start within 24 hours")
            }
            if late > 1 {
                throw ValidationError(
                    "--start-at \(startAt) was \(Figures.fixed(late, 1)) s ago; a start more than 1 s in the past is refused (the other segments would not be in step)"
                )
            }
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
        options.inspectFiles()
        let planned = try Planning.planAndFile(script, options: options)
        var plan = planned.plan
        if let segment, let (i, n) = SegmentOption.parse(segment) {
            if let problem = plan.segmentProblem(i, of: n) {
                Console.error("loadshear: error: \(problem)\n")
                throw ExitCode.invalidScript
            }
            plan = plan.segmented(i, of: n)
        }
        let limits = Limits.current()
        let preflight = plan.preflight(limits)
        if dryRun {
            plan.writeDryRun { Console.out($0) }
            Console.out("\n" + preflight.lines(limits).joined(separator: "\n") + "\n")
        }
        // (ext) Nothing connects when the sessions would not fit the fd limit or the ports.
        if !preflight.problems.isEmpty {
            let renderer = DiagnosticRenderer(useColor: Console.stderrIsTTY && Console.colorAllowed)
            for p in preflight.problems {
                if let range = p.range {
                    // At the action, with its line and a caret, as a checker error would be.
                    Console.error(renderer.render(.error(p.message, at: range), in: planned.file))
                } else {
                    Console.error("\(plan.scriptPath)\(p.line.map { ":\($0)" } ?? ""): error: \(p.message)\n")
                }
            }
            Console.error("the run does not fit this machine; nothing was connected\n")
            throw ExitCode.invalidScript
        }
        if dryRun { return }
        let code = await RunSession(
            plan: plan, acknowledge: acknowledge, quiet: quiet, json: json, noTUI: noTui,
            jsonInterval: jsonInterval, startAt: startAt.flatMap(StartTime.parse), prometheus: prometheus,
            htmlPath: html
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
        try planAndFile(path, options: options).plan
    }

    /// As ``plan(_:options:)``, with the script's text, for problems found later (the
    /// preflight's) to be shown at their place.
    package static func planAndFile(_ path: String, options: PlanOptions) throws -> (plan: Plan, file: SourceFile) {
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
        return (plan, file)
    }
}

/// `--segment i/N`.
enum SegmentOption {
    /// `(i, N)` from `i/N` with 0 ≤ i < N; nil when malformed.
    static func parse(_ text: String) -> (Int, Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else { return nil }
        return (i, n)
    }
}

/// `--start-at`: RFC 3339 (with or without fractional seconds, `Z` or an offset) or Unix
/// seconds (fractions allowed).
enum StartTime {
    static func parse(_ text: String) -> Date? {
        if let seconds = Double(text), seconds.isFinite, seconds > 0, text.allSatisfy({ $0.isNumber || $0 == "." }) {
            return Date(timeIntervalSince1970: seconds)
        }
        let plain = ISO8601DateFormatter()
        if let d = plain.date(from: text) { return d }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    /// `2026-11-30T12:00:00.250Z`.
    static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}
