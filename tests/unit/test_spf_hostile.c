/*
 * Hostile records against spf_check under ASan/UBSan, DNS from libspf2's
 * zone layer: macro expansion at and over the length limits, include chains
 * deeper than the limit, include and redirect loops, a record at and over
 * 64 KiB, ten thousand terms, a hundred MX and PTR names, hundreds of TXT
 * strings, an explanation that expands without bound, NUL and DEL octets,
 * and a deadline already passed.  Every case must end in the result RFC
 * 7208 gives it (permerror or temperror mostly), never a crash or a leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>

#include "spf/spf_check.h"
#include "spf/spf_explain.h"
#include "spf/spf_record.h"

static SPF_dns_server_t *zone;

static int setup(void **state)
{
    (void)state;
    zone = SPF_dns_zone_new(NULL, "hostile", 0);
    return zone ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    SPF_dns_free(zone);
    zone = NULL;
    return 0;
}

static void add(const char *name, ns_type type, const char *data)
{
    assert_int_equal(SPF_dns_zone_add_str(zone, name, type, NETDB_SUCCESS, data), SPF_E_SUCCESS);
}

static enum spf_result check(const char *sender, const char *ip, struct spf_check_result *out)
{
    struct spf_check_request req = {
        .ip = ip, .sender = sender, .helo = "helo.example", .identity = SPF_ID_MAILFROM};
    struct spf_check_result res;
    assert_int_equal(spf_check_host(zone, &req, &res), 0);
    enum spf_result r = res.result;
    if (out != NULL)
        *out = res;
    else
        spf_check_result_free(&res);
    return r;
}

static void test_macro_length_limits(void **state)
{
    (void)state;
    /* a 64-octet local part, a long sender domain, and %{S} repeated until the
     * expansion passes the bound: permerror, not an overflow */
    char local[65];
    memset(local, 'l', 64);
    local[64] = '\0';
    char sender[400];
    snprintf(sender, sizeof sender, "%s@m.example", local);
    char rec[4096] = "v=spf1 exists:";
    for (int i = 0; i < 150; i++)
        strcat(rec, "%{S}");
    strcat(rec, ".x.example -all");
    add("m.example", ns_t_txt, rec);
    struct spf_check_result res;
    assert_int_equal(check(sender, "192.0.2.1", &res), SPFC_PERMERROR);
    assert_non_null(strstr(res.problem, "too long"));
    spf_check_result_free(&res);

    /* below the bound the name is cut to 253 octets from the left and asked */
    add("n.example", ns_t_txt, "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{d} -all");
    assert_int_equal(
        check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@n.example",
              "192.0.2.1", NULL),
        SPFC_FAIL);
    /* a 300-octet label is never sent: the look-up is void */
    char big[400];
    memset(big, 'q', 300);
    big[300] = '\0';
    char s2[420];
    snprintf(s2, sizeof s2, "%s@o.example", big);
    add("o.example", ns_t_txt, "v=spf1 a:%{l}.o.example ?all");
    assert_int_equal(check(s2, "192.0.2.1", NULL), SPFC_NEUTRAL);
}

static void test_deep_include_chain(void **state)
{
    (void)state;
    char name[64], rec[128];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "d%d.chain.example", i);
        snprintf(rec, sizeof rec, "v=spf1 include:d%d.chain.example -all", i + 1);
        add(name, ns_t_txt, rec);
    }
    add("d40.chain.example", ns_t_txt, "v=spf1 +all");
    struct spf_check_result res;
    assert_int_equal(check("u@d0.chain.example", "192.0.2.1", &res), SPFC_PERMERROR);
    assert_int_equal(res.dns_terms, SPF_MAX_DNS_TERMS + 1);
    spf_check_result_free(&res);
    /* nine deep is within the limit */
    assert_int_equal(check("u@d31.chain.example", "192.0.2.1", NULL), SPFC_PASS);
}

