/*
 * milter_front - libmilter callbacks driving the filter chain (see the header).
 *
 * One struct milter_conn per MTA connection, kept with smfi_setpriv.
 * libmilter calls one connection's callbacks one after another, so the
 * struct needs no lock; only the waiter is shared with plugin threads, and
 * the chain owns it (chain_adopt) so that a plugin resolving late never
 * touches freed memory.
 *
 * When the chain has to wait, the connection thread runs the connection's
 * own event loop (the waiter's, which plugins get as host->event_loop) for
 * at most chain_wait_ms(); if nothing came, chain_expire() turns the late
 * plugin's verdict into its failure verdict and chain_resume() goes on.  A
 * late plugin may still read the message, so the content of a message while
 * a plugin call is out (chain_busy) is handed to the chain to free at its end.
 */
#include "milter/milter_front.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/chain.h"
#include "config/config.h"
#include "util/log.h"
#include "milter/milter_conf.h"
#include "milter/milter_edits.h"
#include "codec/milter_reply.h"
#include "codec/milter_text.h"
#include "milter/milter_wait.h"
#include "codec/msg_headers.h"
#include "message/msg_store.h"

/* Waits per stage before the stage is given up: each wait ends within
 * chain_wait_ms(), and a stage has one per plugin callback at most. */
#define MILTER_MAX_WAITS         10000
#define MILTER_MAX_HEADER_FIELDS 1000
/* How long the end of a connection waits for plugin calls still out on its
 * loop: past any plugin's own deadline that stays inside its timeout. */
#define MILTER_IDLE_MS 10000

#define MILTER_TEMPFAIL_REPLY "451 4.3.0 Temporary filter failure, try again later"

struct milter_conn {
    struct milter_conf *conf; /* held for the connection's life */
    struct sg_config *cfg;    /* conf->cfg */
    struct chain_conn *chain;
    struct milter_wait *wait;
    bool leadspc;          /* header values come with their leading blank */
    unsigned long noreply; /* SMFIP_NR_* the MTA agreed to */
    bool in_tx;
    bool expired;        /* a wait expired during this transaction */
    bool content_failed; /* the message could not be stored */
    unsigned ntx;
    char id[24];
    char tx_id[48];
    struct msg_store *store;
    struct msg_headers *headers;
};

static atomic_uint_fast64_t milter_conn_counter;
static atomic_uint milter_conn_open;

static struct milter_conn *milter_conn_get(SMFICTX *ctx)
{
    return smfi_getpriv(ctx);
}

static struct milter_conn *milter_conn_new(SMFICTX *ctx)
{
    struct milter_conn *mc = calloc(1, sizeof(*mc));
    if (!mc)
        return NULL;
    mc->conf = milter_conf_current();
    if (!mc->conf) {
        free(mc);
        return NULL;
    }
    mc->cfg = mc->conf->cfg;
    /* Same shape as the proxy's session ids: time prefix, counter. */
    uint64_t n = atomic_fetch_add(&milter_conn_counter, 1);
    snprintf(mc->id, sizeof(mc->id), "%08" PRIX32 "%05" PRIX64, (uint32_t)time(NULL), n & 0xFFFFF);
    if (smfi_setpriv(ctx, mc) != MI_SUCCESS) {
        milter_conf_unref(mc->conf);
        free(mc);
        return NULL;
    }
    atomic_fetch_add(&milter_conn_open, 1);
    return mc;
}

static void milter_headers_free(void *arg)
{
    struct msg_headers *h = arg;
    msg_headers_free(h);
    free(h);
}

static void milter_store_free(void *arg)
{
    msg_store_free(arg);
}

static void milter_conn_drop_content(struct milter_conn *mc)
{
    if (mc->chain && (mc->expired || chain_busy(mc->chain))) {
        if (mc->store)
            chain_adopt(mc->chain, mc->store, milter_store_free);
        if (mc->headers)
            chain_adopt(mc->chain, mc->headers, milter_headers_free);
    } else {
        if (mc->store)
            msg_store_free(mc->store);
        if (mc->headers)
            milter_headers_free(mc->headers);
    }
    mc->store = NULL;
    mc->headers = NULL;
    mc->content_failed = false;
}

