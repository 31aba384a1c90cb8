/*
 * Heartbeat responder: answers every ping frame with a pong frame carrying the same body.
 * Frame layout (the built-in broadcast target's): 8-byte header, bytes 0..3 the type
 * (big-endian, 1 = ping, 2 = pong), bytes 4..7 the body length (big-endian), then the body.
 *
 * One source, both contracts: built as is it exports the original contract (alloc,
 * handle_header, handle_body, dealloc); built with -DLOADSHEAR_FAST_PATH it takes the fast
 * path (scratch, body_length, handle_message) and answers in place, with no allocation per
 * message. sdk/build.sh makes heartbeat.wasm and heartbeat-fast.wasm.
 */
#define LOADSHEAR_ALLOCATOR
#include "loadshear-contract.h"

#define PING 1u
#define PONG 2u

/* The module's logic, shared by both paths. */
static int32_t frame_body_length(const uint8_t *header, int32_t size) {
    if (size < 8) return 0;
    return (int32_t)loadshear_be32(header + 4);
}

/* Turns a ping into its pong where it lies; returns the reply's size, 0 for no reply. */
static int32_t pong_in_place(uint8_t *m, int32_t size) {
    if (size < 8 || loadshear_be32(m) != PING) return 0;
    loadshear_put_be32(m, PONG);
    return size;
}

#ifdef LOADSHEAR_FAST_PATH

LOADSHEAR_EXPORT(body_length) int32_t body_length(int32_t size) {
    return frame_body_length(loadshear_scratch, size);
}

LOADSHEAR_EXPORT(handle_message) int64_t handle_message(int32_t size) {
    int32_t n = pong_in_place(loadshear_scratch, size);
    return n ? LOADSHEAR_PACK((int32_t)loadshear_scratch, n) : LOADSHEAR_NO_REPLY;
}

#else

LOADSHEAR_EXPORT(handle_header) int32_t handle_header(int32_t ptr, int32_t size) {
    return frame_body_length((const uint8_t *)ptr, size);
}

LOADSHEAR_EXPORT(handle_body) int64_t handle_body(int32_t ptr, int32_t size) {
    if (size < 8 || loadshear_be32((const uint8_t *)ptr) != PING) return LOADSHEAR_NO_REPLY;
    int32_t out = alloc(size);
    if (out == 0) return LOADSHEAR_NO_REPLY;
    __builtin_memcpy((uint8_t *)out, (const uint8_t *)ptr, (unsigned long)size);
    return LOADSHEAR_PACK(out, pong_in_place((uint8_t *)out, size));
}

#endif
