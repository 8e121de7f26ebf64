// fuzz-sources: codec/smtp_reply.c util/alloc.c
/*
 * Upstream replies are untrusted input too.  The input is cut into lines at
 * '\n' and fed reply by reply; every complete reply is formatted back to wire
 * lines, which must parse again to the same reply, and read as an EHLO reply.
 * Nothing may crash, leak or exceed the reply limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed formatted wire text back in; it must give the same reply. */
static void fuzz_reparse(const struct smtp_reply *r, const char *wire, size_t n)
{
    struct smtp_reply again;
    enum smtp_reply_status st = SMTP_REPLY_MORE;
    size_t p = 0;

    smtp_reply_init(&again);
    while (p < n) {
        const char *crlf = memmem(wire + p, n - p, "\r\n", 2);
        if (crlf == NULL || st != SMTP_REPLY_MORE)
            abort();
        st = smtp_reply_feed(&again, wire + p, (size_t)(crlf - (wire + p)));
        p = (size_t)(crlf - wire) + 2;
    }
    if (st != SMTP_REPLY_DONE || again.code != r->code || again.nlines != r->nlines ||
        again.text_len != r->text_len || memcmp(again.text, r->text, r->text_len) != 0)
        abort();
    smtp_reply_free(&again);
}

static void fuzz_done(const struct smtp_reply *r)
{
    if (r->code < 200 || r->code > 599 || r->nlines == 0 || r->nlines > SMTP_REPLY_MAX_LINES)
        abort();
    if (r->text_len != strlen(r->text))
        abort();

    char *wire;
    size_t n = smtp_reply_format(r, &wire);
    if (n == (size_t)-1)
        return;
    if (n > SMTP_REPLY_MAX_BYTES || n != strlen(wire))
        abort();
    fuzz_reparse(r, wire, n);
    free(wire);

    struct smtp_ehlo_caps caps;
    smtp_ehlo_caps(r->text, r->text_len, &caps);
    if (strlen(caps.auth_mechs) >= sizeof(caps.auth_mechs) ||
        strlen(caps.xclient_attrs) >= sizeof(caps.xclient_attrs))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    struct smtp_reply r;
    smtp_reply_init(&r);
    size_t p = 0;
    while (p < size) {
        const char *nl = memchr(buf + p, '\n', size - p);
        size_t end = nl ? (size_t)(nl - buf) : size;
        size_t len = end - p;
        if (len > 0 && buf[p + len - 1] == '\r')
            len--;

        struct smtp_reply_line line;
        if (smtp_reply_line(buf + p, len, &line)) {
            struct smtp_enhanced e;
            size_t used;
            if (smtp_enhanced_parse(line.text, line.text_len, &e, &used) &&
                (used > line.text_len || used < 5))
                abort();
        }

        enum smtp_reply_status st = smtp_reply_feed(&r, buf + p, len);
        if (st == SMTP_REPLY_DONE)
            fuzz_done(&r);
        if (st != SMTP_REPLY_MORE)
            smtp_reply_reset(&r);
        p = end + 1;
    }
    smtp_reply_free(&r);

    /* The whole input as a filter's reply text. */
    char *wire;
    size_t n = smtp_reply_format_text(550, buf, size, &wire);
    if (n != (size_t)-1) {
        if (n != strlen(wire) || memchr(wire, '\r', n) == NULL)
            abort();
        free(wire);
    }
    free(buf);
    return 0;
}
