/*
 * literal_extract - the literals every match of a PCRE2 pattern must
 * contain, for the prefilter (literal.c).
 *
 * rules_literals() parses the pattern into what each part can say about
 * the text it matches, bottom up:
 *   exact   the part matches one of a few strings ("colou?r": color,
 *           colour; "[ij1]x": ix, jx, 1x), or else
 *   prefix  every match starts with one of a few strings,
 *   suffix  every match ends with one of a few strings,
 *   clauses sets of strings of which every match contains one.
 * Concatenation multiplies exact sets and joins a suffix to the next
 * prefix ("ad+res" needs "dres"); alternation unions the sets, or keeps one
 * clause of the best of each side; a repetition keeps what its body says
 * when the body must occur.  The clauses of the whole pattern, the longest
 * literals first, are what the caller gets: every clause needs one of its
 * literals, so a text lacking all the literals of one clause cannot match.
 *
 * rules_literals_skeleton() does the same for the skeleton of a match:
 * what is left of it with every octet but [A-Za-z0-9] taken out.  Octets,
 * classes and escapes that match only such octets ([_\W], \s, "-") match
 * only "" there, so "v[_\W]?i[_\W]?agra" needs "viagra" in the skeleton
 * of the text: a substring's skeleton is a substring of the text's.
 *
 * Promise: a literal is named only when every match contains it (as ASCII
 * case-folded octets; the scan folds the same way, a superset of what PCRE2
 * matches with or without caseless).  The extractor gives up (nothing, the
 * rule always runs) on what it does not follow: extended mode, \Q..\E-free
 * literal mode, verbs, conditionals, recursion, UTF with caseless matching
 * (Unicode folds such as U+017F to "s"), and anything malformed.  What it
 * cannot vouch for inside a pattern (backreferences, large classes,
 * lookarounds) is "any text": it loses information, never adds it.
 *
 * Bounds: sets of SET_MAX strings, RULES_LITERAL_MAX octets each (a longer
 * prefix is cut at its end, a suffix at its start: still required),
 * CL_MAX clauses per part, nesting to DEPTH_MAX; memory is a few infos per
 * nesting level, freed before return.  Pure: no state between calls.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"

#define MIN_LIT   3 /* shorter literals occur in almost every text */
#define SET_MAX   64
#define CL_MAX    4
#define CLASS_MAX 8 /* a class of up to this many octets is a set */
#define DEPTH_MAX 64
#define REP_MAX   8 /* x{n} with n up to this is multiplied out */
#define INF       UINT32_MAX

struct lset {
    unsigned n;
    uint8_t len[SET_MAX];
    char s[SET_MAX][RULES_LITERAL_MAX];
};

/* What a part of the pattern says of its matches.  exact: pre is the set
 * of all its matches (suf unused).  Otherwise pre and suf hold prefixes
 * and suffixes; {""} says nothing. */
struct info {
    bool exact;
    struct lset pre, suf;
    struct lset cl[CL_MAX];
    unsigned ncl;
};

struct px {
    const char *p;
    size_t n, i;
    bool utf;
    bool skeleton; /* what the match leaves with every octet but [A-Za-z0-9] taken out */
    bool fail;
    bool transparent; /* the atom was \E, \Q\E or (?#...): a quantifier after
                       * it takes the atom before, which is not followed */
    unsigned depth;
};

enum esc { E_CHAR, E_ANY, E_EMPTY, E_QUOTE, E_FAIL };
enum cut { CUT_EXACT, CUT_PREFIX, CUT_SUFFIX };

/* ---- sets ---- */

static void set_one(struct lset *s, const char *str, size_t len)
{
    s->n = 1;
    s->len[0] = (uint8_t)len;
    memcpy(s->s[0], str, len);
}

static void set_unknown(struct lset *s)
{
    set_one(s, "", 0);
}

static bool set_has(const struct lset *s, const char *str, size_t len)
{
    for (unsigned k = 0; k < s->n; k++)
        if (s->len[k] == len && memcmp(s->s[k], str, len) == 0)
            return true;
    return false;
}

/* False when full. */
static bool set_add(struct lset *s, const char *str, size_t len)
{
    if (set_has(s, str, len))
        return true;
    if (s->n == SET_MAX)
        return false;
    s->len[s->n] = (uint8_t)len;
    memcpy(s->s[s->n++], str, len);
    return true;
}

