/*
 * Unit tests for msg_headers: folded fields, case-insensitive and nth look-up,
 * 8-bit values, messages with no body or no empty line, a non-header line
 * ending the section, the byte and field bounds, the exact body offset, and
 * the same result for every split of the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/msg_headers.h"

#define S(lit) lit, sizeof(lit) - 1

/* Feed at the given cut points, then finish. */
static void parse_cuts(struct msg_headers *h, size_t max_bytes, size_t max_fields, const char *in,
                       size_t len, const size_t *cuts, size_t ncuts)
{
    msg_headers_init(h, max_bytes, max_fields);
    size_t pos = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        size_t n = end - pos;
        char *piece = malloc(n ? n : 1);
        assert_non_null(piece);
        memcpy(piece, in + pos, n);
        assert_int_equal(msg_headers_feed(h, piece, n), 0);
        free(piece);
        pos = end;
    }
    assert_int_equal(msg_headers_finish(h), 0);
    assert_true(h->complete);
    assert_true(h->body_offset <= len);
}

static void parse(struct msg_headers *h, const char *in, size_t len)
{
    parse_cuts(h, 65536, 1000, in, len, NULL, 0);
}

static void assert_same(const struct msg_headers *a, const struct msg_headers *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->complete, b->complete);
    assert_int_equal(a->truncated, b->truncated);
    assert_int_equal(a->body_offset, b->body_offset);
    for (size_t i = 0; i < a->count; i++) {
        assert_int_equal(a->fields[i].name_len, b->fields[i].name_len);
        assert_int_equal(a->fields[i].value_len, b->fields[i].value_len);
        assert_memory_equal(a->fields[i].name, b->fields[i].name, a->fields[i].name_len + 1);
        assert_memory_equal(a->fields[i].value, b->fields[i].value, a->fields[i].value_len + 1);
    }
}

/* Every single cut and one octet at a time agree with one piece. */
static void parse_every_split(struct msg_headers *whole, size_t max_bytes, size_t max_fields,
                              const char *in, size_t len)
{
    parse_cuts(whole, max_bytes, max_fields, in, len, NULL, 0);
    struct msg_headers h;
    for (size_t k = 0; k <= len; k++) {
        parse_cuts(&h, max_bytes, max_fields, in, len, &k, 1);
        assert_same(whole, &h);
        msg_headers_free(&h);
    }
    size_t *cuts = malloc((len ? len : 1) * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t k = 0; k < len; k++)
        cuts[k] = k;
    parse_cuts(&h, max_bytes, max_fields, in, len, cuts, len);
    free(cuts);
    assert_same(whole, &h);
    msg_headers_free(&h);
}

static void assert_field(const struct msg_headers *h, size_t i, const char *name, const char *value,
                         size_t value_len)
{
    assert_true(i < h->count);
    assert_string_equal(h->fields[i].name, name);
    assert_int_equal(h->fields[i].name_len, strlen(name));
    assert_int_equal(h->fields[i].value_len, value_len);
    assert_memory_equal(h->fields[i].value, value, value_len);
    assert_int_equal(h->fields[i].value[value_len], '\0');
}

static void test_simple(void **state)
{
    (void)state;
    static const char msg[] = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n"
                              "\r\nbody line\r\n";
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 3);
    assert_false(h.truncated);
    assert_field(&h, 0, "From", S(" a@example.org"));
    assert_field(&h, 1, "To", S(" b@example.org"));
    assert_field(&h, 2, "Subject", S(" hi"));
    assert_int_equal(h.body_offset, strstr(msg, "body") - msg);
    msg_headers_free(&h);
}

static void test_folded(void **state)
{
    (void)state;
    static const char msg[] = "Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\nb";
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 2);
    assert_field(&h, 0, "Subject", S(" one\r\n two\r\n\tthree"));
    assert_field(&h, 1, "X", S(" y"));
    assert_int_equal(h.body_offset, sizeof(msg) - 2);
    msg_headers_free(&h);
}

static void test_find(void **state)
{
    (void)state;
    static const char msg[] = "Received: one\r\nsubject: s\r\nRECEIVED: two\r\n"
                              "received: three\r\n\r\n";
    struct msg_headers h;
    parse(&h, S(msg));
    const struct msg_header *f = msg_headers_find(&h, "Subject", 0);
    assert_non_null(f);
    assert_string_equal(f->value, " s");
    assert_null(msg_headers_find(&h, "Subject", 1));
    assert_string_equal(msg_headers_find(&h, "received", 0)->value, " one");
    assert_string_equal(msg_headers_find(&h, "Received", 1)->value, " two");
    assert_string_equal(msg_headers_find(&h, "rEcEiVeD", 2)->value, " three");
    assert_null(msg_headers_find(&h, "Received", 3));
    assert_null(msg_headers_find(&h, "Receive", 0));
    assert_null(msg_headers_find(&h, "Received:", 0));
    assert_null(msg_headers_find(&h, "X-None", 0));
    assert_null(msg_headers_find(&h, NULL, 0));
    msg_headers_free(&h);
}

