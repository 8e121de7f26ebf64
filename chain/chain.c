/*
 * chain - one connection's walk through the plugin chain.
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
 *
 * Verdicts, per stage: the first reject or tempfail ends the stage with its
 * reply; accept ends it and skips the plugins after the accepting one for the
 * rest of the message (at connect and helo: of the connection); discard and
 * quarantine end it and decide the message at its end.  At rcpt a refusal is
 * that recipient's only.  A verdict that is not one of the enum, a reply that
 * does not fit the verdict, or no verdict in time, become the plugin's
 * failure verdict, logged.
 */
#include "chain/chain.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chain/chain_impl.h"
#include "util/log.h"
#include "chain/workpool.h"

#define CHAIN_BODY_CHUNK      (64 * 1024)
#define CHAIN_MAX_EDITS       10000
#define CHAIN_MAX_HEADER_EDIT 8192

enum ctx_state { CTX_IDLE, CTX_OUT, CTX_RESOLVED };

struct sg_ctx {
    struct chain_conn *conn;
    struct plugin_inst *plugin;
    enum sg_stage stage;
    enum ctx_state state;
    atomic_bool abandoned; /* the host gave up waiting; resolve frees it */
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

static const char *const verdict_name[] = {"continue", "accept",     "reject", "tempfail",
                                           "discard",  "quarantine", "pending"};

static enum chain_status chain_step(struct chain_conn *c, struct chain_result *res);

/* ---- helpers ---- */

static char *chain_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void chain_replace(char **field, const char *value)
{
    char *n = chain_strdup(value);
    if (value && !n)
        return;
    free(*field);
    *field = n;
}

static uint64_t chain_ns_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - t0->tv_sec) * 1000000000 + (now.tv_nsec - t0->tv_nsec);
    return ns > 0 ? (uint64_t)ns : 0;
}

struct plugin_inst *chain_ctx_plugin(const struct sg_ctx *ctx)
{
    return ctx->plugin;
}

bool chain_plugin_has(const struct sg_plugin *d, enum sg_stage stage)
{
    switch (stage) {
    case SG_STAGE_CONNECT:
        return d->connect != NULL;
    case SG_STAGE_HELO:
        return d->helo != NULL;
    case SG_STAGE_MAIL:
        return d->mail != NULL;
    case SG_STAGE_RCPT:
        return d->rcpt != NULL;
    case SG_STAGE_DATA:
        return d->data != NULL;
    case SG_STAGE_HEADER:
        return d->header != NULL;
    case SG_STAGE_EOH:
        return d->eoh != NULL;
    case SG_STAGE_BODY:
        return d->body != NULL;
    case SG_STAGE_EOM:
        return d->eom != NULL;
    default:
        return false;
    }
}

/* ---- reply validation ---- */

/*
 * "550 5.7.1 text" lines, separated by "\n" (or CRLF), into wire form with
 * continuation dashes, no final CRLF.  Every line must carry the same code,
 * of the class the verdict needs (4 or 5); the enhanced code, when present,
 * must be class.subject.detail with the same class, and is added when missing
 * so that every refusal has one.  NULL if malformed.
 */