static bool set_union(const struct lset *a, const struct lset *b, struct lset *out)
{
    struct lset t = *a;
    for (unsigned k = 0; k < b->n; k++)
        if (!set_add(&t, b->s[k], b->len[k]))
            return false;
    *out = t;
    return true;
}

/* Adds str to a clause, which then needs one of its literals: a literal
 * containing another says nothing more and goes.  False when full. */
static bool clause_add(struct lset *s, const char *str, size_t len)
{
    for (unsigned k = 0; k < s->n; k++)
        if (memmem(str, len, s->s[k], s->len[k]) != NULL)
            return true;
    unsigned kept = 0;
    for (unsigned k = 0; k < s->n; k++)
        if (memmem(s->s[k], s->len[k], str, len) == NULL) {
            if (kept != k) {
                s->len[kept] = s->len[k];
                memcpy(s->s[kept], s->s[k], s->len[k]);
            }
            kept++;
        }
    s->n = kept;
    return set_add(s, str, len);
}

/* The clause "one of a's or one of b's", smallest form. */
static bool clause_union(const struct lset *a, const struct lset *b, struct lset *out)
{
    struct lset t = {.n = 0};
    for (unsigned k = 0; k < a->n; k++)
        if (!clause_add(&t, a->s[k], a->len[k]))
            return false;
    for (unsigned k = 0; k < b->n; k++)
        if (!clause_add(&t, b->s[k], b->len[k]))
            return false;
    *out = t;
    return true;
}

/* Every a·b, cut as how says; false when too many or (exact) too long. */
static bool set_product(const struct lset *a, const struct lset *b, enum cut how, struct lset *out)
{
    struct lset t = {.n = 0};
    char buf[2 * RULES_LITERAL_MAX];
    for (unsigned x = 0; x < a->n; x++)
        for (unsigned y = 0; y < b->n; y++) {
            size_t l = (size_t)a->len[x] + b->len[y];
            memcpy(buf, a->s[x], a->len[x]);
            memcpy(buf + a->len[x], b->s[y], b->len[y]);
            const char *from = buf;
            if (l > RULES_LITERAL_MAX) {
                if (how == CUT_EXACT)
                    return false;
                if (how == CUT_SUFFIX)
                    from = buf + (l - RULES_LITERAL_MAX);
                l = RULES_LITERAL_MAX;
            }
            if (!set_add(&t, from, l))
                return false;
        }
    *out = t;
    return true;
}

static bool usable(const struct lset *s)
{
    if (s->n == 0)
        return false;
    for (unsigned k = 0; k < s->n; k++)
        if (s->len[k] < MIN_LIT)
            return false;
    return true;
}

static unsigned min_len(const struct lset *s)
{
    unsigned m = RULES_LITERAL_MAX;
    for (unsigned k = 0; k < s->n; k++)
        if (s->len[k] < m)
            m = s->len[k];
    return m;
}

/* Greater is better: longer shortest literal, then fewer literals. */
static long quality(const struct lset *s)
{
    return (long)min_len(s) * 100 - (long)s->n;
}

/* ---- infos ---- */

static const struct lset *suffixes(const struct info *x)
{
    return x->exact ? &x->pre : &x->suf;
}

static void info_exact(struct info *x, const char *str, size_t len)
{
    x->exact = true;
    set_one(&x->pre, str, len);
    x->ncl = 0;
}

static void info_any(struct info *x)
{
    x->exact = false;
    set_unknown(&x->pre);
    set_unknown(&x->suf);
    x->ncl = 0;
}

/* Whether clause weak follows from clause strong: every literal of strong
 * contains one of weak's, so a text meeting strong meets weak. */
static bool implies(const struct lset *strong, const struct lset *weak)
{
    for (unsigned k = 0; k < strong->n; k++) {
        bool found = false;
        for (unsigned j = 0; j < weak->n && !found; j++)
            found = memmem(strong->s[k], strong->len[k], weak->s[j], weak->len[j]) != NULL;
        if (!found)
            return false;
    }
    return true;
}

