/*
 * literal - skips regex rules that cannot match a text, in one pass.
 *
 * A rule over a long text (body, rawbody, full, headers) costs a PCRE2 scan
 * of that text; a thousand of them cost a thousand scans.  Most patterns
 * name a literal that every match must contain ("viagra" in /cheap\s+viagra/i).
 * rules_literals() finds such literals in a pattern, conservatively: runs
 * of plain characters outside groups, classes and optional parts,
 * lower-cased, as clauses: without top-level alternation every run is a
 * clause of its own (all must occur), with it the longest run of each
 * alternative forms one clause (one must occur).  rules_prefilter_build()
 * puts the literals of all rules over one text into an Aho-Corasick
 * automaton, rules_prefilter_scan() reads the text once (ASCII case folded)
 * and marks the clauses whose literal occurs; a rule goes to PCRE2 only when
 * all its clauses are marked.
 *
 * Correctness rests on the extraction never naming a literal a match could
 * lack.  It gives up (no literal, the rule always runs) on what it does not
 * follow: extended mode, inline options and verbs, \Q...\E, UTF with
 * caseless matching (Unicode folds such as U+017F to "s"), an alternative
 * without a run of three octets.  Matching the literals case-insensitively
 * is a superset of what PCRE2 matches, whatever the rule's flags.
 *
 * Bounds: at most PF_MAX_STATES automaton states per text; past that the
 * build fails and the rules run unfiltered.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"
#include "util/alloc.h"

#define PF_MIN_LITERAL 3
#define PF_MAX_STATES  500000u
#define NONE           UINT32_MAX

/* In the scan table a transition holds the target's row offset (state *
 * nclass), with REPORT set when that state ends a literal: the loop then
 * needs one load per octet and no multiplication. */
#define REPORT 0x80000000u

struct rules_prefilter {
    uint8_t cls[256];
    uint8_t leaves_root[256]; /* octets that take the root anywhere else */
    bool sparse_root;         /* few of them: skipping at the root pays */
    size_t nclass;
    size_t nstates;
    uint32_t *next;     /* nstates * nclass */
    uint32_t *scan;     /* the same, as row offsets with REPORT */
    uint32_t *out;      /* first literal ending at a state, or NONE */
    uint32_t *dict;     /* nearest state on the fail chain with an output, or NONE */
    uint8_t *reports;   /* out or dict set */
    uint32_t *lit_next; /* next literal ending at the same state */
    uint32_t *owner;    /* clause of each literal */
};

/* ---- literal extraction ---- */

/* Past a [...] class starting at p[i] == '['. */
static size_t skip_class(const char *p, size_t n, size_t i)
{
    i++;
    if (i < n && p[i] == '^')
        i++;
    if (i < n && p[i] == ']')
        i++;
    while (i < n && p[i] != ']') {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
            const char *e = memchr(p + i + 2, ']', n - i - 2);
            if (e != NULL)
                i = (size_t)(e - p);
        }
        i++;
    }
    return i < n ? i + 1 : n;
}

/* Past a (...) group starting at p[i] == '('. */
static size_t skip_group(const char *p, size_t n, size_t i)
{
    int depth = 0;
    while (i < n) {
        char c = p[i];
        if (c == '\\') {
            i += 2;
            continue;
        }
        if (c == '[') {
            i = skip_class(p, n, i);
            continue;
        }
        if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0)
            return i + 1;
        i++;
    }
    return n;
}

/* A quantifier at p[i]: its length (with a lazy/possessive suffix), and
 * whether it allows zero repetitions.  0 when there is none. */
static size_t quantifier(const char *p, size_t n, size_t i, bool *optional)
{
    size_t q = 0;
    *optional = false;
    if (i >= n)
        return 0;
    if (p[i] == '?' || p[i] == '*') {
        *optional = true;
        q = 1;
    } else if (p[i] == '+') {
        q = 1;
    } else if (p[i] == '{') {
        size_t k = i + 1, digits = 0;
        unsigned long min = 0;
        while (k < n && isdigit((unsigned char)p[k]) && digits < 9)
            min = min * 10 + (unsigned long)(p[k++] - '0'), digits++;
        if (digits == 0)
            return 0; /* "{" not starting a quantifier is literal: caller breaks */
        if (k < n && p[k] == ',') {
            k++;
            while (k < n && isdigit((unsigned char)p[k]))
                k++;
        }
        if (k >= n || p[k] != '}')
            return 0;
        *optional = min == 0;
        q = k - i + 1;
    } else {
        return 0;
    }
    if (i + q < n && (p[i + q] == '?' || p[i + q] == '+'))
        q++;
    return q;
}

