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
    snprintf(buf, sizeof(buf), "%sSubject: hello\r\nMessage-ID: <1@x.example>\r\n\r\n%s\r\n", hdrs,
             body);
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

static const char wlbl_cf[] =
    "util_rb_tld com example org net\n"
    "welcomelist_from friend@example.org *@trusted.example.com\n"
    "blocklist_from *@spammer.example.com\n"
    "welcomelist_to me@here.example\n"
    "more_spam_to more@here.example\n"
    "all_spam_to all@here.example\n"
    "blocklist_to *@blocked.example\n"
    "enlist_addrlist (BANKS) *@bank.example.com service@pay.example.com\n"
    "enlist_uri_host (BADHOSTS) !good.bad.example.com bad.example.com 192.0.2.7\n"
    "blocklist_uri_host evil.example.net\n"
    "welcomelist_uri_host nice.example.org\n"
    "header WL_FROM eval:check_from_in_welcomelist()\n"
    "header WL_FROM_OLD eval:check_from_in_whitelist()\n"
    "header BL_FROM eval:check_from_in_blocklist()\n"
    "header WL_TO eval:check_to_in_welcomelist()\n"
    "header BL_TO eval:check_to_in_blocklist()\n"
    "header MORE_SPAM eval:check_to_in_more_spam()\n"
    "header ALL_SPAM eval:check_to_in_all_spam()\n"
    "header FROM_BANKS eval:check_from_in_list('BANKS')\n"
    "header TO_BANKS eval:check_to_in_list('BANKS')\n"
    "header RT_BANKS eval:check_replyto_in_list('BANKS')\n"
    "header FROM_NOLIST eval:check_from_in_list('NOSUCHLIST')\n"
    "header URI_BAD eval:check_uri_host_listed('BADHOSTS')\n"
    "body URI_BL eval:check_uri_host_in_blocklist()\n"
    "body URI_WL eval:check_uri_host_in_welcomelist()\n";

