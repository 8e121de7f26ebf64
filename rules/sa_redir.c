/*
 * sa_redir - SpamAssassin's redirector_pattern list (see sa_redir.h).  The
 * patterns are few (seven shipped, nine in the sandbox rules): tried one by
 * one, as SpamAssassin does.
 */
#include "rules/sa_redir.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* against a pattern that backtracks without end on a hostile URI */
#define SA_REDIR_MATCH_LIMIT 100000

struct sa_redirs {
    pcre2_code **re;
    size_t n, cap;
    pcre2_match_context *mctx; /* the match limit; only read while matching */
};

struct sa_redirs *sa_redirs_new(void)
{
    struct sa_redirs *rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        return NULL;
    if ((rd->mctx = pcre2_match_context_create(NULL)) == NULL) {
        free(rd);
        return NULL;
    }
    pcre2_set_match_limit(rd->mctx, SA_REDIR_MATCH_LIMIT);
    return rd;
}

void sa_redirs_free(struct sa_redirs *rd)
{
    if (rd == NULL)
        return;
    for (size_t i = 0; i < rd->n; i++)
        pcre2_code_free(rd->re[i]);
    free(rd->re);
    pcre2_match_context_free(rd->mctx);
    free(rd);
}

size_t sa_redirs_count(const struct sa_redirs *rd)
{
    return rd ? rd->n : 0;
}

static enum sa_redir_rc bad(char *why, size_t wn, const char *msg)
{
    snprintf(why, wn, "redirector_pattern: %s", msg);
    return SA_REDIR_BAD;
}

enum sa_redir_rc sa_redirs_add(struct sa_redirs *rd, const char *val, size_t vn, char *why,
                               size_t wn)
{
    while (vn > 0 && isspace((unsigned char)*val))
        val++, vn--;
    while (vn > 0 && isspace((unsigned char)val[vn - 1]))
        vn--;
    if (vn == 0)
        return bad(why, wn, "requires a value");
    size_t start;
    char close;
    if (val[0] == '/') {
        start = 1;
        close = '/';
    } else {
        size_t k = vn >= 2 && val[0] == 'q' && val[1] == 'r' ? 2 : val[0] == 'm' ? 1 : 0;
        if (k == 0 || k >= vn || isalnum((unsigned char)val[k]) || val[k] == '_' ||
            isspace((unsigned char)val[k]))
            return bad(why, wn, "missing regexp delimiters");
        if (val[k] == '\\')
            return bad(why, wn, "backslash delimiter not allowed");
        static const char open[] = "{(<[", shut[] = "})>]";
        const char *o = strchr(open, val[k]);
        close = o != NULL ? shut[o - open] : val[k];
        start = k + 1;
    }
    /* the end delimiter, then modifiers [a-df-z]* */
    size_t m = vn;
    while (m > start && islower((unsigned char)val[m - 1]) && val[m - 1] != 'e')
        m--;
    if (m <= start || val[m - 1] != close)
        return bad(why, wn, "invalid end delimiter/mods");
    const char *re = val + start;
    size_t rn = m - 1 - start;
    if (memmem(re, rn, "(?{", 3) != NULL || memmem(re, rn, "(??{", 4) != NULL)
        return bad(why, wn, "eval (?{}) found");
    if (close != '}' && close != ')' && close != ']') {
        for (size_t i = 0; i < rn; i++) {
            if (re[i] == '\\') {
                i++;
                continue;
            }
            if (re[i] == close) {
                char msg[64];
                snprintf(msg, sizeof(msg), "unquoted delimiter '%c' found", close);
                return bad(why, wn, msg);
            }
        }
    }
    uint32_t flags = 0;
    for (size_t i = m; i < vn; i++) {
        switch (val[i]) {
        case 'i':
            flags |= PCRE2_CASELESS;
            break;
        case 'm':
            flags |= PCRE2_MULTILINE;
            break;
        case 's':
            flags |= PCRE2_DOTALL;
            break;
        case 'x':
            flags |= PCRE2_EXTENDED;
            break;
        default: {
            char msg[64];
            snprintf(msg, sizeof(msg), "modifier '%c' not understood", val[i]);
            return bad(why, wn, msg);
        }
        }
    }
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, rn, flags, &err, &off, NULL);
    if (code == NULL) {
        if (err == PCRE2_ERROR_HEAP_FAILED)
            return SA_REDIR_NOMEM;
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof(msg));
        char text[200];
        snprintf(text, sizeof(text), "invalid pattern: %s at offset %zu", (char *)msg,
                 (size_t)off);
        return bad(why, wn, text);
    }
    if (rd->n == rd->cap) {
        size_t nc = rd->cap ? rd->cap * 2 : 8;
        pcre2_code **nr = realloc(rd->re, nc * sizeof(*nr));
        if (nr == NULL) {
            pcre2_code_free(code);
            return SA_REDIR_NOMEM;
        }
        rd->re = nr;
        rd->cap = nc;
    }
    rd->re[rd->n++] = code;
    return SA_REDIR_OK;
}

bool sa_redirs_target(const struct sa_redirs *rd, const char *s, size_t n, size_t *off,
                      size_t *len)
{
    if (rd == NULL || rd->n == 0)
        return false;
    pcre2_match_data *md = pcre2_match_data_create(2, NULL);
    bool found = false;
    if (md != NULL) {
        for (size_t i = 0; i < rd->n && !found; i++) {
            /* 0: more groups than the match data holds, the first one is there */
            int rc = pcre2_match(rd->re[i], (PCRE2_SPTR)s, n, 0, 0, md, rd->mctx);
            if (rc < 0 || rc == 1)
                continue;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[2] == PCRE2_UNSET || ov[3] < ov[2] ||
                memchr(s + ov[2], '.', ov[3] - ov[2]) == NULL)
                continue;
            *off = ov[2];
            *len = ov[3] - ov[2];
            found = true;
        }
    }
    pcre2_match_data_free(md);
    return found;
}
