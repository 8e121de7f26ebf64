/*
 * sa_lists - SpamAssassin's address and domain lists (see sa_lists.h): the
 * settings as Conf.pm, Conf/Parser.pm's add_to_addrlist and FreeMail.pm's
 * parse_config read them, held in open-addressing hash tables of their
 * exact entries beside a short array of the wildcard ones.
 */
#include "rules/sa_lists.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* ---- a set of strings, each with a small value ---- */
struct strmap {
    char **keys; /* NULL empty, TOMB removed */
    signed char *vals;
    size_t cap;  /* a power of two, or 0 */
    size_t used; /* keys and tombstones */
};
static char tomb_mark;
#define TOMB (&tomb_mark)

static size_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

static bool key_is(const char *k, const char *s, size_t n)
{
    return k != NULL && k != TOMB && strlen(k) == n && memcmp(k, s, n) == 0;
}

/* the slot of s, or (size_t)-1 */
static size_t map_find(const struct strmap *m, const char *s, size_t n)
{
    n = strnlen(s, n); /* a key ends at a NUL */
    if (m->cap == 0)
        return (size_t)-1;
    for (size_t i = hash_str(s, n) & (m->cap - 1), k = 0; k < m->cap;
         k++, i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == NULL)
            return (size_t)-1;
        if (key_is(m->keys[i], s, n))
            return i;
    }
    return (size_t)-1;
}

static int map_grow(struct strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    char **keys = util_calloc(cap, sizeof(*keys));
    signed char *vals = util_calloc(cap, 1);
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return -1;
    }
    size_t used = 0;
    for (size_t i = 0; i < m->cap; i++) {
        char *k = m->keys[i];
        if (k == NULL || k == TOMB)
            continue;
        size_t j = hash_str(k, strlen(k)) & (cap - 1);
        while (keys[j] != NULL)
            j = (j + 1) & (cap - 1);
        keys[j] = k;
        vals[j] = m->vals[i];
        used++;
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->used = used;
    return 0;
}

/* adds s (or sets its value): 0, -1 out of memory */
static int map_put(struct strmap *m, const char *s, size_t n, signed char v)
{
    n = strnlen(s, n);
    size_t at = map_find(m, s, n);
    if (at != (size_t)-1) {
        m->vals[at] = v;
        return 0;
    }
    if ((m->used + 1) * 4 >= m->cap * 3 && map_grow(m) != 0)
        return -1;
    char *k = util_strndup(s, n);
    if (k == NULL)
        return -1;
    size_t i = hash_str(s, n) & (m->cap - 1);
    while (m->keys[i] != NULL && m->keys[i] != TOMB)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == NULL)
        m->used++;
    m->keys[i] = k;
    m->vals[i] = v;
    return 0;
}

static void map_del(struct strmap *m, const char *s, size_t n)
{
    size_t at = map_find(m, s, n);
    if (at == (size_t)-1)
        return;
    free(m->keys[at]);
    m->keys[at] = TOMB;
}

static bool map_empty(const struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != NULL && m->keys[i] != TOMB)
            return false;
    return true;
}

static void map_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != TOMB)
            free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    *m = (struct strmap){0};
}

/* ---- the lists ---- */
struct addrlist {
    char *name;
    struct strmap exact; /* every entry as written (lower-cased) */
    struct strmap atdom; /* the DOMAIN of the entries "*@DOMAIN" (no other wildcard) */
    char **globs;        /* the other entries with a wildcard or an octet the glob rewrites */
    size_t nglobs, cap;
};

/* a (def_)welcomelist_from_rcvd entry: the address pattern, lower-cased,
 * and the relays (rDNS domains or [IP] forms) named for it, in file order */
struct rcvdentry {
    char *addr;
    char **relays;
    size_t nrelays, cap;
};

struct rcvdlist {
    struct rcvdentry *v;
    size_t n, cap;
};

/* a welcomelist_subject or blocklist_subject string, lower-cased, with
 * any octet (a NUL too) */
struct subject {
    char *s;
    size_t n;
};

struct urilist {
    char *name;
    struct strmap hosts; /* 1 listed, 0 listed with '!' */
};

struct sa_lists {
    atomic_uint refs;
    struct addrlist *addr;
    size_t naddr;
    struct urilist *uri; /* in name order */
    size_t nuri;
    struct rcvdlist rcvd[SA_RCVD__COUNT];
    struct subject *subj[2]; /* welcomelist_subject, blocklist_subject */
    size_t nsubj[2], subj_cap[2];
    struct strmap fm_domains;
    char **fm_wild; /* freemail_domains with * or ? */
    size_t nfm_wild, fm_wild_cap;
    struct strmap fm_welcome;
    struct strmap tlds;
    struct strmap tld2, tld3; /* util_rb_2tld, util_rb_3tld */
    struct sa_freemail_opts fm;
    struct sa_fns_opts fns;
    pcre2_code *email_re, *welcome_re, *bulk_re, *url_re, *strip_re;
};

struct sa_lists *sa_lists_new(void)
{
    struct sa_lists *l = util_calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    atomic_init(&l->refs, 1);
    l->fm = (struct sa_freemail_opts){5, 3, 1, 1, 1, 0, 0};
    l->fns.extrachars = 50;
    l->fns.check = 1;
    return l;
}

struct sa_lists *sa_lists_ref(struct sa_lists *l)
{
    if (l != NULL)
        atomic_fetch_add(&l->refs, 1);
    return l;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void sa_lists_unref(struct sa_lists *l)
{
    if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    for (size_t i = 0; i < l->naddr; i++) {
        free(l->addr[i].name);
        map_free(&l->addr[i].exact);
        map_free(&l->addr[i].atdom);
        strv_free(l->addr[i].globs, l->addr[i].nglobs);
    }
    free(l->addr);
    for (size_t i = 0; i < l->nuri; i++) {
        free(l->uri[i].name);
        map_free(&l->uri[i].hosts);
    }
    free(l->uri);
    for (size_t k = 0; k < SA_RCVD__COUNT; k++) {
        for (size_t i = 0; i < l->rcvd[k].n; i++) {
            free(l->rcvd[k].v[i].addr);
            strv_free(l->rcvd[k].v[i].relays, l->rcvd[k].v[i].nrelays);
        }
        free(l->rcvd[k].v);
    }
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < l->nsubj[k]; i++)
            free(l->subj[k][i].s);
        free(l->subj[k]);
    }
    map_free(&l->fm_domains);
    strv_free(l->fm_wild, l->nfm_wild);
    map_free(&l->fm_welcome);
    map_free(&l->tlds);
    map_free(&l->tld2);
    map_free(&l->tld3);
    strv_free(l->fns.owners, l->fns.nowners);
    strv_free(l->fns.ignore_headers, l->fns.nignore);
    pcre2_code_free(l->email_re);
    pcre2_code_free(l->welcome_re);
    pcre2_code_free(l->bulk_re);
    pcre2_code_free(l->url_re);
    pcre2_code_free(l->strip_re);
    free(l);
}

/* ---- the glob ---- */
static bool glob_rewrites(char c)
{
    return c == '*' || c == '?' || c == '\0' || c == '\\' || c == '(';
}

