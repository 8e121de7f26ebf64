/*
 * milter_policy - a test plugin whose options script verdicts at each stage,
 * so that integration tests can check how a front-end carries them out
 * (smtpgate-milter inside Postfix, and the proxy, with the same section).
 *
 *   plugin policy {
 *       path = "build/asan/tests/plugins/milter_policy.so"
 *       reject_rcpt       = {"blocked@example.test"}   # refused at RCPT
 *       rcpt_reply        = "550 5.7.1 Recipient blocked by policy"
 *       reject_mail       = {"bad@example.test"}       # refused at MAIL
 *       mail_reply        = "550 5.7.1 Sender blocked by policy"
 *       body_reject       = "REJECT-ME"                # refused at end of data
 *       body_reply        = "550 5.7.1 Message content rejected"
 *       body_tempfail     = "DEFER-ME"
 *       tempfail_reply    = "451 4.7.1 Message deferred by policy"
 *       quarantine_marker = "HOLD-ME"
 *       quarantine_reason = "held by policy"
 *       discard_marker    = "DROP-ME"
 *       add_header        = "X-Policy: checked"        # on every message let through
 *       pending_ms        = 0                          # mail verdict arrives later
 *       facts_header      = false                      # add X-Policy-Facts (below)
 *   }
 *
 * Markers are searched for in the body (everything after the header
 * section), streamed through message_read in pieces, so a marker that spans
 * two pieces is found too.  With pending_ms > 0 the mail callback returns
 * SG_PENDING and a thread resolves it as SG_CONTINUE that many milliseconds
 * later, which exercises a front-end's waiting (and, past the plugin's
 * timeout, its failure verdict).
 *
 * facts_header adds "X-Policy-Facts: client=ADDR:PORT name=NAME local=ADDR:PORT
 * helo=HELO tls=VERSION login=LOGIN from=MAILBOX nrcpt=N" at eom (each
 * unknown fact as "-"), so a test can see the connection facts a front-end
 * handed over.
 *
 * Diagnostics: add_header without ": " is a configuration error; mail and
 * rcpt refusals and eom verdicts are counted (counter_add).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smtpgate/plugin.h"

#define POLICY_PIECE 8192

struct policy {
    const struct sg_host *host;
    char **reject_rcpt;
    size_t nreject_rcpt;
    char **reject_mail;
    size_t nreject_mail;
    char *rcpt_reply, *mail_reply;
    char *body_reject, *body_reply;
    char *body_tempfail, *tempfail_reply;
    char *quarantine_marker, *quarantine_reason;
    char *discard_marker;
    char *header_name, *header_value;
    long long pending_ms;
    bool facts_header;
};

static const char *policy_check_header(const char *value)
{
    const char *colon = strstr(value, ": ");
    return colon && colon != value ? NULL : "must be \"Name: value\"";
}

static const struct sg_option policy_options[] = {
    {"reject_rcpt", SG_OPT_LIST, NULL, NULL, 0, 0},
    {"rcpt_reply", SG_OPT_STRING, "\"550 5.7.1 Recipient blocked by policy\"", NULL, 0, 0},
    {"reject_mail", SG_OPT_LIST, NULL, NULL, 0, 0},
    {"mail_reply", SG_OPT_STRING, "\"550 5.7.1 Sender blocked by policy\"", NULL, 0, 0},
    {"body_reject", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"body_reply", SG_OPT_STRING, "\"550 5.7.1 Message content rejected\"", NULL, 0, 0},
    {"body_tempfail", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"tempfail_reply", SG_OPT_STRING, "\"451 4.7.1 Message deferred by policy\"", NULL, 0, 0},
    {"quarantine_marker", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"quarantine_reason", SG_OPT_STRING, "\"held by policy\"", NULL, 0, 0},
    {"discard_marker", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"add_header", SG_OPT_STRING, NULL, policy_check_header, 0, 0},
    {"pending_ms", SG_OPT_INT, "0", NULL, 0, 600000},
    {"facts_header", SG_OPT_BOOL, "false", NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static char *policy_dup(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static char **policy_list(const struct sg_host *host, const struct sg_section *sec, const char *key,
                          size_t *n)
{
    *n = host->opt_list_size(sec, key);
    char **out = calloc(*n ? *n : 1, sizeof(*out));
    for (size_t i = 0; out && i < *n; i++)
        out[i] = strdup(host->opt_list_item(sec, key, i));
    return out;
}

static void policy_free_list(char **l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

static void policy_fini(void *instance)
{
    struct policy *p = instance;
    if (!p)
        return;
    policy_free_list(p->reject_rcpt, p->nreject_rcpt);
    policy_free_list(p->reject_mail, p->nreject_mail);
    free(p->rcpt_reply);
    free(p->mail_reply);
    free(p->body_reject);
    free(p->body_reply);
    free(p->body_tempfail);
    free(p->tempfail_reply);
    free(p->quarantine_marker);
    free(p->quarantine_reason);
    free(p->discard_marker);
    free(p->header_name);
    free(p->header_value);
    free(p);
}

static int policy_init(const struct sg_host *host, const struct sg_section *sec, void **instance)
{
    struct policy *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->host = host;
    p->reject_rcpt = policy_list(host, sec, "reject_rcpt", &p->nreject_rcpt);
    p->reject_mail = policy_list(host, sec, "reject_mail", &p->nreject_mail);
    p->rcpt_reply = policy_dup(host->opt_string(sec, "rcpt_reply"));
    p->mail_reply = policy_dup(host->opt_string(sec, "mail_reply"));
    p->body_reject = policy_dup(host->opt_string(sec, "body_reject"));
    p->body_reply = policy_dup(host->opt_string(sec, "body_reply"));
    p->body_tempfail = policy_dup(host->opt_string(sec, "body_tempfail"));
    p->tempfail_reply = policy_dup(host->opt_string(sec, "tempfail_reply"));
    p->quarantine_marker = policy_dup(host->opt_string(sec, "quarantine_marker"));
    p->quarantine_reason = policy_dup(host->opt_string(sec, "quarantine_reason"));
    p->discard_marker = policy_dup(host->opt_string(sec, "discard_marker"));
    p->pending_ms = host->opt_int(sec, "pending_ms");
    p->facts_header = host->opt_bool(sec, "facts_header");
    const char *h = host->opt_string(sec, "add_header");
    if (h && *h) {
        const char *colon = strstr(h, ": ");
        p->header_name = strndup(h, (size_t)(colon - h));
        p->header_value = strdup(colon + 2);
    }
    if (!p->reject_rcpt || !p->reject_mail) { /* pending_ms: in its range (the host checks) */
        policy_fini(p);
        return -1;
    }
    *instance = p;
    return 0;
}