static void milter_conn_tx_end(struct milter_conn *mc)
{
    if (mc->in_tx && mc->chain)
        chain_tx_end(mc->chain);
    mc->in_tx = false;
    milter_conn_drop_content(mc);
    mc->expired = false;
}

static bool milter_conn_chain_busy(const void *chain)
{
    return chain_busy(chain);
}

static void milter_conn_free(SMFICTX *ctx, struct milter_conn *mc)
{
    milter_conn_tx_end(mc);
    /* A call the chain gave up on may still have events on this
     * connection's loop, and only this thread runs it: run it until they
     * resolve, so that the loop is not freed from under them later. */
    if (mc->chain && chain_busy(mc->chain) &&
        !milter_wait_idle(mc->wait, milter_conn_chain_busy, mc->chain, MILTER_IDLE_MS))
        log_warn("%s: a plugin call is still out %u ms after the connection's end; "
                    "its events on the connection's loop will not run",
                    mc->id, MILTER_IDLE_MS);
    if (mc->chain)
        chain_conn_release(mc->chain);
    else
        milter_wait_free(mc->wait);
    milter_conf_unref(mc->conf);
    free(mc);
    smfi_setpriv(ctx, NULL);
    atomic_fetch_sub(&milter_conn_open, 1);
}

/* The stage's answer, after as many waits as the chain needs. */
static enum chain_status milter_conn_settle(struct milter_conn *mc, enum chain_status st,
                                            struct chain_result *res)
{
    for (unsigned waits = 0; st == CHAIN_WAIT; waits++) {
        if (waits == MILTER_MAX_WAITS) {
            log_err("%s: filter chain still waiting after %u waits: tempfail", mc->id, waits);
            return CHAIN_WAIT;
        }
        if (!milter_wait_for(mc->wait, chain_wait_ms(mc->chain))) {
            chain_expire(mc->chain);
            mc->expired = true;
        }
        st = chain_resume(mc->chain, res);
    }
    return st;
}

static sfsistat milter_reply_tempfail(SMFICTX *ctx)
{
    smfi_setreply(ctx, "451", "4.3.0", "Temporary filter failure, try again later");
    return SMFIS_TEMPFAIL;
}

/* The chain's refusal with its exact code, enhanced code and text. */
static sfsistat milter_reply_refuse(SMFICTX *ctx, const struct milter_conn *mc,
                                    const struct chain_result *res)
{
    struct milter_reply r;
    if (milter_reply_parse(res->reply, strlen(res->reply), &r) < 0) {
        log_warn("%s: filter reply \"%s\" is not an SMTP reply: the MTA's default reply is used",
                 mc->id, res->reply);
        return res->verdict == SG_TEMPFAIL ? SMFIS_TEMPFAIL : SMFIS_REJECT;
    }
    char *xcode = r.xcode[0] ? r.xcode : NULL;
    int rc;
    if (r.nlines == 1) {
        rc = smfi_setreply(ctx, r.rcode, xcode, (char *)r.lines[0]);
    } else {
        /* Unused slots are NULL and end the list early; the last NULL ends a
         * reply of the full MILTER_REPLY_MAX_LINES. */
        const char *const *l = r.lines;
        rc = smfi_setmlreply(ctx, r.rcode, xcode, l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7],
                             l[8], l[9], l[10], l[11], l[12], l[13], l[14], l[15], l[16], l[17],
                             l[18], l[19], l[20], l[21], l[22], l[23], l[24], l[25], l[26], l[27],
                             l[28], l[29], l[30], l[31], (char *)NULL);
    }
    if (rc != MI_SUCCESS)
        log_warn("%s: the MTA's default reply replaces \"%s\" (libmilter refused it)", mc->id,
                 res->reply);
    sfsistat out = r.rcode[0] == '4' ? SMFIS_TEMPFAIL : SMFIS_REJECT;
    milter_reply_free(&r);
    return out;
}

static const char *milter_stage_name(enum sg_stage stage)
{
    static const char *const names[SG_STAGE__COUNT] = {"connect", "helo", "mail", "rcpt", "data",
                                                       "header",  "eoh",  "body", "eom"};
    return stage < SG_STAGE__COUNT ? names[stage] : "?";
}

