/*
 * sa_capture - SpamAssassin's capture templates as text (see sa_capture.h).
 * Each function is one left-to-right pass, as Perl's s///g makes it: a
 * template found is consumed whole and the scan goes on after it, and "not
 * after a backslash" looks at the octet before it in the input, never at
 * what was written in its place.
 */
#include "rules/sa_capture.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static bool upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool name_char(char c)
{
    return upper(c) || (c >= '0' && c <= '9') || c == '_';
}

bool sa_capture_valid_name(const char *s, size_t n)
{
    if (n == 0 || !upper(s[0]) || s[n - 1] == '_')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!name_char(s[i]) || (s[i] == '_' && s[i - 1] == '_'))
            return false;
    return true;
}

bool sa_capture_has_group(const char *re, size_t len)
{
    /* /\(\?P?[<'][A-Z]/ */
    for (size_t i = 0; i + 3 < len; i++) {
        if (re[i] != '(' || re[i + 1] != '?')
            continue;
        size_t k = i + 2;
        if (re[k] == 'P')
            k++;
        if (k + 1 < len && (re[k] == '<' || re[k] == '\'') && upper(re[k + 1]))
            return true;
    }
    return false;
}

/* The length of a template's text at s (NAME or NAME(ARGS)) when s[len]
 * is its closing '}', else 0. */
static size_t template_at(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && name_char(s[i]))
        i++;
    if (!sa_capture_valid_name(s, i))
        return 0;
    if (i < n && s[i] == '(') {
        size_t k = i + 1;
        while (k < n && s[k] != ')' && s[k] != '}')
            k++;
        if (k >= n || s[k] != ')')
            return 0;
        i = k + 1;
    }
    return i < n && s[i] == '}' ? i : 0;
}

bool sa_capture_escaped(const char *re, size_t len)
{
    for (size_t i = 1; i + 1 < len; i++)
        if (re[i] == '%' && re[i - 1] == '\\' && re[i + 1] == '{' &&
            template_at(re + i + 2, len - i - 2) > 0)
            return true;
    return false;
}

struct buf {
    char *p;
    size_t n, cap;
    bool bad, big;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (b->n + n >= SA_CAPTURE_MAX_PATTERN) {
        b->bad = b->big = true;
        return;
    }
    if (util_grow(&b->p, &b->cap, b->n + n + 1, 1) != 0) {
        b->bad = true;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void sa_capture_tmpl_free(struct sa_capture_tmpl *tmpl, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(tmpl[i].text);
        free(tmpl[i].tag);
    }
    free(tmpl);
}

static int add_tmpl(struct sa_capture_tmpl **tmpl, size_t *n, size_t *cap, const char *s,
                    size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if ((*tmpl)[i].text_len == len && memcmp((*tmpl)[i].text, s, len) == 0)
            return 0;
    if (util_grow(tmpl, cap, *n + 1, sizeof(**tmpl)) != 0)
        return -1;
    size_t tag_len = 0;
    while (tag_len < len && s[tag_len] != '(')
        tag_len++;
    struct sa_capture_tmpl t = {util_memdup(s, len), len, util_memdup(s, tag_len), tag_len};
    if (t.text == NULL || t.tag == NULL) {
        free(t.text);
        free(t.tag);
        return -1;
    }
    (*tmpl)[(*n)++] = t;
    return 0;
}

int sa_capture_mark(const char *re, size_t len, char **out, size_t *out_len,
                    struct sa_capture_tmpl **tmpl, size_t *ntmpl)
{
    *out = NULL;
    *out_len = 0;
    *tmpl = NULL;
    *ntmpl = 0;
    struct buf b = {0};
    struct sa_capture_tmpl *t = NULL;
    size_t nt = 0, cap = 0;
    bool nomem = false;
    for (size_t i = 0; i < len && !nomem;) {
        size_t tl = 0;
        if (re[i] == '%' && (i == 0 || re[i - 1] != '\\') && i + 1 < len && re[i + 1] == '{')
            tl = template_at(re + i + 2, len - i - 2);
        if (tl == 0) {
            put(&b, re + i, 1);
            i++;
            continue;
        }
        put(&b, "%\\{", 3);
        put(&b, re + i + 2, tl);
        put(&b, "\\}", 2);
        nomem = add_tmpl(&t, &nt, &cap, re + i + 2, tl) != 0;
        i += 2 + tl + 1;
    }
    /* a marked pattern grows by two octets a template: never past the cap
     * of a pattern SpamAssassin's files may hold, but checked all the same */
    if (nomem || b.bad) {
        free(b.p);
        sa_capture_tmpl_free(t, nt);
        return -1;
    }
    if (nt == 0) {
        free(b.p);
        return 0;
    }
    *out = b.p;
    *out_len = b.n;
    *tmpl = t;
    *ntmpl = nt;
    return 0;
}

static void put_quoted(struct buf *b, const char *v, size_t n)
{
    for (size_t i = 0; i < n && !b->bad; i++) {
        char c = v[i];
        if (!(upper(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            put(b, "\\", 1);
        put(b, &c, 1);
    }
}

char *sa_capture_subst(const char *marked, size_t len, const char *text, size_t text_len,
                       const char *const *vals, const size_t *vlens, size_t nvals,
                       size_t *out_len, bool *too_big)
{
    *too_big = false;
    struct buf b = {0};
    put(&b, "", 0);
    size_t need = 3 + text_len + 2; /* %\{TEXT\} */
    for (size_t i = 0; i < len && !b.bad;) {
        if (marked[i] == '%' && (i == 0 || marked[i - 1] != '\\') && len - i >= need &&
            memcmp(marked + i + 1, "\\{", 2) == 0 && memcmp(marked + i + 3, text, text_len) == 0 &&
            memcmp(marked + i + 3 + text_len, "\\}", 2) == 0) {
            put(&b, "(?:", 3);
            for (size_t k = 0; k < nvals; k++) {
                if (k > 0)
                    put(&b, "|", 1);
                put_quoted(&b, vals[k], vlens[k]);
            }
            put(&b, ")", 1);
            i += need;
            continue;
        }
        put(&b, marked + i, 1);
        i++;
    }
    if (b.bad) {
        *too_big = b.big;
        free(b.p);
        return NULL;
    }
    *out_len = b.n;
    return b.p;
}
