/*
 * sa_eval_fns - SpamAssassin's FromNameSpoof tests (Plugin::FromNameSpoof),
 * natively.  Each asks one fact of the same judgement of the From field: is
 * there an address in its display name, and does it name someone else than
 * the From address does?
 *
 *   check_fromname_contains_email()  the display name holds an address
 *                                    with a registrable domain
 *   check_fromname_different()       that address is not the From address
 *   check_fromname_domain_differ()   its registered domain is not From's
 *   check_fromname_owners_differ()   its owner is not From's: the owner is
 *                                    the fns_add_addrlist list (NAME) an
 *                                    address is on (also with its host cut
 *                                    to the registered domain), else the
 *                                    first label of the registered domain
 *   check_fromname_spoof([LEVEL])    different (0), different and owners
 *                                    differ (1), different and domains
 *                                    differ (2); LEVEL, when it is 0, 1 or
 *                                    2, else fns_check
 *   check_fromname_equals_replyto()  it is the first Reply-To address
 *   check_fromname_equals_to()       it is one of all_to_addrs()
 *
 * What it promises: the plugin's _check_fromnamespoof step for step: the
 * first From address and display name lower-cased (ASCII, as Perl's lc on
 * octets), the name's address found with the plugin's own pattern, its
 * domain as RegistryBoundaries::uri_to_domain("mailto:...") gives it
 * (one '@', no %-escape of a printable, a valid name with a util_rb_tld
 * TLD, trimmed with util_rb_2tld/3tld; an IPv4 address kept), the
 * "closeness" cut of fns_extrachars (past it only contains_email holds),
 * and no fact at all when a field fns_ignore_headers names is there.  Only
 * local tests run here, where the plugin ignores fns_ignore_dkim too.
 *
 * What it assumes: SpamAssassin's display names are the ones GMime's
 * address parser gives (msg.c), as everywhere the :name modifier is read.
 * A host with octets beyond ASCII has no domain here (SpamAssassin would
 * try its IDN form).
 */
#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_addrs.h"
#include "rules/sa_eval.h"
#include "rules/sa_lists.h"
#include "util/alloc.h"

/* the plugin's pattern of an address inside the display name */
#define FNS_NAME_ADDR_RE                                                                           \
    "\\b([\\w\\.\\!\\#\\$\\%\\&\\'\\*\\+\\/\\=\\?\\^\\_\\`\\{\\|\\}\\~-]+\\@\\w[\\w-]*\\.\\w[\\w.-]++)\\b"

enum { RE_NAME_ADDR, RE_FOR };

struct fns_facts {
    bool contains_email, address_different, domain_different, owner_different, equals_replyto,
        equals_to;
};

static bool fns_check(struct sa_eval_call *c, char *why, size_t wn)
{
    /* Perl ignores arguments a function does not read */
    return sa_eval_compile(c, FNS_NAME_ADDR_RE, PCRE2_CASELESS, why, wn) &&
           sa_eval_compile(c, SA_ADDRS_FOR_RE, 0, why, wn);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* RegistryBoundaries::uri_to_domain("mailto:" . addr) into out (size on):
 * false when it gives none */
static bool mailto_domain(const struct sa_lists *l, const char *addr, char *out, size_t on)
{
    char *u = NULL;
    if (util_asprintf(&u, "mailto:%s", addr) < 0)
        return false;
    bool ok = sa_lists_uri_to_domain(l, u, strlen(u), out, on);
    free(u);
    return ok;
}

/* _find_address_owner: the fns list it is on, else the first label of its
 * registered domain; into out (size on).  0, or -1 when out of memory. */
static int find_owner(const struct sa_lists *l, const char *addr, const char *dom, char *out,
                      size_t on)
{
    const struct sa_fns_opts *o = sa_lists_fns_opts(l);
    for (size_t i = 0; i < o->nowners; i++) {
        int v = sa_lists_addr_listed(l, o->owners[i], addr, strlen(addr));
        if (v < 0)
            return -1;
        if (v == 1) {
            snprintf(out, on, "%s", o->owners[i] + 4);
            lower(out);
            return 0;
        }
    }
    /* user@sub.example.com is asked again as user@example.com */
    const char *at = strchr(addr, '@');
    if (at != NULL && at != addr && at[1] != '\0' && strcmp(at + 1, dom) != 0) {
        size_t un = (size_t)(at - addr);
        char *again = util_malloc(un + strlen(dom) + 2);
        if (again == NULL)
            return -1;
        memcpy(again, addr, un + 1);
        strcpy(again + un + 1, dom);
        int rc = find_owner(l, again, dom, out, on);
        free(again);
        return rc;
    }
    size_t k = strcspn(dom, ".");
    if (dom[k] == '.' && k > 0)
        snprintf(out, on, "%.*s", (int)k, dom);
    else
        snprintf(out, on, "%s", dom);
    return 0;
}

/* get('NAME:addr') or get('From:name') in scalar context: the first, or "" */
static int first_of(struct rules_msg *m, const char *name, bool names, char **out)
{
    *out = NULL;
    size_t nf = rules_msg_field_count(m);
    for (size_t i = 0; i < nf && *out == NULL; i++) {
        struct rules_msg_field *f = rules_msg_field(m, i);
        if (strcasecmp(f->name, name) != 0)
            continue;
        rules_msg_field_addrs(m, i);
        if (rules_msg_nomem(m))
            return -1;
        if (names ? f->nnames > 0 : f->naddrs > 0)
            *out = util_strdup(names ? f->names[0] : f->addrs[0]);
        else
            continue;
        if (*out == NULL)
            return -1;
    }
    if (*out == NULL && (*out = util_strdup("")) == NULL)
        return -1;
    lower(*out);
    return 0;
}

/* a field fns_ignore_headers names is there (get() gives a true value) */
static int ignored(const struct sa_lists *l, struct rules_msg *m)
{
    const struct sa_fns_opts *o = sa_lists_fns_opts(l);
    struct sa_eval_buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < o->nignore && rc == 0; i++) {
        if (sa_eval_get(m, o->ignore_headers[i], false, &b) < 0)
            rc = -1;
        else if (b.n > 0 && !(b.n == 1 && b.s[0] == '0'))
            rc = 1;
    }
    sa_eval_buf_free(&b);
    return rc;
}