/* Past an escape \e whose e (at p[i]) is a letter or digit: \x41 \x{..}
 * \101 \1 \cA \pL \p{..} \g{..} \g-1 \k<..> \N{..} \o{..}, or two octets. */
static size_t skip_escape(const char *p, size_t n, size_t i)
{
    char e = p[i++];
    if (i < n && p[i] == '{' && strchr("xopPgkN", e) != NULL) {
        const char *close = memchr(p + i, '}', n - i);
        return close ? (size_t)(close - p) + 1 : n;
    }
    switch (e) {
    case 'x':
        for (int k = 0; k < 2 && i < n && isxdigit((unsigned char)p[i]); k++)
            i++;
        return i;
    case 'c':
    case 'p':
    case 'P':
        return i < n ? i + 1 : n;
    case 'g':
        if (i < n && (p[i] == '<' || p[i] == '\'')) {
            const char *close = memchr(p + i, p[i] == '<' ? '>' : '\'', n - i);
            return close ? (size_t)(close - p) + 1 : n;
        }
        if (i < n && (p[i] == '-' || p[i] == '+'))
            i++;
        while (i < n && isdigit((unsigned char)p[i]))
            i++;
        return i;
    case 'k':
        if (i < n && (p[i] == '<' || p[i] == '\'')) {
            const char *close = memchr(p + i, p[i] == '<' ? '>' : '\'', n - i);
            return close ? (size_t)(close - p) + 1 : n;
        }
        return i;
    default:
        if (isdigit((unsigned char)e))
            while (i < n && isdigit((unsigned char)p[i]))
                i++;
        return i;
    }
}

/* The mandatory runs of plain characters in p[0..n) (one alternative, top
 * level) of at least PF_MIN_LITERAL octets, each cut to RULES_LITERAL_MAX
 * (a prefix of a required run is required too), at most max of them. */
static size_t runs(const char *p, size_t n, char (*out)[RULES_LITERAL_MAX], size_t *lens,
                   size_t max)
{
    char run[RULES_LITERAL_MAX];
    size_t rl = 0, count = 0;
    size_t i = 0;
    for (;;) {
        bool literal = false;
        char ch = 0;
        size_t next = i + 1;
        if (i < n) {
            char c = p[i];
            if (c == '\\' && i + 1 < n) {
                unsigned char e = (unsigned char)p[i + 1];
                next = i + 2;
                if (e < 128 && !isalnum(e)) {
                    literal = true;
                    ch = (char)e;
                } else {
                    next = skip_escape(p, n, i + 1);
                }
            } else if (c == '[') {
                next = skip_class(p, n, i);
            } else if (c == '(') {
                next = skip_group(p, n, i);
            } else if (strchr(".^$|){}*+?", c) == NULL) {
                literal = true;
                ch = c;
            }
        }
        bool optional = false;
        size_t q = i < n ? quantifier(p, n, next, &optional) : 0;
        if (literal && !optional && rl < sizeof(run))
            run[rl++] = (char)tolower((unsigned char)ch);
        if (i >= n || !literal || q > 0 || optional) {
            if (rl >= PF_MIN_LITERAL && count < max) {
                memcpy(out[count], run, rl);
                lens[count++] = rl;
            }
            rl = 0;
        }
        if (i >= n)
            return count;
        i = next + q;
    }
}

/* The top-level alternatives of p[0..n): their bounds, their number, or
 * 0 when there are more than cap. */
static size_t split_alternatives(const char *p, size_t n, size_t *starts, size_t *ends, size_t cap)
{
    size_t nalt = 0, start = 0, i = 0;
    while (i <= n) {
        if (i == n || p[i] == '|') {
            if (nalt == cap)
                return 0;
            starts[nalt] = start;
            ends[nalt++] = i;
            start = i + 1;
            i++;
            continue;
        }
        if (p[i] == '\\')
            i += 2; /* an escaped octet is never '|' */
        else if (p[i] == '[')
            i = skip_class(p, n, i);
        else if (p[i] == '(')
            i = skip_group(p, n, i);
        else
            i++;
    }
    return nalt;
}

/* The longest required run of one alternative, false when it has none. */
static bool longest_run(const char *p, size_t n, char *out, size_t *len)
{
    char all[16][RULES_LITERAL_MAX];
    size_t alens[16];
    size_t k = runs(p, n, all, alens, 16);
    if (k == 0)
        return false;
    size_t best = 0;
    for (size_t c = 1; c < k; c++)
        if (alens[c] > alens[best])
            best = c;
    memcpy(out, all[best], alens[best]);
    *len = alens[best];
    return true;
}

