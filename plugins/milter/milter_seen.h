/*
 * milter_seen - the header fields that milter instances added to one
 * transaction, so that a later milter in the chain is shown them.
 *
 * Postfix's cleanup server hands the message to one milter after the other
 * with the edits of the ones before applied: OpenDMARC reads the
 * Authentication-Results field OpenDKIM just added.  smtpgate's host applies
 * edits only when it sends the message upstream and shows every plugin the
 * message as received, so the milter plugin keeps, per transaction id, the
 * fields its own instances added (mc_seen_add), and each instance sends the
 * earlier instances' fields with the message (mc_seen_collect): those added
 * at the top before the received fields, the others after them.  Fields
 * added by plugins that are not milters are not in this view.
 *
 * An instance's entries go when its transaction ends (mc_seen_drop, from
 * the per-message data's free function, any thread): the store holds at
 * most what the transactions in flight added, each field bounded by the
 * host's own limits on edits.  Thread-safe.
 */
#ifndef SMTPGATE_MILTER_SEEN_H
#define SMTPGATE_MILTER_SEEN_H

#include <stdbool.h>
#include <stddef.h>

struct mc_seen_field {
    char *name, *value; /* value as the milter sent it: LF for folded lines */
    bool top;
};

int mc_seen_add(const char *tx, const void *owner, const char *name, const char *value, bool top);
void mc_seen_drop(const char *tx, const void *owner);
/* Copies of the fields other owners added to tx, in the order added; the
 * caller frees them with mc_seen_free.  *n is 0 when there are none. */
struct mc_seen_field *mc_seen_collect(const char *tx, const void *not_owner, size_t *n);
void mc_seen_free(struct mc_seen_field *f, size_t n);

#endif
