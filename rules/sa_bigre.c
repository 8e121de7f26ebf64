/*
 * sa_bigre - a too-large SpamAssassin pattern as one definition of each
 * repeated group and subroutine calls (contract in sa_bigre.h).
 *
 * One pass finds the groups (their text, the counted quantifier after them)
 * or a reason to refuse; a second writes the pattern out, a group that gets
 * a name wrapped in (?<_sgK>...) where it first occurs and called after.
 * The scan knows escapes and character classes only as far as it must not
 * take a parenthesis or brace in them for structure; whatever else it does
 * not know it refuses.
 */
#include "rules/sa_bigre.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#define QUANT_MAX 65535u /* PCRE2's largest repeat count */
#define DUP_MIN   12     /* shorter groups cost less than a call's brackets */
#define NO_MAX    UINT32_MAX

struct group {
    size_t start, end; /* "(" .. after ")" */
    size_t qend;       /* after the counted quantifier and its ? or +, else end */
    uint32_t min, max; /* the counted quantifier's, max NO_MAX for {n,} */
    char suffix;       /* '?', '+' or 0 */
    bool counted;      /* a repeat worth a rewrite */
    bool may_dup;      /* a kind of group another copy may call */
    long first;        /* the earlier identical group it calls, or -1 */
    long name;         /* its _sgK number once it needs one, or -1 */
};

struct scan {
    const char *p;
    size_t n;
    struct group *g;
    size_t ng;
    bool uniform_options; /* inline options only at the very start */
};

/* {n}, {n,} or {n,m} at i: its end, else 0 (PCRE2 reads any other brace
 * as a literal). */
static size_t counted_quantifier(const char *p, size_t n, size_t i, uint32_t *min, uint32_t *max)
{
    if (i >= n || p[i] != '{')
        return 0;
    size_t k = i + 1;
    uint32_t a = 0, b;
    size_t d = k;
    while (k < n && p[k] >= '0' && p[k] <= '9' && k - d < 6)
        a = a * 10 + (uint32_t)(p[k++] - '0');
    if (k == d || k - d >= 6)
        return 0;
    b = a;
    if (k < n && p[k] == ',') {
        k++;
        d = k;
        b = 0;
        while (k < n && p[k] >= '0' && p[k] <= '9' && k - d < 6)
            b = b * 10 + (uint32_t)(p[k++] - '0');
        if (k - d >= 6)
            return 0;
        if (k == d)
            b = NO_MAX;
    }
    if (k >= n || p[k] != '}')
        return 0;
    *min = a;
    *max = b;
    return k + 1;
}

/* After "[" at i: the index after its "]", or 0 when unterminated. */
static size_t class_end(const char *p, size_t n, size_t i)
{
    size_t k = i + 1;
    if (k < n && p[k] == '^')
        k++;
    if (k < n && p[k] == ']')
        k++;
    while (k < n) {
        if (p[k] == '\\') {
            k += 2;
            continue;
        }
        if (p[k] == '[' && k + 1 < n && (p[k + 1] == ':' || p[k + 1] == '.' || p[k + 1] == '=')) {
            char c = p[k + 1];
            size_t j = k + 2;
            while (j + 1 < n && !(p[j] == c && p[j + 1] == ']'))
                j++;
            if (j + 1 < n) {
                k = j + 2;
                continue;
            }
        }
        if (p[k] == ']')
            return k + 1;
        k++;
    }
    return 0;
}

static bool option_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '^' || c == '-';
}

/* "(?" at i: false when the construct is one the rewrite refuses; else its
 * kind: *may_dup for groups a call can stand for, *options for an inline
 * option setting. */
static bool group_kind(const char *p, size_t n, size_t i, bool *may_dup, bool *options)
{
    *may_dup = false;
    *options = false;
    if (i + 1 >= n || p[i + 1] != '?') {
        if (i + 1 < n && p[i + 1] == '*')
            return false; /* (*VERB), (*UTF) and the like */
        *may_dup = true;  /* a numbered capture */
        return true;
    }
    if (i + 2 >= n)
        return false;
    char c = p[i + 2];
    if (c == ':' || c == '>' || c == '=' || c == '!') {
        *may_dup = true;
        return true;
    }
    if (c == '<')
        return i + 3 < n && (p[i + 3] == '=' || p[i + 3] == '!'); /* lookbehind; a name refuses */
    if (!option_letter(c))
        return false; /* (?#, (?', (?P, (?&, (?R, (?1, (?+1, (?(, (?|, (?C ... */
    size_t k = i + 2;
    while (k < n && option_letter(p[k])) {
        if (p[k] == 'x' || p[k] == 'P' || p[k] == 'R' || p[k] == 'C')
            return false; /* extended mode, or (?P.. (?R) (?C) */
        k++;
    }
    if (k >= n || (p[k] != ')' && p[k] != ':'))
        return false;
    *options = true;
    *may_dup = p[k] == ':';
    return true;
}

