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
        #expect(Set(["memory", "alloc", "dealloc", "handle_body", "handle_header"]).isSubset(of: Set(r.exports)))
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
        for path in ["c/heartbeat.wasm", "c/uppercase.wasm", "swift/Heartbeat.wasm", "swift/Uppercase.wasm"] {
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
