import LoadshearScript

/// Runs a plan. Execution arrives with the engine.
struct RunSession {
    var plan: Plan
    var acknowledge: Bool
    var quiet: Bool
    var json: String?
    var noTUI: Bool

    func execute() async -> Int32 {
        Console.error("loadshear: running scripts arrives with the TCP engine; use --dry-run to see the plan\n")
        return 1
    }
}