/* Keeps the CL_MAX best clauses, none following from another. */
static void add_clause(struct info *x, const struct lset *s)
{
    if (!usable(s))
        return;
    for (unsigned k = 0; k < x->ncl; k++)
        if (implies(&x->cl[k], s))
            return;
    unsigned kept = 0;
    for (unsigned k = 0; k < x->ncl; k++)
        if (!implies(s, &x->cl[k]))
            x->cl[kept++] = x->cl[k];
    x->ncl = kept;
    if (x->ncl < CL_MAX) {
        x->cl[x->ncl++] = *s;
        return;
    }
    unsigned worst = 0;
    for (unsigned k = 1; k < x->ncl; k++)
        if (quality(&x->cl[k]) < quality(&x->cl[worst]))
            worst = k;
    if (quality(s) > quality(&x->cl[worst]))
        x->cl[worst] = *s;
}

/* The best single clause x vouches for, or NULL. */
static const struct lset *best_clause(const struct info *x)
{
    const struct lset *best = NULL;
    const struct lset *cand[CL_MAX + 2];
    unsigned nc = 0;
    cand[nc++] = &x->pre;
    if (!x->exact)
        cand[nc++] = &x->suf;
    for (unsigned k = 0; k < x->ncl; k++)
        cand[nc++] = &x->cl[k];
    for (unsigned k = 0; k < nc; k++)
        if (usable(cand[k]) && (best == NULL || quality(cand[k]) > quality(best)))
            best = cand[k];
    return best;
}

/* a := a b */
static void concat(struct info *a, const struct info *b)
{
    struct lset t;
    if (a->exact && b->exact && set_product(&a->pre, &b->pre, CUT_EXACT, &t)) {
        a->pre = t;
        return;
    }
    struct lset pre, suf;
    if (!a->exact)
        pre = a->pre;
    else if (!set_product(&a->pre, &b->pre, CUT_PREFIX, &pre))
        pre = a->pre;
    if (!b->exact)
        suf = b->suf;
    else if (!set_product(suffixes(a), &b->pre, CUT_SUFFIX, &suf))
        suf = b->pre;
    /* what stops being carried becomes a clause; the join of a's end and
     * b's start is one too */
    add_clause(a, suffixes(a));
    add_clause(a, &b->pre);
    if (set_product(suffixes(a), &b->pre, CUT_PREFIX, &t))
        add_clause(a, &t);
    add_clause(a, &pre);
    add_clause(a, &suf);
    for (unsigned k = 0; k < b->ncl; k++)
        add_clause(a, &b->cl[k]);
    a->exact = false;
    a->pre = pre;
    a->suf = suf;
}

/* a := a | b */
static void alternate(struct info *a, const struct info *b)
{
    struct lset t;
    if (a->exact && b->exact && set_union(&a->pre, &b->pre, &t)) {
        a->pre = t;
        return;
    }
    const struct lset *ba = best_clause(a), *bb = best_clause(b);
    bool have = ba != NULL && bb != NULL && clause_union(ba, bb, &t);
    struct lset pre, suf;
    if (!set_union(&a->pre, &b->pre, &pre))
        set_unknown(&pre);
    if (!set_union(suffixes(a), suffixes(b), &suf))
        set_unknown(&suf);
    a->exact = false;
    a->pre = pre;
    a->suf = suf;
    a->ncl = 0;
    if (have)
        add_clause(a, &t);
}

static void repeat(struct info *a, uint32_t min, uint32_t max)
{
    if (min == 1 && max == 1)
        return;
    if (a->exact && a->pre.n == 1 && a->pre.len[0] == 0)
        return; /* repeating what matches only "" matches only "" */
    if (min == 0) {
        struct lset empty, t;
        set_unknown(&empty);
        if (max == 1 && a->exact && set_union(&a->pre, &empty, &t)) {
            a->pre = t;
            return;
        }
        info_any(a);
        return;
    }
    if (a->exact && min == max && min <= REP_MAX) {
        struct lset acc = a->pre, t;
        bool ok = true;
        for (uint32_t k = 1; k < min && ok; k++)
            if ((ok = set_product(&acc, &a->pre, CUT_EXACT, &t)))
                acc = t;
        if (ok) {
            a->pre = acc;
            return;
        }
    }
    struct lset t;
    if (min >= 2 && set_product(suffixes(a), &a->pre, CUT_PREFIX, &t))
        add_clause(a, &t);
    if (a->exact) {
        a->suf = a->pre;
        a->exact = false;
    }
}

/* ---- the parser ---- */

static bool is_hex(char c)
{
    return isxdigit((unsigned char)c) != 0;
}

