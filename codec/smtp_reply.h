/*
 * smtp_reply - SMTP reply parser (RFC 5321 4.2, RFC 3463 enhanced codes), pure.
 *
 * An upstream reply arrives as one or more lines "CCC-text" ... "CCC text".
 * smtp_reply_line() parses one line (without its CRLF).  struct smtp_reply
 * accumulates lines: smtp_reply_feed() returns SMTP_REPLY_MORE until the last
 * line, then SMTP_REPLY_DONE; any malformed line, a code that changes between
 * lines, or more than SMTP_REPLY_MAX_LINES lines / SMTP_REPLY_MAX_BYTES bytes
 * gives SMTP_REPLY_ERROR (the caller treats the upstream as broken: 451/421 to
 * its client).  smtp_reply_format() writes the reply back as wire lines, so a
 * multi-line reply stays multi-line when relayed.
 *
 * smtp_ehlo_caps() reads an EHLO reply's lines into capability bits and values.
 */
#ifndef SMTPGATE_SMTP_REPLY_H
#define SMTPGATE_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_MAX_LINES 64
#define SMTP_REPLY_MAX_BYTES 16384

struct smtp_reply_line {
    int code;         /* 200..599 (first digit 2..5, others 0..9) */
    bool last;        /* separator was SP (or the line was exactly the 3 digits) */
    const char *text; /* after the separator, may be empty */
    size_t text_len;
};

/* Returns false when the line is not a reply line. */
bool smtp_reply_line(const char *line, size_t len, struct smtp_reply_line *out);

struct smtp_enhanced {
    int klass;   /* 2, 4 or 5 */
    int subject; /* 0..999 */
    int detail;  /* 0..999 */
};

/* Parse an enhanced status code at the start of text ("5.1.1 ...").  On success
 * *consumed is the code's length plus the following blank(s). */
bool smtp_enhanced_parse(const char *text, size_t len, struct smtp_enhanced *out, size_t *consumed);

struct smtp_reply {
    int code; /* 0 until the first line */
    size_t nlines;
    char *text; /* the lines' texts joined with '\n', NUL-terminated; owned */
    size_t text_len;
    size_t text_cap;
};

enum smtp_reply_status { SMTP_REPLY_MORE, SMTP_REPLY_DONE, SMTP_REPLY_ERROR };

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_reset(struct smtp_reply *r); /* ready for the next reply, keeps memory */
void smtp_reply_free(struct smtp_reply *r);
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);

/* Write the reply as CRLF-terminated wire lines into out (malloc'd, NUL-terminated).
 * Returns the length, or (size_t)-1 on allocation failure. */
size_t smtp_reply_format(const struct smtp_reply *r, char **out);

/* Format a reply from code and a text that may contain '\n' for line breaks. */
size_t smtp_reply_format_text(int code, const char *text, size_t text_len, char **out);

struct smtp_ehlo_caps {
    unsigned caps;           /* esmtp_cap bits from esmtp.h */
    uint64_t size_limit;     /* SIZE value, 0 = none announced or no limit given */
    char auth_mechs[256];    /* "PLAIN LOGIN ..." as announced, truncated if longer */
    char xclient_attrs[256]; /* "NAME ADDR PORT PROTO HELO LOGIN ..." as announced */
};

/* Read an EHLO reply (text as produced by smtp_reply_feed: lines joined by '\n';
 * the first line is the greeting name and carries no keyword). */
void smtp_ehlo_caps(const char *text, size_t len, struct smtp_ehlo_caps *out);

/* Is word (case-insensitive) one of the blank-separated words of list, such as
 * an XCLIENT attribute of xclient_attrs? */
bool smtp_ehlo_word(const char *list, const char *word);

#endif
