import Foundation

/// A script's text, kept as UTF-8 bytes with the start offset of every line, so that
/// tokens can carry byte ranges and diagnostics can turn them into line and column.
package struct SourceFile: Sendable {
    /// The path as the user gave it; diagnostics print it verbatim.
    package let path: String
    /// The raw bytes of the script. Scripts are UTF-8; invalid sequences only ever end up
    /// inside strings or in "unexpected character" diagnostics.
    package let bytes: [UInt8]
    /// Byte offset at which each line starts; `lineStarts[0] == 0`.
    package let lineStarts: [Int]

    /// A file of `bytes`, its line starts found with one `memchr` pass.
    package init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
        var starts = [0]
        bytes.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            var p = UnsafeRawPointer(base)
            let end = UnsafeRawPointer(base + buf.count)
            while p < end, let nl = memchr(p, 0x0A, end - p) {
                starts.append(UnsafeRawPointer(nl) - UnsafeRawPointer(base) + 1)
                p = UnsafeRawPointer(nl) + 1
            }
        }
        self.lineStarts = starts
    }

    /// A file of `text`'s UTF-8 bytes.
    package init(path: String, text: String) {
        self.init(path: path, bytes: Array(text.utf8))
    }

    /// The 1-based line and column of a byte offset. Columns count Unicode scalars, not
    /// bytes, so carets line up under non-ASCII text.
    package func location(of offset: Int) -> SourceLocation {
        let clamped = max(0, min(offset, bytes.count))
        var lo = 0
        var hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= clamped { lo = mid } else { hi = mid - 1 }
        }
        var column = 1
        var i = lineStarts[lo]
        while i < clamped {
            if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        // A continuation byte at the offset itself belongs to the previous scalar.
        return SourceLocation(line: lo + 1, column: column)
    }

    /// The text of a 1-based line without its line terminator.
    package func lineText(_ line: Int) -> String {
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }

    /// The source text of a byte range.
    package func text(_ range: SourceRange) -> String {
        let lo = max(0, min(range.start, bytes.count))
        let hi = max(lo, min(range.end, bytes.count))
        return String(decoding: bytes[lo..<hi], as: UTF8.self)
    }
}

/// A 1-based line and column.
package struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    package var line: Int
    package var column: Int
    package var description: String { "\(line):\(column)" }
}

/// A half-open byte range in a `SourceFile`.
package struct SourceRange: Sendable, Equatable {
    /// The first byte.
    package var start: Int
    /// One past the last byte; never before `start`.
    package var end: Int

    /// A range from `start` to `end`; an `end` before `start` is raised to it.
    package init(start: Int, end: Int) {
        self.start = start
        self.end = max(start, end)
    }

    /// The smallest range covering both.
    package func union(_ other: SourceRange) -> SourceRange {
        SourceRange(start: min(start, other.start), end: max(end, other.end))
    }
}