static unsigned long hex_value(char c)
{
    return isdigit((unsigned char)c) ? (unsigned long)(c - '0')
                                     : (unsigned long)(tolower((unsigned char)c) - 'a' + 10);
}

/* A delimited name or number after \g, \k, \p: past it. */
static void skip_delimited(struct px *x)
{
    if (x->i >= x->n)
        return;
    char open = x->p[x->i], close;
    if (open == '{')
        close = '}';
    else if (open == '<')
        close = '>';
    else if (open == '\'')
        close = '\'';
    else
        return;
    const char *e = memchr(x->p + x->i + 1, close, x->n - x->i - 1);
    x->i = e != NULL ? (size_t)(e - x->p) + 1 : x->n;
}

static enum esc code_point(struct px *x, unsigned long v, unsigned char *ch)
{
    if (v > 0xff || (x->utf && v > 0x7f))
        return E_ANY;
    *ch = (unsigned char)v;
    return E_CHAR;
}

/* An escape; x->i is past the backslash.  Moves past the escape. */
static enum esc escape(struct px *x, bool in_class, unsigned char *ch)
{
    if (x->i >= x->n)
        return E_FAIL;
    unsigned char c = (unsigned char)x->p[x->i++];
    if (c >= 0x80)
        return E_FAIL;
    if (!isalnum(c)) {
        *ch = c;
        return E_CHAR;
    }
    unsigned long v = 0;
    switch (c) {
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S':
    case 'h':
    case 'H':
    case 'v':
    case 'V':
    case 'R':
    case 'X':
    case 'C':
        return E_ANY;
    case 'N':
        skip_delimited(x);
        return E_ANY;
    case 'p':
    case 'P':
        if (x->i < x->n && x->p[x->i] == '{')
            skip_delimited(x);
        else if (x->i < x->n)
            x->i++;
        return E_ANY;
    case 'b':
        if (in_class) {
            *ch = 0x08;
            return E_CHAR;
        }
        return E_EMPTY;
    case 'B':
    case 'A':
    case 'z':
    case 'Z':
    case 'G':
    case 'K':
        return in_class ? E_FAIL : E_EMPTY;
    case 'x':
        if (x->i < x->n && x->p[x->i] == '{') {
            size_t k = x->i + 1, d = 0;
            while (k < x->n && is_hex(x->p[k]) && d < 8)
                v = v * 16 + hex_value(x->p[k]), k++, d++;
            if (k >= x->n || x->p[k] != '}' || d == 0)
                return E_FAIL;
            x->i = k + 1;
        } else {
            for (int d = 0; d < 2 && x->i < x->n && is_hex(x->p[x->i]); d++)
                v = v * 16 + hex_value(x->p[x->i++]);
        }
        return code_point(x, v, ch);
    case 'o': {
        if (x->i >= x->n || x->p[x->i] != '{')
            return E_FAIL;
        size_t k = x->i + 1, d = 0;
        while (k < x->n && x->p[k] >= '0' && x->p[k] <= '7' && d < 8)
            v = v * 8 + (unsigned long)(x->p[k++] - '0'), d++;
        if (k >= x->n || x->p[k] != '}' || d == 0)
            return E_FAIL;
        x->i = k + 1;
        return code_point(x, v, ch);
    }
    case '0':
        for (int d = 0; d < 2 && x->i < x->n && x->p[x->i] >= '0' && x->p[x->i] <= '7'; d++)
            v = v * 8 + (unsigned long)(x->p[x->i++] - '0');
        return code_point(x, v, ch);
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        /* a backreference, or octal: either way not followed */
        while (x->i < x->n && isdigit((unsigned char)x->p[x->i]))
            x->i++;
        return E_ANY;
    case 'g':
        if (x->i < x->n && (x->p[x->i] == '{' || x->p[x->i] == '<' || x->p[x->i] == '\''))
            skip_delimited(x);
        else {
            if (x->i < x->n && (x->p[x->i] == '-' || x->p[x->i] == '+'))
                x->i++;
            while (x->i < x->n && isdigit((unsigned char)x->p[x->i]))
                x->i++;
        }
        return E_ANY;
    case 'k':
        skip_delimited(x);
        return E_ANY;
    case 'n':
        *ch = '\n';
        return E_CHAR;
    case 't':
        *ch = '\t';
        return E_CHAR;
    case 'r':
        *ch = '\r';
        return E_CHAR;
    case 'f':
        *ch = 0x0c;
        return E_CHAR;
    case 'e':
        *ch = 0x1b;
        return E_CHAR;
    case 'a':
        *ch = 0x07;
        return E_CHAR;
    case 'c':
        if (x->i >= x->n || (unsigned char)x->p[x->i] >= 0x80)
            return E_FAIL;
        *ch = (unsigned char)(toupper((unsigned char)x->p[x->i++]) ^ 0x40);
        return E_CHAR;
    case 'Q':
        return in_class ? E_FAIL : E_QUOTE;
    case 'E':
        return E_EMPTY;
    default:
        return E_FAIL;
    }
}

