import Foundation
import LoadshearScript

#if canImport(Glibc)
import Glibc
#endif

/// The process's file-descriptor budget: checked before any event loop starts, so a short
/// limit is a clear error instead of a fatal error inside NIO.
package enum FileDescriptors {
    /// Descriptors one shard needs before any session connects: NIO's epoll, eventfd and
    /// timerfd, and the two ends of the shard's write-round pipe.
    package static let perShard = Preflight.descriptorsPerShard
    /// The engine's own: the snapshot timer's event loop (3) and some slack for the
    /// process (report files, the terminal).
    package static let engineReserve = Preflight.engineReserve

    /// Raises the soft `RLIMIT_NOFILE` to the hard limit (allowed without privileges) and
    /// returns the soft limit in force afterwards.
    @discardableResult
    package static func raiseLimit() -> Int {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return Int.max }
        if rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { rl = raised }
        }
        return rl.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(rl.rlim_cur)
    }

    /// Descriptors open now.
    package static func openCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }

    /// Nil when `shards` event loops fit in what is free; otherwise why not.
    package static func checkShards(_ shards: Int) -> String? {
        let limit = raiseLimit()
        let free = limit == Int.max ? Int.max : limit - openCount()
        let needed = shards * perShard + engineReserve
        guard needed > free else { return nil }
        let fit = max(0, (free - engineReserve) / perShard)
        return "SHARDS = \(shards) needs about \(needed) file descriptors for its event loops before any session "
            + "connects, but only \(max(0, free)) of the limit of \(limit) are free; use SHARDS = \(fit) or fewer, "
            + "or raise the limit (ulimit -n)"
    }
}