static bool glob_run(const char *p, size_t pn, const char *s, size_t sn, bool dots, bool *cur,
                     bool *nxt)
{
    /* cur[j]: the pattern's first j octets match the subject read so far */
    cur[0] = true;
    for (size_t j = 0; j < pn; j++)
        cur[j + 1] = cur[j] && p[j] == '*';
    for (size_t i = 0; i < sn; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        bool any = false;
        nxt[0] = false;
        for (size_t j = 0; j < pn; j++) {
            char pc = p[j];
            bool v;
            if (pc == '*')
                /* .* or, within a label, [^.]* */
                v = nxt[j] || (cur[j + 1] && (dots ? c != '.' : c != '\n'));
            else if (pc == '?')
                v = cur[j] && c != '\n';
            else {
                char lit = !dots && (pc == '\0' || pc == '\\' || pc == '(') ? '_' : pc;
                v = cur[j] && (char)tolower((unsigned char)lit) == c;
            }
            nxt[j + 1] = v;
            any |= v;
        }
        bool *t = cur;
        cur = nxt;
        nxt = t;
        if (!any)
            return false;
    }
    return cur[pn];
}

static bool glob_at(const char *p, size_t pn, const char *s, size_t sn, bool dots)
{
    bool stack[2 * 256];
    bool *buf = pn < 255 ? stack : util_malloc(2 * (pn + 1) * sizeof(bool));
    if (buf == NULL)
        return false;
    bool hit = glob_run(p, pn, s, sn, dots, buf, buf + pn + 1);
    if (buf != stack)
        free(buf);
    return hit;
}

bool sa_glob_match(const char *pat, size_t pn, const char *s, size_t sn, bool dots_bound)
{
    /* Perl's $ also matches before a line end that ends the subject */
    return glob_at(pat, pn, s, sn, dots_bound) ||
           (sn > 0 && s[sn - 1] == '\n' && glob_at(pat, pn, s, sn - 1, dots_bound));
}

/* ---- settings ---- */
/* a NUL within stands for '_', as SpamAssassin's glob reads it */
static char *lower_dup(const char *s, size_t n)
{
    char *d = util_memdup(s, n);
    if (d != NULL)
        for (size_t i = 0; i < n; i++)
            d[i] = d[i] == '\0' ? '_' : (char)tolower((unsigned char)d[i]);
    return d;
}

/* the next blank-separated word of *s..end */
static bool next_word(const char **s, const char *end, const char **w, size_t *wn)
{
    const char *p = *s;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p == end)
        return false;
    const char *q = p;
    while (q < end && !isspace((unsigned char)*q))
        q++;
    *w = p;
    *wn = (size_t)(q - p);
    *s = q;
    return true;
}

static struct addrlist *addrlist_get(struct sa_lists *l, const char *name, size_t n, bool create)
{
    for (size_t i = 0; i < l->naddr; i++)
        if (strlen(l->addr[i].name) == n && memcmp(l->addr[i].name, name, n) == 0)
            return &l->addr[i];
    if (!create)
        return NULL;
    struct addrlist *v = util_reallocarray(l->addr, l->naddr + 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    l->addr = v;
    v[l->naddr] = (struct addrlist){.name = util_strndup(name, n)};
    if (v[l->naddr].name == NULL)
        return NULL;
    return &v[l->naddr++];
}

static int addr_add(struct addrlist *a, const char *w, size_t wn)
{
    char *lw = lower_dup(w, wn);
    if (lw == NULL)
        return -1;
    /* the key is lower-cased, as the hash's key in Perl */
    int rc = map_put(&a->exact, lw, wn, 1);
    bool glob = false, atdom = wn > 2 && lw[0] == '*' && lw[1] == '@';
    for (size_t i = 0; i < wn; i++) {
        glob |= glob_rewrites(lw[i]);
        atdom &= i < 2 || !glob_rewrites(lw[i]);
    }
    if (rc == 0 && atdom) {
        /* "*@DOMAIN", the common form: hashed by its domain */
        rc = map_put(&a->atdom, lw + 2, wn - 2, 1);
        free(lw);
        return rc;
    }
    for (size_t i = 0; i < a->nglobs && glob; i++)
        glob = strcmp(a->globs[i], lw) != 0;
    if (rc == 0 && glob) {
        if (util_grow(&a->globs, &a->cap, a->nglobs + 1, sizeof(*a->globs)) != 0)
            rc = -1;
        else
            a->globs[a->nglobs++] = lw, lw = NULL;
    }
    free(lw);
    return rc;
}

static void addr_remove(struct addrlist *a, const char *w, size_t wn)
{
    char buf[512] = {0};
    if (wn >= sizeof(buf))
        return; /* no entry is that long: the setting's line is limited */
    for (size_t i = 0; i < wn; i++)
        buf[i] = (char)tolower((unsigned char)w[i]);
    map_del(&a->exact, buf, wn);
    if (wn > 2 && buf[0] == '*' && buf[1] == '@')
        map_del(&a->atdom, buf + 2, wn - 2);
    for (size_t i = 0; i < a->nglobs; i++)
        if (strlen(a->globs[i]) == wn && memcmp(a->globs[i], buf, wn) == 0) {
            free(a->globs[i]);
            a->globs[i] = a->globs[--a->nglobs];
            break;
        }
}

/* list "(NAME) rest": the name and the rest */
static bool paren_name(const char *v, size_t vn, const char **name, size_t *nn, const char **rest,
                       size_t *rn)
{
    if (vn < 3 || v[0] != '(')
        return false;
    const char *close = memchr(v + 1, ')', vn - 1);
    if (close == NULL || close == v + 1)
        return false;
    const char *r = close + 1, *end = v + vn;
    if (r == end || !isspace((unsigned char)*r))
        return false;
    while (r < end && isspace((unsigned char)*r))
        r++;
    if (r == end)
        return false;
    *name = v + 1;
    *nn = (size_t)(close - v - 1);
    *rest = r;
    *rn = (size_t)(end - r);
    return true;
}

static enum sa_lists_rc addrlist_setting(struct sa_lists *l, const char *list, size_t ln,
                                         const char *v, size_t vn, bool remove)
{
    struct addrlist *a = addrlist_get(l, list, ln, !remove);
    if (a == NULL)
        return remove ? SA_LISTS_OK : SA_LISTS_NOMEM;
    const char *p = v, *w;
    size_t wn;
    while (next_word(&p, v + vn, &w, &wn)) {
        if (remove)
            addr_remove(a, w, wn);
        else if (addr_add(a, w, wn) != 0)
            return SA_LISTS_NOMEM;
    }
    return SA_LISTS_OK;
}

static struct urilist *urilist_get(struct sa_lists *l, const char *name, size_t n, bool create)
{
    size_t at = 0;
    for (; at < l->nuri; at++) {
        const char *u = l->uri[at].name;
        size_t un = strlen(u);
        int c = memcmp(u, name, un < n ? un : n);
        if (c == 0 && un == n)
            return &l->uri[at];
        if (c > 0 || (c == 0 && un > n))
            break;
    }
    if (!create)
        return NULL;
    struct urilist *v = util_reallocarray(l->uri, l->nuri + 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    l->uri = v;
    char *nm = util_strndup(name, n);
    if (nm == NULL)
        return NULL;
    memmove(&v[at + 1], &v[at], (l->nuri - at) * sizeof(*v));
    v[at] = (struct urilist){.name = nm};
    l->nuri++;
    return &v[at];
}

static enum sa_lists_rc uri_enlist(struct sa_lists *l, const char *name, size_t nn, const char *v,
                                   size_t vn)
{
    struct urilist *u = urilist_get(l, name, nn, true);
    if (u == NULL)
        return SA_LISTS_NOMEM;
    const char *p = v, *w;
    size_t wn;
    while (next_word(&p, v + vn, &w, &wn)) {
        signed char val = 1;
        if (w[0] == '!') {
            w++;
            wn--;
            val = 0;
        }
        char *lw = lower_dup(w, wn);
        if (lw == NULL || map_put(&u->hosts, lw, wn, val) != 0) {
            free(lw);
            return SA_LISTS_NOMEM;
        }
        free(lw);
    }
    return SA_LISTS_OK;
}

static void uri_delist(struct urilist *u, const char *v, size_t vn)
{
    const char *p = v, *w;
    size_t wn;
    while (next_word(&p, v + vn, &w, &wn)) {
        if (w[0] == '!') {
            w++;
            wn--;
        }
        char buf[512] = {0};
        if (wn >= sizeof(buf))
            continue;
        for (size_t i = 0; i < wn; i++)
            buf[i] = (char)tolower((unsigned char)w[i]);
        map_del(&u->hosts, buf, wn);
    }
}

static enum sa_lists_rc freemail_domains(struct sa_lists *l, const char *v, size_t vn, char *why,
                                         size_t wn)
{
    const char *p = v, *w;
    size_t n;
    enum sa_lists_rc rc = SA_LISTS_OK;
    while (next_word(&p, v + vn, &w, &n)) {
        bool ok = true, wild = false;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)w[i];
            ok &= isalnum(c) || c == '.' || c == '*' || c == '?' || c == '-';
            wild |= c == '*' || c == '?';
        }
        if (!ok) {
            /* SpamAssassin warns and takes the others */
            snprintf(why, wn, "freemail: invalid freemail_domains: %.*s", (int)(n > 80 ? 80 : n),
                     w);
            rc = SA_LISTS_BAD;
            continue;
        }
        char *lw = lower_dup(w, n);
        if (lw == NULL)
            return SA_LISTS_NOMEM;
        if (wild) {
            bool have = false;
            for (size_t i = 0; i < l->nfm_wild && !have; i++)
                have = strcmp(l->fm_wild[i], lw) == 0;
            if (have) {
                free(lw);
                continue;
            }
            if (util_grow(&l->fm_wild, &l->fm_wild_cap, l->nfm_wild + 1, sizeof(char *)) != 0) {
                free(lw);
                return SA_LISTS_NOMEM;
            }
            l->fm_wild[l->nfm_wild++] = lw;
            continue;
        }
        int prc = map_put(&l->fm_domains, lw, n, 1);
        free(lw);
        if (prc != 0)
            return SA_LISTS_NOMEM;
    }
    return rc;
}

