/*
 * smtpgate/plugin.h - the contract between smtpgate and a filter plugin,
 * plugin ABI version 2.
 *
 * Read it top to bottom, as libmilter's mfapi.h: what a plugin exports (its
 * descriptor, its callbacks and its options) comes first, what the host
 * offers the plugin (struct sg_host) after.
 *
 * A plugin is a shared object that exports one symbol, SG_PLUGIN_SYMBOL
 * ("smtpgate_plugin"), a const struct sg_plugin.  The host refuses a plugin
 * whose abi_version is not the host's SG_PLUGIN_ABI_VERSION, naming the file
 * and both versions ("x.so is built for plugin ABI version 1; this smtpgate
 * has version 2").  Everything the plugin may ask of the host is in struct
 * sg_host, handed to init: a plugin links against nothing of smtpgate's.
 *
 * Life of a plugin instance (one per "plugin NAME { }" section of the config):
 *
 *   init(host, section, &instance)  once per loaded configuration, on the main
 *                                   thread; reads its options
 *   reload(host, section, previous, &instance)
 *                                   instead of init when the configuration is
 *                                   re-read (SIGHUP) and the plugin wants to
 *                                   carry state (a cache) over; previous stays
 *                                   in use by sessions still running
 *   fini(instance)                  when no session uses that configuration
 *                                   any more
 *
 * Callbacks, in the order an SMTP session produces them (a plugin sets only
 * those it needs; the host skips the others at no cost):
 *
 *   connect  helo  mail  rcpt*  data  header*  eoh  body*  eom   (abort)  close
 *
 * header/eoh/body/eom run after the client's end of data, before anything is
 * sent upstream; a verdict from any of them is the message's verdict.  abort
 * ends a transaction that did not reach eom (RSET, refusal, lost client);
 * close ends the connection.  Neither returns a verdict.
 *
 * Verdicts each stage allows.  Every verdict of enum sg_verdict is allowed
 * at every stage that returns one; what it does depends on the stage:
 *
 *   stage             accept skips the    reject/tempfail     discard/quarantine
 *                     later plugins for   refuses             decide
 *   connect           the connection      the session (554    every message of
 *                                         greeting / 421)     the connection
 *   helo              the connection      that HELO/EHLO      every message of
 *                                                             the connection
 *   mail, data        this message        MAIL, DATA/BDAT     this message, at
 *                                                             its end
 *   rcpt              this message        this recipient      this message
 *   header eoh
 *   body eom          this message        the message         this message
 *
 * pending is allowed everywhere: the verdict comes through host->resolve().
 * The host enforces the rest: a value that is not one of enum sg_verdict
 * (returned, or given to resolve(); SG_PENDING given to resolve() counts as
 * such) becomes the instance's failure_verdict, with a log line naming the
 * plugin; so does a verdict that does not come within the instance's
 * timeout.  A reply set with host->set_reply() goes with REJECT and TEMPFAIL
 * ("550 5.7.1 text", validated by the host: code and class must match the
 * verdict, the enhanced code must be well formed; otherwise the host's
 * default reply for the stage is used and a line logged).
 *
 * Configuration.  The keys of a plugin section that belong to the host, and
 * that no plugin may declare as an option (it is refused at load):
 *
 *   path             the shared object ("x.so": looked for in plugin_dir)
 *   timeout          seconds a verdict may take, 0.001 to 3600 (default 30)
 *   failure_verdict  tempfail | continue | accept | reject (default tempfail)
 *
 * Every other key is the plugin's, declared in its options table (struct
 * sg_option).  The host checks each value while the admin's line is known:
 * its type, its range (sg_option.min/max, for numbers) and the plugin's own
 * check function, in that order, and refuses the configuration with
 * "file:line: plugin NAME: 'key' is ..." before init runs.  init only sees
 * values that passed.
 *
 * Threads: callbacks of one connection never run at the same time; callbacks
 * of different connections do, on different threads, so an instance's shared
 * state needs its own locking.  A callback named in blocking_stages runs on
 * the host's worker pool (it may block, e.g. in a synchronous DNS library);
 * every other callback runs on the connection's event loop and must not block.
 * The pool is shared: one client (address) has at most a quarter of its
 * threads (plugin_threads, at least one) at once, and its further calls wait
 * while other clients' go ahead.  An instance that needs only some stages
 * says so with host->set_stages() so that the others never take a thread.
 * A callback may instead return SG_PENDING and later call host->resolve() from
 * any thread, exactly once, even after the host gave up waiting.
 *
 * Memory: strings the host hands over are valid for the duration of the call
 * (for facts: the whole connection).  Strings the plugin hands to the host are
 * copied before the host function returns.
 *
 * Growing the ABI: struct sg_host and struct sg_conn_info start with their
 * own size, set by the host.  A member added at the end of either in a later
 * host keeps ABI version 2; a plugin that wants such a member tests for it
 * with SG_HAS(ptr, member) before it reads it, and so runs on older hosts
 * too.  The structs the plugin lays out (sg_plugin, sg_option) change only
 * with a new ABI version.
 */