/* A stage before end of message: its verdict as the MTA's answer. */
static sfsistat milter_conn_stage(SMFICTX *ctx, struct milter_conn *mc, enum sg_stage stage,
                                  const char *arg, const char *params, unsigned long nr_flag)
{
    struct chain_result res;
    memset(&res, 0, sizeof(res));
    enum chain_status st = chain_run(mc->chain, stage, arg, params, &res);
    if (milter_conn_settle(mc, st, &res) == CHAIN_WAIT)
        return milter_reply_tempfail(ctx);
    switch (res.action) {
    case CHAIN_REFUSE:
        if (stage == SG_STAGE_MAIL || stage == SG_STAGE_DATA)
            milter_conn_tx_end(mc);
        return milter_reply_refuse(ctx, mc, &res);
    case CHAIN_DISCARD:
        log_info("%s: discarded at %s by %s", mc->id, milter_stage_name(stage),
                 res.decided_by ? res.decided_by : "the filter chain");
        milter_conn_tx_end(mc);
        return SMFIS_DISCARD;
    case CHAIN_PASS:
    case CHAIN_QUARANTINE:
        break;
    }
    return (mc->noreply & nr_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat milter_front_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                                       unsigned long f2, unsigned long f3, unsigned long *pf0,
                                       unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    (void)f2;
    (void)f3;
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc && !(mc = milter_conn_new(ctx))) {
        log_err("out of memory at milter negotiation");
        return SMFIS_REJECT;
    }
    const struct chain *ch = mc->conf->chain;
    bool any = ch && chain_size(ch) > 0;
    bool message = any && (chain_wants(ch, SG_STAGE_HEADER) || chain_wants(ch, SG_STAGE_EOH) ||
                           chain_wants(ch, SG_STAGE_BODY) || chain_wants(ch, SG_STAGE_EOM));

    unsigned long actions = SMFIF_SETSYMLIST;
    if (any)
        actions |= SMFIF_QUARANTINE;
    if (message)
        actions |= SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
                   SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT | SMFIF_CHGFROM;

    /* Connect always runs: its facts (client address, name) are every later
     * stage's.  HELO, MAIL and RCPT carry facts for later stages too, so they
     * are skipped only by an empty chain; a stage no plugin has needs no
     * answer. */
    unsigned long steps = SMFIP_NOUNKNOWN;
    if (!any)
        steps |= SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT;
    if (!any || !chain_wants(ch, SG_STAGE_DATA))
        steps |= SMFIP_NODATA;
    if (!message)
        steps |= SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY;
    /* header, eoh and body only store: the verdict comes at eom. */
    unsigned long noreply = SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;
    if (!any || !chain_wants(ch, SG_STAGE_CONNECT))
        noreply |= SMFIP_NR_CONN;
    if (!any || !chain_wants(ch, SG_STAGE_HELO))
        noreply |= SMFIP_NR_HELO;
    if (!any || !chain_wants(ch, SG_STAGE_MAIL))
        noreply |= SMFIP_NR_MAIL;
    if (!any || !chain_wants(ch, SG_STAGE_RCPT))
        noreply |= SMFIP_NR_RCPT;

    mc->noreply = noreply & f1;
    mc->leadspc = (f1 & SMFIP_HDR_LEADSPC) != 0;
    *pf0 = actions & f0;
    *pf1 = (steps & f1) | mc->noreply | (f1 & SMFIP_HDR_LEADSPC);
    *pf2 = 0;
    *pf3 = 0;
    if ((f0 & actions) != actions)
        log_warn("the MTA offers milter actions 0x%lx of 0x%lx the chain may use: edits it does "
                 "not offer will tempfail the message",
                 f0 & actions, actions);

    if (f0 & SMFIF_SETSYMLIST) {
        smfi_setsymlist(ctx, SMFIM_CONNECT, MILTER_FRONT_CONNECT_MACROS);
        smfi_setsymlist(ctx, SMFIM_HELO, MILTER_FRONT_HELO_MACROS);
        smfi_setsymlist(ctx, SMFIM_ENVFROM, MILTER_FRONT_MAIL_MACROS);
        smfi_setsymlist(ctx, SMFIM_EOM, MILTER_FRONT_EOM_MACROS);
    }
    return SMFIS_CONTINUE;
}

static const char *milter_macro(SMFICTX *ctx, const char *name)
{
    const char *v = smfi_getsymval(ctx, (char *)name);
    return v && *v ? v : NULL;
}

