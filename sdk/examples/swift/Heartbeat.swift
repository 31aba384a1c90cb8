// Heartbeat responder in Embedded Swift: answers each ping frame (type 1) with a pong
// (type 2) carrying the same body. Same frame layout as sdk/examples/c/heartbeat.c:
// 8-byte header, type at bytes 0..3, body length at bytes 4..7, both big-endian.

// alloc and dealloc come from support/Allocator.swift.

@inline(__always)
func be32(_ p: UnsafePointer<UInt8>) -> UInt32 {
    UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
}

@_expose(wasm, "handle_header") @_cdecl("handle_header")
public func handleHeader(_ ptr: UInt32, _ size: UInt32) -> Int32 {
    guard size >= 8, let p = UnsafePointer<UInt8>(bitPattern: UInt(ptr)) else { return -1 }
    return Int32(bitPattern: be32(p + 4))
}

@_expose(wasm, "handle_body") @_cdecl("handle_body")
public func handleBody(_ ptr: UInt32, _ size: UInt32) -> UInt64 {
    guard size >= 8, let input = UnsafePointer<UInt8>(bitPattern: UInt(ptr)), be32(input) == 1 else { return 0 }
    let out = alloc(size)
    guard out != 0, let o = UnsafeMutablePointer<UInt8>(bitPattern: UInt(out)) else { return 0 }
    o.update(from: input, count: Int(size))
    o[0] = 0; o[1] = 0; o[2] = 0; o[3] = 2
    return UInt64(size) << 32 | UInt64(out)
}
