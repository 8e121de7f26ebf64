/*
 * Unit tests for spf_macro and spf_explain: the RFC 7208 7.4 examples (IPv4
 * and IPv6), URL escaping, delimiters, %%/%_/%-, the letters allowed only in
 * explanations, %{p} through the validated-name callback, domain truncation to 253 octets,
 * expansion bounded at its limit, and explanation sanitising.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spf/spf_explain.h"
#include "spf/spf_macro.h"

static int p_calls;

static const char *validated_mx(void *arg)
{
    (void)arg;
    p_calls++;
    return "mx.example.org";
}

static struct spf_macro_ctx ctx4(void)
{
    struct spf_macro_ctx c = {
        .sender = "strong-bad@email.example.com",
        .local = "strong-bad",
        .sender_domain = "email.example.com",
        .domain = "email.example.com",
        .family = AF_INET,
        .helo = "mx.example.net",
        .receiver = "mx.example.org",
        .timestamp = 1234567890,
    };
    inet_pton(AF_INET, "192.0.2.3", c.ip);
    return c;
}

static void expect(const struct spf_macro_ctx *c, unsigned flags, const char *in, const char *want)
{
    char *out = NULL;
    enum spf_macro_status st = spf_macro_expand(in, strlen(in), flags, c, 4096, &out);
    if (st != SPF_MACRO_OK)
        fail_msg("'%s': status %d", in, (int)st);
    if (strcmp(out, want) != 0)
        fail_msg("'%s' gave '%s', want '%s'", in, out, want);
    free(out);
}

static void test_rfc_examples_ipv4(void **state)
{
    (void)state;
    struct spf_macro_ctx c = ctx4();
    expect(&c, 0, "%{s}", "strong-bad@email.example.com");
    expect(&c, 0, "%{o}", "email.example.com");
    expect(&c, 0, "%{d}", "email.example.com");
    expect(&c, 0, "%{d4}", "email.example.com");
    expect(&c, 0, "%{d3}", "email.example.com");
    expect(&c, 0, "%{d2}", "example.com");
    expect(&c, 0, "%{d1}", "com");
    expect(&c, 0, "%{dr}", "com.example.email");
    expect(&c, 0, "%{d2r}", "example.email");
    expect(&c, 0, "%{l}", "strong-bad");
    expect(&c, 0, "%{l-}", "strong.bad");
    expect(&c, 0, "%{lr}", "strong-bad");
    expect(&c, 0, "%{lr-}", "bad.strong");
    expect(&c, 0, "%{l1r-}", "strong");
    expect(&c, 0, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com");
    expect(&c, 0, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com");
    expect(&c, 0, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
           "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    expect(&c, 0, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
           "3.2.0.192.in-addr.strong.lp._spf.example.com");
    expect(&c, 0, "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net");
}

static void test_rfc_examples_ipv6(void **state)
{
    (void)state;
    struct spf_macro_ctx c = ctx4();
    c.family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::cb01", c.ip);
    expect(&c, 0, "%{ir}.%{v}._spf.%{d2}",
           "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
    expect(&c, SPF_MACRO_EXP, "%{c}", "2001:db8::cb01");
}

static void test_escapes_and_specials(void **state)
{
    (void)state;
    struct spf_macro_ctx c = ctx4();
    c.sender = "jo+x y@email.example.com";
    c.local = "jo+x y";
    expect(&c, 0, "%{L}", "jo%2Bx%20y");
    expect(&c, 0, "%{S}", "jo%2Bx%20y%40email.example.com");
    expect(&c, 0, "a%%b%_c%-d", "a%b c%20d");
    expect(&c, 0, "%{l+}", "jo.x y");
    expect(&c, 0, "%{d1000}", "email.example.com");
    expect(&c, 0, "%{h}", "mx.example.net");
    expect(&c, SPF_MACRO_EXP, "%{r} %{t} %{c}", "mx.example.org 1234567890 192.0.2.3");
}

static void test_syntax(void **state)
{
    (void)state;
    size_t pos;
    assert_true(spf_macro_check("%{d}", 4, 0, &pos));
    assert_false(spf_macro_check("%{c}", 4, 0, &pos));
    assert_true(spf_macro_check("%{c}", 4, SPF_MACRO_EXP, &pos));
    assert_false(spf_macro_check("a b", 3, 0, &pos));
    assert_int_equal(pos, 1);
    assert_true(spf_macro_check("a b", 3, SPF_MACRO_EXP, &pos));
    assert_false(spf_macro_check("%{d0}", 5, 0, &pos));
    assert_false(spf_macro_check("%{d", 3, 0, &pos));
    assert_false(spf_macro_check("%", 1, 0, &pos));
    assert_false(spf_macro_check("%a", 2, 0, &pos));
    assert_false(spf_macro_check("%{dr.x}", 7, 0, &pos));
    assert_true(spf_macro_check("%{d10r.-+,/_=}", 14, 0, &pos));
    char *out = (char *)1;
    struct spf_macro_ctx c = ctx4();
    assert_int_equal(spf_macro_expand("%{q}", 4, 0, &c, 100, &out), SPF_MACRO_SYNTAX);
    assert_null(out);
}

static void test_p_validated(void **state)
{
    (void)state;
    struct spf_macro_ctx c = ctx4();
    expect(&c, 0, "%{p}", "unknown");
    c.validated = validated_mx;
    p_calls = 0;
    expect(&c, 0, "%{p}.%{p2}", "mx.example.org.example.org");
    assert_int_equal(p_calls, 2);
}

static void test_truncate(void **state)
{
    (void)state;
    char d[600];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 50; i++)
        strcat(d, "label.");
    strcat(d, "example.com");
    spf_macro_truncate_domain(d);
    assert_true(strlen(d) <= 253);
    assert_true(strncmp(d, "label.", 6) == 0);
    size_t n = strlen(d);
    assert_string_equal(d + n - 11, "example.com");
    char one[400];
    memset(one, 'x', 300);
    one[300] = '\0';
    spf_macro_truncate_domain(one);
    assert_int_equal(strlen(one), 253);
    char small[] = "a.example";
    spf_macro_truncate_domain(small);
    assert_string_equal(small, "a.example");
}

static void test_bounded(void **state)
{
    (void)state;
    struct spf_macro_ctx c = ctx4();
    /* %{S} of a 28-octet sender escapes to 30; 200 of them pass 4096. */
    char in[1000] = "";
    for (int i = 0; i < 200; i++)
        strcat(in, "%{S}");
    char *out = NULL;
    assert_int_equal(spf_macro_expand(in, strlen(in), 0, &c, 4096, &out), SPF_MACRO_TOO_LONG);
    assert_null(out);
    assert_int_equal(spf_macro_expand(in, strlen(in), 0, &c, 200 * 30, &out), SPF_MACRO_OK);
    assert_int_equal(strlen(out), 200 * 30);
    free(out);
}

