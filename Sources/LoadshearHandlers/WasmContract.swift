import LoadshearScript
import WasmKit

/// The host–guest contract (`docs/handlers.md`): what a handler module must export.
package enum WasmContract {
    /// One function a module must (or may) export, with its exact type.
    package struct Requirement: Sendable {
        package var name: String
        package var parameters: [ValueType]
        package var results: [ValueType]
        /// False for `handle_header` and `body_length`, which are optional.
        package var required: Bool
        /// (ext) Whether it belongs to the fast path (``fastFunctions``).
        package var fastPath = false

        /// `alloc(i32 size) -> i32`
        package var signature: String {
            let names =
                [
                    "alloc": ["size"], "dealloc": ["ptr", "size"], "handle_body": ["ptr", "size"],
                    "handle_header": ["ptr", "size"], "scratch": ["size"], "handle_message": ["size"],
                    "body_length": ["size"],
                ][name] ?? []
            let params = parameters.enumerated().map { i, t in
                i < names.count ? "\(WasmContract.spell(t)) \(names[i])" : WasmContract.spell(t)
            }
            let result = results.isEmpty ? "" : " -> " + results.map(WasmContract.spell).joined(separator: ", ")
            return "\(name)(\(params.joined(separator: ", ")))\(result)"
        }
    }

    /// The original contract: `alloc`, `dealloc` and `handle_body`, required, and
    /// `handle_header`, optional. Per message: alloc, copy in, handle_body, copy out, dealloc
    /// of the reply and of the message (4 calls; `handle_header` adds 3 more per frame).
    package static let functions: [Requirement] = [
        Requirement(name: "alloc", parameters: [.i32], results: [.i32], required: true),
        Requirement(name: "dealloc", parameters: [.i32, .i32], results: [], required: true),
        Requirement(name: "handle_body", parameters: [.i32, .i32], results: [.i64], required: true),
        Requirement(name: "handle_header", parameters: [.i32, .i32], results: [.i32], required: false),
    ]

    /// (ext) The fast path, which a module opts into by exporting `scratch` and
    /// `handle_message` (then the original functions are optional): the host asks once per
    /// instance for a buffer (`scratch(size)`, again only for a larger message), writes each
    /// message there and makes one call, `handle_message(size)`, whose packed reply points into
    /// guest memory and stays valid until the next call; nothing is freed per message.
    /// `body_length(size)` reads a header written to the same buffer (one call per frame).
    package static let fastFunctions: [Requirement] = [
        Requirement(name: "scratch", parameters: [.i32], results: [.i32], required: true, fastPath: true),
        Requirement(name: "handle_message", parameters: [.i32], results: [.i64], required: true, fastPath: true),
        Requirement(name: "body_length", parameters: [.i32], results: [.i32], required: false, fastPath: true),
    ]

    /// Both contracts' functions, the original's first.
    package static let allFunctions = functions + fastFunctions

    /// A value type as WebAssembly text writes it: `i32`, `i64`, `f32`, `f64`.
    static func spell(_ t: ValueType) -> String {
        switch t {
        case .i32: "i32"
        case .i64: "i64"
        case .f32: "f32"
        case .f64: "f64"
        default: "\(t)"
        }
    }

    /// A function type: `(i32, i32) -> i64`, or `-> ()` without results.
    static func spell(_ f: FunctionType) -> String {
        let r = f.results.isEmpty ? "()" : f.results.map(spell).joined(separator: ", ")
        return "(" + f.parameters.map(spell).joined(separator: ", ") + ") -> " + r
    }

    /// An error's text for people: its first line (WasmKit trap texts carry long backtraces),
    /// without the Swift debug wrapping WasmKit's parse errors have
    /// (`"Message(text: "…")" at offset 0x4` → `… (at byte 4)`).
    package static func firstLine(_ error: Error) -> String {
        let text = String(describing: error)
        var line = String(text.prefix { $0 != "\n" })
        if let m = line.firstMatch(of: /^"?Message\(text: "(.*)"\)"?(?: at offset 0x([0-9a-fA-F]+))?$/) {
            line = String(m.1)
            if let hex = m.2, let offset = Int(hex, radix: 16) { line += " (at byte \(offset))" }
        } else if let m = line.firstMatch(of: /^"(.*)" at offset 0x([0-9a-fA-F]+)$/) {
            // A validation error's form: `"Expected i64 on the stack top but got i32" at offset 0x62`.
            line = String(m.1)
            if let offset = Int(m.2, radix: 16) { line += " (at byte \(offset))" }
        }
        return line
    }

    /// An engine configured as measured fastest here: software bounds checks, lazy
    /// compilation (the default), fuel metering so a runaway guest cannot stall a shard.
    /// `eager` compiles every function at instantiation, which validates each: the plan-time
    /// inspection uses it, so a function that is not valid WebAssembly is an error then, not
    /// a trap on every message (lazy compilation validates a function at its first call).
    package static func makeEngine(eager: Bool = false) -> WasmKit.Engine {
        WasmKit.Engine(
            configuration: EngineConfiguration(
                compilationMode: eager ? .eager : .lazy, memoryBoundsChecking: .software, fuelMetering: true))
    }

    /// Fuel for one guest call: about 25 ms of guest work on this machine (≈400M units/s),
    /// orders of magnitude more than a real parser needs, small enough that an infinite
    /// loop costs one shard a few milliseconds per message before it is cut off.
    package static let fuelPerCall: UInt64 = 10_000_000
}
