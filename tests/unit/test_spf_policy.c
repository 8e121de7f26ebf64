/*
 * Unit tests for spf_policy, spf_header and the SPF networks (util/net): the default result ->
 * action table and its replies (550 5.7.23 with the explanation, 451 4.7.24,
 * 550 5.7.24), domain and recipient lists, Received-SPF and
 * Authentication-Results values (quoting, folding, hostile octets), reading
 * the authserv-id of a received Authentication-Results, and CIDR exemption
 * matching for IPv4, IPv6 and IPv4-mapped clients.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf/spf_header.h"
#include "util/net.h"
#include "spf/spf_policy.h"

static struct spf_check_result result(enum spf_result r, const char *sender, const char *domain)
{
    struct spf_check_result res = {.result = r, .identity = SPF_ID_MAILFROM};
    res.sender = (char *)sender;
    res.domain = (char *)domain;
    return res;
}

static void test_defaults(void **state)
{
    (void)state;
    struct spf_policy p;
    spf_policy_defaults(&p);
    assert_int_equal(p.action[SPFC_FAIL], SPF_ACT_REJECT);
    assert_int_equal(p.action[SPFC_TEMPERROR], SPF_ACT_TEMPFAIL);
    assert_int_equal(p.action[SPFC_PERMERROR], SPF_ACT_TAG);
    assert_int_equal(p.action[SPFC_SOFTFAIL], SPF_ACT_TAG);
    assert_int_equal(p.action[SPFC_NEUTRAL], SPF_ACT_TAG);
    assert_int_equal(p.action[SPFC_NONE], SPF_ACT_TAG);
    assert_int_equal(p.action[SPFC_PASS], SPF_ACT_TAG);
    assert_int_equal(spf_action_parse("Reject"), SPF_ACT_REJECT);
    assert_int_equal(spf_action_parse("tempfail"), SPF_ACT_TEMPFAIL);
    assert_int_equal(spf_action_parse("tag"), SPF_ACT_TAG);
    assert_int_equal(spf_action_parse("drop"), -1);
    assert_int_equal(spf_action_parse(NULL), -1);
    assert_int_equal(spf_policy_stronger(SPF_ACT_TAG, SPF_ACT_TEMPFAIL), SPF_ACT_TEMPFAIL);
    assert_int_equal(spf_policy_stronger(SPF_ACT_REJECT, SPF_ACT_TEMPFAIL), SPF_ACT_REJECT);
    assert_int_equal(spf_result_parse("SoftFail"), SPFC_SOFTFAIL);
    assert_int_equal(spf_result_parse("unknown"), -1);
}

static void test_replies(void **state)
{
    (void)state;
    char buf[512];
    struct spf_check_result r = result(SPFC_FAIL, "a@example.com", "example.com");
    spf_policy_reply(SPF_ACT_REJECT, &r, "192.0.2.1", buf, sizeof buf);
    assert_string_equal(
        buf, "550 5.7.23 SPF fail: 192.0.2.1 is not allowed to send mail as a@example.com");
    r.explanation = "Go away, 192.0.2.1\r\n250 ok";
    spf_policy_reply(SPF_ACT_REJECT, &r, "192.0.2.1", buf, sizeof buf);
    assert_string_equal(buf, "550 5.7.23 Go away, 192.0.2.1??250 ok");

    r = result(SPFC_TEMPERROR, "a@example.com", "example.com");
    spf_policy_reply(SPF_ACT_TEMPFAIL, &r, "192.0.2.1", buf, sizeof buf);
    assert_true(strncmp(buf, "451 4.7.24 ", 11) == 0);

    r = result(SPFC_PERMERROR, "a@example.com", "example.com");
    r.problem = "more than 10 DNS-querying terms";
    spf_policy_reply(SPF_ACT_REJECT, &r, "192.0.2.1", buf, sizeof buf);
    assert_string_equal(buf, "550 5.7.24 SPF permerror for a@example.com: more than 10 "
                             "DNS-querying terms");

    r = result(SPFC_SOFTFAIL, "a@example.com", "example.com");
    spf_policy_reply(SPF_ACT_REJECT, &r, "192.0.2.1", buf, sizeof buf);
    assert_true(strncmp(buf, "550 5.7.23 SPF softfail", 23) == 0);
    spf_policy_reply(SPF_ACT_TEMPFAIL, &r, "192.0.2.1", buf, sizeof buf);
    assert_true(strncmp(buf, "451 4.7.23 ", 11) == 0);

    /* a small buffer is cut, NUL-terminated */
    char tiny[20];
    size_t n = spf_policy_reply(SPF_ACT_REJECT, &r, "192.0.2.1", tiny, sizeof tiny);
    assert_int_equal(n, sizeof tiny - 1);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_lists(void **state)
{
    (void)state;
    char *domains[] = {"example.org", ".lists.example.net", "trailing.example."};
    assert_true(spf_domain_listed(domains, 3, "EXAMPLE.org"));
    assert_false(spf_domain_listed(domains, 3, "sub.example.org"));
    assert_true(spf_domain_listed(domains, 3, "a.lists.example.net"));
    assert_false(spf_domain_listed(domains, 3, "lists.example.net"));
    assert_false(spf_domain_listed(domains, 3, "xlists.example.net"));
    assert_true(spf_domain_listed(domains, 3, "trailing.example"));
    assert_false(spf_domain_listed(domains, 3, NULL));
    char *rcpts[] = {"postmaster", "abuse@example.org"};
    assert_true(spf_rcpt_listed(rcpts, 2, "PostMaster@example.com"));
    assert_true(spf_rcpt_listed(rcpts, 2, "postmaster"));
    assert_true(spf_rcpt_listed(rcpts, 2, "abuse@EXAMPLE.org"));
    assert_false(spf_rcpt_listed(rcpts, 2, "abuse@example.com"));
    assert_false(spf_rcpt_listed(rcpts, 2, "postmaster2@example.com"));
}

