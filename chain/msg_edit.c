/*
 * msg_edit - header rewriting over the parser's field offsets.
 *
 * The header section becomes a list of entries, each either a received field
 * (an offset range in the received message) or a new one (name and value);
 * edits change that list; the list is then written out.  The list holds at
 * most the received fields plus one entry per edit, so it is bounded by the
 * parser's and the chain's own limits.
 */
#include "chain/msg_edit.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct edit_entry {
    const struct msg_header *received; /* NULL for a new field */
    const char *name;
    const char *value;
};

bool msg_edit_has_header_edits(const struct chain_edit *edits, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (edits[i].kind == EDIT_ADD_HEADER || edits[i].kind == EDIT_INSERT_HEADER ||
            edits[i].kind == EDIT_CHANGE_HEADER)
            return true;
    return false;
}

bool msg_edit_has_envelope_edits(const struct chain_edit *edits, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (edits[i].kind == EDIT_CHANGE_FROM || edits[i].kind == EDIT_ADD_RCPT ||
            edits[i].kind == EDIT_DEL_RCPT)
            return true;
    return false;
}

static const char *entry_name(const struct edit_entry *e)
{
    return e->received ? e->received->name : e->name;
}

static void entries_insert(struct edit_entry *list, size_t *n, size_t at, struct edit_entry e)
{
    if (at > *n)
        at = *n;
    memmove(&list[at + 1], &list[at], (*n - at) * sizeof(*list));
    list[at] = e;
    (*n)++;
}

static int store_copy(struct msg_store *out, struct msg_store *from, uint64_t off, uint64_t end)
{
    char buf[8192];
    while (off < end) {
        size_t want = end - off > sizeof(buf) ? sizeof(buf) : (size_t)(end - off);
        ssize_t n = msg_store_read(from, off, buf, want);
        if (n <= 0 || msg_store_append(out, buf, (size_t)n) < 0)
            return -1;
        off += (uint64_t)n;
    }
    return 0;
}

static int entry_write(struct msg_store *out, struct msg_store *received,
                       const struct edit_entry *e)
{
    if (e->received) {
        uint64_t end = e->received->end;
        if (store_copy(out, received, e->received->start, end) < 0)
            return -1;
        /* The last field of a message without an empty line may lack its CRLF. */
        if (end > e->received->start) {
            char last;
            if (msg_store_read(received, end - 1, &last, 1) == 1 && last != '\n')
                return msg_store_append(out, "\r\n", 2);
        }
        return 0;
    }
    bool blank = e->value[0] == ' ' || e->value[0] == '\t';
    if (msg_store_append(out, e->name, strlen(e->name)) < 0 ||
        msg_store_append(out, blank ? ":" : ": ", blank ? 1 : 2) < 0 ||
        msg_store_append(out, e->value, strlen(e->value)) < 0 ||
        msg_store_append(out, "\r\n", 2) < 0)
        return -1;
    return 0;
}

int msg_edit_apply(const struct msg_headers *h, struct msg_store *received,
                   const struct chain_edit *edits, size_t nedits, struct msg_store *new_body,
                   struct msg_store *hdr_out, struct msg_view *view)
{
    size_t cap = h->count + nedits + 1, n = 0;
    struct edit_entry *list = calloc(cap, sizeof(*list));
    if (!list)
        return -1;
    for (size_t i = 0; i < h->count; i++)
        list[n++] = (struct edit_entry){.received = &h->fields[i]};