static unsigned char fold(unsigned char c)
{
    return c < 0x80 ? (unsigned char)tolower(c) : c;
}

static bool kept(unsigned char c)
{
    return c < 0x80 && isalnum(c);
}

/* Escapes that match only octets the skeleton takes out: \s \h \v \R \W. */
static bool skeleton_blank(char letter)
{
    return letter == 's' || letter == 'h' || letter == 'v' || letter == 'R' || letter == 'W';
}

/* A [...] class; x->i is past the '['. */
static void parse_class(struct px *x, struct info *out)
{
    bool negated = false, big = false, empty = false;
    unsigned char member[256] = {0};
    if (x->i < x->n && x->p[x->i] == '^')
        negated = true, x->i++;
    bool first = true;
    int prev = -1; /* the last single member, for a range */
    for (;;) {
        if (x->i >= x->n) {
            x->fail = true;
            return;
        }
        unsigned char c = (unsigned char)x->p[x->i];
        if (c == ']' && !first) {
            x->i++;
            break;
        }
        first = false;
        int lo = -1;
        if (c == '[' && x->i + 1 < x->n &&
            (x->p[x->i + 1] == ':' || x->p[x->i + 1] == '.' || x->p[x->i + 1] == '=')) {
            char kind = x->p[x->i + 1];
            size_t k = x->i + 2;
            while (k + 1 < x->n && !(x->p[k] == kind && x->p[k + 1] == ']'))
                k++;
            if (k + 1 >= x->n) {
                x->fail = true;
                return;
            }
            x->i = k + 2;
            big = true;
            prev = -1;
            continue;
        }
        if (c == '\\') {
            x->i++;
            char letter = x->i < x->n ? x->p[x->i] : 0;
            unsigned char e;
            enum esc k = escape(x, true, &e);
            if (k == E_FAIL || k == E_QUOTE) {
                x->fail = true;
                return;
            }
            if (k != E_CHAR) {
                if (x->skeleton && k == E_ANY && skeleton_blank(letter))
                    empty = true;
                else
                    big = true;
                prev = -1;
                continue;
            }
            lo = e;
        } else {
            if (c >= 0x80 && x->utf) {
                /* a multi-octet character in a class: not followed */
                x->i++;
                while (x->i < x->n && ((unsigned char)x->p[x->i] & 0xc0) == 0x80)
                    x->i++;
                if (x->skeleton)
                    empty = true;
                else
                    big = true;
                prev = -1;
                continue;
            }
            lo = c;
            x->i++;
        }
        /* a range lo-hi */
        if (x->i + 1 < x->n && x->p[x->i] == '-' && x->p[x->i + 1] != ']') {
            x->i++;
            int hi;
            unsigned char hc = (unsigned char)x->p[x->i];
            if (hc == '\\') {
                x->i++;
                unsigned char e;
                if (escape(x, true, &e) != E_CHAR) {
                    x->fail = true; /* PCRE2 refuses most; the rest is not followed */
                    return;
                }
                hi = e;
            } else if (hc == '[' || (hc >= 0x80 && x->utf)) {
                x->fail = true;
                return;
            } else {
                hi = hc;
                x->i++;
            }
            if (hi < lo) {
                x->fail = true;
                return;
            }
            if (x->skeleton) {
                unsigned alnum = 0;
                for (int b = lo; b <= hi; b++)
                    alnum += kept((unsigned char)b);
                if (alnum < (unsigned)(hi - lo + 1))
                    empty = true;
                if (alnum > CLASS_MAX * 2)
                    big = true;
                else
                    for (int b = lo; b <= hi; b++)
                        if (kept((unsigned char)b))
                            member[fold((unsigned char)b)] = 1;
            } else if (hi - lo >= CLASS_MAX * 2) {
                big = true;
            } else {
                for (int b = lo; b <= hi; b++)
                    member[fold((unsigned char)b)] = 1;
            }
            prev = -1;
            continue;
        }
        if (x->skeleton && !kept((unsigned char)lo))
            empty = true;
        else
            member[fold((unsigned char)lo)] = 1;
        prev = lo;
    }
    (void)prev;
    if (negated || big) {
        info_any(out);
        return;
    }
    unsigned count = 0;
    for (int b = 0; b < 256; b++)
        count += member[b];
    if ((count == 0 && !empty) || count > CLASS_MAX) {
        info_any(out);
        return;
    }
    out->exact = true;
    out->pre.n = 0;
    out->ncl = 0;
    if (empty)
        set_add(&out->pre, "", 0);
    for (int b = 0; b < 256; b++)
        if (member[b]) {
            char o = (char)b;
            set_add(&out->pre, &o, 1);
        }
}

