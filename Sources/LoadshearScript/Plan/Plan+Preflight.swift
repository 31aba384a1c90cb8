import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// (ext) What this machine allows a run: file descriptors and ephemeral ports. Read (and the
/// soft fd limit raised to the hard one) by ``current()``; tests make their own.
package struct Limits: Sendable, Equatable {
    /// The soft `RLIMIT_NOFILE` in force (after raising it), and the hard one.
    package var descriptors: Int
    package var hardDescriptors: Int
    /// Descriptors this process has open already.
    package var openNow: Int
    /// `net.ipv4.ip_local_port_range`, ends included; nil where it cannot be read.
    package var ephemeralPorts: ClosedRange<Int>?

    package init(descriptors: Int, hardDescriptors: Int, openNow: Int, ephemeralPorts: ClosedRange<Int>?) {
        self.descriptors = descriptors
        self.hardDescriptors = hardDescriptors
        self.openNow = openNow
        self.ephemeralPorts = ephemeralPorts
    }

    /// This process's limits, the soft fd limit raised to the hard one first (no privilege
    /// needed).
    package static func current() -> Limits {
        var rl = rlimit()
        var soft = Int.max
        var hard = Int.max
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 {
            if rl.rlim_cur < rl.rlim_max {
                var raised = rl
                raised.rlim_cur = rl.rlim_max
                if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { rl = raised }
            }
            soft = rl.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(rl.rlim_cur)
            hard = rl.rlim_max >= rlim_t(Int.max) ? Int.max : Int(rl.rlim_max)
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var ports: ClosedRange<Int>?
        if let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8) {
            let n = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
            if n.count == 2, n[0] <= n[1] { ports = n[0]...n[1] }
        }
        return Limits(descriptors: soft, hardDescriptors: hard, openNow: open, ephemeralPorts: ports)
    }
}

/// (ext) The preflight's findings: the peak of open sockets against the fd limit, and the
/// busiest (source, destination) pair against the ephemeral ports.
package struct Preflight: Sendable {
    /// Sessions open at once at the timeline's peak, and the CONNECT that reaches it (its
    /// line, and its keyword's place in the script).
    package var peakSessions: Int
    package var peakLine: Int?
    package var peakRange: SourceRange?
    /// Descriptors needed: the peak plus the engine's own.
    package var descriptorsNeeded: Int
    /// Sessions on the busiest (source, destination address) pair, and which.
    package var busiestPair: (source: String, destination: String, sessions: Int)?
    /// What does not fit, each with the action to point at (nil: the run as a whole);
    /// empty when the run fits.
    package var problems: [(line: Int?, range: SourceRange?, message: String)]

    /// The engine's descriptors besides the sessions: per shard its loop (epoll, eventfd,
    /// timerfd) and write-round pipe, plus the control loop and the process's own files.
    package static func engineDescriptors(shards: Int) -> Int { shards * descriptorsPerShard + engineReserve }
    /// Per shard: NIO's epoll, eventfd and timerfd, and the write-round pipe's two ends.
    package static let descriptorsPerShard = 5
    /// The control loop (3) and some slack for the process (report files, the terminal).
    package static let engineReserve = 16
}

