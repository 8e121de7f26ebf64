/*
 * SpamAssassin's relay chain (sa_netset, sa_relays) and RelayEval's tests
 * (sa_eval_relay): the trust walk with and without trusted_networks, the
 * session's facts as the newest relay, the fetcher restart, and each
 * function over a message, through the loader and the evaluator.
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
#include "rules/sa_netset.h"
#include "rules/sa_relays.h"
#include "util/alloc.h"

static char dir[] = "/tmp/sg-relays-XXXXXX";
#include "sa_rules_fixture.h"

#define PUB1 "from a.example.org (a.example.org [81.2.69.160]) by b.example.org (Postfix) with ESMTP id 1AA"
#define PRIV "from desk.lan (desk.lan [192.168.1.20]) by gw.lan (Postfix) with ESMTP id 2A"
#define PUB1_TEXT                                                                                  \
    "[ ip=81.2.69.160 rdns=a.example.org helo=a.example.org by=b.example.org ident= envfrom= "     \
    "intl=0 id=1AA auth= msa=0 ]"

static struct sa_relays *chain(const struct sa_relay_conf *c, const struct sa_relay_facts *f,
                               const char *const *lines, size_t n)
{
    size_t lens[8];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(lines[i]);
    struct sa_relays *r = NULL;
    assert_int_equal(sa_relays_build(c, f, lines, lens, n, &r), 0);
    return r;
}

static void test_inference_without_networks(void **state)
{
    (void)state;
    /* a private first relay is trusted, the public one after it ends trust */
    const char *lines[] = {PRIV, PUB1};
    struct sa_relays *r = chain(NULL, NULL, lines, 2);
    assert_int_equal(r->count[SA_RL_TRUSTED], 1);
    assert_int_equal(r->count[SA_RL_UNTRUSTED], 1);
    assert_string_equal(r->str[SA_RL_UNTRUSTED], PUB1_TEXT);
    assert_string_equal(r->str[SA_RL_EXTERNAL], PUB1_TEXT);
    assert_non_null(strstr(r->str[SA_RL_TRUSTED], " intl=1 "));
    assert_string_equal(r->str[SA_RL_INTERNAL], r->str[SA_RL_TRUSTED]);
    sa_relays_free(r);
}

static void test_facts_are_the_newest_relay(void **state)
{
    (void)state;
    const char *lines[] = {PUB1};
    struct sa_relay_facts f = {.ip = "81.2.69.142", .helo = "mail.example.org",
                               .by = "mx.example.net"};
    struct sa_relays *r = chain(NULL, &f, lines, 1);
    assert_string_equal(r->facts_line, "from mail.example.org (unknown [81.2.69.142]) by "
                                       "mx.example.net (Postfix) with ESMTP");
    assert_string_equal(r->str[SA_RL_UNTRUSTED],
                        "[ ip=81.2.69.142 rdns= helo=mail.example.org by=mx.example.net ident= "
                        "envfrom= intl=0 id= auth= msa=0 ] " PUB1_TEXT);
    assert_true(r->v[0].no_reverse_dns);
    sa_relays_free(r);
    /* SASL under TLS: ESMTPSA, an authenticated handover SpamAssassin trusts */
    f.rdns = "dsl.example.org";
    f.tls = true;
    f.auth = "alice";
    r = chain(NULL, &f, lines, 1);
    assert_string_equal(r->str[SA_RL_TRUSTED],
                        "[ ip=81.2.69.142 rdns=dsl.example.org helo=mail.example.org "
                        "by=mx.example.net ident= envfrom= intl=1 id= auth=ESMTPSA msa=0 ]");
    assert_string_equal(r->str[SA_RL_UNTRUSTED], PUB1_TEXT);
    sa_relays_free(r);
    /* IPv6, without a HELO: Postfix names the client by its reverse name */
    struct sa_relay_facts f6 = {.ip = "2a00:1450:4001:80b::2005"};
    r = chain(NULL, &f6, NULL, 0);
    assert_string_equal(r->str[SA_RL_UNTRUSTED],
                        "[ ip=2a00:1450:4001:80b::2005 rdns= helo=unknown by=localhost ident= "
                        "envfrom= intl=0 id= auth= msa=0 ]");
    sa_relays_free(r);
}

