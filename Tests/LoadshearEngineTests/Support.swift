import Foundation
import LoadshearEngine
import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import Testing

/// Builds a plan from script text; packet files are written next to the script.
func makePlan(_ text: String, packets: [String: [UInt8]] = [:], port: Int) throws -> Plan {
    let dir = NSTemporaryDirectory() + "ldsh-engine-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (name, bytes) in packets {
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
    }
    let path = dir + "/t.ldsh"
    try text.replacingOccurrences(of: "@PORT@", with: String(port)).write(toFile: path, atomically: true, encoding: .utf8)
    var options = PlanOptions()
    options.cpuCount = 2
    options.handlerInspector = WasmModuleInspector()
    let (plan, diagnostics, file) = PlanBuilder.build(path: path, options: options)
    guard let plan else {
        Issue.record("plan failed:\n\(DiagnosticRenderer().render(diagnostics, in: file))")
        throw PlanFailed()
    }
    return plan
}

struct PlanFailed: Error {}

/// Runs a plan with a fast test configuration and the plan's handler.
func run(_ plan: Plan, configure: (inout EngineConfiguration) -> Void = { _ in }) async throws -> Snapshot {
    var config = EngineConfiguration()
    config.drainGrace = .seconds(10)
    configure(&config)
    let factory = try WasmHandlerFactory.forPlan(plan) { _ in }
    return try await Engine(plan: plan, handlerFactory: factory, configuration: config).run()
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func sdkModule(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: repositoryRoot.appendingPathComponent("sdk/examples/" + path)))
}

/// Reads unsigned integers out of fixed-size packets.
func integer(_ bytes: ArraySlice<UInt8>, bigEndian: Bool) -> UInt64 {
    let ordered = bigEndian ? Array(bytes) : Array(bytes.reversed())
    return ordered.reduce(0) { $0 << 8 | UInt64($1) }
}

func packets(_ stream: [UInt8], size: Int) -> [ArraySlice<UInt8>] {
    stride(from: 0, to: stream.count, by: size).map { stream[$0..<min($0 + size, stream.count)] }
}

let hello: [UInt8] = Array("hello world".utf8)  // 11 bytes
