/*
 * sa_eval_dnsbl - SpamAssassin's DNSEval tests on the relays:
 *   check_rbl(set, zone[, subtest])      an A answer (127/8 only) for a
 *                                        relay of the set under zone
 *   check_rbl_txt(set, zone[, subtest])  the same with TXT answers
 *   check_rbl_sub(set, subtest)          an answer of any query of the set
 *                                        (its check_rbl rules') passes
 * and the gathering of the queries those rules need (sa_dnsbl_gather),
 * which runs before the content stage so that the answers are there
 * when the evals read them (rules_msg_dns).
 *
 * What it promises:
 *   - The relays queried, the names and the subtests are DNSEval's and
 *     Dns.pm's (sa_dnsbl.h); a query without an answer (none asked, timed
 *     out, SERVFAIL, NXDOMAIN) is a miss, as there.
 *   - A subtest that is neither a bitmask nor an address is a regular
 *     expression, compiled at load; one that does not compile skips the
 *     rule, reported.  "sb:" (SenderBase) subtests are refused, as there.
 *   - The other DNSEval functions are not here: lint names them.
 *
 * What it assumes: the relay chain (sa_relays_of) of the message; the
 * answers set by the caller with rules_msg_set_dns, or none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_dnsbl.h"
#include "rules/sa_eval.h"
#include "rules/sa_relays.h"
#include "rules/sa_received.h"

/* SpamAssassin's originating_ip_headers, its default */
static const char *const originating_fields[] = {"X-Yahoo-Post-IP", "X-Originating-IP",
                                                 "X-Apparently-From", "X-SenderIP"};
#define ORIG_MAX 32

struct dnsbl_view {
    const char *untrusted[SA_DNSBL_IPS_MAX], *external[SA_DNSBL_IPS_MAX];
    char *orig[ORIG_MAX];
    struct sa_dnsbl_input in;
};

static void view_free(struct dnsbl_view *v)
{
    for (size_t i = 0; i < v->in.noriginating; i++)
        free(v->orig[i]);
}

/* parsed_metadata's lists; -1 out of memory */
static int view_of(struct rules_msg *m, struct dnsbl_view *v)
{
    memset(v, 0, sizeof(*v));
    v->in.untrusted = v->untrusted;
    v->in.external = v->external;
    v->in.originating = (const char *const *)v->orig;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    const struct sa_relay_conf *conf;
    const struct rules_facts *f;
    rules_msg_relay_ctx(m, &conf, &f);
    v->in.trusted = conf != NULL ? &conf->set[SA_NET_TRUSTED] : NULL;
    v->in.checklast = conf != NULL ? conf->num_check_received : 0;
    for (size_t i = 0; i < r->count[SA_RL_TRUSTED] && v->in.nexternal < SA_DNSBL_IPS_MAX; i++) {
        const struct sa_relay *rl = &r->v[r->list[SA_RL_TRUSTED][i]];
        if (!rl->internal)
            v->external[v->in.nexternal++] = rl->ip;
    }
    for (size_t i = 0; i < r->count[SA_RL_UNTRUSTED]; i++) {
        const char *ip = r->v[r->list[SA_RL_UNTRUSTED][i]].ip;
        if (v->in.nuntrusted < SA_DNSBL_IPS_MAX)
            v->untrusted[v->in.nuntrusted++] = ip;
        if (v->in.nexternal < SA_DNSBL_IPS_MAX)
            v->external[v->in.nexternal++] = ip;
    }
    struct sa_eval_buf b = {0};
    for (size_t k = 0; k < sizeof(originating_fields) / sizeof(originating_fields[0]); k++) {
        long nv = sa_eval_get(m, originating_fields[k], false, &b);
        if (nv < 0)
            goto nomem;
        /* every address in the values, as m/($IP_ADDRESS)/g */
        size_t off = 0;
        while (nv > 0 && off < b.n && v->in.noriginating < ORIG_MAX) {
            char *ip = NULL;
            int rc = sa_received_find_ip(b.s + off, b.n - off, &ip);
            if (rc < 0)
                goto nomem;
            if (rc == 0)
                break;
            const char *at = memmem(b.s + off, b.n - off, ip, strlen(ip));
            off = at != NULL ? (size_t)(at - b.s) + strlen(ip) : b.n;
            v->orig[v->in.noriginating++] = ip;
        }
    }
    sa_eval_buf_free(&b);
    return 0;
nomem:
    sa_eval_buf_free(&b);
    view_free(v);
    return -1;
}

static bool check_subtest(struct sa_eval_call *c, size_t i, char *why, size_t wn)
{
    const char *st = c->args.v[i];
    if (strncmp(st, "sb:", 3) == 0) {
        snprintf(why, wn, "eval %s: SenderBase subtests are deprecated", c->def->name);
        return false;
    }
    if (sa_dnsbl_subtest_kind(st) == SA_SUB_RE)
        return sa_eval_compile(c, st, 0, why, wn);
    return true;
}

static bool check_rbl_args(struct sa_eval_call *c, char *why, size_t wn)
{
    if (!sa_eval_nargs(c, 2, 3, why, wn))
        return false;
    return c->args.n < 3 || check_subtest(c, 2, why, wn);
}

