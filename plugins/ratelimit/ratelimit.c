/*
 * ratelimit - the smtpgate rate limit plugin: connections, messages and
 * recipients per client, network, sender, sender domain, login or
 * recipient domain over a sliding window, and concurrent connections per
 * client or network (Postfix's anvil, rspamd's ratelimit).
 *
 * Contract (plugins/smtpgate/plugin.h): one instance per section; every
 * callback runs on the connection's event loop (none blocks).  Each event
 * is counted in the state layer (plugins/state/kv.h) under
 * PREFIX:KIND:KEY:WINDOW_MS:VALUE, refused or not: every attempt counts,
 * so a client that keeps hammering stays refused.  A rule is over its limit
 * when the count, this event included, passes COUNT.
 *
 *   connect  concurrency rules (always in this process: a count of open
 *            connections dies with them), then connections rules;
 *            over: "421 4.7.0 Error: too many connections from ADDR"
 *   mail     messages rules: "450 4.7.1 Error: too much mail from X"
 *   rcpt     recipients rules: "450 4.7.1 Error: too many recipients
 *            from X" ("for DOMAIN" per recipient_domain)
 *
 * A connection's concurrency counts are given back when it is refused at
 * connect and when it ends, by the free function of its private data,
 * which the host runs on every path (so no key is ever held past the
 * connection).  Exempt networks skip every rule; with exempt_authenticated
 * an authenticated client skips the rules not keyed by login; a rule keyed
 * by login applies to authenticated clients only; sender rules skip the
 * null sender.
 *
 * When the backend fails (Redis down or slow past redis_timeout), a
 * check fails open (passes) or closed (421/451 4.3.0) as on_backend_failure
 * says, with a log line and the counter backend_failures.  Counters:
 * limited_connections, limited_concurrency, limited_messages,
 * limited_recipients, backend_failures, exempt.  A refusal at MAIL or RCPT
 * puts limit="RULE key=X" on the transaction's log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpgate/plugin.h"

#include "rate_rule.h"
#include "state/client_key.h"
#include "state/exempt.h"
#include "state/kv.h"
#include "state/kv_options.h"

#define RL_WHO_MAX            320
#define RL_REPLY_MAX          512
#define RL_CONCURRENCY_TTL_MS (24ULL * 3600 * 1000)

struct rl_rule {
    struct rate_rule r;
    char text[96]; /* canonical, for logs and notes */
};

struct rl_inst {
    const struct sg_host *host;
    struct kv *kv;   /* the configured backend */
    struct kv *conc; /* concurrency: always local */
    struct kv_config cfg;
    bool fail_closed;
    unsigned v4, v6;
    char *prefix;
    struct rl_rule *rules;
    size_t nrules;
    struct exempt ex;
    bool has_concurrency;
};

struct rl_conn {
    struct rl_inst *in;
    struct event_base *base; /* attached to in->kv; NULL: not */
    const char *exempt;      /* why, or NULL */
    char **conc_keys;        /* concurrency keys this connection holds */
    size_t nconc;
};

/* ---- connection data ---- */

static void rl_ignore(void *arg, enum kv_status st, long long value)
{
    (void)arg;
    (void)st;
    (void)value;
}

static void rl_give_back(struct rl_conn *c)
{
    for (size_t i = 0; i < c->nconc; i++) {
        kv_add(c->in->conc, NULL, c->conc_keys[i], -1, RL_CONCURRENCY_TTL_MS, rl_ignore, NULL);
        free(c->conc_keys[i]);
    }
    free(c->conc_keys);
    c->conc_keys = NULL;
    c->nconc = 0;
}

static void rl_conn_free(void *p)
{
    struct rl_conn *c = p;
    rl_give_back(c);
    if (c->base)
        kv_detach(c->in->kv, c->base);
    free(c);
}

