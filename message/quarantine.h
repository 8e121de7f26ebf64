/*
 * quarantine - keeps a message that a filter quarantined, with its envelope,
 * as one file an admin can read, release or delete (smtpgate-ctl quarantine
 * ...; by hand: `sendmail -f FROM RCPT… < file` after removing the
 * X-Quarantine lines).  quarantine_read.h reads the head back.
 *
 * quarantine_write() writes dir/ID.eml: "X-Quarantine-*" header lines (time,
 * client, HELO, sender, each recipient, reason, deciding plugin) and then the
 * message as received.  It writes to a temporary name, fsyncs, then renames,
 * so a file that exists is complete: only then may the client be told 250.
 *
 * Diagnostics: -1 with errno; the path written goes to out_path.
 */
#ifndef SMTPGATE_QUARANTINE_H
#define SMTPGATE_QUARANTINE_H

#include <stddef.h>

#include "message/msg_view.h"

struct quarantine_facts {
    const char *id;
    const char *client_addr;
    const char *helo;
    const char *mail_from;
    const char *const *rcpt;
    size_t nrcpt;
    const char *reason;
    const char *decided_by;
};

int quarantine_write(const char *dir, const struct quarantine_facts *f, const struct msg_view *msg,
                     char *out_path, size_t out_size);

#endif
