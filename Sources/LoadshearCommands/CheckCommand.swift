import ArgumentParser
import Foundation
import LoadshearHandlers
import LoadshearScript

/// `loadshear check handler.wasm`: does a module meet the contract, and what does it answer?
package struct CheckCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a handler module against the host-guest contract and try a packet through it.",
        discussion: """
            Prints the exports and whether each meets the contract, then runs one message through \
            handle_header (if exported) and handle_body — or, for a module on the fast path, \
            body_length and handle_message — and prints the response as a hexdump with its size \
            and the time per call. Exit 0 when the module meets the contract, 2 when not (or when \
            it cannot run under the memory cap), 64 for a usage error.
            """
    )

    @Argument(help: "The handler module (.wasm).")
    var module: String

    // Unconditional, as the numbers below: `-1` reaches our "at least 1", not "missing value".
    @Option(parsing: .unconditional, help: "Header size in bytes of the message to try.")
    var headerSize: Int = 8

    @Option(help: "A file holding the message to try (header and body).")
    var packet: String?

    @Option(help: "The message to try as hex, e.g. '00000001 00000004 70696e67'.")
    var hex: String?

    @Option(parsing: .unconditional, help: "Calls to time.")
    var iterations: Int = 2000

    @Option(help: "The memory cap, as HANDLER_MEMORY in a script (64KiB to 4GiB).")
    var memory: String = "64MiB"

    package init() {}

    /// The memory cap `--memory` gives, nil when it is not a size from 64 KiB to 4 GiB.
    private var memoryCap: Int? {
        guard case .success(let cap) = SizeLiteral.parse(memory),
            (SizeLiteral.wasmPage...SizeLiteral.wasmMaxMemory).contains(cap)
        else { return nil }
        return cap
    }

    /// Rejects `--packet` together with `--hex`, a header size or iteration count below 1, and
    /// `--hex` text that is not whole bytes.
    package func validate() throws {
        if packet != nil, hex != nil { throw ValidationError("give --packet or --hex, not both") }
        if headerSize < 1 { throw ValidationError("--header-size must be at least 1") }
        if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        guard memoryCap != nil else {
            throw ValidationError("--memory must be a size from 64KiB to 4GiB, such as 256MiB; got '\(memory)'")
        }
        if let hex, Self.hexBytes(hex) == nil {
            throw ValidationError(
                "--hex needs pairs of hex digits (spaces and ':' allowed), e.g. '00000001 00000004 70696e67'")
        }
    }

    /// The bytes of `--hex` text: pairs of hex digits, whitespace and ':' ignored; nil for an
    /// odd number of digits or a character that is not one.
    static func hexBytes(_ hex: String) -> [UInt8]? {
        let digits = hex.filter { !$0.isWhitespace && $0 != ":" }
        guard digits.count % 2 == 0 else { return nil }
        return Hexdump.parse(digits)
    }

    /// Reads and inspects the module and prints each contract function's status; exits 2 when
    /// the contract is not met. Otherwise makes a handler, runs the message through
    /// `handle_header` (when exported) and `handle_body`, prints the reply as a hexdump, and
    /// times `iterations` whole calls (alloc, copy in, `handle_body`, copy out, dealloc).
    package func run() throws {
        let bytes: [UInt8]
        switch FileBytes.read(module) {
        case .success(let b): bytes = b
        case .failure(let why):
            Console.error("loadshear check: error: cannot read \(module): \(why.reason)\n")
            throw ExitCode.invalidScript
        }
        // The message first: a --packet that cannot be read is a usage error, said before
        // any report on the module.
        let message = try self.message()
        let inspection = WasmModuleInspector().inspect(bytes)
        print("module   \(module) (\(bytes.count) bytes)")
        print("exports  \(inspection.exports.isEmpty ? "(none)" : inspection.exports.joined(separator: ", "))")
        for req in WasmContract.allFunctions {
            let needed = req.required && req.fastPath == inspection.fastPath
            let present = inspection.exports.contains(req.name)
            let bad = inspection.problems.contains { $0.contains("'\(req.name)'") }
            let mark = bad ? "✗" : present ? "✓" : (needed ? "✗" : "-")
            let note =
                req.fastPath ? (req.required ? " (fast path)" : " (fast path, optional)") : needed ? "" : " (optional)"
            print("  \(mark) \(req.signature)\(note)")
        }
        print("  \(inspection.exports.contains("memory") ? "✓" : "✗") memory")
        guard inspection.problems.isEmpty else {
            for p in inspection.problems { Console.error("\(module): error: \(p)\n") }
            print("contract not met")
            throw ExitCode.invalidScript
        }
        let cap = memoryCap ?? SizeLiteral.defaultHandlerMemory  // checked by validate()
        let handler: MessageHandler
        do {
            let factory = try WasmHandlerFactory(bytes: bytes, memoryLimit: cap) { Console.error("\($0)\n") }
            handler = try factory.makeHandler()
        } catch {
            // A module the run would refuse too (its initial memory above the cap, say).
            let text = "\(error)"
            let hint =
                text.contains("memory") ? " (the memory cap is \(SizeLiteral.describe(cap)); --memory sets it)" : ""
            Console.error("\(module): error: \(text)\(hint)\n")
            print(
                hint.isEmpty
                    ? "contract met, but the module cannot be set up" : "contract met, but not under this memory cap")
            throw ExitCode.invalidScript
        }
        print("contract met")
        let headerFunction = WasmHandlerSpec.headerFunction(fast: inspection.fastPath, exports: inspection.exports)
        let pathHeader = handler.readsHeaders ? headerFunction : nil
        print("path     \(WasmHandlerSpec.describePath(fast: inspection.fastPath, header: pathHeader))")

        let readsHeaders = handler.readsHeaders
        if readsHeaders, message.count < headerSize {
            // The module would be handed a part of a header, which no framed read ever does.
            // (A ValidationError from run() would print the top-level usage, not check's.)
            Console.error(
                "loadshear check: error: the message is \(message.count) bytes, shorter than the \(headerSize)-byte header (--header-size); give a whole frame\n"
            )
            throw ExitCode.usage
        }
        print("\nmessage  \(message.count) bytes\n" + Hexdump.render(message, indent: "  "))
        let header = Array(message.prefix(headerSize))
        if readsHeaders {
            let length = header.withUnsafeBytes { handler.bodyLength(header: $0) }
            print("\(headerFunction)(\(header.count) bytes) -> \(Self.describe(length))")
            if case .length(let n) = length, message.count != headerSize + n {
                // A framed read would hand the module exactly header + body bytes.
                Console.error(
                    "note: \(headerFunction) says the body is \(n) bytes, but the message has \(message.count - headerSize) after the \(headerSize)-byte header; a run would frame \(headerSize + n) bytes\n"
                )
            }
        }
        var response: [UInt8] = []
        let outcome = message.withUnsafeBytes { m in handler.handle(m) { response = Array($0) } }
        let body = inspection.fastPath ? "handle_message" : "handle_body"
        print("\(body) -> \(Self.describe(outcome)), \(response.count) bytes")
        if !response.isEmpty { print(Hexdump.render(response, indent: "  ")) }
        // Timed as a framed read uses it: the header's length (when the module reads headers),
        // then the message.
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for _ in 0..<iterations {
                if readsHeaders { _ = header.withUnsafeBytes { handler.bodyLength(header: $0) } }
                _ = message.withUnsafeBytes { m in handler.handle(m) { _ in } }
            }
        }
        let perCall = Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
        let headerCalls =
            !readsHeaders
            ? "" : headerFunction == "body_length" ? "body_length, " : "handle_header with alloc and dealloc, "
        let calls =
            headerCalls
            + (inspection.fastPath
                ? "copy in, handle_message, copy out" : "alloc, copy, handle_body, copy out, dealloc ×2")
        print(
            "time     \(String(format: "%.2f", perCall / Double(iterations))) µs per message (\(calls); \(iterations) runs)"
        )
    }

    /// The message to try: the `--packet` file, the `--hex` bytes, or a generated ping — a
    /// header of `--header-size` bytes (at least 8) with type 1 at bytes 0–3 and the body
    /// length at 4–7, then the body `loadshear-check`.
    private func message() throws -> [UInt8] {
        if let packet {
            switch FileBytes.read(packet) {
            case .success(let b): return b
            case .failure(let why):
                Console.error("loadshear check: error: cannot read \(packet): \(why.reason)\n")
                throw ExitCode.usage
            }
        }
        if let hex, let bytes = Self.hexBytes(hex) { return bytes }
        // A generated ping: type 1 at bytes 0..3, body length at 4..7 (big-endian).
        let body = Array("loadshear-check".utf8)
        var header = [UInt8](repeating: 0, count: max(headerSize, 8))
        header[3] = 1
        header[7] = UInt8(body.count)
        return header + body
    }

    /// A body call's outcome as `check` prints it.
    static func describe(_ o: HandlerOutcome) -> String {
        switch o {
        case .reply: "reply"
        case .empty: "no reply (size 0)"
        case .failed(let kind): kind.explanation
        }
    }

    /// A header call's outcome as `check` prints it: the length, or why there is none.
    static func describe(_ o: HeaderOutcome) -> String {
        switch o {
        case .length(let n): "\(n)"
        case .invalid: "a negative length (invalid)"
        case .failed(let kind): kind.explanation
        }
    }
}

