/*
 * host_api - the struct sg_host table every plugin gets, and the functions
 * it points to (plugin.h states what each does for the plugin).
 *
 * Three groups: the configuration functions init and reload call with a
 * struct sg_section (values and their lines are plugin_conf's); the session
 * functions callbacks call with a ctx, which read and write the connection's
 * state (conn_impl.h); and resolve(), which hands a late verdict to the
 * engine (chain.c).  Nothing here calls a plugin.
 *
 * A ctx the host gave up waiting for (abandoned) is good for resolve() only:
 * every function that would change the connection refuses it (returns -1 or
 * does nothing), as the connection may have moved on to another transaction.
 * Edits are validated here, where the plugin's input arrives: header names
 * and values (no control octets, folding as CRLF + blank only), mailboxes and
 * parameters, at most CHAIN_MAX_EDITS per transaction.
 */
#include "chain/host_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "chain/conn_impl.h"
#include "chain/instance.h"
#include "chain/plugin_conf.h"
#include "chain/reply.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/metrics.h"

#define CHAIN_MAX_EDITS       10000
#define CHAIN_MAX_HEADER_EDIT 8192

/* ---- configuration (init and reload) ---- */

static const char *host_opt_string(const struct sg_section *s, const char *key)
{
    const struct plugin_value *v = plugin_conf_value(s, key);
    const struct sg_option *o = plugin_conf_option(s->loaded->desc, key);
    if (!v || !o || o->type == SG_OPT_LIST || v->nitems == 0)
        return NULL;
    return v->items[v->nitems - 1];
}

static long long host_opt_int(const struct sg_section *s, const char *key)
{
    const char *v = host_opt_string(s, key);
    return v ? strtoll(v, NULL, 0) : 0;
}

static double host_opt_float(const struct sg_section *s, const char *key)
{
    const char *v = host_opt_string(s, key);
    return v ? strtod(v, NULL) : 0.0;
}

static bool host_opt_bool(const struct sg_section *s, const char *key)
{
    const char *v = host_opt_string(s, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0);
}

static size_t host_opt_list_size(const struct sg_section *s, const char *key)
{
    const struct plugin_value *v = plugin_conf_value(s, key);
    const struct sg_option *o = plugin_conf_option(s->loaded->desc, key);
    if (!v || !o || o->type != SG_OPT_LIST)
        return 0;
    return v->nitems;
}

static const char *host_opt_list_item(const struct sg_section *s, const char *key, size_t i)
{
    if (i >= host_opt_list_size(s, key))
        return NULL;
    return plugin_conf_value(s, key)->items[i];
}

static bool host_opt_is_set(const struct sg_section *s, const char *key)
{
    return plugin_conf_option(s->loaded->desc, key) && plugin_conf_has(s, key);
}

static const char *host_section_name(const struct sg_section *s)
{
    return s->loaded->sec->name;
}

