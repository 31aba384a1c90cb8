import ArgumentParser
import Foundation

/// (ext) `loadshear report <run.json> -o <file.html>`: the HTML page of a JSON report, after
/// the fact (the same page `--html` writes at the end of a run).
package struct ReportCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "(ext) Render a JSON report as one self-contained HTML page.",
        discussion: """
            The page has the totals, thresholds and generator verdict, charts of throughput, open \
            connections and latency percentiles over time, HDR percentile curves per latency kind, a \
            per-shard table and the script (read from the path the report names, when it is still \
            there). It fetches nothing: it opens from disk and prints. Reports of any format \
            version render. Exit codes: 0 written, 1 unreadable report or unwritable output, 64 an output \
            that would overwrite the report.
            """
    )

    @Argument(help: ArgumentHelp("A JSON report (loadshear … --json run.json).", valueName: "run.json"))
    var input: String

    @Option(
        name: [.customShort("o"), .long],
        help: ArgumentHelp("The HTML file to write ('-' for stdout).", valueName: "file"))
    var output: String

    package init() {}

    package func validate() throws {
        if let clash = ReportFile.clash([("--output", output)], inputs: [input]) { throw ValidationError(clash) }
    }

    package func run() throws {
        guard let data = FileManager.default.contents(atPath: input),
            let report = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            report["totals"] != nil
        else {
            Console.error("loadshear: error: \(input) is not a readable Loadshear JSON report\n")
            throw ExitCode.runtimeFailure
        }
        let scriptPath = (report["settings"] as? [String: Any])?["script"] as? String
        let script = scriptPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        let page = HTMLReport.render(report, script: script)
        do {
            let file = try ReportFile.open(output, what: "the HTML report")
            defer { file.close() }
            guard file.write(Data(page.utf8)) else {
                Console.error("loadshear: error: could not write \(output)\n")
                throw ExitCode.runtimeFailure
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            Console.error("loadshear: error: \(error)\n")
            throw ExitCode.runtimeFailure
        }
    }
}