static bool word_char(unsigned char c)
{
    return isalnum(c) || c == '_';
}

static enum sa_lists_rc freemail_welcome(struct sa_lists *l, const char *v, size_t vn, char *why,
                                         size_t wn)
{
    const char *p = v, *w;
    size_t n;
    enum sa_lists_rc rc = SA_LISTS_OK;
    while (next_word(&p, v + vn, &w, &n)) {
        bool ok = false; /* /\w[.@]\w/ */
        for (size_t i = 0; i + 2 < n && !ok; i++)
            ok = word_char((unsigned char)w[i]) && (w[i + 1] == '.' || w[i + 1] == '@') &&
                 word_char((unsigned char)w[i + 2]);
        if (!ok) {
            snprintf(why, wn, "freemail: invalid freemail_welcomelist: %.*s",
                     (int)(n > 80 ? 80 : n), w);
            rc = SA_LISTS_BAD;
            continue;
        }
        char *lw = lower_dup(w, n);
        if (lw == NULL || map_put(&l->fm_welcome, lw, n, 1) != 0) {
            free(lw);
            return SA_LISTS_NOMEM;
        }
        free(lw);
    }
    return rc;
}

/* ---- welcomelist_from_rcvd ---- */
static struct rcvdentry *rcvd_find(struct rcvdlist *r, const char *addr, size_t n)
{
    for (size_t i = 0; i < r->n; i++)
        if (strlen(r->v[i].addr) == n && memcmp(r->v[i].addr, addr, n) == 0)
            return &r->v[i];
    return NULL;
}

/* add_to_addrlist_rcvd: a second line for an address adds its relay */
static enum sa_lists_rc rcvd_add(struct rcvdlist *r, const char *a, size_t an, const char *d,
                                 size_t dn)
{
    char *la = lower_dup(a, an), *ld = lower_dup(d, dn);
    if (la == NULL || ld == NULL)
        goto nomem;
    struct rcvdentry *e = rcvd_find(r, la, an);
    if (e == NULL) {
        if (util_grow(&r->v, &r->cap, r->n + 1, sizeof(*r->v)) != 0)
            goto nomem;
        e = &r->v[r->n++];
        *e = (struct rcvdentry){.addr = la};
        la = NULL;
    }
    if (util_grow(&e->relays, &e->cap, e->nrelays + 1, sizeof(*e->relays)) != 0)
        goto nomem;
    e->relays[e->nrelays++] = ld;
    free(la);
    return SA_LISTS_OK;
nomem:
    free(la);
    free(ld);
    return SA_LISTS_NOMEM;
}

static void rcvd_remove(struct rcvdlist *r, const char *a, size_t an)
{
    char buf[512];
    if (an >= sizeof(buf))
        return;
    for (size_t i = 0; i < an; i++)
        buf[i] = a[i] == '\0' ? '_' : (char)tolower((unsigned char)a[i]);
    struct rcvdentry *e = rcvd_find(r, buf, an);
    if (e == NULL)
        return;
    free(e->addr);
    strv_free(e->relays, e->nrelays);
    /* the order is the files' one: the others keep theirs */
    size_t at = (size_t)(e - r->v);
    memmove(e, e + 1, (r->n - at - 1) * sizeof(*e));
    r->n--;
}

