/*
 * SpamAssassin's relay blocklist tests (sa_dnsbl, sa_eval_dnsbl): the
 * query names, which relays each set suffix queries, the subtests, and
 * check_rbl / check_rbl_txt / check_rbl_sub over a message whose
 * answers are given here (no network: the resolver is the integration
 * test's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rules/rules.h"
#include "rules/rules_int.h"
#include "rules/sa_dnsbl.h"
#include "rules/sa_netset.h"

static char dir[] = "/tmp/sg-dnsbl-XXXXXX";
#include "sa_rules_fixture.h"

static void test_names(void **state)
{
    (void)state;
    char n[SA_DNSBL_NAME_MAX];
    assert_true(sa_dnsbl_name("81.2.69.160", "zen.spamhaus.org.", n, sizeof n));
    assert_string_equal(n, "160.69.2.81.zen.spamhaus.org");
    assert_true(sa_dnsbl_name("81.2.69.160", "zen.spamhaus.org..", n, sizeof n));
    assert_string_equal(n, "160.69.2.81.zen.spamhaus.org");
    /* no range check, as SpamAssassin's pattern */
    assert_true(sa_dnsbl_name("999.2.3.4", "z", n, sizeof n));
    assert_string_equal(n, "4.3.2.999.z");
    assert_true(sa_dnsbl_name("2001:DB8::1", "z.example", n, sizeof n));
    assert_string_equal(
        n, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.z.example");
    assert_false(sa_dnsbl_name("1.2.3", "z", n, sizeof n));
    assert_false(sa_dnsbl_name("1.2.3.4.5", "z", n, sizeof n));
    assert_false(sa_dnsbl_name("1234.2.3.4", "z", n, sizeof n));
    assert_false(sa_dnsbl_name("host.example", "z", n, sizeof n));
    assert_false(sa_dnsbl_name("2001:zz::1", "z", n, sizeof n));
    assert_false(sa_dnsbl_name("", "z", n, sizeof n));
    assert_false(sa_dnsbl_name("81.2.69.160", "zen.spamhaus.org", n, 10));
}

#define T "198.51.100.7" /* a trusted external relay */
#define A "81.2.69.160"
#define B "10.1.2.3" /* private: never queried */
#define C "203.0.113.9"
#define O "192.0.2.44" /* from X-Originating-IP */

