/*
 * quarantine_read - the head of a quarantine file (quarantine.h) read back,
 * pure: the envelope and facts of its "X-Quarantine-*" lines, and where the
 * message as received begins.
 *
 * quarantine_head_parse() reads the lines quarantine_write() puts at the start
 * of the file, each "X-Quarantine-NAME: value" ended by CRLF or LF, in its
 * order: Date, Client, Helo, Envelope-From, one Envelope-To per recipient
 * (at least one), Reason, Filter (names in any case).  The head ends after
 * Filter, whatever follows: a message that carries X-Quarantine lines of its
 * own cannot add a recipient to its envelope.  A value is what follows the
 * ':' and its blanks; Envelope-From may be empty (the null sender).  Any
 * other line, or the right ones out of order, make the file QH_INVALID.
 *
 * whole says buf is the whole file; otherwise a head that runs to the end of
 * buf is QH_INCOMPLETE, for the caller to read more.  The fields point into
 * buf; out->rcpt is malloc'd (quarantine_head_free()).  Every result but QH_OK
 * leaves nothing to free.
 */
#ifndef SMTPGATE_QUARANTINE_READ_H
#define SMTPGATE_QUARANTINE_READ_H

#include <stdbool.h>
#include <stddef.h>

enum quarantine_head_status { QH_OK, QH_INCOMPLETE, QH_INVALID, QH_NOMEM };

struct quarantine_field {
    const char *p; /* NULL when the line was not there */
    size_t len;
};

struct quarantine_head {
    struct quarantine_field date, client, helo, from, reason, filter;
    struct quarantine_field *rcpt;
    size_t nrcpt;
    size_t message_offset; /* the message's first octet in buf */
};

enum quarantine_head_status quarantine_head_parse(const char *buf, size_t len, bool whole,
                                                  struct quarantine_head *out);
void quarantine_head_free(struct quarantine_head *h);

#endif
