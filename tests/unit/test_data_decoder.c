/*
 * Unit tests for data_decoder: dot-stuffing, the empty message, every
 * smuggling sequence under both newline policies, the same result for every
 * split of the stream, bytes after the end left alone, NUL, the line and size
 * limits, a failing sink, and the BDAT checker across chunk boundaries.  A
 * small reference decoder written straight from the rules is compared with
 * the real one over many generated inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/data_decoder.h"

/* ---- sink and result ---- */

struct sinkbuf {
    char *buf;
    size_t len;
    size_t cap;
    size_t calls;
    size_t fail_at_call; /* 1-based call that fails; 0 never */
};

static int test_sink(void *ctx, const char *bytes, size_t len)
{
    struct sinkbuf *s = ctx;
    s->calls++;
    if (s->fail_at_call != 0 && s->calls >= s->fail_at_call)
        return -1;
    assert_true(len > 0);
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->len + len)
            cap *= 2;
        s->buf = realloc(s->buf, cap);
        assert_non_null(s->buf);
        s->cap = cap;
    }
    memcpy(s->buf + s->len, bytes, len);
    s->len += len;
    return 0;
}

struct result {
    struct sinkbuf out;
    enum data_error error;
    bool done;
    size_t consumed;
    uint64_t size;
};

struct opts {
    enum data_newline_policy policy;
    size_t max_line;
    uint64_t max_size;
};

static const struct opts REJECT = {DATA_NEWLINE_REJECT, 0, 0};
static const struct opts NORMALIZE = {DATA_NEWLINE_NORMALIZE, 0, 0};

/* Feed in at the given cut points (sorted, each <= len). */
static void decode_cuts(const struct opts *o, const char *in, size_t len, const size_t *cuts,
                        size_t ncuts, struct result *r)
{
    struct data_decoder d;
    memset(r, 0, sizeof(*r));
    data_decoder_init(&d, o->policy, o->max_line, o->max_size, test_sink, &r->out);
    size_t pos = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        size_t n = end - pos;
        /* A copy of exactly the piece's size, so that a read past it is caught. */
        char *piece = malloc(n ? n : 1);
        assert_non_null(piece);
        memcpy(piece, in + pos, n);
        bool was_done = d.done;
        size_t got = data_decoder_feed(&d, piece, n);
        free(piece);
        if (was_done)
            assert_int_equal(got, 0);
        assert_true(got <= n);
        if (!d.done)
            assert_int_equal(got, n);
        r->consumed += got;
        pos = end;
    }
    r->error = d.error;
    r->done = d.done;
    r->size = data_decoder_size(&d);
}

static void decode(const struct opts *o, const char *in, size_t len, struct result *r)
{
    decode_cuts(o, in, len, NULL, 0, r);
}

static void result_free(struct result *r)
{
    free(r->out.buf);
    r->out.buf = NULL;
}

static void assert_same(const struct result *a, const struct result *b)
{
    assert_int_equal(a->error, b->error);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->out.len, b->out.len);
    if (a->out.len)
        assert_memory_equal(a->out.buf, b->out.buf, a->out.len);
}

/* One piece, every single cut, every pair of cuts for short inputs, and one
 * octet at a time must all agree; the one-piece result is returned. */
static void decode_every_split(const struct opts *o, const char *in, size_t len,
                               struct result *whole)
{
    decode(o, in, len, whole);
    struct result r;
    for (size_t k = 0; k <= len; k++) {
        decode_cuts(o, in, len, &k, 1, &r);
        assert_same(whole, &r);
        result_free(&r);
    }
    if (len <= 40) {
        for (size_t a = 0; a <= len; a++) {
            for (size_t b = a; b <= len; b++) {
                size_t cuts[2] = {a, b};
                decode_cuts(o, in, len, cuts, 2, &r);
                assert_same(whole, &r);
                result_free(&r);
            }
        }
    }
    size_t *cuts = malloc((len ? len : 1) * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t k = 0; k < len; k++)
        cuts[k] = k;
    decode_cuts(o, in, len, cuts, len, &r);
    free(cuts);
    assert_same(whole, &r);
    result_free(&r);
}

