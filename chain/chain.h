/*
 * chain - runs the plugin filter chain for one connection, for any front-end
 * (the proxy's session, the libmilter front-end).
 *
 * A struct chain is the ordered list of plugin instances of one loaded
 * configuration (chain/loader.c builds it; the config holds it).  A struct
 * chain_conn is one connection's walk through it: the connection facts, the
 * plugins' private data, the current transaction's envelope and edits.
 *
 * Stages run one at a time per connection:
 *
 *   chain_run(c, stage, arg, params, &res)   connect, helo, mail, rcpt, data
 *   chain_run_message(c, content, &res)      header* eoh body* eom, per plugin
 *
 * Each returns CHAIN_DONE with the stage's result in res, or CHAIN_WAIT when a
 * plugin's verdict is not there yet (it returned pending, or its callback is
 * blocking and runs on the work pool).  Then the front-end's notify function
 * is called, from any thread, once the connection can go on; the front-end
 * calls chain_resume() on its own thread, which returns DONE or WAIT again.
 * The notification may come before chain_run() has even returned WAIT: a
 * front-end checks chain_resume() before it sleeps, and calls it only while
 * a run of its own is waiting.  notify runs under the connection's lock:
 * it must only signal (event_active, a condition variable whose mutex the
 * front-end never holds while it calls chain functions), never call back.
 * chain_wait_ms() is how long the plugin being waited for may take; when it
 * has passed, chain_expire() makes its configured failure verdict the verdict.
 *
 * A front-end that runs each connection on a thread of its own (libmilter)
 * sets inline_blocking: blocking callbacks then run on the calling thread.
 *
 * Transactions: chain_tx_begin() at MAIL (before the mail stage), and
 * chain_tx_end() when the transaction is over, whatever its end (abort is
 * sent to the plugins unless eom ran).  chain_rcpt_accepted() records a
 * recipient the upstream accepted (plugins see accepted recipients only).
 *
 * Ending: chain_conn_release() is the front-end letting go; plugins' close
 * callbacks and private data frees run once no plugin call is in flight,
 * possibly on another thread.  Objects handed to chain_adopt() are freed then
 * too (message content a pending plugin may still read).
 */
#ifndef SMTPGATE_CHAIN_H
#define SMTPGATE_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/msg_headers.h"
#include "message/msg_store.h"
#include "smtpgate/plugin.h"

struct chain;
struct chain_conn;

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

struct chain_front {
    void (*notify)(void *arg); /* any thread */
    void *arg;
    bool inline_blocking;
};

/* ---- the chain itself (built by chain/loader.c, see plugin_host.h) ---- */
struct chain *chain_ref(struct chain *ch);
void chain_unref(struct chain *ch);
size_t chain_size(const struct chain *ch);
unsigned chain_generation(const struct chain *ch);
/* Does any plugin have a callback for this stage? */
bool chain_wants(const struct chain *ch, enum sg_stage stage);

/* ---- a connection ---- */
/* info's strings are copied.  ch may be NULL (no plugins): every stage passes. */
struct chain_conn *chain_conn_new(struct chain *ch, const struct sg_conn_info *info,
                                  const struct chain_front *front, size_t spill_threshold,
                                  const char *spool_dir);
void chain_conn_release(struct chain_conn *c);
void chain_adopt(struct chain_conn *c, void *object, void (*free_fn)(void *));
/* A plugin call is out (maybe one the host gave up on): what it can reach must
 * not be freed or reused now, but adopted. */
bool chain_busy(const struct chain_conn *c);

/* Facts learned later (HELO, AUTH, TLS): NULL keeps the old value, but for
 * the login, which NULL forgets (STARTTLS starts the session over). */
void chain_set_helo(struct chain_conn *c, const char *helo, bool esmtp);
void chain_set_login(struct chain_conn *c, const char *login);
void chain_set_tls(struct chain_conn *c, const char *version, const char *cipher, const char *sni,
                   const char *peer_subject, const char *peer_fingerprint);
const struct sg_conn_info *chain_info(const struct chain_conn *c);

void chain_tx_begin(struct chain_conn *c, const char *tx_id);
void chain_tx_set_mail(struct chain_conn *c, const char *mailbox, const char *params);
void chain_rcpt_accepted(struct chain_conn *c, const char *mailbox);
void chain_tx_end(struct chain_conn *c);
const struct chain_tx_info *chain_tx_info(const struct chain_conn *c);

enum chain_status chain_run(struct chain_conn *c, enum sg_stage stage, const char *arg,
                            const char *params, struct chain_result *res);
enum chain_status chain_run_message(struct chain_conn *c, const struct chain_content *content,
                                    struct chain_result *res);
enum chain_status chain_resume(struct chain_conn *c, struct chain_result *res);
unsigned chain_wait_ms(const struct chain_conn *c);
void chain_expire(struct chain_conn *c);

/* "name=1.2ms name=0.1ms" of the current transaction's plugin times, and the
 * deciding plugin, for the transaction log line. */
void chain_tx_summary(const struct chain_conn *c, char *out, size_t out_size);

#endif
