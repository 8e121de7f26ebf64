/*
 * milter_reply - chain reply to libmilter reply pieces (see the header).
 *
 * Lines are split at LF (a CR before it is dropped), so a reply joined with
 * CRLF and one joined with bare LF give the same result.  Every line's own
 * enhanced code is removed when it equals the first line's: smfi_setmlreply
 * puts xcode in front of every line itself.
 */
#include "codec/milter_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/smtp_reply.h"

/* Copy text into dst, '%' doubled, unprintable octets as '?'; returns the
 * octets written (at most MILTER_REPLY_MAX_TEXT, never half a "%%"). */
static size_t milter_reply_escape(char *dst, const char *text, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '%') {
            if (o + 2 > MILTER_REPLY_MAX_TEXT)
                break;
            dst[o++] = '%';
            dst[o++] = '%';
            continue;
        }
        if (o + 1 > MILTER_REPLY_MAX_TEXT)
            break;
        dst[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    return o;
}

static bool milter_reply_next_line(const char **p, const char *end, const char **line,
                                   size_t *line_len)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    *line = *p;
    *line_len = (size_t)(stop - *p);
    if (*line_len > 0 && (*line)[*line_len - 1] == '\r')
        (*line_len)--;
    *p = nl ? nl + 1 : end;
    return true;
}

int milter_reply_parse(const char *reply, size_t len, struct milter_reply *out)
{
    memset(out, 0, sizeof(*out));
    /* Each output octet comes from one input octet, '%' from one gives two,
     * plus a NUL per line. */
    out->buf = malloc(2 * len + MILTER_REPLY_MAX_LINES + 1);
    if (!out->buf)
        return -1;

    const char *p = reply, *end = reply + len, *line;
    size_t line_len, used = 0;
    int code = 0;
    struct smtp_enhanced first = {0, 0, 0};
    while (milter_reply_next_line(&p, end, &line, &line_len)) {
        if (line_len == 0 && p >= end)
            break; /* a trailing line end */
        struct smtp_reply_line l;
        if (!smtp_reply_line(line, line_len, &l) || (code && l.code != code) || l.code < 400)
            goto bad;
        const char *text = l.text;
        size_t text_len = l.text_len;
        struct smtp_enhanced e;
        size_t consumed;
        if (!code) {
            code = l.code;
            /* smtp_reply_line() keeps code within 200..599. */
            out->rcode[0] = (char)('0' + code / 100);
            out->rcode[1] = (char)('0' + code / 10 % 10);
            out->rcode[2] = (char)('0' + code % 10);
            out->rcode[3] = '\0';
            if (smtp_enhanced_parse(text, text_len, &e, &consumed) && e.klass == code / 100) {
                snprintf(out->xcode, sizeof(out->xcode), "%d.%d.%d", e.klass, e.subject, e.detail);
                first = e;
                text += consumed;
                text_len -= consumed;
            }
        } else if (first.klass && smtp_enhanced_parse(text, text_len, &e, &consumed) &&
                   e.klass == first.klass && e.subject == first.subject &&
                   e.detail == first.detail) {
            text += consumed;
            text_len -= consumed;
        }
        if (out->nlines == MILTER_REPLY_MAX_LINES) {
            out->truncated = true;
            continue;
        }
        size_t n = milter_reply_escape(out->buf + used, text, text_len);
        out->buf[used + n] = '\0';
        out->lines[out->nlines++] = out->buf + used;
        used += n + 1;
    }
    if (out->nlines == 0)
        goto bad;
    return 0;

bad:
    milter_reply_free(out);
    return -1;
}

void milter_reply_free(struct milter_reply *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}