static void expect(const struct opts *o, const char *in, size_t len, const char *want,
                   size_t want_len, enum data_error err, bool done, size_t consumed)
{
    struct result r;
    decode_every_split(o, in, len, &r);
    assert_int_equal(r.error, err);
    assert_int_equal(r.done, done);
    assert_int_equal(r.consumed, consumed);
    assert_int_equal(r.out.len, want_len);
    if (want_len)
        assert_memory_equal(r.out.buf, want, want_len);
    result_free(&r);
}

#define S(lit) lit, sizeof(lit) - 1

/* ---- basics ---- */

static void test_simple(void **state)
{
    (void)state;
    expect(&REJECT, S("Subject: a\r\n\r\nbody\r\n.\r\n"), S("Subject: a\r\n\r\nbody\r\n"),
           DATA_ERR_NONE, true, 23);
}

static void test_empty_message(void **state)
{
    (void)state;
    expect(&REJECT, S(".\r\n"), S(""), DATA_ERR_NONE, true, 3);
    expect(&NORMALIZE, S(".\r\n"), S(""), DATA_ERR_NONE, true, 3);
    /* One empty line. */
    expect(&REJECT, S("\r\n.\r\n"), S("\r\n"), DATA_ERR_NONE, true, 5);
}

static void test_dot_stuffing(void **state)
{
    (void)state;
    expect(&REJECT, S("..x\r\n..\r\n...\r\na.b\r\n.\r\n"), S(".x\r\n.\r\n..\r\na.b\r\n"),
           DATA_ERR_NONE, true, 22);
    /* A dot line with text after the dot loses the dot. */
    expect(&REJECT, S(".x\r\n.\r\n"), S("x\r\n"), DATA_ERR_NONE, true, 7);
    /* Dots not at a line start are text. */
    expect(&REJECT, S("a.\r\n.a.\r\n.\r\n"), S("a.\r\na.\r\n"), DATA_ERR_NONE, true, 12);
}

static void test_rest_not_consumed(void **state)
{
    (void)state;
    const char in[] = "a\r\n.\r\nQUIT\r\n";
    expect(&REJECT, in, sizeof(in) - 1, S("a\r\n"), DATA_ERR_NONE, true, 6);
    expect(&REJECT, S(".\r\nMAIL FROM:<a@b>\r\n"), S(""), DATA_ERR_NONE, true, 3);

    /* The final LF alone in the second piece: one octet of it is taken. */
    struct data_decoder d;
    struct sinkbuf out = {0};
    data_decoder_init(&d, DATA_NEWLINE_REJECT, 0, 0, test_sink, &out);
    assert_int_equal(data_decoder_feed(&d, "a\r\n.\r", 5), 5);
    assert_false(d.done);
    assert_int_equal(data_decoder_feed(&d, "\nQUIT\r\n", 7), 1);
    assert_true(d.done);
    assert_int_equal(data_decoder_feed(&d, "QUIT\r\n", 6), 0);
    assert_int_equal(out.len, 3);
    free(out.buf);
}

static void test_no_end(void **state)
{
    (void)state;
    expect(&REJECT, S("a\r\nb\r\n"), S("a\r\nb\r\n"), DATA_ERR_NONE, false, 6);
    /* A held CR or dot is not written until the next octet comes. */
    expect(&REJECT, S("a\r"), S("a"), DATA_ERR_NONE, false, 2);
    expect(&REJECT, S("a\r\n."), S("a\r\n"), DATA_ERR_NONE, false, 4);
    expect(&REJECT, S("a\r\n.\r"), S("a\r\n"), DATA_ERR_NONE, false, 5);
    expect(&REJECT, S(""), S(""), DATA_ERR_NONE, false, 0);
}

/* ---- smuggling ---- */

struct smuggle {
    const char *seq;
    size_t seq_len;
    enum data_error reject_err;
    const char *rejected; /* output under REJECT */
    size_t rejected_len;
    const char *normalized; /* output for "A" seq "B\r\n.\r\n" under NORMALIZE */
    size_t normalized_len;
    enum data_error normalize_err;
};

