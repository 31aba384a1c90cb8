import LoadshearScript

/// (ext) One session's PACE schedule: payload `k` of the phase is intended to go out at
/// `start + τ(k + i/n)`, where τ inverts the number of payloads due after τ (the rate's
/// integral: `k/rate` at a constant rate, a quadratic during a ramp) and `i/n` is the
/// session's place among the `n` sessions of the PACE (see ``init(_:phaseStart:session:of:)``).
/// The schedule is fixed when the phase starts and never slips: a late payload goes out as
/// soon as it can and is measured from its intended time.
struct Pacer {
    /// Monotonic nanoseconds (NIODeadline uptime) of the phase's start.
    let start: UInt64
    /// The session's place among the PACE's sessions, in payloads (`i/n`, below 1).
    private let offset: Double
    /// Per-nanosecond rates at the start and the end of the ramp, and the ramp's length.
    private let r0: Double
    private let r1: Double
    private let ramp: Double
    /// Payloads due by the end of the ramp.
    private let rampPayloads: Double
    /// Payloads of the phase handed to the socket so far.
    private(set) var sent = 0
    /// How late counts as behind (``PaceSpec/lagTolerance``).
    let tolerance: UInt64

    /// Session `i` of the `n` in the PACE's range is `i/n` of a payload behind session 0 on
    /// the same schedule, so the sessions' payloads are spread evenly: at a constant rate
    /// that is `i/n` of a period late; during a ramp, `i/n` of the interval at that moment.
    /// (Shifting a whole ramp by a period of its starting rate instead starved it: from
    /// 0.001/s, sessions 1–3 of 4 would have started 250 s late.)
    init(_ spec: PaceSpec, phaseStart: UInt64, session i: Int, of n: Int) {
        r0 = spec.rate / 1e9
        r1 = (spec.target ?? spec.rate) / 1e9
        ramp = spec.target == nil ? 0 : Double(spec.ramp)
        rampPayloads = (r0 + r1) / 2 * ramp
        offset = Double(i) / Double(max(1, n))
        start = phaseStart
        tolerance = UInt64(spec.lagTolerance)
    }

    /// True when nothing will ever be due (`PACE a:b 0/s`).
    var isPaused: Bool { r0 == 0 && r1 == 0 }

    /// How many payloads are due by `now`: payload `k` is due once `intended(k) <= now`.
    /// The rate's integral gives the count; it is then checked against `intended`, so the
    /// two never disagree whatever the floating-point rounding.
    func due(at now: UInt64) -> Int {
        guard now >= start, !isPaused else { return 0 }
        let t = Double(now - start)
        let n: Double
        if ramp > 0, t <= ramp {
            n = r0 * t + (r1 - r0) * t * t / (2 * ramp)
        } else {
            n = rampPayloads + r1 * (t - ramp)
        }
        guard n < Double(Int.max / 4) else { return Int.max / 4 }
        var d = max(0, Int((n - offset).rounded(.down)) + 1)
        while d > 0, intended(d - 1) > now { d -= 1 }
        while intended(d) <= now { d += 1 }
        return d
    }

    /// The intended send time of payload `k` of the phase (`UInt64.max`: never).
    func intended(_ k: Int) -> UInt64 {
        let k = Double(k) + offset
        let t: Double
        if k <= rampPayloads, ramp > 0 {
            let a = (r1 - r0) / (2 * ramp)
            if abs(a) < 1e-30 {
                t = r0 > 0 ? k / r0 : 0
            } else {
                let disc = max(0, r0 * r0 + 4 * a * k)
                t = (-r0 + disc.squareRoot()) / (2 * a)
            }
        } else if r1 > 0 {
            t = ramp + (k - rampPayloads) / r1
        } else {
            return .max
        }
        guard t.isFinite, t < 1.8e19 - Double(start) else { return .max }
        return start &+ UInt64(max(0, t).rounded(.up))
    }

    /// Payloads the schedule lets out now, given what has been sent.
    func budget(at now: UInt64) -> Int { max(0, due(at: now) - sent) }

    mutating func didSend(_ n: Int) { sent += n }
}

/// (ext) A shard's paced sessions ordered by when their next payload is due: a binary
/// min-heap in one array, so scheduling allocates only while it grows. Entries carry the
/// session's pace generation; an entry from an older phase is dropped when it surfaces.
struct PaceQueue {
    struct Entry {
        var due: UInt64
        var session: Int32
        var generation: UInt32
        /// (ext) A CHURN turn rather than a paced payload.
        var churn = false
    }

    private var heap: [Entry] = []

    var first: Entry? { heap.first }

    mutating func push(_ e: Entry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].due < heap[parent].due else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !heap.isEmpty else { return nil }
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < heap.count, heap[l].due < heap[m].due { m = l }
                if r < heap.count, heap[r].due < heap[m].due { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
