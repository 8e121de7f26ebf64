/*
 * chain_conn - a connection's life in the chain: made by the front-end with
 * the connection facts, told of facts learned later (HELO, AUTH, TLS), of
 * each transaction's beginning, envelope and end, and let go of when the
 * connection ends (chain.h states the contract).
 *
 * The connection is reference-counted: the front-end holds one reference,
 * every plugin call that is out holds another (chain.c takes them), so that
 * a plugin that resolves late still finds what it may read.  The last
 * reference runs the plugins' abort (a transaction without eom) and close
 * callbacks and frees their private data, on whatever thread lets go last.
 * Objects the front-end or a fact change would free while a call is out are
 * adopted instead, and freed then.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "chain/conn_impl.h"
#include "chain/instance.h"
#include "util/alloc.h"

/* ---- helpers ---- */

char *chain_strdup(const char *s)
{
    return s ? util_strdup(s) : NULL;
}

void chain_replace(char **field, const char *value)
{
    char *n = chain_strdup(value);
    if (value && !n)
        return;
    free(*field);
    *field = n;
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
    c->info.size = sizeof(c->info); /* the host's size: plugins test members with SG_HAS */
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
    symbols_clear(&c->tx_syms);
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
    symbols_clear(&c->conn_syms);
    free(c->slots);
    free(c->spool_dir);
    chain_free_info(&c->info);
    chain_unref(c->chain);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void chain_conn_unref(struct chain_conn *c)
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
    if (util_grow(&c->rcpt, &c->rcpt_cap, c->nrcpt + 1, sizeof(*c->rcpt)) != 0)
        return;
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
                     c->decided_by ? c->decided_by : "-", chain_verdict_name(c->decided_verdict));
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
    if (chain_symbol_count(c) == 0 || used + 16 >= out_size)
        return;
    used += (size_t)snprintf(out + used, out_size - used, " symbols=");
    used = symbols_format(&c->conn_syms, &c->tx_syms, out, used, out_size);
    char total[32];
    symbol_score_text(chain_symbols_total(c), total);
    if (used < out_size)
        snprintf(out + used, out_size - used, " score=%s", total);
}

size_t chain_symbol_count(const struct chain_conn *c)
{
    return c->conn_syms.n + c->tx_syms.n;
}

const struct sg_symbol *chain_symbol_get(const struct chain_conn *c, size_t i)
{
    if (i < c->conn_syms.n)
        return &c->conn_syms.v[i];
    i -= c->conn_syms.n;
    return i < c->tx_syms.n ? &c->tx_syms.v[i] : NULL;
}

double chain_symbols_total(const struct chain_conn *c)
{
    double t = 0;
    for (size_t i = 0; i < chain_symbol_count(c); i++)
        t += chain_symbol_get(c, i)->score;
    return t;
}

void chain_tx_decision(const struct chain_conn *c, unsigned *generation, const char **decided_by,
                       const char **verdict)
{
    *generation = c->chain ? c->chain->generation : 0;
    *decided_by = c->decided_by;
    *verdict = chain_verdict_name(c->decided_verdict);
}

bool chain_tx_plugin_time(const struct chain_conn *c, size_t i, const char **name, double *ms)
{
    if (!c->chain || i >= c->chain->n)
        return false;
    *name = c->chain->plugins[i].name;
    *ms = c->slots[i].used_in_tx ? (double)c->slots[i].tx_ns / 1e6 : -1.0;
    return true;
}
