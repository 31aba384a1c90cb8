/*
 * Parser example: echoes every frame back with its body transformed (ASCII upper-cased)
 * and the type set to 2. Frame layout: 8-byte header, type at bytes 0..3, body length at
 * bytes 4..7, both big-endian. Exports handle_header, so no HEADER_LENGTH is needed.
 */
#define LOADSHEAR_ALLOCATOR
#include "loadshear-contract.h"

LOADSHEAR_EXPORT(handle_header) int32_t handle_header(int32_t ptr, int32_t size) {
    if (size < 8) return -1;
    return (int32_t)loadshear_be32((const uint8_t *)ptr + 4);
}

LOADSHEAR_EXPORT(handle_body) int64_t handle_body(int32_t ptr, int32_t size) {
    if (size < 8) return LOADSHEAR_NO_REPLY;
    const uint8_t *in = (const uint8_t *)ptr;
    int32_t out = alloc(size);
    if (out == 0) return LOADSHEAR_NO_REPLY;
    uint8_t *o = (uint8_t *)out;
    for (int32_t i = 0; i < size; i++) {
        uint8_t c = in[i];
        o[i] = (i >= 8 && c >= 'a' && c <= 'z') ? (uint8_t)(c - 32) : c;
    }
    loadshear_put_be32(o, 2);
    return LOADSHEAR_PACK(out, size);
}
