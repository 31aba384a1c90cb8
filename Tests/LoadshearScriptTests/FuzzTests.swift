import LoadshearTestSupport
import Testing

@testable import LoadshearScript

/// Mutated scripts must always end in a plan or diagnostics: never a crash or a hang.
@Suite struct FuzzTests {
    static let seedScript = script(
        settings:
            "    READ = \"true\"\n    HEADERSIZE = 8\n    BODYMAX = 64\n    HEADER_LENGTH = 4:4 \"big\"\n    SHARDS = 2",
        actions: """
                CONNECT 0:5 OFFSET 1.5s
                CONNECT 5:10
                SEND 0:10 p2 COPIES 3 COUNTER 0:4 "big":1 TIMESTAMP 8:8 "little":"microseconds"
                FLOOD 0:10 OFFSET 10ms
                DRAIN 0:10
                DISCONNECT 0:10 OFFSET 1m
            """)

    static let fragments = [
        "{", "}", ":", "=", ",", "\"", "\\", "//", "\n", "0", "99999999999999999999", "1.5s", "SEND",
        "CREATE", "SETTINGS", "ORCHESTRATOR", "OFFSET", "COUNTER", "p1", "\u{0}", "é", "$", "RATE",
    ]

    /// 5,000 mutations in all (10 seeds × 500).
    @Test(arguments: 1...10)
    func mutatedScriptsNeverCrash(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let ws = Workspace.withPackets()
        let base = Array(Self.seedScript.utf8)
        for _ in 0..<500 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let at = Int.random(in: 0...bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !bytes.isEmpty:
                    bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &rng)))
                case 1:
                    bytes.insert(contentsOf: Array(Self.fragments.randomElement(using: &rng)!.utf8), at: at)
                case 2:
                    bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
                default:
                    if at < bytes.count { bytes[at] = UInt8.random(in: 0...255, using: &rng) }
                }
            }
            let file = SourceFile(path: ws.dir + "/fuzz.ldsh", bytes: bytes)
            let (p, d) = PlanBuilder.build(file, options: testOptions())
            #expect(p != nil || d.hasErrors)
            if let p { _ = p.dryRunText() } else { _ = DiagnosticRenderer().render(d, in: file) }
        }
    }

    @Test func arbitraryBytesNeverCrash() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            let bytes = (0..<Int.random(in: 0..<400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let file = SourceFile(path: "random.ldsh", bytes: bytes)
            let (p, d) = PlanBuilder.build(file, options: testOptions())
            #expect(p == nil && d.hasErrors)
            _ = DiagnosticRenderer().render(d, in: file)
        }
    }
}
