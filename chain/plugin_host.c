/*
 * plugin_host - the host side of the plugin ABI: the struct sg_host table
 * every plugin is handed, the chain's lifetime (references, freeing the
 * instances), and the per-instance metrics counters.
 *
 * The table's configuration accessors are plugin_load.c's (they read the
 * sections it loaded); the session-time functions are chain.c's.
 */
#include "chain/plugin_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain/chain_impl.h"
#include "util/log.h"

static const char *const verdict_names[] = {"continue", "accept",     "reject",  "tempfail",
                                            "discard",  "quarantine", "pending", NULL};

/* ---- the chain ---- */

static void chain_free_plugins(struct chain *ch)
{
    for (size_t i = ch->n; i-- > 0;) {
        struct plugin_inst *p = &ch->plugins[i];
        if (p->initialised && p->desc->fini)
            p->desc->fini(p->instance);
        while (p->counters) {
            struct plugin_counter *c = p->counters;
            p->counters = c->next;
            free(c);
        }
        pthread_mutex_destroy(&p->counters_lock);
        if (p->dl)
            dlclose(p->dl);
        free(p->name);
        free(p->path);
    }
    free(ch->plugins);
    ch->plugins = NULL;
    ch->n = 0;
}

struct chain *chain_ref(struct chain *ch)
{
    if (ch)
        atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return ch;
}

void chain_unref(struct chain *ch)
{
    if (!ch || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    chain_free_plugins(ch);
    free(ch);
}

size_t chain_size(const struct chain *ch)
{
    return ch ? ch->n : 0;
}

unsigned chain_generation(const struct chain *ch)
{
    return ch ? ch->generation : 0;
}

bool chain_wants(const struct chain *ch, enum sg_stage stage)
{
    return ch && (ch->stage_mask & SG_STAGE_BIT(stage));
}

/* "smtpgate_plugin_INSTANCE_WHAT" with every other octet made "_"; false when
 * it does not fit in out (no counter then: a cut name could be another's). */
static bool plugin_metric_name(char *out, size_t n, const char *instance, const char *what)
{
    int k = snprintf(out, n, "smtpgate_plugin_%s_%s", instance, what);
    if (k < 0 || (size_t)k >= n)
        return false;
    for (int i = 0; i < k; i++) {
        char c = out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            out[i] = '_';
    }
    return true;
}

void plugin_host_verdict_counters(struct plugin_inst *p)
{
    for (int v = SG_ACCEPT; v <= SG_QUARANTINE; v++) {
        char name[256], what[64]; /* what: "verdict_" and a name of verdict_names */
        snprintf(what, sizeof(what), "verdict_%s", verdict_names[v]);
        p->verdicts[v] =
            plugin_metric_name(name, sizeof(name), p->name, what) ? metrics_counter(name) : NULL;
    }
}

/* ---- logging outside sessions, counters ---- */

void plugin_log(const struct plugin_inst *p, enum sg_log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg((int)level, "plugin %s: %s", p->name, msg);
}

void plugin_count_verdict(struct plugin_inst *p, enum sg_verdict v)
{
    if (v >= SG_CONTINUE && v <= SG_QUARANTINE)
        metrics_add(p->verdicts[v], 1);
}

/* Exposed to chain.c through the table only. */
static void host_counter_for(struct plugin_inst *p, const char *name, uint64_t delta)
{
    pthread_mutex_lock(&p->counters_lock);
    struct plugin_counter *c = p->counters;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c) {
        size_t n = strlen(name);
        char metric[512];
        struct metrics_counter *m = plugin_metric_name(metric, sizeof(metric), p->name, name)
                                        ? metrics_counter(metric)
                                        : NULL;
        if (m && (c = malloc(sizeof(*c) + n + 1))) {
            memcpy(c->name, name, n + 1);
            c->counter = m;
            c->next = p->counters;
            p->counters = c;
        }
    }
    pthread_mutex_unlock(&p->counters_lock);
    if (c)
        metrics_add(c->counter, delta);
}

void chain_host_counter_add(const struct sg_ctx *ctx, const char *name, uint64_t delta)
{
    struct plugin_inst *p = ctx ? chain_ctx_plugin(ctx) : NULL;
    if (!p || !metrics_name_ok(name))
        return;
    host_counter_for(p, name, delta);
}

const struct sg_host plugin_host_table = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .opt_string = plugin_load_opt_string,
    .opt_int = plugin_load_opt_int,
    .opt_float = plugin_load_opt_float,
    .opt_bool = plugin_load_opt_bool,
    .opt_list_size = plugin_load_opt_list_size,
    .opt_list_item = plugin_load_opt_list_item,
    .opt_is_set = plugin_load_opt_is_set,
    .section_name = plugin_load_section_name,
    .config_error = plugin_load_config_error,
    .log = chain_host_log,
    .counter_add = chain_host_counter_add,
    .conn = chain_host_conn,
    .envelope = chain_host_envelope,
    .stage = chain_host_stage,
    .header_count = chain_host_header_count,
    .header_get = chain_host_header_get,
    .message_size = chain_host_message_size,
    .message_read = chain_host_message_read,
    .body_offset = chain_host_body_offset,
    .set_conn_data = chain_host_set_conn_data,
    .conn_data = chain_host_conn_data,
    .set_msg_data = chain_host_set_msg_data,
    .msg_data = chain_host_msg_data,
    .set_reply = chain_host_set_reply,
    .set_quarantine_reason = chain_host_set_quarantine_reason,
    .resolve = chain_host_resolve,
    .add_header = chain_host_add_header,
    .insert_header = chain_host_insert_header,
    .change_header = chain_host_change_header,
    .change_from = chain_host_change_from,
    .add_rcpt = chain_host_add_rcpt,
    .del_rcpt = chain_host_del_rcpt,
    .replace_body = chain_host_replace_body,
    .tx_note = chain_host_tx_note,
};