/* "file:line: plugin NAME: key: text", at the line of key (or of the section). */
static void host_config_report(int level, const char *what, const struct sg_section *s,
                               const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void host_config_report(int level, const char *what, const struct sg_section *s,
                               const char *key, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const char *source;
    int line;
    plugin_conf_where(s->loaded, key, &source, &line);
    log_msg(level, "%s:%d: plugin %s: %s%s%s%s", source, line, s->loaded->sec->name, key ? key : "",
            key ? ": " : "", what, msg);
}

static void host_config_error(const struct sg_section *s, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_config_report(LOG_ERR, "", s, key, fmt, ap);
    va_end(ap);
}

static void host_config_warning(const struct sg_section *s, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_config_report(LOG_WARNING, "warning: ", s, key, fmt, ap);
    va_end(ap);
}

static void host_set_stages(const struct sg_section *s, unsigned stages)
{
    if (s->skipped)
        *s->skipped = ~stages;
}

static double host_verdict_timeout(const struct sg_section *s)
{
    return s->timeout_ms / 1000.0;
}

/* ---- session functions (callbacks) ---- */

static void host_log(const struct sg_ctx *ctx, enum sg_log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int prio = level == SG_LOG_ERR       ? LOG_ERR
               : level == SG_LOG_WARNING ? LOG_WARNING
               : level == SG_LOG_DEBUG   ? LOG_DEBUG
                                         : LOG_INFO;
    if (prio == LOG_DEBUG && !log_verbose())
        return;
    /* A call the host gave up on: the client already had the failure
     * verdict, whatever the plugin now says it does. */
    if (ctx && atomic_load(&ctx->abandoned))
        log_msg(prio, "%s: plugin %s: after its timeout, not applied: %s",
                ctx->conn->info.session_id, ctx->plugin->name, msg);
    else if (ctx)
        log_msg(prio, "%s: plugin %s: %s", ctx->conn->info.session_id, ctx->plugin->name, msg);
    else
        log_msg(prio, "plugin: %s", msg);
}

static void host_counter_add(const struct sg_ctx *ctx, const char *name, uint64_t delta)
{
    if (!ctx || !metrics_name_ok(name))
        return;
    plugin_counter_add(ctx->plugin, name, delta);
}

static const struct sg_conn_info *host_conn(const struct sg_ctx *ctx)
{
    return &ctx->conn->info;
}

static const struct sg_envelope *host_envelope(const struct sg_ctx *ctx)
{
    struct chain_conn *c = ctx->conn;
    if (!c->in_tx)
        return NULL;
    c->env.tx_id = c->tx_id ? c->tx_id : "";
    c->env.mail_from = c->mail_from ? c->mail_from : "";
    c->env.mail_params = c->mail_params ? c->mail_params : "";
    c->env.nrcpt = c->nrcpt;
    c->env.rcpt = (const char *const *)c->rcpt;
    return &c->env;
}

static enum sg_stage host_stage(const struct sg_ctx *ctx)
{
    return ctx->stage;
}

static size_t host_header_count(const struct sg_ctx *ctx)
{
    const struct chain_conn *c = ctx->conn;
    if (ctx->stage == SG_STAGE_HEADER)
        return c->run.hdr_i + 1;
    return ctx->stage > SG_STAGE_HEADER ? c->hdr_view_n : 0;
}

static const struct sg_header *host_header_get(const struct sg_ctx *ctx, size_t i)
{
    return i < host_header_count(ctx) ? &ctx->conn->hdr_view[i] : NULL;
}

static uint64_t host_message_size(const struct sg_ctx *ctx)
{
    const struct chain_conn *c = ctx->conn;
    return ctx->stage >= SG_STAGE_HEADER && c->content && c->content->store
               ? msg_store_size(c->content->store)
               : 0;
}

static ssize_t host_message_read(const struct sg_ctx *ctx, uint64_t offset, void *buf, size_t len)
{
    const struct chain_conn *c = ctx->conn;
    if (ctx->stage < SG_STAGE_HEADER || !c->content || !c->content->store ||
        atomic_load(&((struct sg_ctx *)ctx)->abandoned))
        return -1;
    if (offset >= msg_store_size(c->content->store))
        return 0;
    return msg_store_read(c->content->store, offset, buf, len);
}

static uint64_t host_body_offset(const struct sg_ctx *ctx)
{
    const struct chain_conn *c = ctx->conn;
    return c->content && c->content->headers ? c->content->headers->body_offset : 0;
}

static struct plugin_slot *host_slot(const struct sg_ctx *ctx)
{
    return &ctx->conn->slots[ctx->plugin->index];
}

static void host_set_conn_data(struct sg_ctx *ctx, void *data, void (*free_fn)(void *))
{
    struct plugin_slot *s = host_slot(ctx);
    if (s->conn_free && s->conn_data && s->conn_data != data)
        s->conn_free(s->conn_data);
    s->conn_data = data;
    s->conn_free = free_fn;
}

static void *host_conn_data(const struct sg_ctx *ctx)
{
    return host_slot(ctx)->conn_data;
}

static void host_set_msg_data(struct sg_ctx *ctx, void *data, void (*free_fn)(void *))
{
    struct plugin_slot *s = host_slot(ctx);
    if (s->msg_free && s->msg_data && s->msg_data != data)
        s->msg_free(s->msg_data);
    s->msg_data = data;
    s->msg_free = free_fn;
}

static void *host_msg_data(const struct sg_ctx *ctx)
{
    return host_slot(ctx)->msg_data;
}

static int host_set_reply(struct sg_ctx *ctx, const char *reply)
{
    if (atomic_load(&ctx->abandoned) || !reply || (reply[0] != '4' && reply[0] != '5'))
        return -1;
    char *wire = chain_reply_wire(reply, reply[0]);
    if (!wire)
        return -1;
    free(ctx->reply);
    ctx->reply = wire;
    return 0;
}

static void host_set_quarantine_reason(struct sg_ctx *ctx, const char *reason)
{
    if (!atomic_load(&ctx->abandoned))
        chain_replace(&ctx->conn->quarantine_reason, reason);
}

static void host_resolve(struct sg_ctx *ctx, enum sg_verdict verdict, const char *reply)
{
    if (!ctx)
        return;
    if (verdict == SG_PENDING)
        verdict = SG_TEMPFAIL + 100; /* not a verdict: becomes the failure verdict */
    chain_ctx_done(ctx, verdict, reply);
}

static struct event_base *host_event_loop(const struct sg_ctx *ctx, bool *outlives_connection)
{
    const struct chain_conn *c = ctx->conn;
    /* A callback on the work pool is on a thread that is not the loop's:
     * an event added from there would race the loop's own callbacks. */
    bool on_pool = (ctx->plugin->desc->blocking_stages & SG_STAGE_BIT(ctx->stage)) != 0 &&
                   !c->front.inline_blocking;
    if (outlives_connection)
        *outlives_connection = c->front.base_outlives;
    return on_pool ? NULL : c->front.base;
}

/* ---- edits ---- */

static bool host_header_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 998)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 33 || (unsigned char)name[i] > 126 || name[i] == ':')
            return false;
    return true;
}

