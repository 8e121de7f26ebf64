// fuzz-sources: rules/sa_uri.c rules/sa_redir.c
// fuzz-pkgs: libpcre2-8
/*
 * The redirector patterns come from rule files, the URIs from messages:
 * any octets must give forms within the bounds sa_uri.h promises, never a
 * crash or a hang.  The input is lines: each but the last a
 * redirector_pattern value, the last the URI, given every form with the
 * patterns and without them.  Each line is copied to a buffer of exactly
 * its size, so any read past its end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_redir.h"
#include "rules/sa_uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void form(void *arg, const char *s, size_t n)
{
    unsigned *count = arg;
    if (++*count > SA_URI_FORMS_MAX || n == 0)
        abort();
    /* every octet of the form is read */
    volatile char sink = 0;
    for (size_t i = 0; i < n; i++)
        sink ^= s[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sa_redirs *rd = sa_redirs_new();
    if (rd == NULL)
        return 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *v = malloc(n ? n : 1);
        if (v == NULL)
            break;
        memcpy(v, p, n);
        if (nl != NULL) {
            char why[160];
            if (sa_redirs_add(rd, v, n, why, sizeof(why)) == SA_REDIR_BAD &&
                memchr(why, '\0', sizeof(why)) == NULL)
                abort();
        } else {
            unsigned count = 0;
            sa_uri_forms(v, n, rd, form, &count);
            count = 0;
            sa_uri_forms(v, n, NULL, form, &count);
        }
        free(v);
        p = nl ? nl + 1 : end;
    }
    sa_redirs_free(rd);
    return 0;
}
