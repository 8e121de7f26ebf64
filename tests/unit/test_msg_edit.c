/*
 * Unit tests for msg_edit: header edits at every position, changes and
 * deletions of the nth field, a change of a missing field, a replaced body,
 * messages without an empty line, a header section larger than the parser
 * keeps, a spilled store; and the envelope after sender and recipient edits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "chain/msg_edit.h"

struct fixture {
    struct msg_store *received;
    struct msg_store *out;
    struct msg_store *body;
    struct msg_headers h;
};

static void fx_load(struct fixture *f, const char *msg, size_t max_header, size_t spill)
{
    f->received = msg_store_new(spill, "/tmp");
    f->out = msg_store_new(spill, "/tmp");
    f->body = NULL;
    msg_headers_init(&f->h, max_header, 100);
    size_t n = strlen(msg);
    /* fed in small pieces: offsets must not depend on how the data came */
    for (size_t i = 0; i < n; i += 7) {
        size_t k = n - i < 7 ? n - i : 7;
        assert_int_equal(msg_store_append(f->received, msg + i, k), 0);
        assert_int_equal(msg_headers_feed(&f->h, msg + i, k), 0);
    }
    assert_int_equal(msg_headers_finish(&f->h), 0);
}

static void fx_free(struct fixture *f)
{
    msg_store_free(f->received);
    msg_store_free(f->out);
    msg_store_free(f->body);
    msg_headers_free(&f->h);
}

/* Apply and return the whole message as the upstream would get it. */
static char *fx_apply(struct fixture *f, const struct chain_edit *e, size_t n)
{
    struct msg_view v;
    assert_int_equal(msg_edit_apply(&f->h, f->received, e, n, f->body, f->out, &v), 0);
    uint64_t size = msg_view_size(&v);
    char *text = calloc(1, size + 1);
    assert_int_equal(msg_view_read(&v, 0, text, size), (ssize_t)size);
    return text;
}

#define E(kind, idx, name, value)                                                                  \
    {                                                                                              \
        kind, idx, (char *)(name), (char *)(value), NULL                                           \
    }

static const char *const MSG = "Received: one\r\n"
                               "From: a@example.test\r\n"
                               "Subject: hi\r\n"
                               "X-Multi: 1\r\n"
                               "X-Fold: a\r\n b\r\n"
                               "X-Multi: 2\r\n"
                               "\r\n"
                               "body\r\n.dot\r\n";

static void test_offsets_recorded(void **state)
{
    (void)state;
    struct fixture f;
    fx_load(&f, MSG, 4096, 1 << 20);
    assert_int_equal(f.h.count, 6);
    assert_int_equal(f.h.fields[0].start, 0);
    assert_int_equal(f.h.fields[0].end, 15);
    assert_int_equal(f.h.fields[4].start, strstr(MSG, "X-Fold") - MSG);
    assert_int_equal(f.h.fields[4].end, strstr(MSG, "X-Multi: 2") - MSG);
    assert_int_equal(f.h.header_end, strstr(MSG, "\r\n\r\n") - MSG + 2);
    assert_int_equal(f.h.body_offset, f.h.header_end + 2);
    fx_free(&f);
}

static void test_no_edits_is_identity(void **state)
{
    (void)state;
    struct fixture f;
    fx_load(&f, MSG, 4096, 1 << 20);
    char *out = fx_apply(&f, NULL, 0);
    assert_string_equal(out, MSG);
    free(out);
    fx_free(&f);
}

static void test_header_positions(void **state)
{
    (void)state;
    struct fixture f;
    fx_load(&f, MSG, 4096, 1 << 20);
    struct chain_edit e[] = {
        E(EDIT_INSERT_HEADER, 0, "X-Top", "0"),
        E(EDIT_INSERT_HEADER, 2, "X-Middle", "m"),
        E(EDIT_INSERT_HEADER, 100, "X-Past", "p"),
        E(EDIT_ADD_HEADER, 0, "X-End", " already spaced"),
        E(EDIT_CHANGE_HEADER, 2, "x-multi", "second"),
        E(EDIT_CHANGE_HEADER, 1, "Received", NULL),
        E(EDIT_CHANGE_HEADER, 1, "X-Missing", "added"),
        E(EDIT_CHANGE_HEADER, 3, "X-Multi", NULL), /* no third: nothing */
    };
    char *out = fx_apply(&f, e, sizeof(e) / sizeof(e[0]));
    assert_string_equal(out, "X-Top: 0\r\n"
                             "X-Middle: m\r\n"
                             "From: a@example.test\r\n"
                             "Subject: hi\r\n"
                             "X-Multi: 1\r\n"
                             "X-Fold: a\r\n b\r\n"
                             "x-multi: second\r\n"
                             "X-Past: p\r\n"
                             "X-End: already spaced\r\n"
                             "X-Missing: added\r\n"
                             "\r\n"
                             "body\r\n.dot\r\n");
    free(out);
    fx_free(&f);
}