static unsigned milter_port(const char *text)
{
    if (!text)
        return 0;
    char *end;
    unsigned long p = strtoul(text, &end, 10);
    return *end == '\0' && p <= 65535 ? (unsigned)p : 0;
}

static sfsistat milter_front_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc && !(mc = milter_conn_new(ctx)))
        return milter_reply_tempfail(ctx);
    if (mc->chain) {
        /* The MTA reuses the connection for a new SMTP session. */
        milter_conn_tx_end(mc);
        chain_conn_release(mc->chain);
        mc->chain = NULL;
        mc->wait = NULL;
    }

    char addr[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (hostaddr && hostaddr->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)hostaddr;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
        port = ntohs(sin->sin_port);
    } else if (hostaddr && hostaddr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)hostaddr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
        port = ntohs(sin6->sin6_port);
    }
    const char *client_addr = addr[0] ? addr : milter_macro(ctx, "{client_addr}");
    if (!port)
        port = milter_port(milter_macro(ctx, "{client_port}"));
    /* libmilter gives "[addr]" when the name did not verify; Postfix's macro
     * says "unknown". */
    const char *name = hostname && hostname[0] && hostname[0] != '['
                           ? hostname
                           : milter_macro(ctx, "{client_name}");
    if (name && strcmp(name, "unknown") == 0)
        name = NULL;

    struct sg_conn_info info = {
        .session_id = mc->id,
        .client_addr = client_addr ? client_addr : "0.0.0.0",
        .client_port = port,
        .client_name = name,
        .local_addr = milter_macro(ctx, "{daemon_addr}"),
        .local_port = milter_port(milter_macro(ctx, "{daemon_port}")),
        .host_name = mc->cfg->hostname,
    };
    mc->wait = milter_wait_new();
    if (!mc->wait)
        return milter_reply_tempfail(ctx);
    struct chain_front front = {.notify = milter_wait_notify,
                                .arg = mc->wait,
                                .inline_blocking = true,
                                .base = milter_wait_base(mc->wait),
                                .base_outlives = false};
    mc->chain = chain_conn_new(mc->conf->chain, &info, &front, mc->cfg->spill_threshold,
                               mc->cfg->spool_dir);
    if (!mc->chain) {
        milter_wait_free(mc->wait);
        mc->wait = NULL;
        log_err("%s: out of memory for a new connection", mc->id);
        return milter_reply_tempfail(ctx);
    }
    chain_adopt(mc->chain, mc->wait, milter_wait_free);
    log_debug("%s: connect from %s[%s]:%u", mc->id, name ? name : "unknown", info.client_addr,
              port);
    return milter_conn_stage(ctx, mc, SG_STAGE_CONNECT, NULL, NULL, SMFIP_NR_CONN);
}

static sfsistat milter_front_helo(SMFICTX *ctx, char *helohost)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain)
        return milter_reply_tempfail(ctx);
    /* Postfix tells a milter neither HELO from EHLO nor more than the name. */
    chain_set_helo(mc->chain, helohost, false);
    const char *version = milter_macro(ctx, "{tls_version}");
    if (version)
        chain_set_tls(mc->chain, version, milter_macro(ctx, "{cipher}"), NULL,
                      milter_macro(ctx, "{cert_subject}"), NULL);
    return milter_conn_stage(ctx, mc, SG_STAGE_HELO, helohost, NULL, SMFIP_NR_HELO);
}

static sfsistat milter_front_envfrom(SMFICTX *ctx, char **argv)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain || !argv || !argv[0])
        return milter_reply_tempfail(ctx);
    milter_conn_tx_end(mc);
    const char *login = milter_macro(ctx, "{auth_authen}");
    if (login)
        chain_set_login(mc->chain, login);
    char *mailbox = milter_text_mailbox(argv[0]);
    char *params = milter_text_params(argv);
    if (!mailbox) {
        free(params);
        return milter_reply_tempfail(ctx);
    }
    snprintf(mc->tx_id, sizeof(mc->tx_id), "%s.%u", mc->id, ++mc->ntx);
    chain_tx_begin(mc->chain, mc->tx_id);
    mc->in_tx = true;
    chain_tx_set_mail(mc->chain, mailbox, params);
    sfsistat rc = milter_conn_stage(ctx, mc, SG_STAGE_MAIL, mailbox, params, SMFIP_NR_MAIL);
    free(mailbox);
    free(params);
    return rc;
}