static enum sa_lists_rc rcvd_setting(struct sa_lists *l, const char *key, const char *v, size_t vn,
                                     char *why, size_t wn)
{
    bool remove = strncmp(key, "un", 2) == 0;
    if (vn == 0) {
        snprintf(why, wn, "%s: missing required value", key);
        return SA_LISTS_BAD;
    }
    const char *p = v, *w;
    size_t n;
    if (remove) {
        /* the address goes from both lists, with every relay named for it */
        while (next_word(&p, v + vn, &w, &n))
            for (size_t k = 0; k < SA_RCVD__COUNT; k++)
                rcvd_remove(&l->rcvd[k], w, n);
        return SA_LISTS_OK;
    }
    /* /^\S+\s+\S+$/: an address and one relay */
    const char *a, *d;
    size_t an, dn;
    if (!next_word(&p, v + vn, &a, &an) || !next_word(&p, v + vn, &d, &dn) ||
        next_word(&p, v + vn, &w, &n)) {
        snprintf(why, wn, "%s: invalid value", key);
        return SA_LISTS_BAD;
    }
    return rcvd_add(&l->rcvd[key[0] == 'd' ? SA_RCVD_DEFAULT : SA_RCVD_USER], a, an, d, dn);
}

static bool is_rcvd_setting(const char *key)
{
    static const char *const names[] = {"welcomelist_from_rcvd",     "whitelist_from_rcvd",
                                        "def_welcomelist_from_rcvd", "def_whitelist_from_rcvd",
                                        "unwelcomelist_from_rcvd",   "unwhitelist_from_rcvd"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

/* ---- WelcomeListSubject ---- */
/* the setting's whole value, blanks within kept; an empty one is a string
 * too (and is in every subject, as there) */
static enum sa_lists_rc subject_add(struct sa_lists *l, int k, const char *v, size_t vn)
{
    if (util_grow(&l->subj[k], &l->subj_cap[k], l->nsubj[k] + 1, sizeof(**l->subj)) != 0)
        return SA_LISTS_NOMEM;
    char *d = util_malloc(vn + 1);
    if (d == NULL)
        return SA_LISTS_NOMEM;
    for (size_t i = 0; i < vn; i++)
        d[i] = (char)tolower((unsigned char)v[i]);
    d[vn] = '\0';
    l->subj[k][l->nsubj[k]++] = (struct subject){d, vn};
    return SA_LISTS_OK;
}

/* The compiled, unanchored pattern: `*` is .* and `?` is . (neither takes
 * a line end), every other octet itself; a match anywhere in s. */
static bool subject_glob_in(const char *p, size_t pn, const char *s, size_t sn, bool *cur,
                            bool *nxt)
{
    memset(cur, 0, pn + 1);
    cur[0] = true;
    for (size_t i = 0;; i++) {
        for (size_t j = 0; j < pn; j++)
            if (cur[j] && p[j] == '*')
                cur[j + 1] = true;
        if (cur[pn])
            return true;
        if (i == sn)
            return false;
        char c = (char)tolower((unsigned char)s[i]);
        memset(nxt, 0, pn + 1);
        for (size_t j = 0; j < pn; j++) {
            if (!cur[j])
                continue;
            if (p[j] == '*')
                nxt[j] |= c != '\n';
            else if (p[j] == '?')
                nxt[j + 1] |= c != '\n';
            else
                nxt[j + 1] |= p[j] == c;
        }
        nxt[0] = true; /* a match may begin at the next octet */
        bool *t = cur;
        cur = nxt;
        nxt = t;
    }
}

/* Perl's set_numeric_value: /^ [+-]? \d+ (?: \. \d* )? \z/ */
static bool numeric(const char *v, size_t vn, double *out)
{
    size_t i = 0, d = 0;
    if (i < vn && (v[i] == '+' || v[i] == '-'))
        i++;
    while (i < vn && isdigit((unsigned char)v[i]))
        i++, d++;
    if (d == 0)
        return false;
    if (i < vn && v[i] == '.')
        for (i++; i < vn && isdigit((unsigned char)v[i]); i++)
            ;
    if (i != vn)
        return false;
    char buf[64];
    if (vn >= sizeof(buf))
        return false;
    memcpy(buf, v, vn);
    buf[vn] = '\0';
    *out = strtod(buf, NULL);
    return true;
}

/* the settings that are named address lists, with their aliases */
static const struct {
    const char *key, *list;
    bool remove;
} addr_settings[] = {
    {"welcomelist_from", "welcomelist_from", false},
    {"whitelist_from", "welcomelist_from", false},
    {"unwelcomelist_from", "welcomelist_from", true},
    {"unwhitelist_from", "welcomelist_from", true},
    {"blocklist_from", "blocklist_from", false},
    {"blacklist_from", "blocklist_from", false},
    {"unblocklist_from", "blocklist_from", true},
    {"unblacklist_from", "blocklist_from", true},
    {"welcomelist_to", "welcomelist_to", false},
    {"whitelist_to", "welcomelist_to", false},
    {"more_spam_to", "more_spam_to", false},
    {"all_spam_to", "all_spam_to", false},
    {"blocklist_to", "blocklist_to", false},
    {"blacklist_to", "blocklist_to", false},
    {"welcomelist_auth", "welcomelist_auth", false},
    {"whitelist_auth", "welcomelist_auth", false},
    {"def_welcomelist_auth", "def_welcomelist_auth", false},
    {"def_whitelist_auth", "def_welcomelist_auth", false},
    {"welcomelist_allows_relays", "welcomelist_allows_relays", false},
    {"whitelist_allows_relays", "welcomelist_allows_relays", false},
    /* VBounce's: the relays a bounce of the admin's own mail passed */
    {"welcomelist_bounce_relays", "welcomelist_bounce_relays", false},
    {"whitelist_bounce_relays", "welcomelist_bounce_relays", false},
};

static const struct {
    const char *key;
    size_t off;
} num_settings[] = {
    {"freemail_max_body_emails", offsetof(struct sa_freemail_opts, max_body_emails)},
    {"freemail_max_body_freemails", offsetof(struct sa_freemail_opts, max_body_freemails)},
    {"freemail_skip_when_over_max", offsetof(struct sa_freemail_opts, skip_when_over_max)},
    {"freemail_skip_bulk_envfrom", offsetof(struct sa_freemail_opts, skip_bulk_envfrom)},
    {"freemail_add_describe_email", offsetof(struct sa_freemail_opts, add_describe_email)},
    {"freemail_import_welcomelist_auth",
     offsetof(struct sa_freemail_opts, import_welcomelist_auth)},
    {"freemail_import_whitelist_auth", offsetof(struct sa_freemail_opts, import_welcomelist_auth)},
    {"freemail_import_def_welcomelist_auth",
     offsetof(struct sa_freemail_opts, import_def_welcomelist_auth)},
    {"freemail_import_def_whitelist_auth",
     offsetof(struct sa_freemail_opts, import_def_welcomelist_auth)},
};

/* ---- FromNameSpoof's settings ---- */
static int strv_add(char ***v, size_t *n, const char *s, size_t sn)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*v)[i]) == sn && memcmp((*v)[i], s, sn) == 0)
            return 0;
    char **nv = util_reallocarray(*v, *n + 1, sizeof(**v));
    if (nv == NULL)
        return -1;
    *v = nv;
    if ((nv[*n] = util_memdup(s, sn)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

static enum sa_lists_rc fns_setting(struct sa_lists *l, const char *key, const char *val,
                                    size_t vn, char *why, size_t wn)
{
    const char *name, *rest;
    size_t nn, rn;
    bool add = strcmp(key, "fns_add_addrlist") == 0;
    if (add || strcmp(key, "fns_remove_addrlist") == 0) {
        if (!paren_name(val, vn, &name, &nn, &rest, &rn)) {
            snprintf(why, wn, "%s: missing required value", key);
            return SA_LISTS_BAD;
        }
        /* the owner's list is FNS_ and the name lower-cased; the list a
         * removal names need not be one fns_add_addrlist made */
        char *list = util_malloc(nn + 5);
        if (list == NULL)
            return SA_LISTS_NOMEM;
        memcpy(list, "FNS_", 4);
        for (size_t i = 0; i < nn; i++)
            list[4 + i] = (char)tolower((unsigned char)name[i]);
        list[4 + nn] = '\0';
        enum sa_lists_rc rc = addrlist_setting(l, list, nn + 4, rest, rn, !add);
        if (rc == SA_LISTS_OK && add && strv_add(&l->fns.owners, &l->fns.nowners, list, nn + 4) != 0)
            rc = SA_LISTS_NOMEM;
        free(list);
        return rc;
    }
    if (strcmp(key, "fns_extrachars") == 0) {
        if (!numeric(val, vn, &l->fns.extrachars)) {
            snprintf(why, wn, "%s: %s", key, vn ? "invalid value" : "missing required value");
            return SA_LISTS_BAD;
        }
        return SA_LISTS_OK;
    }
    if (strcmp(key, "fns_check") == 0) {
        if (vn != 1 || val[0] < '0' || val[0] > '2') {
            snprintf(why, wn, "%s: %s", key, vn ? "invalid value" : "missing required value");
            return SA_LISTS_BAD;
        }
        l->fns.check = val[0] - '0';
        return SA_LISTS_OK;
    }
    bool dkim = strcmp(key, "fns_ignore_dkim") == 0;
    if (dkim || strcmp(key, "fns_ignore_headers") == 0) {
        if (vn == 0) {
            snprintf(why, wn, "%s: missing required value", key);
            return SA_LISTS_BAD;
        }
        if (dkim) {
            /* read, never used: the plugin ignores it in local tests only,
             * and smtpgate verifies no DKIM signature */
            l->fns.ignore_dkim = true;
            return SA_LISTS_OK;
        }
        const char *p = val, *w;
        size_t n;
        while (next_word(&p, val + vn, &w, &n))
            if (strv_add(&l->fns.ignore_headers, &l->fns.nignore, w, n) != 0)
                return SA_LISTS_NOMEM;
        return SA_LISTS_OK;
    }
    return SA_LISTS_NOT_MINE;
}

enum sa_lists_rc sa_lists_setting(struct sa_lists *l, const char *key, const char *val, size_t vn,
                                  char *why, size_t wn)
{
    for (size_t i = 0; i < sizeof(addr_settings) / sizeof(addr_settings[0]); i++) {
        if (strcmp(key, addr_settings[i].key) != 0)
            continue;
        if (vn == 0) {
            snprintf(why, wn, "%s: missing required value", key);
            return SA_LISTS_BAD;
        }
        return addrlist_setting(l, addr_settings[i].list, strlen(addr_settings[i].list), val, vn,
                                addr_settings[i].remove);
    }
    for (size_t i = 0; i < sizeof(num_settings) / sizeof(num_settings[0]); i++) {
        if (strcmp(key, num_settings[i].key) != 0)
            continue;
        double d;
        if (!numeric(val, vn, &d)) {
            snprintf(why, wn, "%s: %s", key, vn ? "invalid value" : "missing required value");
            return SA_LISTS_BAD;
        }
        *(double *)(void *)((char *)&l->fm + num_settings[i].off) = d;
        return SA_LISTS_OK;
    }
    if (is_rcvd_setting(key))
        return rcvd_setting(l, key, val, vn, why, wn);
    if (strcmp(key, "welcomelist_subject") == 0 || strcmp(key, "whitelist_subject") == 0)
        return subject_add(l, 0, val, vn);
    if (strcmp(key, "blocklist_subject") == 0 || strcmp(key, "blacklist_subject") == 0)
        return subject_add(l, 1, val, vn);
    const char *name, *rest;
    size_t nn, rn;
    if (strcmp(key, "unwelcomelist_auth") == 0 || strcmp(key, "unwhitelist_auth") == 0) {
        if (vn == 0) {
            snprintf(why, wn, "%s: missing required value", key);
            return SA_LISTS_BAD;
        }
        addrlist_setting(l, "welcomelist_auth", 16, val, vn, true);
        return addrlist_setting(l, "def_welcomelist_auth", 20, val, vn, true);
    }
    if (strcmp(key, "enlist_addrlist") == 0) {
        if (!paren_name(val, vn, &name, &nn, &rest, &rn)) {
            snprintf(why, wn, "%s: missing required value", key);
            return SA_LISTS_BAD;
        }
        return addrlist_setting(l, name, nn, rest, rn, false);
    }
    if (strcmp(key, "enlist_uri_host") == 0) {
        if (!paren_name(val, vn, &name, &nn, &rest, &rn)) {
            snprintf(why, wn, "%s: missing required value", key);
            return SA_LISTS_BAD;
        }
        return uri_enlist(l, name, nn, rest, rn);
    }
    if (strcmp(key, "blocklist_uri_host") == 0 || strcmp(key, "blacklist_uri_host") == 0)
        return uri_enlist(l, "BLOCK", 5, val, vn);
    if (strcmp(key, "welcomelist_uri_host") == 0 || strcmp(key, "whitelist_uri_host") == 0)
        return uri_enlist(l, "WELCOME", 7, val, vn);
    if (strcmp(key, "delist_uri_host") == 0) {
        if (vn == 0) {
            snprintf(why, wn, "%s: missing required value", key);
            return SA_LISTS_BAD;
        }
        if (paren_name(val, vn, &name, &nn, &rest, &rn)) {
            struct urilist *u = urilist_get(l, name, nn, false);
            if (u != NULL)
                uri_delist(u, rest, rn);
        } else {
            for (size_t i = 0; i < l->nuri; i++)
                uri_delist(&l->uri[i], val, vn);
        }
        return SA_LISTS_OK;
    }
    if (strncmp(key, "fns_", 4) == 0)
        return fns_setting(l, key, val, vn, why, wn);
    if (strcmp(key, "freemail_domains") == 0)
        return freemail_domains(l, val, vn, why, wn);
    if (strcmp(key, "freemail_welcomelist") == 0 || strcmp(key, "freemail_whitelist") == 0)
        return freemail_welcome(l, val, vn, why, wn);
    if (strcmp(key, "util_rb_2tld") == 0 || strcmp(key, "util_rb_3tld") == 0) {
        /* every word of exactly 2 (3) labels, or the line is refused */
        size_t want = key[8] == '2' ? 1 : 2;
        const char *p = val, *w;
        size_t n;
        bool ok = vn > 0;
        while (ok && next_word(&p, val + vn, &w, &n)) {
            size_t dots = 0;
            for (size_t i = 0; i < n; i++)
                dots += w[i] == '.';
            ok = dots == want && w[0] != '.' && w[n - 1] != '.' && memmem(w, n, "..", 2) == NULL;
        }
        if (!ok) {
            snprintf(why, wn, "%s: %s", key, vn ? "invalid value" : "missing required value");
            return SA_LISTS_BAD;
        }
        p = val;
        while (next_word(&p, val + vn, &w, &n)) {
            char *lw = lower_dup(w, n);
            int rc = lw ? map_put(want == 1 ? &l->tld2 : &l->tld3, lw, n, 1) : -1;
            free(lw);
            if (rc != 0)
                return SA_LISTS_NOMEM;
        }
        return SA_LISTS_OK;
    }
    if (strcmp(key, "util_rb_tld") == 0) {
        /* /^[^\s.]+(?:\s+[^\s.]+)*$/ */
        if (vn == 0 || memchr(val, '.', vn) != NULL) {
            snprintf(why, wn, "%s: %s", key, vn ? "invalid value" : "missing required value");
            return SA_LISTS_BAD;
        }
        const char *p = val, *w;
        size_t n;
        while (next_word(&p, val + vn, &w, &n)) {
            char *lw = lower_dup(w, n);
            int rc = lw ? map_put(&l->tlds, lw, n, 1) : -1;
            free(lw);
            if (rc != 0)
                return SA_LISTS_NOMEM;
        }
        return SA_LISTS_OK;
    }
    return SA_LISTS_NOT_MINE;
}

/* ---- FreeMail's patterns ---- */
static pcre2_code *compile(const char *p, size_t n, uint32_t flags)
{
    int err;
    PCRE2_SIZE off;
    return pcre2_compile((PCRE2_SPTR)p, n, flags, &err, &off, NULL);
}

static int cmp_len_desc(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t xn = strlen(x), yn = strlen(y);
    return xn != yn ? (xn < yn ? 1 : -1) : strcmp(x, y);
}

/* one TLD made safe inside an alternation: octets other than [A-Za-z0-9-]
 * quoted (IDN TLDs come as their ACE form) */
static int add_quoted(char **buf, size_t *len, size_t *cap, const char *s)
{
    for (; *s; s++) {
        if (util_grow(buf, cap, *len + 3, 1) != 0)
            return -1;
        if (!isalnum((unsigned char)*s) && *s != '-')
            (*buf)[(*len)++] = '\\';
        (*buf)[(*len)++] = *s;
        (*buf)[*len] = '\0';
    }
    return 0;
}

static int add_str(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (util_grow(buf, cap, *len + n + 1, 1) != 0)
        return -1;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

#define EMAIL_CHARS "[a-z0-9!#\\$%&'*+\\/=?^_`{|}~-]"

int sa_lists_finish(struct sa_lists *l)
{
    if (l->email_re != NULL || !sa_lists_freemail_available(l))
        return 0;
    /* the valid TLDs, longest first: what Perl's trie would try */
    size_t nt = 0;
    char **tv = util_calloc(l->tlds.cap ? l->tlds.cap : 1, sizeof(*tv));
    if (tv == NULL)
        return -1;
    for (size_t i = 0; i < l->tlds.cap; i++)
        if (l->tlds.keys[i] != NULL && l->tlds.keys[i] != TOMB)
            tv[nt++] = l->tlds.keys[i];
    qsort(tv, nt, sizeof(*tv), cmp_len_desc);
    char *re = NULL;
    size_t len = 0, cap = 0;
    int rc =
        add_str(&re, &len, &cap,
                "(?=.{0,64}\\@)(?<![a-z0-9!#\\$%&'*+\\/=?^_`{|}~-])(" EMAIL_CHARS
                "+(?:\\." EMAIL_CHARS "+)*\\@(?:[a-z0-9](?:[a-z0-9-]{0,59}[a-z0-9])?\\.){1,4}");
    if (nt == 0) {
        /* SpamAssassin's failsafe without TLDs */
        rc |= add_str(&re, &len, &cap, "no_tlds_defined");
    } else {
        rc |= add_str(&re, &len, &cap, "(?<![a-zA-Z0-9-])(?:");
        for (size_t i = 0; i < nt && rc == 0; i++) {
            if (i > 0)
                rc |= add_str(&re, &len, &cap, "|");
            rc |= add_quoted(&re, &len, &cap, tv[i]);
        }
        rc |= add_str(&re, &len, &cap, ")(?!(?:[a-zA-Z0-9-]|\\.[a-zA-Z0-9]))");
    }
    rc |= add_str(&re, &len, &cap, ")");
    free(tv);
    if (rc != 0) {
        free(re);
        return -1;
    }
    l->email_re = compile(re, len, PCRE2_CASELESS);
    /* _parse_body's: an address followed by a "word:" is not the sender's */
    char *strip = NULL;
    size_t sl = 0, scap = 0;
    rc = add_str(&strip, &sl, &scap, "<?(?<!mailto:)");
    rc |= add_str(&strip, &sl, &scap, re);
    rc |= add_str(&strip, &sl, &scap,
                  "(?:>|\\s{1,10}(?!(?:fa(?:x|csi)|tel|phone|e?-?mail))[a-z]{2,11}:)");
    free(re);
    if (rc != 0) {
        free(strip);
        return -1;
    }
    l->strip_re = compile(strip, sl, PCRE2_CASELESS);
    free(strip);
    static const char url[] = "<?https?://\\S{0,255}(?:\\@|%40)\\S{0,255}";
    l->url_re = compile(url, sizeof(url) - 1, PCRE2_CASELESS);
    static const char welcome[] =
        "^(?:abuse|support|sales|info|helpdesk|contact|kontakt|(?:post|host|domain)master"
        "|undisclosed.*|request-[a-f0-9]{16}|bounced?-"
        "|[a-f0-9]{8}(?:\\.[a-f0-9]{8}|-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})"
        "|.+=.+=.+)\\@";
    static const char bulk[] = "(?:^(?:post|host|domain)master|^double-bounce"
                               "|^(?:sentto|owner|return|(?:gr)?bounced?)-.+"
                               "|-(?:request|bounces?|admin|owner)"
                               "|\\b(?:do[._-t]?)?no[._-t]?repl(?:y|ies)|.+=.+)\\@";
    l->welcome_re = compile(welcome, sizeof(welcome) - 1, PCRE2_CASELESS);
    l->bulk_re = compile(bulk, sizeof(bulk) - 1, PCRE2_CASELESS);
    return l->email_re && l->welcome_re && l->bulk_re && l->url_re && l->strip_re ? 0 : -1;
}

/* ---- questions ---- */
bool sa_lists_has_addrlist(const struct sa_lists *l, const char *list)
{
    return l != NULL && addrlist_get((struct sa_lists *)l, list, strlen(list), false) != NULL;
}

static int glob_list(char *const *globs, size_t n, const char *addr, size_t an)
{
    for (size_t i = 0; i < n; i++)
        if (sa_glob_match(globs[i], strlen(globs[i]), addr, an, false))
            return 1;
    return 0;
}

int sa_lists_addr_listed(const struct sa_lists *l, const char *list, const char *addr, size_t n)
{
    if (l == NULL)
        return 0;
    const struct addrlist *a = addrlist_get((struct sa_lists *)l, list, strlen(list), false);
    if (a == NULL)
        return 0;
    char *lc = lower_dup(addr, n);
    if (lc == NULL)
        return -1;
    int hit = map_find(&a->exact, lc, n) != (size_t)-1 || glob_list(a->globs, a->nglobs, lc, n);
    /* ^.*\@DOMAIN$: the part after some '@' with no line end before it */
    size_t end = n > 0 && lc[n - 1] == '\n' ? n - 1 : n;
    for (size_t i = 0; i < end && !hit && memchr(lc, '\n', i) == NULL; i++)
        if (lc[i] == '@')
            hit = map_find(&a->atdom, lc + i + 1, n - i - 1) != (size_t)-1 ||
                  map_find(&a->atdom, lc + i + 1, end - i - 1) != (size_t)-1;
    free(lc);
    return hit;
}

int sa_lists_addr_glob_listed(const struct sa_lists *l, const char *list, const char *addr,
                              size_t n)
{
    /* an entry held exactly is its own pattern unless the address has an
     * octet the pattern would have rewritten; those entries are globs too */
    for (size_t i = 0; i < n; i++)
        if (addr[i] == '\0' || addr[i] == '\\' || addr[i] == '(') {
            const struct addrlist *a =
                l ? addrlist_get((struct sa_lists *)l, list, strlen(list), false) : NULL;
            if (a == NULL)
                return 0;
            char *lc = lower_dup(addr, n);
            if (lc == NULL)
                return -1;
            int hit = glob_list(a->globs, a->nglobs, lc, n);
            free(lc);
            return hit;
        }
    return sa_lists_addr_listed(l, list, addr, n);
}

int sa_lists_rcvd_match(const struct sa_lists *l, enum sa_rcvd_list which, const char *addr,
                        size_t n, sa_lists_relay_fn relay_ok, void *ctx)
{
    if (l == NULL)
        return 0;
    const struct rcvdlist *r = &l->rcvd[which];
    int found = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct rcvdentry *e = &r->v[i];
        if (!sa_glob_match(e->addr, strlen(e->addr), addr, n, false))
            continue;
        for (size_t k = 0; k < e->nrelays; k++)
            if (relay_ok(e->relays[k], ctx))
                return 1;
        /* the address is listed, no relay of it is the one: a forgery? */
        found = -1;
    }
    return found;
}

int sa_lists_subject_listed(const struct sa_lists *l, bool block, const char *subj, size_t n)
{
    int k = block ? 1 : 0;
    for (size_t i = 0; l != NULL && i < l->nsubj[k]; i++) {
        const struct subject *e = &l->subj[k][i];
        bool stack[2 * 256];
        bool *buf = e->n < 255 ? stack : util_malloc(2 * (e->n + 1) * sizeof(bool));
        if (buf == NULL)
            return -1;
        bool hit = subject_glob_in(e->s, e->n, subj, n, buf, buf + e->n + 1);
        if (buf != stack)
            free(buf);
        if (hit)
            return 1;
    }
    return 0;
}

bool sa_lists_rcvd_has(const struct sa_lists *l, enum sa_rcvd_list which)
{
    return l != NULL && l->rcvd[which].n > 0;
}

bool sa_lists_freemail_available(const struct sa_lists *l)
{
    return l != NULL && (l->nfm_wild > 0 || !map_empty(&l->fm_domains));
}

const struct sa_freemail_opts *sa_lists_freemail_opts(const struct sa_lists *l)
{
    return &l->fm;
}

const struct sa_fns_opts *sa_lists_fns_opts(const struct sa_lists *l)
{
    return &l->fns;
}

const pcre2_code *sa_lists_email_re(const struct sa_lists *l)
{
    return l ? l->email_re : NULL;
}

const pcre2_code *sa_lists_body_strip_re(const struct sa_lists *l, int k)
{
    return l == NULL ? NULL : k == 0 ? l->url_re : l->strip_re;
}

const pcre2_code *sa_lists_bulk_envfrom_re(const struct sa_lists *l)
{
    return l ? l->bulk_re : NULL;
}

static int re_hit(const pcre2_code *re, const char *s, size_t n)
{
    if (re == NULL)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL)
        return -1;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

int sa_lists_is_freemail(const struct sa_lists *l, const char *email, size_t n)
{
    if (l == NULL || n == 0)
        return 0;
    if (map_find(&l->fm_welcome, email, n) != (size_t)-1)
        return 0;
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (email[i] == '@')
            at = email + i;
    const char *dom = at ? at + 1 : email;
    size_t dn = n - (size_t)(dom - email);
    if (map_find(&l->fm_welcome, dom, dn) != (size_t)-1)
        return 0;
    int w = re_hit(l->welcome_re, email, n);
    if (w != 0)
        return w < 0 ? -1 : 0;
    static const char *const auth[] = {"welcomelist_auth", "def_welcomelist_auth"};
    const double imp[] = {l->fm.import_welcomelist_auth, l->fm.import_def_welcomelist_auth};
    for (size_t k = 0; k < 2; k++) {
        if (imp[k] == 0)
            continue;
        const struct addrlist *a =
            addrlist_get((struct sa_lists *)l, auth[k], strlen(auth[k]), false);
        /* the list's regexps only, as FreeMail reads values() */
        if (a != NULL) {
            for (size_t i = 0; i < a->exact.cap; i++) {
                const char *key = a->exact.keys[i];
                if (key != NULL && key != TOMB && sa_glob_match(key, strlen(key), email, n, false))
                    return 0;
            }
        }
    }
    if (map_find(&l->fm_domains, dom, dn) != (size_t)-1)
        return 1;
    /* \@(?:WILDCARDS)$ at any '@' */
    for (size_t i = 0; i < n; i++) {
        if (email[i] != '@')
            continue;
        for (size_t k = 0; k < l->nfm_wild; k++)
            if (sa_glob_match(l->fm_wild[k], strlen(l->fm_wild[k]), email + i + 1, n - i - 1, true))
                return 1;
    }
    return 0;
}

bool sa_lists_tld_valid(const struct sa_lists *l, const char *tld, size_t n)
{
    if (l == NULL || n == 0)
        return false;
    char buf[256];
    if (n >= sizeof(buf))
        return false;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)tld[i]);
    return map_find(&l->tlds, buf, n) != (size_t)-1;
}