static struct info *parse_alt(struct px *x);

/* Past a group name ending in close. */
static void skip_to(struct px *x, char close)
{
    const char *e = memchr(x->p + x->i, close, x->n - x->i);
    if (e == NULL) {
        x->fail = true;
        x->i = x->n;
        return;
    }
    x->i = (size_t)(e - x->p) + 1;
}

/* A group's body and its ')'; the result into out (as empty when
 * lookaround). */
static void group_body(struct px *x, struct info *out, bool lookaround)
{
    struct info *in = parse_alt(x);
    if (in == NULL) {
        x->fail = true;
        return;
    }
    if (x->i >= x->n || x->p[x->i] != ')') {
        x->fail = true;
        free(in);
        return;
    }
    x->i++;
    if (lookaround)
        info_exact(out, "", 0);
    else
        *out = *in;
    free(in);
}

/* A ( group; x->i at the '('. */
static void parse_group(struct px *x, struct info *out)
{
    const char *p = x->p;
    size_t n = x->n;
    x->i++;
    if (x->i < n && p[x->i] == '*') {
        x->fail = true;
        return;
    }
    if (x->i >= n || p[x->i] != '?') {
        group_body(x, out, false);
        return;
    }
    x->i++;
    if (x->i >= n) {
        x->fail = true;
        return;
    }
    char c = p[x->i];
    switch (c) {
    case '#':
        skip_to(x, ')');
        info_exact(out, "", 0);
        x->transparent = true;
        return;
    case ':':
    case '|':
    case '>':
        x->i++;
        group_body(x, out, false);
        return;
    case '=':
    case '!':
        x->i++;
        group_body(x, out, true);
        return;
    case '<':
        x->i++;
        if (x->i < n && (p[x->i] == '=' || p[x->i] == '!')) {
            x->i++;
            group_body(x, out, true);
            return;
        }
        skip_to(x, '>');
        group_body(x, out, false);
        return;
    case '\'':
        x->i++;
        skip_to(x, '\'');
        group_body(x, out, false);
        return;
    case 'P':
        if (x->i + 1 < n && p[x->i + 1] == '<') {
            x->i += 2;
            skip_to(x, '>');
            group_body(x, out, false);
            return;
        }
        if (x->i + 1 < n && (p[x->i + 1] == '=' || p[x->i + 1] == '>')) {
            skip_to(x, ')');
            info_any(out);
            return;
        }
        x->fail = true;
        return;
    default:
        break;
    }
    /* inline options: (?i) (?-i) (?^) (?i:...) */
    size_t k = x->i;
    while (k < n && p[k] != '\0' && strchr("imnsxJU^-", p[k]) != NULL) {
        if (p[k] == 'x' || (p[k] == 'i' && x->utf))
            break;
        k++;
    }
    if (k == x->i || k >= n || (p[k] != ')' && p[k] != ':')) {
        x->fail = true; /* extended mode, recursion, conditionals, callouts */
        return;
    }
    x->i = k + 1;
    if (p[k] == ')')
        info_exact(out, "", 0);
    else
        group_body(x, out, false);
}

