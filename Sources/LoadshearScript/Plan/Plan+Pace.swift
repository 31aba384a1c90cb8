/// (ext) The PACE phases of a plan: what the dry run shows and what the live views compare
/// the achieved rate with.
extension Plan {
    /// One PACE action's phase: its sessions send on `spec` from `start` until `end` (the
    /// next PACE, FLOOD or DISCONNECT that reaches any of them, or the end of the run).
    package struct PacePhase: Sendable {
        package var spec: PaceSpec
        package var sessions: Range<Int>
        package var start: Nanoseconds
        package var end: Nanoseconds
        package var line: Int

        /// All sessions' intended rate `t` nanoseconds into the run (0 outside the phase).
        package func aggregateRate(at t: Nanoseconds) -> Double {
            guard t >= start, t < end else { return 0 }
            return spec.rate(at: t - start) * Double(sessions.count)
        }
    }

    /// The PACE phases in timeline order.
    package func pacePhases() -> [PacePhase] {
        var phases: [PacePhase] = []
        for (i, a) in actions.enumerated() {
            guard case .pace(let spec) = a.kind else { continue }
            var end = duration
            for later in actions[(i + 1)...] where later.sessions.overlaps(a.sessions) {
                switch later.kind {
                case .pace, .flood, .disconnect:
                    end = later.at
                default:
                    continue
                }
                break
            }
            phases.append(PacePhase(spec: spec, sessions: a.sessions, start: a.at, end: end, line: a.line))
        }
        return phases
    }

    /// Payloads one session of `phase` is scheduled to send in it, capped by its payload
    /// list when the list does not repeat.
    package func expectedPayloads(_ phase: PacePhase) -> Double {
        let scheduled = phase.spec.payloads(in: phase.end - phase.start)
        if settings.repeatPayloads { return scheduled }
        return min(scheduled, Double(payloadCount(for: phase.sessions.lowerBound)))
    }
}