/* The groups of the pattern, or false when it is refused (or too many). */
static bool find_groups(struct scan *s, bool *nomem)
{
    const char *p = s->p;
    size_t n = s->n;
    size_t stack[256];
    size_t depth = 0, cap = 0;
    bool seen_other = false;
    s->uniform_options = true;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n)
                return false;
            char e = p[i + 1];
            if ((e >= '1' && e <= '9') || e == 'g' || e == 'k' || e == 'K' || e == 'Q')
                return false;
            i += e == 'c' ? 3 : 2;
            seen_other = true;
            continue;
        }
        if (c == '[') {
            size_t e = class_end(p, n, i);
            if (e == 0)
                return false;
            i = e;
            seen_other = true;
            continue;
        }
        if (c == '(') {
            bool may_dup, options;
            if (!group_kind(p, n, i, &may_dup, &options))
                return false;
            if (options && seen_other)
                s->uniform_options = false;
            if (!options || may_dup)
                seen_other = true;
            if (depth == sizeof(stack) / sizeof(stack[0]) || s->ng == SA_BIGRE_MAX_GROUPS)
                return false;
            if (util_grow(&s->g, &cap, s->ng + 1, sizeof(*s->g)) != 0)
                return !(*nomem = true);
            s->g[s->ng] = (struct group){.start = i, .may_dup = may_dup, .first = -1, .name = -1};
            stack[depth++] = s->ng++;
            i++;
            continue;
        }
        if (c == ')') {
            if (depth == 0)
                return false;
            struct group *g = &s->g[stack[--depth]];
            g->end = i + 1;
            g->qend = g->end;
            uint32_t a, b;
            size_t q = counted_quantifier(p, n, g->end, &a, &b);
            if (q != 0 && g->may_dup) {
                if (a > QUANT_MAX || (b != NO_MAX && (b > QUANT_MAX || b < a)))
                    return false;
                char suf = q < n && (p[q] == '?' || p[q] == '+') ? p[q] : 0;
                size_t after = q + (suf != 0);
                if (after < n &&
                    (p[after] == '{' || p[after] == '*' || p[after] == '+' || p[after] == '?'))
                    return false;
                g->min = a;
                g->max = b;
                g->suffix = suf;
                g->qend = after;
                /* {1} and {0,1} are one copy already; {0,} is a star */
                g->counted = b == NO_MAX ? a >= 1 : b >= 2;
            }
            i++;
            continue;
        }
        seen_other = true;
        i++;
    }
    return depth == 0;
}

/* Each may-dup group that is octet for octet an earlier one calls it. */
static void find_copies(struct scan *s)
{
    if (!s->uniform_options)
        return;
    for (size_t k = 0; k < s->ng; k++) {
        struct group *g = &s->g[k];
        size_t len = g->end - g->start;
        if (!g->may_dup || len < DUP_MIN)
            continue;
        for (size_t j = 0; j < k; j++) {
            struct group *h = &s->g[j];
            if (h->may_dup && h->first < 0 && h->end - h->start == len && h->end <= g->start &&
                memcmp(s->p + h->start, s->p + g->start, len) == 0) {
                g->first = (long)j;
                break;
            }
        }
    }
}

struct out {
    char *v;
    size_t n, cap;
    bool nomem;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->nomem)
        return;
    if (util_grow(&o->v, &o->cap, o->n + n + 1, 1) != 0) {
        o->nomem = true;
        return;
    }
    memcpy(o->v + o->n, s, n);
    o->n += n;
    o->v[o->n] = '\0';
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_num(struct out *o, long v)
{
    char buf[24];
    int k = snprintf(buf, sizeof(buf), "%ld", v);
    put(o, buf, (size_t)k);
}