static void test_wlbl(void **state)
{
    (void)state;
    write_file("20_fm.cf", "");
    write_file("30_wlbl.cf", wlbl_cf);
    struct loaded l = load(NULL, false);
    const char *h =
        hits(l.r, mk("From: Friend <FRIEND@example.org>\r\nTo: me@here.example\r\n", "hi"), NULL);
    assert_string_equal(h, " WL_FROM WL_FROM_OLD WL_TO ");
    /* the EnvelopeFrom is among the From addresses */
    h = hits(l.r,
             mk("Return-Path: <x@trusted.example.com>\r\nFrom: a@b.example\r\n"
                "Cc: more@here.example\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " WL_FROM WL_FROM_OLD MORE_SPAM ");
    /* Resent-From, when there, is the only From */
    h = hits(l.r,
             mk("Resent-From: x@spammer.example.com\r\nFrom: friend@example.org\r\n"
                "To: all@here.example, z@blocked.example\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " BL_FROM BL_TO ALL_SPAM ");
    /* a recipient in a Received field's for clause */
    h = hits(
        l.r,
        mk("Received: from a by b with SMTP id 1\r\n\tfor <me@here.example>; Mon, 7 Dec 2026\r\n"
           "From: a@b.example\r\nTo: other@x.example\r\n",
           "hi"),
        NULL);
    assert_string_equal(h, " WL_TO ");
    /* named lists; an unknown list never hits */
    h = hits(l.r,
             mk("From: s@bank.example.com\r\nTo: service@pay.example.com\r\n"
                "Reply-To: x@y.example, service@pay.example.com\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " FROM_BANKS TO_BANKS ");
    h = hits(l.r, mk("From: a@b.example\r\nReply-To: service@PAY.example.com\r\n", "hi"), NULL);
    assert_string_equal(h, " RT_BANKS ");
    /* URI hosts: the most specific entry decides; TLDs must be valid */
    h = hits(l.r, mk("From: a@b.example\r\n", "see http://www.bad.example.com/x"), NULL);
    assert_string_equal(h, " URI_BAD ");
    h = hits(l.r, mk("From: a@b.example\r\n", "see http://x.good.bad.example.com/x"), NULL);
    assert_string_equal(h, " ");
    h = hits(l.r, mk("From: a@b.example\r\n", "see http://192.0.2.7/x and www.evil.example.net"),
             NULL);
    assert_string_equal(h, " URI_BAD URI_BL ");
    h = hits(l.r, mk("From: a@b.example\r\n", "see https://user@nice.example.org:8080/"), NULL);
    assert_string_equal(h, " URI_WL ");
    /* a mailto: host is not a URI host */
    h = hits(l.r, mk("From: a@b.example\r\n", "write to mailto:x@bad.example.com"), NULL);
    assert_string_equal(h, " ");
    unload(&l);
    write_file("30_wlbl.cf", "");
}

static const char recips_cf[] = "util_rb_tld com example org net uk\n"
                                "util_rb_2tld co.uk\n"
                                "header ENV_EQ eval:check_for_matching_env_and_hdr_from()\n"
                                "header RATWARE eval:check_ratware_envelope_from()\n"
                                "header SORTED eval:sorted_recipients()\n"
                                "header SIMILAR eval:similar_recipients('0.65','undef')\n"
                                "header SIMILAR_LOW eval:similar_recipients('undef','0.1')\n";

static void test_recips(void **state)
{
    (void)state;
    write_file("20_fm.cf", "");
    write_file("40_recips.cf", recips_cf);
    struct loaded l = load(NULL, false);
    /* no EnvelopeFrom and no From: the same */
    /* (fewer than five recipients: a ratio of 0, below SIMILAR_LOW's bound) */
    const char *h = hits(l.r, mk("To: a@b.example\r\n", "hi"), NULL);
    assert_string_equal(h, " ENV_EQ SIMILAR_LOW ");
    h = hits(l.r,
             mk("Return-Path: <Alice@Example.org>\r\nFrom: alice@example.org\r\n"
                "To: bob@x.example.com\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " ENV_EQ SIMILAR_LOW ");
    /* ratware: DOMAIN?USER@ of the To address in the envelope sender */
    h = hits(l.r,
             mk("Return-Path: <mail.example.co.uk-bob@sender.example.net>\r\n"
                "From: x@y.example\r\nTo: bob@mx.example.co.uk\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " RATWARE SIMILAR_LOW ");
    h = hits(l.r,
             mk("Return-Path: <SRS0=ab=example.co.uk=bob@fwd.example.net>\r\n"
                "From: x@y.example\r\nTo: bob@mx.example.co.uk\r\n",
                "hi"),
             NULL);
    assert_false(has(h, "RATWARE"));
    /* seven sorted recipients, alike */
    h = hits(l.r,
             mk("From: x@y.example\r\nTo: aa1@mx.example, aa2@mx.example, aa3@mx.example\r\n"
                "Cc: aa4@mx.example, aa5@mx.example, aa6@mx.example, aa7@mx.example\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " SORTED SIMILAR ");
    /* not sorted; users alike, hosts different */
    h = hits(l.r,
             mk("From: x@y.example\r\nTo: jo7@a1.example, jo2@a2.example, jo3@a3.example\r\n"
                "Cc: jo1@a4.example, jo5@a5.example\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " SIMILAR ");
    /* adjacent repeats count once: fewer than five */
    h = hits(l.r,
             mk("From: x@y.example\r\nTo: a@b.example, A@B.example, c@d.example, e@f.example\r\n"
                "Cc: g@h.example\r\n",
                "hi"),
             NULL);
    assert_string_equal(h, " SIMILAR_LOW ");
    unload(&l);
    write_file("40_recips.cf", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freemail),
        cmocka_unit_test(test_freemail_off),
        cmocka_unit_test(test_wlbl),
        cmocka_unit_test(test_recips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
