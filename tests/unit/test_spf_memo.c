/*
 * Unit tests for spf_memo, the answers of one check so far as a DNS layer,
 * and the memoised replay built on it: check_host evaluated again and again,
 * each time with the answer to the one name the last evaluation missed
 * (taken from a libspf2 zone, as the loop takes it from the wire), ends with
 * the result, mechanism, problem and counts of one pass over the zone, the
 * RFC 7208 limits included, after exactly one evaluation per distinct
 * look-up plus one.  After a miss every look-up is TRY_AGAIN and only the
 * first is recorded; after expiry nothing is recorded and the check ends in
 * temperror; the memo holds at most SPF_MEMO_MAX answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>

#include "spf/spf_check.h"
#include "spf/spf_memo.h"

struct zrec {
    const char *name;
    ns_type type;
    const char *data; /* NULL: an empty answer */
};

static const struct zrec zone_records[] = {
    {"pass.test", ns_t_txt, "v=spf1 include:inc.pass.test -all"},
    {"inc.pass.test", ns_t_txt, "v=spf1 mx a:host.pass.test -all"},
    {"inc.pass.test", ns_t_mx, "mx1.pass.test"},
    {"inc.pass.test", ns_t_mx, "mx2.pass.test"},
    {"mx1.pass.test", ns_t_a, "198.51.100.1"},
    {"mx2.pass.test", ns_t_a, "198.51.100.2"},
    {"host.pass.test", ns_t_a, "192.0.2.10"},
    {"fail.test", ns_t_txt, "v=spf1 a -all exp=why.fail.test"},
    {"fail.test", ns_t_a, "198.51.100.9"},
    {"why.fail.test", ns_t_txt, "%{i} may not send for %{d}"},
    /* 11 DNS-querying terms (their names answer, below): permerror at the 11th */
    {"terms.test", ns_t_txt,
     "v=spf1 a:a1.terms.test a:a2.terms.test a:a3.terms.test a:a4.terms.test a:a5.terms.test "
     "a:a6.terms.test a:a7.terms.test a:a8.terms.test a:a9.terms.test a:a10.terms.test "
     "a:a11.terms.test -all"},
    /* 3 void look-ups: permerror at the third */
    {"void.test", ns_t_txt, "v=spf1 a:v1.void.test a:v2.void.test a:v3.void.test ~all"},
    {"ptr.test", ns_t_txt, "v=spf1 ptr:ptr.test -all"},
    {"10.2.0.192.in-addr.arpa", ns_t_ptr, "mail.ptr.test"},
    {"mail.ptr.test", ns_t_a, "192.0.2.10"},
    {NULL, 0, NULL},
};

static SPF_dns_server_t *zone_new(void)
{
    SPF_dns_server_t *z = SPF_dns_zone_new(NULL, "memo-test", 0);
    assert_non_null(z);
    for (const struct zrec *r = zone_records; r->name != NULL; r++)
        assert_int_equal(
            SPF_dns_zone_add_str(z, r->name, r->type, r->data ? NETDB_SUCCESS : NO_DATA, r->data),
            SPF_E_SUCCESS);
    for (int i = 1; i <= 11; i++) {
        char name[32];
        snprintf(name, sizeof name, "a%d.terms.test", i);
        assert_int_equal(SPF_dns_zone_add_str(z, name, ns_t_a, NETDB_SUCCESS, "198.51.100.77"),
                         SPF_E_SUCCESS);
    }
    return z;
}

static const struct spf_check_request *request(const char *sender, const char *ip)
{
    static struct spf_check_request req;
    req = (struct spf_check_request){
        .ip = ip,
        .sender = sender,
        .helo = "client.test",
        .receiver = "mx.test",
        .identity = SPF_ID_MAILFROM,
        .now = 1000000000,
    };
    return &req;
}

/* The replay as spf_async runs it, with the zone for the wire; returns the
 * number of evaluations. */
static unsigned replay(SPF_dns_server_t *zone, const struct spf_check_request *req,
                       struct spf_check_result *res)
{
    struct spf_memo *m = spf_memo_new(NULL);
    assert_non_null(m);
    unsigned evaluations = 0;
    for (;;) {
        spf_memo_rearm(m);
        evaluations++;
        assert_int_equal(spf_check_host(spf_memo_layer(m), req, res), 0);
        const char *name;
        ns_type type;
        bool cache;
        if (!spf_memo_missed(m, &name, &type, &cache))
            break;
        spf_check_result_free(res);
        assert_true(evaluations < 100);
        SPF_dns_rr_t *rr = SPF_dns_lookup(zone, name, type, cache);
        assert_non_null(rr);
        assert_int_equal(spf_memo_add(m, name, type, rr), 0);
    }
    assert_int_equal(spf_memo_count(m), evaluations - 1);
    spf_memo_free(m);
    return evaluations;
}

static void assert_same(const struct spf_check_result *a, const struct spf_check_result *b)
{
    assert_int_equal(a->result, b->result);
    assert_int_equal(a->dns_terms, b->dns_terms);
    assert_int_equal(a->void_lookups, b->void_lookups);
#define SAME_STR(f)                                                                                \
    do {                                                                                           \
        if (a->f == NULL || b->f == NULL)                                                          \
            assert_ptr_equal(a->f, b->f);                                                          \
        else                                                                                       \
            assert_string_equal(a->f, b->f);                                                       \
    } while (0)
    SAME_STR(mechanism);
    SAME_STR(problem);
    SAME_STR(explanation);
#undef SAME_STR
}

