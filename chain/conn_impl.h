/*
 * conn_impl - one connection's walk through a chain, as the three files that
 * share it see it: chain_conn.c (its lifetime, facts and transaction),
 * chain.c (running stages: calls, verdicts, waiting) and host_api.c (the
 * functions plugins call with a ctx).  Nothing outside chain/ includes this.
 *
 * Each plugin has one struct sg_ctx per connection, reused call after call.
 * A call that does not finish at once (pending, or blocking and sent to the
 * work pool) keeps the ctx "out": the ctx holds a reference on the
 * connection, so everything a late plugin may still touch (facts, envelope,
 * message content, its private data) stays alive until it resolves, however
 * early the client went.  When the host stops waiting (timeout) while a ctx is
 * out, the ctx is left to its plugin and the connection gets a fresh one for
 * that plugin; the abandoned one frees itself when its resolve comes.
 *
 * Locking: a connection's state is touched by its front-end's thread only,
 * except the out/resolved hand-over of a ctx and the reference count, which
 * take the connection's mutex (uncontended: one plugin call at a time).
 */
#ifndef SMTPGATE_CHAIN_CONN_IMPL_H
#define SMTPGATE_CHAIN_CONN_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "chain/chain_types.h"
#include "chain/instance.h"
#include "chain/symbols.h"

#define CHAIN_BODY_CHUNK (64 * 1024)
enum ctx_state { CTX_IDLE, CTX_OUT, CTX_RESOLVED };

struct sg_ctx {
    struct chain_conn *conn;
    struct plugin_inst *plugin;
    enum sg_stage stage;
    enum ctx_state state;
    atomic_bool abandoned; /* the host gave up waiting; resolve frees it */
    bool loop_counted;     /* out on a shared loop: in chain_loop_calls() */
    enum sg_verdict verdict;
    char *reply; /* validated wire text, from set_reply or resolve */
    /* the call's arguments, owned: a call the host gave up on may still read them */
    char *arg;
    char *params;
    const struct sg_header *header;
    const void *chunk;
    size_t chunk_len;
};

struct plugin_slot {
    struct sg_ctx *ctx;
    void *conn_data;
    void (*conn_free)(void *);
    void *msg_data;
    void (*msg_free)(void *);
    uint64_t tx_ns; /* time spent in this transaction */
    char *note;     /* tx_note() for the transaction's log line */
    bool used_in_tx;
};

struct adopted {
    struct adopted *next;
    void *object;
    void (*free_fn)(void *);
};

struct chain_run {
    bool active;
    bool message;
    enum sg_stage stage; /* for a message run: the sub-stage of plugin `next` */
    size_t next;
    size_t hdr_i;
    uint64_t body_off;
    bool plugin_started; /* message run: plugin `next` has had a callback */
    char *arg;
    char *params;
    struct timespec call_started;
    bool waiting;
};

struct chain_conn {
    pthread_mutex_t lock;
    unsigned refs;
    unsigned outstanding; /* ctxs out, abandoned ones included */
    bool released;
    struct chain *chain;
    struct chain_front front;
    size_t spill_threshold;
    char *spool_dir;

    struct sg_conn_info info;
    char port_text[8];
    struct plugin_slot *slots;
    size_t accept_from;         /* connection: plugins from here on are skipped */
    enum sg_verdict conn_final; /* discard or quarantine for every message */
    bool connected;             /* the connect stage ran: close is owed */
    struct chain_symbols conn_syms; /* host->add_symbol, SG_SYMBOL_CONNECTION */
    struct chain_symbols tx_syms;   /* SG_SYMBOL_TRANSACTION: cleared with the transaction */

    /* transaction */
    bool in_tx;
    bool eom_ran;
    char *tx_id;
    char *mail_from;
    char *mail_params;
    char **rcpt;
    size_t nrcpt, rcpt_cap;
    struct sg_envelope env;
    size_t tx_accept_from;
    enum sg_verdict tx_final;
    char *quarantine_reason;
    const char *decided_by;
    enum sg_verdict decided_verdict;
    struct chain_edit *edits;
    size_t nedits, edits_cap;
    struct msg_store *new_body;
    bool body_last_cr; /* the replacement body so far ends in CR */
    struct chain_tx_info tx_info;
    const struct chain_content *content;
    struct chain_content content_copy;
    struct sg_header *hdr_view;
    size_t hdr_view_n;
    char *body_buf;

    struct chain_run run;
    struct adopted *adopted;
};

/* ---- chain_conn.c ---- */

/* strdup that passes NULL through. */
char *chain_strdup(const char *s);
/* *field becomes a copy of value (NULL: NULL); on no memory it stays. */
void chain_replace(char **field, const char *value);
/* Drop a reference; the last one runs close callbacks and frees it all. */
void chain_conn_unref(struct chain_conn *c);

/* ---- chain.c ---- */

/* Hand a ctx's verdict back to its connection, from any thread: what
 * host->resolve() does, and a blocking call's end on the work pool. */
void chain_ctx_done(struct sg_ctx *ctx, enum sg_verdict v, const char *reply);

#endif
