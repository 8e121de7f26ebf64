/*
 * Unit tests for SpamAssassin's welcomelists by relay: the relay word of a
 * welcomelist_from_rcvd entry against one relay (sa_rcvdwl: names, exact
 * and classful IPv4, CIDR and netmask forms, IPv6, the IPv4-compatible
 * reading), the _rcvd settings with their warnings, and WLBLEval's
 * check_from_in_welcomelist, check_from_in_default_welcomelist,
 * check_forged_in_* and check_mailfrom_matches_rcvd over chains made of
 * the session's facts and the message's Received fields; WelcomeListSubject's
 * check_subject_in_welcomelist / _blocklist.  Each .cf and
 * message is written for the test.
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
#include "rules/sa_lists.h"
#include "rules/sa_rcvdwl.h"

static char dir[] = "/tmp/test_sa_rcvdwl.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

static void test_relay_word(void **state)
{
    (void)state;
    /* names: the rDNS or a domain of it, never a part of a label */
    assert_true(sa_rcvdwl_relay_matches("example.org", "192.0.2.1", "mail.example.org"));
    assert_true(sa_rcvdwl_relay_matches("mail.example.org", "192.0.2.1", "mail.example.org"));
    assert_false(sa_rcvdwl_relay_matches("example.org", "192.0.2.1", "mail.badexample.org"));
    assert_false(sa_rcvdwl_relay_matches("example.org", "192.0.2.1", "example.org.evil.test"));
    assert_false(sa_rcvdwl_relay_matches("example.org", "192.0.2.1", ""));
    assert_false(sa_rcvdwl_relay_matches("example.org", "192.0.2.1", NULL));
    /* any case, a name of any length */
    assert_true(sa_rcvdwl_relay_matches("example.org", "192.0.2.1", "MAIL.Example.ORG"));
    char longname[700];
    memset(longname, 'a', sizeof(longname));
    memcpy(longname + sizeof(longname) - 13, ".example.org", 13);
    assert_true(sa_rcvdwl_relay_matches("example.org", "192.0.2.1", longname));
    assert_false(sa_rcvdwl_relay_matches("xample.org", "192.0.2.1", longname));
    /* a lone '[' is a name too */
    assert_true(sa_rcvdwl_relay_matches("[", "192.0.2.1", "x.["));
    /* an exact IPv4 address is compared as text */
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.123]", "192.0.2.123", "x.example.org"));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.12]", "192.0.2.123", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.123]", "", "x"));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.123]", NULL, "x"));
    /* classful prefixes end at a dot */
    assert_true(sa_rcvdwl_relay_matches("[192.0.2]", "192.0.2.123", NULL));
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.]", "192.0.2.123", NULL));
    assert_true(sa_rcvdwl_relay_matches("[192]", "192.0.2.123", NULL));
    assert_false(sa_rcvdwl_relay_matches("[19]", "192.0.2.123", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2]", "192.0.22.1", NULL));
    /* CIDR, inside the brackets or after them, host bits ignored */
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.0/24]", "192.0.2.123", NULL));
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.0]/24", "192.0.2.123", NULL));
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.77/24]", "192.0.2.123", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.0/25]", "192.0.2.129", NULL));
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.0/255.255.255.0]", "192.0.2.9", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.0/0.0.0.255]", "192.0.2.9", NULL));
    assert_true(sa_rcvdwl_relay_matches("[10/8]", "10.9.8.7", NULL));
    assert_true(sa_rcvdwl_relay_matches("[10.1/16]", "10.1.8.7", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.0/33]", "192.0.2.9", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.0]/1234", "192.0.2.9", NULL));
    /* what is not an address matches nothing */
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.0/24]]", "192.0.2.9", NULL));
    assert_false(sa_rcvdwl_relay_matches("[mail.example.org]", "192.0.2.9", "mail.example.org"));
    assert_false(sa_rcvdwl_relay_matches("[]", "192.0.2.9", NULL));
    char longip[300] = "[";
    memset(longip + 1, '1', sizeof(longip) - 3);
    memcpy(longip + sizeof(longip) - 2, "]", 2);
    assert_false(sa_rcvdwl_relay_matches(longip, "192.0.2.9", "x"));
    /* four digits after the brackets: a name, as the pattern fails */
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.0]/1234", "192.0.2.9", "a.[192.0.2.0]/1234"));
    /* IPv6, and IPv4 as NetAddr::IP holds it: ::a.b.c.d */
    assert_true(sa_rcvdwl_relay_matches("[2001:db8:1234::/48]", "2001:db8:1234:5::1", NULL));
    assert_true(sa_rcvdwl_relay_matches("[2001:db8:1234::]/48", "2001:db8:1234:5::1", NULL));
    assert_false(sa_rcvdwl_relay_matches("[2001:db8:1234::/48]", "2001:db8:1235::1", NULL));
    assert_true(sa_rcvdwl_relay_matches("[2001:db8::1]", "2001:db8::1", NULL));
    assert_true(sa_rcvdwl_relay_matches("[::/96]", "192.0.2.9", NULL));
    assert_true(sa_rcvdwl_relay_matches("[192.0.2.0/24]", "::192.0.2.9", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.0/24]", "::ffff:192.0.2.9", NULL));
    assert_false(sa_rcvdwl_relay_matches("[192.0.2.0/24]", "2001:db8::1", NULL));
}