static const struct smuggle SMUGGLE[] = {
    {S("\n.\n"), DATA_ERR_BARE_NEWLINE, S("A"), S("A\r\n.\r\nB\r\n"), DATA_ERR_NONE},
    {S("\r.\r"), DATA_ERR_BARE_NEWLINE, S("A"), S("A\r\n.\r\nB\r\n"), DATA_ERR_NONE},
    {S("\n.\r\n"), DATA_ERR_BARE_NEWLINE, S("A"), S("A\r\n.\r\nB\r\n"), DATA_ERR_NONE},
    {S("\r.\r\n"), DATA_ERR_BARE_NEWLINE, S("A"), S("A\r\n.\r\nB\r\n"), DATA_ERR_NONE},
    {S("\r\n.\n"), DATA_ERR_BARE_NEWLINE, S("A\r\n"), S("A\r\n\r\nB\r\n"), DATA_ERR_NONE},
    {S("\r\n.\r"), DATA_ERR_BARE_NEWLINE, S("A\r\n"), S("A\r\n\r\nB\r\n"), DATA_ERR_NONE},
    {S("\r\n.\r\r\n"), DATA_ERR_BARE_NEWLINE, S("A\r\n"), S("A\r\n\r\n\r\nB\r\n"), DATA_ERR_NONE},
    {S("\n\n.\n\n"), DATA_ERR_BARE_NEWLINE, S("A"), S("A\r\n\r\n.\r\n\r\nB\r\n"), DATA_ERR_NONE},
    {S("\n..\r\n"), DATA_ERR_BARE_NEWLINE, S("A"), S("A\r\n..\r\nB\r\n"), DATA_ERR_NONE},
    {S("\r\r\n.\r\n"), DATA_ERR_BARE_NEWLINE, S("A"), S("A\r\n\r\n"), DATA_ERR_NONE},
    {S("\r\n\0.\r\n"), DATA_ERR_NUL, S("A\r\n"), S("A\r\n"), DATA_ERR_NUL},
    {S("\r\n.\0\r\n"), DATA_ERR_NUL, S("A\r\n"), S("A\r\n"), DATA_ERR_NUL},
};

static void test_smuggling(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(SMUGGLE) / sizeof(SMUGGLE[0]); t++) {
        const struct smuggle *sm = &SMUGGLE[t];
        char in[64];
        size_t n = 0;
        in[n++] = 'A';
        memcpy(in + n, sm->seq, sm->seq_len);
        n += sm->seq_len;
        memcpy(in + n, "B\r\n.\r\nRSET\r\n", 12);
        n += 12;
        size_t end = n - 6; /* just after the real ".\r\n" */
        if (t == 9) {
            /* "A\r\r\n.\r\n": the CRLF before the dot is real, so that one ends. */
            expect(&REJECT, in, n, sm->rejected, sm->rejected_len, DATA_ERR_BARE_NEWLINE, true, 7);
            expect(&NORMALIZE, in, n, sm->normalized, sm->normalized_len, DATA_ERR_NONE, true, 7);
            continue;
        }
        expect(&REJECT, in, n, sm->rejected, sm->rejected_len, sm->reject_err, true, end);
        expect(&NORMALIZE, in, n, sm->normalized, sm->normalized_len, sm->normalize_err, true, end);
    }
}

static void test_smuggling_at_start(void **state)
{
    (void)state;
    /* The very start of the data is a line start, for the same sequences. */
    expect(&REJECT, S(".\0\r\nB\r\n.\r\n"), S(""), DATA_ERR_NUL, true, 10);
    expect(&REJECT, S(".\nB\r\n.\r\n"), S(""), DATA_ERR_BARE_NEWLINE, true, 8);
    expect(&NORMALIZE, S(".\nB\r\n.\r\n"), S("\r\nB\r\n"), DATA_ERR_NONE, true, 8);
    expect(&REJECT, S(".\r.\r\n"), S(""), DATA_ERR_BARE_NEWLINE, false, 5);
    expect(&NORMALIZE, S(".\r.\r\n"), S("\r\n.\r\n"), DATA_ERR_NONE, false, 5);
    expect(&NORMALIZE, S("\n.\r\n"), S("\r\n.\r\n"), DATA_ERR_NONE, false, 4);
}

