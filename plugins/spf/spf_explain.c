/*
 * spf_explain - RFC 7208 6.2 explanation strings: expansion and sanitising, pure.
 *
 * libspf2 expands explanations with its own compiler, which garbles some
 * (macro delimiters, %{p}); here the explain-string grammar of RFC 7208
 * section 12 is applied through spf_macro with SPF_MACRO_EXP, and the
 * result made safe for an SMTP reply line.
 */
#include "spf_explain.h"

#include <stdlib.h>
#include <string.h>

int spf_explain_expand(const char *txt, size_t len, const struct spf_macro_ctx *ctx, char **out)
{
    char *s = NULL;
    *out = NULL;
    if (spf_macro_expand(txt, len, SPF_MACRO_EXP, ctx, SPF_EXPLAIN_MAX_EXPAND, &s) != SPF_MACRO_OK)
        return -1;
    size_t n = strlen(s);
    if (n > SPF_EXPLAIN_MAX) {
        n = SPF_EXPLAIN_MAX;
        s[n] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e)
            s[i] = '?';
    }
    *out = s;
    return 0;
}
