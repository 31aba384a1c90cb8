// Parser example in Embedded Swift: echoes every frame back with its body upper-cased
// (ASCII) and the type set to 2. Same frame layout as sdk/examples/c/uppercase.c: 8-byte
// header, type at bytes 0..3, body length at bytes 4..7, both big-endian.

// alloc and dealloc come from support/Allocator.swift.

@_expose(wasm, "handle_header") @_cdecl("handle_header")
public func handleHeader(_ ptr: UInt32, _ size: UInt32) -> Int32 {
    guard size >= 8, let p = UnsafePointer<UInt8>(bitPattern: UInt(ptr)) else { return -1 }
    return Int32(bitPattern: UInt32(p[4]) << 24 | UInt32(p[5]) << 16 | UInt32(p[6]) << 8 | UInt32(p[7]))
}

@_expose(wasm, "handle_body") @_cdecl("handle_body")
public func handleBody(_ ptr: UInt32, _ size: UInt32) -> UInt64 {
    guard size >= 8, let input = UnsafePointer<UInt8>(bitPattern: UInt(ptr)) else { return 0 }
    let out = alloc(size)
    guard out != 0, let o = UnsafeMutablePointer<UInt8>(bitPattern: UInt(out)) else { return 0 }
    for i in 0..<Int(size) {
        let c = input[i]
        o[i] = i >= 8 && c >= 0x61 && c <= 0x7A ? c &- 32 : c
    }
    o[0] = 0; o[1] = 0; o[2] = 0; o[3] = 2
    return UInt64(size) << 32 | UInt64(out)
}
