/*
 * Unit tests for the SpamAssassin eval tests over the rule set's lists:
 * FreeMail's check_freemail_from / _header / _replyto / _body (welcomelists,
 * wildcard domains, RE arguments, the body's addresses with their
 * substitutions and limits, bulk envelope senders); WLBLEval's welcomelist,
 * blocklist, more_spam_to, all_spam_to, named lists and URI host lists;
 * HeaderEval's envelope and recipient tests.  Each .cf and message is
 * written for the test; a message's EnvelopeFrom is its Return-Path.
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

static char dir[] = "/tmp/test_sa_listevals.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

/* a message of the given header lines (each ending with \r\n) and body */
static char *mk(const char *hdrs, const char *body)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), "%sSubject: hello\r\nMessage-ID: <1@x.example>\r\n\r\n%s\r\n",
             hdrs, body);
    return buf;
}

static const char freemail_cf[] =
    "freemail_domains gmail.com yahoo.com *.freemail.example\n"
    "freemail_welcomelist vip@gmail.com\n"
    "util_rb_tld com example org net\n"
    "header FM_FROM eval:check_freemail_from()\n"
    "header FM_FROM_DIGIT eval:check_freemail_from('\\d@')\n"
    "header FM_RT eval:check_freemail_header('Reply-To')\n"
    "header FM_RT_ADDR eval:check_freemail_header('Reply-To:addr')\n"
    "header FM_ENV_DIGIT eval:check_freemail_header('EnvelopeFrom', '\\d@')\n"
    "header FM_REPLYTO eval:check_freemail_replyto('replyto')\n"
    "header FM_REPLY eval:check_freemail_replyto('reply')\n"
    "header FM_BODY eval:check_freemail_body()\n"
    "header FM_BODY_BOB eval:check_freemail_body('^bob')\n"
    "header FM_BADOPT eval:check_freemail_replyto('nonsense')\n"
    "header FM_BADRE eval:check_freemail_from('(')\n";

static void test_freemail(void **state)
{
    (void)state;
    write_file("20_fm.cf", freemail_cf);
    struct loaded l = load(NULL, false);
    /* From and Reply-To different freemails */
    const char *h = hits(l.r,
                         mk("Return-Path: <joe1@gmail.com>\r\nFrom: Joe <joe1@gmail.com>\r\n"
                            "Reply-To: ann@Yahoo.com\r\nTo: me@here.example\r\n",
                            "hi"),
                         NULL);
    assert_string_equal(h, " FM_FROM FM_FROM_DIGIT FM_RT FM_RT_ADDR FM_ENV_DIGIT FM_REPLYTO "
                           "FM_REPLY ");
    /* a welcomelisted From; a freemail in the body */
    h = hits(l.r, mk("From: vip@gmail.com\r\nTo: me@here.example\r\n", "write to bob@yahoo.com"),
             NULL);
    assert_string_equal(h, " FM_BODY FM_BODY_BOB ");
    /* a wildcard domain in From, another freemail in the body: reply */
    h = hits(l.r,
             mk("From: joe@x.freemail.example\r\nTo: me@here.example\r\n",
                "or to ann@yahoo.com or joe@x.freemail.example"),
             NULL);
    assert_string_equal(h, " FM_FROM FM_REPLY FM_BODY ");
    /* a wildcard stays within its label */
    h = hits(l.r, mk("From: joe@a.b.freemail.example\r\n", "hi"), NULL);
    assert_string_equal(h, " ");
    /* five addresses in the body: over freemail_max_body_emails */
    h = hits(l.r,
             mk("From: joe@gmail.com\r\n",
                "a@yahoo.com b@x.example c@y.example d@z.example e@w.example"),
             NULL);
    assert_string_equal(h, " FM_FROM ");
    /* three freemails: over freemail_max_body_freemails */
    h = hits(l.r, mk("From: joe@gmail.com\r\n", "a@yahoo.com b@yahoo.com c@yahoo.com"), NULL);
    assert_string_equal(h, " FM_FROM ");
    /* a bulk envelope sender: no reply test */
    h = hits(l.r,
             mk("Return-Path: <bounce-12@list.example>\r\nFrom: joe@gmail.com\r\n"
                "Reply-To: ann@yahoo.com\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " FM_FROM FM_RT FM_RT_ADDR ");
    /* an address followed by "word:" and one inside an http URL are not taken */
    h = hits(l.r,
             mk("From: joe@gmail.com\r\n",
                "bob@yahoo.com wrote:\r\nsee http://x.example/?u=ann@yahoo.com"),
             NULL);
    assert_string_equal(h, " FM_FROM ");
    /* ... but "tel:" does not hide it */
    h = hits(l.r, mk("From: joe@gmail.com\r\n", "bob@yahoo.com tel: 123"), NULL);
    assert_string_equal(h, " FM_FROM FM_REPLY FM_BODY FM_BODY_BOB ");
    /* the same address in From and Reply-To, none in the body */
    h = hits(l.r, mk("From: joe@gmail.com\r\nReply-To: JOE@gmail.com\r\n", "hi"), NULL);
    assert_string_equal(h, " FM_FROM FM_RT FM_RT_ADDR ");
    /* FreeMail's own welcomelist */
    h = hits(l.r, mk("From: support@gmail.com\r\n", "hi"), NULL);
    assert_false(has(h, "FM_FROM"));
    unload(&l);
}

static void test_freemail_off(void **state)
{
    (void)state;
    /* no freemail_domains: the plugin is off, nothing hits */
    write_file("20_fm.cf", "header FM_FROM eval:check_freemail_from()\n"
                           "header FM_BODY eval:check_freemail_body()\n");
    struct loaded l = load(NULL, false);
    assert_string_equal(hits(l.r, mk("From: joe@gmail.com\r\n", "a@yahoo.com"), NULL), " ");
    unload(&l);
    write_file("20_fm.cf", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freemail),
        cmocka_unit_test(test_freemail_off),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
