/*
 * msg_view - a message as a short sequence of ranges of message stores, so
 * that an edited message (new header block, the original body, a replaced
 * body) can be streamed upstream without copying the unchanged parts.
 *
 * msg_view_add() appends the range [offset, offset+len) of store; a view
 * holds at most MSG_VIEW_MAX ranges (-1 past that).  msg_view_read() copies
 * by offset across ranges, like msg_store_read().  The view does not own the
 * stores.
 */
#ifndef SMTPGATE_MSG_VIEW_H
#define SMTPGATE_MSG_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "message/msg_store.h"

#define MSG_VIEW_MAX 8

struct msg_view {
    size_t n;
    struct msg_view_range {
        struct msg_store *store;
        uint64_t offset;
        uint64_t len;
    } range[MSG_VIEW_MAX];
};

void msg_view_init(struct msg_view *v);
/* The whole store. */
void msg_view_of_store(struct msg_view *v, struct msg_store *s);
int msg_view_add(struct msg_view *v, struct msg_store *s, uint64_t offset, uint64_t len);
uint64_t msg_view_size(const struct msg_view *v);
ssize_t msg_view_read(const struct msg_view *v, uint64_t offset, void *buf, size_t len);
/* Flush every store's write buffer; -1 on the first error. */
int msg_view_flush(const struct msg_view *v);

#endif
