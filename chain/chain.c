/*
 * chain - the engine: runs one stage of one connection through the chain's
 * plugins, in order, and merges their verdicts into the stage's result
 * (chain.h states the contract for front-ends; conn_impl.h the ctx life).
 *
 * Verdicts, per stage: the first reject or tempfail ends the stage with its
 * reply; accept ends it and skips the plugins after the accepting one for the
 * rest of the message (at connect and helo: of the connection); discard and
 * quarantine end it and decide the message at its end (at connect and helo:
 * every message of the connection).  At rcpt a refusal is that recipient's
 * only.  Every verdict is allowed at every stage, as plugin.h states; a value
 * that is not one of the enum (pending given to resolve() included), a call
 * the work pool cannot take, or no verdict in time, become the plugin's
 * failure verdict, logged; a reply that does not fit the verdict becomes the
 * stage's default reply, logged.
 *
 * A message run (chain_run_message) gives each plugin in turn all its
 * message callbacks, header* eoh body* eom, before the next plugin starts:
 * a refusal by the first plugin costs the others nothing.
 */
#include "chain/chain.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/conn_impl.h"
#include "chain/instance.h"
#include "chain/reply.h"
#include "chain/workpool.h"
#include "util/log.h"

static enum chain_status chain_step(struct chain_conn *c, struct chain_result *res);

static atomic_uint chain_loop_calls_out;

unsigned chain_loop_calls(void)
{
    return atomic_load(&chain_loop_calls_out);
}

/* Under c->lock. */
static void chain_loop_call_ended(struct sg_ctx *ctx)
{
    if (ctx->loop_counted) {
        ctx->loop_counted = false;
        atomic_fetch_sub(&chain_loop_calls_out, 1);
    }
}

static uint64_t chain_ns_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - t0->tv_sec) * 1000000000 + (now.tv_nsec - t0->tv_nsec);
    return ns > 0 ? (uint64_t)ns : 0;
}

/* ---- calling a plugin ---- */

static struct sg_ctx *chain_ctx_for(struct chain_conn *c, size_t i)
{
    struct plugin_slot *s = &c->slots[i];
    if (!s->ctx) {
        s->ctx = calloc(1, sizeof(*s->ctx));
        if (!s->ctx)
            return NULL;
        s->ctx->conn = c;
        s->ctx->plugin = &c->chain->plugins[i];
        atomic_init(&s->ctx->abandoned, false);
    }
    free(s->ctx->reply);
    s->ctx->reply = NULL;
    return s->ctx;
}

static int chain_ctx_args(struct sg_ctx *ctx, const char *arg, const char *params)
{
    free(ctx->arg);
    free(ctx->params);
    ctx->arg = chain_strdup(arg);
    ctx->params = chain_strdup(params);
    return ctx->arg && ctx->params ? 0 : -1;
}

static enum sg_verdict chain_invoke(struct sg_ctx *ctx)
{
    const struct sg_plugin *d = ctx->plugin->desc;
    void *inst = ctx->plugin->instance;
    switch (ctx->stage) {
    case SG_STAGE_CONNECT:
        return d->connect(ctx, inst);
    case SG_STAGE_HELO:
        return d->helo(ctx, inst);
    case SG_STAGE_MAIL:
        return d->mail(ctx, inst, ctx->arg, ctx->params);
    case SG_STAGE_RCPT:
        return d->rcpt(ctx, inst, ctx->arg, ctx->params);
    case SG_STAGE_DATA:
        return d->data(ctx, inst);
    case SG_STAGE_HEADER:
        return d->header(ctx, inst, ctx->header);
    case SG_STAGE_EOH:
        return d->eoh(ctx, inst);
    case SG_STAGE_BODY:
        return d->body(ctx, inst, ctx->chunk, ctx->chunk_len);
    case SG_STAGE_EOM:
        return d->eom(ctx, inst);
    default:
        return SG_CONTINUE;
    }
}

