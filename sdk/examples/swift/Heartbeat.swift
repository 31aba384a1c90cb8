// Heartbeat responder in Embedded Swift: answers each ping frame (type 1) with a pong
// (type 2) carrying the same body. Same frame layout as sdk/examples/c/heartbeat.c:
// 8-byte header, type at bytes 0..3, body length at bytes 4..7, both big-endian.
//
// One source, both contracts: sdk/build.sh builds it as is (the original contract:
// handle_header, handle_body) into Heartbeat.wasm, and with -D LOADSHEAR_FAST_PATH (the
// fast path: body_length, handle_message, answering in place) into Heartbeat-fast.wasm.

// alloc, dealloc and, on the fast path, scratch come from support/Allocator.swift.

@inline(__always)
func be32(_ p: UnsafePointer<UInt8>) -> UInt32 {
    UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
}

/// The body length in a header, -1 when it is too short.
func frameBodyLength(_ ptr: UInt32, _ size: UInt32) -> Int32 {
    guard size >= 8, let p = UnsafePointer<UInt8>(bitPattern: UInt(ptr)) else { return -1 }
    return Int32(bitPattern: be32(p + 4))
}

/// Turns a ping into its pong where it lies; the reply's size, 0 for no reply.
func pongInPlace(_ ptr: UInt32, _ size: UInt32) -> UInt32 {
    guard size >= 8, let m = UnsafeMutablePointer<UInt8>(bitPattern: UInt(ptr)), be32(m) == 1 else { return 0 }
    m[0] = 0; m[1] = 0; m[2] = 0; m[3] = 2
    return size
}

#if LOADSHEAR_FAST_PATH

@_expose(wasm, "body_length") @_cdecl("body_length")
public func bodyLength(_ size: UInt32) -> Int32 {
    frameBodyLength(scratchBase, size)
}

@_expose(wasm, "handle_message") @_cdecl("handle_message")
public func handleMessage(_ size: UInt32) -> UInt64 {
    let n = pongInPlace(scratchBase, size)
    return n == 0 ? 0 : UInt64(n) << 32 | UInt64(scratchBase)
}

#else

@_expose(wasm, "handle_header") @_cdecl("handle_header")
public func handleHeader(_ ptr: UInt32, _ size: UInt32) -> Int32 {
    frameBodyLength(ptr, size)
}

@_expose(wasm, "handle_body") @_cdecl("handle_body")
public func handleBody(_ ptr: UInt32, _ size: UInt32) -> UInt64 {
    guard size >= 8, let input = UnsafePointer<UInt8>(bitPattern: UInt(ptr)), be32(input) == 1 else { return 0 }
    let out = alloc(size)
    guard out != 0, let o = UnsafeMutablePointer<UInt8>(bitPattern: UInt(out)) else { return 0 }
    o.update(from: input, count: Int(size))
    return UInt64(pongInPlace(out, size)) << 32 | UInt64(out)
}

#endif
