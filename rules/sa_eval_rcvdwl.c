/*
 * sa_eval_rcvdwl - SpamAssassin's Plugin::WLBLEval tests that rest on the
 * relays of the Received chain (sa_relays), natively:
 *
 *   check_from_in_welcomelist()   an all_from_addrs() address on
 *                                 welcomelist_from, or on welcomelist_from_rcvd
 *                                 with the relay its entry names
 *   check_from_in_default_welcomelist()  ... on def_welcomelist_from_rcvd
 *                                 with its relay
 *   check_forged_in_welcomelist() an address on welcomelist_from_rcvd came
 *                                 through none of its relays (and is not on
 *                                 welcomelist_allows_relays), and none is
 *                                 on def_welcomelist_from_rcvd at all
 *   check_forged_in_default_welcomelist()  the same the other way round
 *   check_mailfrom_matches_rcvd() the registered domain of the EnvelopeFrom
 *                                 address is the one of the first untrusted
 *                                 relay's rDNS or, with no untrusted relay,
 *                                 of a trusted one's
 *   (the whitelist names are the same functions)
 *
 * What it promises: SpamAssassin's results on the same chain: the relays
 * tried are the first untrusted one alone when there is one (a forger
 * writes the older ones), else every trusted one; no relay, no match.
 *
 * What it assumes: the chain is the one SpamAssassin builds (sa_relays.h:
 * inside smtpgate the session's client is the newest relay); domains are
 * ASCII (SpamAssassin without libidn lower-cases them only, as here).
 */
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"
#include "rules/sa_addrs.h"
#include "rules/sa_eval.h"
#include "rules/sa_lists.h"
#include "rules/sa_rcvdwl.h"
#include "rules/sa_relays.h"
#include "util/alloc.h"

/* the relays _check_welcomelist_rcvd tries: the first untrusted one, or
 * with none every trusted one */
struct tried {
    const struct sa_relays *r;
    size_t n;
};

static void relays_tried(const struct sa_relays *r, struct tried *t)
{
    t->r = r;
    t->n = r->count[SA_RL_UNTRUSTED] > 0 ? 1 : r->count[SA_RL_TRUSTED];
}

static const struct sa_relay *tried_at(const struct tried *t, size_t i)
{
    const struct sa_relays *r = t->r;
    return &r->v[r->count[SA_RL_UNTRUSTED] > 0 ? r->list[SA_RL_UNTRUSTED][0]
                                               : r->list[SA_RL_TRUSTED][i]];
}

static bool relay_ok(const char *entry, void *ctx)
{
    const struct tried *t = ctx;
    /* the rDNS is compared without regard to case: its lc_rdns as it is */
    for (size_t i = 0; i < t->n; i++)
        if (sa_rcvdwl_relay_matches(entry, tried_at(t, i)->ip, tried_at(t, i)->rdns))
            return true;
    return false;
}

/* _check_welcomelist_rcvd for one address: 1, -1 (forged), 0; -2 out of
 * memory */
static int rcvd_one(const struct sa_eval_call *c, const struct tried *t, enum sa_rcvd_list which,
                    const char *addr)
{
    size_t n = strlen(addr);
    int rc = sa_lists_rcvd_match(c->lists, which, addr, n, relay_ok, (void *)t);
    if (rc != -1)
        return rc;
    int allowed = sa_lists_addr_glob_listed(c->lists, "welcomelist_allows_relays", addr, n);
    return allowed < 0 ? -2 : allowed ? 0 : -1;
}

/* _check_from_in_welcomelist (which SA_RCVD_USER, with welcomelist_from)
 * and _check_from_in_default_welcomelist: 1, -1, 0; -2 out of memory */