static void test_replay_is_one_pass(void **state)
{
    (void)state;
    static const struct {
        const char *sender, *ip;
        enum spf_result want;
        unsigned lookups; /* distinct names and types the check asks */
    } cases[] = {
        {"u@pass.test", "198.51.100.2", SPFC_PASS, 5}, /* TXT, TXT, MX, A mx1, A mx2 */
        {"u@pass.test", "192.0.2.10", SPFC_PASS, 6},   /* ... and A host */
        {"u@pass.test", "203.0.113.1", SPFC_FAIL, 6},
        {"u@fail.test", "203.0.113.1", SPFC_FAIL, 3}, /* TXT, A, the explanation */
        {"u@terms.test", "203.0.113.1", SPFC_PERMERROR, 11},
        {"u@void.test", "203.0.113.1", SPFC_PERMERROR, 4},
        {"u@ptr.test", "192.0.2.10", SPFC_PASS, 3}, /* TXT, PTR, A of the PTR name */
        {"u@none.test", "203.0.113.1", SPFC_NONE, 1},
    };
    SPF_dns_server_t *zone = zone_new();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct spf_check_request *req = request(cases[i].sender, cases[i].ip);
        struct spf_check_result direct, replayed;
        assert_int_equal(spf_check_host(zone, req, &direct), 0);
        unsigned n = replay(zone, req, &replayed);
        assert_int_equal(direct.result, cases[i].want);
        assert_same(&direct, &replayed);
        assert_int_equal(n, cases[i].lookups + 1);
        spf_check_result_free(&direct);
        spf_check_result_free(&replayed);
    }
    SPF_dns_free(zone);
}

static void test_first_miss_only(void **state)
{
    (void)state;
    struct spf_memo *m = spf_memo_new(NULL);
    SPF_dns_server_t *l = spf_memo_layer(m);
    SPF_dns_rr_t *rr = SPF_dns_lookup(l, "one.test", ns_t_txt, 1);
    assert_int_equal(rr->herrno, TRY_AGAIN);
    SPF_dns_rr_free(rr);
    rr = SPF_dns_lookup(l, "two.test", ns_t_a, 0);
    assert_int_equal(rr->herrno, TRY_AGAIN);
    SPF_dns_rr_free(rr);
    const char *name;
    ns_type type;
    bool cache;
    assert_true(spf_memo_missed(m, &name, &type, &cache));
    assert_string_equal(name, "one.test");
    assert_int_equal(type, ns_t_txt);
    assert_true(cache);
    /* an answer is found again whatever the case of the name asked */
    SPF_dns_rr_t *ans = SPF_dns_rr_new_init(NULL, "one.test", ns_t_txt, 60, HOST_NOT_FOUND);
    assert_int_equal(spf_memo_add(m, "one.test", ns_t_txt, ans), 0);
    spf_memo_rearm(m);
    assert_false(spf_memo_missed(m, &name, &type, &cache));
    rr = SPF_dns_lookup(l, "ONE.test", ns_t_txt, 1);
    assert_int_equal(rr->herrno, HOST_NOT_FOUND);
    SPF_dns_rr_free(rr);
    assert_false(spf_memo_missed(m, &name, &type, &cache));
    /* another type of the same name is another question */
    rr = SPF_dns_lookup(l, "one.test", ns_t_a, 0);
    SPF_dns_rr_free(rr);
    assert_true(spf_memo_missed(m, &name, &type, &cache));
    assert_int_equal(type, ns_t_a);
    assert_false(cache);
    spf_memo_free(m);
}

static void test_expired_ends_in_temperror(void **state)
{
    (void)state;
    SPF_dns_server_t *zone = zone_new();
    struct spf_memo *m = spf_memo_new(NULL);
    const struct spf_check_request *req = request("u@pass.test", "192.0.2.10");
    struct spf_check_result res;
    /* the record arrived, then the time ran out */
    assert_int_equal(
        spf_memo_add(m, "pass.test", ns_t_txt, SPF_dns_lookup(zone, "pass.test", ns_t_txt, 1)), 0);
    spf_memo_expire(m);
    spf_memo_rearm(m);
    assert_int_equal(spf_check_host(spf_memo_layer(m), req, &res), 0);
    const char *name;
    ns_type type;
    bool cache;
    assert_false(spf_memo_missed(m, &name, &type, &cache));
    assert_int_equal(res.result, SPFC_TEMPERROR);
    assert_string_equal(res.problem, "DNS error looking up inc.pass.test (TXT)");
    spf_check_result_free(&res);
    spf_memo_free(m);
    SPF_dns_free(zone);
}

static void test_bounded(void **state)
{
    (void)state;
    struct spf_memo *m = spf_memo_new(NULL);
    char name[64];
    for (int i = 0; i < SPF_MEMO_MAX; i++) {
        snprintf(name, sizeof name, "n%d.test", i);
        assert_int_equal(
            spf_memo_add(m, name, ns_t_a, SPF_dns_rr_new_init(NULL, name, ns_t_a, 60, NO_DATA)), 0);
    }
    assert_int_equal(spf_memo_add(m, "full.test", ns_t_a,
                                  SPF_dns_rr_new_init(NULL, "full.test", ns_t_a, 60, NO_DATA)),
                     -1);
    assert_int_equal(spf_memo_count(m), SPF_MEMO_MAX);
    /* full: a miss is TRY_AGAIN and not recorded, so the next pass is the last */
    SPF_dns_rr_t *rr = SPF_dns_lookup(spf_memo_layer(m), "more.test", ns_t_txt, 1);
    assert_int_equal(rr->herrno, TRY_AGAIN);
    SPF_dns_rr_free(rr);
    const char *n;
    ns_type type;
    bool cache;
    assert_false(spf_memo_missed(m, &n, &type, &cache));
    spf_memo_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_is_one_pass),
        cmocka_unit_test(test_first_miss_only),
        cmocka_unit_test(test_expired_ends_in_temperror),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
