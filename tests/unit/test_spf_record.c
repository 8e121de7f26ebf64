/*
 * Unit tests for spf_record: the RFC 7208 grammar and the static limits
 * libspf2's compiler gets wrong: /0 lengths accepted, leading zeros and
 * out-of-range lengths refused, domain-spec ends, macro syntax, repeated
 * redirect/exp, modifier names, non-ASCII octets, and the terms parsed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf/spf_record.h"

static int parse(const char *s, struct spf_record *r, struct spf_record_error *e)
{
    return spf_record_parse(s, strlen(s), r, e);
}

static void assert_valid(const char *s)
{
    struct spf_record r;
    struct spf_record_error e;
    if (parse(s, &r, &e) != 0)
        fail_msg("'%s' refused: %s (at %zu)", s, e.message, e.offset);
    spf_record_free(&r);
}

static void assert_invalid(const char *s)
{
    struct spf_record r;
    struct spf_record_error e;
    if (parse(s, &r, &e) == 0) {
        spf_record_free(&r);
        fail_msg("'%s' accepted", s);
    }
    assert_true(e.message[0] != '\0');
}

static void test_version(void **state)
{
    (void)state;
    assert_true(spf_record_is_spf1("v=spf1", 6));
    assert_true(spf_record_is_spf1("V=SPF1 -all", 11));
    assert_false(spf_record_is_spf1("v=spf10 -all", 12));
    assert_false(spf_record_is_spf1("v=spf1-all", 10));
    assert_false(spf_record_is_spf1("spf2.0/pra", 10));
    assert_valid("v=spf1");
    assert_valid("v=spf1   -all  ");
    assert_invalid("v=spf2 -all");
}

static void test_terms_parsed(void **state)
{
    (void)state;
    struct spf_record r;
    struct spf_record_error e;
    assert_int_equal(parse("v=spf1 ip4:192.0.2.0/24 ~a:mail.%{d}/28//64 -mx ?ptr include:_spf."
                           "example.com ip6:2001:db8::/32 exists:%{i}.x.example.org "
                           "redirect=other.example exp=why.example -ALL",
                           &r, &e),
                     0);
    assert_int_equal(r.nterms, 8);
    assert_int_equal(r.terms[0].mech, SPF_MECH_IP4);
    assert_int_equal(r.terms[0].cidr4, 24);
    assert_int_equal(r.terms[0].addr[0], 192);
    assert_int_equal(r.terms[1].mech, SPF_MECH_A);
    assert_int_equal(r.terms[1].qualifier, '~');
    assert_int_equal(r.terms[1].cidr4, 28);
    assert_int_equal(r.terms[1].cidr6, 64);
    assert_int_equal(r.terms[1].domain_len, strlen("mail.%{d}"));
    assert_memory_equal(r.terms[1].domain, "mail.%{d}", r.terms[1].domain_len);
    assert_int_equal(r.terms[2].mech, SPF_MECH_MX);
    assert_null(r.terms[2].domain);
    assert_int_equal(r.terms[2].cidr4, 32);
    assert_int_equal(r.terms[2].cidr6, 128);
    assert_int_equal(r.terms[3].mech, SPF_MECH_PTR);
    assert_int_equal(r.terms[4].mech, SPF_MECH_INCLUDE);
    assert_int_equal(r.terms[5].mech, SPF_MECH_IP6);
    assert_int_equal(r.terms[5].cidr6, 32);
    assert_int_equal(r.terms[6].mech, SPF_MECH_EXISTS);
    assert_int_equal(r.terms[7].mech, SPF_MECH_ALL);
    assert_int_equal(r.terms[7].qualifier, '-');
    assert_int_equal(r.terms[7].text_len, 4);
    assert_non_null(r.redirect);
    assert_int_equal(r.redirect_len, strlen("other.example"));
    assert_non_null(r.exp);
    spf_record_free(&r);
}

static void test_cidr_lengths(void **state)
{
    (void)state;
    /* libspf2 refuses these valid /0 lengths */
    assert_valid("v=spf1 ip4:1.2.3.4/0 -all");
    assert_valid("v=spf1 ip6:::/0 -all");
    assert_valid("v=spf1 a/0 mx//0 a:x.example/0//0");
    assert_valid("v=spf1 ip4:1.2.3.4/32 ip6:::1/128");
    assert_invalid("v=spf1 ip4:1.2.3.4/33");
    assert_invalid("v=spf1 ip4:1.2.3.4/032");
    assert_invalid("v=spf1 ip4:1.2.3.4//32");
    assert_invalid("v=spf1 ip4:1.2.3.4/");
    assert_invalid("v=spf1 ip6:::1/129");
    assert_invalid("v=spf1 ip6:::1/0128");
    assert_invalid("v=spf1 a/33");
    assert_invalid("v=spf1 a//129");
    assert_invalid("v=spf1 a:x.example/24/");
    assert_invalid("v=spf1 mx/");
}

static void test_networks(void **state)
{
    (void)state;
    assert_invalid("v=spf1 ip4");
    assert_invalid("v=spf1 ip4:");
    assert_invalid("v=spf1 ip4:1.2.3");
    assert_invalid("v=spf1 ip4:1.2.3.4:25");
    assert_invalid("v=spf1 ip4:01.2.3.4");
    assert_invalid("v=spf1 ip4:256.2.3.4");
    assert_invalid("v=spf1 ip4:::ffff:1.2.3.4");
    assert_invalid("v=spf1 ip6");
    assert_invalid("v=spf1 ip6:1.2.3.4");
    assert_invalid("v=spf1 ip6:2001:db8:::1");
    assert_valid("v=spf1 ip6:::ffff:1.2.3.4");
}

