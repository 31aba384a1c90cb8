import Foundation

/// What the plan builder needs from the outside world; tests replace any of it.
package struct PlanOptions: Sendable {
    /// `--expand-envs`: expand `$NAME` and `${NAME}` in paths from `environment`.
    package var expandEnvironment = false
    /// Variables for that expansion, and `HOME` for `~/`.
    package var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Default shard count (capped at the session count) when SHARDS is not given.
    package var cpuCount = ProcessInfo.processInfo.activeProcessorCount
    /// Turns a host name into numeric addresses, or says why it cannot.
    package var resolver: @Sendable (String) -> Result<[String], ResolveError> = HostResolver.resolve
    /// (ext) Whether a SOURCES address can be bound here: nil, or why not.
    package var sourceCheck: @Sendable (String) -> String? = SourceAddresses.bindCheck
    /// Checks a WASM handler at plan time; nil skips the check (exports and memory then unknown).
    package var handlerInspector: (any HandlerInspector)?
    /// (ext) Checks the TLS block's PEM files at plan time; nil: only that they can be read.
    package var tlsInspector: (any TLSInspector)?

    /// The process's environment and CPU count, the system resolver, no inspector.
    package init() {}

    /// (ext) For planning a script that runs elsewhere (`kubernetes`, `merge --script`): host
    /// names stand for themselves and SOURCES are not bind-tested here; the script's
    /// identity does not depend on either.
    package static func elsewhere() -> PlanOptions {
        var o = PlanOptions()
        o.resolver = { .success([$0]) }
        o.sourceCheck = { _ in nil }
        return o
    }
}

/// Builds the `Plan` from a script: parses, checks every rule of the language, and reads
/// packet files and the handler module. All independent problems are reported.
package enum PlanBuilder {
    /// The OFFSET of an action that gives none: 250ms.
    package static let defaultOffset: Nanoseconds = 250_000_000
    /// Largest session count a plan accepts; far above what the fd limit allows to run.
    package static let maxSessions = 10_000_000
    /// The largest UDP payload over IPv4 (65,535 bytes less the IP and UDP headers): a packet
    /// sent over UDP must fit.
    package static let maxUDPPayload = 65_507
    /// The same over IPv6 (no jumbograms): 65,535 less the UDP header.
    package static let maxUDPPayloadIPv6 = 65_527

    /// Returns the plan when there are no errors; diagnostics (errors and warnings) either way.
    package static func build(_ file: SourceFile, options: PlanOptions = PlanOptions()) -> (Plan?, DiagnosticBag) {
        var d = DiagnosticBag()
        let syntax = Parser.parse(file, diagnostics: &d)
        var checker = Checker(file: file, options: options)
        let plan = checker.check(syntax, &d)
        return (d.hasErrors ? nil : plan, d)
    }

    /// Reads a script file; the system's reason when it cannot.
    package static func read(path: String) -> Result<SourceFile, FileBytes.ReadError> {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            return .failure(FileBytes.ReadError(reason: "it is a directory"))
        }
        return FileBytes.read(path).map { SourceFile(path: path, bytes: $0) }
    }

    /// Reads a script file and builds its plan. A file that cannot be read is reported
    /// as a diagnostic at 1:1, like any other problem with the script.
    package static func build(path: String, options: PlanOptions = PlanOptions()) -> (Plan?, DiagnosticBag, SourceFile)
    {
        switch read(path: path) {
        case .success(let file):
            let (plan, d) = build(file, options: options)
            return (plan, d, file)
        case .failure(let why):
            var d = DiagnosticBag()
            d.error("cannot read the script: \(why.reason)", at: SourceRange(start: 0, end: 0))
            return (nil, d, SourceFile(path: path, bytes: []))
        }
    }
}