static void test_8bit_value(void **state)
{
    (void)state;
    static const char msg[] = "Subject: caf\xc3\xa9 \xff\x01\r\n\r\n";
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 1);
    assert_field(&h, 0, "Subject", S(" caf\xc3\xa9 \xff\x01"));
    msg_headers_free(&h);
}

static void test_empty_value_and_name_chars(void **state)
{
    (void)state;
    static const char msg[] = "X-Empty:\r\nX!#$%&'*+-/=?^_`{|}~:v\r\n\r\n";
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 2);
    assert_field(&h, 0, "X-Empty", S(""));
    assert_field(&h, 1, "X!#$%&'*+-/=?^_`{|}~", S("v"));
    msg_headers_free(&h);
}

static void test_no_body(void **state)
{
    (void)state;
    static const char msg[] = "Subject: a\r\nTo: b\r\n";
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 2);
    assert_field(&h, 1, "To", S(" b"));
    assert_int_equal(h.body_offset, sizeof(msg) - 1);
    msg_headers_free(&h);

    /* Empty line and nothing after it. */
    parse_every_split(&h, 65536, 1000, S("A: 1\r\n\r\n"));
    assert_int_equal(h.count, 1);
    assert_int_equal(h.body_offset, 8);
    msg_headers_free(&h);
}

static void test_no_final_crlf(void **state)
{
    (void)state;
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, S("A: 1\r\nB: 2"));
    assert_int_equal(h.count, 2);
    assert_field(&h, 1, "B", S(" 2"));
    assert_int_equal(h.body_offset, 10);
    msg_headers_free(&h);

    parse_every_split(&h, 65536, 1000, S("A: 1\r\nB: 2\r"));
    assert_int_equal(h.count, 2);
    assert_field(&h, 1, "B", S(" 2"));
    msg_headers_free(&h);
}

static void test_empty_message(void **state)
{
    (void)state;
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, S(""));
    assert_int_equal(h.count, 0);
    assert_int_equal(h.body_offset, 0);
    msg_headers_free(&h);

    parse_every_split(&h, 65536, 1000, S("\r\nbody\r\n"));
    assert_int_equal(h.count, 0);
    assert_int_equal(h.body_offset, 2);
    msg_headers_free(&h);
}

static void test_non_header_line_ends_section(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        size_t len;
        size_t fields;
        uint64_t body;
    } cases[] = {
        {S("A: 1\r\nthis is body\r\nB: 2\r\n"), 1, 6},
        {S("A: 1\r\nNoColon\r\n\r\n"), 1, 6},
        {S("A: 1\r\n:novalue\r\n"), 1, 6},
        {S("A: 1\r\nB\xc3\xa9: x\r\n"), 1, 6},
        {S("A: 1\r\n>From x\r\n"), 1, 6},
        {S(" leading blank\r\nA: 1\r\n"), 0, 0},
        {S("A: 1\r\nB\0: x\r\n"), 1, 6},
        {S("A: 1\r\nName"), 1, 6},
        {S("A: 1\r\n\rX: y\r\n"), 1, 6},
        {S("A: 1\r\nB C: d\r\n"), 1, 6},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct msg_headers h;
        parse_every_split(&h, 65536, 1000, cases[i].msg, cases[i].len);
        assert_int_equal(h.count, cases[i].fields);
        assert_int_equal(h.body_offset, cases[i].body);
        if (h.count)
            assert_field(&h, 0, "A", S(" 1"));
        msg_headers_free(&h);
    }
}

static void test_blank_before_colon(void **state)
{
    (void)state;
    /* Obsolete syntax that Postfix still takes as a header. */
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, S("Subject \t: x\r\n\r\n"));
    assert_int_equal(h.count, 1);
    assert_field(&h, 0, "Subject", S(" x"));
    assert_non_null(msg_headers_find(&h, "subject", 0));
    msg_headers_free(&h);
}

static void test_bare_lf(void **state)
{
    (void)state;
    struct msg_headers h;
    parse_every_split(&h, 65536, 1000, S("A: 1\nB: 2\n folded\n\nbody"));
    assert_int_equal(h.count, 2);
    assert_field(&h, 0, "A", S(" 1"));
    assert_field(&h, 1, "B", S(" 2\n folded"));
    assert_int_equal(h.body_offset, 19);
    msg_headers_free(&h);
}

