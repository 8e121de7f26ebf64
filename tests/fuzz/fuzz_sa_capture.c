// fuzz-sources: rules/sa_capture.c util/alloc.c
// fuzz-pkgs: libpcre2-8
/*
 * SpamAssassin's capture templates over any octets: a pattern from a rule
 * file is marked (never a crash or a read past it: the input is copied to a
 * buffer of exactly its size), and marking keeps every octet but the
 * templates' braces; a message's value (the same octets) filled into every
 * template leaves none to fill again, and quoted, it is a pattern that
 * PCRE2 compiles and that matches the value itself, whole, literally.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void literal_match(const char *v, size_t n)
{
    static const char marked[] = "\\A%\\{T\\}\\z";
    size_t plen;
    bool big;
    const char *vals[] = {v};
    char *pat = sa_capture_subst(marked, sizeof(marked) - 1, "T", 1, vals, &n, 1, &plen, &big);
    if (pat == NULL)
        abort(); /* a small value never passes the cap */
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, plen, 0, &err, &off, NULL);
    if (re == NULL)
        abort();
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        abort();
    int rc = pcre2_match(re, (PCRE2_SPTR)v, n, 0, 0, md, NULL);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    if (rc != 1 || ov[0] != 0 || ov[1] != n)
        abort();
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    free(pat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    (void)sa_capture_valid_name(buf, size);
    (void)sa_capture_has_group(buf, size);
    char *out;
    size_t n, nt;
    struct sa_capture_tmpl *t;
    if (sa_capture_mark(buf, size, &out, &n, &t, &nt) == 0 && out != NULL) {
        if (nt == 0 || n < size + 2 * nt || (n - size) % 2 != 0 || out[n] != '\0')
            abort();
        /* one value for every template: nothing left to fill after */
        const char *vals[] = {buf};
        size_t vl = size > 64 ? 64 : size;
        char *cur = out;
        size_t cl = n;
        for (size_t i = 0; i < nt; i++) {
            if (!sa_capture_valid_name(t[i].tag, t[i].tag_len) ||
                memchr(out, '%', n) == NULL)
                abort();
            bool big;
            size_t nl;
            char *next = sa_capture_subst(cur, cl, t[i].text, t[i].text_len, vals, &vl, 1, &nl,
                                          &big);
            if (next == NULL)
                break;
            if (cur != out)
                free(cur);
            cur = next;
            cl = nl;
        }
        for (size_t i = 0; i < nt && cur != NULL; i++) {
            bool big;
            size_t nl;
            char *again = sa_capture_subst(cur, cl, t[i].text, t[i].text_len, vals, &vl, 1, &nl,
                                           &big);
            if (again != NULL && (nl != cl || memcmp(again, cur, cl) != 0))
                abort();
            free(again);
        }
        if (cur != out)
            free(cur);
        free(out);
        sa_capture_tmpl_free(t, nt);
    }
    literal_match(buf, size > 256 ? 256 : size);
    free(buf);
    return 0;
}
