/*
 * Unit tests for SpamAssassin's VBounce tests run natively (sa_eval_vbounce):
 * have_any_bounce_relays and check_welcomelist_bounce_relays (and its
 * whitelist name) over welcomelist_bounce_relays, on messages written for
 * the test: a DSN with message/delivery-status and message/rfc822, a text
 * bounce quoting the original Received field, a base64 text part (seen only
 * decoded), a challenge-response message, a virus-scanner bounce, forged
 * backscatter and a normal mail; the word rules of VBounce's two patterns
 * (one blank between hosts, the line end after the last host), continuation
 * lines, case, globs; and the answers without any relay listed.
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

static char dir[] = "/tmp/test_sa_vbounce.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

/* The tests, and metas shaped as VBounce's rule file shapes them. */
static const char rules_cf[] =
    "body VB_ANY eval:have_any_bounce_relays()\n"
    "body __MINE eval:check_welcomelist_bounce_relays()\n"
    "meta VB_MINE __MINE\n"
    "rawbody VB_MINE_OLD eval:check_whitelist_bounce_relays('args', 'ignored')\n"
    "header VB_MINE_HDR eval:check_welcomelist_bounce_relays()\n"
    "header __CR_VERIFY Subject =~ /^Please Verify Your Email Address/\n"
    "meta VB_CHALLENGE __MINE && __CR_VERIFY\n"
    "meta VB_CRBOUNCE !__MINE && __CR_VERIFY\n"
    "header __VIRUS_SUBJ Subject =~ /^Virus detected /i\n"
    "meta VB_VIRUS !__MINE && __VIRUS_SUBJ\n"
    "header __DAEMON From:addr =~ /^mailer-daemon\\@/i\n"
    "meta VB_BOUNCE VB_ANY && !__MINE && __DAEMON\n";

static const char relays_cf[] = "welcomelist_bounce_relays relay.mine.example\n"
                                "whitelist_bounce_relays *.out.mine.example\n";

static struct loaded load_with(bool relays)
{
    write_file("20_vb.cf", rules_cf);
    write_file("30_relays.cf", relays ? relays_cf : "# none\n");
    return load(NULL, false);
}

/* a DSN whose returned message passed the Received hosts given */
static char *dsn(const char *received)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf),
             "Received: from mx.far.example (mx.far.example [198.51.100.7])\r\n"
             "\tby mx.mine.example (Postfix) with ESMTP id 1;\r\n"
             "\tMon, 07 Dec 2026 10:00:00 +0000\r\n"
             "From: Mail Delivery System <MAILER-DAEMON@mx.far.example>\r\n"
             "To: me@mine.example\r\n"
             "Subject: Undelivered Mail Returned to Sender\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status;\r\n"
             "\tboundary=\"B1\"\r\n"
             "\r\n"
             "--B1\r\n"
             "Content-Type: text/plain\r\n"
             "\r\n"
             "Your message could not be delivered.\r\n"
             "\r\n"
             "--B1\r\n"
             "Content-Type: message/delivery-status\r\n"
             "\r\n"
             "Reporting-MTA: dns; mx.far.example\r\n"
             "\r\n"
             "Final-Recipient: rfc822; nobody@far.example\r\n"
             "Action: failed\r\n"
             "Status: 5.1.1\r\n"
             "\r\n"
             "--B1\r\n"
             "Content-Type: message/rfc822\r\n"
             "\r\n"
             "%s"
             "From: me@mine.example\r\n"
             "To: nobody@far.example\r\n"
             "Subject: minutes\r\n"
             "\r\n"
             "the minutes\r\n"
             "\r\n"
             "--B1--\r\n",
             received);
    return buf;
}

/* a mail whose header lines are given, with a text body */
static char *mail(const char *hdrs, const char *body)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf),
             "Received: from mx.far.example (mx.far.example [198.51.100.7])\r\n"
             "\tby mx.mine.example (Postfix) with ESMTP id 2;\r\n"
             "\tMon, 07 Dec 2026 10:00:00 +0000\r\n"
             "%sTo: me@mine.example\r\n\r\n%s",
             hdrs, body);
    return buf;
}


/* The VB_ rules among hits h (the helpers left out), sorted, " A B ... " */
static const char *vb(const char *h)
{
    static char out[4096];
    const char *names[64];
    size_t n = 0;
    static char copy[4096];
    snprintf(copy, sizeof(copy), "%s", h);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && n < 64;
         w = strtok_r(NULL, " ", &save))
        if (strncmp(w, "VB_", 3) == 0)
            names[n++] = w;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    size_t k = 0;
    out[k++] = ' ';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, sizeof(out) - k, "%s ", names[i]);
    out[k] = '\0';
    return out;
}

