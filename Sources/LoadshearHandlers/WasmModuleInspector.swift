import LoadshearScript
import WasmKit

/// Checks a module against the contract at plan time. Instantiation runs in a throwaway
/// store with a fuel budget, so even a module whose start function loops is caught.
package struct WasmModuleInspector: HandlerInspector {
    package init() {}

    /// Parses the module, then inspects it; a module that does not parse is one problem.
    package func inspect(_ bytes: [UInt8]) -> HandlerInspection {
        let module: Module
        do {
            module = try parseWasm(bytes: bytes)
        } catch {
            return HandlerInspection(
                exports: [], hasHandleHeader: false,
                problems: ["the handler is not a valid WebAssembly module: \(WasmContract.firstLine(error))"])
        }
        return inspect(module)
    }

    /// Checks a parsed module: no imports, an exported `memory`, and each contract function
    /// with its exact type. It is instantiated (start function included, with a fuel budget)
    /// to learn its memory size.
    package func inspect(_ module: Module) -> HandlerInspection {
        let exports = module.exports.map(\.name)
        var problems: [String] = []
        // (ext) Exporting either of scratch and handle_message opts in: then both are required,
        // and the original functions are checked only where present. Known by name already for
        // a module refused before its types are checked (`check` then lists the right contract).
        let namesFast = WasmContract.fastFunctions.contains { $0.required && exports.contains($0.name) }
        if let first = module.imports.first {
            let more = module.imports.count > 1 ? " and \(module.imports.count - 1) more" : ""
            problems.append(
                "the module imports '\(first.module).\(first.name)'\(more); handlers get no imports (no WASI, no host functions)"
            )
            return HandlerInspection(
                exports: exports, hasHandleHeader: exports.contains("handle_header"), problems: problems,
                fastPath: namesFast)
        }
        let engine = WasmContract.makeEngine(eager: true)
        let store = Store(engine: engine)
        // The fuel a run's instance gets for its start function: one that needs more is
        // refused here, not when a shard makes its handler.
        store.fuel = Fuel(remaining: WasmContract.fuelPerCall)
        let instance: Instance
        do {
            instance = try module.instantiate(store: store)
        } catch {
            return HandlerInspection(
                exports: exports, hasHandleHeader: false,
                problems: [
                    "the module does not validate (WasmKit has no SIMD, threads or tail calls) or cannot be instantiated: \(WasmContract.firstLine(error))"
                ],
                fastPath: namesFast)
        }
        let memory = instance.exports[memory: "memory"]
        if memory == nil {
            problems.append("the module must export its linear memory as 'memory'")
        }
        let fast = WasmContract.fastFunctions.contains { $0.required && instance.exports[function: $0.name] != nil }
        var usable = Set<String>()
        for req in WasmContract.allFunctions {
            guard let f = instance.exports[function: req.name] else {
                if req.required, req.fastPath == fast {
                    let why = fast ? " (the fast path needs scratch and handle_message)" : ""
                    problems.append("the module does not export '\(req.name)'; expected \(req.signature)\(why)")
                }
                continue
            }
            let t = f.type
            if t.parameters != req.parameters || t.results != req.results {
                problems.append("export '\(req.name)' has type \(WasmContract.spell(t)); expected \(req.signature)")
            } else {
                usable.insert(req.name)
            }
        }
        let readsHeaders =
            fast && usable.contains("body_length")
            || usable.isSuperset(of: ["handle_header", "alloc", "dealloc"])
        return HandlerInspection(
            exports: exports, hasHandleHeader: readsHeaders, problems: problems,
            initialMemoryBytes: memory.map { Int($0.byteCount) }, fastPath: fast)
    }
}
