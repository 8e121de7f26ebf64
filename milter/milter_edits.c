/*
 * milter_edits - chain edits to libmilter modification calls (see the header).
 *
 * libmilter's prototypes take char * for strings it only reads; the casts
 * below drop const for that reason alone.  Addresses go in angle brackets:
 * that is how the MTA stored them, and smfi_delrcpt matches the stored form.
 */
#include "milter/milter_edits.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/milter_text.h"
#include "message/msg_store.h"

#define MILTER_EDITS_BODY_PIECE 65536

static int milter_edits_header(SMFICTX *ctx, const struct chain_edit *e, bool leadspc)
{
    char *value = e->value ? milter_text_edit_value(e->value, leadspc) : NULL;
    if (e->value && !value)
        return MI_FAILURE;
    int idx = e->index > INT_MAX ? INT_MAX : (int)e->index;
    int rc = MI_FAILURE;
    switch (e->kind) {
    case EDIT_ADD_HEADER:
        rc = smfi_addheader(ctx, e->name, value);
        break;
    case EDIT_INSERT_HEADER:
        rc = smfi_insheader(ctx, idx, e->name, value);
        break;
    case EDIT_CHANGE_HEADER:
        rc = smfi_chgheader(ctx, e->name, idx, value);
        break;
    default:
        break;
    }
    free(value);
    return rc;
}

static int milter_edits_envelope(SMFICTX *ctx, const struct chain_edit *e)
{
    char *addr = milter_text_bracket(e->value ? e->value : "");
    if (!addr)
        return MI_FAILURE;
    int rc = MI_FAILURE;
    switch (e->kind) {
    case EDIT_CHANGE_FROM:
        rc = smfi_chgfrom(ctx, addr, e->params);
        break;
    case EDIT_ADD_RCPT:
        rc = e->params && *e->params ? smfi_addrcpt_par(ctx, addr, e->params)
                                     : smfi_addrcpt(ctx, addr);
        break;
    case EDIT_DEL_RCPT:
        rc = smfi_delrcpt(ctx, addr);
        break;
    default:
        break;
    }
    free(addr);
    return rc;
}

static int milter_edits_body(SMFICTX *ctx, struct msg_store *body)
{
    if (msg_store_flush(body) < 0)
        return MI_FAILURE;
    unsigned char *piece = malloc(MILTER_EDITS_BODY_PIECE);
    if (!piece)
        return MI_FAILURE;
    uint64_t off = 0, size = msg_store_size(body);
    int rc = MI_SUCCESS;
    while (rc == MI_SUCCESS && off < size) {
        ssize_t n = msg_store_read(body, off, piece, MILTER_EDITS_BODY_PIECE);
        if (n <= 0) {
            rc = MI_FAILURE;
            break;
        }
        rc = smfi_replacebody(ctx, piece, (int)n);
        off += (uint64_t)n;
    }
    /* An empty new body still has to replace the old one. */
    if (rc == MI_SUCCESS && size == 0)
        rc = smfi_replacebody(ctx, piece, 0);
    free(piece);
    return rc;
}

static const char *milter_edits_call(enum chain_edit_kind kind)
{
    switch (kind) {
    case EDIT_ADD_HEADER:
        return "smfi_addheader";
    case EDIT_INSERT_HEADER:
        return "smfi_insheader";
    case EDIT_CHANGE_HEADER:
        return "smfi_chgheader";
    case EDIT_CHANGE_FROM:
        return "smfi_chgfrom";
    case EDIT_ADD_RCPT:
        return "smfi_addrcpt_par";
    case EDIT_DEL_RCPT:
        return "smfi_delrcpt";
    }
    return "edit";
}

int milter_edits_apply(SMFICTX *ctx, const struct chain_tx_info *info, bool leadspc, char *failed,
                       size_t failed_size)
{
    for (size_t i = 0; i < info->nedits; i++) {
        const struct chain_edit *e = &info->edits[i];
        bool header = e->kind == EDIT_ADD_HEADER || e->kind == EDIT_INSERT_HEADER ||
                      e->kind == EDIT_CHANGE_HEADER;
        int rc = header ? milter_edits_header(ctx, e, leadspc) : milter_edits_envelope(ctx, e);
        if (rc != MI_SUCCESS) {
            snprintf(failed, failed_size, "%s %s", milter_edits_call(e->kind),
                     header ? (e->name ? e->name : "") : (e->value ? e->value : ""));
            return -1;
        }
    }
    if (info->new_body && milter_edits_body(ctx, info->new_body) != MI_SUCCESS) {
        snprintf(failed, failed_size, "smfi_replacebody");
        return -1;
    }
    return 0;
}