static const char mine_hits[] = " VB_ANY VB_MINE VB_MINE_HDR VB_MINE_OLD ";

static void test_dsn_of_own_mail(void **state)
{
    (void)state;
    struct loaded l = load_with(true);
    /* the returned message's header passed our relay: a genuine bounce */
    const char *h =
        vb(hits(l.r,
             dsn("Received: from relay.mine.example (relay.mine.example [192.0.2.25])\r\n"
                 "\tby mx.far.example (Postfix) with ESMTP id 9;\r\n"
                 "\tMon, 07 Dec 2026 09:59:00 +0000\r\n"),
             NULL));
    assert_string_equal(h, mine_hits);
    /* a glob entry (the alias's), the host in upper case, in the "by" part */
    h = vb(hits(l.r,
             dsn("Received: from laptop (unknown [203.0.113.9])\r\n"
                 "\tby SMTP3.OUT.MINE.EXAMPLE (Postfix) with ESMTPSA id 9;\r\n"
                 "\tMon, 07 Dec 2026 09:59:00 +0000\r\n"),
             NULL));
    assert_string_equal(h, mine_hits);
    /* forged backscatter: the returned message never passed our relays */
    h = vb(hits(l.r,
             dsn("Received: from bot.spam.example (bot.spam.example [203.0.113.66])\r\n"
                 "\tby mx.far.example (Postfix) with SMTP id 9;\r\n"
                 "\tMon, 07 Dec 2026 09:59:00 +0000\r\n"),
             NULL));
    assert_string_equal(h, " VB_ANY VB_BOUNCE ");
    /* a host of another domain that only ends like ours */
    h = vb(hits(l.r, dsn("Received: from relay.mine.example.evil.example (x [203.0.113.1])\r\n"), NULL));
    assert_string_equal(h, " VB_ANY VB_BOUNCE ");
    unload(&l);
}

static void test_text_bounce(void **state)
{
    (void)state;
    struct loaded l = load_with(true);
    /* the original header quoted in the text, as a paragraph of its own */
    const char *h =
        vb(hits(l.r,
             mail("From: MAILER-DAEMON@mx.far.example\r\nSubject: failure notice\r\n",
                  "I could not deliver your message.\r\n\r\n"
                  "--- Below this line is a copy of the message.\r\n\r\n"
                  "Received: from relay.mine.example (relay.mine.example [192.0.2.25])\r\n"
                  "  by mx.far.example with SMTP\r\n"),
             NULL));
    assert_string_equal(h, mine_hits);
    /* quoted with "> " */
    h = vb(hits(l.r,
             mail("From: MAILER-DAEMON@mx.far.example\r\nSubject: failure notice\r\n",
                  "> Received: from x.out.mine.example (x.out.mine.example [192.0.2.26]) by\r\n"
                  "> mx.far.example\r\n"),
             NULL));
    assert_string_equal(h, mine_hits);
    /* in a base64 text part: only the decoded body text shows it */
    h = vb(hits(l.r,
             mail("From: MAILER-DAEMON@mx.far.example\r\nSubject: failure notice\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
                  "Content-Transfer-Encoding: base64\r\n",
                  /* "Received: from relay.mine.example (x) by y\n" */
                  "UmVjZWl2ZWQ6IGZyb20gcmVsYXkubWluZS5leGFtcGxlICh4KSBieSB5Cg==\r\n"),
             NULL));
    assert_string_equal(h, mine_hits);
    unload(&l);
}

