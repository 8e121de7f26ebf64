/*
 * Unit tests for milter_reply: a chain reply split into libmilter's rcode,
 * xcode and line texts; enhanced codes kept only when their class matches;
 * '%' doubled; unprintable octets replaced; line and length limits at and
 * over the bound; malformed replies refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/milter_reply.h"

static int parse(const char *s, struct milter_reply *r)
{
    return milter_reply_parse(s, strlen(s), r);
}

static void test_one_line(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(parse("550 5.7.1 Message content rejected", &r), 0);
    assert_string_equal(r.rcode, "550");
    assert_string_equal(r.xcode, "5.7.1");
    assert_int_equal(r.nlines, 1);
    assert_string_equal(r.lines[0], "Message content rejected");
    assert_false(r.truncated);
    milter_reply_free(&r);
}

static void test_tempfail_without_enhanced(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(parse("451 Try later", &r), 0);
    assert_string_equal(r.rcode, "451");
    assert_string_equal(r.xcode, "");
    assert_string_equal(r.lines[0], "Try later");
    milter_reply_free(&r);
}

static void test_enhanced_class_mismatch(void **state)
{
    (void)state;
    struct milter_reply r;
    /* A 5.x.x code on a 4xx reply is not the reply's: it stays in the text. */
    assert_int_equal(parse("451 5.7.1 odd", &r), 0);
    assert_string_equal(r.xcode, "");
    assert_string_equal(r.lines[0], "5.7.1 odd");
    milter_reply_free(&r);
}

static void test_multi_line(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(parse("550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third", &r), 0);
    assert_string_equal(r.rcode, "550");
    assert_string_equal(r.xcode, "5.7.1");
    assert_int_equal(r.nlines, 3);
    assert_string_equal(r.lines[0], "first");
    assert_string_equal(r.lines[1], "second");
    assert_string_equal(r.lines[2], "third");
    assert_null(r.lines[3]);
    milter_reply_free(&r);
}

static void test_bare_lf_and_trailing_crlf(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(parse("554-5.7.0 a\n554 5.7.0 b\r\n", &r), 0);
    assert_int_equal(r.nlines, 2);
    assert_string_equal(r.lines[1], "b");
    milter_reply_free(&r);
}

static void test_other_enhanced_code_kept_in_later_line(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(parse("550-5.7.1 a\r\n550 5.7.10 b", &r), 0);
    assert_string_equal(r.lines[1], "5.7.10 b");
    milter_reply_free(&r);
}

static void test_percent_and_controls(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(parse("550 5.7.1 100% spam\x01\x7f\xff", &r), 0);
    assert_string_equal(r.lines[0], "100%% spam???");
    milter_reply_free(&r);
}

static void test_line_limit(void **state)
{
    (void)state;
    char buf[8192] = "";
    size_t used = 0;
    for (int i = 0; i < MILTER_REPLY_MAX_LINES + 1; i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "550%c5.7.1 line %d\r\n",
                                 i == MILTER_REPLY_MAX_LINES ? ' ' : '-', i);
    struct milter_reply r;
    assert_int_equal(parse(buf, &r), 0);
    assert_int_equal(r.nlines, MILTER_REPLY_MAX_LINES);
    assert_true(r.truncated);
    assert_string_equal(r.lines[MILTER_REPLY_MAX_LINES - 1], "line 31");
    milter_reply_free(&r);

    /* Exactly at the limit: nothing dropped. */
    used = 0;
    for (int i = 0; i < MILTER_REPLY_MAX_LINES; i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "550%c5.7.1 line %d\r\n",
                                 i == MILTER_REPLY_MAX_LINES - 1 ? ' ' : '-', i);
    assert_int_equal(parse(buf, &r), 0);
    assert_int_equal(r.nlines, MILTER_REPLY_MAX_LINES);
    assert_false(r.truncated);
    milter_reply_free(&r);
}

static void test_text_length_limit(void **state)
{
    (void)state;
    char buf[4096];
    memcpy(buf, "550 5.7.1 ", 10);
    memset(buf + 10, '%', 2000);
    buf[2010] = '\0';
    struct milter_reply r;
    assert_int_equal(parse(buf, &r), 0);
    assert_int_equal(strlen(r.lines[0]), MILTER_REPLY_MAX_TEXT);
    milter_reply_free(&r);

    memset(buf + 10, 'a', MILTER_REPLY_MAX_TEXT);
    buf[10 + MILTER_REPLY_MAX_TEXT] = '\0';
    assert_int_equal(parse(buf, &r), 0);
    assert_int_equal(strlen(r.lines[0]), MILTER_REPLY_MAX_TEXT);
    milter_reply_free(&r);
}

static void test_malformed(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(parse("", &r), -1);
    assert_int_equal(r.nlines, 0);
    assert_int_equal(parse("hello", &r), -1);
    assert_int_equal(parse("250 2.0.0 ok", &r), -1);   /* not a refusal */
    assert_int_equal(parse("550-a\r\n450 b", &r), -1); /* code changes */
    assert_int_equal(parse("55 short", &r), -1);
    assert_int_equal(parse("\r\n", &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_tempfail_without_enhanced),
        cmocka_unit_test(test_enhanced_class_mismatch),
        cmocka_unit_test(test_multi_line),
        cmocka_unit_test(test_bare_lf_and_trailing_crlf),
        cmocka_unit_test(test_other_enhanced_code_kept_in_later_line),
        cmocka_unit_test(test_percent_and_controls),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_text_length_limit),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