void chain_ctx_done(struct sg_ctx *ctx, enum sg_verdict v, const char *reply)
{
    struct chain_conn *c = ctx->conn;
    char *wire = NULL;
    if (reply && (v == SG_REJECT || v == SG_TEMPFAIL)) {
        wire = chain_reply_wire(reply, v == SG_REJECT ? '5' : '4');
        if (!wire)
            plugin_log(ctx->plugin, SG_LOG_WARNING,
                       "malformed reply \"%.200s\" for %s: using the "
                       "default reply",
                       reply, chain_verdict_name(v));
    }
    /* notify under the lock: once released, the front-end (and what notify
     * touches) may be gone the moment the lock is let go. */
    pthread_mutex_lock(&c->lock);
    bool abandoned = atomic_load(&ctx->abandoned);
    c->outstanding--;
    chain_loop_call_ended(ctx);
    if (!abandoned) {
        ctx->verdict = v;
        if (wire) {
            free(ctx->reply);
            ctx->reply = wire;
            wire = NULL;
        }
        ctx->state = CTX_RESOLVED;
        if (c->front.notify)
            c->front.notify(c->front.arg);
    }
    pthread_mutex_unlock(&c->lock);
    free(wire);
    if (abandoned) {
        free(ctx->reply);
        free(ctx->arg);
        free(ctx->params);
        free(ctx);
    }
    chain_conn_unref(c);
}

static void chain_pool_job(void *arg)
{
    struct sg_ctx *ctx = arg;
    struct chain_conn *c = ctx->conn;
    /* A call whose client has gone (or that the host gave up on) while it
     * waited for a thread would only hold the thread: it is not made. */
    pthread_mutex_lock(&c->lock);
    bool gone = c->released || atomic_load(&ctx->abandoned);
    pthread_mutex_unlock(&c->lock);
    if (gone) {
        chain_ctx_done(ctx, (enum sg_verdict)(SG_PENDING + 100), NULL);
        return;
    }
    enum sg_verdict v = chain_invoke(ctx);
    if (v == SG_PENDING)
        return; /* resolve comes later, from the plugin */
    chain_ctx_done(ctx, v, NULL);
}

/* Start the call; SG_PENDING when it is out. */
static enum sg_verdict chain_call(struct chain_conn *c, size_t i, struct sg_ctx *ctx)
{
    struct plugin_inst *p = &c->chain->plugins[i];
    c->slots[i].used_in_tx = true;
    clock_gettime(CLOCK_MONOTONIC, &c->run.call_started);
    bool blocking = (p->desc->blocking_stages & SG_STAGE_BIT(ctx->stage)) != 0;
    if (blocking && !c->front.inline_blocking) {
        pthread_mutex_lock(&c->lock);
        ctx->state = CTX_OUT;
        c->refs++;
        c->outstanding++;
        pthread_mutex_unlock(&c->lock);
        if (workpool_submit_for(c->info.client_addr, chain_pool_job, ctx) == 0)
            return SG_PENDING;
        pthread_mutex_lock(&c->lock);
        ctx->state = CTX_IDLE;
        c->refs--;
        c->outstanding--;
        pthread_mutex_unlock(&c->lock);
        plugin_log(p, SG_LOG_ERR, "cannot run a blocking callback: using the failure verdict");
        return (enum sg_verdict)(SG_PENDING + 100);
    }
    /* The plugin may resolve before chain_invoke even returns (another
     * thread): the ctx is out and counted from here on. */
    pthread_mutex_lock(&c->lock);
    ctx->state = CTX_OUT;
    c->refs++;
    c->outstanding++;
    if (c->front.base_outlives) {
        ctx->loop_counted = true;
        atomic_fetch_add(&chain_loop_calls_out, 1);
    }
    pthread_mutex_unlock(&c->lock);
    enum sg_verdict v = chain_invoke(ctx);
    if (v == SG_PENDING)
        return SG_PENDING;
    pthread_mutex_lock(&c->lock);
    bool resolved_too = ctx->state == CTX_RESOLVED;
    ctx->state = CTX_IDLE;
    if (!resolved_too) {
        c->refs--;
        c->outstanding--;
        chain_loop_call_ended(ctx);
    }
    pthread_mutex_unlock(&c->lock);
    if (resolved_too)
        plugin_log(p, SG_LOG_WARNING,
                   "resolve() called for a callback that returned a verdict: "
                   "the returned verdict counts");
    return v;
}

/* ---- verdicts ---- */

