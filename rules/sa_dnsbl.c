/*
 * sa_dnsbl - the pure parts of SpamAssassin's relay blocklist tests: query
 * names, the addresses a set queries, subtests, and the message's list of
 * queries with their answers.  See sa_dnsbl.h for the promises.
 *
 * Why the odd rules: each one is DNSEval.pm's or Dns.pm's, kept as it is
 * so that the same relays are queried and the same answers hit (a
 * "-untrusted" set skips the first untrusted address, an IPv4 octet is
 * any 1 to 3 digits, a bitmask octet wraps as Perl's pack("C") does).
 */
#include "rules/sa_dnsbl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/sa_received.h"

/* a.b.c.d with 1 to 3 digits each (SpamAssassin checks no range); the
 * four octets' spans into o[] when not NULL */
static bool dotted4(const char *s, const char *o[4], size_t ol[4])
{
    for (int k = 0; k < 4; k++) {
        size_t d = 0;
        while (isdigit((unsigned char)s[d]))
            d++;
        if (d < 1 || d > 3)
            return false;
        if (o != NULL) {
            o[k] = s;
            ol[k] = d;
        }
        s += d;
        if (k < 3 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

bool sa_dnsbl_name(const char *ip, const char *zone, char *out, size_t n)
{
    size_t zl = strlen(zone);
    while (zl > 0 && zone[zl - 1] == '.')
        zl--;
    const char *o[4];
    size_t ol[4];
    int w;
    if (dotted4(ip, o, ol)) {
        w = snprintf(out, n, "%.*s.%.*s.%.*s.%.*s.%.*s", (int)ol[3], o[3], (int)ol[2], o[2],
                     (int)ol[1], o[1], (int)ol[0], o[0], (int)zl, zone);
    } else {
        if (strchr(ip, ':') == NULL || strlen(ip) < 2 ||
            strspn(ip, "0123456789abcdefABCDEF:.") != strlen(ip))
            return false;
        unsigned char a[16];
        if (inet_pton(AF_INET6, ip, a) != 1)
            return false;
        char nib[64 + 1];
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
            unsigned v = i % 2 ? a[15 - i / 2] >> 4 : a[15 - i / 2] & 15;
            nib[2 * i] = hex[v];
            nib[2 * i + 1] = '.';
        }
        nib[64] = '\0';
        w = snprintf(out, n, "%s%.*s", nib, (int)zl, zone);
    }
    return w > 0 && (size_t)w < n;
}

int sa_dnsbl_setting(struct sa_relay_conf *c, const char *key, const char *val, size_t vn,
                     char *why, size_t wn)
{
    char v[64];
    while (vn > 0 && isspace((unsigned char)val[vn - 1]))
        vn--;
    if (vn >= sizeof v) {
        snprintf(why, wn, "%s: value too long", key);
        return 2;
    }
    memcpy(v, val, vn);
    v[vn] = '\0';
    char *end;
    if (strcmp(key, "skip_rbl_checks") == 0) {
        /* Perl's truth: "", "0" false */
        c->skip_rbl_checks = !(vn == 0 || strcmp(v, "0") == 0);
        return 0;
    }
    if (strcmp(key, "num_check_received") == 0) {
        unsigned long n = strtoul(v, &end, 10);
        if (vn == 0 || *end != '\0' || n == 0 || n > SA_DNSBL_IPS_MAX) {
            snprintf(why, wn, "%s: not a count from 1 to %d: %s", key, SA_DNSBL_IPS_MAX, v);
            return 2;
        }
        c->num_check_received = (unsigned)n;
        return 0;
    }
    double t = strtod(v, &end);
    while (*end == ' ' || *end == '\t') /* rbl_timeout t [min] */
        end++;
    if (end != v && *end != '\0')
        (void)strtod(end, &end);
    if (vn == 0 || *end != '\0' || !(t > 0 && t <= 3600)) {
        snprintf(why, wn, "%s: not a number of seconds: %s", key, v);
        return 2;
    }
    c->rbl_timeout = t;
    return 0;
}

double sa_dnsbl_rbl_timeout(const struct sa_relay_conf *c)
{
    return c != NULL && c->rbl_timeout > 0 ? c->rbl_timeout : 15;
}

static bool is_private(const char *ip)
{
    return sa_ip_is_private(ip) != 0; /* out of memory: not queried */
}

/* ip_list_uniq_and_strip_private over a then b, into out; their number */
static size_t uniq_public(const char *const *a, size_t na, const char *const *b, size_t nb,
                          const char **out, size_t max)
{
    const char *seen[2 * SA_DNSBL_IPS_MAX];
    size_t ns = 0, k = 0;
    for (size_t i = 0; i < na + nb; i++) {
        const char *ip = i < na ? a[i] : b[i - na];
        if (ip == NULL || *ip == '\0')
            continue;
        bool dup = false;
        for (size_t j = 0; j < ns && !dup; j++)
            dup = strcmp(seen[j], ip) == 0;
        if (dup || ns == sizeof(seen) / sizeof(seen[0]))
            continue;
        seen[ns++] = ip;
        if (!is_private(ip) && k < max)
            out[k++] = ip;
    }
    return k;
}

bool sa_dnsbl_any(const struct sa_dnsbl_input *in)
{
    const char *ips[SA_DNSBL_IPS_MAX];
    return in->noriginating > 0 ||
           uniq_public(in->untrusted, in->nuntrusted, NULL, 0, ips, SA_DNSBL_IPS_MAX) > 0;
}

static bool ends_with(const char *s, const char *t)
{
    size_t a = strlen(s), b = strlen(t);
    return a >= b && strcmp(s + a - b, t) == 0;
}

static bool trusted(const struct sa_dnsbl_input *in, const char *ip)
{
    return in->trusted != NULL && sa_netset_contains(in->trusted, ip);
}

size_t sa_dnsbl_select(const struct sa_dnsbl_input *in, const char *set, bool nice,
                       const char **out, size_t max)
{
    const char *ips[SA_DNSBL_IPS_MAX];
    size_t n;
    if (ends_with(set, "-notfirsthop") || ends_with(set, "-lastexternal")) {
        /* the external set: originating fields are not dial-up hosts */
        n = uniq_public(in->external, in->nexternal, NULL, 0, ips, SA_DNSBL_IPS_MAX);
        if (ends_with(set, "-lastexternal"))
            n = n > 0 ? 1 : 0;
        else if (n > 1)
            n--;
    } else {
        const char *tips[SA_DNSBL_IPS_MAX];
        size_t nt = 0;
        for (size_t i = 0; i < in->noriginating && nt < SA_DNSBL_IPS_MAX; i++)
            if (in->originating[i] != NULL && *in->originating[i] &&
                !trusted(in, in->originating[i]))
                tips[nt++] = in->originating[i];
        n = uniq_public(in->untrusted, in->nuntrusted, tips, nt, ips, SA_DNSBL_IPS_MAX);
        if (ends_with(set, "-firsttrusted")) {
            n = n > 0 ? 1 : 0;
        } else if (ends_with(set, "-untrusted")) {
            if (n > 0) {
                memmove(ips, ips + 1, (n - 1) * sizeof(ips[0]));
                n--;
            }
        } else {
            for (size_t i = 0; i < n / 2; i++) {
                const char *t = ips[i];
                ips[i] = ips[n - 1 - i];
                ips[n - 1 - i] = t;
            }
        }
    }
    size_t checklast = in->checklast ? in->checklast : SA_DNSBL_CHECK_RECEIVED;
    if (n > checklast)
        n = checklast;
    size_t first = 0;
    /* trusted relays are for the nice rules (whitelists) only */
    if (!nice)
        while (first < n && trusted(in, ips[first]))
            first++;
    size_t k = 0;
    for (size_t i = first; i < n && k < max; i++)
        out[k++] = ips[i];
    return k;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

enum sa_dnsbl_subtest sa_dnsbl_subtest_kind(const char *s)
{
    if (s == NULL)
        return SA_SUB_NONE;
    size_t n = strlen(s);
    if (all_digits(s, n))
        return SA_SUB_MASK;
    /* \d+(\.\d+){3}: any number of digits, unlike an answer's octets */
    const char *p = s;
    for (int k = 0; k < 4; k++) {
        size_t d = strspn(p, "0123456789");
        if (d == 0)
            return SA_SUB_RE;
        p += d;
        if (k < 3 && *p++ != '.')
            return SA_SUB_RE;
    }
    return *p == '\0' ? SA_SUB_IP : SA_SUB_RE;
}

bool sa_dnsbl_a_counts(const char *answer)
{
    return strncmp(answer, "127.", 4) == 0;
}

bool sa_dnsbl_subtest_match(const char *subtest, const char *answer)
{
    switch (sa_dnsbl_subtest_kind(subtest)) {
    case SA_SUB_NONE:
        return true;
    case SA_SUB_IP:
        return strcmp(subtest, answer) == 0;
    case SA_SUB_MASK: {
        const char *o[4];
        size_t ol[4];
        if (strncmp(answer, "127.", 4) != 0 || !dotted4(answer, o, ol))
            return false;
        uint32_t a = 0;
        for (int k = 0; k < 4; k++)
            a = a << 8 | ((uint32_t)strtoul(o[k], NULL, 10) & 255u); /* pack("C") wraps */
        unsigned long long m = strtoull(subtest, NULL, 10);
        return (a & m) != 0;
    }
    case SA_SUB_RE:
        return false;
    }
    return false;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

long sa_dns_queries_find(const struct sa_dns_queries *qs, const char *name, int type)
{
    for (size_t i = 0; i < qs->n; i++)
        if (qs->q[i].type == type && strcasecmp(qs->q[i].name, name) == 0)
            return (long)i;
    return -1;
}

long sa_dns_queries_add(struct sa_dns_queries *qs, const char *set, const char *name, int type)
{
    long i = sa_dns_queries_find(qs, name, type);
    if (i < 0) {
        if (qs->n == qs->cap) {
            size_t c = qs->cap ? 2 * qs->cap : 8;
            void *v = realloc(qs->q, c * sizeof(*qs->q));
            if (v == NULL)
                return -1;
            qs->q = v;
            qs->cap = c;
        }
        struct sa_dns_query *q = &qs->q[qs->n];
        *q = (struct sa_dns_query){.name = dup_n(name, strlen(name)), .type = type};
        if (q->name == NULL)
            return -1;
        i = (long)qs->n++;
    }
    for (size_t k = 0; k < qs->nref; k++)
        if (qs->ref[k].q == (size_t)i && strcmp(qs->ref[k].set, set) == 0)
            return i;
    if (qs->nref == qs->refcap) {
        size_t c = qs->refcap ? 2 * qs->refcap : 8;
        void *v = realloc(qs->ref, c * sizeof(*qs->ref));
        if (v == NULL)
            return -1;
        qs->ref = v;
        qs->refcap = c;
    }
    char *s = dup_n(set, strlen(set));
    if (s == NULL)
        return -1;
    qs->ref[qs->nref++] = (struct sa_dns_ref){s, (size_t)i};
    return i;
}

int sa_dns_query_answer(struct sa_dns_query *q, const char *s, size_t n)
{
    void *v = realloc(q->ans, (q->nans + 1) * sizeof(*q->ans));
    if (v == NULL)
        return -1;
    q->ans = v;
    if ((q->ans[q->nans] = dup_n(s, n)) == NULL)
        return -1;
    q->nans++;
    return 0;
}

void sa_dns_queries_clear(struct sa_dns_queries *qs)
{
    for (size_t i = 0; i < qs->n; i++) {
        free(qs->q[i].name);
        for (size_t k = 0; k < qs->q[i].nans; k++)
            free(qs->q[i].ans[k]);
        free(qs->q[i].ans);
    }
    for (size_t k = 0; k < qs->nref; k++)
        free(qs->ref[k].set);
    free(qs->q);
    free(qs->ref);
    *qs = (struct sa_dns_queries){0};
}