static struct rl_conn *rl_conn_get(struct rl_inst *in, struct sg_ctx *ctx)
{
    struct rl_conn *c = in->host->conn_data(ctx);
    if (c)
        return c;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->in = in;
    const struct sg_conn_info *ci = in->host->conn(ctx);
    c->exempt = exempt_client(&in->ex, ci->client_addr, NULL);
    in->host->set_conn_data(ctx, c, rl_conn_free);
    return c;
}

/* The loop this connection's operations run on, attached once. */
static struct event_base *rl_base(struct rl_inst *in, struct rl_conn *c, struct sg_ctx *ctx)
{
    if (!c->base && (c->base = in->host->event_loop(ctx, NULL)))
        kv_attach(in->kv, c->base);
    return c->base;
}

/* ---- one check: every rule of a stage, counted at once ---- */

struct rl_slot {
    struct rl_check *chk;
    size_t rule;
    char who[RL_WHO_MAX];
};

struct rl_check {
    struct rl_inst *in;
    struct sg_ctx *ctx;
    struct rl_conn *conn;
    enum rate_kind kind; /* connections also stands for concurrency at connect */
    int outstanding;
    bool returned; /* the callback returned SG_PENDING: resolve() decides */
    bool failed;
    size_t hit; /* the first rule over its limit, in rule order; SIZE_MAX: none */
    long long hit_count;
    const char *hit_who;
    enum sg_verdict verdict;
    char reply[RL_REPLY_MAX];
    size_t nslots;
    struct rl_slot slots[];
};

/* The value a rule counts under, or false when it does not apply. */
static bool rl_who(const struct rl_inst *in, const struct rl_rule *rule, struct sg_ctx *ctx,
                   const char *arg, char *who, size_t len)
{
    const struct sg_conn_info *ci = in->host->conn(ctx);
    const struct sg_envelope *env = in->host->envelope(ctx);
    const char *sender = env ? env->mail_from : NULL;
    if (rule->r.kind == RATE_MESSAGES)
        sender = arg;
    switch (rule->r.key) {
    case RATE_KEY_CLIENT:
        return client_key_address(ci->client_addr, who, len) >= 0;
    case RATE_KEY_CLIENT_NETWORK:
        return client_key_network(ci->client_addr, in->v4, in->v6, who, len) >= 0;
    case RATE_KEY_SENDER:
        return sender && *sender && client_key_sender(sender, false, who, len) >= 0;
    case RATE_KEY_SENDER_DOMAIN:
        return sender && *sender && client_key_domain(sender, who, len) >= 0;
    case RATE_KEY_LOGIN:
        return ci->login && *ci->login && snprintf(who, len, "%s", ci->login) < (int)len;
    case RATE_KEY_RECIPIENT_DOMAIN:
        return arg && client_key_domain(arg, who, len) >= 0;
    }
    return false;
}