#ifndef SMTPGATE_PLUGIN_H
#define SMTPGATE_PLUGIN_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SG_PLUGIN_ABI_VERSION 2
#define SG_PLUGIN_SYMBOL      "smtpgate_plugin"

/* ==== what a plugin exports ==== */

enum sg_verdict {
    SG_CONTINUE = 0, /* no objection; the next plugin decides */
    SG_ACCEPT,       /* let this message (at connect/helo: this connection) through
                        without asking the plugins after this one */
    SG_REJECT,       /* 5xx: at rcpt, this recipient only */
    SG_TEMPFAIL,     /* 4xx: at rcpt, this recipient only */
    SG_DISCARD,      /* the client gets 250, the upstream never sees the message */
    SG_QUARANTINE,   /* the message is kept in the quarantine folder, the client gets 250 */
    SG_PENDING,      /* the verdict comes later through host->resolve() */
};

enum sg_stage {
    SG_STAGE_CONNECT = 0,
    SG_STAGE_HELO,
    SG_STAGE_MAIL,
    SG_STAGE_RCPT,
    SG_STAGE_DATA,
    SG_STAGE_HEADER,
    SG_STAGE_EOH,
    SG_STAGE_BODY,
    SG_STAGE_EOM,
    SG_STAGE__COUNT
};
#define SG_STAGE_BIT(stage) (1u << (stage))

/* Handles the host passes in; opaque to the plugin. */
struct sg_ctx;     /* one callback invocation: a connection, maybe a transaction */
struct sg_section; /* the plugin's configuration section */
struct sg_host;    /* the host's functions, below */
struct sg_header;  /* one header field, below */
struct event_base; /* libevent's loop: see sg_host.event_loop */

/* What a callback gets: ctx for host calls, the instance from init. */
typedef enum sg_verdict (*sg_conn_fn)(struct sg_ctx *ctx, void *instance);
typedef enum sg_verdict (*sg_arg_fn)(struct sg_ctx *ctx, void *instance, const char *arg,
                                     const char *params);
typedef enum sg_verdict (*sg_header_fn)(struct sg_ctx *ctx, void *instance,
                                        const struct sg_header *h);
typedef enum sg_verdict (*sg_body_fn)(struct sg_ctx *ctx, void *instance, const void *chunk,
                                      size_t len);
typedef void (*sg_end_fn)(struct sg_ctx *ctx, void *instance);

enum sg_opt_type { SG_OPT_STRING = 1, SG_OPT_INT, SG_OPT_FLOAT, SG_OPT_BOOL, SG_OPT_LIST };

/* One key of the plugin's configuration section.  The host checks, in this
 * order: the type (INT: a whole number, FLOAT: a finite number, BOOL: true,
 * false, yes, no, on or off, LIST: {"a", "b"}); the range; then check (may be
 * NULL), which sees each value (each item of a list) and returns NULL or the
 * reason it is wrong.
 *
 * Range: for SG_OPT_INT and SG_OPT_FLOAT, the value must be from min to max,
 * both included, when min < max; min = max = 0 is no range.  Use INFINITY or
 * -INFINITY for an open end ({1, INFINITY}: at least 1).  Integer bounds are
 * exact up to 2^53.  A range on another type, or a default outside the range,
 * makes the host refuse the plugin at load.  Out of range is refused as
 * "file:line: plugin NAME: 'key' is 17; it must be from 0 to 16". */
struct sg_option {
    const char *name;
    enum sg_opt_type type;
    const char
        *def; /* in the file's syntax: "10", "true", "\"text\"", "{\"a\",\"b\"}"; NULL: none */
    const char *(*check)(const char *value);
    double min, max;
};