static void test_networks(void **state)
{
    (void)state;
    char why[200];
    struct sa_relay_conf *c = sa_relay_conf_new();
    assert_non_null(c);
    const char *v = "81.2.69.0/24";
    assert_int_equal(sa_netset_line(c, "trusted_networks", v, strlen(v), why, sizeof(why)), 0);
    const char *lines[] = {PUB1, "from z.example.com (z.example.com [8.8.8.8]) by a.example.org "
                                 "(Postfix) with ESMTP id 3C"};
    struct sa_relays *r = chain(c, NULL, lines, 2);
    /* internal_networks unset: trusted_networks stands for it */
    assert_int_equal(r->count[SA_RL_TRUSTED], 1);
    assert_int_equal(r->count[SA_RL_INTERNAL], 1);
    assert_int_equal(r->count[SA_RL_UNTRUSTED], 1);
    sa_relays_free(r);
    /* an exclusion first wins, as NetSet's first match */
    v = "!81.2.69.160 81.2.69.";
    assert_int_equal(sa_netset_line(c, "clear_trusted_networks", "", 0, why, sizeof(why)), 0);
    assert_int_equal(sa_netset_line(c, "trusted_networks", v, strlen(v), why, sizeof(why)), 0);
    assert_false(sa_netset_contains(&c->set[SA_NET_TRUSTED], "81.2.69.160"));
    assert_true(sa_netset_contains(&c->set[SA_NET_TRUSTED], "81.2.69.161"));
    assert_true(sa_netset_contains(&c->set[SA_NET_TRUSTED], "127.0.0.1"));
    assert_true(sa_netset_contains(&c->set[SA_NET_TRUSTED], "::1"));
    assert_false(sa_netset_contains(&c->set[SA_NET_TRUSTED], "not-an-ip"));
    /* msa_networks: the relay and every one after it are trusted */
    v = "81.2.69.161";
    assert_int_equal(sa_netset_line(c, "trusted_networks", v, strlen(v), why, sizeof(why)), 0);
    assert_int_equal(sa_netset_line(c, "msa_networks", v, strlen(v), why, sizeof(why)), 0);
    const char *msa[] = {"from m.example.org (m.example.org [81.2.69.161]) by mx.example.net "
                         "(Postfix) with ESMTP id 4D",
                         lines[1]};
    r = chain(c, NULL, msa, 2);
    assert_int_equal(r->count[SA_RL_TRUSTED], 2);
    assert_non_null(strstr(r->str[SA_RL_TRUSTED], " msa=1 ]"));
    sa_relays_free(r);
    /* a bad entry is named, the good ones are kept */
    v = "10.0.0.0/8 300.1.2.3 [::1]/128";
    assert_int_equal(sa_netset_line(c, "internal_networks", v, strlen(v), why, sizeof(why)), 2);
    assert_string_equal(why, "internal_networks: not an address or network: 300.1.2.3");
    assert_true(sa_netset_contains(&c->set[SA_NET_INTERNAL], "10.9.8.7"));
    assert_int_equal(sa_netset_line(c, "trusted_networks", "", 0, why, sizeof(why)), 2);
    assert_int_equal(sa_netset_line(c, "bayes_path", "x", 1, why, sizeof(why)), 1);
    sa_relay_conf_free(c);
}

static void test_fetcher_and_unparseable(void **state)
{
    (void)state;
    const char *lines[] = {"from pop.example.org [81.2.69.180] by localhost with POP3 "
                           "(fetchmail-6.4.37) for <bob@localhost> (single-drop)",
                           "from something weird", PUB1};
    struct sa_relay_facts f = {.ip = "127.0.0.1", .helo = "localhost"};
    struct sa_relays *r = chain(NULL, &f, lines, 3);
    /* the loopback relay before the fetcher is dropped from the trusted list */
    assert_int_equal(r->count[SA_RL_TRUSTED], 0);
    assert_string_equal(r->str[SA_RL_UNTRUSTED], PUB1_TEXT);
    assert_int_equal(r->unparseable, 1);
    sa_relays_free(r);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    const char *lines[] = {PRIV, PUB1};
    size_t lens[] = {strlen(PRIV), strlen(PUB1)};
    struct sa_relay_facts f = {.ip = "81.2.69.142", .helo = "x.example.org"};
    for (int n = 0; n < 400; n++) {
        struct sa_relays *r = NULL;
        util_alloc_fail_after(n);
        int rc = sa_relays_build(NULL, &f, lines, lens, 2, &r);
        util_alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(r->n, 3);
            sa_relays_free(r);
            return;
        }
    }
    fail_msg("never built");
}

/* ---- the functions, through the loader and the evaluator ---- */

static const char *const evals =
    "header T_ALL_TRUSTED eval:check_all_trusted()\n"
    "header T_NO_RELAYS eval:check_no_relays()\n"
    "header T_UNPARSEABLE eval:check_relays_unparseable()\n"
    "header T_NUMERIC_HELO eval:check_for_numeric_helo()\n"
    "header T_HELO_IP_MISMATCH eval:helo_ip_mismatch()\n"
    "header T_DOTCOM eval:check_for_no_rdns_dotcom_helo()\n"
    "header T_NO_REVERSE eval:check_for_sender_no_reverse()\n"
    "header T_TRAIL eval:check_for_forged_received_trail()\n"
    "header T_IP_HELO eval:check_for_forged_received_ip_helo()\n"
    "header T_FROM_DOM eval:check_for_from_domain_in_received_headers('example.org', 'true')\n"
    "header T_ILLEGAL eval:check_for_illegal_ip()\n"
    "header T_RDNS_NONE X-Spam-Relays-Untrusted =~ /^[^\\]]+ rdns= /\n"
    "header T_ALL_E ALL-EXTERNAL =~ /(?:^|\\n)Received:\\s.+\\nReceived:\\s/s\n"
    "header T_ALL_T ALL-TRUSTED =~ /^From: /m\n";

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