char *chain_reply_wire(const char *reply, char cls)
{
    size_t cap = strlen(reply) * 2 + 64;
    if (cap > 8192)
        return NULL;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t used = 0;
    char code[4] = {0};
    const char *p = reply;
    int nlines = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len < 3 || !isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
            !isdigit((unsigned char)p[2]) || p[0] != cls || (len > 3 && p[3] != ' ' && p[3] != '-'))
            goto bad;
        if (nlines == 0)
            memcpy(code, p, 3);
        else if (memcmp(code, p, 3) != 0)
            goto bad;
        const char *text = len > 4 ? p + 4 : "";
        size_t tlen = len > 4 ? len - 4 : 0;
        for (size_t i = 0; i < tlen; i++)
            if ((unsigned char)text[i] < 32 && text[i] != '\t')
                goto bad;
        /* enhanced code */
        size_t ecl = 0;
        if (tlen >= 5 && text[0] >= '2' && text[0] <= '5' && text[1] == '.') {
            size_t i = 2, d1 = 0, d2 = 0;
            while (i < tlen && isdigit((unsigned char)text[i]) && d1 < 3)
                i++, d1++;
            if (d1 && i < tlen && text[i] == '.') {
                i++;
                while (i < tlen && isdigit((unsigned char)text[i]) && d2 < 3)
                    i++, d2++;
                if (d2 && (i == tlen || text[i] == ' ')) {
                    if (text[0] != cls)
                        goto bad;
                    ecl = i;
                }
            }
        }
        char line_code[8];
        snprintf(line_code, sizeof(line_code), "%s", code);
        const char *ec = ecl ? "" : (cls == '5' ? "5.7.1 " : "4.7.1 ");
        int n = snprintf(out + used, cap - used, "%s%s%s%s%.*s", used ? "\r\n" : "", line_code,
                         "\x01", ec, (int)tlen, text);
        if (n < 0 || (size_t)n >= cap - used)
            goto bad;
        used += (size_t)n;
        nlines++;
        if (!eol)
            break;
        p = eol + 1;
    }
    if (nlines == 0)
        goto bad;
    /* Separators: '-' on every line but the last. */
    for (size_t i = 0, line = 0; i < used; i++) {
        if (out[i] == '\x01')
            out[i] = ++line < (size_t)nlines ? '-' : ' ';
    }
    return out;
bad:
    free(out);
    return NULL;
}

static const char *chain_default_reply(enum sg_stage stage, enum sg_verdict v)
{
    if (v == SG_TEMPFAIL)
        return stage == SG_STAGE_CONNECT
                   ? "421 4.7.0 Service temporarily unavailable, try again later"
                   : "451 4.7.1 Temporary failure, try again later";
    switch (stage) {
    case SG_STAGE_CONNECT:
        return "554 5.7.1 Connection refused";
    case SG_STAGE_HELO:
        return "550 5.7.1 HELO/EHLO refused";
    case SG_STAGE_MAIL:
        return "550 5.7.1 Sender address refused";
    case SG_STAGE_RCPT:
        return "550 5.7.1 Recipient address refused";
    default:
        return "550 5.7.1 Message content refused";
    }
}

/* ---- connection ---- */

