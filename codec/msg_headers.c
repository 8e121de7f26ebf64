/*
 * msg_headers - incremental RFC 5322 header-section parser, pure.
 *
 * msg_headers_feed() takes the decoded message in pieces of any size; the
 * fields, ->complete and ->body_offset come out the same for every split.
 * Only the current field is buffered (in ->line: its name, then its raw
 * value with the CRLF of each folded line), so memory stays within max_bytes
 * whatever the input.  A line is recognised as it arrives:
 *   - SP or HTAB first, after a field line: a continuation of that field;
 *   - a name (octets 33..126 but ':'), optional SP/HTAB, then ':': a new field.
 *     The blanks before the colon are RFC 5322 4.5.3 obsolete syntax that
 *     Postfix still takes as a header (is_header()); we must not see a body
 *     line where the MTA sees a header that a filter should have looked at;
 *   - CRLF alone: the end of the header section, the body follows it;
 *   - anything else: the first body line; the section ends before it.
 * LF without CR also ends a line, for BINARYMIME content from BDAT.
 *
 * Bounds: max_fields fields and max_bytes octets of names and values (line
 * endings not counted).  The field that would pass either bound is dropped,
 * ->truncated is set, and from there on nothing more is kept; the parser still
 * follows the lines to find where the body starts.
 *
 * Each field's name and value share one allocation ("name\0value\0"), owned by
 * the field's name pointer.  msg_headers_feed() and msg_headers_finish()
 * return -1 only when memory runs out.
 */
#include "codec/msg_headers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

enum mh_state {
    MH_FIRST,    /* line start, no field before it */
    MH_NEXT,     /* line start after a field line: maybe a continuation */
    MH_CR,       /* a line that began with CR: empty line or body */
    MH_NAME,     /* in a possible field name */
    MH_NAME_WSP, /* blanks after the name, before the colon */
    MH_VALUE,    /* in a field's value, up to and including its LF */
    MH_DONE,
};

void msg_headers_init(struct msg_headers *h, size_t max_bytes, size_t max_fields)
{
    memset(h, 0, sizeof(*h));
    h->max_bytes = max_bytes;
    h->max_fields = max_fields;
    h->state = MH_FIRST;
}

void msg_headers_free(struct msg_headers *h)
{
    for (size_t i = 0; i < h->count; i++)
        free(h->fields[i].name);
    free(h->fields);
    free(h->line);
    msg_headers_init(h, h->max_bytes, h->max_fields);
}

void msg_headers_reset(struct msg_headers *h)
{
    msg_headers_free(h);
}

