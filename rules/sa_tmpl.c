/*
 * sa_tmpl - the ReplaceTags expansion (see sa_tmpl.h).  Strings are built
 * with a small growable buffer; each pass is linear in the pattern's
 * length times the number of tags, and the passes are bounded, so a
 * template that names itself stops after five.
 */
#include "rules/sa_tmpl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define TMPL_MAX_PASSES 5
#define TMPL_MAX_LEN    (4u * 1024 * 1024)

struct str {
    char *p;
    size_t n, cap;
    bool bad;
    bool big; /* bad because it would pass TMPL_MAX_LEN (not for want of memory) */
};

static void put(struct str *s, const char *p, size_t n)
{
    if (s->bad)
        return;
    if (s->n + n + 1 > TMPL_MAX_LEN) {
        s->bad = s->big = true;
        return;
    }
    if (util_grow(&s->p, &s->cap, s->n + n + 1, 1) != 0) {
        s->bad = true;
        return;
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = '\0';
}

static const char *lookup(const struct sa_templates *c, enum sa_tmpl kind, const char *name, size_t n)
{
    for (size_t i = c->ntmpl[kind]; i-- > 0;)
        if (strlen(c->tmpl[kind][i].name) == n && memcmp(c->tmpl[kind][i].name, name, n) == 0)
            return c->tmpl[kind][i].value;
    return NULL;
}

/* First start(.+?)end in s[0..n): its offset and length, or false. */
static bool find_tag(const char *s, size_t n, const char *start, const char *end, size_t *at,
                     size_t *len)
{
    size_t sl = strlen(start), el = strlen(end);
    for (size_t i = 0; sl > 0 && i + sl <= n; i++) {
        if (memcmp(s + i, start, sl) != 0)
            continue;
        /* .+? : at least one octet, not a line end, up to the first end */
        for (size_t j = i + sl + 1; j + el <= n; j++) {
            if (s[j - 1] == '\n')
                break;
            if (memcmp(s + j, end, el) == 0) {
                *at = i;
                *len = j + el - i;
                return true;
            }
        }
    }
    return false;
}

/* Takes the first start "word NAME" end out of *re; its NAME, or NULL. */
static char *take_directive(struct str *re, const char *start, const char *end, const char *word)
{
    size_t sl = strlen(start), wl = strlen(word), el = strlen(end);
    for (size_t i = 0; i + sl + wl + 1 <= re->n; i++) {
        if (memcmp(re->p + i, start, sl) != 0 || memcmp(re->p + i + sl, word, wl) != 0 ||
            re->p[i + sl + wl] != ' ')
            continue;
        size_t name = i + sl + wl + 1;
        for (size_t j = name + 1; j + el <= re->n; j++) {
            if (re->p[j - 1] == '\n')
                break;
            if (memcmp(re->p + j, end, el) == 0) {
                char *v = util_memdup(re->p + name, j - name);
                if (v == NULL) {
                    re->bad = true;
                    return NULL;
                }
                memmove(re->p + i, re->p + j + el, re->n - (j + el));
                re->n -= j + el - i;
                re->p[re->n] = '\0';
                return v;
            }
        }
    }
    return NULL;
}

struct piece {
    size_t at, len;
};

/* Perl's split(/(<[^<>]+>)/, re): pieces and the tags between them,
 * trailing empty pieces dropped (and no leading empty one, see below). */
static struct piece *split_tags(const char *s, size_t n, size_t *np)
{
    size_t cap = 16, k = 0, from = 0;
    struct piece *v = util_mallocarray(cap, sizeof(*v));
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++) {
        size_t j = i + 1;
        bool tag = false;
        if (i < n && s[i] == '<') {
            while (j < n && s[j] != '<' && s[j] != '>')
                j++;
            tag = j < n && s[j] == '>' && j > i + 1;
        }
        if (!tag && i < n)
            continue;
        if (k + 2 > cap) {
            struct piece *w = util_reallocarray(v, cap * 2, sizeof(*v));
            if (w == NULL) {
                free(v);
                return NULL;
            }
            v = w;
            cap *= 2;
        }
        /* SpamAssassin splits the compiled pattern, which starts with its
         * modifiers "(?aa)(?i)": there is never an empty piece in front */
        if (k > 0 || i > from)
            v[k++] = (struct piece){from, i - from};
        if (!tag)
            break;
        v[k++] = (struct piece){i, j + 1 - i};
        from = j + 1;
        i = j;
    }
    while (k > 0 && v[k - 1].len == 0)
        k--;
    *np = k;
    return v;
}

