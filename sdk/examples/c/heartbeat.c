/*
 * Heartbeat responder: answers every ping frame with a pong frame carrying the same body.
 * Frame layout (the built-in broadcast target's): 8-byte header, bytes 0..3 the type
 * (big-endian, 1 = ping, 2 = pong), bytes 4..7 the body length (big-endian), then the body.
 */
#define LOADSHEAR_ALLOCATOR
#include "loadshear-contract.h"

#define PING 1u
#define PONG 2u

LOADSHEAR_EXPORT(handle_header) int32_t handle_header(int32_t ptr, int32_t size) {
    if (size < 8) return 0;
    return (int32_t)loadshear_be32((const uint8_t *)ptr + 4);
}

LOADSHEAR_EXPORT(handle_body) int64_t handle_body(int32_t ptr, int32_t size) {
    const uint8_t *in = (const uint8_t *)ptr;
    if (size < 8 || loadshear_be32(in) != PING) return LOADSHEAR_NO_REPLY;
    int32_t out = alloc(size);
    if (out == 0) return LOADSHEAR_NO_REPLY;
    uint8_t *o = (uint8_t *)out;
    __builtin_memcpy(o, in, (unsigned long)size);
    loadshear_put_be32(o, PONG);
    return LOADSHEAR_PACK(out, size);
}
