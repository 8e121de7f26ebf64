// fuzz-sources: rules/sa_bigre.c util/alloc.c
// fuzz-pkgs: libpcre2-8
/*
 * The rewrite of too-large SpamAssassin patterns over any octets: never a
 * crash or a read past the pattern (exact-size copy), a result that is
 * NUL-terminated at its length, nothing rewritten in extended mode, and
 * above all the same matches: when PCRE2 compiles both the original and
 * its rewrite, each matches the subject or not alike, at the same start
 * and end, wherever the search starts (a match limit reached by either
 * leaves that start out: the two count their steps differently).
 * Input: one flags octet, the pattern, a NUL, the subject.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_bigre.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pcre2_code *compile(const char *p, size_t n, uint32_t flags)
{
    int err;
    PCRE2_SIZE off;
    return pcre2_compile((PCRE2_SPTR)p, n, flags, &err, &off, NULL);
}

static void compare(pcre2_code *a, pcre2_code *b, const char *s, size_t n)
{
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_match_data *ma = pcre2_match_data_create_from_pattern(a, NULL);
    pcre2_match_data *mb = pcre2_match_data_create_from_pattern(b, NULL);
    if (mc == NULL || ma == NULL || mb == NULL)
        abort();
    pcre2_set_match_limit(mc, 20000);
    pcre2_set_depth_limit(mc, 2000);
    for (size_t off = 0; off <= n; off++) {
        int ra = pcre2_match(a, (PCRE2_SPTR)s, n, off, 0, ma, mc);
        int rb = pcre2_match(b, (PCRE2_SPTR)s, n, off, 0, mb, mc);
        if ((ra < 0 && ra != PCRE2_ERROR_NOMATCH) || (rb < 0 && rb != PCRE2_ERROR_NOMATCH))
            continue;
        if ((ra >= 0) != (rb >= 0))
            abort();
        if (ra < 0)
            continue;
        PCRE2_SIZE *oa = pcre2_get_ovector_pointer(ma), *ob = pcre2_get_ovector_pointer(mb);
        if (oa[0] != ob[0] || oa[1] != ob[1])
            abort();
    }
    pcre2_match_data_free(ma);
    pcre2_match_data_free(mb);
    pcre2_match_context_free(mc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    uint32_t flags = 0;
    if (data[0] & 1)
        flags |= PCRE2_CASELESS;
    if (data[0] & 2)
        flags |= PCRE2_MULTILINE;
    if (data[0] & 4)
        flags |= PCRE2_DOTALL;
    if (data[0] & 8)
        flags |= PCRE2_EXTENDED;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    const uint8_t *nul = memchr(rest, 0, n);
    size_t plen = nul ? (size_t)(nul - rest) : n;
    char *pat = malloc(plen ? plen : 1);
    if (pat == NULL)
        return 0;
    memcpy(pat, rest, plen);
    char *out = NULL;
    size_t olen = 0;
    int rc = sa_bigre_rewrite(pat, plen, flags, &out, &olen);
    if (rc == 1 && (out == NULL || out[olen] != '\0' || (flags & PCRE2_EXTENDED)))
        abort();
    if (rc != 1 && out != NULL)
        abort();
    if (rc == 1) {
        pcre2_code *a = compile(pat, plen, flags);
        pcre2_code *b = a ? compile(out, olen, flags) : NULL;
        if (a != NULL && b != NULL) {
            size_t slen = nul ? n - plen - 1 : 0;
            char *subj = malloc(slen ? slen : 1);
            if (subj == NULL)
                abort();
            memcpy(subj, nul ? (const char *)nul + 1 : "", slen);
            compare(a, b, subj, slen);
            free(subj);
        }
        pcre2_code_free(a);
        pcre2_code_free(b);
    }
    free(out);
    free(pat);
    return 0;
}
