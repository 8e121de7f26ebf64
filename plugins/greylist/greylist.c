/*
 * greylist - the smtpgate greylisting plugin (postgrey's model): the first
 * attempt of a (client network, sender, recipient) triplet is refused for a
 * while; a real MTA retries, most spam software does not.
 *
 * Contract (plugins/smtpgate/plugin.h): one instance per section; the rcpt
 * callback runs on the connection's event loop and never blocks; its state
 * is in the state layer (plugins/state/kv.h), in the process or in Redis.
 *
 * At RCPT, for the triplet of the client's network (ipv4_prefix /
 * ipv6_prefix), the sender without "+extension" and the recipient, all
 * lower-cased:
 *   the client network was allowlisted     passes (passed_allowlisted)
 *   the triplet passed before              passes, its lifetime restarts
 *                                          (passed_known)
 *   first attempt                          "451 4.7.1 Greylisted, please try
 *                                          again in DELAY seconds"; the
 *                                          attempt is kept for retry_window
 *                                          (greylisted_new)
 *   a retry sooner than delay              451, with the seconds still to
 *                                          wait (greylisted_early)
 *   a retry after delay, within            passes; the triplet is kept as
 *   retry_window of the first attempt      passed for pass_lifetime, and
 *                                          counts towards its network's
 *                                          allowlisting (passed_retry)
 * A network with auto_allowlist_after passed retries is allowlisted for
 * auto_allowlist_lifetime from its last one (0: never).  Not greylisted
 * (counted exempt, the reason on the note: "exempt network", "exempt
 * authenticated", "exempt symbol=NAME", "exempt spf-pass=DOMAIN"): exempt
 * networks; authenticated clients (exempt_authenticated, default on); a
 * transaction that carries one of exempt_symbols (another plugin's opinion,
 * by default the dnsbl plugin's DNSBL_ALLOWLISTED); and with
 * exempt_spf_pass_aligned, a sender whose own domain SPF passed: SPF_PASS
 * whose checked domain (the symbol's detail) is the MAIL FROM domain.  That
 * is all that is knowable at RCPT: DMARC's alignment with the header From
 * needs the header, which comes after the recipients were answered.
 *
 * The backend failing (Redis down, or slower than redis_timeout) passes
 * the recipient (on_backend_failure = open) or refuses it with "451 4.3.0
 * Greylisting state unavailable, please try again later" (closed), logged
 * and counted (backend_failures).  The outcome goes on the transaction's
 * log line as greylist="...".
 */
#include <math.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "smtpgate/plugin.h"

#include "state/client_key.h"
#include "state/exempt.h"
#include "state/kv.h"
#include "state/kv_options.h"

#define GL_PART_MAX  (KV_KEY_MAX - 80)
#define GL_REPLY_MAX 256

struct gl_inst {
    const struct sg_host *host;
    struct kv *kv;
    bool fail_closed;
    unsigned v4, v6;
    char *prefix;
    uint64_t delay_ms, retry_window_ms, pass_lifetime_ms, allow_lifetime_ms;
    long long allow_after;
    struct exempt ex;
    char **exempt_symbols;
    size_t nexempt_symbols;
    bool exempt_spf_aligned;
};

struct gl_conn {
    struct gl_inst *in;
    struct event_base *base; /* attached to in->kv; NULL: not */
};

enum gl_get { GET_ALLOW = 0, GET_PASSED, GET_FIRST, GET__COUNT };

struct gl_check;
struct gl_op {
    struct gl_check *chk;
    int which; /* enum gl_get, or -1 for a write */
};

struct gl_check {
    struct gl_inst *in;
    struct sg_ctx *ctx;
    struct event_base *base;
    int outstanding;
    bool returned, writing, failed, write_failed;
    enum kv_status st[GET__COUNT];
    long long val[GET__COUNT];
    struct gl_op ops[GET__COUNT];
    struct gl_op write_op;
    enum sg_verdict verdict;
    char reply[GL_REPLY_MAX];
    char net[64];
    char key_allow[KV_KEY_MAX + 1], key_passed[KV_KEY_MAX + 1], key_first[KV_KEY_MAX + 1];
};

