/*
 * Unit tests for SpamAssassin's eval tests run natively (sa_eval*.c): .cf
 * lines as SpamAssassin's own files write them, loaded with rules_load_sa
 * and run over messages written for each function: a missing To,
 * distinct header counts, illegal octets (ratio, count, the Subject
 * exemption, valid UTF-8), Outlook's Message-ID time token against Date and
 * Received, the Date against the Received dates (past and future windows,
 * 'undef' bounds, no Received, Resent-Date first); the charset tests that
 * never hit with ok_locales "all"; bad arguments skipped with their reason;
 * the body's length as received; the blank-line share and vertical words
 * of the body; the implemented functions reported apart
 * from the missing ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules/rules.h"
#include "rules/rules_int.h"

static char dir[] = "/tmp/test_sa_evalfn.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

static void test_header_evals(void **state)
{
    (void)state;
    write_file("20_h.cf",
               "header MISSING_HEADERS eval:check_for_missing_to_header()\n"
               "header HEADER_COUNT_SUBJECT eval:check_header_count_range('Subject','2','999')\n"
               "header ONE_RCVD eval:check_header_count_range('Received', 1, 1)\n"
               "header FROM_ILLEGAL_CHARS eval:check_illegal_chars('From','0.20','2')\n"
               "header __SUBJ_ILLEGAL_CHARS eval:check_illegal_chars('Subject','0.00','2')\n"
               "header SUBJ_ILLEGAL_ONE eval:check_illegal_chars('Subject:raw','0.00','1')\n"
               "header __HEAD_ILLEGAL_CHARS eval:check_illegal_chars('ALL','0.010','2')\n"
               "header CHARSET_FARAWAY_HEADER eval:check_for_faraway_charset_in_headers()\n"
               "body CHARSET_FARAWAY eval:check_for_faraway_charset()\n"
               "header BAD_ARGS eval:check_header_count_range('Subject', 'two', '3')\n"
               "header FEW_ARGS eval:check_illegal_chars('From')\n"
               "header BAD_SYNTAX eval:check_header_count_range(Subject two)\n"
               "header EXTRA_ARGS eval:check_for_missing_to_header('x')\n");
    struct loaded l = load(NULL, false);
    assert_int_equal(
        skipped(&l.rep, "eval check_header_count_range: argument 2 (two) is not a number"), 1);
    assert_int_equal(skipped(&l.rep, "eval check_illegal_chars takes 3 arguments, not 1"), 1);
    assert_int_equal(
        skipped(&l.rep, "eval check_header_count_range: syntax error in its arguments"), 1);
    assert_int_equal(skipped(&l.rep, "eval check_for_missing_to_header takes 0 arguments, not 1"),
                     1);
    assert_int_equal(l.rep.loaded, 9);
    bool named = false;
    for (size_t i = 0; i < l.rep.nevals_done; i++)
        named |= strcmp(l.rep.evals_done[i].what, "check_illegal_chars") == 0 &&
                 l.rep.evals_done[i].count == 5; /* FEW_ARGS too */
    assert_true(named);
    for (size_t i = 0; i < l.rep.nevals; i++)
        fail_msg("reported as missing: %s", l.rep.evals[i].what);

    expect_hits(l.r,
                "Received: from a.example by b.example; Mon, 07 Dec 2026 10:00:00 +0000\r\n"
                "From: \"\xe9\xe8\xe0\xe9\xe8\xe0\" <x@e.org>\r\n"
                "Subject: one\r\nSubject: two\r\n\r\nbody\r\n",
                WANT("MISSING_HEADERS", "HEADER_COUNT_SUBJECT", "ONE_RCVD", "FROM_ILLEGAL_CHARS",
                     "__HEAD_ILLEGAL_CHARS"),
                WANT("__SUBJ_ILLEGAL_CHARS", "CHARSET_FARAWAY_HEADER", "CHARSET_FARAWAY"));
    /* Apparently-To stands for To; two equal Subjects count once; valid UTF-8 is legal */
    expect_hits(l.r,
                "Apparently-To: bob@example.net\r\n"
                "From: \"\xc3\xa9\xc3\xa8\xc3\xa0\" <x@example.org>\r\n"
                "Subject: same\r\nSubject: same\r\n\r\nbody\r\n",
                NONE,
                WANT("MISSING_HEADERS", "HEADER_COUNT_SUBJECT", "ONE_RCVD", "FROM_ILLEGAL_CHARS",
                     "__HEAD_ILLEGAL_CHARS"));
    /* one pound sign is exempt in a Subject, two are not; a control makes UTF-8 illegal */
    expect_hits(l.r, "To: b@example.net\r\nSubject: \xa3 5 only\r\n\r\nbody\r\n", NONE,
                WANT("SUBJ_ILLEGAL_ONE", "__SUBJ_ILLEGAL_CHARS", "MISSING_HEADERS"));
    expect_hits(l.r, "To: b@example.net\r\nSubject: \xa3\xa3 five\r\n\r\nbody\r\n",
                WANT("SUBJ_ILLEGAL_ONE", "__SUBJ_ILLEGAL_CHARS"), NONE);
    expect_hits(l.r, "To: b@example.net\r\nSubject: \xc3\xa9\x01\r\n\r\nbody\r\n",
                WANT("__SUBJ_ILLEGAL_CHARS"), NONE);
    unload(&l);
    unlink(write_file("20_h.cf", ""));
}