static void test_smuggled_command_not_seen(void **state)
{
    (void)state;
    /* Without a real end, the "MAIL" after a fake one is message data. */
    const char in[] = "x\n.\r\nMAIL FROM:<evil@example>\r\nRCPT TO:<v@example>\r\n";
    expect(&REJECT, in, sizeof(in) - 1, S("x"), DATA_ERR_BARE_NEWLINE, false, sizeof(in) - 1);
    struct result r;
    decode_every_split(&NORMALIZE, in, sizeof(in) - 1, &r);
    assert_false(r.done);
    assert_int_equal(r.error, DATA_ERR_NONE);
    assert_int_equal(r.out.len, sizeof(in));
    result_free(&r);
}

static void test_normalize_dot_after_bare_newline(void **state)
{
    (void)state;
    /* Not a line start: the dots stay. */
    expect(&NORMALIZE, S("a\n..b\r\n.\r\n"), S("a\r\n..b\r\n"), DATA_ERR_NONE, true, 10);
    expect(&NORMALIZE, S("a\r..b\r\n.\r\n"), S("a\r\n..b\r\n"), DATA_ERR_NONE, true, 10);
    /* After a real CRLF it is. */
    expect(&NORMALIZE, S("a\r\n..b\r\n.\r\n"), S("a\r\n.b\r\n"), DATA_ERR_NONE, true, 11);
}

static void test_reject_keeps_scanning(void **state)
{
    (void)state;
    expect(&REJECT, S("ab\ncd\r\n.\r\n"), S("ab"), DATA_ERR_BARE_NEWLINE, true, 10);
    expect(&REJECT, S("ab\rcd\r\n.\r\n"), S("ab"), DATA_ERR_BARE_NEWLINE, true, 10);
    expect(&REJECT, S("a\r\n\r\r\n.\r\n"), S("a\r\n"), DATA_ERR_BARE_NEWLINE, true, 9);
    /* Other defects after the first do not replace it. */
    expect(&REJECT, S("a\nb\0\r\n.\r\n"), S("a"), DATA_ERR_BARE_NEWLINE, true, 9);
}

static void test_nul(void **state)
{
    (void)state;
    expect(&REJECT, S("a\0b\r\n.\r\n"), S("a"), DATA_ERR_NUL, true, 8);
    expect(&NORMALIZE, S("a\r\n\0\r\n.\r\n"), S("a\r\n"), DATA_ERR_NUL, true, 9);
    expect(&REJECT, S("\0"), S(""), DATA_ERR_NUL, false, 1);
}

static void test_line_limit(void **state)
{
    (void)state;
    struct opts o = {DATA_NEWLINE_REJECT, 5, 0};
    expect(&o, S("12345\r\n.\r\n"), S("12345\r\n"), DATA_ERR_NONE, true, 10);
    expect(&o, S("123456\r\n.\r\n"), S("12345"), DATA_ERR_LINE_TOO_LONG, true, 11);
    expect(&o, S("ab\r\n123456789\r\n.\r\n"), S("ab\r\n12345"), DATA_ERR_LINE_TOO_LONG, true, 18);
    /* Counted as received: the stuffing dot counts. */
    expect(&o, S("..234\r\n.\r\n"), S(".234\r\n"), DATA_ERR_NONE, true, 10);
    expect(&o, S("..2345\r\n.\r\n"), S(".234"), DATA_ERR_LINE_TOO_LONG, true, 11);
    /* CRLF excluded, and the count starts again on every line. */
    expect(&o, S("12345\r\n12345\r\n\r\n12345\r\n.\r\n"), S("12345\r\n12345\r\n\r\n12345\r\n"),
           DATA_ERR_NONE, true, 26);
    /* A normalised bare newline is a line break in the output. */
    struct opts n = {DATA_NEWLINE_NORMALIZE, 5, 0};
    expect(&n, S("12345\n12345\r12345\r\n.\r\n"), S("12345\r\n12345\r\n12345\r\n"), DATA_ERR_NONE,
           true, 22);
    /* A line of exactly the limit then a long one, with no end yet. */
    expect(&o, S("1234567"), S("12345"), DATA_ERR_LINE_TOO_LONG, false, 7);
    /* Limit 1: a lone dot line is still the end, ".x" is two octets. */
    struct opts one = {DATA_NEWLINE_REJECT, 1, 0};
    expect(&one, S("a\r\n.\r\n"), S("a\r\n"), DATA_ERR_NONE, true, 6);
    expect(&one, S(".x\r\n.\r\n"), S(""), DATA_ERR_LINE_TOO_LONG, true, 7);
}