struct chain_conn *chain_conn_new(struct chain *ch, const struct sg_conn_info *info,
                                  const struct chain_front *front, size_t spill_threshold,
                                  const char *spool_dir)
{
    struct chain_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    size_t n = chain_size(ch);
    c->slots = calloc(n ? n : 1, sizeof(*c->slots));
    c->spool_dir = chain_strdup(spool_dir);
    if (!c->slots || (spool_dir && !c->spool_dir)) {
        free(c->slots);
        free(c->spool_dir);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->refs = 1;
    c->chain = chain_ref(ch);
    if (front)
        c->front = *front;
    c->spill_threshold = spill_threshold;
    c->accept_from = SIZE_MAX;
    c->tx_accept_from = SIZE_MAX;
    c->conn_final = SG_CONTINUE;
    c->info.session_id = chain_strdup(info->session_id);
    c->info.client_addr = chain_strdup(info->client_addr);
    c->info.client_port = info->client_port;
    c->info.client_name = chain_strdup(info->client_name);
    c->info.helo = chain_strdup(info->helo);
    c->info.esmtp = info->esmtp;
    c->info.local_addr = chain_strdup(info->local_addr);
    c->info.local_port = info->local_port;
    c->info.login = chain_strdup(info->login);
    c->info.tls = info->tls;
    c->info.tls_version = chain_strdup(info->tls_version);
    c->info.tls_cipher = chain_strdup(info->tls_cipher);
    c->info.tls_sni = chain_strdup(info->tls_sni);
    c->info.tls_peer_subject = chain_strdup(info->tls_peer_subject);
    c->info.tls_peer_fingerprint = chain_strdup(info->tls_peer_fingerprint);
    c->info.host_name = chain_strdup(info->host_name);
    return c;
}

static void chain_free_info(struct sg_conn_info *i)
{
    free((char *)i->session_id);
    free((char *)i->client_addr);
    free((char *)i->client_name);
    free((char *)i->helo);
    free((char *)i->local_addr);
    free((char *)i->login);
    free((char *)i->tls_version);
    free((char *)i->tls_cipher);
    free((char *)i->tls_sni);
    free((char *)i->tls_peer_subject);
    free((char *)i->tls_peer_fingerprint);
    free((char *)i->host_name);
}

bool chain_busy(const struct chain_conn *c)
{
    pthread_mutex_lock((pthread_mutex_t *)&c->lock);
    bool busy = c->outstanding > 0;
    pthread_mutex_unlock((pthread_mutex_t *)&c->lock);
    return busy;
}

/* Free now, or, while a call the host gave up on may still read it, when the
 * connection ends. */
static void chain_dispose(struct chain_conn *c, void *object, void (*free_fn)(void *))
{
    if (!object)
        return;
    if (chain_busy(c))
        chain_adopt(c, object, free_fn);
    else
        free_fn(object);
}

static void chain_replace_fact(struct chain_conn *c, const char **field, const char *value)
{
    char *n = chain_strdup(value);
    if (value && !n)
        return;
    chain_dispose(c, (char *)*field, free);
    *field = n;
}

static void chain_free_store(void *store)
{
    msg_store_free(store);
}

static void chain_tx_clear(struct chain_conn *c)
{
    for (size_t i = 0; i < chain_size(c->chain); i++) {
        struct plugin_slot *s = &c->slots[i];
        if (s->msg_free && s->msg_data)
            chain_dispose(c, s->msg_data, s->msg_free);
        s->msg_data = NULL;
        s->msg_free = NULL;
        s->tx_ns = 0;
        s->used_in_tx = false;
        free(s->note);
        s->note = NULL;
    }
    free(c->tx_id);
    free(c->mail_from);
    free(c->mail_params);
    c->tx_id = c->mail_from = c->mail_params = NULL;
    for (size_t i = 0; i < c->nrcpt; i++)
        free(c->rcpt[i]);
    free(c->rcpt);
    c->rcpt = NULL;
    c->nrcpt = c->rcpt_cap = 0;
    for (size_t i = 0; i < c->nedits; i++) {
        free(c->edits[i].name);
        free(c->edits[i].value);
        free(c->edits[i].params);
    }
    free(c->edits);
    c->edits = NULL;
    c->nedits = c->edits_cap = 0;
    chain_dispose(c, c->new_body, chain_free_store);
    c->new_body = NULL;
    c->body_last_cr = false;
    free(c->quarantine_reason);
    c->quarantine_reason = NULL;
    chain_dispose(c, c->hdr_view, free);
    c->hdr_view = NULL;
    c->hdr_view_n = 0;
    chain_dispose(c, c->body_buf, free);
    c->body_buf = NULL;
    c->content = NULL;
    c->tx_accept_from = SIZE_MAX;
    c->tx_final = SG_CONTINUE;
    c->decided_by = NULL;
    c->decided_verdict = SG_CONTINUE;
    c->in_tx = false;
    c->eom_ran = false;
}

/* Last reference gone: close callbacks, private data, the rest. */
static void chain_conn_finish(struct chain_conn *c)
{
    size_t n = chain_size(c->chain);
    if (c->in_tx && !c->eom_ran) {
        for (size_t i = 0; i < n; i++) {
            struct plugin_inst *p = &c->chain->plugins[i];
            if (p->desc->abort && c->slots[i].ctx) {
                c->slots[i].ctx->stage = SG_STAGE_EOM;
                p->desc->abort(c->slots[i].ctx, p->instance);
            }
        }
    }
    chain_tx_clear(c);
    for (size_t i = 0; i < n; i++) {
        struct plugin_inst *p = &c->chain->plugins[i];
        struct plugin_slot *s = &c->slots[i];
        if (c->connected && p->desc->close && s->ctx)
            p->desc->close(s->ctx, p->instance);
        if (s->conn_free && s->conn_data)
            s->conn_free(s->conn_data);
        if (s->ctx) {
            free(s->ctx->reply);
            free(s->ctx->arg);
            free(s->ctx->params);
            free(s->ctx);
        }
    }
    while (c->adopted) {
        struct adopted *a = c->adopted;
        c->adopted = a->next;
        a->free_fn(a->object);
        free(a);
    }
    free(c->run.arg);
    free(c->run.params);
    free(c->slots);
    free(c->spool_dir);
    chain_free_info(&c->info);
    chain_unref(c->chain);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void chain_conn_unref(struct chain_conn *c)
{
    pthread_mutex_lock(&c->lock);
    unsigned left = --c->refs;
    pthread_mutex_unlock(&c->lock);
    if (left == 0)
        chain_conn_finish(c);
}

void chain_conn_release(struct chain_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->released = true;
    c->front.notify = NULL;
    pthread_mutex_unlock(&c->lock);
    chain_conn_unref(c);
}

void chain_adopt(struct chain_conn *c, void *object, void (*free_fn)(void *))
{
    struct adopted *a = malloc(sizeof(*a));
    if (!a) {
        /* Better a late free now than a leak: nothing may be out on this
         * object when the front-end has memory trouble, as it only adopts
         * what pending calls might read. */
        free_fn(object);
        return;
    }
    a->object = object;
    a->free_fn = free_fn;
    a->next = c->adopted;
    c->adopted = a;
}

void chain_set_helo(struct chain_conn *c, const char *helo, bool esmtp)
{
    if (helo)
        chain_replace_fact(c, &c->info.helo, helo);
    c->info.esmtp = esmtp;
}

void chain_set_login(struct chain_conn *c, const char *login)
{
    chain_replace_fact(c, &c->info.login, login);
}

void chain_set_tls(struct chain_conn *c, const char *version, const char *cipher, const char *sni,
                   const char *peer_subject, const char *peer_fingerprint)
{
    c->info.tls = true;
    if (version)
        chain_replace_fact(c, &c->info.tls_version, version);
    if (cipher)
        chain_replace_fact(c, &c->info.tls_cipher, cipher);
    if (sni)
        chain_replace_fact(c, &c->info.tls_sni, sni);
    if (peer_subject)
        chain_replace_fact(c, &c->info.tls_peer_subject, peer_subject);
    if (peer_fingerprint)
        chain_replace_fact(c, &c->info.tls_peer_fingerprint, peer_fingerprint);
}

const struct sg_conn_info *chain_info(const struct chain_conn *c)
{
    return &c->info;
}

/* ---- transaction ---- */

static void chain_abort_tx(struct chain_conn *c)
{
    if (!c->in_tx || c->eom_ran)
        return;
    for (size_t i = 0; i < chain_size(c->chain); i++) {
        struct plugin_inst *p = &c->chain->plugins[i];
        struct sg_ctx *ctx = c->slots[i].ctx;
        /* A plugin still working on this transaction hears of its end when
         * its ctx comes back; it must not be called meanwhile. */
        if (p->desc->abort && ctx && ctx->state == CTX_IDLE) {
            ctx->stage = SG_STAGE_EOM;
            p->desc->abort(ctx, p->instance);
        }
    }
}

void chain_tx_begin(struct chain_conn *c, const char *tx_id)
{
    chain_tx_end(c);
    c->in_tx = true;
    c->tx_id = chain_strdup(tx_id);
}

void chain_tx_set_mail(struct chain_conn *c, const char *mailbox, const char *params)
{
    chain_replace(&c->mail_from, mailbox ? mailbox : "");
    chain_replace(&c->mail_params, params ? params : "");
}

void chain_rcpt_accepted(struct chain_conn *c, const char *mailbox)
{
    if (c->nrcpt == c->rcpt_cap) {
        size_t cap = c->rcpt_cap ? c->rcpt_cap * 2 : 8;
        char **n = realloc(c->rcpt, cap * sizeof(*n));
        if (!n)
            return;
        c->rcpt = n;
        c->rcpt_cap = cap;
    }
    char *m = strdup(mailbox);
    if (m)
        c->rcpt[c->nrcpt++] = m;
}

void chain_tx_end(struct chain_conn *c)
{
    if (!c->in_tx)
        return;
    chain_abort_tx(c);
    chain_tx_clear(c);
}

const struct chain_tx_info *chain_tx_info(const struct chain_conn *c)
{
    struct chain_conn *m = (struct chain_conn *)c;
    if (m->body_last_cr && m->new_body && msg_store_append(m->new_body, "\n", 1) == 0)
        m->body_last_cr = false;
    struct chain_tx_info *t = &m->tx_info;
    t->edits = c->edits;
    t->nedits = c->nedits;
    t->new_body = c->new_body;
    t->quarantine_reason = c->quarantine_reason;
    return t;
}

void chain_tx_summary(const struct chain_conn *c, char *out, size_t out_size)
{
    size_t used = 0;
    out[0] = '\0';
    if (!c->chain)
        return;
    int n = snprintf(out, out_size, "chain=%u decided=%s verdict=%s filters=", c->chain->generation,
                     c->decided_by ? c->decided_by : "-", verdict_name[c->decided_verdict]);
    if (n < 0 || (size_t)n >= out_size)
        return;
    used = (size_t)n;
    bool any = false;
    for (size_t i = 0; i < c->chain->n && used < out_size; i++) {
        if (!c->slots[i].used_in_tx)
            continue;
        n = snprintf(out + used, out_size - used, "%s%s:%.1fms", any ? "," : "",
                     c->chain->plugins[i].name, (double)c->slots[i].tx_ns / 1e6);
        if (n < 0 || (size_t)n >= out_size - used)
            break;
        used += (size_t)n;
        any = true;
    }
    if (!any && used + 1 < out_size) {
        out[used++] = '-';
        out[used] = '\0';
    }
    for (size_t i = 0; i < c->chain->n && used < out_size; i++) {
        if (!c->slots[i].note)
            continue;
        n = snprintf(out + used, out_size - used, " %s=\"%s\"", c->chain->plugins[i].name,
                     c->slots[i].note);
        if (n < 0 || (size_t)n >= out_size - used)
            break;
        used += (size_t)n;
    }
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

/* Hand a ctx's verdict back to its connection (any thread). */
static void chain_ctx_done(struct sg_ctx *ctx, enum sg_verdict v, const char *reply)
{
    struct chain_conn *c = ctx->conn;
    char *wire = NULL;
    if (reply && (v == SG_REJECT || v == SG_TEMPFAIL)) {
        wire = chain_reply_wire(reply, v == SG_REJECT ? '5' : '4');
        if (!wire)
            plugin_log(ctx->plugin, SG_LOG_WARNING,
                       "malformed reply \"%.200s\" for %s: using the "
                       "default reply",
                       reply, verdict_name[v]);
    }
    /* notify under the lock: once released, the front-end (and what notify
     * touches) may be gone the moment the lock is let go. */
    pthread_mutex_lock(&c->lock);
    bool abandoned = atomic_load(&ctx->abandoned);
    c->outstanding--;
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
    enum sg_verdict v = chain_invoke(ctx);
    if (v == SG_PENDING)
        return; /* resolve comes later, from the plugin */
    chain_ctx_done(ctx, v, NULL);
}

void chain_host_resolve(struct sg_ctx *ctx, enum sg_verdict verdict, const char *reply)
{
    if (!ctx)
        return;
    if (verdict == SG_PENDING)
        verdict = SG_TEMPFAIL + 100; /* not a verdict: becomes the failure verdict */
    chain_ctx_done(ctx, verdict, reply);
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
        if (workpool_submit(chain_pool_job, ctx) == 0)
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
                   verdict_name[p->failure_verdict]);
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
        snprintf(res->reply, sizeof(res->reply), "451 4.3.0 Error: out of memory");
        res->action = CHAIN_REFUSE;
        res->verdict = SG_TEMPFAIL;
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
            snprintf(res->reply, sizeof(res->reply), "451 4.3.0 Error: out of memory");
            res->action = CHAIN_REFUSE;
            res->verdict = SG_TEMPFAIL;
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
static enum sg_stage chain_message_next(struct chain_conn *c, const struct sg_plugin *d)
{
    struct chain_run *r = &c->run;
    for (;;) {
        switch (r->stage) {
        case SG_STAGE_HEADER:
            if (d->header && r->hdr_i < c->hdr_view_n)
                return SG_STAGE_HEADER;
            r->stage = SG_STAGE_EOH;
            continue;
        case SG_STAGE_EOH:
            if (d->eoh && !r->plugin_started)
                return SG_STAGE_EOH;
            r->stage = SG_STAGE_BODY;
            r->plugin_started = false;
            r->body_off = c->content->headers ? c->content->headers->body_offset : 0;
            continue;
        case SG_STAGE_BODY:
            if (d->body && c->content->store && r->body_off < msg_store_size(c->content->store))
                return SG_STAGE_BODY;
            r->stage = SG_STAGE_EOM;
            r->plugin_started = false;
            continue;
        case SG_STAGE_EOM:
            if (d->eom && !r->plugin_started)
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
            stage = chain_message_next(c, p->desc);
            if (stage == SG_STAGE__COUNT) {
                chain_message_next_plugin(c);
                continue;
            }
        } else if (!chain_plugin_has(p->desc, stage)) {
            r->next++;
            continue;
        }
        struct sg_ctx *ctx = chain_ctx_for(c, i);
        if (!ctx) {
            snprintf(res->reply, sizeof(res->reply), "451 4.3.0 Error: out of memory");
            res->action = CHAIN_REFUSE;
            res->verdict = SG_TEMPFAIL;
            r->active = false;
            return CHAIN_DONE;
        }
        ctx->stage = stage;
        if (!r->message && (chain_ctx_args(ctx, r->arg, r->params) < 0)) {
            snprintf(res->reply, sizeof(res->reply), "451 4.3.0 Error: out of memory");
            res->action = CHAIN_REFUSE;
            res->verdict = SG_TEMPFAIL;
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
        c->slots[i].tx_ns += chain_ns_since(&r->call_started);
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
    c->slots[i].tx_ns += chain_ns_since(&r->call_started);
    enum sg_verdict v = ctx->verdict;
    if ((int)v >= SG_PENDING + 100)
        v = c->chain->plugins[i].failure_verdict;
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
    plugin_log(p, SG_LOG_WARNING, "%s: no verdict within %.3fs: using %s",
               c->info.session_id ? c->info.session_id : "-", p->timeout_ms / 1000.0,
               verdict_name[p->failure_verdict]);
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

/* ---- host functions ---- */

void chain_host_log(const struct sg_ctx *ctx, enum sg_log_level level, const char *fmt, ...)
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
    if (ctx)
        log_msg(prio, "%s: plugin %s: %s", ctx->conn->info.session_id, ctx->plugin->name, msg);
    else
        log_msg(prio, "plugin: %s", msg);
}

const struct sg_conn_info *chain_host_conn(const struct sg_ctx *ctx)
{
    return &ctx->conn->info;
}

const struct sg_envelope *chain_host_envelope(const struct sg_ctx *ctx)
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

enum sg_stage chain_host_stage(const struct sg_ctx *ctx)
{
    return ctx->stage;
}

size_t chain_host_header_count(const struct sg_ctx *ctx)
{
    const struct chain_conn *c = ctx->conn;
    if (ctx->stage == SG_STAGE_HEADER)
        return c->run.hdr_i + 1;
    return ctx->stage > SG_STAGE_HEADER ? c->hdr_view_n : 0;
}

const struct sg_header *chain_host_header_get(const struct sg_ctx *ctx, size_t i)
{
    return i < chain_host_header_count(ctx) ? &ctx->conn->hdr_view[i] : NULL;
}

uint64_t chain_host_message_size(const struct sg_ctx *ctx)
{
    const struct chain_conn *c = ctx->conn;
    return ctx->stage >= SG_STAGE_HEADER && c->content && c->content->store
               ? msg_store_size(c->content->store)
               : 0;
}

ssize_t chain_host_message_read(const struct sg_ctx *ctx, uint64_t offset, void *buf, size_t len)
{
    const struct chain_conn *c = ctx->conn;
    if (ctx->stage < SG_STAGE_HEADER || !c->content || !c->content->store ||
        atomic_load(&((struct sg_ctx *)ctx)->abandoned))
        return -1;
    if (offset >= msg_store_size(c->content->store))
        return 0;
    return msg_store_read(c->content->store, offset, buf, len);
}

uint64_t chain_host_body_offset(const struct sg_ctx *ctx)
{
    const struct chain_conn *c = ctx->conn;
    return c->content && c->content->headers ? c->content->headers->body_offset : 0;
}

static struct plugin_slot *chain_slot(const struct sg_ctx *ctx)
{
    return &ctx->conn->slots[ctx->plugin->index];
}

void chain_host_set_conn_data(struct sg_ctx *ctx, void *data, void (*free_fn)(void *))
{
    struct plugin_slot *s = chain_slot(ctx);
    if (s->conn_free && s->conn_data && s->conn_data != data)
        s->conn_free(s->conn_data);
    s->conn_data = data;
    s->conn_free = free_fn;
}

void *chain_host_conn_data(const struct sg_ctx *ctx)
{
    return chain_slot(ctx)->conn_data;
}

void chain_host_set_msg_data(struct sg_ctx *ctx, void *data, void (*free_fn)(void *))
{
    struct plugin_slot *s = chain_slot(ctx);
    if (s->msg_free && s->msg_data && s->msg_data != data)
        s->msg_free(s->msg_data);
    s->msg_data = data;
    s->msg_free = free_fn;
}

void *chain_host_msg_data(const struct sg_ctx *ctx)
{
    return chain_slot(ctx)->msg_data;
}

int chain_host_set_reply(struct sg_ctx *ctx, const char *reply)
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

void chain_host_set_quarantine_reason(struct sg_ctx *ctx, const char *reason)
{
    if (!atomic_load(&ctx->abandoned))
        chain_replace(&ctx->conn->quarantine_reason, reason);
}

/* ---- edits ---- */

static bool chain_header_name_ok(const char *name)
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
static bool chain_header_value_ok(const char *v)
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

static bool chain_mailbox_ok(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    if (n > 512)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)m[i] <= 32 || m[i] == '<' || m[i] == '>')
            return false;
    return true;
}

static bool chain_params_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n > 400)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 32 || p[i] == 127)
            return false;
    return true;
}

