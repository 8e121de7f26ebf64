/*
 * reply - validation of plugins' replies, and the default replies per stage.
 *
 * A plugin's reply reaches the client unchanged but for continuation dashes
 * and a missing enhanced status code, so it is checked here as strictly as
 * the session checks its own: one code for every line, of the verdict's
 * class, no control octets, an enhanced code of the same class.
 */
#include "chain/reply.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * "550 5.7.1 text" lines, separated by "\n" (or CRLF), into wire form with
 * continuation dashes, no final CRLF.  Every line must carry the same code,
 * of the class the verdict needs (4 or 5); the enhanced code, when present,
 * must be class.subject.detail with the same class, and is added when missing
 * so that every refusal has one.  NULL if malformed.
 */
char *chain_reply_wire(const char *reply, char cls)
{
    size_t cap = strlen(reply) * 2 + 64;
    if (cap > 8192)
        return NULL;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t used = 0;
    char code[4] = {0};
    const char *p = reply;
    int nlines = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len < 3 || !isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
            !isdigit((unsigned char)p[2]) || p[0] != cls || (len > 3 && p[3] != ' ' && p[3] != '-'))
            goto bad;
        if (nlines == 0)
            memcpy(code, p, 3);
        else if (memcmp(code, p, 3) != 0)
            goto bad;
        const char *text = len > 4 ? p + 4 : "";
        size_t tlen = len > 4 ? len - 4 : 0;
        for (size_t i = 0; i < tlen; i++)
            if ((unsigned char)text[i] < 32 && text[i] != '\t')
                goto bad;
        /* enhanced code */
        size_t ecl = 0;
        if (tlen >= 5 && text[0] >= '2' && text[0] <= '5' && text[1] == '.') {
            size_t i = 2, d1 = 0, d2 = 0;
            while (i < tlen && isdigit((unsigned char)text[i]) && d1 < 3)
                i++, d1++;
            if (d1 && i < tlen && text[i] == '.') {
                i++;
                while (i < tlen && isdigit((unsigned char)text[i]) && d2 < 3)
                    i++, d2++;
                if (d2 && (i == tlen || text[i] == ' ')) {
                    if (text[0] != cls)
                        goto bad;
                    ecl = i;
                }
            }
        }
        char line_code[8];
        snprintf(line_code, sizeof(line_code), "%s", code);
        const char *ec = ecl ? "" : (cls == '5' ? "5.7.1 " : "4.7.1 ");
        int n = snprintf(out + used, cap - used, "%s%s%s%s%.*s", used ? "\r\n" : "", line_code,
                         "\x01", ec, (int)tlen, text);
        if (n < 0 || (size_t)n >= cap - used)
            goto bad;
        used += (size_t)n;
        nlines++;
        if (!eol)
            break;
        p = eol + 1;
    }
    if (nlines == 0)
        goto bad;
    /* Separators: '-' on every line but the last. */
    for (size_t i = 0, line = 0; i < used; i++) {
        if (out[i] == '\x01')
            out[i] = ++line < (size_t)nlines ? '-' : ' ';
    }
    return out;
bad:
    free(out);
    return NULL;
}

const char *chain_default_reply(enum sg_stage stage, enum sg_verdict v)
{
    if (v == SG_TEMPFAIL)
        return stage == SG_STAGE_CONNECT
                   ? "421 4.7.0 Service temporarily unavailable, try again later"
                   : "451 4.7.1 Temporary failure, try again later";
    switch (stage) {
    case SG_STAGE_CONNECT:
        return "554 5.7.1 Connection refused";
    case SG_STAGE_HELO:
        return "550 5.7.1 HELO/EHLO refused";
    case SG_STAGE_MAIL:
        return "550 5.7.1 Sender address refused";
    case SG_STAGE_RCPT:
        return "550 5.7.1 Recipient address refused";
    default:
        return "550 5.7.1 Message content refused";
    }
}
