/*
 * Unit tests for the dnsbl plugin's pure parts: the postscreen site list
 * (domains, filters with numbers, ranges and lists, weights, separators)
 * and each error with its offset; filter matching; IPv4, IPv6 (nibble
 * form) and IPv4-mapped query names; RHSBL names; symbol names; zone
 * routes; and the answer cache (TTL, bound, replacement).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "plugins/dnsbl/dnsbl_cache.h"
#include "plugins/dnsbl/dnsbl_site.h"

static struct dnsbl_sites parse_ok(const char *text)
{
    struct dnsbl_sites s;
    const char *why = NULL;
    size_t at = 0;
    int rc = dnsbl_sites_parse(text, strlen(text), &s, &why, &at);
    if (rc != 0)
        print_message("%s: %s at %zu\n", text, why, at);
    assert_int_equal(rc, 0);
    return s;
}

static void parse_bad(const char *text, size_t want_at, const char *want)
{
    struct dnsbl_sites s;
    const char *why = NULL;
    size_t at = 0;
    assert_int_equal(dnsbl_sites_parse(text, strlen(text), &s, &why, &at), -1);
    if (at != want_at || strcmp(why, want) != 0)
        print_message("%s: got '%s' at %zu\n", text, why, at);
    assert_string_equal(why, want);
    assert_int_equal(at, want_at);
    assert_null(s.v);
}

static const uint8_t *ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    static uint8_t v[4];
    v[0] = a, v[1] = b, v[2] = c, v[3] = d;
    return v;
}

static void test_postscreen_examples(void **state)
{
    (void)state;
    struct dnsbl_sites s = parse_ok("zen.spamhaus.org=127.0.0.[2..11]*3, "
                                    "list.dnswl.org=127.0.[0..255].[1..3]*-2");
    assert_int_equal(s.n, 2);
    assert_string_equal(s.v[0].domain, "zen.spamhaus.org");
    assert_true(s.v[0].has_filter);
    assert_true(s.v[0].weight == 3);
    assert_true(dnsbl_site_match(&s.v[0], ip(127, 0, 0, 2)));
    assert_true(dnsbl_site_match(&s.v[0], ip(127, 0, 0, 11)));
    assert_false(dnsbl_site_match(&s.v[0], ip(127, 0, 0, 1)));
    assert_false(dnsbl_site_match(&s.v[0], ip(127, 0, 0, 12)));
    assert_false(dnsbl_site_match(&s.v[0], ip(127, 0, 1, 2)));
    assert_string_equal(s.v[1].domain, "list.dnswl.org");
    assert_true(s.v[1].weight == -2);
    assert_true(dnsbl_site_match(&s.v[1], ip(127, 0, 255, 3)));
    assert_true(dnsbl_site_match(&s.v[1], ip(127, 0, 0, 1)));
    assert_false(dnsbl_site_match(&s.v[1], ip(127, 0, 9, 0)));
    assert_false(dnsbl_site_match(&s.v[1], ip(127, 1, 9, 1)));
    dnsbl_sites_free(&s);
}

static void test_forms(void **state)
{
    (void)state;
    /* bare domain: any answer, weight 1; blanks and commas separate; lists in [] */
    struct dnsbl_sites s =
        parse_ok("  BL.Example  b.example*0.5,,c.example=127.0.0.[2;4..5;9]\n\td.example*+2 ");
    assert_int_equal(s.n, 4);
    assert_string_equal(s.v[0].domain, "bl.example"); /* lower-cased */
    assert_false(s.v[0].has_filter);
    assert_true(s.v[0].weight == 1);
    assert_true(dnsbl_site_match(&s.v[0], ip(10, 1, 2, 3)));
    assert_true(s.v[1].weight == 0.5);
    assert_true(dnsbl_site_match(&s.v[2], ip(127, 0, 0, 2)));
    assert_false(dnsbl_site_match(&s.v[2], ip(127, 0, 0, 3)));
    assert_true(dnsbl_site_match(&s.v[2], ip(127, 0, 0, 4)));
    assert_true(dnsbl_site_match(&s.v[2], ip(127, 0, 0, 5)));
    assert_false(dnsbl_site_match(&s.v[2], ip(127, 0, 0, 6)));
    assert_true(dnsbl_site_match(&s.v[2], ip(127, 0, 0, 9)));
    assert_true(s.v[3].weight == 2);
    dnsbl_sites_free(&s);
    /* the same domain twice, each entry its own */
    s = parse_ok("z.example=127.0.0.2*3 z.example=127.0.0.4*2");
    assert_int_equal(s.n, 2);
    dnsbl_sites_free(&s);
}

