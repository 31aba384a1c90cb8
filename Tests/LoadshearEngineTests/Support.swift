import Foundation
import LoadshearEngine
import LoadshearHandlers
import LoadshearMetrics
import LoadshearScript
import LoadshearTestSupport
import Testing

/// Builds a plan from script text; packet files are written next to the script.
func makePlan(_ text: String, packets: [String: [UInt8]] = [:], port: Int, shards cpuCount: Int = 2) throws -> Plan {
    let ws = Workspace()
    let path = ws.script(text.replacingOccurrences(of: "@PORT@", with: String(port)), files: packets)
    var options = PlanOptions()
    options.cpuCount = cpuCount
    options.handlerInspector = WasmModuleInspector()
    let (plan, diagnostics, file) = PlanBuilder.build(path: path, options: options)
    guard let plan else {
        Issue.record("plan failed:\n\(DiagnosticRenderer().render(diagnostics, in: file))")
        throw PlanFailed()
    }
    return plan
}

struct PlanFailed: Error {}

/// A fast test configuration: generous drain grace, everything else as shipped.
func testConfiguration(_ configure: (inout EngineConfiguration) -> Void = { _ in }) -> EngineConfiguration {
    var config = EngineConfiguration()
    config.drainGrace = .seconds(10)
    configure(&config)
    return config
}

extension Engine {
    /// An engine with the plan's own handler (logs dropped).
    convenience init(plan: Plan, configuration: EngineConfiguration, handlerFactoryFor: Plan) throws {
        self.init(
            plan: plan, handlerFactory: try WasmHandlerFactory.forPlan(plan) { _ in }, configuration: configuration)
    }
}

/// Runs a plan with the plan's handler; handler logs are collected, not printed.
func run(_ plan: Plan, configure: (inout EngineConfiguration) -> Void = { _ in }) async throws -> Snapshot {
    let factory = try WasmHandlerFactory.forPlan(plan) { _ in }
    return try await Engine(plan: plan, handlerFactory: factory, configuration: testConfiguration(configure)).run()
}

/// Runs a plan until `condition` says so (it gets the totals of every 500 ms snapshot to
/// wait on), then stops it gracefully and returns the final snapshot. Tests end runs on an
/// event, not on a timeline offset: on a loaded machine connects and reads can take longer
/// than any offset a test would pick.
func run(
    _ plan: Plan, configure: (inout EngineConfiguration) -> Void = { _ in },
    log: @escaping @Sendable (String) -> Void = { _ in },
    handlerLog: @escaping @Sendable (String) -> Void = { _ in },
    sourceLocation: Testing.SourceLocation = #_sourceLocation,
    until condition: (Watched<CounterValues>) async -> Bool
) async throws -> Snapshot {
    let factory = try WasmHandlerFactory.forPlan(plan, log: handlerLog)
    let engine = Engine(plan: plan, handlerFactory: factory, configuration: testConfiguration(configure), log: log)
    let totals = Watched(CounterValues())
    async let result = engine.run { s in totals.change { $0 = s.totals } }
    let reached = await condition(totals)
    #expect(reached, "the run never reached the condition the test waits for", sourceLocation: sourceLocation)
    engine.stop()
    return try await result
}

/// The sums every final snapshot must satisfy, whatever happened in the run.
func expectConsistent(_ s: Snapshot, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    let t = s.totals
    #expect(t[.connectionsActive] == 0, sourceLocation: sourceLocation)
    #expect(
        t[.connectionsAttempted] == t[.connectionsSucceeded] + t[.connectionsFailed] + t[.connectionsCancelled],
        "attempted = connected + failed + cancelled", sourceLocation: sourceLocation)
    #expect(
        t[.connectionsSucceeded] == t[.closedByUs] + t[.closedByPeer] + t[.resets] + t[.localErrors]
            + t[.protocolErrors],
        "every connection ends exactly once", sourceLocation: sourceLocation)
    #expect(
        t[.handlerCalls] == t[.handlerReplies] + t[.handlerEmpty] + t[.handlerTraps] + t[.handlerBadPointers]
            + t[.handlerAllocFailures], "every handler call is counted once", sourceLocation: sourceLocation)
    #expect(
        t[.handlerTraps] == t[.trapUnreachable] + t[.trapOutOfBounds] + t[.trapOutOfFuel] + t[.trapStackExhausted]
            + t[.trapOther], sourceLocation: sourceLocation)
    #expect(t[.responsesSent] <= t[.handlerReplies], sourceLocation: sourceLocation)
    #expect(t[.resetsSent] <= t[.closedByUs], "an RST we send is our close", sourceLocation: sourceLocation)
    #expect(
        t[.connectionsFailed] == ShardCounters.connectFailureReasons.reduce(0) { $0 + t[$1.0] },
        "every failed connect has one reason", sourceLocation: sourceLocation)
    #expect(
        t[.protocolErrors] == ShardCounters.protocolErrorReasons.reduce(0) { $0 + t[$1.0] },
        "every protocol error has one reason", sourceLocation: sourceLocation)
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

/// Frames with a configurable header: type at bytes 0..3 and the body length at `offset`.
func frame(type: UInt8 = 1, body: [UInt8], headerSize: Int = 8, lengthAt offset: Int = 4) -> [UInt8] {
    var h = [UInt8](repeating: 0, count: headerSize)
    h[3] = type
    let n = UInt32(body.count)
    h[offset] = UInt8(n >> 24)
    h[offset + 1] = UInt8((n >> 16) & 0xFF)
    h[offset + 2] = UInt8((n >> 8) & 0xFF)
    h[offset + 3] = UInt8(n & 0xFF)
    return h + body
}

/// Splits a stream of 8-byte-header frames (length at 4..7, big-endian) into (type, body).
/// A partial frame at the end is left out.
func frames(_ stream: [UInt8]) -> [(type: UInt8, body: ArraySlice<UInt8>)] {
    var out: [(UInt8, ArraySlice<UInt8>)] = []
    var i = 0
    while i + 8 <= stream.count {
        let n = Int(integer(stream[(i + 4)..<(i + 8)], bigEndian: true))
        guard i + 8 + n <= stream.count else { break }
        out.append((stream[i + 3], stream[(i + 8)..<(i + 8 + n)]))
        i += 8 + n
    }
    return out
}

let hello: [UInt8] = Array("hello world".utf8)  // 11 bytes