static void test_replaced_body(void **state)
{
    (void)state;
    struct fixture f;
    fx_load(&f, MSG, 4096, 1 << 20);
    f.body = msg_store_new(1 << 20, "/tmp");
    msg_store_append(f.body, "new\r\n", 5);
    char *out = fx_apply(&f, NULL, 0);
    assert_non_null(strstr(out, "X-Multi: 2\r\n\r\nnew\r\n"));
    assert_null(strstr(out, "body"));
    free(out);
    fx_free(&f);
}

static void test_no_empty_line(void **state)
{
    (void)state;
    struct fixture f;
    fx_load(&f, "Subject: only headers\r\nX-Last: no crlf", 4096, 1 << 20);
    struct chain_edit e[] = {E(EDIT_ADD_HEADER, 0, "X-New", "1")};
    char *out = fx_apply(&f, e, 1);
    assert_string_equal(out, "Subject: only headers\r\nX-Last: no crlf\r\nX-New: 1\r\n\r\n");
    free(out);
    fx_free(&f);

    /* a body line that is not a header ends the section: an empty line is put before it */
    fx_load(&f, "Subject: s\r\nnot a header line\r\n", 4096, 1 << 20);
    out = fx_apply(&f, e, 1);
    assert_string_equal(out, "Subject: s\r\nX-New: 1\r\n\r\nnot a header line\r\n");
    free(out);
    fx_free(&f);
}

static void test_truncated_header_section(void **state)
{
    (void)state;
    struct fixture f;
    char msg[8192] = "Subject: kept\r\n";
    for (int i = 0; i < 100; i++)
        strcat(msg, "X-Long: 0123456789012345678901234567890123456789\r\n");
    strcat(msg, "\r\nbody\r\n");
    fx_load(&f, msg, 1024, 1 << 20);
    assert_true(f.h.truncated);
    struct chain_edit e[] = {E(EDIT_INSERT_HEADER, 0, "X-First", "1")};
    char *out = fx_apply(&f, e, 1);
    assert_int_equal(strncmp(out, "X-First: 1\r\n", 12), 0);
    assert_string_equal(out + 12, msg); /* everything else exactly as received */
    free(out);
    fx_free(&f);
}

static void test_spilled_store(void **state)
{
    (void)state;
    struct fixture f;
    size_t n = 300000;
    char *msg = malloc(n + 64);
    strcpy(msg, "Subject: big\r\n\r\n");
    size_t k = strlen(msg);
    while (k + 10 < n) {
        memcpy(msg + k, "123456789\n", 10);
        msg[k + 8] = '\r';
        msg[k + 9] = '\n';
        k += 10;
    }
    msg[k] = '\0';
    fx_load(&f, msg, 4096, 4096);
    assert_true(msg_store_spilled(f.received));
    struct chain_edit e[] = {E(EDIT_ADD_HEADER, 0, "X-Big", "y")};
    char *out = fx_apply(&f, e, 1);
    assert_int_equal(strncmp(out, "Subject: big\r\nX-Big: y\r\n\r\n", 26), 0);
    assert_string_equal(out + 26, msg + 16);
    free(out);
    free(msg);
    fx_free(&f);
}

static void test_envelope(void **state)
{
    (void)state;
    struct msg_rcpt in[] = {{(char *)"a@example.test", (char *)"NOTIFY=NEVER"},
                            {(char *)"B@Example.Test", NULL}};
    struct chain_edit e[] = {
        {EDIT_CHANGE_FROM, 0, NULL, (char *)"bounce@example.test", NULL},
        {EDIT_DEL_RCPT, 0, NULL, (char *)"b@example.test", NULL},
        {EDIT_ADD_RCPT, 0, NULL, (char *)"c@example.test", (char *)"ORCPT=rfc822;c@example.test"},
    };
    struct msg_envelope env;
    assert_int_equal(msg_edit_envelope("s@example.test", "BODY=8BITMIME", in, 2, e, 3, &env), 0);
    assert_string_equal(env.mail_from, "bounce@example.test");
    assert_string_equal(env.mail_params, "BODY=8BITMIME");
    assert_int_equal(env.nrcpt, 2);
    assert_string_equal(env.rcpt[0].mailbox, "a@example.test");
    assert_string_equal(env.rcpt[0].params, "NOTIFY=NEVER");
    assert_string_equal(env.rcpt[1].mailbox, "c@example.test");
    assert_string_equal(env.rcpt[1].params, "ORCPT=rfc822;c@example.test");
    assert_true(msg_edit_has_envelope_edits(e, 3));
    assert_false(msg_edit_has_header_edits(e, 3));
    msg_envelope_free(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_recorded), cmocka_unit_test(test_no_edits_is_identity),
        cmocka_unit_test(test_header_positions), cmocka_unit_test(test_replaced_body),
        cmocka_unit_test(test_no_empty_line),    cmocka_unit_test(test_truncated_header_section),
        cmocka_unit_test(test_spilled_store),    cmocka_unit_test(test_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