extension Plan {
    /// Checks this process's part of the plan (its segment, if any) against `limits`.
    package func preflight(_ limits: Limits) -> Preflight {
        let own = ownSessions
        // Open sessions over the timeline: each session connects once and disconnects at
        // most once; DRAIN counts as open (it closes when its data is out).
        var open = 0
        var peak = 0
        var peakLine: Int?
        var peakRange: SourceRange?
        var connected: [Range<Int>] = []
        // Each session connects once and disconnects at most once: which of this process's
        // sessions are open is kept exactly (a DISCONNECT skips the never-connected).
        var isOpen = [Bool](repeating: false, count: own.count)
        for a in actions {
            switch a.kind {
            case .connect:
                let r = a.sessions.clamped(to: own)
                for s in r { isOpen[s - own.lowerBound] = true }
                open += r.count
                if !r.isEmpty { connected.append(r) }
                if open > peak {
                    peak = open
                    peakLine = a.line
                    peakRange = a.keywordRange
                }
            case .disconnect:
                for s in a.sessions.clamped(to: own) where isOpen[s - own.lowerBound] {
                    isOpen[s - own.lowerBound] = false
                    open -= 1
                }
            default:
                break
            }
        }
        let needed = peak + Preflight.engineDescriptors(shards: shards.count)
        var problems: [(Int?, SourceRange?, String)] = []
        let free = limits.descriptors == Int.max ? Int.max : limits.descriptors - limits.openNow
        let engine = Preflight.engineDescriptors(shards: shards.count)
        if engine > free {
            let fitShards = (free - Preflight.engineReserve) / Preflight.descriptorsPerShard
            let advice =
                fitShards >= 1
                ? "use SHARDS = \(fitShards) or fewer, or raise the limit (ulimit -n)"
                : "no shard count fits; raise the limit (ulimit -n)"
            problems.append(
                (
                    nil, nil,
                    "SHARDS = \(shards.count) needs \(engine) file descriptors for its event loops alone, but the limit is \(limits.descriptors) (\(limits.openNow) already open); \(advice)"
                ))
        } else if needed > free {
            let fit = max(0, free - Preflight.engineDescriptors(shards: shards.count))
            var ways = [String]()
            if limits.hardDescriptors > limits.descriptors || limits.hardDescriptors == Int.max {
                ways.append("raise the limit (ulimit -n)")
            } else {
                ways.append(
                    "raise the hard limit (now \(limits.hardDescriptors): ulimit -Hn as root, LimitNOFILE in systemd, the container's nofile ulimit)"
                )
            }
            ways.append("or split the sessions over processes or hosts with --segment i/N")
            problems.append(
                (
                    peakLine, peakRange,
                    "\(peak) sessions are open at once here, and with the engine's own descriptors the run needs \(needed) file descriptors, but the limit is \(limits.descriptors) (\(limits.openNow) already open): at most \(fit) sessions fit; \(ways.joined(separator: ", "))"
                ))
        }
        // Ports: TCP sessions to one destination from one source address share its ephemeral
        // ports (IP_BIND_ADDRESS_NO_PORT makes the range per destination).
        var busiest: (String, String, Int)?
        let dests = addresses
        if settings.session.isStream, !dests.isEmpty {
            let sourceCount = max(1, settings.sources.count)
            var counts: [Int: Int] = [:]
            var best = (key: 0, n: 0)
            for r in connected {
                for s in r {
                    let key = (s % sourceCount) * dests.count + s % dests.count
                    let n = (counts[key] ?? 0) + 1
                    counts[key] = n
                    if n > best.n { best = (key, n) }
                }
            }
            if best.n > 0 {
                let src =
                    settings.sources.isEmpty ? "the kernel's source address" : settings.sources[best.key / dests.count]
                busiest = (src, dests[best.key % dests.count].description, best.n)
                if let ports = limits.ephemeralPorts, best.n > ports.count {
                    problems.append(
                        (
                            peakLine, peakRange,
                            "\(best.n) sessions connect from \(src) to \(dests[best.key % dests.count].description), but the ephemeral port range \(ports.lowerBound)–\(ports.upperBound) holds \(ports.count) ports per source and destination: at most \(ports.count) fit; add SOURCES (on loopback, e.g. SOURCES { 127.0.0.2-127.0.0.9 }), more ENDPOINTS addresses, or --segment i/N across hosts"
                        ))
                }
            }
        }
        return Preflight(
            peakSessions: peak, peakLine: peakLine, peakRange: peakRange, descriptorsNeeded: needed,
            busiestPair: busiest,
            problems: problems)
    }
}

extension Preflight {
    /// The dry run's section: what the run needs against what the machine allows.
    package func lines(_ limits: Limits) -> [String] {
        var out = ["Preflight (this machine's limits)"]
        let limit = limits.descriptors == Int.max ? "unlimited" : "\(limits.descriptors)"
        out.append(
            "  sockets       \(peakSessions) open at the peak\(peakLine.map { " (line \($0))" } ?? ""); \(descriptorsNeeded) file descriptors with the engine's, limit \(limit) (\(limits.openNow) open now)"
        )
        if let (src, dst, n) = busiestPair {
            let ports = limits.ephemeralPorts.map { "\($0.count) ephemeral ports (\($0.lowerBound)–\($0.upperBound))" }
            out.append("  ports         \(n) sessions from \(src) to \(dst)\(ports.map { ", of \($0)" } ?? "")")
        }
        out.append(problems.isEmpty ? "  fits" : "  does NOT fit: see the errors below")
        return out
    }
}