struct sg_plugin {
    unsigned abi_version; /* SG_PLUGIN_ABI_VERSION; first in every ABI version */
    const char *name;
    const char *version;
    const char *description;
    const struct sg_option *options; /* terminated by a row whose name is NULL */
    unsigned blocking_stages;        /* SG_STAGE_BIT()s of callbacks that may block */

    int (*init)(const struct sg_host *host, const struct sg_section *sec, void **instance);
    int (*reload)(const struct sg_host *host, const struct sg_section *sec, void *previous,
                  void **instance);
    void (*fini)(void *instance);

    sg_conn_fn connect;
    sg_conn_fn helo; /* the name is in host->conn(ctx)->helo */
    sg_arg_fn mail;  /* arg: mailbox without <>, "" for the null sender */
    sg_arg_fn rcpt;
    sg_conn_fn data;
    sg_header_fn header;
    sg_conn_fn eoh;
    sg_body_fn body; /* raw body octets, in order, in chunks of any size */
    sg_conn_fn eom;
    sg_end_fn abort;
    sg_end_fn close;
};

#define SG_PLUGIN_EXPORT __attribute__((visibility("default")))

/* ==== what the host offers ==== */

/* Does the struct at ptr (a struct sg_host or struct sg_conn_info from the
 * host) have member?  True when the host that filled it knows the member:
 * test before reading a member added after the plugin's oldest host. */
#define SG_HAS(ptr, member)                                                                        \
    ((ptr) != NULL && (ptr)->size >= offsetof(__typeof__(*(ptr)), member) + sizeof((ptr)->member))

/* What the host knows of the client, valid for the whole connection. Fields
 * not known yet are NULL (helo before HELO, login before AUTH). */
struct sg_conn_info {
    size_t size; /* sizeof(struct sg_conn_info) of the host: see SG_HAS */
    const char *session_id;
    const char *client_addr; /* numeric, no brackets */
    unsigned client_port;
    const char *client_name; /* verified reverse name, or NULL */
    const char *helo;
    bool esmtp;
    const char *local_addr;
    unsigned local_port;
    const char *login; /* SASL login, or NULL */
    bool tls;
    const char *tls_version;          /* "TLSv1.3", or NULL */
    const char *tls_cipher;           /* or NULL */
    const char *tls_sni;              /* or NULL */
    const char *tls_peer_subject;     /* client certificate, or NULL */
    const char *tls_peer_fingerprint; /* SHA-256, hex with colons, or NULL */
    const char *host_name;            /* smtpgate's own hostname setting */
};

/* One transaction's envelope so far. */
struct sg_envelope {
    const char *tx_id;     /* session id + "." + transaction number */
    const char *mail_from; /* mailbox without <>; "" for the null sender */
    const char *mail_params;
    size_t nrcpt; /* recipients accepted so far (by the chain and the upstream) */
    const char *const *rcpt;
};

/* One header field as received: name without the colon, raw value after it
 * (may start with a space, may contain the CRLFs of folding). */
struct sg_header {
    const char *name;
    const char *value;
    size_t value_len;
};

enum sg_log_level { SG_LOG_ERR = 3, SG_LOG_WARNING = 4, SG_LOG_INFO = 6, SG_LOG_DEBUG = 7 };

/* A symbol a plugin added (sg_host.add_symbol). */
enum sg_symbol_scope { SG_SYMBOL_CONNECTION = 0, SG_SYMBOL_TRANSACTION = 1 };
struct sg_symbol {
    const char *name;
    double score;
    const char *detail; /* or NULL */
    const char *plugin; /* the instance that added it */
    enum sg_symbol_scope scope;
};

/* Every member within size is set (none is NULL). */
struct sg_host {
    size_t size; /* sizeof(struct sg_host) of the host: see SG_HAS */
    unsigned abi_version;