/* The verdict after validation: unknown values and replies that do not fit
 * become the failure verdict or the default reply. */
static enum sg_verdict chain_check_verdict(struct chain_conn *c, size_t i, enum sg_verdict v,
                                           enum sg_stage stage)
{
    struct plugin_inst *p = &c->chain->plugins[i];
    if ((int)v < SG_CONTINUE || v >= SG_PENDING) {
        plugin_log(p, SG_LOG_WARNING, "%s: no valid verdict (%d) at %s: using %s",
                   c->info.session_id ? c->info.session_id : "-", (int)v,
                   stage == SG_STAGE_CONNECT ? "connect" : "a callback",
                   chain_verdict_name(p->failure_verdict));
        v = p->failure_verdict;
    }
    /* "continue" is the common answer of every callback: counting it would
     * put a shared atomic on the per-callback path for no information. */
    if (v != SG_CONTINUE)
        plugin_count_verdict(p, v);
    return v;
}

static void chain_set_refusal(struct chain_conn *c, size_t i, enum sg_verdict v,
                              enum sg_stage stage, struct chain_result *res)
{
    struct sg_ctx *ctx = c->slots[i].ctx;
    const char *reply = ctx && ctx->reply ? ctx->reply : NULL;
    char expect = v == SG_REJECT ? '5' : '4';
    if (reply && reply[0] != expect)
        reply = NULL;
    snprintf(res->reply, sizeof(res->reply), "%s", reply ? reply : chain_default_reply(stage, v));
    res->action = CHAIN_REFUSE;
    res->verdict = v;
    res->decided_by = c->chain->plugins[i].name;
}

static void chain_decide(struct chain_conn *c, size_t i, enum sg_verdict v)
{
    if (c->in_tx && (v != SG_CONTINUE || !c->decided_by)) {
        c->decided_by = v == SG_CONTINUE ? NULL : c->chain->plugins[i].name;
        c->decided_verdict = v;
    }
}

/* Apply one plugin's verdict to the stage; true when the stage is over. */
static bool chain_apply(struct chain_conn *c, size_t i, enum sg_verdict v, enum sg_stage stage,
                        struct chain_result *res)
{
    bool conn_level = stage == SG_STAGE_CONNECT || stage == SG_STAGE_HELO;
    switch (v) {
    case SG_CONTINUE:
        return false;
    case SG_ACCEPT:
        if (conn_level)
            c->accept_from = i + 1 < c->accept_from ? i + 1 : c->accept_from;
        else
            c->tx_accept_from = i + 1 < c->tx_accept_from ? i + 1 : c->tx_accept_from;
        chain_decide(c, i, v);
        res->decided_by = c->chain->plugins[i].name;
        res->verdict = v;
        return true;
    case SG_REJECT:
    case SG_TEMPFAIL:
        if (stage != SG_STAGE_RCPT)
            chain_decide(c, i, v);
        chain_set_refusal(c, i, v, stage, res);
        return true;
    case SG_DISCARD:
    case SG_QUARANTINE:
        if (conn_level)
            c->conn_final = v;
        else
            c->tx_final = v;
        /* nothing after this plugin has a say in this message any more */
        c->tx_accept_from = 0;
        chain_decide(c, i, v);
        res->decided_by = c->chain->plugins[i].name;
        res->verdict = v;
        return true;
    default:
        return false;
    }
}

static bool chain_skipped(const struct chain_conn *c, size_t i)
{
    return i >= c->accept_from || (c->in_tx && i >= c->tx_accept_from);
}

/* ---- running ---- */

static void chain_result_init(struct chain_result *res)
{
    res->action = CHAIN_PASS;
    res->reply[0] = '\0';
    res->decided_by = NULL;
    res->verdict = SG_CONTINUE;
}

/* Every allocation failure of a stage ends it as a temporary refusal, so the
 * client keeps its copy (the program's policy, util/alloc.h). */
static void chain_refuse_nomem(struct chain_result *res)
{
    snprintf(res->reply, sizeof(res->reply), "451 4.3.0 Error: out of memory");
    res->action = CHAIN_REFUSE;
    res->verdict = SG_TEMPFAIL;
}

