/*
 * spf_check - RFC 7208 check_host(): evaluates one identity against its
 * domain's SPF policy, with DNS through a libspf2 DNS layer stack.
 *
 * libspf2's interpreter is not used: it compiles records with a grammar
 * that refuses valid ones (/0 lengths) and accepts invalid ones (bad
 * domains and macros, repeated modifiers), has no void-look-up limit and
 * answers some errors as "(invalid)".  The evaluation below follows RFC
 * 7208 sections 4 to 6 over records checked by spf_record; libspf2 gives
 * the DNS layers (the bounded resolver of spf_dns, its cache, its zone for
 * tests).  Recursion (include, redirect) is bounded by the 10-term limit,
 * and by SPF_CHECK_MAX_DEPTH as a second guard.
 */
#include "spf_check.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util/net.h"

#include "spf_dns.h"
#include "spf_explain.h"
#include "spf_macro.h"
#include "spf_record.h"

#define SPF_CHECK_MAX_DEPTH   12
#define SPF_DOMAIN_EXPAND_MAX 8192

enum chk_lookup { LK_OK, LK_VOID, LK_ERROR };
enum chk_match { M_NO = 0, M_YES, M_TEMPERROR, M_PERMERROR };

struct chk {
    SPF_dns_server_t *dns;
    struct spf_macro_ctx m;
    struct timespec deadline;
    unsigned dns_terms;
    unsigned voids;
    char *problem;
    char *mechanism;
    bool oom;
    /* look-ups of names a macro made (%{i}, %{l}...) change with every
     * message: not worth a cache slot, and a sender could fill the cache */
    bool no_cache;
    /* %{p}: the validated names of ip, looked up once */
    bool ptr_done;
    char *ptr_names[SPF_MAX_PTR_NAMES];
    size_t nptr;
    char *p_value;
};