static sfsistat milter_front_envrcpt(SMFICTX *ctx, char **argv)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain || !argv || !argv[0])
        return milter_reply_tempfail(ctx);
    if (!mc->in_tx)
        return SMFIS_CONTINUE; /* the transaction already ended here (discard) */
    char *mailbox = milter_text_mailbox(argv[0]);
    char *params = milter_text_params(argv);
    if (!mailbox) {
        free(params);
        return milter_reply_tempfail(ctx);
    }
    sfsistat rc = milter_conn_stage(ctx, mc, SG_STAGE_RCPT, mailbox, params, SMFIP_NR_RCPT);
    /* The MTA calls a milter only for recipients its own checks accepted. */
    if (rc == SMFIS_CONTINUE || rc == SMFIS_NOREPLY)
        chain_rcpt_accepted(mc->chain, mailbox);
    free(mailbox);
    free(params);
    return rc;
}

static sfsistat milter_front_data(SMFICTX *ctx)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain)
        return milter_reply_tempfail(ctx);
    if (!mc->in_tx)
        return SMFIS_CONTINUE;
    return milter_conn_stage(ctx, mc, SG_STAGE_DATA, NULL, NULL, SMFIP_NR_DATA);
}

/* Append message octets to the store and the header parser alike. */
static void milter_conn_append(struct milter_conn *mc, const void *bytes, size_t len)
{
    if (mc->content_failed)
        return;
    if (!mc->store) {
        mc->store = msg_store_new(mc->cfg->spill_threshold, mc->cfg->spool_dir);
        mc->headers = calloc(1, sizeof(*mc->headers));
        if (mc->headers)
            msg_headers_init(mc->headers, mc->cfg->max_header_size, MILTER_MAX_HEADER_FIELDS);
    }
    if (!mc->store || !mc->headers || msg_store_append(mc->store, bytes, len) < 0 ||
        msg_headers_feed(mc->headers, bytes, len) < 0) {
        log_err("%s: cannot store the message: it will be deferred", mc->id);
        mc->content_failed = true;
    }
}

static sfsistat milter_conn_noreply(const struct milter_conn *mc, unsigned long flag)
{
    return (mc->noreply & flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat milter_front_header(SMFICTX *ctx, char *name, char *value)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain)
        return milter_reply_tempfail(ctx);
    if (!mc->in_tx)
        return milter_conn_noreply(mc, SMFIP_NR_HDR);
    size_t len;
    char *line = milter_text_header_line(name, value ? value : "", mc->leadspc, &len);
    if (!line) {
        mc->content_failed = true;
    } else {
        milter_conn_append(mc, line, len);
        free(line);
    }
    return milter_conn_noreply(mc, SMFIP_NR_HDR);
}

static sfsistat milter_front_eoh(SMFICTX *ctx)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain)
        return milter_reply_tempfail(ctx);
    if (!mc->in_tx)
        return milter_conn_noreply(mc, SMFIP_NR_EOH);
    milter_conn_append(mc, "\r\n", 2);
    return milter_conn_noreply(mc, SMFIP_NR_EOH);
}

static sfsistat milter_front_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain)
        return milter_reply_tempfail(ctx);
    if (!mc->in_tx)
        return milter_conn_noreply(mc, SMFIP_NR_BODY);
    milter_conn_append(mc, chunk, len);
    return milter_conn_noreply(mc, SMFIP_NR_BODY);
}

static const char *milter_action_name(enum chain_action a)
{
    switch (a) {
    case CHAIN_PASS:
        return "accept";
    case CHAIN_REFUSE:
        return "refuse";
    case CHAIN_DISCARD:
        return "discard";
    case CHAIN_QUARANTINE:
        return "quarantine";
    }
    return "?";
}