static void test_settings(void **state)
{
    (void)state;
    struct sa_lists *l = sa_lists_new();
    char why[160];
    assert_int_equal(
        sa_lists_setting(l, "welcomelist_from_rcvd", "a@x.example", 11, why, sizeof(why)),
        SA_LISTS_BAD);
    assert_string_equal(why, "welcomelist_from_rcvd: invalid value");
    assert_int_equal(sa_lists_setting(l, "def_whitelist_from_rcvd", "", 0, why, sizeof(why)),
                     SA_LISTS_BAD);
    assert_string_equal(why, "def_whitelist_from_rcvd: missing required value");
    const char *three = "a@x.example x.example y.example";
    assert_int_equal(
        sa_lists_setting(l, "whitelist_from_rcvd", three, strlen(three), why, sizeof(why)),
        SA_LISTS_BAD);
    assert_false(sa_lists_rcvd_has(l, SA_RCVD_USER));
    const char *ok = "*@X.Example  Mail.X.Example";
    assert_int_equal(sa_lists_setting(l, "whitelist_from_rcvd", ok, strlen(ok), why, sizeof(why)),
                     SA_LISTS_OK);
    assert_true(sa_lists_rcvd_has(l, SA_RCVD_USER));
    assert_false(sa_lists_rcvd_has(l, SA_RCVD_DEFAULT));
    const char *def = "*@x.example [192.0.2.0/24]";
    assert_int_equal(
        sa_lists_setting(l, "def_welcomelist_from_rcvd", def, strlen(def), why, sizeof(why)),
        SA_LISTS_OK);
    /* the removal takes the address from both lists, as written in any case */
    const char *un = "someone@else.example *@x.EXAMPLE";
    assert_int_equal(sa_lists_setting(l, "unwhitelist_from_rcvd", un, strlen(un), why, sizeof(why)),
                     SA_LISTS_OK);
    assert_false(sa_lists_rcvd_has(l, SA_RCVD_USER));
    assert_false(sa_lists_rcvd_has(l, SA_RCVD_DEFAULT));
    const char *al = "*@x.example";
    assert_int_equal(
        sa_lists_setting(l, "whitelist_allows_relays", al, strlen(al), why, sizeof(why)),
        SA_LISTS_OK);
    assert_int_equal(sa_lists_addr_glob_listed(l, "welcomelist_allows_relays", "A@X.example", 11),
                     1);
    assert_int_equal(sa_lists_addr_glob_listed(l, "welcomelist_allows_relays", "a@y.example", 11),
                     0);
    sa_lists_unref(l);
}

