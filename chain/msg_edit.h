/*
 * msg_edit - the message as it goes upstream after the filter chain's edits:
 * a new header section, the original body or a replacement, as a msg_view.
 *
 * msg_edit_apply() applies the header edits (add, insert at an index, change
 * or delete the nth field of a name) to the received header fields, in the
 * order the plugins made them, as a milter host does.  Unchanged fields are
 * copied octet for octet from the received message (the header parser
 * recorded where each one is); new and changed fields are written as
 * "Name: value" CRLF.  A change of a field that does not exist adds it.
 * When the parser kept only part of a very large header section, the rest is
 * passed on unchanged after the kept fields (and after added ones).
 *
 * The header section is written into hdr_out (a store of its own, in memory
 * as long as it is small); view then lists hdr_out, any untouched remainder
 * of the received header section, the empty line, and the body: new_body when
 * a plugin replaced it, else the received body.  Envelope edits are not this
 * module's business.
 *
 * msg_edit_envelope() works out the envelope after the edits: the sender
 * (changed or not) and the recipients (accepted ones, less removed, plus
 * added; removal matches case-insensitively, as mailbox domains do).
 *
 * Diagnostics: -1 on allocation or store read failure; the caller tempfails.
 */
#ifndef SMTPGATE_MSG_EDIT_H
#define SMTPGATE_MSG_EDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "chain/chain.h"
#include "codec/msg_headers.h"
#include "message/msg_store.h"
#include "message/msg_view.h"

bool msg_edit_has_header_edits(const struct chain_edit *edits, size_t n);
bool msg_edit_has_envelope_edits(const struct chain_edit *edits, size_t n);

int msg_edit_apply(const struct msg_headers *h, struct msg_store *received,
                   const struct chain_edit *edits, size_t nedits, struct msg_store *new_body,
                   struct msg_store *hdr_out, struct msg_view *view);

struct msg_rcpt {
    char *mailbox;
    char *params; /* ESMTP parameters, or NULL */
};

struct msg_envelope {
    char *mail_from;
    char *mail_params;
    struct msg_rcpt *rcpt;
    size_t nrcpt;
};

/* from/params and rcpt: the envelope as accepted; out is filled (free with
 * msg_envelope_free). */
int msg_edit_envelope(const char *mail_from, const char *mail_params, const struct msg_rcpt *rcpt,
                      size_t nrcpt, const struct chain_edit *edits, size_t nedits,
                      struct msg_envelope *out);
void msg_envelope_free(struct msg_envelope *e);

#endif