static bool us_state(const char *s, size_t n)
{
    static const char states[] = "ak al ar az ca co ct dc de fl ga gu hi ia id il in ks ky la "
                                 "ma md me mi mn mo ms mt nc nd ne nh nj nm nv ny oh ok or pa "
                                 "pr ri sc sd tn tx ut va vi vt wa wi wv wy ";
    if (n != 2)
        return false;
    for (const char *p = states; *p; p += 3)
        if (p[0] == s[0] && p[1] == s[1])
            return true;
    return false;
}

size_t sa_lists_trim_domain(const struct sa_lists *l, const char *dom, size_t n, char *out,
                            size_t on)
{
    if (on == 0)
        return 0;
    /* lower-cased, runs of dots squeezed, dots at the ends dropped */
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < on; i++) {
        char c = (char)tolower((unsigned char)dom[i]);
        if (c == '.' && (k == 0 || out[k - 1] == '.'))
            continue;
        out[k++] = c;
    }
    while (k > 0 && out[k - 1] == '.')
        k--;
    out[k] = '\0';
    if (k == 0)
        return 0;
    /* the labels' starts */
    size_t starts[128], np = 0;
    for (size_t i = 0; i < k && np < 128; i++)
        if (i == 0 || out[i - 1] == '.')
            starts[np++] = i;
    size_t first = 0; /* the labels from here on are the domain */