/// Hex for `check`: dumping replies and parsing `--hex`.
enum Hexdump {
    /// What `check` dumps of a message or a reply at most: a module that answers with
    /// megabytes must not flood the terminal (16 MiB would be a million rows).
    static let dumpLimit = 4096

    /// Rows of 16 bytes: the offset, the bytes in hex, and the printable ASCII between bars
    /// ('.' for the rest); rows are joined by newlines, with none after the last. Bytes past
    /// `limit` are not shown: a last row says how many were left out.
    static func render(_ bytes: [UInt8], indent: String = "", limit: Int = dumpLimit) -> String {
        var lines: [String] = []
        let shown = min(bytes.count, limit)
        for start in stride(from: 0, to: shown, by: 16) {
            let row = bytes[start..<min(start + 16, shown)]
            let hex = row.map { String(format: "%02x", $0) }.joined(separator: " ")
            let text = String(row.map { (0x20..<0x7F).contains($0) ? Character(UnicodeScalar($0)) : "." })
            lines.append(
                indent + String(format: "%08x  ", start) + hex.padding(toLength: 48, withPad: " ", startingAt: 0)
                    + " |\(text)|")
        }
        if shown < bytes.count {
            lines.append(indent + "… \(bytes.count - shown) more bytes not shown (\(bytes.count) in all)")
        }
        return lines.joined(separator: "\n")
    }

    /// Bytes from hex digits taken two at a time, with no separators; nil for an odd count or
    /// a non-hex digit.
    static func parse(_ digits: String) -> [UInt8]? {
        var out: [UInt8] = []
        var it = digits.makeIterator()
        while let a = it.next() {
            guard let b = it.next(), let v = UInt8(String([a, b]), radix: 16) else { return nil }
            out.append(v)
        }
        return out
    }
}
