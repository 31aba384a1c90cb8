import NIOCore

/// What a session has handed to its socket and not yet accounted for, batch by batch, so
/// that bytes, packets and replies count as sent exactly when the kernel took them.
///
/// NIO completes one promise per batch (on its last write). A batch that completes is
/// counted whole. When we close with batches in flight, what the kernel took is everything
/// handed over minus what the channel still buffers; that many bytes are counted, and the
/// packets and replies they hold whole (each item's size is known, so partial items are not
/// counted). When the peer cuts a batch off, NIO fails it without saying how much of it was
/// written: its bytes are reported as unconfirmed, and the batches after it were never
/// written. Storage is reused: no allocation once the queues have grown to their working size.
struct SendLedger {
    /// One run of equal-size packets, or the replies of one reply buffer.
    enum Item {
        case packets(count: Int, size: Int)
        case replies(count: Int, bytes: Int)
        /// The end of batch `seq`, whose last write carries its promise.
        case endOfBatch(seq: Int)
    }

    /// Amounts the kernel took (or that are unconfirmed), to add to the counters.
    struct Settled: Equatable {
        var bytes = 0
        var packets = 0
        var replies = 0
        /// Bytes of a batch cut off mid-write: none, some or all of them reached the kernel.
        var unconfirmedBytes = 0
    }

    // Made on first use and small to start with (they grow when a session has many batches
    // in flight): a run may hold hundreds of thousands of sessions.
    private var items = LazyRing<Item>(initialCapacity: 4)
    /// Sizes of the replies handed over (or queued) and not yet accounted for, in order.
    private var replySizes = LazyRing<Int>(initialCapacity: 2)
    /// The number the next batch closed gets.
    private var nextSeq = 0
    /// Batches up to this one are accounted for.
    private var settledThrough = -1
    /// Bytes handed over in batches not yet accounted for.
    private(set) var unsettledBytes = 0
    /// Bytes handed over in the batch being built.
    private var openBatchBytes = 0
    /// A batch failed: the connection is gone, nothing after it was written.
    private var cutOff = false

    /// Something handed over is not accounted for yet.
    var hasUnsettled: Bool { !items.isEmpty }

    /// A reply of `size` bytes was produced (it will be handed over later, in order).
    mutating func replyQueued(size: Int) {
        replySizes.append(size)
    }

    /// Replies that will never be handed over (the session closed first).
    mutating func dropQueuedReplies(_ count: Int) {
        // The dropped ones are the last queued.
        for _ in 0..<min(count, replySizes.count) { replySizes.removeLast() }
    }

    /// A run of `count` packets of `size` bytes; runs of one size in a row are one item, so a
    /// batch of many small runs costs one entry.
    mutating func handPackets(count: Int, size: Int) {
        openBatchBytes += count * size
        if let last = items.last, case .packets(let c, size) = last {
            items.last = .packets(count: c + count, size: size)
        } else {
            items.append(.packets(count: count, size: size))
        }
    }

    /// A buffer of `count` replies, `bytes` bytes in all, was handed over.
    mutating func handReplies(count: Int, bytes: Int) {
        items.append(.replies(count: count, bytes: bytes))
        openBatchBytes += bytes
    }

    /// Closes the batch being built (its last write carries the promise); returns its number.
    mutating func closeBatch() -> Int {
        let seq = nextSeq
        nextSeq += 1
        items.append(.endOfBatch(seq: seq))
        unsettledBytes += openBatchBytes
        openBatchBytes = 0
        return seq
    }

    /// Batch `seq` was written completely (and so were all before it).
    mutating func written(_ seq: Int) -> Settled {
        guard seq > settledThrough else { return Settled() }
        var out = Settled()
        while let item = items.popFirst() {
            switch item {
            case .packets(let count, let size):
                out.packets += count
                out.bytes += count * size
            case .replies(let count, let bytes):
                out.replies += count
                out.bytes += bytes
                replySizes.removeFirst(min(count, replySizes.count))
            case .endOfBatch(let s):
                if s == seq {
                    settledThrough = seq
                    unsettledBytes -= out.bytes
                    return out
                }
            }
        }
        settledThrough = seq
        unsettledBytes = 0
        return out
    }

    /// Batch `seq` failed because the connection went away under it. The first such batch
    /// was partly written, by an amount nobody reports: its bytes are unconfirmed. Later
    /// batches were never written.
    mutating func failed(_ seq: Int) -> Settled {
        guard seq > settledThrough else { return Settled() }
        var out = Settled()
        var first = !cutOff
        cutOff = true
        while let item = items.popFirst() {
            switch item {
            case .packets(let count, let size):
                if first { out.unconfirmedBytes += count * size }
            case .replies(let count, let bytes):
                if first { out.unconfirmedBytes += bytes }
                replySizes.removeFirst(min(count, replySizes.count))
            case .endOfBatch(let s):
                first = false
                if s == seq {
                    settledThrough = seq
                    recomputeUnsettled()
                    return out
                }
            }
        }
        settledThrough = seq
        unsettledBytes = 0
        return out
    }

    /// We are closing with batches in flight and the channel still buffers `buffered` bytes
    /// of them: the rest reached the kernel. Accounts for every batch handed over so far; their
    /// promises, failed by the close, are then ignored.
    mutating func settle(buffered: Int) -> Settled {
        var written = max(0, unsettledBytes - buffered)
        var out = Settled()
        out.bytes = written
        while let item = items.popFirst() {
            switch item {
            case .packets(let count, let size):
                let whole = min(count, written / max(size, 1))
                out.packets += whole
                written -= min(written, count * size)
            case .replies(let count, let bytes):
                var left = min(written, bytes)
                written -= left
                for _ in 0..<count {
                    guard let size = replySizes.popFirst() else { break }
                    if size <= left {
                        out.replies += 1
                        left -= size
                    } else {
                        left = 0
                    }
                }
            case .endOfBatch(let s):
                settledThrough = s
            }
        }
        unsettledBytes = 0
        return out
    }

    /// Sums the bytes of everything still in `items`.
    private mutating func recomputeUnsettled() {
        var sum = 0
        for item in items {
            switch item {
            case .packets(let count, let size): sum += count * size
            case .replies(_, let bytes): sum += bytes
            case .endOfBatch: break
            }
        }
        unsettledBytes = sum
    }
}
