/*
 * msg_store - where a message's octets live between end of data and the
 * upstream's final reply.
 *
 * Memory up to spill_threshold octets; past that, everything moves to a file
 * in spool_dir (created with mkstemp and unlinked at once, so a crash leaves
 * nothing behind and no other process can open it) and later appends go to the
 * file through a write buffer.  Reading is by offset, for streaming the message
 * upstream in large pieces without loading a spilled message into memory.
 *
 * Diagnostics: -1 with errno on I/O failure; the caller answers 451 4.3.0.
 */
#ifndef SMTPGATE_MSG_STORE_H
#define SMTPGATE_MSG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct msg_store;

struct msg_store *msg_store_new(size_t spill_threshold, const char *spool_dir);
void msg_store_free(struct msg_store *s);

/* Drop the content (closes a spill file), ready for the next message. */
void msg_store_reset(struct msg_store *s);

int msg_store_append(struct msg_store *s, const void *bytes, size_t len);

/* Flush buffered writes; call before reading a spilled store. */
int msg_store_flush(struct msg_store *s);

uint64_t msg_store_size(const struct msg_store *s);
bool msg_store_spilled(const struct msg_store *s);

/* Copy up to len octets from offset into buf.  Returns octets copied (0 at end),
 * -1 on error. */
ssize_t msg_store_read(struct msg_store *s, uint64_t offset, void *buf, size_t len);

/* The octets from offset on, where they are in memory (not spilled): a
 * pointer into the store valid until the next append or reset, and how many
 * follow; NULL when spilled (read with msg_store_read). */
const char *msg_store_peek(const struct msg_store *s, uint64_t offset, size_t *len);

/* Adapter with the data_sink_fn signature: ctx is a struct msg_store *. */
int msg_store_sink(void *ctx, const char *bytes, size_t len);

#endif