static void test_word_rules(void **state)
{
    (void)state;
    struct loaded l = load_with(true);
    /* one blank between two hosts: the first match uses it up, so the
     * second host is never read (VBounce's /g) */
    const char *h =
        vb(hits(l.r,
             mail("From: MAILER-DAEMON@mx.far.example\r\nSubject: failure notice\r\n",
                  "Received: from a.far.example relay.mine.example (x) by y\r\n"),
             NULL));
    assert_string_equal(h, " VB_ANY VB_BOUNCE ");
    /* two blanks: both are read */
    h = vb(hits(l.r,
             mail("From: MAILER-DAEMON@mx.far.example\r\nSubject: failure notice\r\n",
                  "Received: from a.far.example  relay.mine.example (x) by y\r\n"),
             NULL));
    assert_string_equal(h, mine_hits);
    /* a host last on its line, the message's lines ending in LF: no
     * whitespace after it, so no match; with CRLF the CR is one */
    static const char lf[] = "From: MAILER-DAEMON@mx.far.example\n"
                             "Subject: failure notice\n"
                             "MIME-Version: 1.0\n"
                             "Content-Type: multipart/mixed; boundary=\"B2\"\n"
                             "\n"
                             "--B2\n"
                             "Content-Type: message/rfc822\n"
                             "\n"
                             "Received: from laptop [203.0.113.9]\n"
                             "\tby relay.mine.example\n"
                             "From: me@mine.example\n"
                             "\n"
                             "hi\n"
                             "\n"
                             "--B2--\n";
    h = vb(hits(l.r, lf, NULL));
    assert_string_equal(h, " VB_ANY VB_BOUNCE ");
    char crlf[sizeof(lf) * 2];
    size_t n = 0;
    for (const char *p = lf; *p; p++) {
        if (*p == '\n')
            crlf[n++] = '\r';
        crlf[n++] = *p;
    }
    crlf[n] = '\0';
    h = vb(hits(l.r, crlf, NULL));
    assert_string_equal(h, mine_hits);
    /* the host on a continuation line of the returned header, tab-folded */
    h = vb(hits(l.r,
             dsn("Received: from laptop (unknown [203.0.113.9])\r\n"
                 "\tby\trelay.mine.example\twith ESMTPSA id 9\r\n"),
             NULL));
    assert_string_equal(h, mine_hits);
    /* a line that is not a Received field, and the field name in the
     * middle of a line, do not count */
    h = vb(hits(l.r,
             mail("From: MAILER-DAEMON@mx.far.example\r\nSubject: failure notice\r\n",
                  "X-Received: from relay.mine.example (x) by y\r\n"
                  "the Received: from relay.mine.example (x) by y\r\n"),
             NULL));
    assert_string_equal(h, " VB_ANY VB_BOUNCE ");
    unload(&l);
}

static void test_challenge_virus_normal(void **state)
{
    (void)state;
    struct loaded l = load_with(true);
    /* a challenge-response request for mail we did send */
    const char *h =
        vb(hits(l.r,
             mail("From: verify@cr.far.example\r\nSubject: Please Verify Your Email Address\r\n",
                  "We hold your message until you confirm.\r\n\r\n"
                  "Received: from relay.mine.example (relay.mine.example [192.0.2.25]) by "
                  "mx.far.example\r\n"),
             NULL));
    assert_string_equal(h, " VB_ANY VB_CHALLENGE VB_MINE VB_MINE_HDR VB_MINE_OLD ");
    /* and for mail we did not send */
    h = vb(hits(l.r,
             mail("From: verify@cr.far.example\r\nSubject: Please Verify Your Email Address\r\n",
                  "We hold your message until you confirm.\r\n"),
             NULL));
    assert_string_equal(h, " VB_ANY VB_CRBOUNCE ");
    /* a virus scanner's notice about forged mail */
    h = vb(hits(l.r,
             mail("From: scanner@av.far.example\r\nSubject: Virus detected in your mail\r\n",
                  "The message you sent contained W32.Bad.\r\n\r\n"
                  "Received: from bot.spam.example (bot.spam.example [203.0.113.66]) by "
                  "mx.far.example\r\n"),
             NULL));
    assert_string_equal(h, " VB_ANY VB_VIRUS ");
    assert_false(has(h, "VB_BOUNCE"));
    /* a normal mail that talks about our relay but quotes no Received */
    h = vb(hits(l.r,
             mail("From: bob@far.example\r\nSubject: your relay\r\n",
                  "Hello, relay.mine.example is slow today.\r\n"),
             NULL));
    assert_string_equal(h, " VB_ANY ");
    unload(&l);
}

static void test_without_relays(void **state)
{
    (void)state;
    struct loaded l = load_with(false);
    /* no relay listed: neither test ever hits, whatever the message */
    const char *h =
        vb(hits(l.r,
             dsn("Received: from relay.mine.example (relay.mine.example [192.0.2.25])\r\n"
                 "\tby mx.far.example (Postfix) with ESMTP id 9;\r\n"),
             NULL));
    assert_string_equal(h, " ");
    h = vb(hits(l.r,
             mail("From: verify@cr.far.example\r\nSubject: Please Verify Your Email Address\r\n",
                  "Received: from relay.mine.example (x) by mx.far.example\r\n"),
             NULL));
    assert_string_equal(h, " VB_CRBOUNCE ");
    h = vb(hits(l.r, mail("From: scanner@av.far.example\r\nSubject: Virus detected here\r\n", "x\r\n"),
             NULL));
    assert_string_equal(h, " VB_VIRUS ");
    unload(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsn_of_own_mail),  cmocka_unit_test(test_text_bounce),
        cmocka_unit_test(test_word_rules),       cmocka_unit_test(test_challenge_virus_normal),
        cmocka_unit_test(test_without_relays),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
