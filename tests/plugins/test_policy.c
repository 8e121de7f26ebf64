/*
 * test_policy - a plugin for smtpgate's own tests: every verdict and edit of
 * the ABI, each driven by an option, so that a test states in its config
 * what the chain should do and asserts what the client and the upstream saw.
 *
 * Matching is plain: exact addresses, substrings of the body.  Nothing here
 * is for production use; plugins/example/ is the one to copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpgate/plugin.h"

struct policy {
    const struct sg_host *host;
    char *connect_reject; /* client address refused at connect */
    char *connect_reply;
    char *helo_reject;
    char *mail_reject;
    char *mail_tempfail;
    char **rcpt_reject;
    size_t nrcpt_reject;
    char *rcpt_reply;
    char *rcpt_garbage; /* recipient for which a verdict out of range comes back */
    char *rcpt_accept;  /* recipient whose RCPT accepts the message for the rest of the chain */
    char *data_reject_from;
    char *body_reject;
    char *body_reply;
    char *body_discard;
    char *body_quarantine;
    char *add_header;
    char *insert_header;
    char *change_header;
    char *delete_header;
    char *session_header;
    char *replace_body;
    char *change_from;
    char *add_rcpt;
    char *del_rcpt;
    char *malformed_reply_rcpt;
    char *name_header;  /* add this header with the client's verified name */
    char *facts_header; /* add this header with the TLS facts and login */
    char *note;         /* tx_note() at eom: "<note> host=<host_name>" */
};

static char *policy_str(const struct sg_host *h, const struct sg_section *sec, const char *key)
{
    const char *v = h->opt_string(sec, key);
    return v && *v ? strdup(v) : NULL;
}

static void policy_free(void *p)
{
    struct policy *x = p;
    if (!x)
        return;
    char **fields[] = {&x->connect_reject,
                       &x->connect_reply,
                       &x->helo_reject,
                       &x->mail_reject,
                       &x->mail_tempfail,
                       &x->rcpt_reply,
                       &x->rcpt_garbage,
                       &x->rcpt_accept,
                       &x->data_reject_from,
                       &x->body_reject,
                       &x->body_reply,
                       &x->body_discard,
                       &x->body_quarantine,
                       &x->add_header,
                       &x->insert_header,
                       &x->change_header,
                       &x->delete_header,
                       &x->session_header,
                       &x->replace_body,
                       &x->change_from,
                       &x->add_rcpt,
                       &x->del_rcpt,
                       &x->malformed_reply_rcpt,
                       &x->name_header,
                       &x->facts_header,
                       &x->note};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        free(*fields[i]);
    for (size_t i = 0; i < x->nrcpt_reject; i++)
        free(x->rcpt_reject[i]);
    free(x->rcpt_reject);
    free(x);
}

static const char *policy_check_header(const char *v)
{
    return *v && !strchr(v, ':') ? "must be \"Name: value\"" : NULL;
}

static int policy_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    struct policy *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->host = h;
    p->connect_reject = policy_str(h, sec, "connect_reject");
    p->connect_reply = policy_str(h, sec, "connect_reply");
    p->helo_reject = policy_str(h, sec, "helo_reject");
    p->mail_reject = policy_str(h, sec, "mail_reject");
    p->mail_tempfail = policy_str(h, sec, "mail_tempfail");
    p->rcpt_reply = policy_str(h, sec, "rcpt_reply");
    p->rcpt_garbage = policy_str(h, sec, "rcpt_garbage");
    p->rcpt_accept = policy_str(h, sec, "rcpt_accept");
    p->data_reject_from = policy_str(h, sec, "data_reject_from");
    p->body_reject = policy_str(h, sec, "body_reject");
    p->body_reply = policy_str(h, sec, "body_reply");
    p->body_discard = policy_str(h, sec, "body_discard");
    p->body_quarantine = policy_str(h, sec, "body_quarantine");
    p->add_header = policy_str(h, sec, "add_header");
    p->insert_header = policy_str(h, sec, "insert_header");
    p->change_header = policy_str(h, sec, "change_header");
    p->delete_header = policy_str(h, sec, "delete_header");
    p->session_header = policy_str(h, sec, "session_header");
    p->replace_body = policy_str(h, sec, "replace_body");
    p->change_from = policy_str(h, sec, "change_from");
    p->add_rcpt = policy_str(h, sec, "add_rcpt");
    p->del_rcpt = policy_str(h, sec, "del_rcpt");
    p->malformed_reply_rcpt = policy_str(h, sec, "malformed_reply_rcpt");
    p->name_header = policy_str(h, sec, "name_header");
    p->facts_header = policy_str(h, sec, "facts_header");
    p->note = policy_str(h, sec, "note");
    size_t n = h->opt_list_size(sec, "rcpt_reject");
    p->rcpt_reject = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; p->rcpt_reject && i < n; i++)
        p->rcpt_reject[p->nrcpt_reject++] = strdup(h->opt_list_item(sec, "rcpt_reject", i));
    if (h->opt_is_set(sec, "fail_init")) {
        h->config_error(sec, "fail_init", "refusing to start, as asked");
        policy_free(p);
        return -1;
    }
    *instance = p;
    return 0;
}