static void test_size_limit(void **state)
{
    (void)state;
    struct opts o = {DATA_NEWLINE_REJECT, 0, 10};
    expect(&o, S("12345678\r\n.\r\n"), S("12345678\r\n"), DATA_ERR_NONE, true, 13);
    expect(&o, S("123456789\r\n.\r\n"), S("123456789\r"), DATA_ERR_TOO_BIG, true, 14);
    struct result r;
    decode(&o, S("123456789\r\n.\r\n"), &r);
    assert_int_equal(r.size, 11);
    result_free(&r);
    /* Dots removed by unstuffing are not counted. */
    expect(&o, S("..\r\n..\r\n..\r\n.\r\n"), S(".\r\n.\r\n.\r\n"), DATA_ERR_NONE, true, 15);
    /* Normalising adds a CR, which counts. */
    struct opts n = {DATA_NEWLINE_NORMALIZE, 0, 4};
    expect(&n, S("ab\ncd\r\n.\r\n"), S("ab\r\n"), DATA_ERR_TOO_BIG, true, 10);
}

static void test_size_counts_after_error(void **state)
{
    (void)state;
    struct result r;
    decode(&REJECT, S("a\0bc\r\n.\r\n"), &r);
    assert_int_equal(r.error, DATA_ERR_NUL);
    assert_int_equal(r.size, 6);
    result_free(&r);
}

static void test_sink_failure(void **state)
{
    (void)state;
    struct data_decoder d;
    struct sinkbuf out = {.fail_at_call = 1};
    data_decoder_init(&d, DATA_NEWLINE_REJECT, 0, 0, test_sink, &out);
    assert_int_equal(data_decoder_feed(&d, "abc\r\n", 5), 5);
    assert_int_equal(d.error, DATA_ERR_SINK);
    assert_int_equal(out.calls, 1);
    assert_int_equal(data_decoder_feed(&d, "def\r\n..x\r\n", 10), 10);
    assert_int_equal(out.calls, 1);
    assert_int_equal(data_decoder_feed(&d, ".\r\nQUIT", 7), 3);
    assert_true(d.done);
    assert_int_equal(d.error, DATA_ERR_SINK);
    assert_int_equal(out.calls, 1);
    free(out.buf);

    /* Failing later: what came before is kept, and the error is still the sink's. */
    struct sinkbuf out2 = {.fail_at_call = 2};
    data_decoder_init(&d, DATA_NEWLINE_REJECT, 0, 0, test_sink, &out2);
    data_decoder_feed(&d, "a\r\n", 3);
    data_decoder_feed(&d, "b\nc\r\n.\r\n", 8);
    assert_true(d.done);
    assert_int_equal(d.error, DATA_ERR_SINK);
    assert_int_equal(out2.len, 3);
    free(out2.buf);
}

static void test_large_runs(void **state)
{
    (void)state;
    /* 1 MiB of ordinary lines in one piece reaches the sink in one call. */
    size_t n = 1 << 20;
    char *in = malloc(n + 3);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
    memcpy(in + n - 2, "\r\n", 2);
    memcpy(in + n, ".\r\n", 3);
    struct data_decoder d;
    struct sinkbuf out = {0};
    data_decoder_init(&d, DATA_NEWLINE_REJECT, 998, 0, test_sink, &out);
    assert_int_equal(data_decoder_feed(&d, in, n + 3), n + 3);
    assert_true(d.done);
    assert_int_equal(d.error, DATA_ERR_NONE);
    assert_int_equal(out.len, n);
    assert_int_equal(out.calls, 1);
    assert_memory_equal(out.buf, in, n);
    free(out.buf);
    free(in);
}

