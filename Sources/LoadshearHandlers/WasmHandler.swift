import LoadshearScript
import WasmKit

/// A WebAssembly message handler: one instance per shard, used only on that shard's loop.
///
/// Every pointer and size the guest hands back is checked against the memory size before
/// the host touches memory: WasmKit's accessors abort the process on an out-of-range
/// access, so an unchecked guest pointer would take the whole run down.
public final class WasmHandler: MessageHandler {
    private let module: Module
    private let engine: WasmKit.Engine
    private let fuel: UInt64
    private let log: @Sendable (String) -> Void
    private var loggedKinds = Set<String>()
    private var instance: Live
    /// Reused for every call: allocating a stack per call costs ~3%.
    private var stack: ExecutionStack
    /// Failures by kind (a trap's first line, or the contract breach), for the report.
    public private(set) var failuresByKind: [String: Int] = [:]
    /// Instances replaced after a trap.
    public private(set) var replacements = 0

    /// The instance and its exports, replaced whole after a trap.
    struct Live {
        let store: Store
        let memory: Memory
        let alloc: Function
        let dealloc: Function
        let handleBody: Function
        let handleHeader: Function?
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(module: Module, fuel: UInt64 = WasmContract.fuelPerCall, log: @escaping @Sendable (String) -> Void) throws {
        self.module = module
        self.fuel = fuel
        self.log = log
        let engine = WasmContract.makeEngine()
        self.engine = engine
        self.instance = try Self.instantiate(module, engine: engine, fuel: fuel)
        self.stack = ExecutionStack(engine: engine)
    }

    private static func instantiate(_ module: Module, engine: WasmKit.Engine, fuel: UInt64) throws -> Live {
        let store = Store(engine: engine)
        store.fuel = Fuel(remaining: fuel)
        let inst = try module.instantiate(store: store)
        guard let memory = inst.exports[memory: "memory"], let alloc = inst.exports[function: "alloc"],
              let dealloc = inst.exports[function: "dealloc"], let body = inst.exports[function: "handle_body"]
        else { throw SetupError(description: "the module does not meet the handler contract") }
        return Live(store: store, memory: memory, alloc: alloc, dealloc: dealloc, handleBody: body,
                    handleHeader: inst.exports[function: "handle_header"])
    }

    public var readsHeaders: Bool { instance.handleHeader != nil }

    @inline(__always)
    private func inBounds(_ ptr: UInt32, _ count: Int) -> Bool {
        count >= 0 && UInt64(ptr) + UInt64(count) <= UInt64(instance.memory.byteCount)
    }

    @inline(__always)
    private func call(_ f: Function, _ args: [Value]) throws -> [Value] {
        instance.store.fuel = Fuel(remaining: fuel)
        return try f.invoke(args, on: &stack)
    }

    @inline(__always)
    private static func u32(_ v: [Value]) -> UInt32? {
        if case .i32(let x) = v.first { return x }
        return nil
    }

    /// A trap: count it, log its kind once, and replace the instance (the guest's own state,
    /// its allocator say, may be half-updated).
    private func trapped(_ error: Error) -> HandlerOutcome {
        let kind = WasmContract.firstLine(error)
        return failed(.trap(kind), "handler trap: \(kind)", kind: kind)
    }

    /// Any contract failure: log once per kind and start over with a fresh instance, since a
    /// guest that hands out bad pointers or fails to allocate is in a state we cannot trust.
    private func failed(_ outcome: HandlerOutcome, _ message: String, kind: String? = nil) -> HandlerOutcome {
        failuresByKind[kind ?? message, default: 0] += 1
        if loggedKinds.insert(message).inserted {
            log("\(message) (logged once per kind; counted, and the shard's instance replaced)")
        }
        replace()
        return outcome
    }

    private static func describe(_ outcome: HandlerOutcome) -> String {
        switch outcome {
        case .badPointer: "handler returned a pointer or size outside its memory"
        case .allocFailed: "handler alloc returned 0"
        default: "handler failed"
        }
    }