static void test_msgid_outlook(void **state)
{
    (void)state;
    write_file("20_o.cf", "header MSGID_OUTLOOK_INVALID eval:check_outlook_message_id()\n");
    struct loaded l = load(NULL, false);
    /* the token of 07 Dec 2026 10:00:00 UTC: int(1796637600 * x + y) = 0x01dd8631 */
    expect_hits(l.r,
                "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
                "Message-ID: <000001dd8631$01234567$89abcdef@example.org>\r\n\r\nbody\r\n",
                NONE, WANT("MSGID_OUTLOOK_INVALID"));
    expect_hits(l.r,
                "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
                "Message-ID: <00001234abcd$01234567$89abcdef@example.org>\r\n\r\nbody\r\n",
                WANT("MSGID_OUTLOOK_INVALID"), NONE);
    /* a Date far off, but the Received date fits the token */
    expect_hits(l.r,
                "Received: from a by b; Mon, 07 Dec 2026 10:00:00 +0000\r\n"
                "Date: Mon, 07 Dec 2020 10:00:00 +0000\r\n"
                "Message-ID: <000001dd8631$01234567$89abcdef@example.org>\r\n\r\nbody\r\n",
                NONE, WANT("MSGID_OUTLOOK_INVALID"));
    /* not Outlook's shape: no hit */
    expect_hits(l.r, "Message-ID: <00001234abcd.01234567@example.org>\r\n\r\nbody\r\n", NONE,
                WANT("MSGID_OUTLOOK_INVALID"));
    unload(&l);
    unlink(write_file("20_o.cf", ""));
}

