/*
 * msg_view - reading a message that is a sequence of store ranges.
 *
 * A read never spans more than one range per iteration; ranges of length 0
 * are skipped, so an empty header block or body costs nothing.
 */
#include "message/msg_view.h"

#include <string.h>

void msg_view_init(struct msg_view *v)
{
    memset(v, 0, sizeof(*v));
}

void msg_view_of_store(struct msg_view *v, struct msg_store *s)
{
    msg_view_init(v);
    msg_view_add(v, s, 0, msg_store_size(s));
}

int msg_view_add(struct msg_view *v, struct msg_store *s, uint64_t offset, uint64_t len)
{
    if (len == 0)
        return 0;
    if (v->n >= MSG_VIEW_MAX)
        return -1;
    v->range[v->n++] = (struct msg_view_range){.store = s, .offset = offset, .len = len};
    return 0;
}

uint64_t msg_view_size(const struct msg_view *v)
{
    uint64_t total = 0;
    for (size_t i = 0; i < v->n; i++)
        total += v->range[i].len;
    return total;
}

ssize_t msg_view_read(const struct msg_view *v, uint64_t offset, void *buf, size_t len)
{
    size_t done = 0;
    uint64_t base = 0;
    for (size_t i = 0; i < v->n && done < len; i++) {
        const struct msg_view_range *r = &v->range[i];
        uint64_t pos = offset + done;
        if (pos >= base + r->len) {
            base += r->len;
            continue;
        }
        uint64_t in_range = pos - base;
        uint64_t left = r->len - in_range;
        size_t want = len - done;
        if (want > left)
            want = (size_t)left;
        ssize_t n = msg_store_read(r->store, r->offset + in_range, (char *)buf + done, want);
        if (n < 0)
            return -1;
        if ((size_t)n < want) /* the store is shorter than the range said */
            return -1;
        done += (size_t)n;
        base += r->len;
    }
    return (ssize_t)done;
}

int msg_view_flush(const struct msg_view *v)
{
    for (size_t i = 0; i < v->n; i++)
        if (msg_store_flush(v->range[i].store) < 0)
            return -1;
    return 0;
}
