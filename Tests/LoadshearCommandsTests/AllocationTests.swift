import Foundation
import Testing

/// Recording a metric on the per-packet path allocates nothing: counted with
/// ordo-one/malloc-interposer, preloaded into the `loadshear-allocations` tool.
@Suite struct AllocationTests {
    @Test func recordingAllocatesNothing() async throws {
        let library = BinaryRunner.built("libMallocInterposerSwift.so")
        let p = try LiveProcess(
            [], environment: ["LD_PRELOAD": library.path],
            executable: BinaryRunner.built("loadshear-allocations"))
        #expect(await p.exit() == 0)
        var figures: [String: Int] = [:]
        for line in p.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=")
            if parts.count == 2, let v = Int(parts[1]) { figures[String(parts[0])] = v }
        }
        #expect(figures["control_allocations"] ?? 0 >= 1, "the interposer counts: \(p.stdout)")
        for name in ["counter_add_allocations", "latency_record_allocations", "take_with_spare_allocations"] {
            #expect(figures[name] == 0, "\(name): \(p.stdout)")
        }
    }

    /// A frame through the fast path allocates far less than through the original contract:
    /// the allocations are WasmKit's own, per guest call (result arrays, call layouts; many
    /// more in a debug build), so they follow the number of calls.
    @Test func theFastPathAllocatesLessPerFrame() async throws {
        let library = BinaryRunner.built("libMallocInterposerSwift.so")
        let sdk = BinaryRunner.repositoryRoot.appendingPathComponent("sdk/examples/c")
        let p = try LiveProcess(
            ["heartbeat.wasm", "heartbeat-fast.wasm"].map { sdk.appendingPathComponent($0).path },
            environment: ["LD_PRELOAD": library.path], executable: BinaryRunner.built("loadshear-allocations"))
        #expect(await p.exit() == 0, "\(p.stdout)")
        var perFrame: [String: Double] = [:]
        for m in p.stdout.matches(of: /handler_frame_allocations=([^:]+):([0-9.]+)/) {
            perFrame[String(m.1)] = Double(m.2)
        }
        let original = try #require(perFrame["heartbeat.wasm"], "\(p.stdout)")
        let fast = try #require(perFrame["heartbeat-fast.wasm"], "\(p.stdout)")
        // Two guest calls (body_length, handle_message) against seven (alloc, handle_header,
        // dealloc; alloc, handle_body, dealloc ×2): well under half.
        #expect(fast * 2 < original, "\(p.stdout)")
    }
}
