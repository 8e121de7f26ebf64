/*
 * milter_edits - carries out a transaction's end-of-message edits (the
 * filter chain's struct chain_tx_info) through libmilter's modification
 * calls, in the order the plugins made them.
 *
 *   EDIT_ADD_HEADER     smfi_addheader
 *   EDIT_INSERT_HEADER  smfi_insheader (index as the chain gives it)
 *   EDIT_CHANGE_HEADER  smfi_chgheader (nth of that name, 1-based; NULL value deletes)
 *   EDIT_CHANGE_FROM    smfi_chgfrom
 *   EDIT_ADD_RCPT       smfi_addrcpt_par (smfi_addrcpt without parameters)
 *   EDIT_DEL_RCPT       smfi_delrcpt
 *   new_body            smfi_replacebody, in pieces
 *
 * Only valid in the eom callback.  leadspc: SMFIP_HDR_LEADSPC is in force, so
 * header values carry their own blank after the colon.
 *
 * milter_edits_apply() returns 0, or -1 when an edit failed (the MTA did not
 * grant that action, or the connection broke); the caller then tempfails the
 * message rather than let it go out without the filters' edits.  *failed
 * names the edit ("smfi_addheader X-Spam") for the log line.
 */
#ifndef SMTPGATE_MILTER_EDITS_H
#define SMTPGATE_MILTER_EDITS_H

#include <libmilter/mfapi.h>
#include <stdbool.h>
#include <stddef.h>

#include "chain/chain.h"

int milter_edits_apply(SMFICTX *ctx, const struct chain_tx_info *info, bool leadspc, char *failed,
                       size_t failed_size);

#endif
