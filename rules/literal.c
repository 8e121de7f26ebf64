/*
 * literal - skips regex rules that cannot match a text, in one pass.
 *
 * A rule over a long text (body, rawbody, full, headers) costs a PCRE2 scan
 * of that text; a thousand of them cost a thousand scans.  Most patterns
 * require literals of which a match must contain one per clause
 * (rules_literals(), literal_extract.c).  rules_prefilter_build() puts the
 * literals of all rules over one text into an Aho-Corasick automaton,
 * rules_prefilter_scan() reads the text once (ASCII case folded) and marks
 * the clauses whose literal occurs; a rule goes to PCRE2 only when all its
 * clauses are marked.  rules_prefilter_scan_skeleton() reads only the
 * text's [A-Za-z0-9] octets, for the literals of match skeletons.
 * Matching the literals case-insensitively is a
 * superset of what PCRE2 matches, whatever the rule's flags.
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

#define PF_MAX_STATES 500000u
#define NONE          UINT32_MAX

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

void rules_prefilter_scan_skeleton(const struct rules_prefilter *pf, const char *text, size_t len,
                                   unsigned char *seen)
{
    const uint32_t *scan = pf->scan;
    const uint8_t *cls = pf->cls;
    const uint8_t *t = (const uint8_t *)text;
    uint32_t row = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] >= 0x80 || !isalnum(t[i]))
            continue;
        uint32_t v = scan[row + cls[t[i]]];
        row = v & ~REPORT;
        if (v & REPORT)
            report(pf, row, seen);
    }
}
