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
}
