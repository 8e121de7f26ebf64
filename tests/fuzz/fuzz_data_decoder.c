// fuzz-sources: codec/data_decoder.c
/*
 * The DATA stream from the network, fed in pieces chosen by the first input
 * octet and again in one piece: both must give the same output, error, end
 * and octet count, or the end of data would depend on how TCP cut the stream.
 * Then the properties that keep the end of data unambiguous:
 *   - the output never holds a bare CR or LF (but for a CR cut off by the
 *     size limit), under either policy;
 *   - the data ended only right after CRLF "." CRLF, or ".\r\n" at the start;
 *   - an accepted message, dot-stuffed again and terminated as we send it
 *     upstream, decodes back to itself and ends exactly where it should.
 * The first octet also selects BDAT checking and small limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/data_decoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_out {
    char *buf;
    size_t len;
    size_t cap;
};

static int fuzz_sink(void *ctx, const char *bytes, size_t len)
{
    struct fuzz_out *o = ctx;
    if (len == 0)
        abort();
    if (o->len + len > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + len)
            cap *= 2;
        char *p = realloc(o->buf, cap);
        if (p == NULL)
            abort();
        o->buf = p;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, bytes, len);
    o->len += len;
    return 0;
}

struct fuzz_result {
    struct fuzz_out out;
    enum data_error error;
    bool done;
    size_t consumed;
    uint64_t size;
};

struct fuzz_opts {
    enum data_newline_policy policy;
    size_t max_line;
    uint64_t max_size;
    bool bdat;
};

/* piece == 0: one piece; else pieces of 1..piece octets from a small generator,
 * each copied to a buffer of exactly its size so over-reads are caught. */
static void fuzz_run(const struct fuzz_opts *o, const char *in, size_t len, unsigned piece,
                     unsigned seed, struct fuzz_result *r)
{
    struct data_decoder d;
    memset(r, 0, sizeof(*r));
    data_decoder_init(&d, o->policy, o->max_line, o->max_size, fuzz_sink, &r->out);
    size_t pos = 0;
    uint32_t x = seed * 2654435761u + 1;
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
        if (o->bdat) {
            bdat_check_feed(&d, copy, n);
            r->consumed += n;
        } else {
            bool was_done = d.done;
            size_t got = data_decoder_feed(&d, copy, n);
            if (got > n || (was_done && got != 0) || (!d.done && got != n))
                abort();
            r->consumed += got;
        }
        free(copy);
        pos += n;
    }
    if (o->bdat)
        bdat_check_finish(&d);
    r->error = d.error;
    r->done = d.done;
    r->size = data_decoder_size(&d);
}

static void fuzz_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
    if (a->error != b->error || a->done != b->done || a->consumed != b->consumed ||
        a->size != b->size || a->out.len != b->out.len ||
        (a->out.len && memcmp(a->out.buf, b->out.buf, a->out.len) != 0))
        abort();
}

static void fuzz_check_newlines(const struct fuzz_result *r)
{
    const char *p = r->out.buf;
    size_t n = r->out.len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            abort();
        if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n')) {
            if (!(i + 1 == n && r->error == DATA_ERR_TOO_BIG))
                abort();
        }
    }
}

/* What the upstream is sent: the stored message stuffed again, then the end. */
static void fuzz_round_trip(const struct fuzz_result *r)
{
    const char *p = r->out.buf;
    size_t n = r->out.len;
    char *enc = malloc(2 * n + 5);
    if (enc == NULL)
        abort();
    size_t e = 0;
    bool start = true;
    for (size_t i = 0; i < n; i++) {
        if (start && p[i] == '.')
            enc[e++] = '.';
        enc[e++] = p[i];
        start = p[i] == '\n';
    }
    if (!start)
        abort(); /* an accepted message ends with CRLF or is empty */
    memcpy(enc + e, ".\r\n", 3);
    e += 3;

    struct fuzz_opts strict = {DATA_NEWLINE_REJECT, 0, 0, false};
    struct fuzz_result again;
    fuzz_run(&strict, enc, e, 0, 0, &again);
    if (!again.done || again.error != DATA_ERR_NONE || again.consumed != e || again.out.len != n ||
        (n && memcmp(again.out.buf, p, n) != 0))
        abort();
    free(again.out.buf);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    struct fuzz_opts o = {
        .policy = (ctl & 1) ? DATA_NEWLINE_NORMALIZE : DATA_NEWLINE_REJECT,
        .bdat = (ctl & 2) != 0,
        .max_line = (ctl & 4) ? 1 + (ctl >> 5) : 0,
        .max_size = (ctl & 8) ? 1 + 3 * (ctl >> 4) : 0,
    };
    unsigned piece = 1u << ((ctl >> 4) & 7); /* 1 .. 128 */

    struct fuzz_result whole, split, bytes;
    fuzz_run(&o, in, len, 0, 0, &whole);
    fuzz_run(&o, in, len, piece, ctl, &split);
    fuzz_run(&o, in, len, 1, 0, &bytes);
    fuzz_same(&whole, &split);
    fuzz_same(&whole, &bytes);

    fuzz_check_newlines(&whole);
    if (whole.size < whole.out.len)
        abort();
    if (whole.error == DATA_ERR_NONE && whole.size != whole.out.len)
        abort();

    if (o.bdat) {
        /* Nothing to remove in BDAT: accepted under REJECT means unchanged. */
        if (whole.done || whole.consumed != len)
            abort();
        if (o.policy == DATA_NEWLINE_REJECT && whole.error == DATA_ERR_NONE &&
            (whole.out.len != len || (len && memcmp(whole.out.buf, in, len) != 0)))
            abort();
    } else if (whole.done) {
        size_t c = whole.consumed;
        if (c < 3 || memcmp(in + c - 3, ".\r\n", 3) != 0)
            abort();
        if (c != 3 && (c < 5 || memcmp(in + c - 5, "\r\n", 2) != 0))
            abort();
        if (whole.error == DATA_ERR_NONE)
            fuzz_round_trip(&whole);
    } else if (whole.consumed != len) {
        abort();
    }

    free(whole.out.buf);
    free(split.out.buf);
    free(bytes.out.buf);
    return 0;
}
