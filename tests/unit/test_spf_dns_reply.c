/*
 * Unit tests for spf_dns_reply: DNS replies built here octet by octet, as
 * c-ares would hand them to a query's callback, made into libspf2 records.
 * TXT strings joined into one record per RR and NUL made DEL; A and AAAA
 * through a CNAME, records of other names, types and classes left out; MX
 * and PTR names through compression pointers; TTLs (least of the set, cut
 * to 15 minutes); every c-ares status mapped to its herrno; malformed and
 * hostile replies (short rdata, an answer count past the end, a pointer
 * loop, a PTR target that is no host name) giving TRY_AGAIN and no records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "spf/spf_dns_reply.h"

/* ---- a reply, octet by octet ---- */

struct msg {
    unsigned char b[8192];
    size_t n;
    size_t ancount_at;
    unsigned ancount;
};

static void put8(struct msg *m, unsigned v)
{
    assert_true(m->n < sizeof m->b);
    m->b[m->n++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void put32(struct msg *m, unsigned long v)
{
    put16(m, (unsigned)(v >> 16));
    put16(m, (unsigned)(v & 0xffff));
}

static void put_bytes(struct msg *m, const void *p, size_t len)
{
    assert_true(len <= sizeof m->b - m->n);
    memcpy(m->b + m->n, p, len);
    m->n += len;
}

/* "a.b.c" as labels and the root; "@" alone: a pointer to the question name. */
static void put_name(struct msg *m, const char *name)
{
    if (strcmp(name, "@") == 0) {
        put16(m, 0xc00c);
        return;
    }
    while (*name != '\0') {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)len);
        put_bytes(m, name, len);
        name += len;
        if (*name == '.')
            name++;
    }
    put8(m, 0);
}

/* Header (id 1, QR RD RA, rcode), one question. */
static void start(struct msg *m, const char *qname, unsigned qtype, unsigned rcode)
{
    memset(m, 0, sizeof *m);
    put16(m, 1);
    put16(m, 0x8180 | rcode);
    put16(m, 1); /* QDCOUNT */
    m->ancount_at = m->n;
    put16(m, 0);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, qtype);
    put16(m, ns_c_in);
}

static void rr(struct msg *m, const char *owner, unsigned type, unsigned class, unsigned long ttl,
               const void *rdata, size_t rdlen)
{
    put_name(m, owner);
    put16(m, type);
    put16(m, class);
    put32(m, ttl);
    put16(m, (unsigned)rdlen);
    put_bytes(m, rdata, rdlen);
    m->ancount++;
    m->b[m->ancount_at] = (unsigned char)(m->ancount >> 8);
    m->b[m->ancount_at + 1] = (unsigned char)m->ancount;
}

/* TXT rdata from NUL-separated strings ending in an empty one: "a\0b\0". */
static size_t txt_rdata(unsigned char *out, const char *strings, size_t total)
{
    size_t o = 0;
    for (size_t i = 0; i < total;) {
        size_t len = strlen(strings + i);
        out[o++] = (unsigned char)len;
        memcpy(out + o, strings + i, len);
        o += len;
        i += len + 1;
    }
    return o;
}

static void rr_txt(struct msg *m, const char *owner, unsigned long ttl, const char *strings,
                   size_t total)
{
    unsigned char rd[1024];
    rr(m, owner, ns_t_txt, ns_c_in, ttl, rd, txt_rdata(rd, strings, total));
}

static void rr_name(struct msg *m, const char *owner, unsigned type, unsigned long ttl,
                    int preference, const char *target)
{
    struct msg t = {.n = 0};
    if (preference >= 0)
        put16(&t, (unsigned)preference);
    put_name(&t, target);
    rr(m, owner, type, ns_c_in, ttl, t.b, t.n);
}

static SPF_dns_rr_t *reply(const struct msg *m, ns_type type, int status)
{
    SPF_dns_rr_t *r = spf_dns_reply_rr(NULL, "example.org", type, status, m->b, (int)m->n);
    assert_non_null(r);
    return r;
}

/* ---- TXT ---- */