static void test_received_spf(void **state)
{
    (void)state;
    struct spf_check_result r = result(SPFC_PASS, "user@example.com", "example.com");
    r.mechanism = "ip4:192.0.2.0/24";
    char *v = spf_header_received(&r, "192.0.2.1", "mail.example.com", "user@example.com",
                                  "mx.example.org");
    assert_non_null(v);
    assert_string_equal(v, "pass (mx.example.org: domain of user@example.com designates\r\n"
                           "\t192.0.2.1 as permitted sender) client-ip=192.0.2.1;\r\n"
                           "\tenvelope-from=\"user@example.com\"; helo=mail.example.com;\r\n"
                           "\treceiver=mx.example.org; identity=mailfrom;\r\n"
                           "\tmechanism=\"ip4:192.0.2.0/24\"");
    free(v);

    /* hostile HELO and sender: quoted, escaped, no CR/LF of their own */
    r = result(SPFC_PERMERROR, "\"x)\\\"\"@example.com", "example.com");
    r.problem = "bad\r\nrecord";
    v = spf_header_received(&r, "2001:db8::1", "evil\r\nX-Injected: 1", "x\"y@example.com", NULL);
    assert_non_null(v);
    assert_non_null(strstr(v, "helo=\"evil??X-Injected: 1\""));
    assert_non_null(strstr(v, "envelope-from=\"x\\\"y@example.com\""));
    assert_non_null(strstr(v, "problem=\"bad??record\""));
    assert_non_null(strstr(v, "receiver=unknown"));
    assert_non_null(strstr(v, "\\)"));
    for (const char *p = v; *p; p++) {
        if (*p == '\r')
            assert_true(p[1] == '\n' && p[2] == '\t');
        if (*p == '\n')
            assert_true(p > v && p[-1] == '\r');
    }
    free(v);

    r = result(SPFC_NONE, "postmaster@helo.example", "helo.example");
    r.identity = SPF_ID_HELO;
    v = spf_header_received(&r, "192.0.2.1", "helo.example", "", "mx.example.org");
    assert_non_null(strstr(v, "identity=helo"));
    assert_non_null(strstr(v, "envelope-from=\"\""));
    free(v);
}

static void test_auth_results(void **state)
{
    (void)state;
    struct spf_check_result a = result(SPFC_FAIL, "user@example.com", "example.com");
    struct spf_check_result h =
        result(SPFC_PASS, "postmaster@mail.example.com", "mail.example.com");
    h.identity = SPF_ID_HELO;
    const struct spf_check_result *both[] = {&a, &h};
    char *v = spf_header_auth_results("mx.example.org", both, 2);
    assert_string_equal(v, "mx.example.org; spf=fail\r\n"
                           "\tsmtp.mailfrom=user@example.com; spf=pass smtp.helo=mail.example.com");
    free(v);
    struct spf_check_result t = result(SPFC_TEMPERROR, "odd\"local@example.com", "example.com");
    t.problem = "DNS error looking up example.com (TXT)";
    const struct spf_check_result *one[] = {&t};
    v = spf_header_auth_results("mx.example.org", one, 1);
    assert_string_equal(v, "mx.example.org; spf=temperror\r\n"
                           "\treason=\"DNS error looking up example.com (TXT)\"\r\n"
                           "\tsmtp.mailfrom=\"odd\\\"local@example.com\"");
    free(v);
    v = spf_header_auth_results("mx.example.org", NULL, 0);
    assert_string_equal(v, "mx.example.org; none");
    free(v);
}

