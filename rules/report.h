/*
 * report - the report fields of a message's outcome.  Not installed.
 */
#ifndef SMTPGATE_RULES_REPORT_H
#define SMTPGATE_RULES_REPORT_H

#include "rules/rules_int.h"

/* From the rules that hit (hit[i] per rule), the plugins' symbols (syms,
 * nsyms: their names join the tests, once) and out's score, required and
 * spam: malloc'ed *status, *score and *level (NULL when the score is below
 * 1).  0, or -1 when out of memory (what was made is still to be freed). */
int rules_report_build(const struct rules *r, const unsigned char *hit,
                       const struct rules_symbol *syms, size_t nsyms,
                       const struct rules_outcome *out, char **status, char **score, char **level);

/* The fields SpamAssassin's add_header templates (r->sa_hdr, fields_set) make of the
 * same outcome, in the order SpamAssassin adds them: *fields malloc'ed,
 * each name ("X-Spam-Status") and value malloc'ed, folds "\r\n\t".
 * relays: X-Spam-Relays-Trusted, -Untrusted, -Internal, -External (NULL:
 * their tags stay); host: _HOSTNAME_ when report_hostname is not set;
 * date: _DATE_.  0, or
 * -1 when out of memory (what was made is in *fields, to be freed). */
int rules_report_sa(const struct rules *r, const unsigned char *hit,
                    const struct rules_symbol *syms, size_t nsyms,
                    const struct rules_outcome *out, const char *const relays[4],
                    const char *host, const char *date, struct rules_header **fields,
                    size_t *nfields);

#endif