/* The limit messages name the term that went over, not the record's domain. */
static void test_limit_messages_name_the_term(void **state)
{
    (void)state;
    for (int i = 1; i <= 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "a%d.example", i);
        add(name, ns_t_a, "198.51.100.1");
    }
    add("terms.example", ns_t_txt,
        "v=spf1 a:a1.example a:a2.example a:a3.example a:a4.example a:a5.example "
        "a:a6.example a:a7.example a:a8.example a:a9.example a:a10.example mx:eleventh.example "
        "-all");
    struct spf_check_result res;
    assert_int_equal(check("u@terms.example", "192.0.2.1", &res), SPFC_PERMERROR);
    assert_string_equal(res.problem, "more than 10 DNS-querying terms (at mx:eleventh.example)");
    spf_check_result_free(&res);

    add("redir.example", ns_t_txt,
        "v=spf1 a:a1.example a:a2.example a:a3.example a:a4.example a:a5.example "
        "a:a6.example a:a7.example a:a8.example a:a9.example a:a10.example "
        "redirect=next.example");
    assert_int_equal(check("u@redir.example", "192.0.2.1", &res), SPFC_PERMERROR);
    assert_string_equal(res.problem, "more than 10 DNS-querying terms (at redirect=next.example)");
    spf_check_result_free(&res);

    add("voids.example", ns_t_txt,
        "v=spf1 exists:v1.example exists:v2.example exists:third-void.example -all");
    assert_int_equal(check("u@voids.example", "192.0.2.1", &res), SPFC_PERMERROR);
    assert_string_equal(res.problem, "more than 2 void DNS look-ups (at third-void.example)");
    spf_check_result_free(&res);
}

static void test_loops(void **state)
{
    (void)state;
    add("self.example", ns_t_txt, "v=spf1 include:self.example -all");
    add("ping.example", ns_t_txt, "v=spf1 redirect=pong.example");
    add("pong.example", ns_t_txt, "v=spf1 redirect=ping.example");
    add("mix.example", ns_t_txt, "v=spf1 include:mix2.example redirect=mix.example");
    add("mix2.example", ns_t_txt, "v=spf1 redirect=mix.example");
    assert_int_equal(check("u@self.example", "192.0.2.1", NULL), SPFC_PERMERROR);
    assert_int_equal(check("u@ping.example", "192.0.2.1", NULL), SPFC_PERMERROR);
    assert_int_equal(check("u@mix.example", "192.0.2.1", NULL), SPFC_PERMERROR);
}

static char *terms_record(size_t nterms, const char *last)
{
    size_t cap = nterms * 24 + 64;
    char *r = malloc(cap);
    assert_non_null(r);
    size_t n = (size_t)snprintf(r, cap, "v=spf1");
    for (size_t i = 0; i < nterms; i++)
        n += (size_t)snprintf(r + n, cap - n, " ip4:10.%zu.%zu.0/24", (i / 250) % 250, i % 250);
    snprintf(r + n, cap - n, " %s", last);
    return r;
}

static void test_huge_records(void **state)
{
    (void)state;
    /* about 60 KiB, 3000 terms: evaluated to the end */
    char *r = terms_record(3000, "ip4:192.0.2.1 -all");
    assert_true(strlen(r) < SPF_RECORD_MAX);
    add("big.example", ns_t_txt, r);
    free(r);
    assert_int_equal(check("u@big.example", "192.0.2.1", NULL), SPFC_PASS);
    assert_int_equal(check("u@big.example", "192.0.2.2", NULL), SPFC_FAIL);
    /* over 64 KiB: permerror */
    r = terms_record(4500, "-all");
    assert_true(strlen(r) > SPF_RECORD_MAX);
    add("huge.example", ns_t_txt, r);
    free(r);
    struct spf_check_result res;
    assert_int_equal(check("u@huge.example", "192.0.2.1", &res), SPFC_PERMERROR);
    assert_non_null(strstr(res.problem, "longer"));
    spf_check_result_free(&res);
    /* ten thousand "a" terms that each cost a look-up: stopped at the 11th */
    char *many = malloc(6 + 10000 * 2 + 1);
    assert_non_null(many);
    strcpy(many, "v=spf1");
    for (int i = 0; i < 10000; i++)
        strcat(many + 6 + i * 2, " a");
    add("many.example", ns_t_txt, many);
    add("many.example", ns_t_a, "198.51.100.1");
    free(many);
    assert_int_equal(check("u@many.example", "192.0.2.1", &res), SPFC_PERMERROR);
    assert_int_equal(res.dns_terms, SPF_MAX_DNS_TERMS + 1);
    spf_check_result_free(&res);
}