static void test_authserv_id(void **state)
{
    (void)state;
    char id[64];
    const char *v = " mx.example.org; spf=pass smtp.mailfrom=a@b";
    assert_true(spf_header_authserv_id(v, strlen(v), id, sizeof id));
    assert_string_equal(id, "mx.example.org");
    v = " (forged)\r\n\t(nested (comment)) MX.Example.Org 1; none";
    assert_true(spf_header_authserv_id(v, strlen(v), id, sizeof id));
    assert_string_equal(id, "MX.Example.Org");
    v = " \"quoted\\\"id\"; none";
    assert_true(spf_header_authserv_id(v, strlen(v), id, sizeof id));
    assert_string_equal(id, "quoted\"id");
    v = "mx.example.org;";
    assert_true(spf_header_authserv_id(v, strlen(v), id, sizeof id));
    assert_string_equal(id, "mx.example.org");
    v = "   ";
    assert_false(spf_header_authserv_id(v, strlen(v), id, sizeof id));
    v = " (unterminated";
    assert_false(spf_header_authserv_id(v, strlen(v), id, sizeof id));
    v = " \"unterminated";
    assert_false(spf_header_authserv_id(v, strlen(v), id, sizeof id));
    char small[4];
    v = "mx.example.org";
    assert_false(spf_header_authserv_id(v, strlen(v), small, sizeof small));
    /* not NUL-terminated: only len octets are read */
    assert_true(spf_header_authserv_id("abcdef", 3, id, sizeof id));
    assert_string_equal(id, "abc");
}

/* The SPF plugin's reading of exempt_networks and trusted_forwarders. */
static int parse_net(const char *s, struct net_range *out, const char **err)
{
    return net_range_parse_text(s, strlen(s), 0, out, err);
}

static void test_networks(void **state)
{
    (void)state;
    struct net_range n[4];
    const char *err;
    assert_int_equal(parse_net("192.0.2.0/24", &n[0], &err), 0);
    assert_int_equal(parse_net("2001:db8::/32", &n[1], &err), 0);
    assert_int_equal(parse_net("198.51.100.7", &n[2], &err), 0);
    assert_int_equal(n[2].prefix, 32);
    assert_int_equal(parse_net("::ffff:203.0.113.0/120", &n[3], &err), 0);
    assert_true(net_ranges_match_text(n, 4, "192.0.2.200"));
    assert_false(net_ranges_match_text(n, 4, "192.0.3.1"));
    assert_true(net_ranges_match_text(n, 4, "2001:db8:1::5"));
    assert_false(net_ranges_match_text(n, 4, "2001:db9::5"));
    assert_true(net_ranges_match_text(n, 4, "198.51.100.7"));
    assert_false(net_ranges_match_text(n, 4, "198.51.100.8"));
    assert_true(net_ranges_match_text(n, 4, "::ffff:192.0.2.9")); /* mapped client = IPv4 */
    assert_true(net_ranges_match_text(n, 4, "203.0.113.44"));     /* mapped network = IPv4 */
    assert_false(net_ranges_match_text(n, 4, "not-an-address"));
    assert_false(net_ranges_match_text(n, 4, NULL));
    struct net_range any;
    assert_int_equal(parse_net("0.0.0.0/0", &any, &err), 0);
    assert_true(net_ranges_match_text(&any, 1, "203.0.113.1"));
    assert_false(net_ranges_match_text(&any, 1, "2001:db8::1"));
    assert_int_equal(parse_net("10.0.0.0/7", &any, &err), 0);
    assert_true(net_ranges_match_text(&any, 1, "11.255.0.1"));
    assert_false(net_ranges_match_text(&any, 1, "12.0.0.1"));
    assert_int_equal(parse_net("192.0.2.0/33", &any, &err), -1);
    assert_int_equal(parse_net("2001:db8::/129", &any, &err), -1);
    assert_int_equal(parse_net("192.0.2.0/", &any, &err), -1);
    assert_int_equal(parse_net("192.0.2.0/2x", &any, &err), -1);
    assert_int_equal(parse_net("example.org", &any, &err), -1);
    assert_int_equal(parse_net("", &any, &err), -1);
    assert_non_null(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_replies),
        cmocka_unit_test(test_lists),        cmocka_unit_test(test_received_spf),
        cmocka_unit_test(test_auth_results), cmocka_unit_test(test_authserv_id),
        cmocka_unit_test(test_networks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
