import LoadshearScript
import Synchronization
// `Store.resourceLimiter` is SPI in WasmKit 0.4.2; it is the only way to cap guest memory.
@_spi(Fuzzing) import WasmKit

/// A WebAssembly message handler: one instance per shard, used only on that shard's loop.
///
/// Every pointer and size the guest hands back is checked against the memory size before
/// the host touches memory: WasmKit's accessors abort the process on an out-of-range
/// access, so an unchecked guest pointer would take the whole run down. A reply reaches the
/// engine only after the whole call sequence (including both `dealloc`s) has succeeded, so
/// a call is either answered or failed, never both.
package final class WasmHandler: MessageHandler {
    /// The parsed module; replacement instances are made from it.
    private let module: Module
    /// The WasmKit engine every instance of this handler runs on.
    private let engine: WasmKit.Engine
    /// Fuel each guest call gets.
    private let fuel: UInt64
    /// HANDLER_MEMORY, in bytes: guest memory may not grow past it.
    private let memoryLimit: Int
    /// Where the first failure of each kind is explained; must not block.
    private let log: @Sendable (String) -> Void
    /// Kinds this instance has seen; `runLogged` says which any shard has logged (once a run).
    private var loggedKinds = Set<HandlerFailure>()
    private let runLogged: LoggedKinds
    /// A failed replacement was logged: only the first is.
    private var loggedReplaceFailure = false
    /// The instance calls go to; replaced after a failure.
    private var instance: Live
    /// Reused for every call: allocating a stack per call costs ~3%.
    private var stack: ExecutionStack
    /// Where a reply waits while the guest frees it; grows to the largest reply, then reused.
    private var scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 16)
    /// Argument arrays reused for every call: set in place, they are never reallocated.
    private var args1: [Value] = [.i32(0)]
    private var args2: [Value] = [.i32(0), .i32(0)]
    /// (ext) Fast path: the guest's scratch buffer and the size it was asked for (0: not yet).
    private var guestScratch: UInt32 = 0
    private var guestScratchSize = 0
    /// Instances replaced after a failure.
    package private(set) var replacements = 0

    /// The instance and its exports, replaced whole after a failure.
    struct Live {
        let store: Store
        /// The store's memory cap, which counts refusals.
        let cap: MemoryCap
        let memory: Memory
        /// The original contract's functions; nil on a fast-path module that leaves them out.
        let alloc: Function?
        let dealloc: Function?
        let handleBody: Function?
        /// Nil when the module does not export `handle_header` (or `alloc` and `dealloc`).
        let handleHeader: Function?
        /// (ext) The fast path: set when the module exports `scratch` and `handle_message`.
        let fast: Fast?

        /// `scratch`, `handle_message` and, when exported, `body_length`.
        struct Fast {
            let scratch: Function
            let handleMessage: Function
            let bodyLength: Function?
        }
    }

    /// Refuses `memory.grow` past the cap (the guest sees -1, as at a declared maximum) and
    /// counts each refusal; tables are held to one element per 16 bytes of the cap (at least
    /// 65,536), so `table.grow` cannot get round it. Confined to the shard's loop like the
    /// store that calls it.
    final class MemoryCap: ResourceLimiter, @unchecked Sendable {
        // @unchecked: only the owning store calls it, on the shard's loop.
        /// Bytes the memory may grow to.
        let limit: Int
        /// Refused growths since ``WasmHandler/takeMemoryDenials()`` last took them.
        var denied = 0

        init(limit: Int) { self.limit = limit }

        /// True when growing to `desired` bytes stays within the cap; otherwise false, and counted.
        func limitMemoryGrowth(to desired: Int) throws -> Bool {
            if desired <= limit { return true }
            denied += 1
            return false
        }

        /// True when growing to `desired` elements stays within the table budget; otherwise false,
        /// and counted.
        func limitTableGrowth(to desired: Int) throws -> Bool {
            if desired <= max(65_536, limit / 16) { return true }
            denied += 1
            return false
        }
    }

    /// Why a handler instance could not be made.
    package struct SetupError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Instantiates `module` with the memory cap and fuel. `logged` is shared with the other
    /// shards' handlers, so that each failure kind is logged once per run.
    ///
    /// - Throws: ``SetupError`` when the module cannot be instantiated or lacks a contract
    ///   export.
    package init(
        module: Module, fuel: UInt64 = WasmContract.fuelPerCall,
        memoryLimit: Int = SizeLiteral.defaultHandlerMemory, logged: LoggedKinds = LoggedKinds(),
        log: @escaping @Sendable (String) -> Void
    ) throws {
        self.module = module
        self.fuel = fuel
        self.memoryLimit = memoryLimit
        self.runLogged = logged
        self.log = log
        let engine = WasmContract.makeEngine()
        self.engine = engine
        self.instance = try Self.instantiate(module, engine: engine, fuel: fuel, memoryLimit: memoryLimit)
        self.stack = ExecutionStack(engine: engine)
    }

    deinit { scratch.deallocate() }

    /// A fresh store and instance with the cap and fuel set, and its contract exports.
    private static func instantiate(
        _ module: Module, engine: WasmKit.Engine, fuel: UInt64, memoryLimit: Int
    ) throws -> Live {
        let store = Store(engine: engine)
        let cap = MemoryCap(limit: memoryLimit)
        store.resourceLimiter = cap
        store.fuel = Fuel(remaining: fuel)
        let inst: Instance
        do {
            inst = try module.instantiate(store: store)
        } catch {
            let why =
                cap.denied > 0
                ? "its initial memory is larger than HANDLER_MEMORY (\(SizeLiteral.describe(memoryLimit)))"
                : WasmContract.firstLine(error)
            throw SetupError(description: "the module cannot be instantiated: \(why)")
        }
        let e = inst.exports
        var fast: Live.Fast?
        if let scratch = e[function: "scratch"], let handle = e[function: "handle_message"] {
            fast = Live.Fast(scratch: scratch, handleMessage: handle, bodyLength: e[function: "body_length"])
        }
        let alloc = e[function: "alloc"]
        let dealloc = e[function: "dealloc"]
        guard let memory = e[memory: "memory"],
            fast != nil || (alloc != nil && dealloc != nil && e[function: "handle_body"] != nil)
        else { throw SetupError(description: "the module does not meet the handler contract") }
        return Live(
            store: store, cap: cap, memory: memory, alloc: alloc, dealloc: dealloc,
            handleBody: e[function: "handle_body"],
            handleHeader: alloc != nil && dealloc != nil ? e[function: "handle_header"] : nil, fast: fast)
    }

    /// Whether the module reads headers: `body_length` on the fast path, else `handle_header`.
    package var readsHeaders: Bool { instance.fast?.bodyLength != nil || instance.handleHeader != nil }

    /// (ext) Whether messages take the fast path.
    package var fastPath: Bool { instance.fast != nil }

    /// Memory-growth refusals since the last call; they carry over when the instance is replaced.
    package func takeMemoryDenials() -> Int {
        let n = instance.cap.denied
        instance.cap.denied = 0
        return n
    }

    /// Whether `[ptr, ptr + count)` lies inside guest memory.
    @inline(__always)
    private func inBounds(_ ptr: UInt32, _ count: Int) -> Bool {
        count >= 0 && UInt64(ptr) + UInt64(count) <= UInt64(instance.memory.byteCount)
    }

    /// Calls `f(a)` on the reused stack and argument array with a full fuel budget.
    @inline(__always)
    private func call(_ f: Function, _ a: UInt32) throws -> [Value] {
        args1[0] = .i32(a)
        instance.store.fuel = Fuel(remaining: fuel)
        return try f.invoke(args1, on: &stack)
    }

    /// Calls `f(a, b)` on the reused stack and argument array with a full fuel budget.
    @inline(__always)
    private func call(_ f: Function, _ a: UInt32, _ b: UInt32) throws -> [Value] {
        args2[0] = .i32(a)
        args2[1] = .i32(b)
        instance.store.fuel = Fuel(remaining: fuel)
        return try f.invoke(args2, on: &stack)
    }

    /// The first result's bits when it is an `i32`; nil otherwise.
    @inline(__always)
    private static func u32(_ v: [Value]) -> UInt32? {
        if case .i32(let x) = v.first { return x }
        return nil
    }

    /// A packed reply, `(size << 32) | ptr`, from the first result when it is an `i64`; a
    /// result of another type is no reply (0).
    @inline(__always)
    private static func packed(_ v: [Value]) -> (ptr: UInt32, size: Int) {
        guard case .i64(let x) = v.first else { return (0, 0) }
        return (UInt32(truncatingIfNeeded: x), Int(x >> 32))
    }

    /// A header call's result: the length, or `.invalid` for a negative one or a result that
    /// is not an `i32`.
    @inline(__always)
    private static func headerOutcome(_ v: [Value]) -> HeaderOutcome {
        guard let bits = u32(v) else { return .invalid }
        let length = Int32(bitPattern: bits)
        return length >= 0 ? .length(Int(length)) : .invalid
    }

    /// A failure: log its kind once (handed to `log`, which must not block), and start over
    /// with a fresh instance, since a guest that trapped, handed out bad pointers or failed to
    /// allocate is in a state we cannot trust (its allocator may be half-updated).
    private func failed(_ kind: HandlerFailure) -> HandlerFailure {
        if loggedKinds.insert(kind).inserted, runLogged.insert(kind) {
            log(
                "\(kind.explanation) (logged once per kind for the run; every one is counted, and the shard's instance replaced)"
            )
        }
        replace()
        return kind
    }

    /// Swaps in a fresh instance, carrying the denial count over. When that fails the old
    /// instance stays, and the failure is logged once.
    private func replace() {
        replacements += 1
        guestScratch = 0
        guestScratchSize = 0
        let denied = instance.cap.denied
        do {
            instance = try Self.instantiate(module, engine: engine, fuel: fuel, memoryLimit: memoryLimit)
            instance.cap.denied = denied
        } catch {
            // Keep the old instance: a later call may still work; say so once.
            if !loggedReplaceFailure {
                loggedReplaceFailure = true
                log("could not replace the handler instance: \(error); keeping the old one")
            }
        }
    }

    /// The result of ``copyIn(_:)``: the guest pointer, or why there is none.
    private enum CopyIn {
        case success(UInt32)
        case failure(HandlerFailure)
    }

    /// Copies `bytes` into a fresh guest allocation; returns its pointer, or why it failed.
    private func copyIn(_ bytes: UnsafeRawBufferPointer, alloc: Function) throws -> CopyIn {
        let n = bytes.count
        guard n <= Int(Int32.max) else { return .failure(.allocFailed) }
        guard let ptr = Self.u32(try call(alloc, UInt32(n))) else { return .failure(.badPointer) }
        if ptr == 0, n > 0 { return .failure(.allocFailed) }
        guard inBounds(ptr, n) else { return .failure(.badPointer) }
        if n > 0 {
            instance.memory.withUnsafeMutableBufferPointer(offset: UInt(ptr), count: n) { $0.copyMemory(from: bytes) }
        }
        return .success(ptr)
    }

    /// Calls `handle_header` on a copy of `header` in guest memory, freed afterwards.
    ///
    /// - Returns: The length; `.invalid` for a negative length, a result that is not an `i32`,
    ///   or a module without `handle_header`; or the failure, after which the instance is
    ///   replaced.
    package func bodyLength(header: UnsafeRawBufferPointer) -> HeaderOutcome {
        if let fast = instance.fast, let bodyLength = fast.bodyLength {
            return fastBodyLength(header, fast, bodyLength)
        }
        guard let handleHeader = instance.handleHeader, let alloc = instance.alloc, let dealloc = instance.dealloc
        else { return .invalid }
        do {
            let ptr: UInt32
            switch try copyIn(header, alloc: alloc) {
            case .success(let p): ptr = p
            case .failure(let kind): return .failed(failed(kind))
            }
            let result = try call(handleHeader, ptr, UInt32(header.count))
            _ = try call(dealloc, ptr, UInt32(header.count))
            return Self.headerOutcome(result)
        } catch {
            return .failed(failed(Self.classify(error)))
        }
    }

    /// Copies `message` into guest memory and calls `handle_body`, whose `i64` result packs the
    /// reply's pointer (low 32 bits) and length (high 32 bits). A reply is copied out and
    /// freed in the guest, the message is freed, and only then is the reply passed to `reply`.
    package func handle(_ message: UnsafeRawBufferPointer, reply: (UnsafeRawBufferPointer) -> Void) -> HandlerOutcome {
        if let fast = instance.fast { return fastHandle(message, fast, reply: reply) }
        guard let alloc = instance.alloc, let dealloc = instance.dealloc, let handleBody = instance.handleBody else {
            return .failed(failed(.otherTrap))
        }
        do {
            let ptr: UInt32
            switch try copyIn(message, alloc: alloc) {
            case .success(let p): ptr = p
            case .failure(let kind): return .failed(failed(kind))
            }
            let n = UInt32(message.count)
            let (outPtr, outLen) = Self.packed(try call(handleBody, ptr, n))
            if outLen > 0 {
                // Never hand a bad pointer back to the guest's allocator.
                guard inBounds(outPtr, outLen) else { return .failed(failed(.badPointer)) }
                if scratch.count < outLen {
                    scratch.deallocate()
                    scratch = .allocate(byteCount: max(outLen, scratch.count * 2), alignment: 16)
                }
                instance.memory.withUnsafeBufferPointer(offset: UInt(outPtr), count: outLen) {
                    UnsafeMutableRawBufferPointer(rebasing: scratch[0..<outLen]).copyMemory(from: $0)
                }
                _ = try call(dealloc, outPtr, UInt32(outLen))
            }
            _ = try call(dealloc, ptr, n)
            guard outLen > 0 else { return .empty }
            reply(UnsafeRawBufferPointer(rebasing: scratch[0..<outLen]))
            return .reply
        } catch {
            return .failed(failed(Self.classify(error)))
        }
    }

    // MARK: (ext) the fast path

    /// Copies `bytes` into the guest's scratch buffer, asking the guest for one (`scratch`)
    /// first when it has none yet or a smaller one; nil on success, else why it failed.
    @inline(__always)
    private func toScratch(_ bytes: UnsafeRawBufferPointer, _ fast: Live.Fast) throws -> HandlerFailure? {
        let n = bytes.count
        if n > guestScratchSize {
            guard n <= Int(Int32.max) else { return .allocFailed }
            guard let ptr = Self.u32(try call(fast.scratch, UInt32(n))) else { return .badPointer }
            if ptr == 0 { return .allocFailed }
            guard inBounds(ptr, n) else { return .badPointer }
            guestScratch = ptr
            guestScratchSize = n
        }
        if n > 0 {
            instance.memory.withUnsafeMutableBufferPointer(offset: UInt(guestScratch), count: n) {
                $0.copyMemory(from: bytes)
            }
        }
        return nil
    }

    /// `body_length(size)` on the header written to the scratch buffer.
    private func fastBodyLength(_ header: UnsafeRawBufferPointer, _ fast: Live.Fast, _ f: Function) -> HeaderOutcome {
        do {
            if let kind = try toScratch(header, fast) { return .failed(failed(kind)) }
            return Self.headerOutcome(try call(f, UInt32(header.count)))
        } catch {
            return .failed(failed(Self.classify(error)))
        }
    }

    /// `handle_message(size)` on the message written to the scratch buffer; a reply is passed
    /// to `reply` straight from guest memory (no guest call comes in between), after its
    /// bounds are checked.
    private func fastHandle(
        _ message: UnsafeRawBufferPointer, _ fast: Live.Fast, reply: (UnsafeRawBufferPointer) -> Void
    ) -> HandlerOutcome {
        do {
            if let kind = try toScratch(message, fast) { return .failed(failed(kind)) }
            let (outPtr, outLen) = Self.packed(try call(fast.handleMessage, UInt32(message.count)))
            guard outLen > 0 else { return .empty }
            guard inBounds(outPtr, outLen) else { return .failed(failed(.badPointer)) }
            instance.memory.withUnsafeBufferPointer(offset: UInt(outPtr), count: outLen) {
                reply(UnsafeRawBufferPointer($0))
            }
            return .reply
        } catch {
            return .failed(failed(Self.classify(error)))
        }
    }

    /// The kind of a trap. WasmKit keeps the reason `package`-level; its text starts with
    /// the reason, then a backtrace (about 8,000 lines for a stack exhaustion). Reading the
    /// reason through reflection avoids building that text; the text is the fallback.
    static func classify(_ error: Error) -> HandlerFailure {
        var reason = ""
        if error is Trap, let r = Mirror(reflecting: error).children.first(where: { $0.label == "reason" })?.value {
            reason = String(describing: r)
        } else {
            reason = WasmContract.firstLine(error)
        }
        let r = reason.lowercased()
        if r.contains("unreachable") { return .unreachable }
        if r.contains("outoffuel") || r.contains("out of fuel") { return .outOfFuel }
        if r.contains("callstackexhausted") || r.contains("call stack exhausted") { return .stackExhausted }
        if r.contains("outofbounds") || r.contains("out of bounds") { return .outOfBounds }
        return .otherTrap
    }
}