static void policy_fini(void *instance)
{
    policy_free(instance);
}

static enum sg_verdict policy_connect(struct sg_ctx *ctx, void *instance)
{
    struct policy *p = instance;
    const struct sg_conn_info *c = p->host->conn(ctx);
    p->host->counter_add(ctx, "connections", 1);
    if (p->connect_reject && strcmp(c->client_addr, p->connect_reject) == 0) {
        if (p->connect_reply)
            p->host->set_reply(ctx, p->connect_reply);
        return p->connect_reply && p->connect_reply[0] == '4' ? SG_TEMPFAIL : SG_REJECT;
    }
    return SG_CONTINUE;
}

static enum sg_verdict policy_helo(struct sg_ctx *ctx, void *instance)
{
    struct policy *p = instance;
    const struct sg_conn_info *c = p->host->conn(ctx);
    if (p->helo_reject && c->helo && strcasecmp(c->helo, p->helo_reject) == 0) {
        p->host->set_reply(ctx, "550 5.7.1 Go away, bad HELO");
        return SG_REJECT;
    }
    return SG_CONTINUE;
}

static enum sg_verdict policy_mail(struct sg_ctx *ctx, void *instance, const char *from,
                                   const char *params)
{
    (void)params;
    struct policy *p = instance;
    if (p->mail_reject && strcasecmp(from, p->mail_reject) == 0) {
        p->host->set_reply(ctx, "553 5.7.1 Sender refused by policy");
        return SG_REJECT;
    }
    if (p->mail_tempfail && strcasecmp(from, p->mail_tempfail) == 0)
        return SG_TEMPFAIL;
    return SG_CONTINUE;
}

static enum sg_verdict policy_rcpt(struct sg_ctx *ctx, void *instance, const char *rcpt,
                                   const char *params)
{
    (void)params;
    struct policy *p = instance;
    for (size_t i = 0; i < p->nrcpt_reject; i++) {
        if (strcasecmp(rcpt, p->rcpt_reject[i]) == 0) {
            if (p->rcpt_reply)
                p->host->set_reply(ctx, p->rcpt_reply);
            return SG_REJECT;
        }
    }
    if (p->rcpt_garbage && strcasecmp(rcpt, p->rcpt_garbage) == 0)
        return (enum sg_verdict)42;
    if (p->malformed_reply_rcpt && strcasecmp(rcpt, p->malformed_reply_rcpt) == 0) {
        /* a 2xx code with a refusal: the host must not send it */
        if (p->host->set_reply(ctx, "250 2.0.0 this is not a refusal") == 0)
            return (enum sg_verdict)43;
        return SG_REJECT;
    }
    if (p->rcpt_accept && strcasecmp(rcpt, p->rcpt_accept) == 0)
        return SG_ACCEPT;
    return SG_CONTINUE;
}

static enum sg_verdict policy_data(struct sg_ctx *ctx, void *instance)
{
    struct policy *p = instance;
    const struct sg_envelope *env = p->host->envelope(ctx);
    if (p->data_reject_from && env && strcasecmp(env->mail_from, p->data_reject_from) == 0) {
        p->host->set_reply(ctx, "554 5.7.1 No data from you");
        return SG_REJECT;
    }
    return SG_CONTINUE;
}

/* Does the body (as received, after the header section) contain needle? */
static bool policy_body_has(struct policy *p, struct sg_ctx *ctx, const char *needle)
{
    size_t nlen = strlen(needle);
    uint64_t off = p->host->body_offset(ctx), size = p->host->message_size(ctx);
    char buf[65536];
    size_t keep = 0;
    while (off < size) {
        ssize_t n = p->host->message_read(ctx, off, buf + keep, sizeof(buf) - keep);
        if (n <= 0)
            return false;
        off += (uint64_t)n;
        size_t have = keep + (size_t)n;
        if (memmem(buf, have, needle, nlen))
            return true;
        keep = nlen - 1 < have ? nlen - 1 : have;
        memmove(buf, buf + have - keep, keep);
    }
    return false;
}