static void test_max_bytes(void **state)
{
    (void)state;
    /* "A" " 1" = 3 octets, "B" " 22" = 4: 7 fit exactly, 6 do not. */
    static const char msg[] = "A: 1\r\nB: 22\r\nC: 3\r\n\r\nbody";
    struct msg_headers h;
    parse_every_split(&h, 7, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 2);
    assert_true(h.truncated);
    assert_int_equal(h.body_offset, sizeof(msg) - 5);
    msg_headers_free(&h);

    parse_every_split(&h, 6, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 1);
    assert_true(h.truncated);
    assert_int_equal(h.body_offset, sizeof(msg) - 5);
    msg_headers_free(&h);

    parse_every_split(&h, 10, 1000, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 3);
    assert_false(h.truncated);
    msg_headers_free(&h);

    /* Nothing more is kept after the bound, even a field that would fit. */
    parse_every_split(&h, 5, 1000, S("A: 1\r\nB: 22222\r\nC:\r\n\r\n"));
    assert_int_equal(h.count, 1);
    assert_true(h.truncated);
    assert_int_equal(h.body_offset, 22);
    msg_headers_free(&h);
}

static void test_max_bytes_long_line(void **state)
{
    (void)state;
    /* A value far longer than the bound is never buffered whole. */
    size_t n = 1 << 20;
    char *msg = malloc(n + 32);
    assert_non_null(msg);
    memcpy(msg, "A: 1\r\nX: ", 9);
    memset(msg + 9, 'x', n);
    memcpy(msg + 9 + n, "\r\n\r\nbody", 8);
    struct msg_headers h;
    parse_cuts(&h, 1024, 1000, msg, n + 17, NULL, 0);
    assert_int_equal(h.count, 1);
    assert_true(h.truncated);
    assert_int_equal(h.body_offset, n + 13);
    assert_true(h.line_cap <= 2048);
    msg_headers_free(&h);
    free(msg);
}

static void test_max_fields(void **state)
{
    (void)state;
    static const char msg[] = "A: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    struct msg_headers h;
    parse_every_split(&h, 65536, 2, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 2);
    assert_true(h.truncated);
    assert_int_equal(h.body_offset, sizeof(msg) - 1);
    assert_null(msg_headers_find(&h, "C", 0));
    msg_headers_free(&h);

    parse_every_split(&h, 65536, 3, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 3);
    assert_false(h.truncated);
    msg_headers_free(&h);

    parse_every_split(&h, 65536, 0, msg, sizeof(msg) - 1);
    assert_int_equal(h.count, 0);
    assert_true(h.truncated);
    msg_headers_free(&h);
}

static void test_many_fields(void **state)
{
    (void)state;
    size_t n = 500;
    char *msg = malloc(n * 16 + 8);
    assert_non_null(msg);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(msg + len, "X-%zu: v%zu\r\n", i, i);
    memcpy(msg + len, "\r\nbody", 6);
    len += 6;
    struct msg_headers h;
    parse_cuts(&h, 1 << 20, 1000, msg, len, NULL, 0);
    assert_int_equal(h.count, n);
    assert_string_equal(msg_headers_find(&h, "x-499", 0)->value, " v499");
    assert_int_equal(h.body_offset, len - 4);
    msg_headers_free(&h);
    free(msg);
}

static void test_feed_after_complete_and_reset(void **state)
{
    (void)state;
    struct msg_headers h;
    msg_headers_init(&h, 1024, 10);
    assert_int_equal(msg_headers_feed(&h, S("A: 1\r\n\r\nB: 2\r\n")), 0);
    assert_true(h.complete);
    assert_int_equal(h.body_offset, 8);
    assert_int_equal(msg_headers_feed(&h, S("C: 3\r\n\r\n")), 0);
    assert_int_equal(msg_headers_finish(&h), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.body_offset, 8);

    msg_headers_reset(&h);
    assert_false(h.complete);
    assert_int_equal(h.count, 0);
    assert_int_equal(h.max_bytes, 1024);
    assert_int_equal(h.max_fields, 10);
    assert_int_equal(msg_headers_feed(&h, S("Z: 9\r\n\r\n")), 0);
    assert_int_equal(h.count, 1);
    assert_field(&h, 0, "Z", S(" 9"));
    assert_int_equal(h.body_offset, 8);
    msg_headers_free(&h);
    msg_headers_free(&h); /* harmless twice */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_8bit_value),
        cmocka_unit_test(test_empty_value_and_name_chars),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_no_final_crlf),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_non_header_line_ends_section),
        cmocka_unit_test(test_blank_before_colon),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_max_bytes_long_line),
        cmocka_unit_test(test_max_fields),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_feed_after_complete_and_reset),
    };
    return cmocka_run_group_tests_name("msg_headers", tests, NULL, NULL);
}