static void test_txt_strings_joined_per_record(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_txt, 0);
    static const char one[] = "v=spf1 ip4:192.0.2.0/24 \0include:a.example \0-all";
    rr_txt(&m, "@", 300, one, sizeof one);
    static const char two[] = "google-site-verification=x";
    rr_txt(&m, "@", 120, two, sizeof two);
    SPF_dns_rr_t *r = reply(&m, ns_t_txt, ARES_SUCCESS);
    assert_int_equal(r->herrno, NETDB_SUCCESS);
    assert_int_equal(r->num_rr, 2);
    assert_string_equal(r->rr[0]->txt, "v=spf1 ip4:192.0.2.0/24 include:a.example -all");
    assert_string_equal(r->rr[1]->txt, "google-site-verification=x");
    assert_int_equal(r->ttl, 120);
    assert_string_equal(r->domain, "example.org");
    SPF_dns_rr_free(r);
}

static void test_txt_nul_becomes_del_and_empty_strings_stay(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_txt, 0);
    const unsigned char rd[] = {6, 'v', '=', 's', 0, 'f', '1', 0, 3, ' ', 'a', 'b'};
    rr(&m, "@", ns_t_txt, ns_c_in, 60, rd, sizeof rd);
    SPF_dns_rr_t *r = reply(&m, ns_t_txt, ARES_SUCCESS);
    assert_int_equal(r->num_rr, 1);
    assert_string_equal(r->rr[0]->txt, "v=s\x7f"
                                       "f1 ab");
    SPF_dns_rr_free(r);
}

static void test_txt_ttl_cut_and_other_types_left_out(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_txt, 0);
    rr_name(&m, "@", ns_t_cname, 5, -1, "other.example");
    rr_txt(&m, "other.example", 86400 * 7, "v=spf1 -all", 12);
    SPF_dns_rr_t *r = reply(&m, ns_t_txt, ARES_SUCCESS);
    assert_int_equal(r->herrno, NETDB_SUCCESS);
    assert_int_equal(r->num_rr, 1);
    assert_string_equal(r->rr[0]->txt, "v=spf1 -all");
    /* The CNAME's TTL does not count, the TXT's is cut to 15 minutes. */
    assert_int_equal(r->ttl, SPF_DNS_MAX_TTL);
    SPF_dns_rr_free(r);
}

static void test_answer_without_the_type_is_no_data(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_txt, 0);
    rr_name(&m, "@", ns_t_cname, 300, -1, "elsewhere.example");
    SPF_dns_rr_t *r = reply(&m, ns_t_txt, ARES_SUCCESS);
    assert_int_equal(r->herrno, NO_DATA);
    assert_int_equal(r->num_rr, 0);
    assert_int_equal(r->ttl, SPF_DNS_NEG_TTL);
    SPF_dns_rr_free(r);
}

/* ---- addresses ---- */

static void test_a_through_cname_only_for_the_name_asked(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_a, 0);
    rr_name(&m, "@", ns_t_cname, 300, -1, "host.example.net");
    const unsigned char a1[4] = {192, 0, 2, 1}, a2[4] = {192, 0, 2, 2}, a3[4] = {198, 51, 100, 9};
    rr(&m, "host.example.net", ns_t_a, ns_c_in, 200, a1, 4);
    rr(&m, "host.example.net", ns_t_a, ns_c_in, 100, a2, 4);
    rr(&m, "unrelated.example", ns_t_a, ns_c_in, 100, a3, 4);   /* not ours */
    rr(&m, "host.example.net", ns_t_a, ns_c_chaos, 100, a3, 4); /* not IN */
    SPF_dns_rr_t *r = reply(&m, ns_t_a, ARES_SUCCESS);
    assert_int_equal(r->herrno, NETDB_SUCCESS);
    assert_int_equal(r->num_rr, 2);
    assert_memory_equal(&r->rr[0]->a, a1, 4);
    assert_memory_equal(&r->rr[1]->a, a2, 4);
    assert_true(r->ttl <= 200);
    SPF_dns_rr_free(r);
}

