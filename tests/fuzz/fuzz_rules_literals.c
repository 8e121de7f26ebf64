// fuzz-sources: rules/literal_extract.c
// fuzz-pkgs: libpcre2-8
/*
 * The prefilter's literal extraction over any pattern: never a crash or a
 * read past the pattern (exact-size copy), every literal within bounds and
 * clauses numbered in order, and above all sound: when PCRE2 compiles the
 * pattern and it matches the subject, every clause has a literal in the
 * subject (ASCII case folded), or the prefilter would have dropped a match.
 * With flag bit 0x10 the same for the skeleton's literals, against the
 * subject's [A-Za-z0-9] octets alone.
 * Input: one flags octet, the pattern, a NUL, the subject.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXLIT 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t flags = 0;
    if (data[0] & 1)
        flags |= PCRE2_CASELESS;
    if (data[0] & 2)
        flags |= PCRE2_UTF | PCRE2_UCP;
    if (data[0] & 4)
        flags |= PCRE2_MULTILINE;
    if (data[0] & 8)
        flags |= PCRE2_DOTALL;
    const uint8_t *rest = data + 1;
    size_t rl = size - 1;
    const uint8_t *nul = memchr(rest, 0, rl);
    size_t plen = nul ? (size_t)(nul - rest) : rl;
    char *pat = malloc(plen ? plen : 1);
    if (pat == NULL)
        return 0;
    memcpy(pat, rest, plen);
    size_t slen = nul ? rl - plen - 1 : 0;
    char *subj = malloc(slen ? slen : 1);
    if (subj == NULL) {
        free(pat);
        return 0;
    }
    if (slen)
        memcpy(subj, nul + 1, slen);

    char lits[MAXLIT][RULES_LITERAL_MAX];
    size_t lens[MAXLIT];
    unsigned clause[MAXLIT];
    bool skeleton = (data[0] & 0x10) != 0;
    size_t n = skeleton ? rules_literals_skeleton(pat, plen, flags, lits, lens, clause, MAXLIT)
                        : rules_literals(pat, plen, flags, lits, lens, clause, MAXLIT);
    if (n > MAXLIT)
        abort();
    for (size_t k = 0; k < n; k++) {
        if (lens[k] < 3 || lens[k] > RULES_LITERAL_MAX)
            abort();
        if (k == 0 ? clause[k] != 0 : clause[k] != clause[k - 1] && clause[k] != clause[k - 1] + 1)
            abort();
    }
    if (n > 0) {
        int err;
        PCRE2_SIZE off;
        uint32_t opts = flags;
        if (opts & PCRE2_UTF)
            opts |= PCRE2_MATCH_INVALID_UTF;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, plen, opts, &err, &off, NULL);
        if (re != NULL) {
            pcre2_match_data *md = pcre2_match_data_create(1, NULL);
            pcre2_match_context *mc = pcre2_match_context_create(NULL);
            pcre2_set_match_limit(mc, 100000);
            pcre2_set_depth_limit(mc, 1000);
            if (md != NULL && mc != NULL &&
                pcre2_match(re, (PCRE2_SPTR)subj, slen, 0, 0, md, mc) >= 0) {
                char *low = malloc(slen ? slen : 1);
                if (low != NULL) {
                    size_t ll = 0;
                    for (size_t k = 0; k < slen; k++) {
                        unsigned char ch = (unsigned char)subj[k];
                        if (skeleton && (ch >= 128 || !isalnum(ch)))
                            continue;
                        low[ll++] = (char)(ch < 128 ? tolower(ch) : ch);
                    }
                    /* every clause needs one of its literals in the subject */
                    size_t k = 0;
                    while (k < n) {
                        unsigned c = clause[k];
                        bool found = false;
                        for (; k < n && clause[k] == c; k++)
                            found = found || memmem(low, ll, lits[k], lens[k]) != NULL;
                        if (!found)
                            abort();
                    }
                    free(low);
                }
            }
            pcre2_match_data_free(md);
            pcre2_match_context_free(mc);
            pcre2_code_free(re);
        }
    }
    free(pat);
    free(subj);
    return 0;
}