/// The failure kinds already logged in a run, shared by the shards' handlers (each asks at
/// most once per kind, so the lock is taken a handful of times in a run).
package final class LoggedKinds: Sendable {
    private let kinds = Mutex<Set<HandlerFailure>>([])

    package init() {}

    /// True the first time `kind` is inserted.
    func insert(_ kind: HandlerFailure) -> Bool {
        kinds.withLock { $0.insert(kind).inserted }
    }
}

/// Builds a `WasmHandler` per shard from a module parsed once.
package struct WasmHandlerFactory: HandlerFactory {
    /// Parsed once; every shard's handler instantiates it.
    package let module: Module
    /// Fuel each guest call gets.
    package let fuel: UInt64
    /// HANDLER_MEMORY, in bytes.
    package let memoryLimit: Int
    /// Where handlers explain the first failure of each kind; must not block.
    package let log: @Sendable (String) -> Void
    /// Shared by every handler it makes, so each failure kind is logged once per run.
    private let logged = LoggedKinds()

    /// Parses `bytes` as a WebAssembly module; throws WasmKit's error when they are not one.
    package init(
        bytes: [UInt8], fuel: UInt64 = WasmContract.fuelPerCall,
        memoryLimit: Int = SizeLiteral.defaultHandlerMemory, log: @escaping @Sendable (String) -> Void
    ) throws {
        self.module = try parseWasm(bytes: bytes)
        self.fuel = fuel
        self.memoryLimit = memoryLimit
        self.log = log
    }

    /// A new instance for one shard.
    package func makeHandler() throws -> MessageHandler {
        try WasmHandler(module: module, fuel: fuel, memoryLimit: memoryLimit, logged: logged, log: log)
    }

    /// The factory a plan calls for.
    package static func forPlan(_ plan: Plan, log: @escaping @Sendable (String) -> Void) throws -> any HandlerFactory {
        switch plan.handler {
        case .nop: NOPHandlerFactory()
        case .wasm(let w): try WasmHandlerFactory(bytes: w.bytes, memoryLimit: plan.settings.handlerMemory, log: log)
        }
    }
}
