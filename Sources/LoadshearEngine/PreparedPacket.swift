import LoadshearScript
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Packet bytes prepared once per run and shared by every shard (a ByteBuffer that is never
/// written to is safe to share). A small packet is also kept repeated back to back in one
/// buffer (up to 64 KiB), so a run of copies goes out as one slice of it: one iovec for many
/// packets, and not one byte copied at run time. A packet over 32 KiB is held once.
struct PreparedPacket: Sendable {
    /// The packet, once.
    let buffer: ByteBuffer
    /// The packet `repeatCount` times back to back (the same buffer as `buffer` when that is 1).
    let repeated: ByteBuffer
    /// Copies in `repeated`: as many as fit in 64 KiB, at most 4096, at least 1.
    let repeatCount: Int
    /// The packet's size in bytes.
    var size: Int { buffer.readableBytes }

    /// Copies `bytes` into `buffer` and, repeated, into `repeated`.
    init(bytes: [UInt8], allocator: ByteBufferAllocator) {
        var b = allocator.buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        buffer = b
        let n = max(1, min(4096, (64 * 1024) / max(1, bytes.count)))
        if n == 1 {
            repeated = b
        } else {
            var r = allocator.buffer(capacity: bytes.count * n)
            for _ in 0..<n { r.writeBytes(bytes) }
            repeated = r
        }
        repeatCount = n
    }

    /// `n` copies (n ≤ repeatCount) as a slice of the repeated buffer.
    @inline(__always)
    func copies(_ n: Int) -> ByteBuffer {
        n == 1 ? buffer : repeated.getSlice(at: repeated.readerIndex, length: n * size)!
    }
}

/// Writes an unsigned integer into `length` bytes in the given order (the low bytes of `v`).
@inline(__always)
func putInteger(_ v: UInt64, length: Int, order: ByteOrder, into p: UnsafeMutableRawBufferPointer, at offset: Int) {
    for i in 0..<length {
        let shift = UInt64(order == .big ? (length - 1 - i) * 8 : i * 8)
        p[offset + i] = UInt8(truncatingIfNeeded: v >> shift)
    }
}

/// Wall-clock Unix time in nanoseconds.
@inline(__always)
func unixNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// A SEND's patches resolved for fast writing: the changed bytes form one region
/// `[lo, hi)`; the rest of the packet is written as slices of the prepared buffer.
struct PatchLayout: Sendable {
    var counter: CounterPatch?
    var timestamp: TimestampPatch?
    /// The first patched byte.
    var lo: Int
    /// One past the last patched byte.
    var hi: Int

    /// The layout of `send`'s patches; nil when it has none.
    init?(_ send: SendSpec) {
        guard send.counter != nil || send.timestamp != nil else { return nil }
        counter = send.counter
        timestamp = send.timestamp
        let starts = [send.counter?.offset, send.timestamp?.offset].compactMap { $0 }
        let ends = [send.counter.map { $0.offset + $0.length }, send.timestamp.map { $0.offset + $0.length }]
            .compactMap { $0 }
        lo = starts.min()!
        hi = ends.max()!
    }
}
