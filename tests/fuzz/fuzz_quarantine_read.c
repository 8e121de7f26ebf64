// fuzz-sources: message/quarantine_read.c
/*
 * A quarantine file's head, whatever the folder holds: a status, never a
 * crash.  The input is copied to a buffer of exactly its size.  Every field
 * handed back lies inside the input and holds no line break, the message
 * starts inside it, and reading only a prefix never gives another head than
 * the whole file did (it may only ask for more).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message/quarantine_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_field(const char *buf, size_t size, struct quarantine_field f, bool required)
{
    if (!f.p) {
        if (required)
            abort();
        return;
    }
    if (f.p < buf || f.len > size || (size_t)(f.p - buf) > size - f.len)
        abort();
    if (memchr(f.p, '\n', f.len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct quarantine_head h;
    enum quarantine_head_status st = quarantine_head_parse(buf, size, true, &h);
    if (st == QH_INCOMPLETE)
        abort();
    if (st == QH_OK) {
        if (h.nrcpt == 0 || h.message_offset > size)
            abort();
        fuzz_field(buf, size, h.date, true);
        fuzz_field(buf, size, h.client, true);
        fuzz_field(buf, size, h.helo, true);
        fuzz_field(buf, size, h.from, true);
        fuzz_field(buf, size, h.reason, true);
        fuzz_field(buf, size, h.filter, true);
        for (size_t i = 0; i < h.nrcpt; i++)
            fuzz_field(buf, size, h.rcpt[i], true);
        /* Any prefix: incomplete, or the same head when it holds all of it. */
        size_t cut = size ? data[0] % (size + 1) : 0;
        struct quarantine_head p;
        enum quarantine_head_status ps = quarantine_head_parse(buf, cut, false, &p);
        if (ps == QH_OK) {
            if (p.message_offset != h.message_offset || p.nrcpt != h.nrcpt)
                abort();
            quarantine_head_free(&p);
        } else if (ps != QH_INCOMPLETE && ps != QH_NOMEM) {
            abort();
        }
        quarantine_head_free(&h);
    }
    free(buf);
    return 0;
}