#define PART(j) (out + starts[first + (j)])
#define PLEN(j) ((first + (j) + 1 < np ? starts[first + (j) + 1] - 1 : k) - starts[first + (j)])
    while (np - first > 1) {
        size_t left = np - first;
        const char *rest = out + starts[first];
        size_t rn = k - starts[first];
        if (left == 2) {
            if (l != NULL && map_find(&l->tld2, rest, rn) != (size_t)-1)
                break;
        } else if (left == 3) {
            if (PLEN(2) == 2 && memcmp(PART(2), "us", 2) == 0) {
                if (us_state(PART(1), PLEN(1)))
                    break;
            } else if (l != NULL && map_find(&l->tld3, rest, rn) != (size_t)-1) {
                break;
            }
        } else if (left == 4) {
            bool pvt = PLEN(0) == 3 && memcmp(PART(0), "pvt", 3) == 0 && PLEN(1) == 3 &&
                       memcmp(PART(1), "k12", 3) == 0;
            bool cico =
                PLEN(0) == 2 && PART(0)[0] == 'c' && (PART(0)[1] == 'i' || PART(0)[1] == 'o');
            if (PLEN(3) == 2 && memcmp(PART(3), "us", 2) == 0 && (pvt || cico) &&
                us_state(PART(2), PLEN(2)))
                break;
        }
        first++;
    }
