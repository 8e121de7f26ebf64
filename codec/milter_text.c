/*
 * milter_text - libmilter strings to wire text and back (see the header).
 *
 * Line ends are the one place the two sides differ: the milter protocol
 * carries header values with the MTA's internal LF, the chain and the stored
 * message use CRLF throughout.
 */
#include "codec/milter_text.h"

#include <stdlib.h>
#include <string.h>

char *milter_text_header_line(const char *name, const char *value, bool leadspc, size_t *len)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    /* Worst case every value octet is a LF that gains a CR. */
    char *out = malloc(nlen + 2 + 2 * vlen + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    memcpy(out, name, nlen);
    o = nlen;
    out[o++] = ':';
    if (!leadspc)
        out[o++] = ' ';
    for (size_t i = 0; i < vlen; i++) {
        if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = value[i];
    }
    out[o++] = '\r';
    out[o++] = '\n';
    out[o] = '\0';
    if (len)
        *len = o;
    return out;
}

char *milter_text_edit_value(const char *value, bool leadspc)
{
    size_t vlen = strlen(value);
    char *out = malloc(vlen + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    if (leadspc && value[0] != ' ' && value[0] != '\t')
        out[o++] = ' ';
    for (size_t i = 0; i < vlen; i++) {
        if (value[i] == '\r') {
            /* CRs before a LF go, however many: the MTA wants LF alone. */
            size_t k = i;
            while (value[k] == '\r')
                k++;
            if (value[k] == '\n') {
                i = k - 1;
                continue;
            }
        }
        out[o++] = value[i];
    }
    out[o] = '\0';
    return out;
}

char *milter_text_mailbox(const char *arg)
{
    size_t n = strlen(arg);
    if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>')
        return strndup(arg + 1, n - 2);
    return strdup(arg);
}

char *milter_text_bracket(const char *mailbox)
{
    size_t n = strlen(mailbox);
    char *out = malloc(n + 3);
    if (!out)
        return NULL;
    out[0] = '<';
    memcpy(out + 1, mailbox, n);
    out[n + 1] = '>';
    out[n + 2] = '\0';
    return out;
}

char *milter_text_params(char *const *argv)
{
    if (!argv || !argv[0] || !argv[1])
        return NULL;
    size_t total = 0;
    for (size_t i = 1; argv[i]; i++)
        total += strlen(argv[i]) + 1;
    char *out = malloc(total);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 1; argv[i]; i++) {
        size_t n = strlen(argv[i]);
        if (o)
            out[o++] = ' ';
        memcpy(out + o, argv[i], n);
        o += n;
    }
    out[o] = '\0';
    return out;
}