static void policy_split(const char *nv, char *name, size_t nsize, const char **value)
{
    const char *colon = strchr(nv, ':');
    size_t n = colon ? (size_t)(colon - nv) : strlen(nv);
    if (n >= nsize)
        n = nsize - 1;
    memcpy(name, nv, n);
    name[n] = '\0';
    *value = colon ? colon + 1 + (colon[1] == ' ') : "";
}

static enum sg_verdict policy_eom(struct sg_ctx *ctx, void *instance)
{
    struct policy *p = instance;
    const struct sg_host *h = p->host;
    if (p->body_reject && policy_body_has(p, ctx, p->body_reject)) {
        if (p->body_reply)
            h->set_reply(ctx, p->body_reply);
        return SG_REJECT;
    }
    if (p->body_discard && policy_body_has(p, ctx, p->body_discard))
        return SG_DISCARD;
    if (p->body_quarantine && policy_body_has(p, ctx, p->body_quarantine)) {
        h->set_quarantine_reason(ctx, "test marker found");
        return SG_QUARANTINE;
    }
    /* Members read only when the host's structs have them: the way a plugin
     * runs on hosts older than the members it knows. */
    if (p->note && SG_HAS(h, tx_note)) {
        const struct sg_conn_info *ci = h->conn(ctx);
        char note[512];
        snprintf(note, sizeof(note), "%s host=%s", p->note,
                 SG_HAS(ci, host_name) && ci->host_name ? ci->host_name : "?");
        h->tx_note(ctx, note);
    }
    char name[256];
    const char *value;
    if (p->add_header) {
        policy_split(p->add_header, name, sizeof(name), &value);
        h->add_header(ctx, name, value);
    }
    if (p->insert_header) {
        policy_split(p->insert_header, name, sizeof(name), &value);
        h->insert_header(ctx, 0, name, value);
    }
    if (p->change_header) {
        policy_split(p->change_header, name, sizeof(name), &value);
        h->change_header(ctx, name, 1, value);
    }
    if (p->delete_header)
        h->change_header(ctx, p->delete_header, 1, NULL);
    if (p->session_header) {
        const struct sg_envelope *env = h->envelope(ctx);
        h->add_header(ctx, p->session_header, env ? env->tx_id : "-");
    }
    if (p->name_header) {
        const char *client = h->conn(ctx)->client_name;
        h->add_header(ctx, p->name_header, client ? client : "-");
    }
    if (p->facts_header) {
        const struct sg_conn_info *c = h->conn(ctx);
        char facts[1024];
        snprintf(facts, sizeof(facts), "tls=%s version=%s cipher=%s sni=%s ccert=%s login=%s",
                 c->tls ? "yes" : "no", c->tls_version ? c->tls_version : "-",
                 c->tls_cipher ? c->tls_cipher : "-", c->tls_sni ? c->tls_sni : "-",
                 c->tls_peer_fingerprint ? c->tls_peer_fingerprint : "-",
                 c->login ? c->login : "-");
        h->add_header(ctx, p->facts_header, facts);
    }
    if (p->replace_body)
        h->replace_body(ctx, p->replace_body, strlen(p->replace_body));
    if (p->change_from)
        h->change_from(ctx, p->change_from, NULL);
    if (p->add_rcpt)
        h->add_rcpt(ctx, p->add_rcpt, NULL);
    if (p->del_rcpt)
        h->del_rcpt(ctx, p->del_rcpt);
    return SG_CONTINUE;
}

static const struct sg_option policy_options[] = {
    {"connect_reject", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"connect_reply", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"helo_reject", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"mail_reject", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"mail_tempfail", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"rcpt_reject", SG_OPT_LIST, "{}", NULL, 0, 0},
    {"rcpt_reply", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"rcpt_garbage", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"rcpt_accept", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"malformed_reply_rcpt", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"data_reject_from", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"body_reject", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"body_reply", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"body_discard", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"body_quarantine", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"add_header", SG_OPT_STRING, NULL, policy_check_header, 0, 0},
    {"insert_header", SG_OPT_STRING, NULL, policy_check_header, 0, 0},
    {"change_header", SG_OPT_STRING, NULL, policy_check_header, 0, 0},
    {"delete_header", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"session_header", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"replace_body", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"change_from", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"add_rcpt", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"del_rcpt", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"name_header", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"facts_header", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"fail_init", SG_OPT_BOOL, NULL, NULL, 0, 0},
    {"note", SG_OPT_STRING, NULL, NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "test_policy",
    .version = "1",
    .description = "verdicts and edits on demand, for smtpgate's tests",
    .options = policy_options,
    .init = policy_init,
    .fini = policy_fini,
    .connect = policy_connect,
    .helo = policy_helo,
    .mail = policy_mail,
    .rcpt = policy_rcpt,
    .data = policy_data,
    .eom = policy_eom,
};
