/*
 * msg_headers - incremental RFC 5322 header-section parser, pure.
 *
 * Fed the decoded message bytes (CRLF line endings, any split), it collects the
 * header fields until the empty line that ends the header section, then ignores
 * the rest.  A field keeps its name (case preserved, compared case-insensitively
 * by msg_headers_find) and its raw value: everything after the colon up to the
 * final CRLF, folding CRLFs and 8-bit octets kept as they are.
 *
 * A line that is neither a field ("name:" with printable name octets 33..126 except
 * ':'; blanks before the colon are allowed, as Postfix allows them) nor a
 * continuation (starting with SP/HTAB after a field) ends the header section
 * there, as Postfix does: that line is the first body line.
 *
 * Bounded: at most max_bytes of header octets are kept and at most max_fields
 * fields; past either the parser stops collecting and sets ->truncated (the
 * message itself is not changed by this module).
 *
 * ->body_offset is the offset in the message of the first body octet (after the
 * empty line), or of the first line that was not a header; ->header_end is where
 * the empty line (or that first body line) starts.  Each field records where its
 * raw octets are in the message, so that a rewriter can copy unchanged fields
 * exactly.  Valid once ->complete.
 */
#ifndef SMTPGATE_MSG_HEADERS_H
#define SMTPGATE_MSG_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msg_header {
    char *name; /* NUL-terminated copy */
    size_t name_len;
    char *value; /* raw value, NUL-terminated copy (may contain CRLF of folding) */
    size_t value_len;
    uint64_t start; /* offset of the field's first octet in the message */
    uint64_t end;   /* offset just past its final line ending */
};

struct msg_headers {
    struct msg_header *fields;
    size_t count;
    size_t cap;
    bool complete;  /* empty line (or first non-header line) seen */
    bool truncated; /* a bound was hit */
    uint64_t body_offset;
    uint64_t header_end; /* offset of the line that ended the header section */
    size_t max_bytes;
    size_t max_fields;
    /* private */
    uint64_t consumed;
    size_t kept_bytes;
    char *line; /* current (unfolded) field being assembled */
    size_t line_len;
    size_t line_cap;
    int state;
    size_t name_len;     /* of the field in line[] */
    uint64_t line_start; /* offset of the current line in the message */
    uint64_t field_start;
};

void msg_headers_init(struct msg_headers *h, size_t max_bytes, size_t max_fields);
void msg_headers_free(struct msg_headers *h);
void msg_headers_reset(struct msg_headers *h); /* for the next message */

/* Feed decoded message bytes.  Returns 0, or -1 on allocation failure. */
int msg_headers_feed(struct msg_headers *h, const char *bytes, size_t len);

/* Call at end of data: a message that ends inside the header section (no empty
 * line) completes here; the last field is kept even without its CRLF. */
int msg_headers_finish(struct msg_headers *h);

/* The nth (0-based) field named name, case-insensitive; NULL if none. */
const struct msg_header *msg_headers_find(const struct msg_headers *h, const char *name,
                                          size_t nth);

#endif