enum chain_status chain_run(struct chain_conn *c, enum sg_stage stage, const char *arg,
                            const char *params, struct chain_result *res)
{
    chain_result_init(res);
    if (stage == SG_STAGE_CONNECT)
        c->connected = true;
    if (!chain_wants(c->chain, stage))
        return CHAIN_DONE;
    free(c->run.arg);
    free(c->run.params);
    c->run = (struct chain_run){.active = true, .stage = stage};
    c->run.arg = chain_strdup(arg ? arg : "");
    c->run.params = chain_strdup(params ? params : "");
    if (!c->run.arg || !c->run.params) {
        c->run.active = false;
        chain_refuse_nomem(res);
        return CHAIN_DONE;
    }
    return chain_step(c, res);
}

enum chain_status chain_run_message(struct chain_conn *c, const struct chain_content *content,
                                    struct chain_result *res)
{
    chain_result_init(res);
    /* A copy: the caller's struct may be gone before a plugin that is out
     * reads the message. */
    c->content_copy = *content;
    c->content = &c->content_copy;
    c->eom_ran = true;
    enum sg_verdict final = c->conn_final != SG_CONTINUE ? c->conn_final : c->tx_final;
    if (final == SG_DISCARD || final == SG_QUARANTINE) {
        res->action = final == SG_DISCARD ? CHAIN_DISCARD : CHAIN_QUARANTINE;
        res->verdict = final;
        res->decided_by = c->decided_by;
        return CHAIN_DONE;
    }
    /* The header list as plugins see it, made once for every plugin. */
    const struct msg_headers *h = content->headers;
    if (h && h->count) {
        c->hdr_view = calloc(h->count, sizeof(*c->hdr_view));
        if (!c->hdr_view) {
            chain_refuse_nomem(res);
            return CHAIN_DONE;
        }
        for (size_t i = 0; i < h->count; i++)
            c->hdr_view[i] =
                (struct sg_header){h->fields[i].name, h->fields[i].value, h->fields[i].value_len};
        c->hdr_view_n = h->count;
    }
    bool any = false;
    for (int st = SG_STAGE_HEADER; st <= SG_STAGE_EOM; st++)
        any = any || chain_wants(c->chain, (enum sg_stage)st);
    if (!any)
        return CHAIN_DONE;
    free(c->run.arg);
    free(c->run.params);
    c->run = (struct chain_run){.active = true, .message = true, .stage = SG_STAGE_HEADER};
    return chain_step(c, res);
}

/* The message run's next callback for plugin i, or SG_STAGE__COUNT when it
 * has had them all. */
static enum sg_stage chain_message_next(struct chain_conn *c, const struct plugin_inst *p)
{
    struct chain_run *r = &c->run;
    bool header = chain_inst_has(p, SG_STAGE_HEADER), eoh = chain_inst_has(p, SG_STAGE_EOH),
         body = chain_inst_has(p, SG_STAGE_BODY), eom = chain_inst_has(p, SG_STAGE_EOM);
    for (;;) {
        switch (r->stage) {
        case SG_STAGE_HEADER:
            if (header && r->hdr_i < c->hdr_view_n)
                return SG_STAGE_HEADER;
            r->stage = SG_STAGE_EOH;
            continue;
        case SG_STAGE_EOH:
            if (eoh && !r->plugin_started)
                return SG_STAGE_EOH;
            r->stage = SG_STAGE_BODY;
            r->plugin_started = false;
            r->body_off = c->content->headers ? c->content->headers->body_offset : 0;
            continue;
        case SG_STAGE_BODY:
            if (body && c->content->store && r->body_off < msg_store_size(c->content->store))
                return SG_STAGE_BODY;
            r->stage = SG_STAGE_EOM;
            r->plugin_started = false;
            continue;
        case SG_STAGE_EOM:
            if (eom && !r->plugin_started)
                return SG_STAGE_EOM;
            return SG_STAGE__COUNT;
        default:
            return SG_STAGE__COUNT;
        }
    }
}

/* After a message-run callback returned continue: move to the next one. */
static void chain_message_advance(struct chain_conn *c, enum sg_stage done, size_t chunk)
{
    struct chain_run *r = &c->run;
    if (done == SG_STAGE_HEADER)
        r->hdr_i++;
    else if (done == SG_STAGE_BODY)
        r->body_off += chunk;
    else
        r->plugin_started = true;
}

