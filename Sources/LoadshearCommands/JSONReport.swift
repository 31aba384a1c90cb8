import Foundation
import LoadshearMetrics
import LoadshearScript

/// The final report as JSON (`--json`). Field names are stable; see docs/report-format.md.
struct JSONReport: Encodable {
    struct SettingsPart: Encodable {
        var script: String
        var name: String
        var session: String
        var port: Int
        var read: Bool
        var shards: Int
        var sessions: Int
        var handler: String
        var endpoints: [String]
    }

    struct ActionPart: Encodable {
        var action: String
        var sessions: [Int]
        var atNanoseconds: Int64
        var line: Int
    }

    var version = 1
    var settings: SettingsPart
    var timeline: [ActionPart]
    var durationSeconds: Double
    var totals: [String: Int]
    var shards: [[String: Int]]

    init(plan: Plan, snapshot: Snapshot) {
        var handler = "NOP"
        if case .wasm(let w) = plan.handler { handler = w.path }
        settings = SettingsPart(
            script: plan.scriptPath, name: plan.name, session: plan.settings.session.rawValue,
            port: plan.settings.port, read: plan.settings.read, shards: plan.shards.count,
            sessions: plan.sessionCount, handler: handler, endpoints: plan.addresses.map(\.description))
        timeline = plan.actions.map {
            ActionPart(action: $0.kind.name, sessions: [$0.sessions.lowerBound, $0.sessions.upperBound],
                       atNanoseconds: $0.at, line: $0.line)
        }
        durationSeconds = snapshot.elapsed
        totals = Self.dictionary(snapshot.totals)
        shards = snapshot.perShard.map(Self.dictionary)
    }

    static func dictionary(_ v: CounterValues) -> [String: Int] {
        var d: [String: Int] = [:]
        for c in ShardCounters.Counter.allCases { d[String(describing: c)] = v[c] }
        return d
    }

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var data = try encoder.encode(self)
        data.append(0x0A)
        if path == "-" {
            FileHandle.standardOutput.write(data)
        } else {
            try data.write(to: URL(fileURLWithPath: path))
        }
    }
}