/* ---- connection data ---- */

static void gl_conn_free(void *p)
{
    struct gl_conn *c = p;
    if (c->base)
        kv_detach(c->in->kv, c->base);
    free(c);
}

static struct event_base *gl_base(struct gl_inst *in, struct sg_ctx *ctx)
{
    struct gl_conn *c = in->host->conn_data(ctx);
    if (!c) {
        if (!(c = calloc(1, sizeof(*c))))
            return NULL;
        c->in = in;
        in->host->set_conn_data(ctx, c, gl_conn_free);
    }
    if (!c->base && (c->base = in->host->event_loop(ctx, NULL)))
        kv_attach(in->kv, c->base);
    return c->base;
}

/* ---- the check ---- */

static void gl_finish(struct gl_check *chk)
{
    if (chk->write_failed) {
        chk->in->host->counter_add(chk->ctx, "backend_failures", 1);
        chk->in->host->log(chk->ctx, SG_LOG_WARNING,
                           "greylist state (%s) failed to record an attempt",
                           kv_backend_name(chk->in->kv));
    }
    if (chk->returned) {
        chk->in->host->resolve(chk->ctx, chk->verdict,
                               chk->verdict == SG_CONTINUE ? NULL : chk->reply);
        free(chk);
    }
}

static void gl_written(void *arg, enum kv_status st, long long value)
{
    (void)value;
    struct gl_op *op = arg;
    struct gl_check *chk = op->chk;
    if (st != KV_OK)
        chk->write_failed = true;
    if (--chk->outstanding == 0)
        gl_finish(chk);
}

static void gl_outcome(struct gl_check *chk, const char *what, enum sg_verdict v,
                       const char *counter)
{
    const struct sg_host *h = chk->in->host;
    chk->verdict = v;
    h->counter_add(chk->ctx, counter, 1);
    char note[128];
    snprintf(note, sizeof(note), "%s net=%s", what, chk->net);
    h->tx_note(chk->ctx, note);
}

/* Every read is in: decide, then write what the decision changes. */
static void gl_decide(struct gl_check *chk)
{
    struct gl_inst *in = chk->in;
    const struct sg_host *h = in->host;
    int64_t now = kv_now_ms();
    chk->writing = true;
    chk->outstanding = 1; /* held while the writes start */
    chk->write_op.chk = chk;
    chk->write_op.which = -1;
    if (chk->failed) {
        h->counter_add(chk->ctx, "backend_failures", 1);
        h->log(chk->ctx, SG_LOG_WARNING, "greylist state (%s) failed: %s", kv_backend_name(in->kv),
               in->fail_closed ? "refused (fail closed)" : "passed (fail open)");
        h->tx_note(chk->ctx,
                   in->fail_closed ? "backend-failure refused" : "backend-failure passed");
        chk->verdict = in->fail_closed ? SG_TEMPFAIL : SG_CONTINUE;
        snprintf(chk->reply, sizeof(chk->reply),
                 "451 4.3.0 Greylisting state unavailable, please try again later");
    } else if (in->allow_after > 0 && chk->st[GET_ALLOW] == KV_OK &&
               chk->val[GET_ALLOW] >= in->allow_after) {
        gl_outcome(chk, "allowlisted", SG_CONTINUE, "passed_allowlisted");
    } else if (chk->st[GET_PASSED] == KV_OK) {
        gl_outcome(chk, "known", SG_CONTINUE, "passed_known");
        chk->outstanding++;
        kv_set(in->kv, chk->base, chk->key_passed, now, in->pass_lifetime_ms, gl_written,
               &chk->write_op);
    } else if (chk->st[GET_FIRST] != KV_OK) {
        gl_outcome(chk, "new", SG_TEMPFAIL, "greylisted_new");
        snprintf(chk->reply, sizeof(chk->reply),
                 "451 4.7.1 Greylisted, please try again in %llu seconds",
                 (unsigned long long)((in->delay_ms + 999) / 1000));
        chk->outstanding++;
        kv_set(in->kv, chk->base, chk->key_first, now, in->retry_window_ms, gl_written,
               &chk->write_op);
    } else if (now - chk->val[GET_FIRST] < (int64_t)in->delay_ms) {
        int64_t left = (int64_t)in->delay_ms - (now - chk->val[GET_FIRST]);
        gl_outcome(chk, "early", SG_TEMPFAIL, "greylisted_early");
        snprintf(chk->reply, sizeof(chk->reply),
                 "451 4.7.1 Greylisted, please try again in %lld seconds",
                 (long long)((left + 999) / 1000));
    } else {
        gl_outcome(chk, "retry", SG_CONTINUE, "passed_retry");
        chk->outstanding++;
        kv_set(in->kv, chk->base, chk->key_passed, now, in->pass_lifetime_ms, gl_written,
               &chk->write_op);
        if (in->allow_after > 0) {
            chk->outstanding++;
            kv_add(in->kv, chk->base, chk->key_allow, 1, in->allow_lifetime_ms, gl_written,
                   &chk->write_op);
        }
    }
    if (--chk->outstanding == 0)
        gl_finish(chk);
}

