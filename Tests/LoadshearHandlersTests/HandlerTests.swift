import Foundation
import LoadshearHandlers
import LoadshearScript
import LoadshearTestSupport
import Testing
import WAT

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func sdkModule(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: repositoryRoot.appendingPathComponent("sdk/examples/" + path)))
}

/// Runs one message through a handler; returns the outcome and the reply bytes.
func roundTrip(_ handler: MessageHandler, _ message: [UInt8]) -> (HandlerOutcome, [UInt8]) {
    var reply: [UInt8] = []
    let outcome = message.withUnsafeBytes { m in handler.handle(m) { reply = Array($0) } }
    return (outcome, reply)
}

func ping(_ body: String, type: UInt8 = 1) -> [UInt8] {
    let b = Array(body.utf8)
    return [0, 0, 0, type, 0, 0, 0, UInt8(b.count)] + b
}

final class LogSink: @unchecked Sendable {
    // @unchecked: guarded by the lock.
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.withLock { lines.append(s) } }
    var all: [String] { lock.withLock { lines } }
}

@Suite struct InspectorTests {
    @Test(arguments: ["c/heartbeat.wasm", "c/uppercase.wasm", "swift/Heartbeat.wasm", "swift/Uppercase.wasm"])
    func sdkModulesMeetTheContract(_ path: String) throws {
        let r = WasmModuleInspector().inspect(try sdkModule(path))
        #expect(r.problems.isEmpty, "\(r.problems)")
        #expect(r.hasHandleHeader)
        #expect(!r.fastPath)
        #expect(Set(["memory", "alloc", "dealloc", "handle_body", "handle_header"]).isSubset(of: Set(r.exports)))
    }

    /// (ext) The fast-path builds: detected as such, the original functions not required.
    @Test(arguments: ["c/heartbeat-fast.wasm", "swift/Heartbeat-fast.wasm"])
    func fastPathModulesAreDetected(_ path: String) throws {
        let r = WasmModuleInspector().inspect(try sdkModule(path))
        #expect(r.problems.isEmpty, "\(r.problems)")
        #expect(r.fastPath && r.hasHandleHeader)
        #expect(Set(["memory", "scratch", "handle_message", "body_length"]).isSubset(of: Set(r.exports)))
        #expect(!r.exports.contains("handle_body"))
    }