static int chain_add_edit(struct sg_ctx *ctx, enum chain_edit_kind kind, size_t index,
                          const char *name, const char *value, const char *params)
{
    struct chain_conn *c = ctx->conn;
    if (ctx->stage != SG_STAGE_EOM || !c->in_tx || c->nedits >= CHAIN_MAX_EDITS ||
        atomic_load(&ctx->abandoned))
        return -1;
    if (c->nedits == c->edits_cap) {
        size_t cap = c->edits_cap ? c->edits_cap * 2 : 8;
        struct chain_edit *n = realloc(c->edits, cap * sizeof(*n));
        if (!n)
            return -1;
        c->edits = n;
        c->edits_cap = cap;
    }
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

int chain_host_add_header(struct sg_ctx *ctx, const char *name, const char *value)
{
    if (!chain_header_name_ok(name) || !value || !chain_header_value_ok(value))
        return -1;
    return chain_add_edit(ctx, EDIT_ADD_HEADER, 0, name, value, NULL);
}

int chain_host_insert_header(struct sg_ctx *ctx, size_t index, const char *name, const char *value)
{
    if (!chain_header_name_ok(name) || !value || !chain_header_value_ok(value))
        return -1;
    return chain_add_edit(ctx, EDIT_INSERT_HEADER, index, name, value, NULL);
}

int chain_host_change_header(struct sg_ctx *ctx, const char *name, size_t nth, const char *value)
{
    if (!chain_header_name_ok(name) || nth == 0 || (value && !chain_header_value_ok(value)))
        return -1;
    return chain_add_edit(ctx, EDIT_CHANGE_HEADER, nth, name, value, NULL);
}

int chain_host_change_from(struct sg_ctx *ctx, const char *mailbox, const char *params)
{
    if (!mailbox || !chain_mailbox_ok(mailbox) || !chain_params_ok(params))
        return -1;
    return chain_add_edit(ctx, EDIT_CHANGE_FROM, 0, NULL, mailbox, params);
}

int chain_host_add_rcpt(struct sg_ctx *ctx, const char *mailbox, const char *params)
{
    if (!mailbox || !*mailbox || !chain_mailbox_ok(mailbox) || !chain_params_ok(params))
        return -1;
    return chain_add_edit(ctx, EDIT_ADD_RCPT, 0, NULL, mailbox, params);
}

int chain_host_del_rcpt(struct sg_ctx *ctx, const char *mailbox)
{
    if (!mailbox || !*mailbox || !chain_mailbox_ok(mailbox))
        return -1;
    return chain_add_edit(ctx, EDIT_DEL_RCPT, 0, NULL, mailbox, NULL);
}

int chain_host_replace_body(struct sg_ctx *ctx, const void *bytes, size_t len)
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

void chain_host_tx_note(struct sg_ctx *ctx, const char *text)
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
    struct plugin_slot *s = chain_slot(ctx);
    free(s->note);
    s->note = note;
}