static const char cf[] = "welcomelist_from_rcvd joe@example.org example.org\n"
                         "welcomelist_from_rcvd joe@example.org [81.2.69.0/24]\n"
                         "whitelist_from_rcvd *@lists.example.net lists.example.net\n"
                         "welcomelist_from_rcvd ann@example.com mx.example.com\n"
                         "welcomelist_allows_relays ann@example.com\n"
                         "def_welcomelist_from_rcvd *@bank.example [192.0.2]\n"
                         "def_welcomelist_from_rcvd carl@both.example both.example\n"
                         "welcomelist_from_rcvd carl@both.example both.example\n"
                         "welcomelist_from plain@example.org\n"
                         "welcomelist_from_rcvd bad@example.org\n"
                         "util_rb_2tld co.uk\n"
                         "header T_WL eval:check_from_in_welcomelist()\n"
                         "header T_DEF eval:check_from_in_default_welcomelist()\n"
                         "header T_FORGED eval:check_forged_in_whitelist()\n"
                         "header T_FORGED_DEF eval:check_forged_in_default_welcomelist()\n"
                         "header T_RP eval:check_mailfrom_matches_rcvd()\n";

static char *run(struct rules *r, const char *msg, const struct rules_facts *f)
{
    struct rules_msg *m = rules_msg_parse(msg, strlen(msg));
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, f, m);
    assert_non_null(o);
    static char buf[1024];
    size_t n = 0;
    buf[n++] = ' ';
    for (size_t i = 0; i < o->nhits; i++)
        if (strncmp(o->hits[i].rule, "T_", 2) == 0)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s ", o->hits[i].rule);
    buf[n] = '\0';
    rules_tx_free(tx);
    rules_msg_free(m);
    return buf;
}

/* a message of the header lines; the last 8 made stay valid */
static char *mk(const char *hdrs)
{
    static char bufs[8][4096];
    static unsigned next;
    char *buf = bufs[next++ % 8];
    snprintf(buf, sizeof(bufs[0]), "%sTo: bob@example.net\r\nSubject: hi\r\n\r\nbody\r\n", hdrs);
    return buf;
}

#define FACTS(ip_, name_)                                                                          \
    (&(struct rules_facts){.client_addr = ip_, .client_name = name_, .helo = "h.example"})