static int from_state(const struct sa_eval_call *c, struct rules_msg *m, enum sa_rcvd_list which)
{
    bool plain = which == SA_RCVD_USER && sa_lists_has_addrlist(c->lists, "welcomelist_from");
    if (!plain && !sa_lists_rcvd_has(c->lists, which))
        return 0;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -2;
    struct tried t;
    relays_tried(r, &t);
    struct sa_addrs a = {0};
    if (sa_addrs_all_from(m, &a) != 0) {
        sa_addrs_free(&a);
        return -2;
    }
    int state = 0;
    for (size_t i = 0; i < a.n && state != 1; i++) {
        int w = 0;
        if (plain)
            w = sa_lists_addr_listed(c->lists, "welcomelist_from", a.v[i], strlen(a.v[i]));
        if (w < 0) {
            state = -2;
            break;
        }
        /* with no relay at all an entry cannot match, nor be forged */
        if (w == 0 && t.n > 0)
            w = rcvd_one(c, &t, which, a.v[i]);
        if (w == -2) {
            state = -2;
            break;
        }
        if (w == 1 || w == -1)
            state = w == 1 ? 1 : -1;
    }
    sa_addrs_free(&a);
    return state;
}

static int as_result(int v)
{
    return v == -2 ? -1 : v;
}

static int from_welcomelist(const struct sa_eval_call *c, struct rules_msg *m)
{
    int s = from_state(c, m, SA_RCVD_USER);
    return s == -2 ? -1 : s > 0;
}

static int from_default_welcomelist(const struct sa_eval_call *c, struct rules_msg *m)
{
    int s = from_state(c, m, SA_RCVD_DEFAULT);
    return s == -2 ? -1 : s > 0;
}

static int forged(const struct sa_eval_call *c, struct rules_msg *m, enum sa_rcvd_list which)
{
    int s = from_state(c, m, which);
    if (s != -1)
        return as_result(s == -2 ? -2 : 0);
    int other = from_state(c, m, which == SA_RCVD_USER ? SA_RCVD_DEFAULT : SA_RCVD_USER);
    return other == -2 ? -1 : other == 0;
}

static int forged_welcomelist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return forged(c, m, SA_RCVD_USER);
}

static int forged_default_welcomelist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return forged(c, m, SA_RCVD_DEFAULT);
}

/* / \@ ( [^\@]+ \. [^\@]+ ) \z/x: the part after the last '@', with a dot
 * inside it */
static const char *addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL)
        return NULL;
    const char *d = at + 1;
    size_t n = strlen(d);
    for (size_t i = 1; i + 1 < n; i++)
        if (d[i] == '.')
            return d;
    return NULL;
}

static int mailfrom_matches_rcvd(const struct sa_eval_call *c, struct rules_msg *m)
{
    const char *env = rules_msg_envelope_from(m);
    if (env == NULL || *env == '\0')
        return 0;
    const char *dom = addr_domain(env);
    if (dom == NULL)
        return 0;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    struct tried t;
    relays_tried(r, &t);
    size_t dn = strlen(dom);
    char *ad = util_malloc(dn + 1);
    if (ad == NULL)
        return -1;
    sa_lists_trim_domain(c->lists, dom, dn, ad, dn + 1);
    int hit = 0;
    for (size_t i = 0; i < t.n && hit == 0; i++) {
        const char *rdns = tried_at(&t, i)->rdns;
        if (rdns == NULL || *rdns == '\0')
            continue;
        size_t rn = strlen(rdns);
        char *rd = util_malloc(rn + 1);
        if (rd == NULL) {
            hit = -1;
            break;
        }
        sa_lists_trim_domain(c->lists, rdns, rn, rd, rn + 1);
        hit = strcmp(ad, rd) == 0;
        free(rd);
    }
    free(ad);
    return hit;
}

const struct sa_eval_def sa_eval_rcvdwl_defs[] = {
    {"check_from_in_welcomelist", from_welcomelist, NULL},
    {"check_from_in_whitelist", from_welcomelist, NULL},
    {"check_from_in_default_welcomelist", from_default_welcomelist, NULL},
    {"check_from_in_default_whitelist", from_default_welcomelist, NULL},
    {"check_forged_in_welcomelist", forged_welcomelist, NULL},
    {"check_forged_in_whitelist", forged_welcomelist, NULL},
    {"check_forged_in_default_welcomelist", forged_default_welcomelist, NULL},
    {"check_forged_in_default_whitelist", forged_default_welcomelist, NULL},
    {"check_mailfrom_matches_rcvd", mailfrom_matches_rcvd, NULL},
    {NULL, NULL, NULL},
};