static sfsistat milter_conn_eom(SMFICTX *ctx, struct milter_conn *mc)
{
    if (mc->content_failed)
        return milter_reply_tempfail(ctx);
    if (!mc->store)
        milter_conn_append(mc, "", 0); /* no header, no body: an empty message */
    if (mc->content_failed || msg_headers_finish(mc->headers) < 0 || msg_store_flush(mc->store) < 0)
        return milter_reply_tempfail(ctx);

    struct chain_content content = {.store = mc->store, .headers = mc->headers};
    struct chain_result res;
    memset(&res, 0, sizeof(res));
    enum chain_status st = chain_run_message(mc->chain, &content, &res);
    if (milter_conn_settle(mc, st, &res) == CHAIN_WAIT)
        return milter_reply_tempfail(ctx);

    const char *qid = milter_macro(ctx, "i");
    const struct chain_tx_info *info = chain_tx_info(mc->chain);
    const char *reason = res.action == CHAIN_QUARANTINE && info ? info->quarantine_reason : NULL;
    char summary[512] = "";
    chain_tx_summary(mc->chain, summary, sizeof(summary));
    /* The chain's summary names the deciding plugin and its verdict: the
     * line adds only what the milter made of it (one value per key). */
    log_info("%s: tx=%s queue_id=%s action=%s%s%s%s %s", mc->id, mc->tx_id, qid ? qid : "-",
             milter_action_name(res.action), reason ? " reason=\"" : "", reason ? reason : "",
             reason ? "\"" : "", summary);

    switch (res.action) {
    case CHAIN_REFUSE:
        return milter_reply_refuse(ctx, mc, &res);
    case CHAIN_DISCARD:
        return SMFIS_DISCARD;
    case CHAIN_PASS:
    case CHAIN_QUARANTINE:
        break;
    }
    char failed[256];
    if (info && milter_edits_apply(ctx, info, mc->leadspc, failed, sizeof(failed)) < 0) {
        log_err("%s: %s failed: message deferred (%s)", mc->id, failed, MILTER_TEMPFAIL_REPLY);
        return milter_reply_tempfail(ctx);
    }
    if (res.action == CHAIN_QUARANTINE) {
        char *why = (char *)(reason && *reason ? reason : "smtpgate quarantine");
        if (smfi_quarantine(ctx, why) != MI_SUCCESS) {
            log_err("%s: smfi_quarantine failed: message deferred", mc->id);
            return milter_reply_tempfail(ctx);
        }
    }
    return SMFIS_ACCEPT;
}

static sfsistat milter_front_eom(SMFICTX *ctx)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (!mc || !mc->chain)
        return milter_reply_tempfail(ctx);
    if (!mc->in_tx)
        return SMFIS_CONTINUE;
    sfsistat rc = milter_conn_eom(ctx, mc);
    milter_conn_tx_end(mc);
    return rc;
}

static sfsistat milter_front_abort(SMFICTX *ctx)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (mc)
        milter_conn_tx_end(mc);
    return SMFIS_CONTINUE;
}

static sfsistat milter_front_close(SMFICTX *ctx)
{
    struct milter_conn *mc = milter_conn_get(ctx);
    if (mc)
        milter_conn_free(ctx, mc);
    return SMFIS_CONTINUE;
}

static sfsistat milter_front_unknown(SMFICTX *ctx, const char *cmd)
{
    (void)ctx;
    (void)cmd;
    return SMFIS_CONTINUE;
}

unsigned milter_front_connections(void)
{
    return atomic_load(&milter_conn_open);
}

int milter_front_register(const char *name)
{
    struct smfiDesc desc = {
        .xxfi_name = (char *)name,
        .xxfi_version = SMFI_VERSION,
        .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
                      SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT | SMFIF_CHGFROM | SMFIF_QUARANTINE |
                      SMFIF_SETSYMLIST,
        .xxfi_connect = milter_front_connect,
        .xxfi_helo = milter_front_helo,
        .xxfi_envfrom = milter_front_envfrom,
        .xxfi_envrcpt = milter_front_envrcpt,
        .xxfi_header = milter_front_header,
        .xxfi_eoh = milter_front_eoh,
        .xxfi_body = milter_front_body,
        .xxfi_eom = milter_front_eom,
        .xxfi_abort = milter_front_abort,
        .xxfi_close = milter_front_close,
        .xxfi_unknown = milter_front_unknown,
        .xxfi_data = milter_front_data,
        .xxfi_negotiate = milter_front_negotiate,
    };
    return smfi_register(desc) == MI_SUCCESS ? 0 : -1;
}