static void test_explain(void **state)
{
    (void)state;
    struct spf_macro_ctx c = ctx4();
    char *out;
    const char *t = "%{i} is not one of %{d}'s designated mail servers.";
    assert_int_equal(spf_explain_expand(t, strlen(t), &c, &out), 0);
    assert_string_equal(out,
                        "192.0.2.3 is not one of email.example.com's designated mail servers.");
    free(out);
    assert_int_equal(spf_explain_expand("bad %{x}", 8, &c, &out), -1);
    assert_null(out);
    assert_int_equal(spf_explain_expand("caf\xc3\xa9", 5, &c, &out), -1);
    /* octets from macro values are made safe */
    c.local = "a\r\nb";
    assert_int_equal(spf_explain_expand("%{l}", 4, &c, &out), 0);
    assert_string_equal(out, "a??b");
    free(out);
    char longt[2000];
    memset(longt, 'y', sizeof longt - 1);
    longt[sizeof longt - 1] = '\0';
    assert_int_equal(spf_explain_expand(longt, strlen(longt), &c, &out), 0);
    assert_int_equal(strlen(out), SPF_EXPLAIN_MAX);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_examples_ipv4),
        cmocka_unit_test(test_rfc_examples_ipv6),
        cmocka_unit_test(test_escapes_and_specials),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_p_validated),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
