import Foundation
import LoadshearMetrics
import Testing

@testable import LoadshearCommands

/// (ext) The generator verdict's judgement of the shards' loops.
@Suite struct GeneratorVerdictTests {
    /// A snapshot of `seconds` in which each shard's loop was busy `busySeconds`.
    static func snapshot(seconds: Double, busySeconds: [Double]) -> Snapshot {
        let shards = busySeconds.map { busy -> CounterValues in
            var v = CounterValues()
            v[.loopBusyMicroseconds] = Int(busy * 1e6)
            return v
        }
        return Snapshot(elapsed: seconds, perShard: shards, previous: nil)
    }

    /// A run stopped before it began (Ctrl-C while waiting for --start-at) is too short for
    /// a busy share to mean anything: the verdict says so rather than "100% busy".
    @Test func aRunTooShortIsNotJudgedByItsLoops() throws {
        let v = GeneratorVerdict(lagLimit: 1000, snapshot: Self.snapshot(seconds: 0.01, busySeconds: [0.01, 0.01]))
        #expect(!v.saturated)
        #expect(v.line == "generator: ok (the run was too short to judge the shards' load)", "\(v.line)")
        // The JSON report says so too, and a report without the key (older) still decodes.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(v)) as? [String: Any]
        #expect(json?["tooShortToJudge"] as? Bool == true)
        var older = json ?? [:]
        older["tooShortToJudge"] = nil
        let decoded = try JSONDecoder().decode(
            GeneratorVerdict.self, from: JSONSerialization.data(withJSONObject: older))
        #expect(!decoded.tooShortToJudge && decoded.busy == v.busy)
    }

    /// Over a run long enough, a loop busy nearly all of it saturates the verdict, and an idle
    /// one is reported by its share.
    @Test func loopsAreJudgedOverARunLongEnough() {
        let busy = GeneratorVerdict(lagLimit: 1000, snapshot: Self.snapshot(seconds: 2, busySeconds: [1.98, 0.2]))
        #expect(busy.saturated)
        #expect(busy.line.contains("shard 0 was busy 99% of the run"), "\(busy.line)")
        let idle = GeneratorVerdict(lagLimit: 1000, snapshot: Self.snapshot(seconds: 2, busySeconds: [0.2, 0.4]))
        #expect(idle.line == "generator: ok (busiest shard 20% busy)", "\(idle.line)")
    }

    /// A threshold without a value (a latency with no samples) writes `"value": null`, as
    /// report-format.md says, rather than leaving the key out.
    @Test func aThresholdWithoutAValueWritesNull() throws {
        let r = ThresholdResult(expression: "response.p99 < 1s", value: nil, shown: "no samples", ok: false, line: 3)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as? [String: Any]
        #expect(json?.keys.contains("value") == true && json?["value"] is NSNull, "\(json ?? [:])")
        #expect(try JSONDecoder().decode(ThresholdResult.self, from: JSONEncoder().encode(r)) == r)
    }
}