    private func replace() {
        replacements += 1
        if let fresh = try? Self.instantiate(module, engine: engine, fuel: fuel) {
            instance = fresh
        }
    }

    enum CopyIn {
        case success(UInt32)
        case failure(HandlerOutcome)
    }

    /// Copies `bytes` into a fresh guest allocation; returns its pointer, or an outcome on failure.
    private func copyIn(_ bytes: UnsafeRawBufferPointer) throws -> CopyIn {
        let n = bytes.count
        guard n <= Int(UInt32.max) else { return .failure(.allocFailed) }
        guard let ptr = Self.u32(try call(instance.alloc, [.i32(UInt32(n))])) else { return .failure(.badPointer) }
        if ptr == 0, n > 0 { return .failure(.allocFailed) }
        guard inBounds(ptr, n) else { return .failure(.badPointer) }
        if n > 0 {
            instance.memory.withUnsafeMutableBufferPointer(offset: UInt(ptr), count: n) { $0.copyMemory(from: bytes) }
        }
        return .success(ptr)
    }

    public func bodyLength(header: UnsafeRawBufferPointer) -> Int? {
        guard let handleHeader = instance.handleHeader else { return nil }
        do {
            let ptr: UInt32
            switch try copyIn(header) {
            case .success(let p): ptr = p
            case .failure(let outcome):
                _ = failed(outcome, Self.describe(outcome))
                return nil
            }
            let result = try call(handleHeader, [.i32(ptr), .i32(UInt32(header.count))])
            _ = try call(instance.dealloc, [.i32(ptr), .i32(UInt32(header.count))])
            guard let v = Self.u32(result) else { return nil }
            let length = Int32(bitPattern: v)
            return length >= 0 ? Int(length) : nil
        } catch {
            _ = trapped(error)
            return nil
        }
    }

    public func handle(_ message: UnsafeRawBufferPointer, reply: (UnsafeRawBufferPointer) -> Void) -> HandlerOutcome {
        do {
            let ptr: UInt32
            switch try copyIn(message) {
            case .success(let p): ptr = p
            case .failure(let outcome): return failed(outcome, Self.describe(outcome))
            }
            let n = UInt32(message.count)
            let packed: UInt64
            if case .i64(let v) = try call(instance.handleBody, [.i32(ptr), .i32(n)]).first { packed = v } else { packed = 0 }
            let outPtr = UInt32(truncatingIfNeeded: packed)
            let outLen = Int(packed >> 32)
            var outcome = HandlerOutcome.empty
            if outLen > 0 {
                if inBounds(outPtr, outLen) {
                    instance.memory.withUnsafeBufferPointer(offset: UInt(outPtr), count: outLen) { reply($0) }
                    outcome = .reply
                    _ = try call(instance.dealloc, [.i32(outPtr), .i32(UInt32(outLen))])
                } else {
                    // Never hand a bad pointer back to the guest's allocator.
                    outcome = .badPointer
                }
            }
            _ = try call(instance.dealloc, [.i32(ptr), .i32(n)])
            return outcome == .badPointer ? failed(outcome, Self.describe(outcome)) : outcome
        } catch {
            return trapped(error)
        }
    }
}

/// Builds a `WasmHandler` per shard from a module parsed once.
public struct WasmHandlerFactory: HandlerFactory {
    public let module: Module
    public let fuel: UInt64
    public let log: @Sendable (String) -> Void

    public init(bytes: [UInt8], fuel: UInt64 = WasmContract.fuelPerCall, log: @escaping @Sendable (String) -> Void) throws {
        self.module = try parseWasm(bytes: bytes)
        self.fuel = fuel
        self.log = log
    }

    public func makeHandler() throws -> MessageHandler {
        try WasmHandler(module: module, fuel: fuel, log: log)
    }

    /// The factory a plan calls for.
    public static func forPlan(_ plan: Plan, log: @escaping @Sendable (String) -> Void) throws -> any HandlerFactory {
        switch plan.handler {
        case .nop: NOPHandlerFactory()
        case .wasm(let w): try WasmHandlerFactory(bytes: w.bytes, log: log)
        }
    }
}