static void test_error_replies(void **state)
{
    (void)state;
    assert_null(data_error_reply(DATA_ERR_NONE));
    assert_string_equal(data_error_reply(DATA_ERR_TOO_BIG),
                        "552 5.3.4 Message size exceeds fixed limit");
    assert_string_equal(data_error_reply(DATA_ERR_SINK), "451 4.3.0 Error: queue file write error");
    enum data_error e554[] = {DATA_ERR_BARE_NEWLINE, DATA_ERR_NUL, DATA_ERR_LINE_TOO_LONG};
    for (size_t i = 0; i < 3; i++) {
        const char *r = data_error_reply(e554[i]);
        assert_non_null(r);
        assert_memory_equal(r, "554 5.6.0 ", 10);
        assert_true(strlen(r) > 12);
        assert_null(strpbrk(r, "\r\n"));
    }
}

/* ---- reference model ---- */

/*
 * The rules, written for a whole input with no concern for speed: the real
 * decoder must agree with this on every input, however it is cut.
 */
static void ref_emit(const struct opts *o, struct result *r, const char *p, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        r->size++;
        if (r->error != DATA_ERR_NONE)
            continue;
        if (o->max_size && r->size > o->max_size) {
            r->error = DATA_ERR_TOO_BIG;
            continue;
        }
        test_sink(&r->out, p + k, 1);
    }
}

static void ref_bare(const struct opts *o, struct result *r)
{
    if (o->policy == DATA_NEWLINE_NORMALIZE)
        ref_emit(o, r, "\r\n", 2);
    else if (r->error == DATA_ERR_NONE)
        r->error = DATA_ERR_BARE_NEWLINE;
}

static void ref_decode(const struct opts *o, const char *in, size_t len, bool dots,
                       struct result *r)
{
    memset(r, 0, sizeof(*r));
    bool at_start = dots;
    size_t line = 0;
    size_t i = 0;
    r->consumed = len;
    while (i < len) {
        if (at_start && in[i] == '.') {
            at_start = false;
            line = 1;
            if (i + 1 == len || (in[i + 1] == '\r' && i + 2 == len))
                break; /* held */
            if (in[i + 1] == '\r' && in[i + 2] == '\n') {
                r->done = true;
                r->consumed = i + 3;
                break;
            }
            i++;
            continue;
        }
        at_start = false;
        char c = in[i];
        if (c == '\r') {
            if (i + 1 == len)
                break; /* held */
            if (in[i + 1] == '\n') {
                ref_emit(o, r, "\r\n", 2);
                line = 0;
                at_start = dots;
                i += 2;
                continue;
            }
            ref_bare(o, r);
            line = 0;
        } else if (c == '\n') {
            ref_bare(o, r);
            line = 0;
        } else if (c == '\0') {
            if (r->error == DATA_ERR_NONE)
                r->error = DATA_ERR_NUL;
            line++;
            ref_emit(o, r, &c, 1);
        } else {
            line++;
            if (r->error == DATA_ERR_NONE && o->max_line && line > o->max_line)
                r->error = DATA_ERR_LINE_TOO_LONG;
            ref_emit(o, r, &c, 1);
        }
        i++;
    }
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 16;
}