static void chain_message_next_plugin(struct chain_conn *c)
{
    c->run.next++;
    c->run.stage = SG_STAGE_HEADER;
    c->run.hdr_i = 0;
    c->run.plugin_started = false;
}

static void chain_finish_result(struct chain_conn *c, struct chain_result *res)
{
    c->run.active = false;
    if (c->run.message && res->action == CHAIN_PASS) {
        if (c->tx_final == SG_DISCARD)
            res->action = CHAIN_DISCARD;
        else if (c->tx_final == SG_QUARANTINE)
            res->action = CHAIN_QUARANTINE;
    }
}

/* Run from c->run's position until the stage is decided or a call is out. */
static enum chain_status chain_step(struct chain_conn *c, struct chain_result *res)
{
    struct chain_run *r = &c->run;
    while (r->next < c->chain->n) {
        size_t i = r->next;
        struct plugin_inst *p = &c->chain->plugins[i];
        if (chain_skipped(c, i)) {
            if (r->message)
                chain_message_next_plugin(c);
            else
                r->next++;
            continue;
        }
        enum sg_stage stage = r->stage;
        if (r->message) {
            stage = chain_message_next(c, p);
            if (stage == SG_STAGE__COUNT) {
                chain_message_next_plugin(c);
                continue;
            }
        } else if (!chain_inst_has(p, stage)) {
            r->next++;
            continue;
        }
        struct sg_ctx *ctx = chain_ctx_for(c, i);
        if (!ctx) {
            chain_refuse_nomem(res);
            r->active = false;
            return CHAIN_DONE;
        }
        ctx->stage = stage;
        if (!r->message && (chain_ctx_args(ctx, r->arg, r->params) < 0)) {
            chain_refuse_nomem(res);
            r->active = false;
            return CHAIN_DONE;
        }
        ctx->header = NULL;
        ctx->chunk = NULL;
        ctx->chunk_len = 0;
        if (stage == SG_STAGE_HEADER) {
            ctx->header = &c->hdr_view[r->hdr_i];
        } else if (stage == SG_STAGE_BODY &&
                   (ctx->chunk = msg_store_peek(c->content->store, r->body_off, &ctx->chunk_len))) {
            /* in memory: the plugins read the store itself, no copy */
            if (ctx->chunk_len > CHAIN_BODY_CHUNK)
                ctx->chunk_len = CHAIN_BODY_CHUNK;
        } else if (stage == SG_STAGE_BODY) {
            if (!c->body_buf && !(c->body_buf = malloc(CHAIN_BODY_CHUNK))) {
                chain_message_advance(c, SG_STAGE_BODY, msg_store_size(c->content->store));
                continue;
            }
            ssize_t n =
                msg_store_read(c->content->store, r->body_off, c->body_buf, CHAIN_BODY_CHUNK);
            if (n <= 0) {
                snprintf(res->reply, sizeof(res->reply), "451 4.3.0 Error: queue file read error");
                res->action = CHAIN_REFUSE;
                res->verdict = SG_TEMPFAIL;
                r->active = false;
                return CHAIN_DONE;
            }
            ctx->chunk = c->body_buf;
            ctx->chunk_len = (size_t)n;
        }
        enum sg_verdict v = chain_call(c, i, ctx);
        if (v == SG_PENDING) {
            r->waiting = true;
            return CHAIN_WAIT;
        }
        uint64_t ns = chain_ns_since(&r->call_started);
        c->slots[i].tx_ns += ns;
        plugin_count_latency(p, ctx->stage, ns);
        if ((int)v >= SG_PENDING + 100)
            v = p->failure_verdict;
        v = chain_check_verdict(c, i, v, stage);
        if (r->message && v == SG_CONTINUE) {
            chain_message_advance(c, stage, ctx->chunk_len);
            continue;
        }
        if (chain_apply(c, i, v, r->message ? SG_STAGE_EOM : stage, res)) {
            chain_finish_result(c, res);
            return CHAIN_DONE;
        }
        if (r->message)
            chain_message_next_plugin(c);
        else
            r->next++;
    }
    chain_finish_result(c, res);
    return CHAIN_DONE;
}