static char got[400];
static const char *pick(const struct sa_dnsbl_input *in, const char *set, bool nice)
{
    const char *ips[SA_DNSBL_CHECK_RECEIVED];
    size_t n = sa_dnsbl_select(in, set, nice, ips, SA_DNSBL_CHECK_RECEIVED);
    got[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", ips[i]);
    return got;
}

static void test_select(void **state)
{
    (void)state;
    const char *untrusted[] = {A, B, C, A};
    const char *external[] = {T, A, B, C, A};
    const char *orig[] = {O};
    struct sa_dnsbl_input in = {untrusted, 4, external, 5, NULL, 0, NULL, 0};
    assert_true(sa_dnsbl_any(&in));
    assert_string_equal(pick(&in, "zen", false), C " " A); /* oldest first */
    assert_string_equal(pick(&in, "zen-lastexternal", false), T);
    assert_string_equal(pick(&in, "zen-notfirsthop", false), T " " A);
    assert_string_equal(pick(&in, "iadb-firsttrusted", false), A);
    assert_string_equal(pick(&in, "x-untrusted", false), C); /* the first left out */
    in.originating = orig;
    in.noriginating = 1;
    assert_string_equal(pick(&in, "zen", false), O " " C " " A);
    assert_string_equal(pick(&in, "zen-lastexternal", false), T);
    assert_string_equal(pick(&in, "x-untrusted", false), C " " O);

    /* trusted relays at the front are queried for nice rules only */
    struct sa_relay_conf *conf = sa_relay_conf_new();
    assert_non_null(conf);
    char why[200];
    const char *tn = T " " A;
    assert_int_equal(sa_netset_line(conf, "trusted_networks", tn, strlen(tn), why, sizeof why), 0);
    in.trusted = &conf->set[SA_NET_TRUSTED];
    in.noriginating = 0;
    assert_string_equal(pick(&in, "zen-lastexternal", false), "");
    assert_string_equal(pick(&in, "zen-lastexternal", true), T);
    assert_string_equal(pick(&in, "dnswl-firsttrusted", false), "");
    assert_string_equal(pick(&in, "dnswl-firsttrusted", true), A);
    assert_string_equal(pick(&in, "zen", false), C " " A); /* only the front is dropped */
    in.originating = (const char *[]){A}; /* a trusted originating address is not added */
    in.noriginating = 1;
    assert_string_equal(pick(&in, "x-untrusted", false), C);
    sa_relay_conf_free(conf);

    /* only private relays: nothing at all, whatever the set */
    const char *priv[] = {B, "127.0.0.1"};
    struct sa_dnsbl_input p = {priv, 2, priv, 2, NULL, 0, NULL, 0};
    assert_false(sa_dnsbl_any(&p));
    assert_string_equal(pick(&p, "zen", false), "");

    /* at most num_check_received (9) */
    const char *many[12] = {"1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4",  "1.0.0.5",  "1.0.0.6",
                            "1.0.0.7", "1.0.0.8", "1.0.0.9", "1.0.0.10", "1.0.0.11", "1.0.0.12"};
    struct sa_dnsbl_input mi = {many, 12, many, 12, NULL, 0, NULL, 0};
    assert_string_equal(pick(&mi, "zen", false), "1.0.0.12 1.0.0.11 1.0.0.10 1.0.0.9 1.0.0.8 "
                                                 "1.0.0.7 1.0.0.6 1.0.0.5 1.0.0.4");
    mi.checklast = 2; /* num_check_received 2 */
    assert_string_equal(pick(&mi, "zen", false), "1.0.0.12 1.0.0.11");
}

static void test_subtests(void **state)
{
    (void)state;
    assert_int_equal(sa_dnsbl_subtest_kind(NULL), SA_SUB_NONE);
    assert_int_equal(sa_dnsbl_subtest_kind("127.0.0.2"), SA_SUB_IP);
    assert_int_equal(sa_dnsbl_subtest_kind("2"), SA_SUB_MASK);
    assert_int_equal(sa_dnsbl_subtest_kind("^127\\.0\\.0\\.2$"), SA_SUB_RE);
    assert_int_equal(sa_dnsbl_subtest_kind("127.0.0.0/8"), SA_SUB_RE);
    assert_int_equal(sa_dnsbl_subtest_kind("127.0.0"), SA_SUB_RE);
    assert_int_equal(sa_dnsbl_subtest_kind(""), SA_SUB_RE);
    assert_true(sa_dnsbl_subtest_match("127.0.0.2", "127.0.0.2"));
    assert_false(sa_dnsbl_subtest_match("127.0.0.2", "127.0.0.20"));
    assert_true(sa_dnsbl_subtest_match("2", "127.0.0.2"));
    assert_true(sa_dnsbl_subtest_match("2", "127.0.0.3"));
    assert_false(sa_dnsbl_subtest_match("2", "127.0.0.4"));
    assert_false(sa_dnsbl_subtest_match("2", "10.0.0.2"));    /* outside 127/8 */
    assert_false(sa_dnsbl_subtest_match("2", "127.0.0.2 x")); /* a TXT answer */
    assert_true(sa_dnsbl_subtest_match("256", "127.0.1.0"));
    assert_true(sa_dnsbl_subtest_match("1", "127.0.0.257")); /* pack("C") wraps */
    assert_true(sa_dnsbl_a_counts("127.0.0.2"));
    assert_false(sa_dnsbl_a_counts("192.0.2.1"));
}

static const char cf[] =
    "ifplugin Mail::SpamAssassin::Plugin::DNSEval\n"
    "header __ZEN eval:check_rbl('zen', 'zen.example.')\n"
    "tflags __ZEN net\n"
    "header ZEN_SBL eval:check_rbl_sub('zen', '127.0.0.2')\n"
    "tflags ZEN_SBL net\n"
    "score ZEN_SBL 1\n"
    "header ZEN_PBL eval:check_rbl_sub('zen', '^127\\.0\\.0\\.1[01]$')\n"
    "tflags ZEN_PBL net\n"
    "score ZEN_PBL 1\n"
    "header ZEN_XBL eval:check_rbl('zen-lastexternal', 'zen.example.', '^127\\.0\\.0\\.[4567]$')\n"
    "tflags ZEN_XBL net\n"
    "score ZEN_XBL 1\n"
    "header MASK4 eval:check_rbl('m', 'mask.example', '4')\n"
    "tflags MASK4 net\n"
    "score MASK4 1\n"
    "header SPAMCOP eval:check_rbl_txt('spamcop', 'bl.example.', '(?i:spamcop)')\n"
    "tflags SPAMCOP net\n"
    "score SPAMCOP 1\n"
    "header ANY eval:check_rbl('any', 'any.example.')\n"
    "tflags ANY net\n"
    "score ANY 1\n"
    "header BADSB eval:check_rbl('sb', 'sb.example.', 'sb:x')\n"
    "tflags BADSB net\n"
    "score BADSB 1\n"
    "endif\n";

static const char msg[] =
    "Received: from mx.example.net (mx.example.net [" C "]) by mail.example.org (Postfix) "
    "with ESMTP id 1A\n"
    "Received: from a.example.org (a.example.org [" A "]) by mx.example.net (Postfix) "
    "with ESMTP id 2B\n"
    "From: a@example.org\nSubject: hi\n\nbody\n";

static void answer(struct sa_dns_queries *q, const char *name, int type, const char *a)
{
    long i = sa_dns_queries_find(q, name, type);
    assert_true(i >= 0);
    assert_int_equal(sa_dns_query_answer(&q->q[i], a, strlen(a)), 0);
}

static void test_evals(void **state)
{
    (void)state;
    write_file("20_dnsbl.cf", cf);
    struct loaded off = load(NULL, false);
    assert_int_equal(off.rep.loaded, 0);
    assert_int_equal(skipped(&off.rep, "network test, network tests off"), 8);
    unload(&off);

    struct loaded l = load(NULL, true);
    assert_int_equal(l.rep.loaded, 7);
    assert_int_equal(skipped(&l.rep, "eval check_rbl: SenderBase subtests are deprecated"), 1);
    struct rules_msg *m = rules_msg_parse(msg, strlen(msg));
    struct sa_dns_queries q = {0};
    assert_int_equal(sa_dnsbl_gather(l.r, m, NULL, &q), 0);
    /* zen and any: both untrusted relays, oldest first; lastexternal: the newest */
    assert_true(sa_dns_queries_find(&q, "160.69.2.81.zen.example", SA_DNS_A) >= 0);
    assert_true(sa_dns_queries_find(&q, "9.113.0.203.zen.example", SA_DNS_A) >= 0);
    assert_true(sa_dns_queries_find(&q, "160.69.2.81.bl.example", SA_DNS_TXT) >= 0);
    assert_true(sa_dns_queries_find(&q, "160.69.2.81.bl.example", SA_DNS_A) < 0);
    assert_int_equal(q.n, 2 + 2 + 2 + 2); /* zen, mask, bl, any */
    answer(&q, "160.69.2.81.zen.example", SA_DNS_A, "127.0.0.10");
    answer(&q, "9.113.0.203.zen.example", SA_DNS_A, "127.0.0.4");
    answer(&q, "9.113.0.203.mask.example", SA_DNS_A, "127.0.0.3");
    answer(&q, "160.69.2.81.mask.example", SA_DNS_A, "10.0.0.4"); /* outside 127/8: ignored */
    answer(&q, "160.69.2.81.bl.example", SA_DNS_TXT, "Blocked - see https://www.SpamCop.net/");
    answer(&q, "9.113.0.203.any.example", SA_DNS_A, "192.0.2.1"); /* ignored too */
    rules_msg_set_dns(m, &q);
    struct rules_tx *tx = rules_tx_new(l.r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_non_null(o);
    char h[400] = " ";
    for (size_t i = 0; i < o->nhits; i++)
        snprintf(h + strlen(h), sizeof h - strlen(h), "%s ", o->hits[i].rule);
    assert_string_equal(h, " __ZEN ZEN_PBL ZEN_XBL SPAMCOP ");
    rules_tx_free(tx);
    rules_msg_free(m);

    /* without answers (network tests off, or nothing asked): all misses */
    m = rules_msg_parse(msg, strlen(msg));
    assert_string_equal(hits(l.r, msg, NULL), " ");
    rules_msg_free(m);
    sa_dns_queries_clear(&q);
    unload(&l);
}

static void test_settings(void **state)
{
    (void)state;
    struct sa_relay_conf *c = sa_relay_conf_new();
    assert_non_null(c);
    char why[200];
    assert_true(sa_dnsbl_rbl_timeout(c) == 15);
    assert_int_equal(sa_dnsbl_setting(c, "rbl_timeout", "4 2", 3, why, sizeof why), 0);
    assert_true(sa_dnsbl_rbl_timeout(c) == 4);
    assert_int_equal(sa_dnsbl_setting(c, "rbl_timeout", "soon", 4, why, sizeof why), 2);
    assert_string_equal(why, "rbl_timeout: not a number of seconds: soon");
    assert_true(sa_dnsbl_rbl_timeout(c) == 4);
    assert_int_equal(sa_dnsbl_setting(c, "num_check_received", "3", 1, why, sizeof why), 0);
    assert_int_equal(c->num_check_received, 3);
    assert_int_equal(sa_dnsbl_setting(c, "num_check_received", "0", 1, why, sizeof why), 2);
    assert_int_equal(sa_dnsbl_setting(c, "skip_rbl_checks", "1", 1, why, sizeof why), 0);
    assert_true(c->skip_rbl_checks);
    assert_int_equal(sa_dnsbl_setting(c, "skip_rbl_checks", "0", 1, why, sizeof why), 0);
    assert_false(c->skip_rbl_checks);
    sa_relay_conf_free(c);

    /* skip_rbl_checks in a .cf file: nothing is asked */
    write_file("20_dnsbl.cf", cf);
    write_file("90_skip.cf", "skip_rbl_checks 1\nrbl_timeout 3\n");
    struct loaded l = load(NULL, true);
    struct rules_msg *m = rules_msg_parse(msg, strlen(msg));
    struct sa_dns_queries q = {0};
    assert_int_equal(sa_dnsbl_gather(l.r, m, NULL, &q), 0);
    assert_int_equal(q.n, 0);
    assert_true(sa_dnsbl_timeout(l.r, 5) == 3);
    assert_true(sa_dnsbl_timeout(l.r, 2) == 2);
    rules_msg_free(m);
    unload(&l);
    unlink(write_file("90_skip.cf", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),    cmocka_unit_test(test_select),
        cmocka_unit_test(test_subtests), cmocka_unit_test(test_evals),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