#undef PART
#undef PLEN
    /* the last host label goes back to the domain */
    if (first > 0)
        first--;
    size_t from = starts[first];
    memmove(out, out + from, k - from + 1);
    return k - from;
}

size_t sa_lists_uri_list_count(const struct sa_lists *l)
{
    return l ? l->nuri : 0;
}

const char *sa_lists_uri_list_name(const struct sa_lists *l, size_t i)
{
    return l->uri[i].name;
}

size_t sa_lists_uri_list_find(const struct sa_lists *l, const char *name)
{
    for (size_t i = 0; l != NULL && i < l->nuri; i++)
        if (strcmp(l->uri[i].name, name) == 0)
            return i;
    return (size_t)-1;
}

int sa_lists_uri_host(const struct sa_lists *l, size_t i, const char *host, size_t n)
{
    size_t at = map_find(&l->uri[i].hosts, host, n);
    return at == (size_t)-1 ? -1 : l->uri[i].hosts.vals[at];
}

/* ---- RegistryBoundaries' domain of a URI ---- */
bool sa_fqdn_valid(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '.')
        n--;
    if (n > 253)
        return false;
    size_t labels = 1;
    for (size_t i = 0; i < n; i++)
        labels += s[i] == '.';
    if (labels < 2)
        return false;
    size_t left = labels; /* labels from here to the end */
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && s[j] != '.')
            j++;
        size_t len = j - i;
        if (len < 1 || len > 63)
            return false;
        for (size_t k = i; k < j; k++) {
            unsigned char c = (unsigned char)tolower((unsigned char)s[k]);
            bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                      (c == '-' && k != i && k != j - 1);
            if (!ok || (c == '_' && left <= 2))
                return false;
        }
        left--;
        i = j + 1;
    }
    return true;
}