size_t rules_literals(const char *p, size_t n, uint32_t flags, char (*lits)[RULES_LITERAL_MAX],
                      size_t *lens, unsigned *clause, size_t max)
{
    if (flags & PCRE2_EXTENDED)
        return 0;
    if ((flags & PCRE2_UTF) && (flags & PCRE2_CASELESS))
        return 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\\') {
            if (p[i + 1] == 'Q')
                return 0;
            i++;
            continue;
        }
        /* inline options (?i) (?x) (?^) ..., verbs (*UTF) */
        if (p[i] == '(' && (p[i + 1] == '*' || (p[i + 1] == '?' && i + 2 < n &&
                                                (isalpha((unsigned char)p[i + 2]) ||
                                                 p[i + 2] == '^' || p[i + 2] == '-'))))
            return 0;
    }
    size_t starts[64], ends[64];
    size_t nalt = split_alternatives(p, n, starts, ends, 64);
    if (nalt == 0)
        return 0;
    if (nalt > 1) {
        /* one of the alternatives: the longest run of each, in one clause */
        if (nalt > max)
            return 0;
        for (size_t a = 0; a < nalt; a++) {
            if (!longest_run(p + starts[a], ends[a] - starts[a], lits[a], &lens[a]))
                return 0;
            clause[a] = 0;
        }
        return nalt;
    }
    /* every run is required: one clause each */
    size_t count = runs(p, n, lits, lens, max);
    for (size_t c = 0; c < count; c++)
        clause[c] = (unsigned)c;
    unsigned next_clause = (unsigned)count;
    /* and each group that must match, (a|b|c) or (?:a|b), needs one of its
     * alternatives: a clause of their longest runs.  Leaving a group out is
     * always safe; a clause is added whole or not at all. */
    for (size_t i = 0; i < n;) {
        if (p[i] == '\\') {
            i += 2;
            continue;
        }
        if (p[i] == '[') {
            i = skip_class(p, n, i);
            continue;
        }
        if (p[i] != '(') {
            i++;
            continue;
        }
        size_t end = skip_group(p, n, i);
        bool optional = false;
        quantifier(p, n, end, &optional);
        size_t body = i + 1;
        if (i + 2 < n && p[i + 1] == '?' && p[i + 2] == ':')
            body = i + 3;
        else if (i + 1 < n && p[i + 1] == '?')
            body = 0; /* lookaround, named or atomic group: not followed */
        if (body != 0 && !optional && end <= n && end > body && p[end - 1] == ')') {
            size_t gs[16], ge[16];
            size_t ng = split_alternatives(p + body, end - 1 - body, gs, ge, 16);
            if (ng > 0 && count + ng <= max) {
                size_t k = 0;
                for (; k < ng; k++) {
                    if (!longest_run(p + body + gs[k], ge[k] - gs[k], lits[count + k],
                                     &lens[count + k]))
                        break;
                    clause[count + k] = next_clause;
                }
                if (k == ng) {
                    count += ng;
                    next_clause++;
                }
            }
        }
        i = end;
    }
    return count;
}

/* ---- the automaton ---- */

void rules_prefilter_free(struct rules_prefilter *pf)
{
    if (pf == NULL)
        return;
    free(pf->next);
    free(pf->scan);
    free(pf->out);
    free(pf->dict);
    free(pf->reports);
    free(pf->lit_next);
    free(pf->owner);
    free(pf);
}