static bool policy_listed(char *const *list, size_t n, const char *mailbox)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], mailbox) == 0)
            return true;
    return false;
}

static enum sg_verdict policy_refuse(struct sg_ctx *ctx, const struct policy *p, const char *reply,
                                     enum sg_verdict v, const char *counter)
{
    if (reply)
        p->host->set_reply(ctx, reply);
    p->host->counter_add(ctx, counter, 1);
    return v;
}

struct policy_pending {
    const struct sg_host *host;
    struct sg_ctx *ctx;
    long long ms;
};

static void *policy_resolve_later(void *arg)
{
    struct policy_pending *pp = arg;
    struct timespec ts = {.tv_sec = pp->ms / 1000, .tv_nsec = (pp->ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    pp->host->resolve(pp->ctx, SG_CONTINUE, NULL);
    free(pp);
    return NULL;
}

static enum sg_verdict policy_mail(struct sg_ctx *ctx, void *instance, const char *arg,
                                   const char *params)
{
    (void)params;
    struct policy *p = instance;
    if (policy_listed(p->reject_mail, p->nreject_mail, arg))
        return policy_refuse(ctx, p, p->mail_reply, SG_REJECT, "mail_refused");
    if (p->pending_ms == 0)
        return SG_CONTINUE;
    struct policy_pending *pp = malloc(sizeof(*pp));
    if (!pp)
        return SG_TEMPFAIL;
    *pp = (struct policy_pending){.host = p->host, .ctx = ctx, .ms = p->pending_ms};
    pthread_t t;
    if (pthread_create(&t, NULL, policy_resolve_later, pp) != 0) {
        free(pp);
        return SG_TEMPFAIL;
    }
    pthread_detach(t);
    return SG_PENDING;
}

static enum sg_verdict policy_rcpt(struct sg_ctx *ctx, void *instance, const char *arg,
                                   const char *params)
{
    (void)params;
    struct policy *p = instance;
    if (policy_listed(p->reject_rcpt, p->nreject_rcpt, arg))
        return policy_refuse(ctx, p, p->rcpt_reply, SG_REJECT, "rcpt_refused");
    return SG_CONTINUE;
}

/* Which markers occur in the body: bit i for marker i. */
static unsigned policy_scan(struct sg_ctx *ctx, const struct policy *p, const char *const *markers,
                            size_t nmarkers)
{
    size_t longest = 0;
    for (size_t i = 0; i < nmarkers; i++)
        if (markers[i] && strlen(markers[i]) > longest)
            longest = strlen(markers[i]);
    if (longest == 0)
        return 0;
    /* Each piece starts with the last longest-1 octets of the one before. */
    size_t cap = POLICY_PIECE + longest;
    char *buf = malloc(cap + 1);
    if (!buf)
        return 0;
    unsigned found = 0;
    uint64_t off = p->host->body_offset(ctx);
    size_t keep = 0;
    for (;;) {
        ssize_t n = p->host->message_read(ctx, off, buf + keep, POLICY_PIECE);
        if (n <= 0)
            break;
        off += (uint64_t)n;
        size_t len = keep + (size_t)n;
        buf[len] = '\0';
        for (size_t i = 0; i < nmarkers; i++)
            if (markers[i] && memmem(buf, len, markers[i], strlen(markers[i])))
                found |= 1u << i;
        keep = len < longest - 1 ? len : longest - 1;
        memmove(buf, buf + len - keep, keep);
    }
    free(buf);
    return found;
}

static const char *policy_or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static int policy_add_facts(struct sg_ctx *ctx, const struct policy *p)
{
    const struct sg_conn_info *ci = p->host->conn(ctx);
    const struct sg_envelope *env = p->host->envelope(ctx);
    char value[1024];
    snprintf(value, sizeof(value),
             "client=%s:%u name=%s local=%s:%u helo=%s tls=%s login=%s from=%s nrcpt=%zu",
             policy_or_dash(ci->client_addr), ci->client_port, policy_or_dash(ci->client_name),
             policy_or_dash(ci->local_addr), ci->local_port, policy_or_dash(ci->helo),
             ci->tls ? policy_or_dash(ci->tls_version) : "-", policy_or_dash(ci->login),
             env ? policy_or_dash(env->mail_from) : "-", env ? env->nrcpt : 0);
    return p->host->add_header(ctx, "X-Policy-Facts", value);
}

static enum sg_verdict policy_eom(struct sg_ctx *ctx, void *instance)
{
    struct policy *p = instance;
    const char *markers[] = {p->body_reject, p->body_tempfail, p->discard_marker,
                             p->quarantine_marker};
    unsigned found = policy_scan(ctx, p, markers, 4);
    if (found & 1u)
        return policy_refuse(ctx, p, p->body_reply, SG_REJECT, "body_refused");
    if (found & 2u)
        return policy_refuse(ctx, p, p->tempfail_reply, SG_TEMPFAIL, "body_deferred");
    if (found & 4u) {
        p->host->counter_add(ctx, "discarded", 1);
        return SG_DISCARD;
    }
    if (p->header_name && p->host->add_header(ctx, p->header_name, p->header_value) < 0)
        return SG_TEMPFAIL;
    if (p->facts_header && policy_add_facts(ctx, p) < 0)
        return SG_TEMPFAIL;
    if (found & 8u) {
        p->host->set_quarantine_reason(ctx, p->quarantine_reason);
        p->host->counter_add(ctx, "quarantined", 1);
        return SG_QUARANTINE;
    }
    return SG_CONTINUE;
}

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "milter_policy",
    .version = "1",
    .description = "scripted verdicts for front-end tests",
    .options = policy_options,
    .init = policy_init,
    .mail = policy_mail,
    .rcpt = policy_rcpt,
    .eom = policy_eom,
    .fini = policy_fini,
};