static void chk_problem(struct chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void chk_problem(struct chk *c, const char *fmt, ...)
{
    if (c->problem != NULL)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->problem = strdup(buf);
}

bool spf_check_domain_ok(const char *d)
{
    size_t len = strlen(d);
    if (len > 0 && d[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return false;
    size_t labels = 0, start = 0;
    bool digits_only = true;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || d[i] == '.') {
            size_t ll = i - start;
            if (ll == 0 || ll > 63)
                return false;
            labels++;
            if (i < len)
                digits_only = true;
            start = i + 1;
            continue;
        }
        unsigned char ch = (unsigned char)d[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        if (!ok)
            return false;
        if (!(ch >= '0' && ch <= '9'))
            digits_only = false;
    }
    return labels >= 2 && !digits_only;
}

/* Whether name can be asked at all: labels of 1..63 octets, 253 in all. */
static bool chk_name_askable(const char *d)
{
    size_t len = strlen(d);
    if (len > 0 && d[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || d[i] == '.') {
            if (i - start == 0 || i - start > 63)
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* RFC 7208 4.3 for a domain that a domain-spec made (include:, redirect=):
 * a macro-expand may hold any octet of the identity (sub-addressing's +,
 * SRS's =, a quoted local part), so only the DNS limits and a multi-label
 * name whose last label is not all digits are asked of it, as pyspf and
 * libspf2 do. */
static bool chk_target_ok(const char *d)
{
    if (!chk_name_askable(d))
        return false;
    size_t len = strlen(d);
    if (d[len - 1] == '.')
        len--;
    const char *dot = memrchr(d, '.', len);
    if (dot == NULL)
        return false;
    for (const char *p = dot + 1; p < d + len; p++)
        if (*p < '0' || *p > '9')
            return true;
    return false;
}

static bool chk_expired(const struct chk *c)
{
    if (c->deadline.tv_sec == 0 && c->deadline.tv_nsec == 0)
        return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > c->deadline.tv_sec ||
           (now.tv_sec == c->deadline.tv_sec && now.tv_nsec >= c->deadline.tv_nsec);
}

static enum chk_lookup chk_lookup(struct chk *c, const char *name, ns_type type, SPF_dns_rr_t **out)
{
    *out = NULL;
    if (!chk_name_askable(name))
        return LK_VOID;
    if (chk_expired(c)) {
        chk_problem(c, "DNS time limit reached before looking up %s", name);
        return LK_ERROR;
    }
    char buf[256];
    size_t len = strlen(name);
    memcpy(buf, name, len + 1);
    if (len > 0 && buf[len - 1] == '.')
        buf[len - 1] = '\0';
    SPF_dns_rr_t *rr = SPF_dns_lookup(c->dns, buf, type, !c->no_cache);
    if (rr == NULL) {
        c->oom = true;
        chk_problem(c, "out of memory looking up %s", buf);
        return LK_ERROR;
    }
    if (rr->herrno == NETDB_SUCCESS && rr->num_rr > 0) {
        *out = rr;
        return LK_OK;
    }
    int h = rr->herrno;
    SPF_dns_rr_free(rr);
    if (h == NETDB_SUCCESS || h == HOST_NOT_FOUND || h == NO_DATA)
        return LK_VOID;
    chk_problem(c, "DNS error looking up %s (%s)", buf,
                type == ns_t_txt   ? "TXT"
                : type == ns_t_mx  ? "MX"
                : type == ns_t_ptr ? "PTR"
                                   : "address");
    return LK_ERROR;
}

static enum chk_match chk_void(struct chk *c, const char *name)
{
    if (++c->voids > SPF_MAX_VOID_LOOKUPS) {
        chk_problem(c, "more than %d void DNS look-ups (at %s)", SPF_MAX_VOID_LOOKUPS, name);
        return M_PERMERROR;
    }
    return M_NO;
}

static bool chk_ip_in(const struct chk *c, const unsigned char *addr, int family, unsigned prefix)
{
    return family == c->m.family && net_prefix_equal(addr, c->m.ip, prefix);
}

/* Address records of name for the client's family: M_YES when one is within
 * the prefix; void look-ups counted only when count_void. */
static enum chk_match chk_addr_match(struct chk *c, const char *name, unsigned cidr4,
                                     unsigned cidr6, bool count_void)
{
    SPF_dns_rr_t *rr;
    bool v6 = c->m.family == AF_INET6;
    enum chk_lookup lk = chk_lookup(c, name, v6 ? ns_t_aaaa : ns_t_a, &rr);
    if (lk == LK_ERROR)
        return M_TEMPERROR;
    if (lk == LK_VOID)
        return count_void ? chk_void(c, name) : M_NO;
    enum chk_match m = M_NO;
    for (int i = 0; i < rr->num_rr && m == M_NO; i++) {
        if (v6)
            m = chk_ip_in(c, (const unsigned char *)&rr->rr[i]->aaaa, AF_INET6, cidr6) ? M_YES
                                                                                       : M_NO;
        else
            m = chk_ip_in(c, (const unsigned char *)&rr->rr[i]->a, AF_INET, cidr4) ? M_YES : M_NO;
    }
    SPF_dns_rr_free(rr);
    return m;
}

static void chk_reverse_name(const struct chk *c, char *buf, size_t cap)
{
    if (c->m.family == AF_INET6) {
        static const char hexd[] = "0123456789abcdef";
        size_t k = 0;
        for (int i = 15; i >= 0 && k + 4 < cap; i--) {
            buf[k++] = hexd[c->m.ip[i] & 15];
            buf[k++] = '.';
            buf[k++] = hexd[c->m.ip[i] >> 4];
            buf[k++] = '.';
        }
        snprintf(buf + k, cap - k, "ip6.arpa");
    } else {
        snprintf(buf, cap, "%u.%u.%u.%u.in-addr.arpa", c->m.ip[3], c->m.ip[2], c->m.ip[1],
                 c->m.ip[0]);
    }
}

static bool chk_name_is_or_under(const char *name, const char *domain)
{
    size_t nl = strlen(name), dl = strlen(domain);
    if (nl > 0 && name[nl - 1] == '.')
        nl--;
    if (dl > 0 && domain[dl - 1] == '.')
        dl--;
    if (dl == 0 || nl < dl)
        return false;
    if (strncasecmp(name + nl - dl, domain, dl) != 0)
        return false;
    return nl == dl || name[nl - dl - 1] == '.';
}

/* The validated names of the client (RFC 7208 5.5): PTR names whose
 * address records include the client.  DNS errors skip a name. */
static void chk_validate_ptr(struct chk *c)
{
    if (c->ptr_done)
        return;
    c->ptr_done = true;
    char rev[80];
    chk_reverse_name(c, rev, sizeof rev);
    SPF_dns_rr_t *rr;
    if (chk_lookup(c, rev, ns_t_ptr, &rr) != LK_OK)
        return;
    int n = rr->num_rr < SPF_MAX_PTR_NAMES ? rr->num_rr : SPF_MAX_PTR_NAMES;
    for (int i = 0; i < n; i++) {
        const char *name = rr->rr[i]->ptr;
        if (chk_addr_match(c, name, 32, 128, false) == M_YES) {
            char *dup = strdup(name);
            if (dup == NULL) {
                c->oom = true;
                break;
            }
            c->ptr_names[c->nptr++] = dup;
        }
    }
    SPF_dns_rr_free(rr);
}

static const char *chk_p_macro(void *arg)
{
    struct chk *c = arg;
    chk_validate_ptr(c);
    const char *pick = NULL;
    for (size_t i = 0; i < c->nptr && pick == NULL; i++)
        if (strcasecmp(c->ptr_names[i], c->m.domain) == 0)
            pick = c->ptr_names[i];
    for (size_t i = 0; i < c->nptr && pick == NULL; i++)
        if (chk_name_is_or_under(c->ptr_names[i], c->m.domain))
            pick = c->ptr_names[i];
    if (pick == NULL && c->nptr > 0)
        pick = c->ptr_names[0];
    if (pick == NULL)
        return "unknown";
    free(c->p_value);
    c->p_value = strdup(pick);
    if (c->p_value == NULL)
        return "unknown";
    size_t l = strlen(c->p_value);
    if (l > 1 && c->p_value[l - 1] == '.')
        c->p_value[l - 1] = '\0';
    return c->p_value;
}

/* Expands a domain-spec (or takes domain when spec is NULL) into a name to
 * look up.  NULL with *perm set on an expansion the check must refuse. */
static char *chk_target(struct chk *c, const char *spec, size_t len, const char *domain, bool *perm)
{
    *perm = false;
    if (spec == NULL) {
        char *d = strdup(domain);
        if (d == NULL)
            c->oom = true;
        return d;
    }
    char *out;
    const char *saved = c->m.domain;
    c->m.domain = domain;
    enum spf_macro_status st = spf_macro_expand(spec, len, 0, &c->m, SPF_DOMAIN_EXPAND_MAX, &out);
    c->m.domain = saved;
    if (st == SPF_MACRO_NOMEM) {
        c->oom = true;
        return NULL;
    }
    if (st != SPF_MACRO_OK) {
        *perm = true;
        chk_problem(c, "macro expansion of '%.*s' failed (%s)", (int)(len > 64 ? 64 : len), spec,
                    st == SPF_MACRO_TOO_LONG ? "too long" : "syntax");
        return NULL;
    }
    spf_macro_truncate_domain(out);
    return out;
}

static enum spf_result chk_host(struct chk *c, const char *domain, unsigned depth, char **exp);

static enum chk_match chk_mechanism(struct chk *c, const struct spf_term *t, const char *domain,
                                    unsigned depth)
{
    bool perm;
    char *target;
    enum chk_match m = M_NO;

    switch (t->mech) {
    case SPF_MECH_ALL:
        return M_YES;
    case SPF_MECH_IP4:
        return chk_ip_in(c, t->addr, AF_INET, t->cidr4) ? M_YES : M_NO;
    case SPF_MECH_IP6:
        return chk_ip_in(c, t->addr, AF_INET6, t->cidr6) ? M_YES : M_NO;
    default:
        break;
    }
    target = chk_target(c, t->domain, t->domain_len, domain, &perm);
    if (target == NULL)
        return perm ? M_PERMERROR : M_TEMPERROR;
    bool saved_no_cache = c->no_cache;
    if (t->domain != NULL && memchr(t->domain, '%', t->domain_len) != NULL)
        c->no_cache = true;

    switch (t->mech) {
    case SPF_MECH_INCLUDE: {
        char *ignored = NULL;
        enum spf_result r = chk_host(c, target, depth + 1, &ignored);
        free(ignored);
        if (r == SPFC_PASS)
            m = M_YES;
        else if (r == SPFC_TEMPERROR)
            m = M_TEMPERROR;
        else if (r == SPFC_PERMERROR || r == SPFC_NONE) {
            chk_problem(c, "include:%s gave %s", target, spf_result_name(r));
            m = M_PERMERROR;
        }
        break;
    }
    case SPF_MECH_A:
        m = chk_addr_match(c, target, t->cidr4, t->cidr6, true);
        break;
    case SPF_MECH_MX: {
        SPF_dns_rr_t *rr;
        enum chk_lookup lk = chk_lookup(c, target, ns_t_mx, &rr);
        if (lk == LK_ERROR) {
            m = M_TEMPERROR;
            break;
        }
        if (lk == LK_VOID) {
            m = chk_void(c, target);
            break;
        }
        if (rr->num_rr > SPF_MAX_MX_NAMES) {
            chk_problem(c, "mx:%s has more than %d MX names", target, SPF_MAX_MX_NAMES);
            SPF_dns_rr_free(rr);
            m = M_PERMERROR;
            break;
        }
        for (int i = 0; i < rr->num_rr && m == M_NO; i++) {
            const char *mx = rr->rr[i]->mx;
            if (mx[0] == '\0' || strcmp(mx, ".") == 0) /* RFC 7505 null MX */
                continue;
            m = chk_addr_match(c, mx, t->cidr4, t->cidr6, false);
        }
        SPF_dns_rr_free(rr);
        break;
    }
    case SPF_MECH_PTR: {
        chk_validate_ptr(c);
        for (size_t i = 0; i < c->nptr && m == M_NO; i++)
            if (chk_name_is_or_under(c->ptr_names[i], target))
                m = M_YES;
        break;
    }
    case SPF_MECH_EXISTS: {
        SPF_dns_rr_t *rr;
        enum chk_lookup lk = chk_lookup(c, target, ns_t_a, &rr);
        if (lk == LK_ERROR)
            m = M_TEMPERROR;
        else if (lk == LK_VOID)
            m = chk_void(c, target);
        else {
            SPF_dns_rr_free(rr);
            m = M_YES;
        }
        break;
    }
    default:
        break;
    }
    c->no_cache = saved_no_cache;
    free(target);
    return m;
}

/* RFC 7208 6.2: the explanation of a fail, or NULL to use the default. */
static char *chk_explanation(struct chk *c, const struct spf_record *rec, const char *domain)
{
    bool perm;
    char *target = chk_target(c, rec->exp, rec->exp_len, domain, &perm);
    if (target == NULL)
        return NULL;
    SPF_dns_rr_t *rr;
    /* A failing explanation must not turn the fail into a temperror. */
    char *saved_problem = c->problem;
    bool saved_no_cache = c->no_cache;
    c->problem = NULL;
    if (memchr(rec->exp, '%', rec->exp_len) != NULL)
        c->no_cache = true;
    enum chk_lookup lk = chk_lookup(c, target, ns_t_txt, &rr);
    c->no_cache = saved_no_cache;
    free(c->problem);
    c->problem = saved_problem;
    free(target);
    if (lk != LK_OK)
        return NULL;
    char *out = NULL;
    if (rr->num_rr == 1) {
        const char *saved = c->m.domain;
        c->m.domain = domain;
        if (spf_explain_expand(rr->rr[0]->txt, strlen(rr->rr[0]->txt), &c->m, &out) < 0)
            out = NULL;
        c->m.domain = saved;
    }
    SPF_dns_rr_free(rr);
    return out;
}

static enum spf_result chk_qualifier(char q)
{
    switch (q) {
    case '-':
        return SPFC_FAIL;
    case '~':
        return SPFC_SOFTFAIL;
    case '?':
        return SPFC_NEUTRAL;
    default:
        return SPFC_PASS;
    }
}

static void chk_set_mechanism(struct chk *c, const char *s, size_t n)
{
    free(c->mechanism);
    c->mechanism = strndup(s, n);
}

static enum spf_result chk_host(struct chk *c, const char *domain, unsigned depth, char **exp)
{
    *exp = NULL;
    if (depth > SPF_CHECK_MAX_DEPTH) {
        chk_problem(c, "include/redirect nested deeper than %d", SPF_CHECK_MAX_DEPTH);
        return SPFC_PERMERROR;
    }
    if (depth == 0 ? !spf_check_domain_ok(domain) : !chk_target_ok(domain)) {
        chk_problem(c, "'%.64s' is not a valid domain", domain);
        return SPFC_NONE;
    }
    SPF_dns_rr_t *rr;
    enum chk_lookup lk = chk_lookup(c, domain, ns_t_txt, &rr);
    if (lk == LK_ERROR)
        return SPFC_TEMPERROR;
    if (lk == LK_VOID) {
        chk_problem(c, "%.64s has no SPF record", domain);
        return SPFC_NONE;
    }
    int found = -1;
    for (int i = 0; i < rr->num_rr; i++) {
        const char *txt = rr->rr[i]->txt;
        if (spf_record_is_spf1(txt, strlen(txt))) {
            if (found >= 0) {
                SPF_dns_rr_free(rr);
                chk_problem(c, "%.64s has more than one SPF record", domain);
                return SPFC_PERMERROR;
            }
            found = i;
        }
    }
    if (found < 0) {
        SPF_dns_rr_free(rr);
        chk_problem(c, "%.64s has no SPF record", domain);
        return SPFC_NONE;
    }
    struct spf_record rec;
    struct spf_record_error err;
    const char *txt = rr->rr[found]->txt;
    int prc = spf_record_parse(txt, strlen(txt), &rec, &err);
    SPF_dns_rr_free(rr);
    if (prc < 0) {
        chk_problem(c, "SPF record of %.64s: %s (at %zu)", domain, err.message, err.offset);
        return SPFC_PERMERROR;
    }

    enum spf_result result = SPFC_NEUTRAL;
    bool matched = false;
    for (size_t i = 0; i < rec.nterms && !matched; i++) {
        const struct spf_term *t = &rec.terms[i];
        if (spf_mech_queries_dns(t->mech) && ++c->dns_terms > SPF_MAX_DNS_TERMS) {
            chk_problem(c, "more than %d DNS-querying terms (at %.*s)", SPF_MAX_DNS_TERMS,
                        (int)(t->text_len > 64 ? 64 : t->text_len), t->text);
            result = SPFC_PERMERROR;
            goto done;
        }
        enum chk_match m = chk_mechanism(c, t, domain, depth);
        if (c->oom) {
            result = SPFC_TEMPERROR;
            goto done;
        }
        if (m == M_TEMPERROR) {
            result = SPFC_TEMPERROR;
            goto done;
        }
        if (m == M_PERMERROR) {
            result = SPFC_PERMERROR;
            goto done;
        }
        if (m == M_YES) {
            matched = true;
            result = chk_qualifier(t->qualifier);
            chk_set_mechanism(c, t->text, t->text_len);
            if (result == SPFC_FAIL && rec.exp != NULL)
                *exp = chk_explanation(c, &rec, domain);
        }
    }
    if (!matched && rec.redirect != NULL) {
        if (++c->dns_terms > SPF_MAX_DNS_TERMS) {
            chk_problem(c, "more than %d DNS-querying terms (at redirect=%.*s)", SPF_MAX_DNS_TERMS,
                        (int)(rec.redirect_len > 64 ? 64 : rec.redirect_len), rec.redirect);
            result = SPFC_PERMERROR;
            goto done;
        }
        bool perm;
        char *target = chk_target(c, rec.redirect, rec.redirect_len, domain, &perm);
        if (target == NULL) {
            result = perm ? SPFC_PERMERROR : SPFC_TEMPERROR;
            goto done;
        }
        result = chk_host(c, target, depth + 1, exp);
        if (result == SPFC_NONE) {
            chk_problem(c, "redirect=%.64s has no SPF record", target);
            result = SPFC_PERMERROR;
        }
        free(target);
    } else if (!matched) {
        chk_set_mechanism(c, "default", 7);
    }
done:
    spf_record_free(&rec);
    return result;
}

/* RFC 7208 5: an IPv4-mapped client is an IPv4 client (util/net's model). */
static bool chk_parse_ip(const char *s, int *family, unsigned char ip[16])
{
    struct net_addr a;
    if (s == NULL || !net_addr_parse(s, strlen(s), &a))
        return false;
    *family = a.family;
    memcpy(ip, a.bytes, 16);
    return true;
}

int spf_check_host(SPF_dns_server_t *dns, const struct spf_check_request *req,
                   struct spf_check_result *res)
{
    struct chk c = {.dns = dns, .deadline = req->deadline};
    memset(res, 0, sizeof *res);
    res->identity = req->identity;
    const char *helo = req->helo ? req->helo : "";
    const char *sender = req->sender ? req->sender : "";
    char *mailbox;
    if (req->identity == SPF_ID_HELO || sender[0] == '\0') {
        res->identity = SPF_ID_HELO;
        if (asprintf(&mailbox, "postmaster@%s", helo) < 0)
            mailbox = NULL;
    } else {
        mailbox = strdup(sender);
    }
    if (mailbox == NULL) {
        res->result = SPFC_TEMPERROR;
        return -1;
    }
    char *at = strrchr(mailbox, '@');
    char *local = at ? strndup(mailbox, (size_t)(at - mailbox)) : strdup("postmaster");
    char *domain = strdup(at ? at + 1 : mailbox);
    if (local != NULL && local[0] == '\0') {
        free(local);
        local = strdup("postmaster");
    }
    res->sender = mailbox;
    res->domain = domain;
    if (local == NULL || domain == NULL) {
        free(local);
        res->result = SPFC_TEMPERROR;
        return -1;
    }
    c.m.sender = mailbox;
    c.m.local = local;
    c.m.sender_domain = domain;
    c.m.domain = domain;
    c.m.helo = helo;
    c.m.receiver = req->receiver;
    c.m.timestamp = req->now ? req->now : (long long)time(NULL);
    c.m.validated = chk_p_macro;
    c.m.arg = &c;

    char *exp = NULL;
    if (!chk_parse_ip(req->ip, &c.m.family, c.m.ip)) {
        chk_problem(&c, "invalid client address '%.64s'", req->ip ? req->ip : "");
        res->result = SPFC_PERMERROR;
    } else {
        spf_dns_deadline_set(&req->deadline);
        res->result = chk_host(&c, domain, 0, &exp);
        spf_dns_deadline_set(NULL);
    }
    if (res->result != SPFC_FAIL) {
        free(exp);
        exp = NULL;
    }
    res->explanation = exp;
    res->mechanism = c.mechanism;
    if (res->result == SPFC_PASS || res->result == SPFC_FAIL || res->result == SPFC_SOFTFAIL ||
        res->result == SPFC_NEUTRAL) {
        free(c.problem);
        c.problem = NULL;
    } else {
        free(c.mechanism);
        res->mechanism = NULL;
    }
    res->problem = c.problem;
    res->dns_terms = c.dns_terms;
    res->void_lookups = c.voids;
    for (size_t i = 0; i < c.nptr; i++)
        free(c.ptr_names[i]);
    free(c.p_value);
    free(local);
    return c.oom ? -1 : 0;
}

void spf_check_result_free(struct spf_check_result *res)
{
    if (res == NULL)
        return;
    free(res->sender);
    free(res->domain);
    free(res->mechanism);
    free(res->explanation);
    free(res->problem);
    memset(res, 0, sizeof *res);
}
