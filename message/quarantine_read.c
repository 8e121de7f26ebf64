/*
 * quarantine_read - the X-Quarantine lines of a quarantine file.
 *
 * The head is read twice: once to judge it and count the recipients, so that
 * their array is allocated once at its exact size, and once to fill it.
 */
#include "message/quarantine_read.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QH_PREFIX     "X-Quarantine-"
#define QH_PREFIX_LEN (sizeof(QH_PREFIX) - 1)

/* The head's lines in quarantine_write()'s order; QH_TO repeats. */
enum qh_step { QH_DATE, QH_CLIENT, QH_HELO, QH_FROM, QH_TO, QH_REASON, QH_FILTER, QH_DONE };
static const char *const qh_names[] = {"Date", "Client", "Helo", "Envelope-From",
                                       "Envelope-To", "Reason", "Filter"};

struct qh_line {
    const char *name;
    size_t name_len;
    struct quarantine_field value;
    size_t next; /* offset of the line after it */
};

enum qh_read { QH_LINE, QH_NOT_HEAD, QH_CUT };

/* The X-Quarantine line at off. */
static enum qh_read qh_line_at(const char *buf, size_t len, size_t off, struct qh_line *l)
{
    size_t rest = len - off;
    const char *start = buf + off;
    if (strncasecmp(start, QH_PREFIX, rest < QH_PREFIX_LEN ? rest : QH_PREFIX_LEN) != 0)
        return QH_NOT_HEAD;
    const char *nl = rest >= QH_PREFIX_LEN ? memchr(start, '\n', rest) : NULL;
    if (!nl)
        return QH_CUT;
    size_t line_len = (size_t)(nl - start);
    if (line_len > 0 && start[line_len - 1] == '\r')
        line_len--;
    if (line_len < QH_PREFIX_LEN)
        return QH_NOT_HEAD; /* "X-Quarantine" then the line's end */
    const char *end = start + line_len;
    const char *colon = memchr(start + QH_PREFIX_LEN, ':', line_len - QH_PREFIX_LEN);
    if (!colon)
        return QH_NOT_HEAD;
    l->name = start + QH_PREFIX_LEN;
    l->name_len = (size_t)(colon - l->name);
    const char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    l->value.p = v;
    l->value.len = (size_t)(end - v);
    l->next = off + (size_t)(nl - start) + 1;
    return QH_LINE;
}

static bool qh_name_is(const struct qh_line *l, enum qh_step step)
{
    size_t n = strlen(qh_names[step]);
    return l->name_len == n && strncasecmp(l->name, qh_names[step], n) == 0;
}

/* One pass over the head: the recipients' count, or each field stored into
 * out when it is not NULL (its rcpt array sized by the first pass). */
static enum quarantine_head_status qh_walk(const char *buf, size_t len, bool whole,
                                           struct quarantine_head *out, size_t *nrcpt,
                                           size_t *end)
{
    enum qh_step step = QH_DATE;
    size_t off = 0;
    *nrcpt = 0;
    while (step != QH_DONE) {
        struct qh_line l;
        enum qh_read r = off < len ? qh_line_at(buf, len, off, &l) : QH_CUT;
        if (r == QH_CUT && !whole)
            return QH_INCOMPLETE;
        if (r != QH_LINE)
            return QH_INVALID;
        /* After the first recipient, the next line is another one or Reason. */
        if (step == QH_TO && *nrcpt > 0 && !qh_name_is(&l, QH_TO))
            step = QH_REASON;
        if (!qh_name_is(&l, step))
            return QH_INVALID;
        if (out) {
            struct quarantine_field *f[] = {&out->date, &out->client, &out->helo, &out->from,
                                            NULL,       &out->reason, &out->filter};
            if (step == QH_TO)
                out->rcpt[*nrcpt] = l.value;
            else
                *f[step] = l.value;
        }
        if (step == QH_TO)
            (*nrcpt)++;
        else
            step++;
        off = l.next;
    }
    *end = off;
    return QH_OK;
}

enum quarantine_head_status quarantine_head_parse(const char *buf, size_t len, bool whole,
                                                  struct quarantine_head *out)
{
    memset(out, 0, sizeof(*out));
    size_t nrcpt, end;
    enum quarantine_head_status st = qh_walk(buf, len, whole, NULL, &nrcpt, &end);
    if (st != QH_OK)
        return st;
    out->rcpt = calloc(nrcpt, sizeof(*out->rcpt));
    if (!out->rcpt)
        return QH_NOMEM;
    qh_walk(buf, len, whole, out, &out->nrcpt, &out->message_offset);
    return QH_OK;
}

void quarantine_head_free(struct quarantine_head *h)
{
    free(h->rcpt);
    h->rcpt = NULL;
    h->nrcpt = 0;
}