static void test_functions(void **state)
{
    (void)state;
    write_file("20_rcvd.cf", cf);
    struct loaded l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 5);
    /* the line without its relay is named by file and line */
    assert_int_equal(l.rep.warnings.n, 1);
    assert_int_equal(l.rep.warnings.v[0].line, 10);
    assert_non_null(strstr(l.rep.warnings.v[0].file, "20_rcvd.cf"));
    assert_string_equal(l.rep.warnings.v[0].msg, "welcomelist_from_rcvd: invalid value");

    const char *joe = mk("Return-Path: <joe@example.org>\r\nFrom: Joe <joe@example.org>\r\n");
    /* through a relay named for the address (any case): welcomelisted, the
     * envelope sender's domain is the relay's */
    assert_string_equal(run(l.r, joe, FACTS("203.0.113.5", "Out.Mail.EXAMPLE.org")), " T_WL T_RP ");
    assert_string_equal(run(l.r, joe, FACTS("203.0.113.5", "out.mail.example.org")), " T_WL T_RP ");
    /* through its network, with no name */
    assert_string_equal(run(l.r, joe, FACTS("81.2.69.7", NULL)), " T_WL ");
    /* through another: forged */
    assert_string_equal(run(l.r, joe, FACTS("203.0.113.5", "mail.other.example")), " T_FORGED ");
    /* only the first untrusted relay counts, not the older ones a forger writes */
    const char *older = mk("Return-Path: <joe@example.org>\r\n"
                           "Received: from a.example.org (a.example.org [81.2.69.8])\r\n"
                           "\tby relay.other.example (Postfix) with ESMTP id 1A;\r\n"
                           "\tMon, 7 Dec 2026 09:59:10 +0000\r\n"
                           "From: Joe <joe@example.org>\r\n");
    assert_string_equal(run(l.r, older, FACTS("203.0.113.5", "relay.other.example")), " T_FORGED ");
    /* with the client trusted (loopback), the message's relay is the first
     * untrusted one */
    assert_string_equal(run(l.r, older, FACTS("127.0.0.1", "localhost")), " T_WL T_RP ");
    /* a saved message: its own fields alone */
    assert_string_equal(run(l.r, older, NULL), " T_WL T_RP ");
    /* no relay at all: no match and no forgery */
    assert_string_equal(run(l.r, joe, NULL), " ");
    assert_false(has(hits(l.r, joe, NULL), "T_FORGED"));
    /* a forged address on welcomelist_allows_relays is no forgery */
    const char *ann = mk("From: ann@example.com\r\n");
    assert_string_equal(run(l.r, ann, FACTS("203.0.113.5", "mx.example.com")), " T_WL ");
    assert_string_equal(run(l.r, ann, FACTS("203.0.113.5", "mx.other.example")), " ");
    /* the default list; forged there unless on the user's list too */
    const char *bank = mk("From: Bank <news@bank.example>\r\n");
    assert_string_equal(run(l.r, bank, FACTS("192.0.2.44", NULL)), " T_DEF ");
    assert_string_equal(run(l.r, bank, FACTS("192.0.20.44", NULL)), " T_FORGED_DEF ");
    const char *carl = mk("From: carl@both.example\r\n");
    assert_string_equal(run(l.r, carl, FACTS("192.0.2.44", "mx.both.example")), " T_WL T_DEF ");
    assert_string_equal(run(l.r, carl, FACTS("192.0.2.44", "mx.elsewhere.example")), " ");
    /* welcomelist_from needs no relay; a glob entry's address */
    assert_string_equal(run(l.r, mk("From: plain@example.org\r\n"), NULL), " T_WL ");
    assert_string_equal(
        run(l.r, mk("From: x@lists.example.net\r\n"), FACTS("198.51.100.1", "lists.example.net")),
        " T_WL ");
    /* Resent-From comes first in all_from_addrs */
    assert_string_equal(run(l.r, mk("Resent-From: joe@example.org\r\nFrom: no@one.example\r\n"),
                            FACTS("203.0.113.5", "mx.example.org")),
                        " T_WL ");
    unload(&l);
    unlink(write_file("20_rcvd.cf", ""));
}

static void test_mailfrom_matches_rcvd(void **state)
{
    (void)state;
    write_file("20_rcvd.cf", cf);
    struct loaded l = load(NULL, false);
    /* registered domains: co.uk is a registry's */
    assert_string_equal(run(l.r, mk("Return-Path: <a@shop.example.co.uk>\r\nFrom: a@b.example\r\n"),
                            FACTS("203.0.113.5", "mta1.example.co.uk")),
                        " T_RP ");
    assert_string_equal(run(l.r, mk("Return-Path: <a@shop.example.co.uk>\r\nFrom: a@b.example\r\n"),
                            FACTS("203.0.113.5", "mta1.other.co.uk")),
                        " ");
    /* a relay without a name is not tried */
    assert_string_equal(run(l.r, mk("Return-Path: <a@example.org>\r\nFrom: a@b.example\r\n"),
                            FACTS("203.0.113.5", NULL)),
                        " ");
    /* no dot in the domain, the null sender, none at all */
    assert_string_equal(run(l.r, mk("Return-Path: <a@localhost>\r\nFrom: a@b.example\r\n"),
                            FACTS("203.0.113.5", "localhost")),
                        " ");
    assert_string_equal(run(l.r, mk("Return-Path: <>\r\nFrom: a@b.example\r\n"),
                            FACTS("203.0.113.5", "mx.b.example")),
                        " ");
    assert_string_equal(run(l.r, mk("From: a@b.example\r\n"), FACTS("203.0.113.5", "mx.b.example")),
                        " ");
    /* all trusted: any of them may match (the facts' relay is the newest) */
    const char *chain = mk("Return-Path: <a@desk.example>\r\n"
                           "Received: from pc.lan (pc.desk.example [192.168.1.20])\r\n"
                           "\tby gw.lan (Postfix) with ESMTP id 2A;\r\n"
                           "\tMon, 7 Dec 2026 09:59:20 +0000\r\n"
                           "From: a@b.example\r\n");
    assert_string_equal(run(l.r, chain, FACTS("127.0.0.1", "localhost")), " T_RP ");
    /* the smtpgate MAIL FROM is the EnvelopeFrom */
    struct rules_facts f = {.client_addr = "203.0.113.5",
                            .client_name = "mx.sender.example",
                            .helo = "h",
                            .mail_from = "bounce@sender.example"};
    assert_string_equal(run(l.r, mk("Return-Path: <a@other.example>\r\nFrom: a@b.example\r\n"), &f),
                        " T_RP ");
    unload(&l);
    unlink(write_file("20_rcvd.cf", ""));
}

