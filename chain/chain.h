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

#include "chain/chain_types.h"
#include "codec/msg_headers.h"
#include "message/msg_store.h"
#include "smtpgate/plugin.h"

struct chain;
struct chain_conn;

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
/* Calls out on a front-end's loop that serves many connections
 * (base_outlives): a plugin's SG_PENDING from a callback that ran on the
 * loop, waiting on it through host->event_loop.  Their connections last
 * until they resolve, so a stopping daemon runs its loops until this is 0. */
unsigned chain_loop_calls(void);

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

/* "chain=N decided=P verdict=V filters=name:1.2ms,..." of the current
 * transaction, each plugin's tx_note as NAME="text", and, when plugins added
 * symbols, "symbols=A(1.0),B(2.0) score=3.0", for the transaction log line. */
void chain_tx_summary(const struct chain_conn *c, char *out, size_t out_size);
/* The same facts one by one, for the verdict log: the chain's generation,
 * the deciding plugin (NULL when none) and its verdict's name. */
void chain_tx_decision(const struct chain_conn *c, unsigned *generation, const char **decided_by,
                       const char **verdict);
/* The symbols plugins added (host->add_symbol), the connection's then the
 * transaction's, and their total: for the verdict log. */
size_t chain_symbol_count(const struct chain_conn *c);
const struct sg_symbol *chain_symbol_get(const struct chain_conn *c, size_t i);
double chain_symbols_total(const struct chain_conn *c);
/* smtpgate_symbols_total{symbol}: register the family (HELP, TYPE, the
 * "(other)" series at 0) at start; count the transaction's symbols, each
 * once, when it ends (symbol_metrics.c). */
void chain_symbol_metrics_register(void);
void chain_symbol_metrics_count(const struct chain_conn *c);
/* Plugin i of the chain (0, 1, ... until false): its name and, when it took
 * part in the transaction, *ms its time (else *ms < 0). */
bool chain_tx_plugin_time(const struct chain_conn *c, size_t i, const char **name, double *ms);

#endif