static void test_aaaa(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_aaaa, 0);
    struct in6_addr a6;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::25", &a6), 1);
    rr(&m, "@", ns_t_aaaa, ns_c_in, 3600, &a6, 16);
    const unsigned char short_rd[4] = {1, 2, 3, 4};
    rr(&m, "@", ns_t_a, ns_c_in, 3600, short_rd, 4); /* an A beside: left out */
    SPF_dns_rr_t *r = reply(&m, ns_t_aaaa, ARES_SUCCESS);
    assert_int_equal(r->herrno, NETDB_SUCCESS);
    assert_int_equal(r->num_rr, 1);
    assert_memory_equal(&r->rr[0]->aaaa, &a6, 16);
    assert_int_equal(r->ttl, SPF_DNS_MAX_TTL);
    SPF_dns_rr_free(r);
}

/* ---- names ---- */

static void test_mx_names_through_pointers(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_mx, 0);
    rr_name(&m, "@", ns_t_mx, 600, 10, "mx1.example.org");
    /* mx2 + a pointer to "example.org" in the question */
    const unsigned char rd[] = {0, 20, 3, 'm', 'x', '2', 0xc0, 0x0c};
    rr(&m, "@", ns_t_mx, ns_c_in, 300, rd, sizeof rd);
    SPF_dns_rr_t *r = reply(&m, ns_t_mx, ARES_SUCCESS);
    assert_int_equal(r->herrno, NETDB_SUCCESS);
    assert_int_equal(r->num_rr, 2);
    assert_string_equal(r->rr[0]->mx, "mx1.example.org");
    assert_string_equal(r->rr[1]->mx, "mx2.example.org");
    assert_int_equal(r->ttl, 300);
    SPF_dns_rr_free(r);
}

static void test_ptr_every_target(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "1.2.0.192.in-addr.arpa", ns_t_ptr, 0);
    rr_name(&m, "@", ns_t_ptr, 100, -1, "mail.example.org");
    rr_name(&m, "@", ns_t_ptr, 50, -1, "smtp.example.org");
    SPF_dns_rr_t *r = reply(&m, ns_t_ptr, ARES_SUCCESS);
    assert_int_equal(r->herrno, NETDB_SUCCESS);
    assert_int_equal(r->num_rr, 2);
    assert_string_equal(r->rr[0]->ptr, "mail.example.org");
    assert_string_equal(r->rr[1]->ptr, "smtp.example.org");
    assert_int_equal(r->ttl, 50);
    SPF_dns_rr_free(r);
}

static void test_ptr_target_that_is_no_host_name(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "1.2.0.192.in-addr.arpa", ns_t_ptr, 0);
    rr_name(&m, "@", ns_t_ptr, 100, -1, "mail.example.org");
    rr_name(&m, "@", ns_t_ptr, 100, -1, "mail example;org");
    /* c-ares refuses the whole reply: a DNS error, and no name is kept. */
    SPF_dns_rr_t *r = reply(&m, ns_t_ptr, ARES_SUCCESS);
    assert_int_equal(r->herrno, TRY_AGAIN);
    assert_int_equal(r->num_rr, 0);
    SPF_dns_rr_free(r);
}

/* ---- status and malformed replies ---- */

static void test_status_mapping(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_txt, 3);
    static const struct {
        int status;
        SPF_dns_stat_t herrno;
        int ttl;
    } cases[] = {
        {ARES_ENOTFOUND, HOST_NOT_FOUND, SPF_DNS_NEG_TTL},
        {ARES_ENODATA, NO_DATA, SPF_DNS_NEG_TTL},
        {ARES_EBADNAME, HOST_NOT_FOUND, SPF_DNS_NEG_TTL},
        {ARES_ETIMEOUT, TRY_AGAIN, 0},
        {ARES_ESERVFAIL, TRY_AGAIN, 0},
        {ARES_EREFUSED, TRY_AGAIN, 0},
        {ARES_EFORMERR, TRY_AGAIN, 0},
        {ARES_ECONNREFUSED, TRY_AGAIN, 0},
        {ARES_ECANCELLED, TRY_AGAIN, 0},
        {ARES_EDESTRUCTION, TRY_AGAIN, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* with and without a message: the status decides */
        for (int with = 0; with < 2; with++) {
            SPF_dns_rr_t *r = spf_dns_reply_rr(NULL, "example.org", ns_t_txt, cases[i].status,
                                               with ? m.b : NULL, with ? (int)m.n : 0);
            assert_non_null(r);
            assert_int_equal(r->herrno, cases[i].herrno);
            assert_int_equal(r->ttl, cases[i].ttl);
            assert_int_equal(r->num_rr, 0);
            SPF_dns_rr_free(r);
        }
    }
    assert_null(spf_dns_reply_rr(NULL, "example.org", ns_t_txt, ARES_ENOMEM, NULL, 0));
    /* Success without a message or with less than a header: nothing to trust. */
    SPF_dns_rr_t *r = spf_dns_reply_rr(NULL, "example.org", ns_t_txt, ARES_SUCCESS, NULL, 0);
    assert_int_equal(r->herrno, TRY_AGAIN);
    SPF_dns_rr_free(r);
    r = spf_dns_reply_rr(NULL, "example.org", ns_t_txt, ARES_SUCCESS, m.b, 11);
    assert_int_equal(r->herrno, TRY_AGAIN);
    SPF_dns_rr_free(r);
}