static void gl_read(void *arg, enum kv_status st, long long value)
{
    struct gl_op *op = arg;
    struct gl_check *chk = op->chk;
    chk->st[op->which] = st;
    chk->val[op->which] = value;
    if (st == KV_FAILED)
        chk->failed = true;
    if (--chk->outstanding == 0)
        gl_decide(chk);
}

/* key = PREFIX:KIND:PART; a part too long for the store is replaced by
 * its hash, so a long address still gets an entry of its own. */
static void gl_key(char *key, const struct gl_inst *in, char kind, const char *part)
{
    if (strlen(part) <= GL_PART_MAX) {
        snprintf(key, KV_KEY_MAX + 1, "%s:%c:%s", in->prefix, kind, part);
        return;
    }
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)part; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    snprintf(key, KV_KEY_MAX + 1, "%s:%c:#%016llx", in->prefix, kind, (unsigned long long)h);
}

/* The SPF plugin's pass for the sender's own domain: SPF_PASS carries the
 * domain it checked as its detail, which for the null sender (or a check of
 * another identity) is not the MAIL FROM domain. */
static const char *gl_spf_pass_aligned(const struct sg_host *h, struct sg_ctx *ctx,
                                       const char *mail_from)
{
    const char *at = mail_from ? strrchr(mail_from, '@') : NULL;
    if (!at || !at[1] || !SG_HAS(h, symbol_get))
        return NULL;
    for (size_t i = 0; i < h->symbol_count(ctx); i++) {
        const struct sg_symbol *sym = h->symbol_get(ctx, i);
        if (sym && strcmp(sym->name, "SPF_PASS") == 0 && sym->detail &&
            strcasecmp(sym->detail, at + 1) == 0)
            return sym->detail;
    }
    return NULL;
}

/* Why this recipient is not greylisted, as the note says it, or false. */
static bool gl_exempt(const struct gl_inst *in, struct sg_ctx *ctx, char *why, size_t why_len)
{
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    const struct sg_envelope *env = h->envelope(ctx);
    const char *reason = exempt_client(&in->ex, ci->client_addr, ci->login);
    if (reason) {
        snprintf(why, why_len, "exempt %s", reason);
        return true;
    }
    if (SG_HAS(h, symbol_score))
        for (size_t i = 0; i < in->nexempt_symbols; i++)
            if (h->symbol_score(ctx, in->exempt_symbols[i], NULL)) {
                snprintf(why, why_len, "exempt symbol=%s", in->exempt_symbols[i]);
                return true;
            }
    const char *domain;
    if (in->exempt_spf_aligned && env && (domain = gl_spf_pass_aligned(h, ctx, env->mail_from))) {
        snprintf(why, why_len, "exempt spf-pass=%.200s", domain);
        return true;
    }
    return false;
}

