/*
 * milter_reply - turns a filter chain reply ("550 5.7.1 text", lines joined
 * by CRLF) into the pieces smfi_setreply()/smfi_setmlreply() take, pure.
 *
 * milter_reply_parse() fills out->rcode ("550"), out->xcode ("5.7.1", or ""
 * when the first line has none or its class is not the code's), and up to
 * MILTER_REPLY_MAX_LINES line texts without code and enhanced code.  libmilter
 * treats the text as a format (a single '%' voids the reply), so '%' comes
 * out doubled; octets outside printable ASCII become '?' (the MTA refuses CR,
 * LF and NUL); a line longer than MILTER_REPLY_MAX_TEXT is cut there.  Lines
 * past the limit are dropped and out->truncated is set.
 *
 * Returns 0, or -1 (out->nlines == 0) when the first line is not a 4xx/5xx
 * reply line, a later line has another code, or memory runs out.  Each line
 * points into out->buf; milter_reply_free() releases it.
 */
#ifndef SMTPGATE_MILTER_REPLY_H
#define SMTPGATE_MILTER_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define MILTER_REPLY_MAX_LINES 32  /* smfi_setmlreply's limit */
#define MILTER_REPLY_MAX_TEXT  960 /* libmilter refuses lines over 980 octets with the codes */

struct milter_reply {
    char rcode[4];
    char xcode[16];
    size_t nlines;
    const char *lines[MILTER_REPLY_MAX_LINES];
    bool truncated;
    char *buf;
};

int milter_reply_parse(const char *reply, size_t len, struct milter_reply *out);
void milter_reply_free(struct milter_reply *r);

#endif