static void test_truncated_and_overcounted_replies_are_try_again(void **state)
{
    (void)state;
    static const ns_type types[] = {ns_t_txt, ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_ptr};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        struct msg m;
        start(&m, "example.org", types[t], 0);
        rr_txt(&m, "@", 60, "v=spf1 -all", 12);
        const unsigned char a[16] = {192, 0, 2, 1};
        rr(&m, "@", types[t] == ns_t_txt ? ns_t_a : types[t], ns_c_in, 60, a,
           types[t] == ns_t_aaaa ? 16 : 4);
        /* the last rdata running past the end */
        struct msg cut = m;
        cut.n -= 2;
        SPF_dns_rr_t *r = reply(&cut, types[t], ARES_SUCCESS);
        assert_int_equal(r->num_rr, 0);
        assert_int_equal(r->herrno, TRY_AGAIN);
        SPF_dns_rr_free(r);
        /* one more answer counted than there is */
        struct msg over = m;
        over.b[over.ancount_at + 1]++;
        r = reply(&over, types[t], ARES_SUCCESS);
        assert_int_equal(r->num_rr, 0);
        assert_int_equal(r->herrno, TRY_AGAIN);
        SPF_dns_rr_free(r);
    }
}

static void test_pointer_loop_gives_no_records(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_mx, 0);
    /* The target is a pointer to itself. */
    size_t at = m.n + 2 + 10 + 2;
    const unsigned char rd[] = {0, 10, (unsigned char)(0xc0 | (at >> 8)), (unsigned char)at};
    rr(&m, "@", ns_t_mx, ns_c_in, 60, rd, sizeof rd);
    rr_name(&m, "@", ns_t_mx, 60, 20, "mx.example.org");
    SPF_dns_rr_t *r = reply(&m, ns_t_mx, ARES_SUCCESS);
    assert_int_equal(r->num_rr, 0);
    assert_int_equal(r->herrno, TRY_AGAIN);
    SPF_dns_rr_free(r);
}

static void test_type_not_asked_by_spf_is_no_data(void **state)
{
    (void)state;
    struct msg m;
    start(&m, "example.org", ns_t_spf, 0);
    rr_txt(&m, "@", 60, "v=spf1 -all", 12);
    SPF_dns_rr_t *r = reply(&m, ns_t_spf, ARES_SUCCESS);
    assert_int_equal(r->herrno, NO_DATA);
    assert_int_equal(r->num_rr, 0);
    SPF_dns_rr_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt_strings_joined_per_record),
        cmocka_unit_test(test_txt_nul_becomes_del_and_empty_strings_stay),
        cmocka_unit_test(test_txt_ttl_cut_and_other_types_left_out),
        cmocka_unit_test(test_answer_without_the_type_is_no_data),
        cmocka_unit_test(test_a_through_cname_only_for_the_name_asked),
        cmocka_unit_test(test_aaaa),
        cmocka_unit_test(test_mx_names_through_pointers),
        cmocka_unit_test(test_ptr_every_target),
        cmocka_unit_test(test_ptr_target_that_is_no_host_name),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_truncated_and_overcounted_replies_are_try_again),
        cmocka_unit_test(test_pointer_loop_gives_no_records),
        cmocka_unit_test(test_type_not_asked_by_spf_is_no_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
