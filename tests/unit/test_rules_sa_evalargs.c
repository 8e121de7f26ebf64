/*
 * Unit tests for the pure parsers behind SpamAssassin's eval tests: the
 * argument list of eval:NAME(ARGS) as Conf::Parser::pack_eval_args reads it
 * (quotes, bare words, blanks, trailing comma, syntax errors, the cap) and
 * header dates as Util::parse_rfc822_date reads them (the three date forms,
 * short years, zones by number and by name, the fudging of out-of-range
 * fields, Received lines).  Expected times computed with Perl's timegm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rules/sa_date.h"
#include "rules/sa_eval_args.h"

static void expect_args(const char *s, size_t n, const char *const *want)
{
    struct sa_eval_args a;
    assert_int_equal(sa_eval_args_parse(s, strlen(s), &a), SA_EVAL_ARGS_OK);
    assert_int_equal(a.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(a.v[i], want[i]);
        assert_int_equal(a.len[i], strlen(want[i]));
    }
    sa_eval_args_free(&a);
}

static void test_args(void **state)
{
    (void)state;
    expect_args("", 0, NULL);
    expect_args("   ", 0, NULL);
    expect_args("'-6', '-3'", 2, (const char *[]){"-6", "-3"});
    expect_args("'Subject','0.00','2'", 3, (const char *[]){"Subject", "0.00", "2"});
    expect_args("undef , 12", 2, (const char *[]){"undef", "12"});
    expect_args("\"a, b\"", 1, (const char *[]){"a, b"});
    /* the quote closes where blanks and a comma or the end follow */
    expect_args("'it's'", 1, (const char *[]){"it's"});
    expect_args("'a'b', 'c'", 2, (const char *[]){"a'b", "c"});
    expect_args("'\\d@'", 1, (const char *[]){"\\d@"});
    expect_args("''", 1, (const char *[]){""});
    expect_args("192.0.2.1, ::1, a-b.example", 3,
                (const char *[]){"192.0.2.1", "::1", "a-b.example"});
    expect_args("x,", 1, (const char *[]){"x"});

    static const char *const bad[] = {"a b", "x,,y", ",", "'open", "a_b", "'a' b", "(x)", "'a\n'"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sa_eval_args a;
        if (sa_eval_args_parse(bad[i], strlen(bad[i]), &a) != SA_EVAL_ARGS_SYNTAX)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(a.n, 0);
    }
    char many[200] = "";
    for (int i = 0; i < SA_EVAL_ARGS_MAX + 1; i++)
        strcat(many, "1,");
    struct sa_eval_args a;
    assert_int_equal(sa_eval_args_parse(many, strlen(many), &a), SA_EVAL_ARGS_TOO_MANY);
    assert_int_equal(a.n, 0);
    many[strlen(many) - 4] = '\0'; /* SA_EVAL_ARGS_MAX - 1 items */
    assert_int_equal(sa_eval_args_parse(many, strlen(many), &a), SA_EVAL_ARGS_OK);
    assert_int_equal(a.n, SA_EVAL_ARGS_MAX - 1);
    sa_eval_args_free(&a);
}

static int64_t date(const char *s)
{
    int64_t t = -1;
    if (!sa_date_parse(s, strlen(s), &t))
        return -1;
    return t;
}

static void test_dates(void **state)
{
    (void)state;
    /* perl -MTime::Local -e 'print timegm(0,0,10,7,11,2026)' = 1796637600 */
    assert_int_equal(date("Mon, 07 Dec 2026 10:00:00 +0000"), 1796637600);
    assert_int_equal(date("Mon, 7 Dec 2026 10:00:00 +0100"), 1796637600 - 3600);
    assert_int_equal(date("Mon, 07 Dec 2026 10:00:00 -0230"), 1796637600 + 9000);
    assert_int_equal(date("7 DEC 2026 10:00 EST"), 1796637600 + 5 * 3600);
    /* the asctime form takes its time with the date: the time is not looked for again */
    assert_int_equal(date("Mon Dec  7 10:00:00 2026"), 1796601600);
    assert_int_equal(date("07 Dec 26 10:00:00 GMT"), 1796637600);
    assert_int_equal(date("07 Dec 99 00:00:00"), 944524800);   /* 1999 */
    assert_int_equal(date("07 Dec 126 10:00:00"), 1796637600); /* 3 digits: 1900 + */
    /* the first all-capital word names the zone, or -0000 */
    assert_int_equal(date("MON, 07 Dec 2026 10:00:00 EST"), 1796637600);
    assert_int_equal(date("07 Dec 2026 10:00:00 CEST"), 1796637600 - 7200);
    assert_int_equal(date("07 Dec 2026 10:00:00 (CEST)"), 1796637600 - 7200);
    assert_int_equal(date("07 Dec 2026 10:00:00 XYZ"), 1796637600);
    /* no time: midnight; fudged fields */
    assert_int_equal(date("07 Dec 2026"), 1796601600);
    assert_int_equal(date("07 Dec 2026 99:99:99 +0000"), 1796601600 + 23 * 3600 + 59 * 60 + 59);
    assert_int_equal(date("31 Nov 2026 00:00 +0000"), date("1 Dec 2026 00:00 +0000"));
    assert_int_equal(date("32 Dec 2026 00:00 +0000"), date("1 Jan 2027 00:00 +0000"));
    assert_int_equal(date("29 Feb 2024 00:00 +0000"), 1709164800);
    assert_int_equal(date("01 Jan 2050 00:00 +0000"), date("01 Jan 2037 00:00 +0000"));
    assert_int_equal(date("01 Jan 1900 00:00 +0000"), 0);
    assert_int_equal(date("01 Jan 1970 00:00 +0100"), 0); /* before the epoch: 0 */
    /* not a date */
    assert_int_equal(date("yesterday"), -1);
    assert_int_equal(date("0 Dec 2026 10:00:00"), -1);
    assert_int_equal(date("Dec 2026"), -1);
    assert_int_equal(date(""), -1);

    int64_t t;
    const char *r = "from a.example (a.example [192.0.2.1]) by mx.example with ESMTP id 1; "
                    "Mon, 07 Dec 2026 10:00:00 +0000";
    assert_true(sa_date_in_received(r, strlen(r), &t));
    assert_int_equal(t, 1796637600);
    r = "from a by b; 7 Dec 2026 10:00 +0000";
    assert_false(sa_date_in_received(r, strlen(r), &t));
    r = "by b with SMTP; Mon,  7 Dec 2026 10:00:00 -0500 (EST)";
    assert_true(sa_date_in_received(r, strlen(r), &t));
    assert_int_equal(t, 1796637600 + 5 * 3600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
