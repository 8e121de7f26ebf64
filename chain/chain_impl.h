/*
 * chain_impl - what plugin_host.c (loading, configuration, the struct sg_host
 * table) and chain.c (running stages) share about a loaded chain.  Nothing
 * outside those two files includes this.
 */
#ifndef SMTPGATE_CHAIN_IMPL_H
#define SMTPGATE_CHAIN_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "chain/chain.h"
#include "util/metrics.h"

struct plugin_counter {
    struct plugin_counter *next;
    struct metrics_counter *counter;
    char name[];
};

struct plugin_inst {
    char *name; /* the section's title */
    char *path;
    void *dl;
    const struct sg_plugin *desc;
    void *instance; /* from init/reload */
    bool initialised;
    unsigned timeout_ms;
    enum sg_verdict failure_verdict;
    size_t index;
    /* counters this instance has used, found once then kept */
    pthread_mutex_t counters_lock;
    struct plugin_counter *counters;
    struct metrics_counter *verdicts[SG_PENDING + 1];
};

struct chain {
    atomic_uint refs;
    unsigned generation;
    size_t n;
    struct plugin_inst *plugins;
    unsigned stage_mask; /* SG_STAGE_BIT of every stage some plugin has */
};

/* A plugin's reply text (lines split by "\n") as wire lines joined by CRLF,
 * without the final CRLF, every line of code class cls; NULL if malformed. */
char *chain_reply_wire(const char *reply, char cls);

/* The plugin instance a ctx calls (chain.c owns the ctx layout). */
struct plugin_inst *chain_ctx_plugin(const struct sg_ctx *ctx);

/* The host function table every plugin gets (plugin_host.c). */
extern const struct sg_host plugin_host_table;

/* The callback of desc for stage, or NULL (chain.c). */
bool chain_plugin_has(const struct sg_plugin *desc, enum sg_stage stage);

/* Host functions implemented in chain.c, put in the table by plugin_host.c. */
void chain_host_log(const struct sg_ctx *ctx, enum sg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void chain_host_counter_add(const struct sg_ctx *ctx, const char *name, uint64_t delta);
const struct sg_conn_info *chain_host_conn(const struct sg_ctx *ctx);
const struct sg_envelope *chain_host_envelope(const struct sg_ctx *ctx);
enum sg_stage chain_host_stage(const struct sg_ctx *ctx);
size_t chain_host_header_count(const struct sg_ctx *ctx);
const struct sg_header *chain_host_header_get(const struct sg_ctx *ctx, size_t i);
uint64_t chain_host_message_size(const struct sg_ctx *ctx);
ssize_t chain_host_message_read(const struct sg_ctx *ctx, uint64_t offset, void *buf, size_t len);
uint64_t chain_host_body_offset(const struct sg_ctx *ctx);
void chain_host_set_conn_data(struct sg_ctx *ctx, void *data, void (*free_fn)(void *));
void *chain_host_conn_data(const struct sg_ctx *ctx);
void chain_host_set_msg_data(struct sg_ctx *ctx, void *data, void (*free_fn)(void *));
void *chain_host_msg_data(const struct sg_ctx *ctx);
int chain_host_set_reply(struct sg_ctx *ctx, const char *reply);
void chain_host_set_quarantine_reason(struct sg_ctx *ctx, const char *reason);
void chain_host_resolve(struct sg_ctx *ctx, enum sg_verdict verdict, const char *reply);
int chain_host_add_header(struct sg_ctx *ctx, const char *name, const char *value);
int chain_host_insert_header(struct sg_ctx *ctx, size_t index, const char *name, const char *value);
int chain_host_change_header(struct sg_ctx *ctx, const char *name, size_t nth, const char *value);
int chain_host_change_from(struct sg_ctx *ctx, const char *mailbox, const char *params);
int chain_host_add_rcpt(struct sg_ctx *ctx, const char *mailbox, const char *params);
int chain_host_del_rcpt(struct sg_ctx *ctx, const char *mailbox);
int chain_host_replace_body(struct sg_ctx *ctx, const void *bytes, size_t len);
void chain_host_tx_note(struct sg_ctx *ctx, const char *text);

/* The host table's configuration accessors (plugin_load.c, which owns the
 * sections plugins read). */
const char *plugin_load_opt_string(const struct sg_section *s, const char *key);
long long plugin_load_opt_int(const struct sg_section *s, const char *key);
double plugin_load_opt_float(const struct sg_section *s, const char *key);
bool plugin_load_opt_bool(const struct sg_section *s, const char *key);
size_t plugin_load_opt_list_size(const struct sg_section *s, const char *key);
const char *plugin_load_opt_list_item(const struct sg_section *s, const char *key, size_t i);
bool plugin_load_opt_is_set(const struct sg_section *s, const char *key);
const char *plugin_load_section_name(const struct sg_section *s);
void plugin_load_config_error(const struct sg_section *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Find (or make) the verdict counters of instance p, whose name is set
 * (plugin_host.c): smtpgate_plugin_NAME_verdict_VERDICT. */
void plugin_host_verdict_counters(struct plugin_inst *p);

/* Count a verdict of plugin p (chain.c calls it, plugin_host.c made the counters). */
void plugin_count_verdict(struct plugin_inst *p, enum sg_verdict v);
/* Log with the instance's name, outside any session. */
void plugin_log(const struct plugin_inst *p, enum sg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