enum chain_status chain_resume(struct chain_conn *c, struct chain_result *res)
{
    struct chain_run *r = &c->run;
    if (!r->active || !r->waiting)
        return CHAIN_DONE;
    size_t i = r->next;
    struct sg_ctx *ctx = c->slots[i].ctx;
    pthread_mutex_lock(&c->lock);
    bool resolved = ctx && ctx->state == CTX_RESOLVED;
    if (resolved)
        ctx->state = CTX_IDLE;
    pthread_mutex_unlock(&c->lock);
    if (!resolved)
        return CHAIN_WAIT;
    r->waiting = false;
    uint64_t ns = chain_ns_since(&r->call_started);
    c->slots[i].tx_ns += ns;
    enum sg_verdict v = ctx->verdict;
    if ((int)v >= SG_PENDING + 100)
        v = c->chain->plugins[i].failure_verdict;
    else
        plugin_count_latency(&c->chain->plugins[i], ctx->stage, ns);
    v = chain_check_verdict(c, i, v, ctx->stage);
    if (r->message && v == SG_CONTINUE) {
        chain_message_advance(c, ctx->stage, ctx->chunk_len);
        return chain_step(c, res);
    }
    if (chain_apply(c, i, v, r->message ? SG_STAGE_EOM : ctx->stage, res)) {
        chain_finish_result(c, res);
        return CHAIN_DONE;
    }
    if (r->message)
        chain_message_next_plugin(c);
    else
        r->next++;
    return chain_step(c, res);
}

unsigned chain_wait_ms(const struct chain_conn *c)
{
    if (!c->run.active || !c->run.waiting)
        return 0;
    return c->chain->plugins[c->run.next].timeout_ms;
}

void chain_expire(struct chain_conn *c)
{
    struct chain_run *r = &c->run;
    if (!r->active || !r->waiting)
        return;
    size_t i = r->next;
    struct plugin_inst *p = &c->chain->plugins[i];
    struct sg_ctx *ctx = c->slots[i].ctx;
    /* Read while ctx is surely ours: once abandoned, resolve() frees it. */
    enum sg_stage at = r->message ? SG_STAGE_EOM : ctx->stage;
    pthread_mutex_lock(&c->lock);
    if (ctx->state == CTX_OUT) {
        /* Abandon it: the plugin still owns the call and will resolve it. */
        atomic_store(&ctx->abandoned, true);
        c->slots[i].ctx = NULL;
        struct sg_ctx *fresh = calloc(1, sizeof(*fresh));
        if (fresh) {
            fresh->conn = c;
            fresh->plugin = p;
            fresh->stage = ctx->stage;
            fresh->state = CTX_RESOLVED;
            fresh->verdict = (enum sg_verdict)(SG_PENDING + 100);
            fresh->chunk_len = ctx->chunk_len;
            atomic_init(&fresh->abandoned, false);
            c->slots[i].ctx = fresh;
        }
    }
    pthread_mutex_unlock(&c->lock);
    plugin_count_timeout(p);
    /* Name what the client gets, so that no later line of the plugin's
     * reads as the answer. */
    enum sg_verdict fv = p->failure_verdict;
    plugin_log(p, SG_LOG_WARNING, "%s: no verdict within %.3fs: using %s (%s%s%s)",
               c->info.session_id ? c->info.session_id : "-", p->timeout_ms / 1000.0,
               chain_verdict_name(fv),
               fv == SG_REJECT || fv == SG_TEMPFAIL ? "the client gets \""
                                                    : "the client is not refused for it",
               fv == SG_REJECT || fv == SG_TEMPFAIL ? chain_default_reply(at, fv) : "",
               fv == SG_REJECT || fv == SG_TEMPFAIL ? "\"" : "");
    if (!c->slots[i].ctx) {
        /* out of memory: stop the run with a tempfail right here */
        r->waiting = false;
        r->active = false;
        return;
    }
    pthread_mutex_lock(&c->lock);
    if (c->front.notify)
        c->front.notify(c->front.arg);
    pthread_mutex_unlock(&c->lock);
}