static void rl_decide(struct rl_check *chk)
{
    struct rl_inst *in = chk->in;
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(chk->ctx);
    chk->verdict = SG_CONTINUE;
    if (chk->hit != SIZE_MAX) {
        const struct rl_rule *rule = &in->rules[chk->hit];
        static const char *const counters[] = {"limited_connections", "limited_messages",
                                               "limited_recipients", "limited_concurrency"};
        h->counter_add(chk->ctx, counters[rule->r.kind], 1);
        h->log(chk->ctx, SG_LOG_INFO, "limit %s exceeded by %s (%lld): refused", rule->text,
               chk->hit_who, chk->hit_count);
        chk->verdict = SG_TEMPFAIL;
        switch (rule->r.kind) {
        case RATE_CONNECTIONS:
        case RATE_CONCURRENCY:
            snprintf(chk->reply, sizeof(chk->reply),
                     "421 4.7.0 Error: too many connections from %s", ci->client_addr);
            break;
        case RATE_MESSAGES:
            snprintf(chk->reply, sizeof(chk->reply), "450 4.7.1 Error: too much mail from %s",
                     chk->hit_who);
            break;
        case RATE_RECIPIENTS:
            snprintf(chk->reply, sizeof(chk->reply), "450 4.7.1 Error: too many recipients %s %s",
                     rule->r.key == RATE_KEY_RECIPIENT_DOMAIN ? "for" : "from", chk->hit_who);
            break;
        }
        if (chk->kind != RATE_CONNECTIONS) {
            char note[RL_WHO_MAX + 128];
            snprintf(note, sizeof(note), "limit=%s key=%s", rule->text, chk->hit_who);
            h->tx_note(chk->ctx, note);
        }
    } else if (chk->failed) {
        h->counter_add(chk->ctx, "backend_failures", 1);
        h->log(chk->ctx, SG_LOG_WARNING, "rate limit state (%s) failed: %s",
               kv_backend_name(in->kv),
               in->fail_closed ? "refused (fail closed)" : "passed (fail open)");
        if (chk->kind != RATE_CONNECTIONS)
            h->tx_note(chk->ctx, in->fail_closed ? "limit=backend-failure refused"
                                                 : "limit=backend-failure passed");
        if (in->fail_closed) {
            chk->verdict = SG_TEMPFAIL;
            snprintf(chk->reply, sizeof(chk->reply),
                     "%s 4.3.0 Error: rate limit state unavailable, try again later",
                     chk->kind == RATE_CONNECTIONS ? "421" : "451");
        }
    }
    /* Refused at connect: the connection will not be served, so it holds
     * no concurrency from now on. */
    if (chk->kind == RATE_CONNECTIONS && chk->verdict != SG_CONTINUE && chk->conn)
        rl_give_back(chk->conn);
}

static void rl_check_end(struct rl_check *chk)
{
    rl_decide(chk);
    if (chk->returned) {
        chk->in->host->resolve(chk->ctx, chk->verdict,
                               chk->verdict == SG_CONTINUE ? NULL : chk->reply);
        free(chk);
    }
}

static void rl_counted(void *arg, enum kv_status st, long long value)
{
    struct rl_slot *slot = arg;
    struct rl_check *chk = slot->chk;
    if (st != KV_OK)
        chk->failed = true;
    else if (value > (long long)chk->in->rules[slot->rule].r.count &&
             (chk->hit == SIZE_MAX || slot->rule < chk->hit)) {
        chk->hit = slot->rule;
        chk->hit_count = value;
        chk->hit_who = slot->who;
    }
    if (--chk->outstanding == 0)
        rl_check_end(chk);
}