static void test_domain_specs(void **state)
{
    (void)state;
    assert_valid("v=spf1 a:example.com a:foo.example-dash");
    assert_valid("v=spf1 a:example.com. include:%{d} exists:%{ir}.%{v}._spf.%{d2}");
    assert_valid("v=spf1 a:foo:bar/baz.example.com");
    assert_invalid("v=spf1 a:museum");
    assert_invalid("v=spf1 a:museum.");
    assert_invalid("v=spf1 a:1.2.3.4");
    assert_invalid("v=spf1 a:foo.example.-dash");
    assert_invalid("v=spf1 a:");
    assert_invalid("v=spf1 include:");
    assert_invalid("v=spf1 include");
    assert_invalid("v=spf1 exists");
    assert_invalid("v=spf1 include:x.example/24");
    assert_invalid("v=spf1 exists:x.example/24");
    assert_invalid("v=spf1 ptr:x.example/24");
    assert_invalid("v=spf1 ptr:");
    assert_invalid("v=spf1 ptr/24");
}

static void test_macros(void **state)
{
    (void)state;
    assert_valid("v=spf1 exists:%{l1r+-}.%{o}.%%.%_.%-.x.example");
    assert_invalid("v=spf1 a:%{c}.example.com"); /* c, r, t: explanation only */
    assert_invalid("v=spf1 a:%{t}.example.com");
    assert_invalid("v=spf1 a:%{x}.example.com");
    assert_invalid("v=spf1 a:%{d0}.example.com"); /* DIGIT must be nonzero */
    assert_invalid("v=spf1 a:%{d.example.com");
    assert_invalid("v=spf1 a:%x.example.com");
    assert_invalid("v=spf1 a:example.com%");
    assert_invalid("v=spf1 a:%{d*}.example.com");
}

static void test_modifiers(void **state)
{
    (void)state;
    assert_valid("v=spf1 -all moo.cow-far_out=man:dog/cat default=deny");
    assert_valid("v=spf1 redirect=%{d}.example.com");
    assert_invalid("v=spf1 redirect=a.example redirect=b.example");
    assert_invalid("v=spf1 exp=a.example exp=b.example");
    assert_invalid("v=spf1 redirect=");
    assert_invalid("v=spf1 exp=");
    assert_invalid("v=spf1 redirect:a.example");
    assert_invalid("v=spf1 =a.example");
    assert_invalid("v=spf1 -bad=x");
    assert_invalid("v=spf1 9name=x");
    assert_invalid("v=spf1 x=%{z}");
    assert_invalid("v=spf1 redirect=a.example/24");
}

static void test_mechanism_names(void **state)
{
    (void)state;
    assert_valid("v=spf1 A MX PTR ?ALL");
    assert_invalid("v=spf1 all.");
    assert_invalid("v=spf1 all:x.example");
    assert_invalid("v=spf1 all/8");
    assert_invalid("v=spf1 moo");
    assert_invalid("v=spf1 +-all");
    assert_invalid("v=spf1 a-all");
}

static void test_octets(void **state)
{
    (void)state;
    assert_invalid("v=spf1 a:ex\xc3\xa4mple.com");
    assert_invalid("v=spf1 -all\t");
    assert_invalid("v=spf1 a:x.example\x7f");
    struct spf_record r;
    struct spf_record_error e;
    const char nul[] = "v=spf1 a:x.example\0 -all";
    assert_int_equal(spf_record_parse(nul, sizeof nul - 1, &r, &e), -1);
    assert_int_equal(e.offset, 18);
}

static void test_domain_end(void **state)
{
    (void)state;
    assert_true(spf_record_domain_end_ok("a.b", 3));
    assert_true(spf_record_domain_end_ok("%{d}", 4));
    assert_true(spf_record_domain_end_ok("x.123-45", 8));
    assert_false(spf_record_domain_end_ok("x.123", 5));
    assert_false(spf_record_domain_end_ok("x.-ab", 5));
    assert_false(spf_record_domain_end_ok("x.ab-", 5));
    assert_false(spf_record_domain_end_ok("", 0));
    assert_false(spf_record_domain_end_ok("%{d}com", 7));
}

static void test_limits(void **state)
{
    (void)state;
    size_t n = SPF_RECORD_MAX + 10;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memcpy(big, "v=spf1", 6);
    for (size_t i = 6; i < n; i += 2) {
        big[i] = ' ';
        if (i + 1 < n)
            big[i + 1] = 'a';
    }
    big[n] = '\0';
    struct spf_record r;
    struct spf_record_error e;
    assert_int_equal(spf_record_parse(big, n, &r, &e), -1);
    /* at the limit: every term is kept */
    size_t m = SPF_RECORD_MAX;
    assert_int_equal(spf_record_parse(big, m, &r, &e), 0);
    assert_int_equal(r.nterms, (m - 6) / 2);
    spf_record_free(&r);
    free(big);
    assert_true(spf_mech_queries_dns(SPF_MECH_INCLUDE));
    assert_false(spf_mech_queries_dns(SPF_MECH_IP4));
    assert_false(spf_mech_queries_dns(SPF_MECH_ALL));
    assert_string_equal(spf_mech_name(SPF_MECH_EXISTS), "exists");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),      cmocka_unit_test(test_terms_parsed),
        cmocka_unit_test(test_cidr_lengths), cmocka_unit_test(test_networks),
        cmocka_unit_test(test_domain_specs), cmocka_unit_test(test_macros),
        cmocka_unit_test(test_modifiers),    cmocka_unit_test(test_mechanism_names),
        cmocka_unit_test(test_octets),       cmocka_unit_test(test_domain_end),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
