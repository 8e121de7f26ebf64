/*
 * sa_eval_wlbl - SpamAssassin's Plugin::WLBLEval tests, natively, over the
 * rule set's address and URI host lists (sa_lists):
 *
 *   check_from_in_blocklist()   an all_from_addrs() address on blocklist_from
 *                               (the blacklist names are the same functions)
 *   check_to_in_blocklist(), check_to_in_welcomelist(),
 *   check_to_in_more_spam(), check_to_in_all_spam()
 *                               an all_to_addrs() address on blocklist_to,
 *                               welcomelist_to, more_spam_to, all_spam_to
 *   check_from_in_list(L), check_to_in_list(L)  ... on the list L
 *                               (enlist_addrlist, or one of those above)
 *   check_replyto_in_list(L)    the first Reply-To address on L
 *   check_uri_host_listed(L)    a host of the message's URIs (mailto: left
 *                               out) on the URI host list L, the most
 *                               specific entry deciding ('!' says no)
 *   check_uri_host_in_blocklist(), check_uri_host_in_welcomelist()
 *                               the same for the lists BLOCK and WELCOME
 *
 * What it promises: SpamAssassin's results on the same addresses and
 * hosts; a list never defined is a miss, as there.
 *
 * What it assumes: nothing more; the From welcomelists, which rest on the
 * relays of the Received chain too, are sa_eval_rcvdwl's.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_addrs.h"
#include "rules/sa_eval.h"
#include "rules/sa_lists.h"

static bool check_to(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) && sa_eval_compile(c, SA_ADDRS_FOR_RE, 0, why, wn);
}

static bool check_list(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn);
}

static bool check_to_list(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn) && sa_eval_compile(c, SA_ADDRS_FOR_RE, 0, why, wn);
}

static int any_listed(const struct sa_eval_call *c, const struct sa_addrs *a, const char *list)
{
    for (size_t i = 0; i < a->n; i++) {
        int rc = sa_lists_addr_listed(c->lists, list, a->v[i], strlen(a->v[i]));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int from_in(const struct sa_eval_call *c, struct rules_msg *m, const char *list)
{
    if (!sa_lists_has_addrlist(c->lists, list))
        return 0;
    struct sa_addrs a = {0};
    int rc = sa_addrs_all_from(m, &a);
    if (rc == 0)
        rc = any_listed(c, &a, list);
    sa_addrs_free(&a);
    return rc;
}

static int to_in(const struct sa_eval_call *c, struct rules_msg *m, const char *list)
{
    if (!sa_lists_has_addrlist(c->lists, list))
        return 0;
    struct sa_addrs a = {0};
    int rc = sa_addrs_all_to(m, c->nre ? c->re[0] : NULL, &a);
    if (rc == 0)
        rc = any_listed(c, &a, list);
    sa_addrs_free(&a);
    return rc;
}

static int from_blocklist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return from_in(c, m, "blocklist_from");
}

static int to_blocklist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return to_in(c, m, "blocklist_to");
}

static int to_welcomelist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return to_in(c, m, "welcomelist_to");
}

static int to_more_spam(const struct sa_eval_call *c, struct rules_msg *m)
{
    return to_in(c, m, "more_spam_to");
}

static int to_all_spam(const struct sa_eval_call *c, struct rules_msg *m)
{
    return to_in(c, m, "all_spam_to");
}

static int from_in_list(const struct sa_eval_call *c, struct rules_msg *m)
{
    return from_in(c, m, c->args.v[0]);
}

static int to_in_list(const struct sa_eval_call *c, struct rules_msg *m)
{
    return to_in(c, m, c->args.v[0]);
}

static int replyto_in_list(const struct sa_eval_call *c, struct rules_msg *m)
{
    if (!sa_lists_has_addrlist(c->lists, c->args.v[0]))
        return 0;
    /* get("Reply-To:addr") in scalar context: the first address */
    struct sa_addrs a = {0};
    int rc = sa_addrs_field(m, "Reply-To", false, false, &a);
    if (rc == 0 && a.n > 0 && a.v[0][0] != '\0')
        rc = sa_lists_addr_listed(c->lists, c->args.v[0], a.v[0], strlen(a.v[0]));
    sa_addrs_free(&a);
    return rc;
}

/* ---- URI hosts ---- */
static bool is_ipv4(const char *s, size_t n)
{
    size_t dots = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (digits == 0)
                return false;
            dots++;
            digits = 0;
        } else if (isdigit((unsigned char)s[i])) {
            digits++;
        } else {
            return false;
        }
    }
    return dots == 3 && digits > 0;
}

static bool is_ip(const char *s, size_t n)
{
    if (is_ipv4(s, n))
        return true;
    /* an IPv6 address: hex digits and colons, two colons at least */
    size_t colons = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ':')
            colons++;
        else if (!isxdigit((unsigned char)s[i]) && s[i] != '.')
            return false;
    }
    return colons >= 2;
}

/* RegistryBoundaries::uri_to_domain's host of one URI form (not mailto:),
 * lower-cased into buf; false when SpamAssassin gives none */