static bool one_pass(const struct sa_templates *c, struct str *re, bool *again)
{
    const char *start = c->rstart, *end = c->rend;
    char *pre = take_directive(re, start, end, "pre");
    char *post = take_directive(re, start, end, "post");
    char *inter = take_directive(re, start, end, "inter");
    const char *pre_v = pre ? lookup(c, SA_PRE, pre, strlen(pre)) : NULL;
    const char *post_v = post ? lookup(c, SA_POST, post, strlen(post)) : NULL;
    const char *inter_v = inter ? lookup(c, SA_INTER, inter, strlen(inter)) : NULL;
    free(pre);
    free(post);
    free(inter);
    if (re->bad)
        return false;
    size_t np = 0;
    struct piece *pc = split_tags(re->p ? re->p : "", re->n, &np);
    if (pc == NULL)
        return false;
    struct str out = {0};
    size_t sl = strlen(start), el = strlen(end);
    for (size_t i = 0; i < np; i++) {
        struct str el_s = {0};
        const char *s = re->p + pc[i].at;
        size_t n = pc[i].len, at, len;
        /* pre before the first tag of the piece; post after every tag */
        if (pre_v != NULL && find_tag(s, n, start, end, &at, &len)) {
            put(&el_s, s, at);
            put(&el_s, pre_v, strlen(pre_v));
            put(&el_s, s + at, n - at);
        } else {
            put(&el_s, s, n);
        }
        if (post_v != NULL) {
            struct str t = {0};
            const char *q = el_s.p ? el_s.p : "";
            size_t qn = el_s.n;
            while (find_tag(q, qn, start, end, &at, &len)) {
                put(&t, q, at + len);
                put(&t, post_v, strlen(post_v));
                q += at + len;
                qn -= at + len;
            }
            put(&t, q, qn);
            t.bad = t.bad || el_s.bad;
            t.big = t.big || el_s.big;
            free(el_s.p);
            el_s = t;
        }
        if (inter_v != NULL && el_s.n == 0)
            put(&el_s, inter_v, strlen(inter_v));
        /* the piece's first tag, replaced wherever it stands in the piece */
        const char *q = el_s.p ? el_s.p : "";
        if (find_tag(q, el_s.n, start, end, &at, &len)) {
            const char *name = q + at + sl;
            size_t nl = len - sl - el;
            const char *val = lookup(c, SA_TAG, name, nl);
            if (val != NULL && *val != '\0') {
                struct str t = {0};
                size_t full = len, vl = strlen(val);
                size_t k = 0;
                while (k < el_s.n) {
                    if (k + full <= el_s.n && memcmp(q + k, start, sl) == 0 &&
                        memcmp(q + k + sl, name, nl) == 0 &&
                        memcmp(q + k + sl + nl, end, el) == 0) {
                        put(&t, val, vl);
                        k += full;
                    } else {
                        put(&t, q + k, 1);
                        k++;
                    }
                }
                size_t a2, l2;
                if (!*again && find_tag(val, vl, "<", ">", &a2, &l2))
                    *again = true;
                t.bad = t.bad || el_s.bad;
                t.big = t.big || el_s.big;
                free(el_s.p);
                el_s = t;
            }
        }
        put(&out, el_s.p ? el_s.p : "", el_s.n);
        out.bad = out.bad || el_s.bad;
        out.big = out.big || el_s.big;
        free(el_s.p);
    }
    free(pc);
    free(re->p);
    *re = out;
    if (re->p == NULL && !re->bad)
        put(re, "", 0);
    return !re->bad;
}

char *sa_tmpl_expand(const struct sa_templates *c, const char *re, size_t len, size_t *out_len)
{
    struct str s = {0};
    put(&s, re, len);
    if (s.p == NULL && !s.bad)
        put(&s, "", 0);
    if (s.bad) {
        free(s.p);
        *out_len = s.big ? SIZE_MAX : 0;
        return NULL;
    }
    for (int pass = 0; pass <= TMPL_MAX_PASSES; pass++) {
        bool again = false;
        if (!one_pass(c, &s, &again)) {
            free(s.p);
            *out_len = s.big ? SIZE_MAX : 0;
            return NULL;
        }
        if (!again)
            break;
    }
    *out_len = s.n;
    return s.p;
}
