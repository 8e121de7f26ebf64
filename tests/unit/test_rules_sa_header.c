/*
 * Unit tests for sa_header and sa_hdrconf: SpamAssassin's default fields
 * for a ham and a spam (the values and the folding spamassassin -t writes),
 * the tags' arguments (YESNO, SCORE padding, STARS, TESTS separators,
 * TESTSSCORES, SUBTESTS), a ham's score at the threshold, tags left as
 * written, REPORT and SUMMARY lines, a template's own line breaks,
 * fold_headers 0, non-ASCII encoded, and the settings: add_header
 * replacing and reordering, remove_header, clear_headers keeping
 * Checker-Version, report and clear_report_template, malformed lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_hdrconf.h"
#include "rules/sa_header.h"

static const struct sa_test ham_tests[] = {
    {"MSGID_SHORT", 0, "", "Message-ID is unusually short"},
    {"NO_RECEIVED", -0.001, "", "Informational: message has no Received headers"},
    {"NO_RELAYS", -0.001, "", "Informational: message was not relayed via SMTP"},
};

static struct sa_tags ham(void)
{
    return (struct sa_tags){.spam = false, .score = -0.002, .required = 5, .tests = ham_tests,
                            .ntests = 3, .version = SA_VERSION, .subversion = SA_SUBVERSION,
                            .hostname = "vm", .contact = "the administrator of that system",
                            .autolearn = "disabled", .wrap_width = 75};
}

static void expect(const struct sa_tags *v, const char *name, const char *tmpl, bool fold,
                   const char *want)
{
    char *got = sa_header_value(v, name, tmpl, fold);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static const char status_tmpl[] =
    "_YESNO_, score=_SCORE_ required=_REQD_ tests=_TESTS_ autolearn=_AUTOLEARN_ "
    "version=_VERSION_";

static void test_defaults(void **state)
{
    (void)state;
    struct sa_tags v = ham();
    expect(&v, "Status", status_tmpl, true,
           "No, score=-0.0 required=5.0 tests=MSGID_SHORT,NO_RECEIVED,\n\tNO_RELAYS "
           "autolearn=disabled version=4.0.1");
    expect(&v, "Checker-Version", "SpamAssassin _VERSION_ (_SUBVERSION_) on _HOSTNAME_", true,
           "SpamAssassin 4.0.1 (2024-03-25) on vm");
    expect(&v, "Level", "_STARS(*)_", true, "");
    static const struct sa_test spam_tests[] = {
        {"GTUBE", 1000, "BODY: ", "Generic Test for Unsolicited Bulk Email"},
        {"MISSING_DATE", 2.7, "", "Missing Date: header"},
        {"MSGID_SHORT", 0, "", NULL},
        {"NO_RECEIVED", -0.001, "", NULL},
        {"NO_RELAYS", -0.001, "", NULL},
        {"TVD_SPACE_RATIO", 0, "BODY: ", NULL},
    };
    v.spam = true;
    v.score = 1002.698;
    v.tests = spam_tests;
    v.ntests = 6;
    expect(&v, "Status", status_tmpl, true,
           "Yes, score=1002.7 required=5.0 tests=GTUBE,MISSING_DATE,\n\tMSGID_SHORT,"
           "NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO autolearn=disabled\n\tversion=4.0.1");
    expect(&v, "Flag", "_YESNOCAPS_", true, "YES");
    expect(&v, "Level", "_STARS(*)_", true, "**************************************************");
    expect(&v, "T", "_TESTSSCORES(;)_", true,
           "GTUBE=1000;MISSING_DATE=2.7;MSGID_SHORT=0;NO_RECEIVED=-0.001;NO_RELAYS=-0.001;"
           "TVD_SPACE_RATIO=0");
    expect(&v, "R", "_SUMMARY_", true,
           "1000 GTUBE                  BODY: Generic Test for Unsolicited Bulk Email\n"
           "\t2.7 MISSING_DATE           Missing Date: header\n"
           "\t0.0 MSGID_SHORT            No description available.\n"
           "\t-0.0 NO_RECEIVED            No description available.\n"
           "\t-0.0 NO_RELAYS              No description available.\n"
           "\t0.0 TVD_SPACE_RATIO        BODY: No description available.");
    expect(&v, "Report", "_REPORT_", true,
           "\n\t* 1000 GTUBE BODY: Generic Test for Unsolicited Bulk Email\n"
           "\t*  2.7 MISSING_DATE Missing Date: header\n"
           "\t*  0.0 MSGID_SHORT No description available.\n"
           "\t* -0.0 NO_RECEIVED No description available.\n"
           "\t* -0.0 NO_RELAYS No description available.\n"
           "\t*  0.0 TVD_SPACE_RATIO BODY: No description available.");
}

static void test_tags(void **state)
{
    (void)state;
    struct sa_tags v = ham();
    v.score = 7.25;
    const char *subs[] = {"__A", "__A", "__B"};
    v.subtests = subs;
    v.nsubtests = 3;
    expect(&v, "X", "_YESNO(spam,ham)_ _YESNO(s)_ _YESNO()_ _YESNOCAPS(a,b)_", true,
           "ham No No B");
    /* a ham at or over the threshold shows 0.1 below it */
    expect(&v, "X", "_SCORE_ _HITS_ _SCORE(00)_ _SCORE(  )_ _REQD_", true, "4.9 4.9 004.9   4.9 5.0");
    v.spam = true;
    expect(&v, "X", "_SCORE(0)_ _SCORE(000)_ _STARS(xy)_ _STARS(0)_", true,
           "07.2 0007.2 xyxyxyxyxyxyxy *******");
    expect(&v, "X", "_TESTS( )_ _TESTS()_ _SUBTESTS_ _SUBTESTSCOLLAPSED(+)_", true,
           "MSGID_SHORT NO_RECEIVED NO_RELAYS MSGID_SHORT,NO_RECEIVED,NO_RELAYS\n"
           "\t__A,__A,__B __A+__B");
    /* unknown tags stay, the declared ones without value are empty */
    expect(&v, "X", "_PREVIEW_ _ADDEDHEADER_ a_LANGUAGES_b _AWL_ _BAYES_ _lower_ __ _A_B_ _DATE_",
           true, "_PREVIEW_ _ADDEDHEADER_ ab  0.5 _lower_ __ _A_B_ _DATE_");
    v.ntests = 0;
    v.nsubtests = 0;
    expect(&v, "X", "_TESTS_ _TESTSSCORES_ _SUMMARY_|_SUBTESTS_", true, "none none |none");
    expect(&v, "X", "_CONTACTADDRESS_", true, "the administrator of that system");
}