/* the non-alphanumeric octets of s (Perl's y/a-z0-9//c) */
static size_t others(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'));
    return k;
}

static int judge(const struct sa_eval_call *c, struct rules_msg *m, struct fns_facts *f)
{
    *f = (struct fns_facts){0};
    int ig = ignored(c->lists, m);
    if (ig != 0)
        return ig < 0 ? -1 : 0;
    char *from = NULL, *name = NULL, *reply = NULL, *naddr = NULL;
    char from_dom[1024], name_dom[1024], from_owner[1024], name_owner[1024];
    struct sa_addrs to = {0};
    int rc = -1;
    if (first_of(m, "From", false, &from) != 0)
        goto out;
    rc = 0;
    if (!mailto_domain(c->lists, from, from_dom, sizeof(from_dom)))
        goto out;
    rc = -1;
    if (first_of(m, "From", true, &name) != 0)
        goto out;
    size_t gs, gl, nn = strlen(name);
    rc = sa_eval_match(c, RE_NAME_ADDR, NULL, name, nn, 1, &gs, &gl);
    if (rc != 1)
        goto out;
    rc = -1;
    if ((naddr = util_memdup(name + gs, gl)) == NULL)
        goto out;
    rc = 0;
    if (!mailto_domain(c->lists, naddr, name_dom, sizeof(name_dom)))
        goto out;
    f->contains_email = true;
    /* how much more than the address the name holds, its punctuation
     * beyond the address's counted twice */
    double extra = (double)nn + (double)others(name, nn) - (double)others(naddr, gl) - (double)gl;
    if (!(extra <= sa_lists_fns_opts(c->lists)->extrachars))
        goto out;
    rc = -1;
    if (find_owner(c->lists, naddr, name_dom, name_owner, sizeof(name_owner)) != 0 ||
        find_owner(c->lists, from, from_dom, from_owner, sizeof(from_owner)) != 0)
        goto out;
    f->address_different = strcmp(naddr, from) != 0;
    f->domain_different = strcmp(name_dom, from_dom) != 0;
    f->owner_different = strcmp(name_owner, from_owner) != 0;
    if (first_of(m, "Reply-To", false, &reply) != 0)
        goto out;
    f->equals_replyto = strcmp(naddr, reply) == 0;
    if (sa_addrs_all_to(m, c->re[RE_FOR], &to) != 0)
        goto out;
    f->equals_to = sa_addrs_has(&to, naddr);
    rc = 0;
out:
    if (rc < 0)
        *f = (struct fns_facts){0};
    free(from);
    free(name);
    free(reply);
    free(naddr);
    sa_addrs_free(&to);
    return rc < 0 ? -1 : 0;
}

#define FNS_FACT(fn, field)                                                                        \
    static int fn(const struct sa_eval_call *c, struct rules_msg *m)                               \
    {                                                                                              \
        struct fns_facts f;                                                                        \
        return judge(c, m, &f) != 0 ? -1 : f.field;                                                \
    }
FNS_FACT(fromname_different, address_different)
FNS_FACT(fromname_domain_differ, domain_different)
FNS_FACT(fromname_contains_email, contains_email)
FNS_FACT(fromname_equals_to, equals_to)
FNS_FACT(fromname_owners_differ, owner_different)
FNS_FACT(fromname_equals_replyto, equals_replyto)

static int fromname_spoof(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct fns_facts f;
    if (judge(c, m, &f) != 0)
        return -1;
    int level = sa_lists_fns_opts(c->lists)->check;
    /* /^[012]$/ */
    const char *a = c->args.n > 0 ? c->args.v[0] : NULL;
    size_t an = a ? c->args.len[0] : 0;
    if (a != NULL && (an == 1 || (an == 2 && a[1] == '\n')) && a[0] >= '0' && a[0] <= '2')
        level = a[0] - '0';
    switch (level) {
    case 0:
        return f.address_different;
    case 1:
        return f.address_different && f.owner_different;
    default:
        return f.address_different && f.domain_different;
    }
}

const struct sa_eval_def sa_eval_fns_defs[] = {
    {"check_fromname_spoof", fromname_spoof, fns_check},
    {"check_fromname_different", fromname_different, fns_check},
    {"check_fromname_domain_differ", fromname_domain_differ, fns_check},
    {"check_fromname_contains_email", fromname_contains_email, fns_check},
    {"check_fromname_equals_to", fromname_equals_to, fns_check},
    {"check_fromname_owners_differ", fromname_owners_differ, fns_check},
    {"check_fromname_equals_replyto", fromname_equals_replyto, fns_check},
    {NULL, NULL, NULL},
};
