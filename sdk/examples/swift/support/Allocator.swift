// The allocator every Embedded Swift example shares (sdk/build.sh compiles it with each):
// alloc and dealloc for the host–guest contract, over the module's own linear memory.

@_extern(c, "llvm.wasm.memory.size.i32")
func wasmMemorySize(_ memory: Int32) -> Int32

@_extern(c, "llvm.wasm.memory.grow.i32")
func wasmMemoryGrow(_ memory: Int32, _ pages: Int32) -> Int32

/// A bump allocator that rewinds when the most recent block is freed: the host frees the
/// reply, then the input, so the heap is empty again after every message. The heap starts
/// at the end of the memory the module was given.
var heapTop: UInt32 = 0

@_expose(wasm, "alloc") @_cdecl("alloc")
public func alloc(_ size: UInt32) -> UInt32 {
    if heapTop == 0 { heapTop = UInt32(wasmMemorySize(0)) &* 65536 }
    let start = (heapTop &+ 7) & ~7
    let end = UInt64(start) + UInt64(size)
    let have = UInt64(UInt32(wasmMemorySize(0))) * 65536
    if end > have {
        let pages = Int32((end - have + 65535) / 65536)
        if wasmMemoryGrow(0, pages) < 0 { return 0 }
    }
    heapTop = UInt32(end)
    return start
}

@_expose(wasm, "dealloc") @_cdecl("dealloc")
public func dealloc(_ ptr: UInt32, _ size: UInt32) {
    if ptr &+ size == heapTop { heapTop = ptr }
}

#if LOADSHEAR_FAST_PATH
/// The fast path's scratch buffer: the host writes each message here.
var scratchBase: UInt32 = 0
var scratchSize: UInt32 = 0

/// A buffer of at least `size` bytes (0 when memory cannot grow); a larger one replaces the
/// old, which is given back when it is the allocator's last block.
@_expose(wasm, "scratch") @_cdecl("scratch")
public func scratch(_ size: UInt32) -> UInt32 {
    if scratchBase != 0, size <= scratchSize { return scratchBase }
    if scratchBase != 0 { dealloc(scratchBase, scratchSize) }
    scratchBase = 0
    scratchSize = 0
    let p = alloc(size)
    if p == 0 { return 0 }
    scratchBase = p
    scratchSize = size
    return p
}
#endif