static enum sg_verdict rl_run(struct rl_inst *in, struct sg_ctx *ctx, enum rate_kind kind,
                              const char *arg)
{
    const struct sg_host *h = in->host;
    struct rl_conn *conn = rl_conn_get(in, ctx);
    if (!conn)
        return SG_TEMPFAIL;
    if (conn->exempt) {
        if (kind == RATE_CONNECTIONS)
            h->counter_add(ctx, "exempt", 1);
        return SG_CONTINUE;
    }
    const struct sg_conn_info *ci = h->conn(ctx);
    bool auth_exempt = kind != RATE_CONNECTIONS && in->ex.authenticated && ci->login && *ci->login;
    struct rl_check *chk = calloc(1, sizeof(*chk) + in->nrules * sizeof(struct rl_slot));
    if (!chk)
        return SG_TEMPFAIL;
    chk->in = in;
    chk->ctx = ctx;
    chk->conn = conn;
    chk->kind = kind;
    chk->hit = SIZE_MAX;
    chk->outstanding = 1; /* held until every operation is started */

    for (size_t i = 0; i < in->nrules; i++) {
        const struct rl_rule *rule = &in->rules[i];
        bool concurrency = kind == RATE_CONNECTIONS && rule->r.kind == RATE_CONCURRENCY;
        if (rule->r.kind != kind && !concurrency)
            continue;
        if (auth_exempt && rule->r.key != RATE_KEY_LOGIN)
            continue;
        struct rl_slot *slot = &chk->slots[chk->nslots];
        if (!rl_who(in, rule, ctx, arg, slot->who, sizeof(slot->who)))
            continue;
        char key[KV_KEY_MAX + 1];
        if (snprintf(key, sizeof(key), "%s:%s:%s:%llu:%s", in->prefix, rate_kind_name(rule->r.kind),
                     rate_key_name(rule->r.key), (unsigned long long)rule->r.window_ms,
                     slot->who) >= (int)sizeof(key))
            continue;
        slot->chk = chk;
        slot->rule = i;
        chk->nslots++;
        chk->outstanding++;
        if (concurrency) {
            char **keys = realloc(conn->conc_keys, (conn->nconc + 1) * sizeof(*keys));
            char *copy = strdup(key);
            if (!keys || !copy) {
                free(copy);
                if (keys)
                    conn->conc_keys = keys;
                rl_counted(slot, KV_FAILED, 0);
                continue;
            }
            conn->conc_keys = keys;
            conn->conc_keys[conn->nconc++] = copy;
            kv_add(in->conc, NULL, key, 1, RL_CONCURRENCY_TTL_MS, rl_counted, slot);
            continue;
        }
        struct event_base *base = rl_base(in, conn, ctx);
        if (!base && strcmp(kv_backend_name(in->kv), "redis") == 0) {
            rl_counted(slot, KV_FAILED, 0);
            continue;
        }
        kv_window(in->kv, base, key, rule->r.window_ms, rl_counted, slot);
    }
    if (--chk->outstanding == 0) {
        rl_decide(chk);
        enum sg_verdict v = chk->verdict;
        if (v != SG_CONTINUE)
            h->set_reply(ctx, chk->reply);
        free(chk);
        return v;
    }
    chk->returned = true;
    return SG_PENDING;
}

static enum sg_verdict rl_connect(struct sg_ctx *ctx, void *instance)
{
    return rl_run(instance, ctx, RATE_CONNECTIONS, NULL);
}

static enum sg_verdict rl_mail(struct sg_ctx *ctx, void *instance, const char *from,
                               const char *params)
{
    (void)params;
    return rl_run(instance, ctx, RATE_MESSAGES, from);
}

static enum sg_verdict rl_rcpt(struct sg_ctx *ctx, void *instance, const char *rcpt,
                               const char *params)
{
    (void)params;
    return rl_run(instance, ctx, RATE_RECIPIENTS, rcpt);
}

/* ---- configuration ---- */

static const char *rl_check_rule(const char *v)
{
    const char *why = "empty rule";
    return v && rate_rule_parse(v, strlen(v), NULL, &why) == 0 ? NULL : why;
}