/* Folding only as CRLF followed by a blank; no other control octets but tab. */
static bool host_header_value_ok(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n > CHAIN_MAX_HEADER_EDIT)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '\r') {
            if (v[i + 1] != '\n' || (v[i + 2] != ' ' && v[i + 2] != '\t'))
                return false;
            i++;
        } else if (ch == '\n' || (ch < 32 && ch != '\t') || ch == 127) {
            return false;
        }
    }
    return true;
}

static bool host_mailbox_ok(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    if (n > 512)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)m[i] <= 32 || m[i] == '<' || m[i] == '>')
            return false;
    return true;
}

static bool host_params_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n > 400)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 32 || p[i] == 127)
            return false;
    return true;
}

static int host_add_edit(struct sg_ctx *ctx, enum chain_edit_kind kind, size_t index,
                         const char *name, const char *value, const char *params)
{
    struct chain_conn *c = ctx->conn;
    if (ctx->stage != SG_STAGE_EOM || !c->in_tx || c->nedits >= CHAIN_MAX_EDITS ||
        atomic_load(&ctx->abandoned))
        return -1;
    if (util_grow(&c->edits, &c->edits_cap, c->nedits + 1, sizeof(*c->edits)) != 0)
        return -1;
    struct chain_edit e = {.kind = kind, .index = index};
    e.name = chain_strdup(name);
    e.value = chain_strdup(value);
    e.params = chain_strdup(params);
    if ((name && !e.name) || (value && !e.value) || (params && !e.params)) {
        free(e.name);
        free(e.value);
        free(e.params);
        return -1;
    }
    c->edits[c->nedits++] = e;
    return 0;
}

static int host_add_header(struct sg_ctx *ctx, const char *name, const char *value)
{
    if (!host_header_name_ok(name) || !value || !host_header_value_ok(value))
        return -1;
    return host_add_edit(ctx, EDIT_ADD_HEADER, 0, name, value, NULL);
}

static int host_insert_header(struct sg_ctx *ctx, size_t index, const char *name, const char *value)
{
    if (!host_header_name_ok(name) || !value || !host_header_value_ok(value))
        return -1;
    return host_add_edit(ctx, EDIT_INSERT_HEADER, index, name, value, NULL);
}

static int host_change_header(struct sg_ctx *ctx, const char *name, size_t nth, const char *value)
{
    if (!host_header_name_ok(name) || nth == 0 || (value && !host_header_value_ok(value)))
        return -1;
    return host_add_edit(ctx, EDIT_CHANGE_HEADER, nth, name, value, NULL);
}

static int host_change_from(struct sg_ctx *ctx, const char *mailbox, const char *params)
{
    if (!mailbox || !host_mailbox_ok(mailbox) || !host_params_ok(params))
        return -1;
    return host_add_edit(ctx, EDIT_CHANGE_FROM, 0, NULL, mailbox, params);
}

static int host_add_rcpt(struct sg_ctx *ctx, const char *mailbox, const char *params)
{
    if (!mailbox || !*mailbox || !host_mailbox_ok(mailbox) || !host_params_ok(params))
        return -1;
    return host_add_edit(ctx, EDIT_ADD_RCPT, 0, NULL, mailbox, params);
}

static int host_del_rcpt(struct sg_ctx *ctx, const char *mailbox)
{
    if (!mailbox || !*mailbox || !host_mailbox_ok(mailbox))
        return -1;
    return host_add_edit(ctx, EDIT_DEL_RCPT, 0, NULL, mailbox, NULL);
}

static int host_replace_body(struct sg_ctx *ctx, const void *bytes, size_t len)
{
    struct chain_conn *c = ctx->conn;
    if (ctx->stage != SG_STAGE_EOM || !c->in_tx || atomic_load(&ctx->abandoned))
        return -1;
    if (!c->new_body && !(c->new_body = msg_store_new(c->spill_threshold, c->spool_dir)))
        return -1;
    /* Only CRLF ends a line on the way upstream: a bare CR or LF from a plugin
     * must not become a line end (or a data end) that smtpgate did not see. */
    const unsigned char *p = bytes;
    char out[4096];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (k + 3 > sizeof(out)) {
            if (msg_store_append(c->new_body, out, k) < 0)
                return -1;
            k = 0;
        }
        if (c->body_last_cr) {
            out[k++] = '\n';
            c->body_last_cr = false;
            if (p[i] == '\n')
                continue;
        }
        if (p[i] == '\r') {
            out[k++] = '\r';
            c->body_last_cr = true;
        } else if (p[i] == '\n') {
            out[k++] = '\r';
            out[k++] = '\n';
        } else {
            out[k++] = (char)p[i];
        }
    }
    return k ? msg_store_append(c->new_body, out, k) : 0;
}