    /* ---- configuration (init and reload) ---- */
    const char *(*opt_string)(const struct sg_section *sec, const char *key);
    long long (*opt_int)(const struct sg_section *sec, const char *key);
    double (*opt_float)(const struct sg_section *sec, const char *key);
    bool (*opt_bool)(const struct sg_section *sec, const char *key);
    size_t (*opt_list_size)(const struct sg_section *sec, const char *key);
    const char *(*opt_list_item)(const struct sg_section *sec, const char *key, size_t i);
    /* true when the admin wrote the key (not just its default) */
    bool (*opt_is_set)(const struct sg_section *sec, const char *key);
    const char *(*section_name)(const struct sg_section *sec);
    /* "file:line: plugin NAME: key: message" (key may be NULL for the section);
     * init then returns -1 and the configuration is refused. */
    void (*config_error)(const struct sg_section *sec, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* ---- logging and metrics (any thread) ---- */
    /* ctx may be NULL (outside a session); with a ctx the line starts with the
     * session id. */
    void (*log)(const struct sg_ctx *ctx, enum sg_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Adds to the series smtpgate_plugin_events_total{plugin="<instance>",
     * event="<name>"} (created on first use; name: [a-zA-Z_][a-zA-Z0-9_]*, others
     * are ignored).  A family of its own: nothing a plugin counts can land on
     * one of the host's series.  The host already counts every verdict other
     * than continue (smtpgate_plugin_verdicts_total), its latency and its
     * timeouts: a plugin need not count those itself. */
    void (*counter_add)(const struct sg_ctx *ctx, const char *name, uint64_t delta);
    /* A short text (at most 600 octets kept) that smtpgate puts on the
     * transaction's log line as NAME="text"; a later call replaces it.  In
     * any callback of a transaction. */
    void (*tx_note)(struct sg_ctx *ctx, const char *text);

    /* ---- facts (in callbacks) ---- */
    const struct sg_conn_info *(*conn)(const struct sg_ctx *ctx);
    const struct sg_envelope *(*envelope)(const struct sg_ctx *ctx); /* NULL outside a tx */
    enum sg_stage (*stage)(const struct sg_ctx *ctx);

    /* Header fields as received (from eoh on; in header callbacks, those so far). */
    size_t (*header_count)(const struct sg_ctx *ctx);
    const struct sg_header *(*header_get)(const struct sg_ctx *ctx, size_t i);
    /* Octets of the whole message as received (headers, empty line, body),
     * CRLF line ends, at eoh/body/eom.  Returns octets copied, 0 at the end,
     * -1 on error. */
    uint64_t (*message_size)(const struct sg_ctx *ctx);
    ssize_t (*message_read)(const struct sg_ctx *ctx, uint64_t offset, void *buf, size_t len);
    /* Offset of the first body octet in the message. */
    uint64_t (*body_offset)(const struct sg_ctx *ctx);

    /* ---- private storage, freed by the host with free_fn (may be NULL) ---- */
    void (*set_conn_data)(struct sg_ctx *ctx, void *data, void (*free_fn)(void *));
    void *(*conn_data)(const struct sg_ctx *ctx);
    /* per transaction: freed when the transaction ends, whatever its end */
    void (*set_msg_data)(struct sg_ctx *ctx, void *data, void (*free_fn)(void *));
    void *(*msg_data)(const struct sg_ctx *ctx);

    /* ---- the verdict's reply, and later verdicts ---- */
    /* "550 5.7.1 text" (one line) or several lines separated by "\n". -1 if
     * malformed (nothing set). */
    int (*set_reply)(struct sg_ctx *ctx, const char *reply);
    /* Reason recorded with a QUARANTINE verdict. */
    void (*set_quarantine_reason)(struct sg_ctx *ctx, const char *reason);
    /* For a callback that returned SG_PENDING: the verdict, from any thread,
     * exactly once.  reply may be NULL.  ctx is invalid afterwards. */
    void (*resolve)(struct sg_ctx *ctx, enum sg_verdict verdict, const char *reply);

    /* ---- end-of-message edits (eom only; -1 elsewhere or on bad input) ---- */
    /* Appended after the last header field. value without the leading space
     * is sent as "Name: value"; folding CRLFs in value must be followed by
     * SP or HTAB. */
    int (*add_header)(struct sg_ctx *ctx, const char *name, const char *value);
    /* Inserted before the index-th field (0: at the top; past the end: last). */
    int (*insert_header)(struct sg_ctx *ctx, size_t index, const char *name, const char *value);
    /* The nth (1-based, as in milter) field of that name, case-insensitive,
     * gets value; value NULL deletes it.  No such field: nothing happens. */
    int (*change_header)(struct sg_ctx *ctx, const char *name, size_t nth, const char *value);
    int (*change_from)(struct sg_ctx *ctx, const char *mailbox, const char *params);
    int (*add_rcpt)(struct sg_ctx *ctx, const char *mailbox, const char *params);
    int (*del_rcpt)(struct sg_ctx *ctx, const char *mailbox);
    /* Replace the body (everything after the header section): the first call
     * starts the new body, later calls append; CRLF line ends. */
    int (*replace_body)(struct sg_ctx *ctx, const void *bytes, size_t len);

    /* ---- added within ABI 2: test each with SG_HAS(host, member) ---- */
    /* In init/reload: the stages (SG_STAGE_BIT()s) this instance has work
     * at.  The host neither calls nor sends to the work pool the callbacks of
     * the other stages, so a check an option turned off costs no pool
     * thread.  Not called: every stage the descriptor has a callback for. */
    void (*set_stages)(const struct sg_section *sec, unsigned stages);
    /* In init/reload: the instance's timeout (the host's "timeout" key), in
     * seconds: a plugin with a deadline of its own (a DNS timeout) compares. */
    double (*verdict_timeout)(const struct sg_section *sec);
    /* As config_error, but the configuration is kept: "file:line: plugin
     * NAME: key: warning: message", printed by smtpgate -t as well. */
    void (*config_warning)(const struct sg_section *sec, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* The connection's event loop (libevent 2.1), for a callback that waits
     * on the network without blocking a thread: it adds its own events to
     * this base (sockets, bufferevents, timers, an evdns_base), returns
     * SG_PENDING and calls resolve() from one of their callbacks.  Those
     * callbacks run on the loop's thread, between the connection's other
     * events and never at the same time as a callback of the same
     * connection; they must not block either.  The base is the same for
     * every callback of a connection.
     *
     * *outlives_connection (may be NULL) tells whether the base lives on
     * after the connection's close callback: true in smtpgate, where it is
     * a worker's loop that serves many connections for the daemon's life
     * (a pool of connections to a server may stay on it, keyed by base);
     * false in smtpgate-milter, where each connection has a base of its own
     * that is freed after close: nothing may stay on it then.
     *
     * A stopping smtpgate runs its loops on after the last connection until
     * every call still out on them is resolved (for at most 130 s), as it
     * waits for the work pool's calls: a plugin bounds its own waits and
     * resolves from them.
     *
     * NULL in a callback that runs on the work pool (blocking_stages): such
     * a callback blocks instead. */
    struct event_base *(*event_loop)(const struct sg_ctx *ctx, bool *outlives_connection);

    /* ---- symbols: one score for the message, from every plugin ---- */
    /* A named, scored symbol ("DNSBL_ZEN 3", "SPF_FAIL 2", "GREYLIST_PASS
     * 0"), as rspamd's modules add them: the rules plugin's thresholds act
     * on the total of every plugin's symbols, rules test whether one is
     * present (symbol(NAME)), and the symbols and the total are on the
     * transaction's log line ("symbols=SPF_FAIL(2.0),DNSBL_ZEN(3.0)
     * score=5.0") and in the rules plugin's report header.
     *
     * name: ASCII letters, digits and '_', not starting with a digit, at
     * most 128 octets (by custom upper case, PLUGIN_WHAT); score finite;
     * detail (may be
     * NULL) a short text kept with it (at most 200 octets).  SG_SYMBOL_
     * CONNECTION lasts for the connection (a client on a blocklist is on it
     * for every message), SG_SYMBOL_TRANSACTION until the transaction ends
     * (outside a transaction: refused).  Adding a name again (either scope)
     * replaces its score and detail.  At most 256 symbols a connection.
     * 0, or -1 when refused (bad name or score, no room, a call the host
     * gave up waiting for). */
    int (*add_symbol)(struct sg_ctx *ctx, enum sg_symbol_scope scope, const char *name,
                      double score, const char *detail);
    /* Is NAME present (connection or transaction)?  Its score in *score
     * (may be NULL). */
    bool (*symbol_score)(const struct sg_ctx *ctx, const char *name, double *score);
    /* The sum of every symbol's score present now. */
    double (*symbols_total)(const struct sg_ctx *ctx);
    /* Every symbol present now: the connection's first, then the
     * transaction's, each in the order added.  NULL past the end.  Valid
     * until the next add_symbol or the end of the callback. */
    size_t (*symbol_count)(const struct sg_ctx *ctx);
    const struct sg_symbol *(*symbol_get)(const struct sg_ctx *ctx, size_t i);

    /* A member added in a later host goes here, at the end: test it with
     * SG_HAS(host, member). */
};

#ifdef __cplusplus
}
#endif

#endif