static void test_folding(void **state)
{
    (void)state;
    struct sa_tags v = ham();
    /* the template's own line breaks: continuation lines, no wrapping */
    expect(&v, "X", "a\n b  \n\n  c\n", true, "a\n\tb\n\tc");
    expect(&v, "X", "a\nb", false, "a b");
    char longv[200];
    memset(longv, 'x', 150);
    longv[150] = '\0';
    expect(&v, "X", longv, true, longv);
    /* octets outside printable ASCII: RFC 2047, the plain words kept */
    expect(&v, "X", "caf\xc3\xa9 ok", true, "=?UTF-8?Q?caf=C3=A9?= ok");
    expect(&v, "X", "\xff\xfe\xfd\xfc", true, "=?UTF-8?B?//79/A==?=");
    char *w = sa_wrap("aaa bbb ccc", 11, "  ", "", 7, false, false);
    assert_string_equal(w, "aaa bbb\n   ccc"); /* Perl's: the blank stays */
    free(w);
}

static void test_settings(void **state)
{
    (void)state;
    struct sa_hdrconf *c = sa_hdrconf_new();
    assert_non_null(c);
    char why[160];
#define SET(k, v) sa_hdrconf_setting(c, k, v, strlen(v), why, sizeof(why))
    assert_int_equal(SET("add_header", "all Checker-Version SA"), SA_HDRCONF_OK);
    assert_int_equal(SET("add_header", "spam Flag _YESNOCAPS_"), SA_HDRCONF_OK);
    assert_int_equal(SET("add_header", "all Status \"a\\tb\\\\n\\x\""), SA_HDRCONF_OK);
    assert_int_equal(c->nham, 2);
    assert_int_equal(c->nspam, 3);
    assert_string_equal(c->spam[2].template, "a\tb\\n");
    /* a field added again goes last, case-insensitive */
    assert_int_equal(SET("add_header", "spam flag x"), SA_HDRCONF_OK);
    assert_string_equal(c->spam[2].name, "flag");
    assert_int_equal(SET("remove_header", "all Status"), SA_HDRCONF_OK);
    assert_int_equal(SET("remove_header", "all Checker-Version"), SA_HDRCONF_OK);
    assert_int_equal(c->nham, 1);
    assert_int_equal(c->nspam, 2);
    assert_int_equal(SET("clear_headers", ""), SA_HDRCONF_OK);
    assert_int_equal(c->nham, 1);
    assert_int_equal(c->nspam, 1);
    assert_string_equal(c->spam[0].name, "Checker-Version");
    assert_int_equal(SET("add_header", "both X y"), SA_HDRCONF_BAD);
    assert_int_equal(SET("add_header", "all X"), SA_HDRCONF_BAD);
    assert_int_equal(SET("add_header", "all X/Y z"), SA_HDRCONF_BAD);
    assert_int_equal(SET("clear_headers", "x"), SA_HDRCONF_BAD);
    assert_int_equal(SET("report", "\"one\""), SA_HDRCONF_OK);
    assert_int_equal(SET("report", ""), SA_HDRCONF_OK);
    assert_string_equal(c->report, "one\n\n");
    assert_int_equal(SET("clear_report_template", ""), SA_HDRCONF_OK);
    assert_string_equal(c->report, "");
    assert_int_equal(SET("required_score", "8.5"), SA_HDRCONF_OK);
    assert_true(c->required_set);
    assert_true(c->required == 8.5);
    assert_int_equal(SET("required_hits", "x"), SA_HDRCONF_BAD);
    assert_int_equal(SET("fold_headers", "no"), SA_HDRCONF_OK);
    assert_false(c->fold);
    assert_int_equal(SET("report_contact", "me"), SA_HDRCONF_OK);
    assert_string_equal(c->contact, "me");
    assert_int_equal(SET("score", "X 1"), SA_HDRCONF_NOT_MINE);
#undef SET
    sa_hdrconf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_folding),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
