// fuzz-sources: codec/msg_headers.c util/alloc.c
/*
 * A message's header section from the network, fed in pieces whose sizes come
 * from the first input octet (which also picks small bounds), then in one
 * piece: the fields, bounds and body offset must not depend on the split.
 * The body offset lies inside the message, at a line start or at its end; every
 * field's name is non-empty and made of name octets, and the kept octets
 * stay within the bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/msg_headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_parse(struct msg_headers *h, size_t max_bytes, size_t max_fields, const char *in,
                       size_t len, unsigned piece, unsigned seed)
{
    msg_headers_init(h, max_bytes, max_fields);
    uint32_t x = seed * 2654435761u + 1;
    size_t pos = 0;
    while (pos < len) {
        size_t n = len - pos;
        if (piece != 0) {
            x = x * 1103515245u + 12345u;
            size_t want = 1 + (x >> 16) % piece;
            if (want < n)
                n = want;
        }
        char *copy = malloc(n);
        if (copy == NULL)
            abort();
        memcpy(copy, in + pos, n);
        if (msg_headers_feed(h, copy, n) != 0)
            abort();
        free(copy);
        pos += n;
    }
    if (msg_headers_finish(h) != 0 || !h->complete || h->body_offset > len)
        abort();
}

static void fuzz_same(const struct msg_headers *a, const struct msg_headers *b)
{
    if (a->count != b->count || a->truncated != b->truncated || a->body_offset != b->body_offset)
        abort();
    for (size_t i = 0; i < a->count; i++) {
        const struct msg_header *f = &a->fields[i], *g = &b->fields[i];
        if (f->name_len != g->name_len || f->value_len != g->value_len ||
            memcmp(f->name, g->name, f->name_len) != 0 ||
            memcmp(f->value, g->value, f->value_len) != 0)
            abort();
    }
}

static void fuzz_check(const struct msg_headers *h, size_t max_bytes, size_t max_fields)
{
    size_t kept = 0;
    if (h->count > max_fields)
        abort();
    for (size_t i = 0; i < h->count; i++) {
        const struct msg_header *f = &h->fields[i];
        if (f->name_len == 0 || f->name[f->name_len] != '\0' || f->value[f->value_len] != '\0')
            abort();
        for (size_t k = 0; k < f->name_len; k++) {
            unsigned char c = (unsigned char)f->name[k];
            if (c < 33 || c > 126 || c == ':')
                abort();
        }
        if (msg_headers_find(h, f->name, 0) == NULL)
            abort();
        kept += f->name_len + f->value_len;
    }
    if (kept > max_bytes)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    size_t max_bytes = (ctl & 1) ? (size_t)(ctl >> 1) : 65536;
    size_t max_fields = (ctl & 2) ? (size_t)(ctl >> 5) : 1000;
    unsigned piece = 1u << ((ctl >> 2) & 7);

    struct msg_headers whole, split, bytes;
    fuzz_parse(&whole, max_bytes, max_fields, in, len, 0, 0);
    fuzz_parse(&split, max_bytes, max_fields, in, len, piece, ctl);
    fuzz_parse(&bytes, max_bytes, max_fields, in, len, 1, 0);
    fuzz_same(&whole, &split);
    fuzz_same(&whole, &bytes);
    fuzz_check(&whole, max_bytes, max_fields);

    /* The body starts at a line start, or at the end of the message. */
    uint64_t b = whole.body_offset;
    if (b != 0 && b != len && in[b - 1] != '\n')
        abort();

    msg_headers_free(&whole);
    msg_headers_free(&split);
    msg_headers_free(&bytes);
    return 0;
}