static void rl_rule_text(struct rl_rule *rule)
{
    const struct rate_rule *r = &rule->r;
    if (r->kind == RATE_CONCURRENCY) {
        snprintf(rule->text, sizeof(rule->text), "concurrency per %s %llu", rate_key_name(r->key),
                 (unsigned long long)r->count);
        return;
    }
    static const struct {
        uint64_t ms;
        char unit;
    } units[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
    size_t u = 0;
    while (u < 3 && r->window_ms % units[u].ms != 0)
        u++;
    snprintf(rule->text, sizeof(rule->text), "%s per %s %llu/%llu%c", rate_kind_name(r->kind),
             rate_key_name(r->key), (unsigned long long)r->count,
             (unsigned long long)(r->window_ms / units[u].ms), units[u].unit);
}

static void rl_free(struct rl_inst *in)
{
    if (!in)
        return;
    kv_unref(in->kv);
    kv_unref(in->conc);
    free(in->prefix);
    free(in->rules);
    exempt_free(&in->ex);
    free(in);
}

static int rl_setup(const struct sg_host *h, const struct sg_section *sec, struct rl_inst *previous,
                    void **instance)
{
    struct rl_inst *in = calloc(1, sizeof(*in));
    if (!in)
        return -1;
    in->host = h;
    struct kv_options o;
    kv_options_read(h, sec, &o);
    in->fail_closed = o.fail_closed;
    in->v4 = o.ipv4_prefix;
    in->v6 = o.ipv6_prefix;
    in->prefix = strdup(o.key_prefix);
    size_t n = h->opt_list_size(sec, "limit");
    in->rules = calloc(n + 1, sizeof(*in->rules));
    if (!in->prefix || !in->rules || exempt_read(h, sec, &in->ex) < 0) {
        rl_free(in);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = h->opt_list_item(sec, "limit", i);
        const char *why = "empty rule";
        if (!v || rate_rule_parse(v, strlen(v), &in->rules[i].r, &why) < 0) {
            h->config_error(sec, "limit", "'%s': %s", v ? v : "", why);
            rl_free(in);
            return -1;
        }
        rl_rule_text(&in->rules[i]);
        in->has_concurrency |= in->rules[i].r.kind == RATE_CONCURRENCY;
    }
    in->nrules = n;
    if (n == 0 && SG_HAS(h, config_warning))
        h->config_warning(sec, "limit", "no limit is set: the plugin does nothing");
    if (o.cfg.backend == KV_REDIS && in->has_concurrency && SG_HAS(h, config_warning))
        h->config_warning(sec, "limit",
                          "concurrency is counted in this process only, not in Redis");
    char err[256];
    if (previous && kv_same_config(previous->kv, &o.cfg))
        in->kv = kv_ref(previous->kv);
    else if (!(in->kv = kv_open(&o.cfg, err, sizeof(err)))) {
        h->config_error(sec, "backend", "%s", err);
        rl_free(in);
        return -1;
    }
    /* Concurrency lives as long as the connections it counts: a reload
     * keeps the counts of the connections still open. */
    struct kv_config local = {.backend = KV_LOCAL, .max_entries = o.cfg.max_entries};
    if (previous && previous->conc)
        in->conc = kv_ref(previous->conc);
    else if (!(in->conc = kv_open(&local, err, sizeof(err)))) {
        h->config_error(sec, "max_entries", "%s", err);
        rl_free(in);
        return -1;
    }
    unsigned stages = 0;
    for (size_t i = 0; i < n; i++)
        stages |= in->rules[i].r.kind == RATE_MESSAGES     ? SG_STAGE_BIT(SG_STAGE_MAIL)
                  : in->rules[i].r.kind == RATE_RECIPIENTS ? SG_STAGE_BIT(SG_STAGE_RCPT)
                                                           : SG_STAGE_BIT(SG_STAGE_CONNECT);
    if (SG_HAS(h, set_stages))
        h->set_stages(sec, stages);
    *instance = in;
    return 0;
}

static int rl_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    return rl_setup(h, sec, NULL, instance);
}

static int rl_reload(const struct sg_host *h, const struct sg_section *sec, void *previous,
                     void **instance)
{
    return rl_setup(h, sec, previous, instance);
}

static void rl_fini(void *instance)
{
    rl_free(instance);
}

static const struct sg_option rl_options[] = {
    {"limit", SG_OPT_LIST, NULL, rl_check_rule, 0, 0},
    {"exempt_networks", SG_OPT_LIST, NULL, exempt_check_network, 0, 0},
    {"exempt_authenticated", SG_OPT_BOOL, "false", NULL, 0, 0},
    KV_OPTIONS("rl"),
    {NULL, 0, NULL, NULL, 0, 0},
};

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "ratelimit",
    .version = "1",
    .description = "rate limits and concurrency per client, network, sender, login or domain",
    .options = rl_options,
    .init = rl_init,
    .reload = rl_reload,
    .fini = rl_fini,
    .connect = rl_connect,
    .mail = rl_mail,
    .rcpt = rl_rcpt,
};
