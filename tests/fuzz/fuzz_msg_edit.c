// fuzz-sources: chain/msg_edit.c codec/msg_headers.c message/msg_store.c message/msg_view.c util/alloc.c
/*
 * Any received message, through the header parser and a fixed set of edits:
 * the rewrite never fails on content, its body is the received body octet for
 * octet, and every added field appears once, whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain/msg_edit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg_store *received = msg_store_new(1 << 20, "/tmp");
    struct msg_store *out = msg_store_new(1 << 20, "/tmp");
    struct msg_headers h;
    msg_headers_init(&h, 512, 16);
    if (!received || !out)
        abort();
    size_t half = size / 2;
    msg_store_append(received, data, size);
    msg_headers_feed(&h, (const char *)data, half);
    msg_headers_feed(&h, (const char *)data + half, size - half);
    msg_headers_finish(&h);
    if (h.body_offset > size || h.header_end > h.body_offset)
        abort();
    for (size_t i = 0; i < h.count; i++)
        if (h.fields[i].start >= h.fields[i].end || h.fields[i].end > h.header_end)
            abort();

    struct chain_edit e[] = {
        {EDIT_INSERT_HEADER, 1, (char *)"X-Ins", (char *)"i", NULL},
        {EDIT_CHANGE_HEADER, 1, (char *)"Subject", (char *)"s", NULL},
        {EDIT_CHANGE_HEADER, 2, (char *)"Received", NULL, NULL},
        {EDIT_ADD_HEADER, 0, (char *)"X-Fuzz-Added", (char *)"marker", NULL},
    };
    struct msg_view v;
    if (msg_edit_apply(&h, received, e, 4, NULL, out, &v) != 0)
        abort();
    uint64_t total = msg_view_size(&v);
    char *text = malloc(total + 1);
    if (!text || msg_view_read(&v, 0, text, total) != (ssize_t)total)
        abort();
    uint64_t body_len = size - h.body_offset;
    if (total < body_len || memcmp(text + total - body_len, data + h.body_offset, body_len) != 0)
        abort();
    if (!memmem(text, total - body_len, "X-Fuzz-Added: marker\r\n", 22))
        abort();
    free(text);
    msg_headers_free(&h);
    msg_store_free(received);
    msg_store_free(out);
    return 0;
}