/* A quantifier at x->i: true with its bounds, moved past it. */
static bool quantifier(struct px *x, uint32_t *min, uint32_t *max)
{
    const char *p = x->p;
    size_t n = x->n, i = x->i;
    if (i >= n)
        return false;
    if (p[i] == '?' || p[i] == '*' || p[i] == '+') {
        *min = p[i] == '+';
        *max = p[i] == '?' ? 1 : INF;
        i++;
    } else if (p[i] == '{') {
        size_t k = i + 1, d = 0;
        unsigned long lo = 0, hi;
        while (k < n && isdigit((unsigned char)p[k]) && d < 6)
            lo = lo * 10 + (unsigned long)(p[k++] - '0'), d++;
        if (d == 0 || k >= n)
            return false;
        hi = lo;
        if (p[k] == ',') {
            k++;
            size_t d2 = 0;
            hi = 0;
            while (k < n && isdigit((unsigned char)p[k]) && d2 < 6)
                hi = hi * 10 + (unsigned long)(p[k++] - '0'), d2++;
            if (d2 == 0)
                hi = INF;
        }
        if (k >= n || p[k] != '}')
            return false;
        *min = (uint32_t)lo;
        *max = (uint32_t)hi;
        i = k + 1;
    } else {
        return false;
    }
    if (i < n && (p[i] == '?' || p[i] == '+'))
        i++;
    x->i = i;
    return true;
}

/* One atom into out; false at the end of a sequence ('|', ')', end). */
static bool parse_atom(struct px *x, struct info *out)
{
    const char *p = x->p;
    unsigned char c = (unsigned char)p[x->i];
    if (c == '|' || c == ')')
        return false;
    if (c == '(') {
        if (++x->depth > DEPTH_MAX) {
            x->fail = true;
            return true;
        }
        parse_group(x, out);
        x->depth--;
        return true;
    }
    if (c == '[') {
        x->i++;
        parse_class(x, out);
        return true;
    }
    if (c == '.') {
        x->i++;
        info_any(out);
        return true;
    }
    if (c == '^' || c == '$') {
        x->i++;
        info_exact(out, "", 0);
        return true;
    }
    if (c == '*' || c == '+' || c == '?') {
        x->fail = true;
        return true;
    }
    if (c == '\\') {
        x->i++;
        char letter = x->i < x->n ? x->p[x->i] : 0;
        unsigned char e;
        switch (escape(x, false, &e)) {
        case E_CHAR: {
            char o = (char)fold(e);
            info_exact(out, &o, x->skeleton && !kept(e) ? 0 : 1);
            return true;
        }
        case E_ANY:
            if (x->skeleton && skeleton_blank(letter))
                info_exact(out, "", 0);
            else
                info_any(out);
            return true;
        case E_EMPTY:
            info_exact(out, "", 0);
            x->transparent = x->p[x->i - 1] == 'E';
            return true;
        case E_FAIL:
            x->fail = true;
            return true;
        case E_QUOTE: {
            /* \Q...\E: literal octets, as one atom of exact text, except
             * that a quantifier after it takes its last octet only */
            const char *end = NULL;
            for (size_t k = x->i; k + 1 < x->n; k++)
                if (p[k] == '\\' && p[k + 1] == 'E') {
                    end = p + k;
                    break;
                }
            size_t stop = end ? (size_t)(end - p) : x->n;
            /* a multi-octet quoted text is one atom only for a quantifier:
             * return it as "any" when a quantifier follows (safe) */
            size_t len = stop - x->i;
            size_t after = end ? stop + 2 : x->n;
            struct px probe = *x;
            probe.i = after;
            uint32_t a, b;
            if (len == 0) {
                info_exact(out, "", 0);
                x->transparent = true;
            } else if (quantifier(&probe, &a, &b) || len > RULES_LITERAL_MAX || x->utf ||
                       x->skeleton) {
                info_any(out);
            } else {
                char buf[RULES_LITERAL_MAX];
                for (size_t k = 0; k < len; k++)
                    buf[k] = (char)fold((unsigned char)p[x->i + k]);
                info_exact(out, buf, len);
            }
            x->i = after;
            return true;
        }
        }
    }
    /* a plain character: in UTF one character is all its octets */
    size_t len = 1;
    if (x->utf && c >= 0xc0)
        while (x->i + len < x->n && ((unsigned char)p[x->i + len] & 0xc0) == 0x80 && len < 4)
            len++;
    char buf[4];
    for (size_t k = 0; k < len; k++)
        buf[k] = (char)fold((unsigned char)p[x->i + k]);
    x->i += len;
    info_exact(out, buf, x->skeleton && !kept(c) ? 0 : len);
    return true;
}