bool sa_lists_domain_valid(const struct sa_lists *l, const char *dom, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)dom[i]))
            return false;
    const char *dot = memrchr(dom, '.', n);
    return dot != NULL && sa_lists_tld_valid(l, dot + 1, n - (size_t)(dot + 1 - dom));
}

bool sa_is_ip(const char *s, size_t n)
{
    size_t dots = 0, digits = 0, colons = 0;
    bool v4 = n > 0, v6 = n > 0;
    unsigned part = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            v4 &= digits > 0;
            dots++, digits = 0, part = 0;
        } else if (isdigit((unsigned char)ch)) {
            part = part * 10 + (unsigned)(ch - '0');
            v4 &= ++digits <= 3 && part <= 255;
        } else {
            v4 = false;
        }
        if (ch == ':')
            colons++;
        else if (!isxdigit((unsigned char)ch))
            v6 = false;
    }
    return (v4 && dots == 3 && digits > 0) || (v6 && colons >= 2);
}

bool sa_lists_uri_to_domain(const struct sa_lists *l, const char *uri, size_t un, char *out,
                            size_t on)
{
    char host[1024];
    if (un >= sizeof(host))
        return false;
    for (size_t i = 0; i < un; i++)
        host[i] = (char)tolower((unsigned char)uri[i]);
    host[un] = '\0';
    if (strncmp(host, "javascript:", 11) == 0 || strncmp(host, "cid:", 4) == 0 ||
        strncmp(host, "file:", 5) == 0)
        return false;
    char *h = host;
    size_t hn;
    if (strncmp(h, "mailto:", 7) == 0) {
        h += 7;
        h[strcspn(h, "?")] = '\0'; /* the parameters go */
        char *at = strchr(h, '@');
        if (at == NULL || strchr(at + 1, '@') != NULL)
            return false;
        h = at + 1;
    } else {
        /* the scheme, the path, the user and the port go */
        size_t k = 0;
        while (h[k] >= 'a' && h[k] <= 'z')
            k++;
        if (k > 0 && h[k] == ':') {
            h += k + 1;
            for (int i = 0; i < 2 && *h == '/'; i++)
                h++;
        }
        h[strcspn(h, "/?#")] = '\0';
        char *at = strrchr(h, '@');
        if (at != NULL)
            h = at + 1;
        size_t d = strlen(h);
        while (d > 0 && isdigit((unsigned char)h[d - 1]))
            d--;
        if (d > 0 && h[d - 1] == ':')
            h[d - 1] = '\0';
    }
    hn = strlen(h);
    if (hn + 1 > on)
        return false;
    for (size_t i = 0; i < hn; i++) {
        unsigned char ch = (unsigned char)h[i];
        /* idn_to_ascii is not done here: such a name has no domain */
        if (ch >= 0x80)
            return false;
        /* an encoded printable: the decoded form is judged instead */
        if (ch == '%' && i + 2 < hn + 1 && isxdigit((unsigned char)h[i + 1]) &&
            isxdigit((unsigned char)h[i + 2])) {
            int v = (int)strtol((char[]){h[i + 1], h[i + 2], 0}, NULL, 16);
            if (v >= 0x21 && v <= 0x7e)
                return false;
        }
    }
    if (sa_is_ip(h, hn)) {
        memcpy(out, h, hn + 1);
        return true;
    }
    if (!sa_fqdn_valid(h, hn) || !sa_lists_domain_valid(l, h, hn))
        return false;
    sa_lists_trim_domain(l, h, hn, out, on);
    return true;
}