static const char subj_cf[] = "welcomelist_subject [Bug *] fixed\n"
                              "whitelist_subject re: minutes of ?? may\n"
                              "blocklist_subject make   MONEY fast\n"
                              "blacklist_subject (free)\n"
                              "header T_SUBJ_WL eval:check_subject_in_welcomelist()\n"
                              "header T_SUBJ_WL_OLD eval:check_subject_in_whitelist()\n"
                              "header T_SUBJ_BL eval:check_subject_in_blocklist()\n"
                              "header T_SUBJ_BL_OLD eval:check_subject_in_blacklist()\n";

static char *subj(const char *s)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "From: a@b.example\r\n%s\r\n\r\nbody\r\n", s);
    return buf;
}

static void test_subject_lists(void **state)
{
    (void)state;
    write_file("20_subj.cf", subj_cf);
    struct loaded l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 4);
    const char *wl = " T_SUBJ_WL T_SUBJ_WL_OLD ", *bl = " T_SUBJ_BL T_SUBJ_BL_OLD ";
    /* anywhere in the subject, any case, * a run of octets */
    assert_string_equal(run(l.r, subj("Subject: Re: [BUG 4711] fixed now"), NULL), wl);
    assert_string_equal(run(l.r, subj("Subject: [bug] fixed"), NULL), " ");
    assert_string_equal(run(l.r, subj("Subject: [Bug ] fixed"), NULL), wl);
    /* ? one octet, blanks as written */
    assert_string_equal(run(l.r, subj("Subject: Re: Minutes of 12 May"), NULL), wl);
    assert_string_equal(run(l.r, subj("Subject: Re: Minutes of 2 May"), NULL), " ");
    assert_string_equal(run(l.r, subj("Subject: MAKE   money FAST!"), NULL), bl);
    assert_string_equal(run(l.r, subj("Subject: make money fast"), NULL), " ");
    /* every other octet is itself */
    assert_string_equal(run(l.r, subj("Subject: all (FREE) now"), NULL), bl);
    assert_string_equal(run(l.r, subj("Subject: all free now"), NULL), " ");
    /* decoded first */
    assert_string_equal(run(l.r, subj("Subject: =?UTF-8?Q?make___money_fast?="), NULL), bl);
    /* a wildcard does not cross from one Subject field to the next */
    assert_string_equal(run(l.r, subj("Subject: [bug 1]\r\nSubject: fixed"), NULL), " ");
    assert_string_equal(run(l.r, subj("Subject: x\r\nSubject: [bug 1] fixed"), NULL), wl);
    /* no Subject: nothing */
    assert_string_equal(run(l.r, subj("To: c@d.example"), NULL), " ");
    unload(&l);
    unlink(write_file("20_subj.cf", ""));
    /* an empty string is in every subject (not in a missing one) */
    write_file("20_subj.cf", "welcomelist_subject\n"
                             "header T_SUBJ_WL eval:check_subject_in_welcomelist()\n");
    l = load(NULL, false);
    assert_string_equal(run(l.r, subj("Subject: anything"), NULL), " T_SUBJ_WL ");
    assert_string_equal(run(l.r, subj("To: c@d.example"), NULL), " ");
    unload(&l);
    unlink(write_file("20_subj.cf", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_word),    cmocka_unit_test(test_settings),
        cmocka_unit_test(test_functions),     cmocka_unit_test(test_mailfrom_matches_rcvd),
        cmocka_unit_test(test_subject_lists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
