#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "message/msg_store.h"
#include "message/msg_view.h"
#include "message/quarantine.h"
#include "message/quarantine_read.h"

#define HEAD                                                                                       \
    "X-Quarantine-Date: Fri, 04 Dec 2026 06:36:15 +0000\r\n"                                      \
    "X-Quarantine-Client: 192.0.2.7\r\n"                                                           \
    "X-Quarantine-Helo: helo.example.test\r\n"                                                     \
    "X-Quarantine-Envelope-From: s@example.test\r\n"                                               \
    "X-Quarantine-Envelope-To: a@example.test\r\n"                                                 \
    "X-Quarantine-Envelope-To: b@example.test\r\n"                                                 \
    "X-Quarantine-Reason: test marker found\r\n"                                                   \
    "X-Quarantine-Filter: policy\r\n"
#define MSG "Subject: held\r\n\r\nbody\r\n"

static bool field_is(struct quarantine_field f, const char *s)
{
    return f.p && f.len == strlen(s) && memcmp(f.p, s, f.len) == 0;
}

static void test_reads_the_head(void **state)
{
    (void)state;
    const char file[] = HEAD MSG;
    struct quarantine_head h;
    assert_int_equal(quarantine_head_parse(file, sizeof(file) - 1, true, &h), QH_OK);
    assert_true(field_is(h.client, "192.0.2.7"));
    assert_true(field_is(h.helo, "helo.example.test"));
    assert_true(field_is(h.from, "s@example.test"));
    assert_int_equal(h.nrcpt, 2);
    assert_true(field_is(h.rcpt[0], "a@example.test"));
    assert_true(field_is(h.rcpt[1], "b@example.test"));
    assert_true(field_is(h.reason, "test marker found"));
    assert_true(field_is(h.filter, "policy"));
    assert_int_equal(h.message_offset, sizeof(HEAD) - 1);
    assert_memory_equal(file + h.message_offset, MSG, sizeof(MSG) - 1);
    quarantine_head_free(&h);
}

/* What quarantine_write() writes reads back, null sender and all. */
static void test_round_trip_with_the_writer(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_quarantine_read.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct msg_store *st = msg_store_new(1 << 20, dir);
    assert_non_null(st);
    const char msg[] = "X-Quarantine-Envelope-To: injected@evil.test\r\nSubject: x\r\n\r\nhi\r\n";
    assert_int_equal(msg_store_append(st, msg, sizeof(msg) - 1), 0);
    struct msg_view v;
    msg_view_of_store(&v, st);
    const char *rcpt[] = {"r1@example.test", "r2@example.test", "r3@example.test"};
    struct quarantine_facts f = {.id = "ID1.1", .client_addr = "2001:db8::1", .helo = "h\r\nX",
                                 .mail_from = "", .rcpt = rcpt, .nrcpt = 3,
                                 .reason = "why", .decided_by = "rules"};
    char path[4096];
    assert_int_equal(quarantine_write(dir, &f, &v, path, sizeof(path)), 0);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    struct quarantine_head h;
    assert_int_equal(quarantine_head_parse(buf, n, true, &h), QH_OK);
    assert_true(field_is(h.from, ""));
    assert_int_equal(h.nrcpt, 3);
    assert_true(field_is(h.rcpt[2], "r3@example.test"));
    assert_true(field_is(h.client, "2001:db8::1"));
    assert_true(field_is(h.helo, "h??X"));
    assert_true(field_is(h.filter, "rules"));
    /* The message's own X-Quarantine line is the message's: no fourth recipient. */
    assert_int_equal(n - h.message_offset, sizeof(msg) - 1);
    assert_memory_equal(buf + h.message_offset, msg, sizeof(msg) - 1);
    quarantine_head_free(&h);
    unlink(path);
    msg_store_free(st);
    rmdir(dir);
}

static void test_incomplete_when_cut(void **state)
{
    (void)state;
    const char file[] = HEAD MSG;
    struct quarantine_head h;
    for (size_t cut = 0; cut < sizeof(HEAD) - 1; cut++) {
        assert_int_equal(quarantine_head_parse(file, cut, false, &h), QH_INCOMPLETE);
        assert_int_equal(quarantine_head_parse(file, cut, true, &h), QH_INVALID);
    }
    /* The head whole, the message not: enough. */
    assert_int_equal(quarantine_head_parse(file, sizeof(HEAD) - 1, false, &h), QH_OK);
    assert_int_equal(h.message_offset, sizeof(HEAD) - 1);
    quarantine_head_free(&h);
}

static void test_invalid_heads(void **state)
{
    (void)state;
    struct quarantine_head h;
    const char *bad[] = {
        /* no recipient */
        "X-Quarantine-Date: d\r\nX-Quarantine-Client: c\r\nX-Quarantine-Helo: h\r\n"
        "X-Quarantine-Envelope-From: f\r\nX-Quarantine-Reason: r\r\nX-Quarantine-Filter: p\r\n",
        /* out of order */
        "X-Quarantine-Client: c\r\nX-Quarantine-Date: d\r\nX-Quarantine-Helo: h\r\n"
        "X-Quarantine-Envelope-From: f\r\nX-Quarantine-Envelope-To: t\r\n"
        "X-Quarantine-Reason: r\r\nX-Quarantine-Filter: p\r\n",
        /* a line without a colon */
        "X-Quarantine-Date d\r\n",
        /* a message, not a quarantine file */
        "Subject: hello\r\n\r\nbody\r\n",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(quarantine_head_parse(bad[i], strlen(bad[i]), true, &h), QH_INVALID);
}

static void test_lf_and_case_and_blanks(void **state)
{
    (void)state;
    const char file[] = "x-quarantine-date:d\nX-QUARANTINE-CLIENT:   c\nX-Quarantine-Helo:\n"
                        "X-Quarantine-Envelope-From:\t<>\nX-Quarantine-Envelope-To: t\n"
                        "X-Quarantine-Reason: r\nX-Quarantine-Filter: p\n";
    struct quarantine_head h;
    assert_int_equal(quarantine_head_parse(file, sizeof(file) - 1, true, &h), QH_OK);
    assert_true(field_is(h.client, "c"));
    assert_true(field_is(h.helo, ""));
    assert_true(field_is(h.from, "<>"));
    assert_int_equal(h.message_offset, sizeof(file) - 1);
    quarantine_head_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_the_head),
        cmocka_unit_test(test_round_trip_with_the_writer),
        cmocka_unit_test(test_incomplete_when_cut),
        cmocka_unit_test(test_invalid_heads),
        cmocka_unit_test(test_lf_and_case_and_blanks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
