import LoadshearScript

/// The process's file-descriptor budget: checked before any event loop starts, so a short
/// limit is a clear error instead of a fatal error inside NIO.
package enum FileDescriptors {
    /// Descriptors one shard needs before any session connects: NIO's epoll, eventfd and
    /// timerfd, and the two ends of the shard's write-round pipe.
    package static let perShard = Preflight.descriptorsPerShard
    /// The engine's own: the snapshot timer's event loop (3) and some slack for the
    /// process (report files, the terminal).
    package static let engineReserve = Preflight.engineReserve

    /// Nil when `shards` event loops fit in what is free; otherwise why not.
    package static func checkShards(_ shards: Int) -> String? {
        // The same reading of the limits as the plan's preflight (soft limit raised first).
        let limits = Limits.current()
        let limit = limits.descriptors
        let free = limit == Int.max ? Int.max : limit - limits.openNow
        let needed = shards * perShard + engineReserve
        guard needed > free else { return nil }
        let fit = max(0, (free - engineReserve) / perShard)
        return "SHARDS = \(shards) needs about \(needed) file descriptors for its event loops before any session "
            + "connects, but only \(max(0, free)) of the limit of \(limit) are free; use SHARDS = \(fit) or fewer, "
            + "or raise the limit (ulimit -n)"
    }
}
