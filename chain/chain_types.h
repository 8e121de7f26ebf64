/*
 * chain_types - the values a front-end and the chain hand each other (a
 * stage's result, the edits, the message content, the notify hook), apart
 * from chain.h's functions so that chain/'s private headers can name them
 * without depending on the whole public interface.
 */
#ifndef SMTPGATE_CHAIN_TYPES_H
#define SMTPGATE_CHAIN_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpgate/plugin.h"

struct msg_store;
struct msg_headers;

enum chain_status { CHAIN_DONE, CHAIN_WAIT };

/* What the front-end does with a stage. */
enum chain_action {
    CHAIN_PASS,       /* go on (continue or accept) */
    CHAIN_REFUSE,     /* reply with res.reply (4xx or 5xx); at connect: refuse the session */
    CHAIN_DISCARD,    /* eom: the client gets 250, nothing goes upstream */
    CHAIN_QUARANTINE, /* eom: keep in the quarantine folder, the client gets 250 */
};

struct chain_result {
    enum chain_action action;
    char reply[1024]; /* for REFUSE: wire reply without the final CRLF ("\r\n" between lines) */
    const char *decided_by; /* plugin instance name, or NULL */
    enum sg_verdict verdict;
};

/* Edits collected at eom, in the order plugins made them. */
enum chain_edit_kind {
    EDIT_ADD_HEADER,    /* name, value */
    EDIT_INSERT_HEADER, /* index, name, value */
    EDIT_CHANGE_HEADER, /* name, index (1-based nth), value (NULL: delete) */
    EDIT_CHANGE_FROM,   /* value: mailbox, params: ESMTP parameters or NULL */
    EDIT_ADD_RCPT,      /* value: mailbox, params */
    EDIT_DEL_RCPT,      /* value: mailbox */
};

struct chain_edit {
    enum chain_edit_kind kind;
    size_t index;
    char *name;
    char *value;
    char *params;
};

/* The received message, as the front-end stored it.  The chain copies this
 * struct; the store and headers must live until the transaction ends (or be
 * handed to chain_adopt() when chain_busy()). */
struct chain_content {
    struct msg_store *store;
    struct msg_headers *headers;
};

/* Per-transaction outcome, for the front-end's log line and edits. */
struct chain_tx_info {
    const struct chain_edit *edits;
    size_t nedits;
    struct msg_store *new_body; /* replace_body, or NULL */
    const char *quarantine_reason;
};

struct event_base;

struct chain_front {
    void (*notify)(void *arg); /* any thread */
    void *arg;
    bool inline_blocking;
    /* The loop the front-end runs the connection on, handed to plugins by
     * host->event_loop(); base_outlives: it serves other connections after
     * this one (a worker's), rather than being this connection's own. */
    struct event_base *base;
    bool base_outlives;
};

#endif