static void test_many_rrs(void **state)
{
    (void)state;
    char name[64];
    /* 100 MX names: permerror (RFC 7208 4.6.4) */
    add("mxs.example", ns_t_txt, "v=spf1 mx -all");
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "10 mx%d.mxs.example", i);
        add("mxs.example", ns_t_mx, name);
    }
    assert_int_equal(check("u@mxs.example", "192.0.2.1", NULL), SPFC_PERMERROR);
    /* 100 PTR names, the client's only the 100th: past the 10 considered */
    add("ptrs.example", ns_t_txt, "v=spf1 ptr -all");
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "h%d.ptrs.example", i);
        add("1.2.0.192.in-addr.arpa", ns_t_ptr, name);
    }
    add("h99.ptrs.example", ns_t_a, "192.0.2.1");
    assert_int_equal(check("u@ptrs.example", "192.0.2.1", NULL), SPFC_FAIL);
    add("h3.ptrs.example", ns_t_a, "192.0.2.1");
    assert_int_equal(check("u@ptrs.example", "192.0.2.1", NULL), SPFC_PASS);
    /* 500 TXT strings, one of them SPF */
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "google-site-verification=%d", i);
        add("txts.example", ns_t_txt, name);
    }
    add("txts.example", ns_t_txt, "v=spf1 ip4:192.0.2.0/24 -all");
    assert_int_equal(check("u@txts.example", "192.0.2.1", NULL), SPFC_PASS);
    add("txts.example", ns_t_txt, "v=spf1 +all");
    assert_int_equal(check("u@txts.example", "192.0.2.1", NULL), SPFC_PERMERROR);
}

static void test_explanation_bounds(void **state)
{
    (void)state;
    add("exp.example", ns_t_txt, "v=spf1 -all exp=why.exp.example");
    char txt[2048] = "";
    for (int i = 0; i < 300; i++)
        strcat(txt, "%{S}");
    add("why.exp.example", ns_t_txt, txt);
    struct spf_check_result res;
    assert_int_equal(check("someone.with.a.long.name@exp.example", "192.0.2.1", &res), SPFC_FAIL);
    /* over SPF_EXPLAIN_MAX_EXPAND: no explanation, the fail stays */
    assert_null(res.explanation);
    spf_check_result_free(&res);
    add("exp2.example", ns_t_txt, "v=spf1 -all exp=why.exp2.example");
    memset(txt, 0, sizeof txt);
    for (int i = 0; i < 40; i++)
        strcat(txt, "%{s} ");
    add("why.exp2.example", ns_t_txt, txt);
    assert_int_equal(check("u@exp2.example", "192.0.2.1", &res), SPFC_FAIL);
    assert_non_null(res.explanation);
    assert_int_equal(strlen(res.explanation), SPF_EXPLAIN_MAX);
    spf_check_result_free(&res);
}

static void test_odd_octets(void **state)
{
    (void)state;
    add("del.example", ns_t_txt, "v=spf1 a:x.example\x7f -all");
    assert_int_equal(check("u@del.example", "192.0.2.1", NULL), SPFC_PERMERROR);
    add("ctl.example", ns_t_txt, "v=spf1 \x01 -all");
    assert_int_equal(check("u@ctl.example", "192.0.2.1", NULL), SPFC_PERMERROR);
    add("hi.example", ns_t_txt, "v=spf1 a:\xff\xfe.example -all");
    assert_int_equal(check("u@hi.example", "192.0.2.1", NULL), SPFC_PERMERROR);
    /* hostile senders and addresses */
    assert_int_equal(check("u@\xff.example", "192.0.2.1", NULL), SPFC_NONE);
    assert_int_equal(check("@", "192.0.2.1", NULL), SPFC_NONE);
    assert_int_equal(check("u@del.example", "not-an-ip", NULL), SPFC_PERMERROR);
    assert_int_equal(check("u@del.example", "", NULL), SPFC_PERMERROR);
}

static void test_deadline_passed(void **state)
{
    (void)state;
    add("late.example", ns_t_txt, "v=spf1 -all");
    struct spf_check_request req = {
        .ip = "192.0.2.1", .sender = "u@late.example", .helo = "h.example"};
    clock_gettime(CLOCK_MONOTONIC, &req.deadline);
    req.deadline.tv_sec -= 1;
    struct spf_check_result res;
    assert_int_equal(spf_check_host(zone, &req, &res), 0);
    assert_int_equal(res.result, SPFC_TEMPERROR);
    assert_non_null(strstr(res.problem, "time limit"));
    spf_check_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_macro_length_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_include_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_messages_name_the_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explanation_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_octets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_passed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