static bool check_sub_args(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && check_subtest(c, 1, why, wn);
}

/* check_subtest over one answer (the A records outside 127/8 dropped
 * first); -1 out of memory */
static int answer_hits(const struct sa_eval_call *c, const char *subtest, int type, const char *ans)
{
    if (type == SA_DNS_A && !sa_dnsbl_a_counts(ans))
        return 0;
    enum sa_dnsbl_subtest k = sa_dnsbl_subtest_kind(subtest);
    if (k == SA_SUB_RE) {
        int rc = sa_eval_match(c, 0, NULL, ans, strlen(ans), 0, NULL, NULL);
        return rc < 0 ? 0 : rc; /* a match limit is a miss */
    }
    return sa_dnsbl_subtest_match(subtest, ans);
}

static int query_hits(const struct sa_eval_call *c, const char *subtest,
                      const struct sa_dns_query *q)
{
    for (size_t k = 0; k < q->nans; k++)
        if (answer_hits(c, subtest, q->type, q->ans[k]) == 1)
            return 1;
    return 0;
}

/* The names of the set's queries for this call; their number, -1 nomem. */
static long names_of(struct rules_msg *m, const char *set, const char *zone, bool nice,
                     char names[][SA_DNSBL_NAME_MAX], size_t max)
{
    struct dnsbl_view v;
    if (view_of(m, &v) != 0)
        return -1;
    long n = 0;
    if (sa_dnsbl_any(&v.in)) {
        const char *ips[SA_DNSBL_IPS_MAX];
        size_t ni = sa_dnsbl_select(&v.in, set, nice, ips, SA_DNSBL_IPS_MAX);
        for (size_t i = 0; i < ni && (size_t)n < max; i++)
            if (sa_dnsbl_name(ips[i], zone, names[n], SA_DNSBL_NAME_MAX))
                n++;
    }
    view_free(&v);
    return n;
}

static int rbl_run(const struct sa_eval_call *c, struct rules_msg *m, int type)
{
    const struct sa_dns_queries *qs = rules_msg_dns(m);
    if (qs == NULL || qs->n == 0)
        return 0;
    char names[SA_DNSBL_IPS_MAX][SA_DNSBL_NAME_MAX];
    long n = names_of(m, c->args.v[0], c->args.v[1], c->nice, names, SA_DNSBL_IPS_MAX);
    if (n < 0)
        return -1;
    const char *subtest = c->args.n > 2 ? c->args.v[2] : NULL;
    for (long i = 0; i < n; i++) {
        long q = sa_dns_queries_find(qs, names[i], type);
        if (q >= 0 && query_hits(c, subtest, &qs->q[q]))
            return 1;
    }
    return 0;
}

static int check_rbl(const struct sa_eval_call *c, struct rules_msg *m)
{
    return rbl_run(c, m, SA_DNS_A);
}

static int check_rbl_txt(const struct sa_eval_call *c, struct rules_msg *m)
{
    return rbl_run(c, m, SA_DNS_TXT);
}

static int check_rbl_sub(const struct sa_eval_call *c, struct rules_msg *m)
{
    const struct sa_dns_queries *qs = rules_msg_dns(m);
    if (qs == NULL)
        return 0;
    for (size_t k = 0; k < qs->nref; k++)
        if (strcmp(qs->ref[k].set, c->args.v[0]) == 0 &&
            query_hits(c, c->args.v[1], &qs->q[qs->ref[k].q]))
            return 1;
    return 0;
}

const struct sa_eval_def sa_eval_dnsbl_defs[] = {
    {"check_rbl", check_rbl, check_rbl_args},
    {"check_rbl_txt", check_rbl_txt, check_rbl_args},
    {"check_rbl_sub", check_rbl_sub, check_sub_args},
    {NULL, NULL, NULL},
};

int sa_dnsbl_gather(const struct rules *r, struct rules_msg *m, const struct rules_facts *f,
                    struct sa_dns_queries *qs)
{
    rules_msg_set_relay_ctx(m, r->sa_relay_conf, f, sa_relays_free);
    if (r->sa_relay_conf != NULL && r->sa_relay_conf->skip_rbl_checks)
        return 0; /* nothing asked: every check_rbl a miss */
    for (size_t i = 0; i < r->n; i++) {
        const struct sa_eval_call *c = r->v[i].sa_call;
        if (c == NULL || r->v[i].disabled ||
            (c->def->run != check_rbl && c->def->run != check_rbl_txt))
            continue;
        char names[SA_DNSBL_IPS_MAX][SA_DNSBL_NAME_MAX];
        long n = names_of(m, c->args.v[0], c->args.v[1], c->nice, names, SA_DNSBL_IPS_MAX);
        if (n < 0)
            return -1;
        for (long k = 0; k < n; k++)
            if (sa_dns_queries_add(qs, c->args.v[0], names[k],
                                   c->def->run == check_rbl ? SA_DNS_A : SA_DNS_TXT) < 0)
                return -1;
    }
    return 0;
}

double sa_dnsbl_timeout(const struct rules *r, double cap)
{
    double t = sa_dnsbl_rbl_timeout(r->sa_relay_conf);
    return t < cap ? t : cap;
}