static void test_against_reference(void **state)
{
    (void)state;
    static const char alphabet[] = {'\r', '\n', '.', 'a', '\0', '.', '\r', '\n'};
    char in[24];
    for (int iter = 0; iter < 30000; iter++) {
        size_t len = rng() % sizeof(in);
        for (size_t k = 0; k < len; k++)
            in[k] = alphabet[rng() % sizeof(alphabet)];
        struct opts o = {rng() % 2 ? DATA_NEWLINE_REJECT : DATA_NEWLINE_NORMALIZE, rng() % 4,
                         rng() % 3 ? 0 : rng() % 12};
        struct result want, got;
        ref_decode(&o, in, len, true, &want);
        decode(&o, in, len, &got);
        assert_same(&want, &got);
        result_free(&got);
        size_t cuts[3] = {rng() % (len + 1), rng() % (len + 1), rng() % (len + 1)};
        for (int a = 0; a < 3; a++)
            for (int b = a + 1; b < 3; b++)
                if (cuts[b] < cuts[a]) {
                    size_t t = cuts[a];
                    cuts[a] = cuts[b];
                    cuts[b] = t;
                }
        decode_cuts(&o, in, len, cuts, 3, &got);
        assert_same(&want, &got);
        result_free(&got);
        result_free(&want);
    }
}

static void test_every_split_samples(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
    } samples[] = {
        {S("From: a\r\nTo: b\r\n\r\n..dots\r\n.\r\n.\r\nQUIT\r\n")},
        {S("x\r\n.\n.\r\r\n.\r\n\n.\n\r.\r.\r\n")},
        {S("\r\n\r\n.\r\n")},
        {S("..\r\n.\r\r\n\r\n.\r\n")},
        {S("a\0\r\n\n\r\r\r\n.\r\n")},
    };
    struct opts opts[] = {
        REJECT, NORMALIZE, {DATA_NEWLINE_REJECT, 3, 7}, {DATA_NEWLINE_NORMALIZE, 2, 9}};
    for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
            struct result r, want;
            decode_every_split(&opts[k], samples[s].s, samples[s].n, &r);
            ref_decode(&opts[k], samples[s].s, samples[s].n, true, &want);
            assert_same(&want, &r);
            result_free(&r);
            result_free(&want);
        }
    }
}

/* ---- BDAT ---- */

static void bdat_chunks(const struct opts *o, const char *const *chunks, size_t n, struct result *r)
{
    struct data_decoder d;
    memset(r, 0, sizeof(*r));
    data_decoder_init(&d, o->policy, o->max_line, o->max_size, test_sink, &r->out);
    for (size_t k = 0; k < n; k++) {
        size_t len = strlen(chunks[k]);
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, chunks[k], len);
        bdat_check_feed(&d, copy, len);
        free(copy);
    }
    bdat_check_finish(&d);
    r->error = d.error;
    r->done = d.done;
    r->size = data_decoder_size(&d);
}

static void expect_bdat(const struct opts *o, const char *const *chunks, size_t n, const char *want,
                        enum data_error err)
{
    struct result r;
    bdat_chunks(o, chunks, n, &r);
    assert_int_equal(r.error, err);
    assert_false(r.done);
    assert_int_equal(r.out.len, strlen(want));
    if (r.out.len)
        assert_memory_equal(r.out.buf, want, r.out.len);
    result_free(&r);
}

static void test_bdat_crlf_across_chunks(void **state)
{
    (void)state;
    const char *c1[] = {"a\r", "\nb\r\n"};
    expect_bdat(&REJECT, c1, 2, "a\r\nb\r\n", DATA_ERR_NONE);
    const char *c2[] = {"a\r", "", "\n", "b"};
    expect_bdat(&REJECT, c2, 4, "a\r\nb", DATA_ERR_NONE);
    const char *c3[] = {"a\r", "b\r\n"};
    expect_bdat(&REJECT, c3, 2, "a", DATA_ERR_BARE_NEWLINE);
    expect_bdat(&NORMALIZE, c3, 2, "a\r\nb\r\n", DATA_ERR_NONE);
    const char *c4[] = {"a\r\n", "\nb"};
    expect_bdat(&REJECT, c4, 2, "a\r\n", DATA_ERR_BARE_NEWLINE);
    expect_bdat(&NORMALIZE, c4, 2, "a\r\n\r\nb", DATA_ERR_NONE);
}

