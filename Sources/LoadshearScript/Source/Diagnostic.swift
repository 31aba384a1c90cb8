/// A located problem in a script, rendered like a compiler error.
package struct Diagnostic: Sendable, Equatable, Error {
    /// How serious it is; the raw value is the word printed before the message.
    package enum Severity: String, Sendable {
        case error
        case warning
        case note
    }

    package var severity: Severity
    /// One sentence without a final period: what is wrong and, where it helps, what to write.
    package var message: String
    /// Where the caret points.
    package var range: SourceRange

    package init(_ severity: Severity = .error, _ message: String, at range: SourceRange) {
        self.severity = severity
        self.message = message
        self.range = range
    }

    package static func error(_ message: String, at range: SourceRange) -> Diagnostic {
        Diagnostic(.error, message, at: range)
    }

    package static func warning(_ message: String, at range: SourceRange) -> Diagnostic {
        Diagnostic(.warning, message, at: range)
    }
}

/// Collects diagnostics while lexing, parsing and validating. Reporting goes on after the
/// first error so a user sees every independent problem at once; past `limit` errors the
/// rest are dropped and one line says so.
package struct DiagnosticBag: Sendable {
    /// What was kept, in the order it was added, duplicates removed.
    package private(set) var diagnostics: [Diagnostic] = []
    /// Errors past the limit: counted, not kept.
    package private(set) var droppedErrors = 0
    /// Errors kept before the rest are dropped (20 by default).
    package let limit: Int
    private var shownErrors = 0
    /// Checking stopped once the limit was reached (the rest of the script was not read).
    package private(set) var stopped = false

    package init(limit: Int = 20) {
        self.limit = limit
    }

    /// Errors kept and dropped.
    package var errorCount: Int { shownErrors + droppedErrors }
    package var hasErrors: Bool { errorCount > 0 }
    /// As many errors as will be shown: reading further cannot show more.
    package var isFull: Bool { errorCount >= limit }

    /// Where tokens made from broken input start (an unterminated string): the error that
    /// said so is the only one reported there; what later passes make of the token is not.
    private var damaged: Set<Int> = []

    /// Marks the token starting at `start` as made from input already reported as broken.
    package mutating func markDamaged(at start: Int) {
        damaged.insert(start)
    }

    /// Notes that checking stopped at the limit.
    package mutating func stop() {
        stopped = true
    }

    /// Adds a diagnostic unless one equal to it (severity, message and range) is kept already.
    /// An error past the limit is only counted; warnings are always kept.
    package mutating func add(_ diagnostic: Diagnostic) {
        if diagnostic.severity == .error, errorCount >= limit {
            droppedErrors += 1
            return
        }
        // The same message at the same place is one problem, whichever pass found it.
        if diagnostics.contains(diagnostic) { return }
        if damaged.contains(diagnostic.range.start) { return }
        diagnostics.append(diagnostic)
        if diagnostic.severity == .error { shownErrors += 1 }
    }

    package mutating func error(_ message: String, at range: SourceRange) {
        add(.error(message, at: range))
    }

    package mutating func warning(_ message: String, at range: SourceRange) {
        add(.warning(message, at: range))
    }

    /// Diagnostics in source order (stable for equal positions).
    package var sorted: [Diagnostic] {
        diagnostics.enumerated().sorted { a, b in
            a.element.range.start != b.element.range.start
                ? a.element.range.start < b.element.range.start : a.offset < b.offset
        }.map(\.element)
    }
}

/// Renders diagnostics as `file:line:col: error: message`, the source line, and a caret
/// with tildes under the offending token.
package struct DiagnosticRenderer: Sendable {
    /// Whether to color the severity, the message and the caret with ANSI escapes.
    package var useColor: Bool

    package init(useColor: Bool = false) {
        self.useColor = useColor
    }

    /// One diagnostic in three lines, each ending in a newline: location and message, the
    /// source line, the caret.
    package func render(_ diagnostic: Diagnostic, in file: SourceFile) -> String {
        let loc = file.location(of: diagnostic.range.start)
        let line = file.lineText(loc.line)
        let severity = diagnostic.severity.rawValue
        let colored: String
        if useColor {
            let code =
                switch diagnostic.severity {
                case .error: "\u{1B}[1;31m"
                case .warning: "\u{1B}[1;35m"
                case .note: "\u{1B}[1;36m"
                }
            colored = "\(code)\(severity):\u{1B}[0m\u{1B}[1m \(diagnostic.message)\u{1B}[0m"
        } else {
            colored = "\(severity): \(diagnostic.message)"
        }
        var out = "\(file.path):\(loc.line):\(loc.column): \(colored)\n"
        out += line + "\n"
        // Keep tabs in the prefix so the caret lines up however the terminal renders them.
        var prefix = ""
        for (i, ch) in line.unicodeScalars.enumerated() where i < loc.column - 1 {
            prefix.append(ch == "\t" ? "\t" : " ")
        }
        let endLoc = file.location(of: diagnostic.range.end)
        var width = 1
        if endLoc.line == loc.line {
            width = max(1, endLoc.column - loc.column)
        } else {
            width = max(1, line.unicodeScalars.count - (loc.column - 1))
        }
        let marker = "^" + String(repeating: "~", count: width - 1)
        out += prefix + (useColor ? "\u{1B}[1;32m\(marker)\u{1B}[0m" : marker) + "\n"
        return out
    }

    /// Every diagnostic of `bag` in source order, then a note when checking stopped at the
    /// limit or errors were dropped.
    package func render(_ bag: DiagnosticBag, in file: SourceFile) -> String {
        var out = bag.sorted.map { render($0, in: file) }.joined()
        if bag.stopped {
            out += "\(file.path): note: checking stopped after \(bag.limit) errors; fix these and check again\n"
        } else if bag.droppedErrors > 0 {
            out += "\(file.path): note: \(bag.droppedErrors) more error(s) not shown\n"
        }
        return out
    }
}