static void test_shifted_date(void **state)
{
    (void)state;
    write_file("20_d.cf", "header DATE_IN_PAST_03_06 eval:check_for_shifted_date('-6', '-3')\n"
                          "header DATE_IN_PAST_96_XX eval:check_for_shifted_date('undef', '-96')\n"
                          "header DATE_IN_FUTURE_03_06 eval:check_for_shifted_date('3', '6')\n"
                          "header DATE_IN_FUTURE_12_24 eval:check_for_shifted_date('12', '24')\n"
                          "header NO_SHIFT eval:check_for_shifted_date('-1', '1')\n");
    struct loaded l = load(NULL, false);
    const char *rcvd = "Received: from a by b; Mon, 07 Dec 2026 10:00:00 +0000\r\n"
                       "Received: from c by a; Mon, 07 Dec 2026 09:59:00 +0000\r\n";
    char msg[1024];
    snprintf(msg, sizeof(msg), "%sDate: Mon, 07 Dec 2026 05:00:00 +0000\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, WANT("DATE_IN_PAST_03_06"), WANT("NO_SHIFT", "DATE_IN_FUTURE_03_06"));
    snprintf(msg, sizeof(msg), "%sDate: Mon, 07 Dec 2026 14:00:00 +0100\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, WANT("DATE_IN_FUTURE_03_06"), WANT("NO_SHIFT", "DATE_IN_PAST_03_06"));
    snprintf(msg, sizeof(msg), "%sDate: Mon, 01 Dec 2026 10:00:00 +0000\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, WANT("DATE_IN_PAST_96_XX"), WANT("NO_SHIFT"));
    /* the smallest difference wins: the older hop is 1 minute closer */
    snprintf(msg, sizeof(msg), "%sDate: Mon, 07 Dec 2026 09:59:30 +0000\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, WANT("NO_SHIFT"), WANT("DATE_IN_PAST_03_06"));
    /* Resent-Date first; no Received, or no Date: no difference */
    snprintf(msg, sizeof(msg),
             "%sResent-Date: Tue, 08 Dec 2026 00:00:00 +0000\r\n"
             "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\nx\r\n",
             rcvd);
    expect_hits(l.r, msg, WANT("DATE_IN_FUTURE_12_24"), WANT("NO_SHIFT"));
    expect_hits(l.r, "Date: Mon, 01 Dec 2000 10:00:00 +0000\r\n\r\nx\r\n", WANT("NO_SHIFT"),
                WANT("DATE_IN_PAST_96_XX"));
    snprintf(msg, sizeof(msg), "%sDate: garbage\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, WANT("NO_SHIFT"), WANT("DATE_IN_PAST_96_XX"));
    unload(&l);
    unlink(write_file("20_d.cf", ""));
}

/* The twelve DATE_IN_* rules share one reading of the dates per message: the
 * first eval fills the memo, the others (and a second evaluation) take it, and
 * a header added forgets it. */
static const char *eval_hits(struct rules *r, struct rules_msg *m)
{
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_non_null(o);
    static char buf[1024];
    size_t n = 0;
    buf[n++] = ' ';
    for (size_t i = 0; i < o->nhits; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s ", o->hits[i].rule);
    buf[n] = '\0';
    rules_tx_free(tx);
    return buf;
}

static void test_shifted_date_memo(void **state)
{
    (void)state;
    write_file("20_d.cf", "header DATE_IN_PAST_03_06 eval:check_for_shifted_date('-6', '-3')\n"
                          "header DATE_IN_FUTURE_03_06 eval:check_for_shifted_date('3', '6')\n"
                          "header NO_SHIFT eval:check_for_shifted_date('-1', '1')\n");
    struct loaded l = load(NULL, false);
    const char *msg = "Received: from a by b; Mon, 07 Dec 2026 10:00:00 +0000\r\n"
                      "Received: from c by a; Mon, 07 Dec 2026 09:59:00 +0000\r\n"
                      "Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n\r\nx\r\n";
    struct rules_msg *m = rules_msg_parse(msg, strlen(msg));
    assert_non_null(m);
    struct rules_msg_date_memo *memo = rules_msg_date_memo(m);
    assert_int_equal(memo->state, 0);
    const char *h = eval_hits(l.r, m);
    assert_true(has(h, "DATE_IN_PAST_03_06") && !has(h, "NO_SHIFT"));
    /* the smallest difference: 05:00 against 09:59 */
    assert_int_equal(memo->state, 1);
    assert_int_equal(memo->diff, -(4 * 3600 + 59 * 60));
    /* the same result again, from the memo */
    h = eval_hits(l.r, m);
    assert_true(has(h, "DATE_IN_PAST_03_06") && !has(h, "NO_SHIFT") &&
                !has(h, "DATE_IN_FUTURE_03_06"));
    /* every rule reads the memo: changed, they all follow it */
    memo->diff = 4 * 3600;
    h = eval_hits(l.r, m);
    assert_true(has(h, "DATE_IN_FUTURE_03_06") && !has(h, "DATE_IN_PAST_03_06") &&
                !has(h, "NO_SHIFT"));
    /* a header added: worked out again from the fields */
    assert_int_equal(rules_msg_add_header(m, "X-Note", " y", 2), 0);
    assert_int_equal(memo->state, 0);
    h = eval_hits(l.r, m);
    assert_true(has(h, "DATE_IN_PAST_03_06"));
    assert_int_equal(memo->diff, -(4 * 3600 + 59 * 60));
    rules_msg_free(m);
    unload(&l);
    unlink(write_file("20_d.cf", ""));
}

static void test_subject_and_forged(void **state)
{
    (void)state;
    write_file("20_f.cf",
               "header SUBJ_ALL_CAPS eval:subject_is_all_caps()\n"
               "header LOCALPART_IN_SUBJECT eval:check_for_to_in_subject('user')\n"
               "header ADDR_IN_SUBJECT eval:check_for_to_in_subject('address')\n"
               "header UNRESOLVED_TEMPLATE eval:check_unresolved_template()\n"
               "header FORGED_GMAIL_RCVD eval:check_for_forged_gmail_received_headers()\n"
               "header GATED eval:gated_through_received_hdr_remover()\n"
               "header RATWARE_ID eval:check_ratware_name_id()\n");
    struct loaded l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 7);
    const char *rcvd = "Received: from a.example by b.example; Mon, 07 Dec 2026 10:00:00 +0000\r\n";
    char msg[2048];
    snprintf(msg, sizeof(msg),
             "%sFrom: \"Al\" <al@gmail.com>\r\nTo: Bob <bob@example.net>\r\n"
             "Subject: Re: BOB: SEE BOB@EXAMPLE.NET NOW\r\nX-Mailer: %%FOO_BAR\r\n"
             "Message-ID: <ABCDEFGHIJKLMNOPQRSTUVWXYZAB.al@gmail.com>\r\n\r\nx\r\n",
             rcvd);
    expect_hits(l.r, msg,
                WANT("SUBJ_ALL_CAPS", "ADDR_IN_SUBJECT", "UNRESOLVED_TEMPLATE", "FORGED_GMAIL_RCVD",
                     "RATWARE_ID"),
                WANT("GATED", "LOCALPART_IN_SUBJECT"));
    /* "bob:" at the start is the local part (case kept); a % in the Subject is not a
     * template; Google's X-Received makes Gmail real; no Received: gated */
    expect_hits(l.r,
                "From: al@gmail.com\r\nTo: bob@example.net\r\nSubject: bob: 100%OFF today\r\n"
                "X-Received: by 10.0.0.1 with SMTP id x1\r\n"
                "Message-ID: <ABCDEFGHIJKLMNOPQRSTUVWXYZA.al@gmail.com>\r\n\r\nx\r\n",
                WANT("LOCALPART_IN_SUBJECT", "GATED"),
                WANT("SUBJ_ALL_CAPS", "UNRESOLVED_TEMPLATE", "FORGED_GMAIL_RCVD", "RATWARE_ID",
                     "ADDR_IN_SUBJECT"));
    /* short, one word, or a charset that has no lower case: not all caps */
    snprintf(msg, sizeof(msg), "%sSubject: HELLO YOU\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, NONE, WANT("SUBJ_ALL_CAPS"));
    snprintf(msg, sizeof(msg), "%sSubject: ANNOUNCEMENTS\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, NONE, WANT("SUBJ_ALL_CAPS"));
    snprintf(msg, sizeof(msg), "%sSubject: =?koi8-r?Q?HELLO_THERE?= FRIEND\r\n\r\nx\r\n", rcvd);
    expect_hits(l.r, msg, NONE, WANT("SUBJ_ALL_CAPS"));
    /* ezmlm's traces gate the message */
    snprintf(msg, sizeof(msg),
             "Mailing-List: contact list-help@example.org; run by ezmlm\r\n"
             "Delivered-To: mailing list list@example.org\r\n"
             "Received: (qmail 4711 invoked from network); 7 Dec 2026 10:00:00 -0000\r\n"
             "Subject: x\r\n\r\nx\r\n");
    expect_hits(l.r, msg, WANT("GATED"), NONE);
    unload(&l);
    unlink(write_file("20_f.cf", ""));
}

static void test_body_length(void **state)
{
    (void)state;
    write_file("20_b.cf", "body LT_10 eval:check_body_length('10')\n"
                          "body LT_5 eval:check_body_length('5')\n");
    struct loaded l = load(NULL, false);
    /* the octets after the empty line, CRLF counted: "123456\r\n" is 8 */
    expect_hits(l.r, "Subject: x\r\n\r\n123456\r\n", WANT("LT_10"), WANT("LT_5"));
    expect_hits(l.r, "Subject: x\r\n\r\n12\r\n", WANT("LT_10", "LT_5"), NONE);
    expect_hits(l.r, "Subject: x\r\n\r\n1234567890\r\n", NONE, WANT("LT_10", "LT_5"));
    /* a bare LF header end counts too */
    expect_hits(l.r, "Subject: x\n\n123\n", WANT("LT_10", "LT_5"), NONE);
    unload(&l);
    unlink(write_file("20_b.cf", ""));
}

/* From's second-level domain against the EnvelopeFrom's (a saved message:
 * the Return-Path's address): a difference hits, case does not count, a
 * missing side never hits. */
static void test_equal_from_domains(void **state)
{
    (void)state;
    write_file("20_d.cf", "header DIFF_DOMAINS eval:check_equal_from_domains()\n");
    struct loaded l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 1);
    expect_hits(l.r, "Return-Path: <a@mail.example.com>\r\nFrom: b@EXAMPLE.com\r\n\r\nx\r\n", NONE,
                WANT("DIFF_DOMAINS"));
    expect_hits(l.r, "Return-Path: <a@out.mx.example.com>\r\nFrom: b@news.Example.COM\r\n\r\nx\r\n",
                NONE, WANT("DIFF_DOMAINS"));
    expect_hits(l.r,
                "Return-Path: <bounce@lists.example.org>\r\nFrom: Bob <b@example.com>\r\n\r\nx\r\n",
                WANT("DIFF_DOMAINS"), NONE);
    /* only the last two labels: co.uk sites all look alike */
    expect_hits(l.r, "Return-Path: <a@one.co.uk>\r\nFrom: b@two.co.uk\r\n\r\nx\r\n", NONE,
                WANT("DIFF_DOMAINS"));
    /* no envelope, the null sender, or a From without a domain: no test */
    expect_hits(l.r, "From: b@example.com\r\n\r\nx\r\n", NONE, WANT("DIFF_DOMAINS"));
    expect_hits(l.r, "Return-Path: <>\r\nFrom: b@example.com\r\n\r\nx\r\n", NONE,
                WANT("DIFF_DOMAINS"));
    expect_hits(l.r, "Return-Path: <a@example.org>\r\nFrom: undisclosed\r\n\r\nx\r\n", NONE,
                WANT("DIFF_DOMAINS"));
    /* a one-label domain is kept whole */
    expect_hits(l.r, "Return-Path: <a@localhost>\r\nFrom: b@example.com\r\n\r\nx\r\n",
                WANT("DIFF_DOMAINS"), NONE);
    unload(&l);
    unlink(write_file("20_d.cf", ""));
}

/* BodyEval's blank-line share over the decoded text: 2 of 4 lines blank
 * is 50; a whitespace-only line is blank; fewer lines than MINLINES is -1
 * (which only a MIN of 0 takes); MIN is exclusive, MAX inclusive. */
static void test_blank_line_ratio(void **state)
{
    (void)state;
    write_file("20_bl.cf", "body BL_40_50 eval:check_blank_line_ratio('40','50','4')\n"
                           "body BL_50_60 eval:check_blank_line_ratio('50','60','4')\n"
                           "body BL_0_10 eval:check_blank_line_ratio('0','10','4')\n"
                           "body BL_0_10_1 eval:check_blank_line_ratio('0','10')\n");
    struct loaded l = load(NULL, false);
    expect_hits(l.r, "Subject: x\n\na\n\nb\n \t\n", WANT("BL_40_50"),
                WANT("BL_50_60", "BL_0_10", "BL_0_10_1"));
    /* 3 lines under MINLINES 4: -1, within 0..10 only where MIN is 0 */
    expect_hits(l.r, "Subject: x\n\na\nb\nc\n", WANT("BL_0_10", "BL_0_10_1"),
                WANT("BL_40_50", "BL_50_60"));
    /* 3 of 8 blank: 37.5, in no range */
    expect_hits(l.r, "Subject: x\n\na\nb\nc\n\n\nd\ne\n\n", NONE,
                WANT("BL_40_50", "BL_50_60", "BL_0_10", "BL_0_10_1"));
    unload(&l);
    unlink(write_file("20_bl.cf", ""));
}

/* BodyEval's vertical words: the highest spaces-to-rest share of a
 * rendered element over 5 octets long (the Subject is one). */
static void test_vertical_words(void **state)
{
    (void)state;
    write_file("20_tv.cf", "body TV_LOW eval:tvd_vertical_words('0','10')\n"
                           "body TV_HIGH eval:tvd_vertical_words('100','100')\n");
    struct loaded l = load(NULL, false);
    expect_hits(l.r, "Subject: abcdefghijkl\n\nabcdefghijklmnopqrstuvwxyz\n", WANT("TV_LOW"),
                WANT("TV_HIGH"));
    expect_hits(l.r, "Subject: x\n\nF R E E  M O N E Y\n", WANT("TV_HIGH"), WANT("TV_LOW"));
    /* only short elements: -1, below both */
    expect_hits(l.r, "Subject: x\n\nab\n", NONE, WANT("TV_LOW", "TV_HIGH"));
    unload(&l);
    unlink(write_file("20_tv.cf", ""));
}

/* A meta that uses an eval rule whose function smtpgate lacks is skipped
 * (SpamAssassin would run that rule), and so is a meta using that meta;
 * one using only rules that run is kept. */
static void test_meta_of_lacking_eval(void **state)
{
    (void)state;
    write_file("20_m.cf", "header __LACKING eval:check_razor2()\n"
                          "header __RUNS eval:check_for_missing_to_header()\n"
                          "header __SUBJ Subject =~ /x/\n"
                          "meta M_LACKING __SUBJ && !__LACKING\n"
                          "meta M_OUTER M_LACKING || __SUBJ\n"
                          "meta M_RUNS __SUBJ && __RUNS\n");
    struct loaded l = load(NULL, false);
    assert_int_equal(skipped(&l.rep, "meta: uses an eval test smtpgate lacks"), 2);
    assert_int_equal(skipped(&l.rep, "unknown eval function check_razor2"), 1);
    assert_int_equal(l.rep.loaded, 3);
    expect_hits(l.r, "Subject: x\r\n\r\nbody\r\n", WANT("M_RUNS"), WANT("M_LACKING", "M_OUTER"));
    unload(&l);
    unlink(write_file("20_m.cf", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_evals),         cmocka_unit_test(test_msgid_outlook),
        cmocka_unit_test(test_shifted_date),         cmocka_unit_test(test_shifted_date_memo),
        cmocka_unit_test(test_subject_and_forged),   cmocka_unit_test(test_body_length),
        cmocka_unit_test(test_meta_of_lacking_eval), cmocka_unit_test(test_equal_from_domains),
        cmocka_unit_test(test_blank_line_ratio),     cmocka_unit_test(test_vertical_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