struct rules_prefilter *rules_prefilter_build(const char *const *lits, const size_t *lens,
                                              const uint32_t *owners, size_t nlits, bool *nomem)
{
    size_t total = 1;
    for (size_t i = 0; i < nlits; i++)
        total += lens[i];
    if (nlits == 0 || total > PF_MAX_STATES)
        return NULL;
    struct rules_prefilter *pf = util_calloc(1, sizeof(*pf));
    if (pf == NULL) {
        *nomem = true;
        return NULL;
    }
    pf->nclass = 1; /* class 0: octets in no literal */
    for (size_t i = 0; i < nlits; i++) {
        for (size_t k = 0; k < lens[i]; k++) {
            uint8_t b = (uint8_t)lits[i][k];
            if (pf->cls[b] == 0) {
                if (pf->nclass == 255) {
                    /* class ids are octets: too many distinct octets to filter */
                    free(pf);
                    return NULL;
                }
                pf->cls[b] = (uint8_t)pf->nclass;
                if (b < 128 && isalpha(b))
                    pf->cls[toupper(b)] = (uint8_t)pf->nclass;
                pf->nclass++;
            }
        }
    }
    size_t nc = pf->nclass;
    pf->next = util_mallocarray(total * nc, sizeof(uint32_t));
    pf->out = util_mallocarray(total, sizeof(uint32_t));
    pf->dict = util_mallocarray(total, sizeof(uint32_t));
    pf->reports = util_calloc(total, 1);
    pf->lit_next = util_mallocarray(nlits, sizeof(uint32_t));
    pf->owner = util_mallocarray(nlits, sizeof(uint32_t));
    uint32_t *fail = util_mallocarray(total, sizeof(uint32_t));
    uint32_t *queue = util_mallocarray(total, sizeof(uint32_t));
    if (pf->next == NULL || pf->out == NULL || pf->dict == NULL || pf->reports == NULL ||
        pf->lit_next == NULL || pf->owner == NULL || fail == NULL || queue == NULL) {
        free(fail);
        free(queue);
        rules_prefilter_free(pf);
        *nomem = true;
        return NULL;
    }
    memset(pf->next, 0xff, total * nc * sizeof(uint32_t));
    memset(pf->out, 0xff, total * sizeof(uint32_t));
    memset(pf->dict, 0xff, total * sizeof(uint32_t));
    size_t ns = 1;
    for (size_t i = 0; i < nlits; i++) {
        uint32_t s = 0;
        for (size_t k = 0; k < lens[i]; k++) {
            uint32_t *t = &pf->next[s * nc + pf->cls[(uint8_t)lits[i][k]]];
            if (*t == NONE)
                *t = (uint32_t)ns++;
            s = *t;
        }
        pf->owner[i] = owners[i];
        pf->lit_next[i] = pf->out[s];
        pf->out[s] = (uint32_t)i;
    }
    pf->nstates = ns;
    /* breadth first: fail links, dictionary links, full transitions */
    size_t head = 0, tail = 0;
    fail[0] = 0;
    for (size_t c = 0; c < nc; c++) {
        uint32_t v = pf->next[c];
        if (v == NONE) {
            pf->next[c] = 0;
        } else {
            fail[v] = 0;
            queue[tail++] = v;
        }
    }
    while (head < tail) {
        uint32_t u = queue[head++];
        uint32_t f = fail[u];
        pf->dict[u] = pf->out[f] != NONE ? f : pf->dict[f];
        pf->reports[u] = pf->out[u] != NONE || pf->dict[u] != NONE;
        for (size_t c = 0; c < nc; c++) {
            uint32_t v = pf->next[u * nc + c];
            if (v == NONE) {
                pf->next[u * nc + c] = pf->next[f * nc + c];
            } else {
                fail[v] = pf->next[f * nc + c];
                queue[tail++] = v;
            }
        }
    }
    free(fail);
    free(queue);
    if (ns * nc >= REPORT) {
        rules_prefilter_free(pf);
        return NULL;
    }
    pf->scan = util_mallocarray(ns * nc, sizeof(uint32_t));
    if (pf->scan == NULL) {
        rules_prefilter_free(pf);
        *nomem = true;
        return NULL;
    }
    for (size_t k = 0; k < ns * nc; k++) {
        uint32_t t = pf->next[k];
        pf->scan[k] = (uint32_t)(t * nc) | (pf->reports[t] ? REPORT : 0);
    }
    size_t leaving = 0;
    for (size_t b = 0; b < 256; b++) {
        pf->leaves_root[b] = pf->next[pf->cls[b]] != 0;
        leaving += pf->leaves_root[b];
    }
    /* letters of both cases are 52: below that most prose stays at the root */
    pf->sparse_root = leaving <= 24;
    return pf;
}

static void report(const struct rules_prefilter *pf, uint32_t row, unsigned char *seen)
{
    uint32_t s = (uint32_t)(row / pf->nclass);
    for (uint32_t q = pf->out[s] != NONE ? s : pf->dict[s]; q != NONE; q = pf->dict[q])
        for (uint32_t l = pf->out[q]; l != NONE; l = pf->lit_next[l])
            seen[pf->owner[l]] = 1;
}

void rules_prefilter_scan(const struct rules_prefilter *pf, const char *text, size_t len,
                          unsigned char *seen)
{
    const uint32_t *scan = pf->scan;
    const uint8_t *cls = pf->cls, *leaves = pf->leaves_root;
    const uint8_t *t = (const uint8_t *)text;
    uint32_t row = 0;
    if (!pf->sparse_root) {
        for (size_t i = 0; i < len; i++) {
            uint32_t v = scan[row + cls[t[i]]];
            row = v & ~REPORT;
            if (v & REPORT)
                report(pf, row, seen);
        }
        return;
    }
    for (size_t i = 0; i < len; i++) {
        /* at the root most octets lead nowhere: skip them without the table */
        if (row == 0) {
            while (i < len && !leaves[t[i]])
                i++;
            if (i == len)
                break;
        }
        uint32_t v = scan[row + cls[t[i]]];
        row = v & ~REPORT;
        if (v & REPORT)
            report(pf, row, seen);
    }
}