static bool uri_host(const struct sa_lists *l, const char *u, char *buf, size_t bn, size_t *hn)
{
    size_t n = strlen(u);
    if (n >= bn)
        return false;
    for (size_t i = 0; i <= n; i++)
        buf[i] = (char)tolower((unsigned char)u[i]);
    if (strncmp(buf, "javascript:", 11) == 0 || strncmp(buf, "cid:", 4) == 0 ||
        strncmp(buf, "file:", 5) == 0 || strncmp(buf, "mailto:", 7) == 0)
        return false;
    char *s = buf;
    /* s{^[a-z]+:/{0,2}}{} */
    size_t k = 0;
    while (s[k] >= 'a' && s[k] <= 'z')
        k++;
    if (k > 0 && s[k] == ':') {
        s += k + 1;
        for (int i = 0; i < 2 && *s == '/'; i++)
            s++;
    } else if (strchr(s, '@') != NULL) {
        /* a bare user@host form is what a mailto: URI gives: left out */
        return false;
    }
    size_t len = strcspn(s, "/?#");
    s[len] = '\0';
    char *at = strrchr(s, '@');
    if (at != NULL)
        s = at + 1;
    len = strlen(s);
    /* s{:\d*$}{} */
    size_t d = len;
    while (d > 0 && isdigit((unsigned char)s[d - 1]))
        d--;
    if (d > 0 && s[d - 1] == ':')
        len = d - 1;
    s[len] = '\0';
    /* an undecoded %XX of a printable: the decoded form is there too */
    for (size_t i = 0; i + 2 < len + 1 && s[i]; i++) {
        if (s[i] != '%' || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
            continue;
        int v = (int)strtol((char[]){s[i + 1], s[i + 2], 0}, NULL, 16);
        if (v >= 0x21 && v <= 0x7e)
            return false;
    }
    if (!is_ip(s, len)) {
        if (!sa_fqdn_valid(s, len))
            return false;
        const char *dot = strrchr(s, '.');
        if (dot == NULL || memchr(s, ' ', len) || !sa_lists_tld_valid(l, dot + 1, strlen(dot + 1)))
            return false;
    }
    memmove(buf, s, len + 1);
    *hn = len;
    return true;
}

/* the verdict of list li for host: 1, 0 ('!'), -1 not listed */
static int host_verdict(const struct sa_lists *l, size_t li, const char *host, size_t hn)
{
    if (hn > 2 && host[0] == '[' && host[hn - 1] == ']')
        return sa_lists_uri_host(l, li, host + 1, hn - 2);
    if (is_ipv4(host, hn))
        return sa_lists_uri_host(l, li, host, hn);
    /* sub.example.com, example.com, com: the last 11 at most */
    size_t keys[64], nk = 0;
    for (size_t i = 0; i < hn; i++)
        if (i == 0 || host[i - 1] == '.') {
            if (nk == 64)
                memmove(keys, keys + 1, --nk * sizeof(*keys));
            keys[nk++] = i;
        }
    size_t first = nk > 11 ? nk - 11 : 0;
    for (size_t k = first; k < nk; k++) {
        int v = sa_lists_uri_host(l, li, host + keys[k], hn - keys[k]);
        if (v >= 0)
            return v;
    }
    return -1;
}

static int uri_listed(const struct sa_eval_call *c, struct rules_msg *m, const char *list)
{
    size_t li = sa_lists_uri_list_find(c->lists, list);
    if (li == (size_t)-1)
        return 0;
    size_t n = rules_msg_sa_uri_count(m);
    char buf[2048];
    for (size_t i = 0; i < n; i++) {
        size_t hn;
        const char *u = rules_msg_sa_uri(m, i);
        if (u == NULL || !uri_host(c->lists, u, buf, sizeof(buf), &hn) || hn == 0)
            continue;
        if (host_verdict(c->lists, li, buf, hn) == 1)
            return 1;
    }
    return rules_msg_nomem(m) ? -1 : 0;
}

static int uri_host_listed(const struct sa_eval_call *c, struct rules_msg *m)
{
    return uri_listed(c, m, c->args.v[0]);
}

static int uri_in_blocklist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return uri_listed(c, m, "BLOCK");
}

static int uri_in_welcomelist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return uri_listed(c, m, "WELCOME");
}

const struct sa_eval_def sa_eval_wlbl_defs[] = {
    {"check_from_in_blocklist", from_blocklist, NULL},
    {"check_from_in_blacklist", from_blocklist, NULL},
    {"check_to_in_blocklist", to_blocklist, check_to},
    {"check_to_in_blacklist", to_blocklist, check_to},
    {"check_to_in_welcomelist", to_welcomelist, check_to},
    {"check_to_in_whitelist", to_welcomelist, check_to},
    {"check_to_in_more_spam", to_more_spam, check_to},
    {"check_to_in_all_spam", to_all_spam, check_to},
    {"check_from_in_list", from_in_list, check_list},
    {"check_to_in_list", to_in_list, check_to_list},
    {"check_replyto_in_list", replyto_in_list, check_list},
    {"check_uri_host_listed", uri_host_listed, check_list},
    {"check_uri_host_in_blocklist", uri_in_blocklist, NULL},
    {"check_uri_host_in_blacklist", uri_in_blocklist, NULL},
    {"check_uri_host_in_welcomelist", uri_in_welcomelist, NULL},
    {"check_uri_host_in_whitelist", uri_in_welcomelist, NULL},
    {NULL, NULL, NULL},
};