static enum sg_verdict gl_rcpt(struct sg_ctx *ctx, void *instance, const char *rcpt,
                               const char *params)
{
    (void)params;
    struct gl_inst *in = instance;
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    const struct sg_envelope *env = h->envelope(ctx);
    char why[256];
    if (gl_exempt(in, ctx, why, sizeof(why))) {
        h->counter_add(ctx, "exempt", 1);
        h->tx_note(ctx, why);
        return SG_CONTINUE;
    }
    struct gl_check *chk = calloc(1, sizeof(*chk));
    if (!chk)
        return SG_TEMPFAIL;
    char sender[KV_KEY_MAX], recipient[KV_KEY_MAX];
    char triplet[3 * KV_KEY_MAX];
    if (client_key_network(ci->client_addr, in->v4, in->v6, chk->net, sizeof(chk->net)) < 0 ||
        client_key_sender(env && env->mail_from ? env->mail_from : "", true, sender,
                          sizeof(sender)) < 0 ||
        client_key_sender(rcpt, false, recipient, sizeof(recipient)) < 0) {
        /* Nothing to key on (an address the store cannot hold): no opinion. */
        free(chk);
        return SG_CONTINUE;
    }
    snprintf(triplet, sizeof(triplet), "%s/%s/%s", chk->net, sender, recipient);
    gl_key(chk->key_allow, in, 'a', chk->net);
    gl_key(chk->key_passed, in, 'p', triplet);
    gl_key(chk->key_first, in, 'f', triplet);
    chk->in = in;
    chk->ctx = ctx;
    chk->base = gl_base(in, ctx);
    chk->outstanding = 1 + GET__COUNT;
    const char *keys[GET__COUNT] = {chk->key_allow, chk->key_passed, chk->key_first};
    for (int i = 0; i < GET__COUNT; i++) {
        chk->ops[i].chk = chk;
        chk->ops[i].which = i;
        if (!chk->base && strcmp(kv_backend_name(in->kv), "redis") == 0)
            gl_read(&chk->ops[i], KV_FAILED, 0);
        else
            kv_get(in->kv, chk->base, keys[i], gl_read, &chk->ops[i]);
    }
    if (--chk->outstanding == 0)
        gl_decide(chk);
    /* Reads and writes all answered already (the local backend): the
     * decision is this callback's verdict. */
    if (chk->writing && chk->outstanding == 0) {
        enum sg_verdict v = chk->verdict;
        if (v != SG_CONTINUE)
            h->set_reply(ctx, chk->reply);
        free(chk);
        return v;
    }
    chk->returned = true;
    return SG_PENDING;
}

/* ---- configuration ---- */

static void gl_free(struct gl_inst *in)
{
    if (!in)
        return;
    kv_unref(in->kv);
    free(in->prefix);
    exempt_free(&in->ex);
    for (size_t i = 0; i < in->nexempt_symbols; i++)
        free(in->exempt_symbols[i]);
    free(in->exempt_symbols);
    free(in);
}

static int gl_read_symbols(const struct sg_host *h, const struct sg_section *sec,
                           struct gl_inst *in)
{
    size_t n = h->opt_list_size(sec, "exempt_symbols");
    if (n && !(in->exempt_symbols = calloc(n, sizeof(*in->exempt_symbols))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!(in->exempt_symbols[i] = strdup(h->opt_list_item(sec, "exempt_symbols", i))))
            return -1;
        in->nexempt_symbols++;
    }
    bool listed = n && h->opt_is_set(sec, "exempt_symbols");
    if ((listed || in->exempt_spf_aligned) && !SG_HAS(h, symbol_get) &&
        SG_HAS(h, config_warning))
        h->config_warning(sec, listed ? "exempt_symbols" : "exempt_spf_pass_aligned",
                          "this smtpgate has no symbols: nothing is exempt by them");
    return 0;
}

/* A name the host's add_symbol takes: letters, digits and '_', not starting
 * with a digit, at most 128 octets. */
static const char *gl_check_symbol(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 128 || (v[0] >= '0' && v[0] <= '9'))
        return "want a symbol name (letters, digits and '_', not starting with a digit, at most "
               "128 octets)";
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return "want a symbol name (letters, digits and '_', not starting with a digit, at "
                   "most 128 octets)";
    }
    return NULL;
}