static void test_bdat_trailing_cr(void **state)
{
    (void)state;
    const char *c[] = {"a\r\n", "b\r"};
    expect_bdat(&REJECT, c, 2, "a\r\nb", DATA_ERR_BARE_NEWLINE);
    expect_bdat(&NORMALIZE, c, 2, "a\r\nb\r\n", DATA_ERR_NONE);
}

static void test_bdat_no_dots(void **state)
{
    (void)state;
    const char *c[] = {".\r\n", "..x\r\n.\r\n"};
    expect_bdat(&REJECT, c, 2, ".\r\n..x\r\n.\r\n", DATA_ERR_NONE);
    /* No CRLF at the end is fine in BDAT. */
    const char *c2[] = {"abc"};
    expect_bdat(&REJECT, c2, 1, "abc", DATA_ERR_NONE);
}

static void test_bdat_defects(void **state)
{
    (void)state;
    struct data_decoder d;
    struct sinkbuf out = {0};
    data_decoder_init(&d, DATA_NEWLINE_REJECT, 0, 0, test_sink, &out);
    bdat_check_feed(&d, "ab\r\n", 4);
    bdat_check_feed(&d, "c\0d", 3);
    bdat_check_finish(&d);
    assert_int_equal(d.error, DATA_ERR_NUL);
    assert_int_equal(out.len, 5);
    free(out.buf);

    /* The line count carries across chunks. */
    struct opts o = {DATA_NEWLINE_REJECT, 4, 0};
    const char *c[] = {"12", "34\r\n12", "345"};
    expect_bdat(&o, c, 3, "1234\r\n1234", DATA_ERR_LINE_TOO_LONG);
    const char *ok[] = {"12", "34\r", "\n1234"};
    expect_bdat(&o, ok, 3, "1234\r\n1234", DATA_ERR_NONE);

    struct opts big = {DATA_NEWLINE_REJECT, 0, 5};
    const char *b[] = {"abc", "def"};
    expect_bdat(&big, b, 2, "abcde", DATA_ERR_TOO_BIG);
}

static void test_bdat_against_reference(void **state)
{
    (void)state;
    static const char alphabet[] = {'\r', '\n', '.', 'a', '\0'};
    char in[20];
    for (int iter = 0; iter < 10000; iter++) {
        size_t len = rng() % sizeof(in);
        for (size_t k = 0; k < len; k++)
            in[k] = alphabet[rng() % sizeof(alphabet)];
        struct opts o = {rng() % 2 ? DATA_NEWLINE_REJECT : DATA_NEWLINE_NORMALIZE, rng() % 4,
                         rng() % 3 ? 0 : rng() % 12};
        struct result want;
        ref_decode(&o, in, len, false, &want);
        struct data_decoder d;
        struct sinkbuf out = {0};
        data_decoder_init(&d, o.policy, o.max_line, o.max_size, test_sink, &out);
        size_t cut = rng() % (len + 1);
        bdat_check_feed(&d, in, cut);
        bdat_check_feed(&d, in + cut, len - cut);
        assert_int_equal(d.error, want.error);
        assert_int_equal(data_decoder_size(&d), want.size);
        assert_int_equal(out.len, want.out.len);
        if (out.len)
            assert_memory_equal(out.buf, want.out.buf, out.len);
        assert_false(d.done);
        free(out.buf);
        result_free(&want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_rest_not_consumed),
        cmocka_unit_test(test_no_end),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_smuggling_at_start),
        cmocka_unit_test(test_smuggled_command_not_seen),
        cmocka_unit_test(test_normalize_dot_after_bare_newline),
        cmocka_unit_test(test_reject_keeps_scanning),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_size_counts_after_error),
        cmocka_unit_test(test_sink_failure),
        cmocka_unit_test(test_large_runs),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_every_split_samples),
        cmocka_unit_test(test_bdat_crlf_across_chunks),
        cmocka_unit_test(test_bdat_trailing_cr),
        cmocka_unit_test(test_bdat_no_dots),
        cmocka_unit_test(test_bdat_defects),
        cmocka_unit_test(test_bdat_against_reference),
    };
    return cmocka_run_group_tests_name("data_decoder", tests, NULL, NULL);
}