static void test_errors(void **state)
{
    (void)state;
    parse_bad("", 0, "no site");
    parse_bad(" , ", 3, "no site");
    parse_bad("bad_domain!", 0,
              "not a domain name (LDH labels of 1 to 63 octets, at most 180 in all)");
    parse_bad("a..b", 0, "not a domain name (LDH labels of 1 to 63 octets, at most 180 in all)");
    parse_bad("-a.b", 0, "not a domain name (LDH labels of 1 to 63 octets, at most 180 in all)");
    parse_bad("ok.example, =1.2.3.4", 12,
              "not a domain name (LDH labels of 1 to 63 octets, at most 180 in all)");
    parse_bad("a.b=127.0.0", 11, "a filter has four octets: expected '.'");
    parse_bad("a.b=127.0.0.256", 15, "an octet is more than 255");
    parse_bad("a.b=127.0.0.[5..2]", 17, "a range ends below its start");
    parse_bad("a.b=127.0.0.[2,3]", 14, "expected ';', '..' or ']' in a filter");
    parse_bad("a.b=127.0.0.[2", 14, "expected ';', '..' or ']' in a filter");
    parse_bad("a.b=127.0.0.x", 12, "expected a number from 0 to 255");
    parse_bad("a.b=", 4, "expected a number from 0 to 255"); /* found by the fuzzer */
    parse_bad("a.b=127.0.0.", 12, "expected a number from 0 to 255");
    parse_bad("a.b*", 4, "expected a weight such as 3, -2 or 0.5 after '*'");
    parse_bad("a.b*3.", 6, "expected a weight such as 3, -2 or 0.5 after '*'");
    parse_bad("a.b*1001", 8, "a weight must be from -1000 to 1000");
    parse_bad("a.b*3x", 5, "expected ',' or a blank after a site");
    parse_bad("a.b=127.0.0.1.5", 13, "expected ',' or a blank after a site");
    char big[200];
    memset(big, 'a', sizeof big);
    big[199] = '\0';
    big[60] = '.';
    big[120] = '.';
    big[180] = '.';
    parse_bad(big, 0, "not a domain name (LDH labels of 1 to 63 octets, at most 180 in all)");
    /* 65 sites */
    char many[65 * 4 + 1] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, "a.b ");
    parse_bad(many, 256, "more than 64 sites");
}