static uint64_t gl_ms(const struct sg_host *h, const struct sg_section *sec, const char *key)
{
    return (uint64_t)llround(h->opt_float(sec, key) * 1000);
}

static int gl_setup(const struct sg_host *h, const struct sg_section *sec, struct gl_inst *previous,
                    void **instance)
{
    struct gl_inst *in = calloc(1, sizeof(*in));
    if (!in)
        return -1;
    in->host = h;
    struct kv_options o;
    kv_options_read(h, sec, &o);
    in->fail_closed = o.fail_closed;
    in->v4 = o.ipv4_prefix;
    in->v6 = o.ipv6_prefix;
    in->prefix = strdup(o.key_prefix);
    in->delay_ms = gl_ms(h, sec, "delay");
    in->retry_window_ms = gl_ms(h, sec, "retry_window");
    in->pass_lifetime_ms = gl_ms(h, sec, "pass_lifetime");
    in->allow_lifetime_ms = gl_ms(h, sec, "auto_allowlist_lifetime");
    in->allow_after = h->opt_int(sec, "auto_allowlist_after");
    in->exempt_spf_aligned = h->opt_bool(sec, "exempt_spf_pass_aligned");
    if (!in->prefix || exempt_read(h, sec, &in->ex) < 0 || gl_read_symbols(h, sec, in) < 0) {
        gl_free(in);
        return -1;
    }
    if (in->retry_window_ms <= in->delay_ms) {
        h->config_error(sec, "retry_window", "must be longer than delay (%.3g s)",
                        (double)in->delay_ms / 1000);
        gl_free(in);
        return -1;
    }
    char err[256];
    if (previous && kv_same_config(previous->kv, &o.cfg))
        in->kv = kv_ref(previous->kv);
    else if (!(in->kv = kv_open(&o.cfg, err, sizeof(err)))) {
        h->config_error(sec, "backend", "%s", err);
        gl_free(in);
        return -1;
    }
    if (SG_HAS(h, set_stages))
        h->set_stages(sec, SG_STAGE_BIT(SG_STAGE_RCPT));
    *instance = in;
    return 0;
}

static int gl_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    return gl_setup(h, sec, NULL, instance);
}

static int gl_reload(const struct sg_host *h, const struct sg_section *sec, void *previous,
                     void **instance)
{
    return gl_setup(h, sec, previous, instance);
}

static void gl_fini(void *instance)
{
    gl_free(instance);
}

#define GL_DAY 86400.0

static const struct sg_option gl_options[] = {
    {"delay", SG_OPT_FLOAT, "300", NULL, 0, 7 * GL_DAY},
    {"retry_window", SG_OPT_FLOAT, "172800", NULL, 0.1, 60 * GL_DAY},
    {"pass_lifetime", SG_OPT_FLOAT, "3024000", NULL, 0.1, 400 * GL_DAY},
    {"auto_allowlist_after", SG_OPT_INT, "5", NULL, 0, 1000000},
    {"auto_allowlist_lifetime", SG_OPT_FLOAT, "3024000", NULL, 0.1, 400 * GL_DAY},
    {"exempt_networks", SG_OPT_LIST, NULL, exempt_check_network, 0, 0},
    {"exempt_authenticated", SG_OPT_BOOL, "true", NULL, 0, 0},
    {"exempt_symbols", SG_OPT_LIST, "{\"DNSBL_ALLOWLISTED\"}", gl_check_symbol, 0, 0},
    {"exempt_spf_pass_aligned", SG_OPT_BOOL, "false", NULL, 0, 0},
    KV_OPTIONS("gl"),
    {NULL, 0, NULL, NULL, 0, 0},
};

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "greylist",
    .version = "1",
    .description = "greylisting of (client network, sender, recipient) triplets",
    .options = gl_options,
    .init = gl_init,
    .reload = gl_reload,
    .fini = gl_fini,
    .rcpt = gl_rcpt,
};