static void host_tx_note(struct sg_ctx *ctx, const char *text)
{
    struct chain_conn *c = ctx->conn;
    if (!text || !c->in_tx || atomic_load(&ctx->abandoned))
        return;
    size_t n = strnlen(text, 600);
    char *note = malloc(n + 1);
    if (!note)
        return;
    /* one line, and no quote that would end it early for a log parser */
    for (size_t i = 0; i < n; i++)
        note[i] = ((unsigned char)text[i] < 32 || text[i] == '"' || text[i] == 127) ? '?' : text[i];
    note[n] = '\0';
    struct plugin_slot *s = host_slot(ctx);
    free(s->note);
    s->note = note;
}

/* ---- symbols ---- */

static int host_add_symbol(struct sg_ctx *ctx, enum sg_symbol_scope scope, const char *name,
                           double score, const char *detail)
{
    struct chain_conn *c = ctx->conn;
    if (atomic_load(&ctx->abandoned) ||
        (scope != SG_SYMBOL_CONNECTION && scope != SG_SYMBOL_TRANSACTION) ||
        (scope == SG_SYMBOL_TRANSACTION && !c->in_tx) || !symbol_name_ok(name))
        return -1;
    struct chain_symbols *mine = scope == SG_SYMBOL_CONNECTION ? &c->conn_syms : &c->tx_syms;
    struct chain_symbols *other = scope == SG_SYMBOL_CONNECTION ? &c->tx_syms : &c->conn_syms;
    if (!symbols_find(mine, name) && !symbols_find(other, name) &&
        c->conn_syms.n + c->tx_syms.n >= SYMBOLS_MAX)
        return -1;
    /* One name, one entry: a plugin moving a symbol to the other scope
     * replaces it. */
    if (symbols_set(mine, name, score, detail, ctx->plugin->name, scope) != 0)
        return -1;
    symbols_remove(other, name);
    return 0;
}

static bool host_symbol_score(const struct sg_ctx *ctx, const char *name, double *score)
{
    const struct chain_conn *c = ctx->conn;
    if (!name)
        return false;
    const struct sg_symbol *e = symbols_find(&c->tx_syms, name);
    if (!e)
        e = symbols_find(&c->conn_syms, name);
    if (e && score)
        *score = e->score;
    return e != NULL;
}

static double host_symbols_total(const struct sg_ctx *ctx)
{
    return chain_symbols_total(ctx->conn);
}

static size_t host_symbol_count(const struct sg_ctx *ctx)
{
    return chain_symbol_count(ctx->conn);
}

static const struct sg_symbol *host_symbol_get(const struct sg_ctx *ctx, size_t i)
{
    return chain_symbol_get(ctx->conn, i);
}

const struct sg_host host_api_table = {
    .size = sizeof(struct sg_host),
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .opt_string = host_opt_string,
    .opt_int = host_opt_int,
    .opt_float = host_opt_float,
    .opt_bool = host_opt_bool,
    .opt_list_size = host_opt_list_size,
    .opt_list_item = host_opt_list_item,
    .opt_is_set = host_opt_is_set,
    .section_name = host_section_name,
    .config_error = host_config_error,
    .log = host_log,
    .counter_add = host_counter_add,
    .tx_note = host_tx_note,
    .conn = host_conn,
    .envelope = host_envelope,
    .stage = host_stage,
    .header_count = host_header_count,
    .header_get = host_header_get,
    .message_size = host_message_size,
    .message_read = host_message_read,
    .body_offset = host_body_offset,
    .set_conn_data = host_set_conn_data,
    .conn_data = host_conn_data,
    .set_msg_data = host_set_msg_data,
    .msg_data = host_msg_data,
    .set_reply = host_set_reply,
    .set_quarantine_reason = host_set_quarantine_reason,
    .resolve = host_resolve,
    .add_header = host_add_header,
    .insert_header = host_insert_header,
    .change_header = host_change_header,
    .change_from = host_change_from,
    .add_rcpt = host_add_rcpt,
    .del_rcpt = host_del_rcpt,
    .replace_body = host_replace_body,
    .set_stages = host_set_stages,
    .verdict_timeout = host_verdict_timeout,
    .config_warning = host_config_warning,
    .event_loop = host_event_loop,
    .add_symbol = host_add_symbol,
    .symbol_score = host_symbol_score,
    .symbols_total = host_symbols_total,
    .symbol_count = host_symbol_count,
    .symbol_get = host_symbol_get,
};