    for (size_t i = 0; i < nedits; i++) {
        const struct chain_edit *e = &edits[i];
        struct edit_entry fresh = {.name = e->name, .value = e->value};
        switch (e->kind) {
        case EDIT_ADD_HEADER:
            list[n++] = fresh;
            break;
        case EDIT_INSERT_HEADER:
            entries_insert(list, &n, e->index, fresh);
            break;
        case EDIT_CHANGE_HEADER: {
            size_t seen = 0, at = n;
            for (size_t k = 0; k < n; k++) {
                if (strcasecmp(entry_name(&list[k]), e->name) == 0 && ++seen == e->index) {
                    at = k;
                    break;
                }
            }
            if (at == n) {
                if (e->value)
                    list[n++] = fresh;
            } else if (e->value) {
                list[at] = fresh;
            } else {
                memmove(&list[at], &list[at + 1], (n - at - 1) * sizeof(*list));
                n--;
            }
            break;
        }
        default:
            break;
        }
    }

    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++)
        rc = entry_write(hdr_out, received, &list[k]);
    free(list);
    if (rc < 0)
        return -1;

    /* What the parser did not keep follows the kept fields as it was
     * received; a message that had no empty line before its body gets one. */
    if (h->truncated) {
        uint64_t kept_end = h->count ? h->fields[h->count - 1].end : 0;
        if (store_copy(hdr_out, received, kept_end, h->header_end) < 0)
            return -1;
    }
    bool has_blank_line = h->body_offset > h->header_end;
    if (!has_blank_line && msg_store_append(hdr_out, "\r\n", 2) < 0)
        return -1;
    msg_view_init(view);
    if (msg_view_add(view, hdr_out, 0, msg_store_size(hdr_out)) < 0 ||
        msg_view_add(view, received, h->header_end, h->body_offset - h->header_end) < 0)
        return -1;
    if (new_body)
        return msg_view_add(view, new_body, 0, msg_store_size(new_body));
    return msg_view_add(view, received, h->body_offset, msg_store_size(received) - h->body_offset);
}

static int envelope_add(struct msg_envelope *out, const char *mailbox, const char *params)
{
    struct msg_rcpt *n = realloc(out->rcpt, (out->nrcpt + 1) * sizeof(*n));
    if (!n)
        return -1;
    out->rcpt = n;
    char *m = strdup(mailbox);
    char *p = params && *params ? strdup(params) : NULL;
    if (!m || (params && *params && !p)) {
        free(m);
        free(p);
        return -1;
    }
    out->rcpt[out->nrcpt++] = (struct msg_rcpt){m, p};
    return 0;
}

static void envelope_remove(struct msg_envelope *out, const char *mailbox)
{
    for (size_t i = 0; i < out->nrcpt;) {
        if (strcasecmp(out->rcpt[i].mailbox, mailbox) == 0) {
            free(out->rcpt[i].mailbox);
            free(out->rcpt[i].params);
            memmove(&out->rcpt[i], &out->rcpt[i + 1], (out->nrcpt - i - 1) * sizeof(*out->rcpt));
            out->nrcpt--;
        } else {
            i++;
        }
    }
}

int msg_edit_envelope(const char *mail_from, const char *mail_params, const struct msg_rcpt *rcpt,
                      size_t nrcpt, const struct chain_edit *edits, size_t nedits,
                      struct msg_envelope *out)
{
    memset(out, 0, sizeof(*out));
    const char *from = mail_from, *params = mail_params;
    for (size_t i = 0; i < nedits; i++) {
        if (edits[i].kind == EDIT_CHANGE_FROM) {
            from = edits[i].value;
            /* ESMTP parameters the client gave (SIZE, BODY, SMTPUTF8) still
             * describe the message unless the plugin says otherwise. */
            if (edits[i].params)
                params = edits[i].params;
        }
    }
    out->mail_from = strdup(from ? from : "");
    out->mail_params = params && *params ? strdup(params) : NULL;
    if (!out->mail_from || (params && *params && !out->mail_params))
        goto fail;
    for (size_t i = 0; i < nrcpt; i++)
        if (envelope_add(out, rcpt[i].mailbox, rcpt[i].params) < 0)
            goto fail;
    for (size_t i = 0; i < nedits; i++) {
        if (edits[i].kind == EDIT_DEL_RCPT)
            envelope_remove(out, edits[i].value);
        else if (edits[i].kind == EDIT_ADD_RCPT &&
                 envelope_add(out, edits[i].value, edits[i].params) < 0)
            goto fail;
    }
    return 0;
fail:
    msg_envelope_free(out);
    return -1;
}

void msg_envelope_free(struct msg_envelope *e)
{
    free(e->mail_from);
    free(e->mail_params);
    for (size_t i = 0; i < e->nrcpt; i++) {
        free(e->rcpt[i].mailbox);
        free(e->rcpt[i].params);
    }
    free(e->rcpt);
    memset(e, 0, sizeof(*e));
}