static void test_names(void **state)
{
    (void)state;
    char out[DNSBL_NAME_MAX];
    assert_true(dnsbl_ip_name("192.0.2.1", "zen.example", out));
    assert_string_equal(out, "1.2.0.192.zen.example");
    assert_true(dnsbl_ip_name("2001:db8::1", "bl.example", out));
    assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
                             "bl.example");
    assert_true(dnsbl_ip_name("::ffff:198.51.100.7", "bl.example", out));
    assert_string_equal(out, "7.100.51.198.bl.example");
    assert_false(dnsbl_ip_name("not-an-ip", "bl.example", out));
    assert_false(dnsbl_ip_name("1.2.3", "bl.example", out));

    assert_true(dnsbl_rhs_name("Spam.Example.", "dbl.example", out));
    assert_string_equal(out, "spam.example.dbl.example");
    assert_false(dnsbl_rhs_name("localhost", "dbl.example", out)); /* one label */
    assert_false(dnsbl_rhs_name("[192.0.2.1]", "dbl.example", out));
    assert_false(dnsbl_rhs_name("a b.example", "dbl.example", out));
    assert_false(dnsbl_rhs_name("", "dbl.example", out));

    char sym[64];
    dnsbl_symbol_name("DNSBL_", "zen.spam-haus.org", sym, sizeof sym);
    assert_string_equal(sym, "DNSBL_ZEN_SPAM_HAUS_ORG");
    dnsbl_symbol_name("RHSBL_SENDER_", "dbl.example", sym, 16);
    assert_string_equal(sym, "RHSBL_SENDER_DB"); /* cut, terminated */

    char zone[200], server[64];
    const char *why = NULL;
    assert_int_equal(dnsbl_route_parse("Void.Test=127.0.0.1:5399", zone, sizeof zone, server,
                                       sizeof server, &why),
                     0);
    assert_string_equal(zone, "void.test");
    assert_string_equal(server, "127.0.0.1:5399");
    assert_int_equal(dnsbl_route_parse("[::1]:53", zone, sizeof zone, server, sizeof server, &why),
                     -1);
    assert_string_equal(why, "want ZONE=ADDRESS[:PORT]");
    assert_int_equal(
        dnsbl_route_parse("a.test=ns.example", zone, sizeof zone, server, sizeof server, &why), -1);
    assert_string_equal(why, "the nameserver must be a numeric address, with :PORT if not 53");
}

static void test_cache(void **state)
{
    (void)state;
    struct dnsbl_cache *c = dnsbl_cache_new(2);
    struct dnsbl_answer a = {.n = 1, .addr = {{127, 0, 0, 2}}}, none = {0}, got;
    dnsbl_cache_put(c, "2.0.0.127.bl", &a, 10, 100);
    dnsbl_cache_put(c, "3.0.0.127.bl", &none, 5, 100);
    assert_true(dnsbl_cache_get(c, "2.0.0.127.bl", 109.9, &got));
    assert_int_equal(got.n, 1);
    assert_int_equal(got.addr[0][3], 2);
    assert_true(dnsbl_cache_get(c, "3.0.0.127.bl", 104, &got));
    assert_int_equal(got.n, 0);
    assert_false(dnsbl_cache_get(c, "3.0.0.127.bl", 105, &got)); /* expired, and gone */
    assert_int_equal(dnsbl_cache_size(c), 1);
    dnsbl_cache_put(c, "4.0.0.127.bl", &none, 5, 106);
    dnsbl_cache_put(c, "5.0.0.127.bl", &none, 5, 106); /* full: the oldest goes */
    assert_int_equal(dnsbl_cache_size(c), 2);
    assert_false(dnsbl_cache_get(c, "2.0.0.127.bl", 106, &got));
    assert_true(dnsbl_cache_get(c, "4.0.0.127.bl", 106, &got));
    dnsbl_cache_put(c, "4.0.0.127.bl", &a, 50, 106); /* replaced */
    assert_true(dnsbl_cache_get(c, "4.0.0.127.bl", 150, &got));
    assert_int_equal(got.n, 1);
    dnsbl_cache_put(c, "6.0.0.127.bl", &a, 0, 106); /* no TTL: not kept */
    assert_false(dnsbl_cache_get(c, "6.0.0.127.bl", 106, &got));
    dnsbl_cache_unref(dnsbl_cache_ref(c));
    dnsbl_cache_unref(c);
    struct dnsbl_cache *off = dnsbl_cache_new(0);
    dnsbl_cache_put(off, "x", &a, 10, 0);
    assert_false(dnsbl_cache_get(off, "x", 0, &got));
    dnsbl_cache_unref(off);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postscreen_examples),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