/* (?&_sgK) or, with open, (?<_sgK> */
static void put_name(struct out *o, long name, bool open)
{
    put_str(o, open ? "(?<_sg" : "(?&_sg");
    put_num(o, name);
    put_str(o, open ? ">" : ")");
}

/* The group that starts first in [from, to) and ends within it, that is
 * written otherwise than copied: a counted repeat, a copy, or the first of
 * copies.  -1 when none. */
static long next_special(const struct scan *s, size_t from, size_t to)
{
    long best = -1;
    for (size_t k = 0; k < s->ng; k++) {
        const struct group *g = &s->g[k];
        if (g->start < from || g->qend > to || (!g->counted && g->first < 0 && g->name < 0))
            continue;
        if (best < 0 || g->start < s->g[best].start)
            best = (long)k;
    }
    return best;
}

static void emit(struct scan *s, struct out *o, size_t from, size_t to);

/* The call's quantifier: {n-1}, {n-1,m-1} or {n-1,} of G{n..}, with the
 * lazy ? kept; none for a single call. */
static void call_quantifier(struct out *o, const struct group *g, uint32_t min, uint32_t max)
{
    if (max != NO_MAX && min == max && min == 1) {
        /* a single call */
    } else {
        put_str(o, "{");
        put_num(o, (long)min);
        if (max != min) {
            put_str(o, ",");
            if (max != NO_MAX)
                put_num(o, (long)max);
        }
        put_str(o, "}");
    }
    if (g->suffix == '?')
        put(o, "?", 1);
}

static void emit_group(struct scan *s, struct out *o, long k)
{
    struct group *g = &s->g[k];
    if (g->first >= 0) {
        /* a copy: a call of the first, its own quantifier as written */
        put_name(o, s->g[g->first].name, false);
        put(o, s->p + g->end, g->qend - g->end);
        return;
    }
    bool atomic = g->counted && g->suffix == '+';
    bool optional = g->counted && g->min == 0;
    if (atomic)
        put(o, "(?>", 3);
    if (optional)
        put(o, "(?:", 3);
    put_name(o, g->name, true);
    put(o, "(", 1);
    emit(s, o, g->start + 1, g->end);
    put(o, ")", 1);
    if (!g->counted) {
        put(o, s->p + g->end, g->qend - g->end);
        return;
    }
    uint32_t min = g->min == 0 ? 0 : g->min - 1;
    uint32_t max = g->max == NO_MAX ? NO_MAX : g->max - 1;
    if (max != 0) {
        put_name(o, g->name, false);
        call_quantifier(o, g, min, max);
    }
    if (optional)
        put(o, g->suffix == '?' ? ")??" : ")?", g->suffix == '?' ? 3 : 2);
    if (atomic)
        put(o, ")", 1);
}

/* [from, to) written out; group texts include their "(" at start. */
static void emit(struct scan *s, struct out *o, size_t from, size_t to)
{
    size_t pos = from;
    for (;;) {
        long k = next_special(s, pos, to);
        if (k < 0)
            break;
        put(o, s->p + pos, s->g[k].start - pos);
        emit_group(s, o, k);
        pos = s->g[k].qend;
    }
    put(o, s->p + pos, to - pos);
}

int sa_bigre_rewrite(const char *pat, size_t len, uint32_t flags, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (flags & (PCRE2_EXTENDED | PCRE2_EXTENDED_MORE))
        return 0;
    struct scan s = {.p = pat, .n = len};
    bool nomem = false;
    int rc = 0;
    if (!find_groups(&s, &nomem)) {
        rc = nomem ? -1 : 0;
        goto done;
    }
    find_copies(&s);
    long names = 0;
    for (size_t k = 0; k < s.ng; k++)
        if (s.g[k].first >= 0 && s.g[s.g[k].first].name < 0)
            s.g[s.g[k].first].name = ++names;
    for (size_t k = 0; k < s.ng; k++)
        if (s.g[k].counted && s.g[k].first < 0 && s.g[k].name < 0)
            s.g[k].name = ++names;
    if (names == 0)
        goto done;
    struct out o = {0};
    emit(&s, &o, 0, len);
    if (o.nomem) {
        free(o.v);
        rc = -1;
        goto done;
    }
    *out = o.v;
    *outlen = o.n;
    rc = 1;
done:
    free(s.g);
    return rc;
}