static void test_functions(void **state)
{
    (void)state;
    write_file("10_relay.cf", evals);
    struct loaded l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 14);
    const char *plain = "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n";
    /* no Received at all: every field could be a trusted relay's */
    assert_string_equal(run(l.r, plain, NULL), " T_NO_RELAYS T_ALL_T ");
    assert_true(has(hits(l.r, plain, NULL), "T_NO_RELAYS"));
    /* a public client HELOing as another public address, no reverse name */
    struct rules_facts f = {.client_addr = "81.2.69.145", .helo = "91.198.174.192",
                            .local_name = "mx.example.net"};
    assert_string_equal(run(l.r, plain, &f),
                        " T_NUMERIC_HELO T_HELO_IP_MISMATCH T_IP_HELO T_RDNS_NONE ");
    f.helo = "81.2.69.145";
    assert_string_equal(run(l.r, plain, &f), " T_NUMERIC_HELO T_RDNS_NONE ");
    f.helo = "smtp.hotmail.com";
    assert_string_equal(run(l.r, plain, &f), " T_DOTCOM T_RDNS_NONE ");
    f.client_name = "host.example.org";
    assert_string_equal(run(l.r, plain, &f), " T_NO_REVERSE ");
    /* an authenticated client: every relay trusted */
    struct rules_facts a = {.client_addr = "81.2.69.146", .helo = "laptop", .auth_login = "al"};
    assert_string_equal(run(l.r, plain, &a), " T_ALL_TRUSTED T_ALL_T ");
    const char *bad = "Received: from something weird\r\nFrom: a@example.org\r\n\r\nx\r\n";
    assert_string_equal(run(l.r, bad, &a), " T_UNPARSEABLE T_ALL_T ");
    /* each by= other than the rDNS domain of the relay before it */
    const char *trail =
        "Received: from a.example.com (a.example.com [81.2.69.170]) by b.example.info (Postfix) "
        "with ESMTP id 1A\r\n"
        "Received: from c.example.biz (c.example.biz [81.2.69.171]) by d.example.co (Postfix) "
        "with ESMTP id 1B\r\n"
        "Received: from e.example.edu (e.example.edu [81.2.69.172]) by f.example.mobi (Postfix) "
        "with ESMTP id 1C\r\n"
        "From: a@example.com\r\n\r\nx\r\n";
    assert_string_equal(run(l.r, trail, NULL), " T_NO_REVERSE T_TRAIL T_ALL_E ");
    const char *own =
        "Received: from m.example.org (m.example.org [81.2.69.173]) by mx.example.org (Postfix) "
        "with ESMTP id 1D\r\nFrom: a@example.org\r\n\r\nx\r\n";
    assert_string_equal(run(l.r, own, NULL), " T_NO_REVERSE T_FROM_DOM ");
    /* the session's relay is the first Received of the external part */
    assert_string_equal(run(l.r, own, &f), " T_NO_REVERSE T_FROM_DOM T_ALL_E ");
    unload(&l);
    unlink(write_file("10_relay.cf", ""));
}

/* trusted_networks from a .cf file: no longer an ignored setting, and used */
static void test_networks_from_the_files(void **state)
{
    (void)state;
    write_file("10_relay.cf", evals);
    write_file("20_nets.cf", "trusted_networks 81.2.69.0/24\ntrusted_networks 300.0.0.1\n");
    struct loaded l = load(NULL, false);
    for (size_t i = 0; i < l.rep.nignored; i++)
        assert_string_not_equal(l.rep.ignored[i].what, "trusted_networks");
    assert_int_equal(l.rep.warnings.n, 1);
    assert_string_equal(l.rep.warnings.v[0].msg,
                        "trusted_networks: not an address or network: 300.0.0.1");
    const char *plain = "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n";
    struct rules_facts f = {.client_addr = "81.2.69.145", .helo = "x.example.org"};
    assert_string_equal(run(l.r, plain, &f), " T_ALL_TRUSTED T_ALL_T ");
    unload(&l);
    unlink(write_file("10_relay.cf", ""));
    unlink(write_file("20_nets.cf", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inference_without_networks),
        cmocka_unit_test(test_facts_are_the_newest_relay),
        cmocka_unit_test(test_networks),
        cmocka_unit_test(test_fetcher_and_unparseable),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_networks_from_the_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