static struct info *parse_seq(struct px *x)
{
    struct info *acc = malloc(sizeof(*acc)), *atom = malloc(sizeof(*atom));
    if (acc == NULL || atom == NULL) {
        free(acc);
        free(atom);
        x->fail = true;
        return NULL;
    }
    info_exact(acc, "", 0);
    while (x->i < x->n && !x->fail) {
        x->transparent = false;
        if (!parse_atom(x, atom))
            break;
        if (x->fail)
            break;
        uint32_t min, max;
        if (x->transparent && quantifier(x, &min, &max)) {
            x->fail = true;
            break;
        }
        while (quantifier(x, &min, &max))
            repeat(atom, min, max);
        concat(acc, atom);
    }
    free(atom);
    return acc;
}

static struct info *parse_alt(struct px *x)
{
    struct info *acc = parse_seq(x);
    while (acc != NULL && !x->fail && x->i < x->n && x->p[x->i] == '|') {
        x->i++;
        struct info *b = parse_seq(x);
        if (b == NULL) {
            free(acc);
            return NULL;
        }
        alternate(acc, b);
        free(b);
    }
    return acc;
}

static size_t extract(const char *p, size_t n, uint32_t flags, bool skeleton,
                      char (*lits)[RULES_LITERAL_MAX], size_t *lens, unsigned *clause, size_t max)
{
    if (flags & (PCRE2_EXTENDED | PCRE2_EXTENDED_MORE | PCRE2_LITERAL | PCRE2_ALT_BSUX))
        return 0;
    if ((flags & (PCRE2_UTF | PCRE2_UCP)) && (flags & PCRE2_CASELESS))
        return 0;
    struct px x = {.p = p, .n = n, .utf = (flags & PCRE2_UTF) != 0, .skeleton = skeleton};
    struct info *root = parse_alt(&x);
    if (root == NULL)
        return 0;
    if (x.fail || x.i != n) {
        free(root);
        return 0;
    }
    const struct lset *cand[CL_MAX + 2];
    size_t nc = 0;
    cand[nc++] = &root->pre;
    if (!root->exact)
        cand[nc++] = &root->suf;
    for (unsigned k = 0; k < root->ncl; k++)
        cand[nc++] = &root->cl[k];
    /* the usable ones that no other one implies, best first */
    const struct lset *use[CL_MAX + 2];
    size_t nu = 0;
    for (size_t k = 0; k < nc; k++) {
        if (!usable(cand[k]))
            continue;
        bool weaker = false;
        for (size_t j = 0; j < nc && !weaker; j++)
            weaker = j != k && usable(cand[j]) && implies(cand[j], cand[k]) &&
                     (!implies(cand[k], cand[j]) || j < k);
        if (!weaker)
            use[nu++] = cand[k];
    }
    /* insertion sort: stable, so equal clauses keep the order prefix,
     * suffix, inner */
    for (size_t k = 1; k < nu; k++)
        for (size_t j = k; j > 0 && quality(use[j]) > quality(use[j - 1]); j--) {
            const struct lset *t = use[j];
            use[j] = use[j - 1];
            use[j - 1] = t;
        }
    size_t count = 0;
    unsigned next_clause = 0;
    for (size_t k = 0; k < nu; k++) {
        if (count + use[k]->n > max)
            continue; /* a clause goes whole or not at all */
        for (unsigned j = 0; j < use[k]->n; j++, count++) {
            memcpy(lits[count], use[k]->s[j], use[k]->len[j]);
            lens[count] = use[k]->len[j];
            clause[count] = next_clause;
        }
        next_clause++;
    }
    free(root);
    return count;
}

size_t rules_literals(const char *p, size_t n, uint32_t flags, char (*lits)[RULES_LITERAL_MAX],
                      size_t *lens, unsigned *clause, size_t max)
{
    return extract(p, n, flags, false, lits, lens, clause, max);
}

size_t rules_literals_skeleton(const char *p, size_t n, uint32_t flags,
                               char (*lits)[RULES_LITERAL_MAX], size_t *lens, unsigned *clause,
                               size_t max)
{
    /* \w, \d and word boundaries differ under UCP: not followed */
    if (flags & PCRE2_UCP)
        return 0;
    return extract(p, n, flags, true, lits, lens, clause, max);
}