    /// (ext) Half a fast path is a problem naming what is missing; a wrong type too.
    @Test func halfAFastPathIsAProblem() throws {
        let onlyScratch = try wat2wasm(
            #"(module (memory (export "memory") 1) (func (export "scratch") (param i32) (result i32) i32.const 64))"#)
        let r = WasmModuleInspector().inspect(onlyScratch)
        #expect(r.fastPath)
        #expect(
            r.problems == [
                "the module does not export 'handle_message'; expected handle_message(i32 size) -> i64 (the fast path needs scratch and handle_message)"
            ])
        let wrongType = try wat2wasm(
            #"""
            (module (memory (export "memory") 1)
              (func (export "scratch") (param i32) (result i32) i32.const 64)
              (func (export "handle_message") (param i32 i32) (result i64) i64.const 0))
            """#)
        #expect(
            WasmModuleInspector().inspect(wrongType).problems == [
                "export 'handle_message' has type (i32, i32) -> i64; expected handle_message(i32 size) -> i64"
            ])
        // An original-contract module that happens to export a `body_length` stays on the
        // original path: only scratch and handle_message opt in.
        let original = Modules.module(
            body: "i64.const 0", extra: #"(func (export "body_length") (param i32) (result i32) i32.const 0)"#)
        let o = WasmModuleInspector().inspect(original)
        #expect(o.problems.isEmpty && !o.fastPath, "\(o.problems)")
        // A fast-path module refused for an import is still known as one (by its export names),
        // so `check` does not list the original contract's functions as missing.
        let importing = try wat2wasm(
            #"""
            (module (import "env" "f" (func))
              (memory (export "memory") 1)
              (func (export "scratch") (param i32) (result i32) i32.const 64)
              (func (export "handle_message") (param i32) (result i64) i64.const 0))
            """#)
        let i = WasmModuleInspector().inspect(importing)
        #expect(i.fastPath && i.problems.count == 1 && i.problems[0].contains("imports 'env.f'"), "\(i.problems)")
    }

    /// A function that is not valid WebAssembly is a problem at inspection (plan time), even
    /// one no call reaches: lazy compilation would find it only when called, and trap then.
    @Test func aFunctionThatDoesNotValidateIsAProblem() {
        for module in [
            Modules.module(body: "i32.const 5"),
            Modules.module(body: "i64.const 0", extra: "(func (result i32) i64.const 5)"),
        ] {
            let r = WasmModuleInspector().inspect(module)
            #expect(r.problems.count == 1, "\(r.problems)")
            #expect(r.problems.first?.hasPrefix("the module does not validate (WasmKit has no SIMD") == true)
        }
    }

    @Test func problemsNameTheExportAndItsSignature() {
        #expect(WasmModuleInspector().inspect(Modules.imports).problems.first?.contains("imports 'env.f'") == true)
        #expect(
            WasmModuleInspector().inspect(Modules.wrongSignature).problems
                == ["export 'alloc' has type (i64) -> i32; expected alloc(i32 size) -> i32"])
        #expect(
            WasmModuleInspector().inspect(Modules.noMemory).problems
                == ["the module must export its linear memory as 'memory'"])
        let missing = WasmModuleInspector().inspect(try! wat2wasmModule("(module (memory (export \"memory\") 1))"))
        #expect(
            missing.problems.contains(
                "the module does not export 'handle_body'; expected handle_body(i32 ptr, i32 size) -> i64"))
        #expect(
            WasmModuleInspector().inspect([1, 2, 3]).problems.first?.hasPrefix(
                "the handler is not a valid WebAssembly module") == true)
        #expect(!WasmModuleInspector().inspect(Modules.echo).hasHandleHeader)
    }
}

func wat2wasmModule(_ s: String) throws -> [UInt8] { try wat2wasm(s) }

@Suite struct WasmHandlerTests {
    @Test func heartbeatAnswersPingsWithPongs() throws {
        for path in ["c/heartbeat.wasm", "swift/Heartbeat.wasm"] {
            let handler = try WasmHandlerFactory(bytes: try sdkModule(path)) { _ in }.makeHandler()
            let message = ping("abc")
            #expect(message.prefix(8).withUnsafeBytes { handler.bodyLength(header: $0) } == .length(3))
            let (outcome, reply) = roundTrip(handler, message)
            #expect(outcome == .reply)
            #expect(reply == ping("abc", type: 2), "\(path)")
            #expect(roundTrip(handler, ping("x", type: 2)).0 == .empty, "pongs are not answered")
            // The allocator rewinds: many messages never exhaust memory.
            for _ in 0..<10_000 { #expect(roundTrip(handler, message).0 == .reply) }
        }
    }

    /// (ext) One source built for both contracts answers the same bytes, message by message,
    /// and reads the same lengths: pings of many sizes, pongs, short and empty messages.
    @Test(arguments: [
        ("c/heartbeat.wasm", "c/heartbeat-fast.wasm"), ("swift/Heartbeat.wasm", "swift/Heartbeat-fast.wasm"),
    ])
    func bothPathsAnswerTheSameBytes(_ original: String, _ fast: String) throws {
        let a = try WasmHandlerFactory(bytes: try sdkModule(original)) { _ in }.makeHandler()
        let b = try WasmHandlerFactory(bytes: try sdkModule(fast)) { _ in }.makeHandler()
        #expect((b as? WasmHandler)?.fastPath == true && (a as? WasmHandler)?.fastPath == false)
        var rng = SplitMix64(seed: 17)
        var messages: [[UInt8]] = [[], [1], [0, 0, 0, 1], ping(""), ping("x", type: 2), ping("abc", type: 3)]
        // Growing and shrinking sizes: the scratch buffer is asked for again only when larger.
        for size in [5, 300, 17, 70_000, 9, 1_000] {
            messages.append(ping("") + (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        for m in messages {
            let ra = roundTrip(a, m)
            let rb = roundTrip(b, m)
            #expect(ra.0 == rb.0 && ra.1 == rb.1, "\(m.count)-byte message: \(ra) vs \(rb)")
            let header = Array(m.prefix(8))
            if header.count == 8 {
                #expect(
                    header.withUnsafeBytes { a.bodyLength(header: $0) }
                        == header.withUnsafeBytes { b.bodyLength(header: $0) })
            }
        }
        #expect(roundTrip(b, ping("abc")) == (.reply, ping("abc", type: 2)))
        for _ in 0..<10_000 { #expect(roundTrip(b, ping("abc")).0 == .reply) }
    }

    @Test(arguments: ["c/uppercase.wasm", "swift/Uppercase.wasm"])
    func uppercaseEchoesATransformedBody(_ path: String) throws {
        let handler = try WasmHandlerFactory(bytes: try sdkModule(path)) { _ in }.makeHandler()
        let message = ping("hello, Wasm!", type: 7)
        #expect(message.prefix(8).withUnsafeBytes { handler.bodyLength(header: $0) } == .length(12))
        let (outcome, reply) = roundTrip(handler, message)
        #expect(outcome == .reply)
        #expect(reply == ping("HELLO, WASM!", type: 2))
    }

    /// Traps are classified into a fixed set of kinds (never keyed on WasmKit's text, which
    /// carries indices and backtraces), logged once per kind, and the instance replaced.
    @Test(arguments: [
        ("unreachable", Modules.unreachable, HandlerFailure.unreachable),
        ("out of bounds", Modules.outOfBounds, .outOfBounds),
        ("divide by zero", Modules.divideByZero, .otherTrap),
        ("stack exhaustion", Modules.stackExhaustion, .stackExhausted),
        ("infinite loop", Modules.infiniteLoop, .outOfFuel),
    ])
    func trapsGiveEmptyResponsesAndAFreshInstance(_ name: String, _ module: [UInt8], _ kind: HandlerFailure) throws {
        let log = LogSink()
        let handler = try WasmHandlerFactory(bytes: module, fuel: 1_000_000) { log.add($0) }.makeHandler()
        #expect(roundTrip(handler, [2, 2, 2]) == (.reply, [2, 2, 2]))
        for _ in 0..<3 {
            let (outcome, reply) = roundTrip(handler, [1, 2, 3])
            #expect(outcome == .failed(kind), "\(name)")
            #expect(reply.isEmpty)
            // The next message is answered by the replacement instance.
            #expect(roundTrip(handler, [2, 2, 2]) == (.reply, [2, 2, 2]))
        }
        #expect(log.all.count == 1, "logged once per kind: \(log.all)")
    }

    @Test func badGuestPointersNeverReachHostMemory() throws {
        let cases: [([UInt8], HandlerOutcome)] = [
            (Modules.allocReturnsZero, .failed(.allocFailed)),
            (Modules.allocOutOfMemory, .failed(.badPointer)),
            (Modules.badOutputPointer, .failed(.badPointer)),
            (Modules.hugeOutputSize, .failed(.badPointer)),
        ]
        for (module, expected) in cases {
            let handler = try WasmHandlerFactory(bytes: module) { _ in }.makeHandler()
            let (outcome, reply) = roundTrip(handler, [UInt8](repeating: 9, count: 64))
            #expect(outcome == expected)
            #expect(reply.isEmpty)
        }
        // A message bigger than memory can hold: alloc's pointer + size is out of range.
        let handler = try WasmHandlerFactory(bytes: Modules.echo) { _ in }.makeHandler()
        #expect(roundTrip(handler, [UInt8](repeating: 1, count: 70_000)).0 == .failed(.badPointer))
        #expect(roundTrip(handler, [5]).0 == .reply)
    }

    /// (ext) The fast path's pointers are checked as the original's are: a scratch buffer
    /// of 0, one past memory, a reply past memory; a fast module that traps is replaced.
    @Test func badFastPathPointersNeverReachHostMemory() throws {
        func fast(scratch: String, reply: String) throws -> [UInt8] {
            try wat2wasm(
                """
                (module (memory (export "memory") 1)
                  (func (export "scratch") (param i32) (result i32) \(scratch))
                  (func (export "handle_message") (param $n i32) (result i64)
                    local.get $n i32.const 3 i32.eq if unreachable end
                    \(reply)))
                """)
        }
        let echoInPlace = "local.get $n i64.extend_i32_u i64.const 32 i64.shl i64.const 1024 i64.or"
        let cases: [([UInt8], HandlerOutcome)] = [
            (try fast(scratch: "i32.const 0", reply: echoInPlace), .failed(.allocFailed)),
            (try fast(scratch: "i32.const 65530", reply: echoInPlace), .failed(.badPointer)),
            (try fast(scratch: "i32.const 1024", reply: "i64.const 0x0001000000000400"), .failed(.badPointer)),
            (try fast(scratch: "i32.const 1024", reply: "i64.const 0"), .empty),
        ]
        for (module, expected) in cases {
            let handler = try WasmHandlerFactory(bytes: module) { _ in }.makeHandler()
            let (outcome, reply) = roundTrip(handler, [UInt8](repeating: 9, count: 64))
            #expect(outcome == expected)
            #expect(reply.count == 0)
        }
        let log = LogSink()
        let handler = try WasmHandlerFactory(bytes: try fast(scratch: "i32.const 1024", reply: echoInPlace)) {
            log.add($0)
        }.makeHandler()
        #expect(roundTrip(handler, [7, 7]) == (.reply, [7, 7]))
        #expect(roundTrip(handler, [1, 2, 3]).0 == .failed(.unreachable))
        // The replacement instance is asked for its own scratch buffer.
        #expect(roundTrip(handler, [8, 8]) == (.reply, [8, 8]))
        #expect((handler as? WasmHandler)?.replacements == 1)
        #expect(log.all.count == 1)
        // A message larger than memory cannot get a scratch buffer in range.
        #expect(roundTrip(handler, [UInt8](repeating: 1, count: 70_000)).0 == .failed(.badPointer))
    }
}

@Suite struct SDKTests {
    /// The checked-in .wasm files must be exactly what sdk/build.sh makes from the sources.
    @Test func builtModulesMatchTheirSources() throws {
        let out = NSTemporaryDirectory() + "ldsh-sdk-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [repositoryRoot.appendingPathComponent("sdk/build.sh").path, out]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        for path in [
            "c/heartbeat.wasm", "c/heartbeat-fast.wasm", "c/uppercase.wasm", "swift/Heartbeat.wasm",
            "swift/Heartbeat-fast.wasm", "swift/Uppercase.wasm",
        ] {
            let rebuilt = [UInt8](
                try Data(contentsOf: URL(fileURLWithPath: out + "/" + (path as NSString).lastPathComponent)))
            #expect(rebuilt == (try sdkModule(path)), "\(path) is stale: run sdk/build.sh")
        }
        // The quickstart's embedded copy is the built heartbeat.
        let generated = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Sources/LoadshearCommands/BundledHeartbeat.swift"),
            encoding: .utf8)
        let numbers = generated.split(separator: "\n").filter { $0.hasPrefix("        ") }
            .flatMap { $0.split(separator: ",").compactMap { UInt8($0.trimmingCharacters(in: .whitespaces)) } }
        #expect(numbers == (try sdkModule("c/heartbeat.wasm")))
    }
}

@Suite struct MemoryCapTests {
    /// A module whose initial memory is above HANDLER_MEMORY is refused at plan time, with
    /// the error on the setting.
    @Test func initialMemoryAboveTheCapIsAPlanError() throws {
        let ws = Workspace()
        let module = Modules.module(body: "i64.const 0", memoryPages: 100)  // 6.25 MiB
        let path = ws.script(
            """
            SETTINGS m {
                SESSION = "TCP"
                PORT = 9
                READ = "true"
                HEADERSIZE = 8
                BODYMAX = 64
                HEADER_LENGTH = 4:4 "big"
                HANDLER = "m.wasm"
                HANDLER_MEMORY = 1MiB
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR m {
                CREATE 1
                CONNECT 0:1
            }
            """, files: ["m.wasm": module])
        var options = PlanOptions()
        options.handlerInspector = WasmModuleInspector()
        let (plan, bag, file) = PlanBuilder.build(path: path, options: options)
        let text = DiagnosticRenderer().render(bag, in: file)
        #expect(plan == nil)
        #expect(
            text.contains(
                "9:22: error: the module starts with 6400 KiB of memory, more than HANDLER_MEMORY allows (1 MiB)"),
            "\(text)")
    }

    /// At run time the cap refuses growth (the guest sees -1) and counts each refusal.
    @Test func growthPastTheCapIsRefusedAndCounted() throws {
        let grower = Modules.module(body: "i32.const 16 memory.grow drop i64.const 0")  // 1 MiB per call
        let handler = try WasmHandlerFactory(bytes: grower, memoryLimit: 3 << 20) { _ in }.makeHandler()
        for _ in 0..<5 { #expect(roundTrip(handler, [1]).0 == .empty) }
        // 64 KiB + 2 × 1 MiB fit under 3 MiB; the other three grows are refused.
        #expect(handler.takeMemoryDenials() == 3)
        #expect(handler.takeMemoryDenials() == 0, "taken")
    }
}