static bool mh_is_name(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

static bool mh_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static void mh_truncate(struct msg_headers *h)
{
    h->truncated = true;
    h->line_len = 0;
}

static void mh_complete(struct msg_headers *h, uint64_t header_end, uint64_t body_offset)
{
    h->complete = true;
    h->header_end = header_end;
    h->body_offset = body_offset;
    h->line_len = 0;
    h->state = MH_DONE;
}

/* Buffer octets of the current field.  Two octets over the budget are let in
 * for the line ending that mh_end_field() strips. */
static int mh_keep(struct msg_headers *h, const char *p, size_t n)
{
    if (h->truncated || n == 0)
        return 0;
    size_t room = h->max_bytes - h->kept_bytes;
    size_t avail = room > SIZE_MAX - 2 ? SIZE_MAX : room + 2;
    if (n > avail || h->line_len > avail - n) {
        mh_truncate(h);
        return 0;
    }
    if (h->line_len + n > h->line_cap &&
        util_grow_first(&h->line, &h->line_cap, h->line_len + n, 1, 256) != 0)
        return -1;
    memcpy(h->line + h->line_len, p, n);
    h->line_len += n;
    return 0;
}

/* The field in ->line is over: store it, without its final line ending. */
static int mh_end_field(struct msg_headers *h, uint64_t field_end)
{
    if (h->truncated)
        return 0;
    size_t end = h->line_len;
    if (end > h->name_len && h->line[end - 1] == '\n')
        end--;
    if (end > h->name_len && h->line[end - 1] == '\r')
        end--;
    size_t value_len = end - h->name_len;
    h->line_len = 0;
    if (h->name_len + value_len > h->max_bytes - h->kept_bytes) {
        mh_truncate(h);
        return 0;
    }
    if (util_grow_first(&h->fields, &h->cap, h->count + 1, sizeof(*h->fields), 16) != 0)
        return -1;
    char *block = malloc(h->name_len + value_len + 2);
    if (block == NULL)
        return -1;
    memcpy(block, h->line, h->name_len);
    block[h->name_len] = '\0';
    memcpy(block + h->name_len + 1, h->line + h->name_len, value_len);
    block[h->name_len + 1 + value_len] = '\0';
    struct msg_header *f = &h->fields[h->count++];
    f->name = block;
    f->name_len = h->name_len;
    f->value = block + h->name_len + 1;
    f->value_len = value_len;
    f->start = h->field_start;
    f->end = field_end;
    h->kept_bytes += h->name_len + value_len;
    return 0;
}

/* A colon after a name: the line is a field. */
static void mh_begin_value(struct msg_headers *h)
{
    h->state = MH_VALUE;
    if (!h->truncated && h->count >= h->max_fields)
        mh_truncate(h);
}

int msg_headers_feed(struct msg_headers *h, const char *bytes, size_t len)
{
    if (h->complete)
        return 0;
    size_t i = 0;
    uint64_t base = h->consumed;
    h->consumed += len;

    while (i < len && !h->complete) {
        unsigned char c = (unsigned char)bytes[i];
        switch (h->state) {
        case MH_FIRST:
        case MH_NEXT:
            h->line_start = base + i;
            if (mh_is_blank(c)) {
                if (h->state == MH_NEXT)
                    h->state = MH_VALUE;
                else
                    mh_complete(h, h->line_start, h->line_start);
                break;
            }
            if (h->state == MH_NEXT && mh_end_field(h, h->line_start) < 0)
                return -1;
            if (c == '\n') {
                mh_complete(h, h->line_start, base + i + 1);
            } else if (c == '\r') {
                h->state = MH_CR;
                i++;
            } else if (mh_is_name(c)) {
                h->state = MH_NAME;
                h->field_start = h->line_start;
                h->name_len = 0;
                h->line_len = 0;
            } else {
                mh_complete(h, h->line_start, h->line_start);
            }
            break;

        case MH_CR:
            mh_complete(h, h->line_start, c == '\n' ? base + i + 1 : h->line_start);
            break;

        case MH_NAME: {
            size_t j = i;
            while (j < len && mh_is_name((unsigned char)bytes[j]))
                j++;
            if (mh_keep(h, bytes + i, j - i) < 0)
                return -1;
            h->name_len += j - i;
            i = j;
            if (i == len)
                break;
            if (bytes[i] == ':') {
                mh_begin_value(h);
                i++;
            } else if (mh_is_blank((unsigned char)bytes[i])) {
                h->state = MH_NAME_WSP;
                i++;
            } else {
                mh_complete(h, h->line_start, h->line_start);
            }
            break;
        }

        case MH_NAME_WSP:
            if (mh_is_blank(c)) {
                i++;
            } else if (c == ':') {
                mh_begin_value(h);
                i++;
            } else {
                mh_complete(h, h->line_start, h->line_start);
            }
            break;

        case MH_VALUE: {
            const char *lf = memchr(bytes + i, '\n', len - i);
            size_t end = lf != NULL ? (size_t)(lf - bytes) + 1 : len;
            if (mh_keep(h, bytes + i, end - i) < 0)
                return -1;
            i = end;
            if (lf != NULL)
                h->state = MH_NEXT;
            break;
        }

        default:
            return 0;
        }
    }
    return 0;
}

int msg_headers_finish(struct msg_headers *h)
{
    if (h->complete)
        return 0;
    switch (h->state) {
    case MH_NEXT:
    case MH_VALUE:
        if (mh_end_field(h, h->consumed) < 0)
            return -1;
        mh_complete(h, h->consumed, h->consumed);
        break;
    case MH_FIRST:
        mh_complete(h, h->consumed, h->consumed);
        break;
    default:
        /* A name without its colon, or a lone CR: that line is body. */
        mh_complete(h, h->line_start, h->line_start);
        break;
    }
    return 0;
}

const struct msg_header *msg_headers_find(const struct msg_headers *h, const char *name, size_t nth)
{
    if (name == NULL)
        return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < h->count; i++) {
        const struct msg_header *f = &h->fields[i];
        if (f->name_len == n && strncasecmp(f->name, name, n) == 0 && nth-- == 0)
            return f;
    }
    return NULL;
}
