/*
 * loadshear-contract.h — the host–guest contract for Loadshear message handlers.
 *
 * A handler is a WebAssembly module with no imports that exports:
 *
 *   memory                                   its linear memory
 *   int32_t alloc(int32_t size)              room for `size` bytes; 0 means "failed"
 *   void    dealloc(int32_t ptr, int32_t size)
 *   int64_t handle_body(int32_t ptr, int32_t size)
 *                                            the message (header + body, contiguous) is at ptr;
 *                                            return LOADSHEAR_PACK(out_ptr, out_size), size 0 = no reply
 *   int32_t handle_header(int32_t ptr, int32_t size)   optional: the body length from a header
 *
 * Per message the host calls alloc(n), copies the message in, calls handle_body(ptr, n),
 * copies the reply out, calls dealloc(out_ptr, out_size) if out_size > 0, then dealloc(ptr, n).
 * Every pointer and size you return is bounds-checked by the host; a bad one, or a trap,
 * means "no reply" and is counted. Calls never interleave: one instance per shard thread.
 * Modules written for the C++ original (wasm-contract.h) work unchanged.
 *
 * The fast path (optional; a module opts in by exporting scratch and handle_message, and
 * then alloc, dealloc and handle_body are optional):
 *
 *   int32_t scratch(int32_t size)            a buffer of at least `size` bytes, 0 = none. The
 *                                            host writes every message (and header) there.
 *                                            Called once per instance, and again only when a
 *                                            larger message comes; a new pointer replaces the old.
 *   int64_t handle_message(int32_t size)     the message is in the scratch buffer; return
 *                                            LOADSHEAR_PACK(ptr, size) of a reply anywhere in
 *                                            memory (the scratch buffer itself is fine), valid
 *                                            until the next call; nothing is freed per message
 *   int32_t body_length(int32_t size)        optional: the header is in the scratch buffer;
 *                                            return the body length
 *
 * Per message that is one call instead of four, and one per header instead of three. Define
 * LOADSHEAR_FAST_PATH (with LOADSHEAR_ALLOCATOR) to get scratch exported and the buffer as
 * loadshear_scratch; see examples/c/heartbeat.c, which builds both ways.
 */
#ifndef LOADSHEAR_CONTRACT_H
#define LOADSHEAR_CONTRACT_H

#include <stdint.h>

#define LOADSHEAR_EXPORT(name) __attribute__((export_name(#name))) 

/* Packs a reply pointer and size into handle_body's return value. */
#define LOADSHEAR_PACK(ptr, size) ((int64_t)(((uint64_t)(uint32_t)(size) << 32) | (uint32_t)(ptr)))
#define LOADSHEAR_NO_REPLY ((int64_t)0)

/* Big-endian and little-endian readers and writers for header fields. */
static inline uint32_t loadshear_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint32_t loadshear_le32(const uint8_t *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | (uint32_t)p[0];
}
static inline void loadshear_put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/*
 * A small bump allocator over the module's memory, enough for handlers that finish each
 * message before the next: alloc moves the top up, and dealloc of the most recent block
 * moves it back. Define LOADSHEAR_ALLOCATOR in one file to get alloc/dealloc exported.
 */
#ifdef LOADSHEAR_ALLOCATOR
extern unsigned char __heap_base;
static uintptr_t loadshear_top = 0;

LOADSHEAR_EXPORT(alloc) int32_t alloc(int32_t size) {
    if (size < 0) return 0;
    if (loadshear_top == 0) loadshear_top = (uintptr_t)&__heap_base;
    uintptr_t start = (loadshear_top + 7) & ~(uintptr_t)7;
    uintptr_t end = start + (uintptr_t)size;
    uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        uintptr_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, pages) == (uintptr_t)-1) return 0;
    }
    loadshear_top = end;
    return (int32_t)start;
}

LOADSHEAR_EXPORT(dealloc) void dealloc(int32_t ptr, int32_t size) {
    /* Freeing the most recent block rewinds; the host frees the reply, then the input, so
       once both are gone the heap is empty again. */
    if ((uintptr_t)ptr + (uintptr_t)size == loadshear_top || (uintptr_t)ptr <= (uintptr_t)&__heap_base)
        loadshear_top = (uintptr_t)ptr;
    if (loadshear_top < (uintptr_t)&__heap_base) loadshear_top = (uintptr_t)&__heap_base;
}
#endif

/* The fast path's scratch buffer (see LOADSHEAR_FAST_PATH below). */
extern uint8_t *loadshear_scratch;
extern int32_t loadshear_scratch_size;

#ifdef LOADSHEAR_FAST_PATH
#ifndef LOADSHEAR_ALLOCATOR
#error "LOADSHEAR_FAST_PATH takes its buffer from the bump allocator: define LOADSHEAR_ALLOCATOR too"
#endif
/* The scratch buffer the host writes each message into, and its size (defined in the one
   file that defines LOADSHEAR_FAST_PATH; other files of the module see the declarations). */
uint8_t *loadshear_scratch = 0;
int32_t loadshear_scratch_size = 0;

LOADSHEAR_EXPORT(scratch) int32_t scratch(int32_t size) {
    if (loadshear_scratch != 0 && size <= loadshear_scratch_size) return (int32_t)loadshear_scratch;
    /* A larger buffer: the old one is given back when it is the allocator's last block. */
    if (loadshear_scratch != 0) dealloc((int32_t)loadshear_scratch, loadshear_scratch_size);
    loadshear_scratch = 0;
    loadshear_scratch_size = 0;
    int32_t p = alloc(size);
    if (p == 0) return 0;
    loadshear_scratch = (uint8_t *)p;
    loadshear_scratch_size = size;
    return p;
}
#endif

#endif
