/// Checks a plan's WASM handler module. `LoadshearScript` knows nothing of WebAssembly;
/// the handlers module supplies an inspector so that `--dry-run` catches bad modules.
package protocol HandlerInspector: Sendable {
    /// Inspects a module's bytes. It does not throw: a module that is not valid is a problem
    /// in the result.
    func inspect(_ bytes: [UInt8]) -> HandlerInspection
}

/// What an inspector found in a module.
package struct HandlerInspection: Sendable {
    /// The module's export names, in the module's order.
    package var exports: [String]
    /// Whether the module can read headers: it exports `handle_header` (with `alloc` and
    /// `dealloc`) or, on the fast path, `body_length`, with the contract's types.
    package var hasHandleHeader: Bool
    /// Contract violations, one sentence each ("export 'alloc' must be (i32) -> i32, found …").
    package var problems: [String]
    /// The size of the module's exported memory when instantiated, when known.
    package var initialMemoryBytes: Int?
    /// (ext) Whether the module takes the fast path (exports `scratch` and `handle_message`).
    package var fastPath: Bool

    package init(
        exports: [String], hasHandleHeader: Bool, problems: [String], initialMemoryBytes: Int? = nil,
        fastPath: Bool = false
    ) {
        self.exports = exports
        self.hasHandleHeader = hasHandleHeader
        self.problems = problems
        self.initialMemoryBytes = initialMemoryBytes
        self.fastPath = fastPath
    }
}
