/*
 * milter_session - the milter plugin's protocol engine: one connection to a
 * milter per SMTP session, spoken as Postfix's milter8 client speaks it, on
 * the session's own event loop (see milter_client.h).
 *
 * Promises:
 *  - Every command that wants a reply has a deadline (connect_timeout for
 *    the connection and the negotiation, command_timeout up to DATA,
 *    content_timeout for the message); SMFIR_PROGRESS restarts it.
 *  - Whatever goes wrong with the milter (refused or lost connection, a
 *    packet over the protocol's size, a reply the protocol does not allow at
 *    that point, an edit that was not negotiated or that smtpgate refuses, a
 *    missed deadline) ends its connection, logs one line naming the milter,
 *    the cause and the default_action, and gives that action's verdict for
 *    the waiting stage and every later one of the session, as Postfix does
 *    after a milter error.  No such path returns continue for a message
 *    unless default_action is accept.
 *  - The message goes to the milter at eom, headers from the host's view,
 *    the body read from the message store in chunks of at most 65,535
 *    octets, never more than MC_OUT_HIGH octets queued: a big message is
 *    never copied into memory whole.
 *  - A milter's accept is Postfix's: this milter is done with the message
 *    (at connect and helo: with the connection) and the chain goes on.
 *
 * Assumes: callbacks of one connection never overlap; resolve() may run the
 * session's next stage, and even end the session, before it returns, so
 * nothing here touches the session after resolve() without the depth guard.
 */
#include "plugins/milter/milter_client.h"
#include "plugins/milter/milter_seen.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define MC_OUT_HIGH (256 * 1024) /* queued octets before the body waits */

enum mc_phase {
    PH_NONE = 0,
    PH_CONNECTING, /* TCP/unix connect in progress */
    PH_OPTNEG,     /* waiting for SMFIC_OPTNEG */
    PH_CMD,        /* waiting for the reply to connect..data */
    PH_MSG_STEP,   /* waiting for the reply to a header, EOH or body chunk */
    PH_EOM,        /* waiting for edits and the final reply to BODYEOB */
};

struct mc_sess {
    struct mc_conf *cf;
    struct event_base *base;
    bool base_outlives; /* the host's word: the loop runs on after the session */
    pthread_t loop_thread;
    int fd;
    struct bufferevent *bev;
    struct event *timer;
    struct milter_out out;

    uint32_t version, actions, protocol;
    char *macro_req[MILTER_WIRE_STAGES]; /* the milter's own lists, or NULL */
    struct milter_macro_list req_lists[MILTER_WIRE_STAGES];

    bool failed;     /* default_action from now on */
    bool conn_quiet; /* the milter accepted the connection */
    bool msg_quiet;  /* ... or this message */
    bool in_msg;     /* MAIL went to the milter in this transaction */
    bool at_endm;    /* the last command was a completed BODYEOB: QUIT_NC may follow */
    bool reused;     /* taken from the idle pool */

    /* the call that waits */
    struct sg_ctx *ctx;
    enum sg_stage stage;
    enum mc_phase phase;
    double timeout;
    double armed;         /* seconds the timer was last set to */
    double call_deadline; /* monotonic: the host's own timeout for this call, less a margin */
    const char *timeout_name;
    const char *what; /* the command waited on, for the log */

    /* the message at eom */
    struct mc_seen_field *seen; /* fields earlier milter instances added */
    size_t nseen, seen_top, seen_bot;
    char *tx;
    size_t hdr_i;
    uint64_t body_off, body_end;
    bool body_skip, eoh_sent, body_done;
    bool quarantine;
    char *quarantine_reason;
    bool write_wait;

    unsigned round_trips; /* replies waited for in this transaction */

    int depth;
    bool doomed;
};

static const char *const mc_default_names[] = {"accept", "reject", "tempfail", "quarantine"};

const char *mc_default_name(enum mc_default d)
{
    return mc_default_names[d];
}

static const struct sg_host *H(const struct mc_sess *s)
{
    return s->cf->host;
}

/* ---- the connection ---- */

static void sess_free_lists(struct mc_sess *s)
{
    for (int i = 0; i < MILTER_WIRE_STAGES; i++) {
        free(s->macro_req[i]);
        s->macro_req[i] = NULL;
        milter_macros_free(&s->req_lists[i]);
    }
}

static void sess_close_conn(struct mc_sess *s, bool poison)
{
    if (s->timer)
        evtimer_del(s->timer);
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    if (s->fd >= 0) {
        /* As Postfix: a milter that went wrong may have replies in flight;
         * shut the socket so nothing of them is read as an answer later. */
        if (poison)
            (void)shutdown(s->fd, SHUT_RDWR);
        close(s->fd);
        s->fd = -1;
    }
}

static const char *stage_default_reply(enum mc_default d)
{
    switch (d) {
    case MC_DEF_REJECT:
        return "550 5.5.0 Service unavailable";
    case MC_DEF_TEMPFAIL:
        return "451 4.7.1 Service unavailable - try again later";
    default:
        return NULL;
    }
}

static enum sg_verdict default_verdict(const struct mc_sess *s, const char **reply)
{
    *reply = stage_default_reply(s->cf->def);
    switch (s->cf->def) {
    case MC_DEF_REJECT:
        return SG_REJECT;
    case MC_DEF_TEMPFAIL:
        return SG_TEMPFAIL;
    case MC_DEF_QUARANTINE:
        return SG_QUARANTINE;
    default:
        return SG_CONTINUE;
    }
}

/* The waiting call gets its verdict; the session may move on inside. */
static void sess_resolve(struct mc_sess *s, enum sg_verdict v, const char *reply)
{
    struct sg_ctx *ctx = s->ctx;
    if (!ctx)
        return;
    s->ctx = NULL;
    s->phase = PH_NONE;
    if (s->timer)
        evtimer_del(s->timer);
    if (s->stage >= SG_STAGE_MAIL && s->round_trips) {
        /* on the transaction's log line: what the milter cost it */
        char note[48];
        snprintf(note, sizeof(note), "round_trips=%u", s->round_trips);
        H(s)->tx_note(ctx, note);
    }
    if (v == SG_QUARANTINE && s->quarantine_reason)
        H(s)->set_quarantine_reason(ctx, s->quarantine_reason);
    H(s)->resolve(ctx, v, reply);
}

static void sess_fail(struct mc_sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sess_fail(struct mc_sess *s, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (!s->failed) {
        H(s)->log(s->ctx, SG_LOG_WARNING, "milter %s: %s; default_action %s", s->cf->socket, why,
                  mc_default_name(s->cf->def));
        if (s->ctx)
            H(s)->counter_add(s->ctx, "milter_failures", 1);
    }
    s->failed = true;
    s->at_endm = false;
    sess_close_conn(s, true);
    if (s->ctx) {
        const char *reply;
        enum sg_verdict v = default_verdict(s, &reply);
        if (v == SG_QUARANTINE) {
            free(s->quarantine_reason);
            s->quarantine_reason = strdup("milter failure");
        }
        sess_resolve(s, v, reply);
    }
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The host ends a call after the section's timeout with its failure_verdict;
 * the milter's own deadline comes first so that default_action decides. */
static void sess_call_begin(struct mc_sess *s)
{
    double limit = s->cf->verdict_timeout;
    double margin = limit * 0.1 < 1.0 ? limit * 0.1 : 1.0;
    s->call_deadline = limit > 0 ? mono_seconds() + limit - margin : 0;
}

static void sess_arm(struct mc_sess *s)
{
    double t = s->timeout;
    if (s->call_deadline > 0) {
        double left = s->call_deadline - mono_seconds();
        if (left < t) {
            t = left > 0.001 ? left : 0.001;
            s->timeout_name = "the section's timeout";
        }
    }
    s->armed = t;
    struct timeval tv = {.tv_sec = (time_t)t,
                         .tv_usec = (suseconds_t)((t - (double)(time_t)t) * 1e6)};
    evtimer_add(s->timer, &tv);
}

/* The current call now waits for the milter's reply. */
static enum sg_verdict sess_wait(struct mc_sess *s, enum mc_phase phase, double timeout,
                                 const char *timeout_name, const char *what)
{
    s->phase = phase;
    s->round_trips++;
    s->timeout = timeout;
    s->timeout_name = timeout_name;
    s->what = what;
    sess_arm(s);
    return SG_PENDING;
}

static int sess_flush(struct mc_sess *s)
{
    if (milter_out_failed(&s->out)) {
        milter_out_clear(&s->out);
        return -1;
    }
    if (s->out.len &&
        (!s->bev || evbuffer_add(bufferevent_get_output(s->bev), s->out.buf, s->out.len) != 0)) {
        milter_out_clear(&s->out);
        return -1;
    }
    milter_out_clear(&s->out);
    return 0;
}

static void sess_destroy(struct mc_sess *s);

static void sess_enter(struct mc_sess *s)
{
    s->depth++;
}

/* false: the session is gone, touch nothing */
static bool sess_leave(struct mc_sess *s)
{
    if (--s->depth == 0 && s->doomed) {
        sess_destroy(s);
        return false;
    }
    return true;
}

/* ---- facts and macros ---- */

static void sess_facts(struct mc_sess *s, struct sg_ctx *ctx, struct milter_facts *f,
                       const char *rcpt)
{
    memset(f, 0, sizeof(*f));
    const struct sg_conn_info *ci = H(s)->conn(ctx);
    const struct sg_envelope *env = H(s)->envelope(ctx);
    if (ci) {
        f->host_name = ci->host_name;
        f->daemon_addr = ci->local_addr;
        f->daemon_port = ci->local_port;
        f->client_addr = ci->client_addr;
        f->client_port = ci->client_port;
        f->client_name = ci->client_name;
        f->helo = ci->helo;
        f->tls_version = ci->tls_version;
        f->cipher = ci->tls_cipher;
        f->cert_subject = ci->tls_peer_subject;
        f->auth_authen = ci->login;
    }
    f->daemon_name = s->cf->daemon_name;
    f->version = "smtpgate";
    if (env) {
        f->tx_id = env->tx_id;
        f->mail_addr = env->mail_from;
    }
    f->rcpt_addr = rcpt;
}

/* SMFIC_MACRO for command cmd (stage: SMFIM_*), the values smtpgate has. */
static void sess_macros(struct mc_sess *s, struct sg_ctx *ctx, char cmd, int stage,
                        const char *rcpt)
{
    const struct milter_macro_list *l =
        s->macro_req[stage] ? &s->req_lists[stage] : &s->cf->macros[stage];
    if (l->n == 0)
        return;
    struct milter_facts f;
    sess_facts(s, ctx, &f, rcpt);
    const char *names[MILTER_MACROS_MAX], *values[MILTER_MACROS_MAX];
    static __thread char bufs[MILTER_MACROS_MAX][320];
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *v = milter_macros_value(&f, l->names[i], bufs[n], sizeof(bufs[n]));
        if (!v)
            continue;
        names[n] = l->names[i];
        values[n] = v;
        n++;
    }
    if (n)
        milter_out_macros(&s->out, cmd, names, values, n);
}

/* ---- replies ---- */

/* A verdict reply (not an edit) to the waiting command: true when it ends
 * the wait, with *v and the reply text in rbuf (or *reply NULL). */
static bool reply_verdict(struct mc_sess *s, const struct milter_reply *r, enum sg_verdict *v,
                          char *rbuf, size_t rsz, const char **reply)
{
    *reply = NULL;
    switch (r->kind) {
    case MILTER_R_CONTINUE:
        *v = SG_CONTINUE;
        return true;
    case MILTER_R_ACCEPT:
        *v = SG_CONTINUE;
        if (s->stage == SG_STAGE_CONNECT || s->stage == SG_STAGE_HELO)
            s->conn_quiet = true;
        else
            s->msg_quiet = true;
        return true;
    case MILTER_R_REJECT:
        *v = SG_REJECT;
        *reply = "550 5.7.1 Command rejected";
        return true;
    case MILTER_R_TEMPFAIL:
        *v = SG_TEMPFAIL;
        *reply = "451 4.7.1 Service unavailable - try again later";
        return true;
    case MILTER_R_DISCARD:
        /* libmilter is done too: it would leave later commands unanswered */
        *v = SG_DISCARD;
        if (s->stage == SG_STAGE_CONNECT || s->stage == SG_STAGE_HELO)
            s->conn_quiet = true;
        else
            s->msg_quiet = true;
        return true;
    case MILTER_R_SHUTDOWN:
        *v = SG_TEMPFAIL;
        *reply = "421 4.7.0 Server closing connection";
        return true;
    case MILTER_R_CONN_FAIL:
        *v = SG_TEMPFAIL;
        *reply = "451 4.7.1 Service unavailable - try again later";
        return true;
    case MILTER_R_REPLYCODE: {
        /* the chain's reply form: lines separated by "\n" */
        size_t k = 0;
        for (const char *p = r->text; *p && k + 1 < rsz; p++) {
            if (p[0] == '\r' && p[1] == '\n')
                continue;
            rbuf[k++] = *p;
        }
        rbuf[k] = '\0';
        *v = r->code >= 500 ? SG_REJECT : SG_TEMPFAIL;
        *reply = rbuf;
        return true;
    }
    default:
        return false;
    }
}

/* A header value from a milter as the host takes it: LF-folded lines as
 * CRLF, and (with SMFIP_HDR_LEADSPC) without the blank the host adds. */
static char *edit_value(const struct mc_sess *s, const char *v)
{
    if ((s->protocol & SMFIP_HDR_LEADSPC) && (*v == ' ' || *v == '\t'))
        v++;
    size_t n = strlen(v);
    char *out = malloc(2 * n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\r' && v[i + 1] == '\n')
            continue;
        if (v[i] == '\n')
            out[k++] = '\r';
        out[k++] = v[i];
    }
    out[k] = '\0';
    return out;
}

static char *edit_mailbox(const char *addr)
{
    size_t n = strlen(addr);
    if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
        return strndup(addr + 1, n - 2);
    return strdup(addr);
}

/* One edit at eom; -1 fails the milter with *why set. */
static int apply_edit(struct mc_sess *s, const struct milter_reply *r, const char **why)
{
    const struct sg_host *h = H(s);
    struct sg_ctx *ctx = s->ctx;
    uint32_t need = 0;
    switch (r->kind) {
    case MILTER_R_ADDHEADER:
    case MILTER_R_INSHEADER:
        need = SMFIF_ADDHDRS;
        break;
    case MILTER_R_CHGHEADER:
        need = SMFIF_CHGHDRS;
        break;
    case MILTER_R_CHGFROM:
        need = SMFIF_CHGFROM;
        break;
    case MILTER_R_ADDRCPT:
        need = SMFIF_ADDRCPT;
        break;
    case MILTER_R_ADDRCPT_PAR:
        need = SMFIF_ADDRCPT_PAR;
        break;
    case MILTER_R_DELRCPT:
        need = SMFIF_DELRCPT;
        break;
    case MILTER_R_REPLBODY:
        need = SMFIF_CHGBODY;
        break;
    case MILTER_R_QUARANTINE:
        need = SMFIF_QUARANTINE;
        break;
    default:
        *why = "unexpected reply at end of message";
        return -1;
    }
    if (!(s->actions & need)) {
        *why = "an edit it did not negotiate";
        return -1;
    }
    int rc = 0;
    char *val = NULL, *box = NULL;
    switch (r->kind) {
    case MILTER_R_ADDHEADER:
    case MILTER_R_INSHEADER:
    case MILTER_R_CHGHEADER:
        if (r->kind == MILTER_R_CHGHEADER && r->value[0] == '\0') {
            rc = h->change_header(ctx, r->name, r->index ? r->index : 1, NULL);
            break;
        }
        if (!(val = edit_value(s, r->value))) {
            rc = -1;
            break;
        }
        if (r->kind == MILTER_R_ADDHEADER)
            rc = h->add_header(ctx, r->name, val);
        else if (r->kind == MILTER_R_INSHEADER)
            rc = h->insert_header(ctx, r->index, r->name, val);
        else
            rc = h->change_header(ctx, r->name, r->index ? r->index : 1, val);
        /* a later milter instance is shown the field, as from Postfix */
        if (rc == 0 && r->kind != MILTER_R_CHGHEADER && s->tx)
            (void)mc_seen_add(s->tx, s->cf, r->name, r->value,
                              r->kind == MILTER_R_INSHEADER && r->index == 0);
        break;
    case MILTER_R_CHGFROM:
    case MILTER_R_ADDRCPT:
    case MILTER_R_ADDRCPT_PAR:
    case MILTER_R_DELRCPT:
        if (!(box = edit_mailbox(r->addr))) {
            rc = -1;
            break;
        }
        if (r->kind == MILTER_R_CHGFROM)
            rc = h->change_from(ctx, box, r->args);
        else if (r->kind == MILTER_R_DELRCPT)
            rc = h->del_rcpt(ctx, box);
        else
            rc = h->add_rcpt(ctx, box, r->args);
        break;
    case MILTER_R_REPLBODY:
        rc = h->replace_body(ctx, r->body, r->body_len);
        break;
    case MILTER_R_QUARANTINE:
        s->quarantine = true;
        free(s->quarantine_reason);
        s->quarantine_reason = strdup(r->text[0] ? r->text : "milter");
        break;
    default:
        break;
    }
    free(val);
    free(box);
    if (rc < 0) {
        *why = "an edit smtpgate refuses (malformed, or too many)";
        return -1;
    }
    return 0;
}

static void msg_step(struct mc_sess *s);
static void sess_after_optneg(struct mc_sess *s);

static void on_optneg(struct mc_sess *s, char cmd, const uint8_t *data, size_t len)
{
    if (cmd != SMFIC_OPTNEG) {
        sess_fail(s, "no option negotiation but reply '%c'", (unsigned char)cmd);
        return;
    }
    struct milter_optneg offer = {.version = s->cf->version,
                                  .actions = s->cf->actions,
                                  .protocol = s->cf->protocol},
                         reply, agreed;
    const char *why;
    if (milter_wire_optneg(data, len, &reply, &why) < 0 ||
        milter_wire_negotiate(&offer, &reply, &agreed, &why) < 0) {
        sess_fail(s, "option negotiation: %s", why);
        return;
    }
    s->version = agreed.version;
    s->actions = agreed.actions;
    s->protocol = agreed.protocol;
    /* Steps an older milter does not know are never sent to it, as
     * Postfix does for protocol 2 to 5. */
    if (s->version < 4)
        s->protocol |= SMFIP_NODATA | SMFIP_NOUNKNOWN;
    if (s->version < 6)
        s->protocol &= ~(uint32_t)(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
                                   SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH |
                                   SMFIP_NR_BODY);
    sess_free_lists(s);
    for (int i = 0; i < MILTER_WIRE_STAGES; i++) {
        if (!agreed.macros[i] || s->version < 6)
            continue;
        s->macro_req[i] = strdup(agreed.macros[i]);
        if (!s->macro_req[i] || milter_macros_split(s->macro_req[i], &s->req_lists[i]) < 0) {
            sess_fail(s, "out of memory");
            return;
        }
    }
    sess_after_optneg(s);
}

/* One packet from the milter. */
static void on_packet(struct mc_sess *s, char cmd, const uint8_t *data, size_t len)
{
    if (s->phase == PH_OPTNEG) {
        on_optneg(s, cmd, data, len);
        return;
    }
    struct milter_reply r;
    if (milter_wire_reply(cmd, data, len, &r) == MILTER_R_INVALID) {
        sess_fail(s, "malformed reply '%c' to %s: %s", (unsigned char)cmd,
                  s->what ? s->what : "nothing", r.why);
        return;
    }
    if (!s->ctx || s->phase == PH_NONE || s->phase == PH_CONNECTING) {
        sess_fail(s, "reply %s when none was due", milter_wire_reply_name(r.kind));
        return;
    }
    if (r.kind == MILTER_R_PROGRESS) {
        sess_arm(s);
        return;
    }
    char rbuf[MILTER_MAX_DATA_SIZE < 4096 ? MILTER_MAX_DATA_SIZE : 4096];
    const char *reply;
    enum sg_verdict v;
    if (s->phase == PH_EOM) {
        if (milter_wire_is_edit(r.kind) || r.kind == MILTER_R_QUARANTINE) {
            const char *why;
            if (apply_edit(s, &r, &why) < 0)
                sess_fail(s, "%s: %s", why, milter_wire_reply_name(r.kind));
            return;
        }
        if (!reply_verdict(s, &r, &v, rbuf, sizeof(rbuf), &reply)) {
            sess_fail(s, "reply %s to end of message", milter_wire_reply_name(r.kind));
            return;
        }
        s->in_msg = false;
        /* libmilter takes SMFIC_QUIT_NC only where a message ended with
         * continue: any other final reply puts it back to "after HELO",
         * where it would ignore QUIT_NC and the next CONNECT alike. */
        s->at_endm = r.kind == MILTER_R_CONTINUE;
        if (v == SG_CONTINUE && s->quarantine)
            v = SG_QUARANTINE;
        sess_resolve(s, v, reply);
        return;
    }
    if (s->phase == PH_MSG_STEP) {
        if (r.kind == MILTER_R_SKIP && s->eoh_sent && !s->body_done) {
            s->body_skip = true;
            s->phase = PH_NONE;
            msg_step(s);
            return;
        }
        if (r.kind == MILTER_R_CONTINUE) {
            s->phase = PH_NONE;
            msg_step(s);
            return;
        }
        if (!reply_verdict(s, &r, &v, rbuf, sizeof(rbuf), &reply)) {
            sess_fail(s, "reply %s to %s", milter_wire_reply_name(r.kind), s->what);
            return;
        }
        s->in_msg = false;
        sess_resolve(s, v, reply);
        return;
    }
    /* PH_CMD: connect .. data */
    if (!reply_verdict(s, &r, &v, rbuf, sizeof(rbuf), &reply)) {
        sess_fail(s, "reply %s to %s", milter_wire_reply_name(r.kind), s->what);
        return;
    }
    if (s->stage != SG_STAGE_RCPT && (v == SG_REJECT || v == SG_TEMPFAIL) &&
        s->stage >= SG_STAGE_MAIL)
        s->in_msg = false; /* libmilter is back before MAIL */
    sess_resolve(s, v, reply);
}

/* libmilter writes each reply packet on its own, Nagle on: the second of two
 * (an edit, then the verdict) waits for our ACK, which the kernel delays by up
 * to 40 ms.  Acknowledging at once releases it. */
static void sess_quickack(const struct mc_sess *s)
{
#ifdef TCP_QUICKACK
    if (s->fd >= 0 && s->cf->addr.ss_family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
#else
    (void)s;
#endif
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct mc_sess *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    sess_quickack(s);
    sess_enter(s);
    /* Bounded: each turn consumes one whole packet, or stops. */
    while (s->bev == bev && !s->doomed) {
        size_t avail = evbuffer_get_length(in);
        if (avail < MILTER_LEN_BYTES)
            break;
        const uint8_t *head = evbuffer_pullup(in, MILTER_LEN_BYTES);
        uint32_t n =
            (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
        if (n == 0 || (size_t)n - 1 > MILTER_MAX_DATA_SIZE) {
            sess_fail(s, "packet length %lu out of range", (unsigned long)n);
            break;
        }
        if (avail < MILTER_LEN_BYTES + (size_t)n)
            break;
        const uint8_t *pkt = evbuffer_pullup(in, (ev_ssize_t)(MILTER_LEN_BYTES + n));
        char cmd;
        const uint8_t *data;
        size_t dlen;
        long whole = pkt ? milter_wire_frame(pkt, MILTER_LEN_BYTES + n, MILTER_MAX_DATA_SIZE, &cmd,
                                             &data, &dlen)
                         : -1;
        if (whole <= 0) {
            sess_fail(s, "malformed packet");
            break;
        }
        on_packet(s, cmd, data, dlen);
        if (s->bev == bev)
            evbuffer_drain(in, (size_t)whole);
    }
    sess_leave(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct mc_sess *s = arg;
    if (!s->write_wait)
        return;
    s->write_wait = false;
    sess_enter(s);
    msg_step(s);
    sess_leave(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct mc_sess *s = arg;
    sess_enter(s);
    if (what & BEV_EVENT_CONNECTED) {
        if (s->phase == PH_CONNECTING) {
            milter_out_optneg(&s->out, s->cf->version, s->cf->actions, s->cf->protocol);
            if (sess_flush(s) < 0)
                sess_fail(s, "out of memory");
            else
                s->phase = PH_OPTNEG;
        }
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        int err = EVUTIL_SOCKET_ERROR();
        if (s->phase == PH_CONNECTING)
            sess_fail(s, "cannot connect: %s", strerror(err));
        else if (what & BEV_EVENT_EOF)
            sess_fail(s, "closed the connection%s%s", s->what && s->ctx ? " waiting for " : "",
                      s->what && s->ctx ? s->what : "");
        else
            sess_fail(s, "connection error: %s", strerror(err));
    }
    sess_leave(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mc_sess *s = arg;
    sess_enter(s);
    if (s->ctx)
        sess_fail(s, "no reply to %s within %.3gs (%s)", s->what ? s->what : "the connection",
                  s->armed, s->timeout_name);
    sess_leave(s);
}

/* ---- the idle pool: connections between sessions (SMFIC_QUIT_NC) ---- */

static long mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec;
}

/* A pooled connection the milter still keeps open, or -1. */
static int idle_take(struct mc_conf *cf, struct mc_idle *out)
{
    long now = mono_now();
    pthread_mutex_lock(&cf->idle_lock);
    while (cf->nidle) {
        struct mc_idle it = cf->idle[--cf->nidle];
        char b;
        ssize_t k = recv(it.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        bool alive = k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        if (alive && now - it.since <= MC_IDLE_SECONDS) {
            pthread_mutex_unlock(&cf->idle_lock);
            *out = it;
            return 0;
        }
        close(it.fd);
        for (int i = 0; i < MILTER_WIRE_STAGES; i++)
            free(it.macro_req[i]);
    }
    pthread_mutex_unlock(&cf->idle_lock);
    return -1;
}

/* true when the connection went to the pool (s no longer owns it). */
static bool idle_put(struct mc_sess *s)
{
    struct mc_conf *cf = s->cf;
    if (!cf->reuse || s->failed || !s->at_endm || s->version < 6 || !s->bev || s->ctx ||
        evbuffer_get_length(bufferevent_get_output(s->bev)) ||
        evbuffer_get_length(bufferevent_get_input(s->bev)))
        return false;
    uint8_t quit[5] = {0, 0, 0, 1, SMFIC_QUIT_NC};
    if (send(s->fd, quit, sizeof(quit), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(quit))
        return false;
    pthread_mutex_lock(&cf->idle_lock);
    bool room = cf->nidle < MC_IDLE_MAX;
    if (room) {
        struct mc_idle *it = &cf->idle[cf->nidle++];
        it->fd = s->fd;
        it->version = s->version;
        it->actions = s->actions;
        it->protocol = s->protocol;
        for (int i = 0; i < MILTER_WIRE_STAGES; i++) {
            it->macro_req[i] = s->macro_req[i];
            s->macro_req[i] = NULL;
        }
        it->since = mono_now();
    }
    pthread_mutex_unlock(&cf->idle_lock);
    if (!room)
        return false;
    bufferevent_free(s->bev);
    s->bev = NULL;
    s->fd = -1;
    return true;
}

void mc_idle_drain(struct mc_conf *cf)
{
    pthread_mutex_lock(&cf->idle_lock);
    while (cf->nidle) {
        struct mc_idle *it = &cf->idle[--cf->nidle];
        uint8_t quit[5] = {0, 0, 0, 1, SMFIC_QUIT};
        (void)send(it->fd, quit, sizeof(quit), MSG_NOSIGNAL | MSG_DONTWAIT);
        close(it->fd);
        for (int i = 0; i < MILTER_WIRE_STAGES; i++)
            free(it->macro_req[i]);
    }
    pthread_mutex_unlock(&cf->idle_lock);
}

/* ---- session life ---- */

struct mc_sess *mc_sess_new(struct mc_conf *cf, struct sg_ctx *ctx)
{
    struct mc_sess *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cf = cf;
    s->fd = -1;
    s->loop_thread = pthread_self();
    milter_out_init(&s->out);
    s->base = cf->host->event_loop(ctx, &s->base_outlives);
    if (s->base) {
        s->timer = evtimer_new(s->base, on_timer, s);
        if (!s->timer) {
            free(s);
            return NULL;
        }
    }
    return s;
}

static void sess_destroy(struct mc_sess *s)
{
    if (!idle_put(s)) {
        if (s->bev && !s->failed) {
            /* SMFIC_QUIT, best effort: the milter learns the session ended */
            uint8_t quit[5] = {0, 0, 0, 1, SMFIC_QUIT};
            if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
                (void)send(s->fd, quit, sizeof(quit), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        sess_close_conn(s, false);
    }
    if (s->timer)
        event_free(s->timer);
    sess_free_lists(s);
    milter_out_free(&s->out);
    mc_seen_free(s->seen, s->nseen);
    free(s->tx);
    free(s->quarantine_reason);
    free(s);
}

static void sess_destroy_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mc_sess *s = arg;
    if (s->depth)
        s->doomed = true;
    else
        sess_destroy(s);
}

void mc_sess_release(void *arg)
{
    struct mc_sess *s = arg;
    if (!s)
        return;
    /* Only the loop's own thread touches the connection: from another thread
     * (a pool thread that ended the session), a loop that runs on does the
     * teardown.  A loop that ends with the session (smtpgate-milter) runs no
     * more: nothing races the teardown here, and a deferred one would never
     * run. */
    if (s->base && s->base_outlives && !pthread_equal(s->loop_thread, pthread_self())) {
        struct timeval zero = {0, 0};
        if (event_base_once(s->base, -1, EV_TIMEOUT, sess_destroy_cb, s, &zero) == 0)
            return;
    }
    sess_destroy_cb(-1, 0, s);
}

/* ---- stages ---- */

static enum sg_verdict sess_default(struct mc_sess *s, struct sg_ctx *ctx)
{
    const char *reply;
    enum sg_verdict v = default_verdict(s, &reply);
    if (reply)
        H(s)->set_reply(ctx, reply);
    if (v == SG_QUARANTINE)
        H(s)->set_quarantine_reason(ctx, "milter failure");
    return v;
}

/* A call arrives while another still waits (the host gave up on it): the
 * milter is out of step, which is a failure like any other. */
static bool sess_usable(struct mc_sess *s)
{
    if (s->ctx && !s->failed)
        sess_fail(s, "still no reply to %s when the next stage began", s->what ? s->what : "?");
    return !s->failed && s->bev;
}

static void sess_after_optneg(struct mc_sess *s)
{
    struct sg_ctx *ctx = s->ctx;
    const struct sg_conn_info *ci = H(s)->conn(ctx);
    sess_macros(s, ctx, SMFIC_CONNECT, SMFIM_CONNECT, NULL);
    if (!(s->protocol & SMFIP_NOCONNECT)) {
        const char *addr = ci && ci->client_addr ? ci->client_addr : NULL;
        char family = SMFIA_UNKNOWN;
        unsigned char tmp[sizeof(struct in6_addr)];
        if (addr && inet_pton(AF_INET, addr, tmp) == 1)
            family = SMFIA_INET;
        else if (addr && inet_pton(AF_INET6, addr, tmp) == 1)
            family = SMFIA_INET6;
        char hostbuf[300];
        const char *hostname = ci && ci->client_name ? ci->client_name : NULL;
        if (!hostname) {
            snprintf(hostbuf, sizeof(hostbuf), "[%s]", addr ? addr : "unknown");
            hostname = hostbuf;
        }
        milter_out_connect(&s->out, hostname, family, (uint16_t)(ci ? ci->client_port : 0),
                           addr ? addr : "");
    }
    if (sess_flush(s) < 0) {
        sess_fail(s, "cannot queue the connect command");
        return;
    }
    if (s->protocol & (SMFIP_NOCONNECT | SMFIP_NR_CONN)) {
        sess_resolve(s, SG_CONTINUE, NULL);
        return;
    }
    s->stage = SG_STAGE_CONNECT;
    sess_wait(s, PH_CMD, s->cf->command_timeout, "command_timeout", "connect");
}

static int sess_open_bev(struct mc_sess *s)
{
    s->bev = bufferevent_socket_new(s->base, s->fd, 0);
    if (!s->bev)
        return -1;
    bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
    bufferevent_setwatermark(s->bev, EV_WRITE, MC_OUT_HIGH / 4, 0);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    return 0;
}

enum sg_verdict mc_stage_connect(struct mc_sess *s, struct sg_ctx *ctx)
{
    if (!s->base) {
        H(s)->log(ctx, SG_LOG_ERR, "milter %s: no event loop in this callback; default_action %s",
                  s->cf->socket, mc_default_name(s->cf->def));
        s->failed = true;
        return sess_default(s, ctx);
    }
    s->ctx = ctx;
    s->stage = SG_STAGE_CONNECT;
    sess_call_begin(s);
    struct mc_idle it;
    if (s->cf->reuse && idle_take(s->cf, &it) == 0) {
        s->fd = it.fd;
        s->version = it.version;
        s->actions = it.actions;
        s->protocol = it.protocol;
        for (int i = 0; i < MILTER_WIRE_STAGES; i++) {
            s->macro_req[i] = it.macro_req[i];
            if (s->macro_req[i])
                milter_macros_split(s->macro_req[i], &s->req_lists[i]);
        }
        s->reused = true;
        if (sess_open_bev(s) < 0) {
            sess_fail(s, "out of memory");
            return SG_PENDING;
        }
        H(s)->counter_add(ctx, "milter_reused", 1);
        s->phase = PH_CMD;
        /* it may resolve at once (no reply wanted): the host allows that */
        sess_after_optneg(s);
        return SG_PENDING;
    }
    s->fd = socket(s->cf->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd >= 0 && s->cf->addr.ss_family != AF_UNIX) {
        /* one small packet waits for one small reply: Nagle would hold the
         * second of two writes for the peer's delayed ACK */
        int one = 1;
        (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (s->fd < 0 || sess_open_bev(s) < 0) {
        sess_fail(s, "cannot create a socket: %s", strerror(errno));
        return SG_PENDING;
    }
    sess_wait(s, PH_CONNECTING, s->cf->connect_timeout, "connect_timeout", "the connection");
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&s->cf->addr, (int)s->cf->addrlen) <
        0) {
        if (s->ctx)
            sess_fail(s, "cannot connect: %s", strerror(errno));
        return SG_PENDING;
    }
    return SG_PENDING;
}

/* Sends what the stage needs; returns the verdict now or SG_PENDING. */
static enum sg_verdict sess_command(struct mc_sess *s, struct sg_ctx *ctx, enum sg_stage stage,
                                    bool skip, uint32_t nr_bit, const char *what)
{
    if (sess_flush(s) < 0) {
        s->ctx = ctx;
        sess_fail(s, "cannot queue %s", what);
        return SG_PENDING;
    }
    if (skip || (s->protocol & nr_bit))
        return SG_CONTINUE;
    s->ctx = ctx;
    s->stage = stage;
    sess_call_begin(s);
    return sess_wait(s, PH_CMD, s->cf->command_timeout, "command_timeout", what);
}

enum sg_verdict mc_stage_helo(struct mc_sess *s, struct sg_ctx *ctx)
{
    if (!sess_usable(s))
        return s->failed ? sess_default(s, ctx) : SG_CONTINUE;
    if (s->conn_quiet)
        return SG_CONTINUE;
    const struct sg_conn_info *ci = H(s)->conn(ctx);
    sess_macros(s, ctx, SMFIC_HELO, SMFIM_HELO, NULL);
    bool skip = (s->protocol & SMFIP_NOHELO) != 0;
    if (!skip)
        milter_out_helo(&s->out, ci && ci->helo ? ci->helo : "");
    s->at_endm = false;
    return sess_command(s, ctx, SG_STAGE_HELO, skip, SMFIP_NR_HELO, "helo");
}

/* ESMTP parameters as the separate strings the protocol sends. */
static size_t split_params(char *params, char **args, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = params ? strtok_r(params, " ", &save) : NULL; t && n < max;
         t = strtok_r(NULL, " ", &save))
        args[n++] = t;
    return n;
}

enum sg_verdict mc_stage_envelope(struct mc_sess *s, struct sg_ctx *ctx, bool rcpt,
                                  const char *addr, const char *params)
{
    if (!sess_usable(s))
        return s->failed ? sess_default(s, ctx) : SG_CONTINUE;
    if (!rcpt) {
        s->round_trips = 0;
        s->msg_quiet = false;
        s->quarantine = false;
        free(s->quarantine_reason);
        s->quarantine_reason = NULL;
    }
    if (s->conn_quiet || s->msg_quiet)
        return SG_CONTINUE;
    char *copy = params && *params ? strdup(params) : NULL;
    char *args[64];
    size_t nargs = split_params(copy, args, 64);
    char cmd = rcpt ? SMFIC_RCPT : SMFIC_MAIL;
    sess_macros(s, ctx, cmd, rcpt ? SMFIM_ENVRCPT : SMFIM_ENVFROM, rcpt ? addr : NULL);
    bool skip = (s->protocol & (rcpt ? SMFIP_NORCPT : SMFIP_NOMAIL)) != 0;
    if (!skip)
        milter_out_envelope(&s->out, cmd, addr, (const char *const *)args, nargs);
    free(copy);
    s->in_msg = true;
    s->at_endm = false;
    return sess_command(s, ctx, rcpt ? SG_STAGE_RCPT : SG_STAGE_MAIL, skip,
                        rcpt ? SMFIP_NR_RCPT : SMFIP_NR_MAIL, rcpt ? "rcpt" : "mail");
}

enum sg_verdict mc_stage_data(struct mc_sess *s, struct sg_ctx *ctx)
{
    if (!sess_usable(s))
        return s->failed ? sess_default(s, ctx) : SG_CONTINUE;
    if (s->conn_quiet || s->msg_quiet)
        return SG_CONTINUE;
    sess_macros(s, ctx, SMFIC_DATA, SMFIM_DATA, NULL);
    bool skip = (s->protocol & SMFIP_NODATA) != 0;
    if (!skip)
        milter_out_simple(&s->out, SMFIC_DATA);
    return sess_command(s, ctx, SG_STAGE_DATA, skip, SMFIP_NR_DATA, "data");
}

/* A header value as the milter gets it: without the blank after the colon
 * (unless SMFIP_HDR_LEADSPC), folded lines joined by LF as Postfix does. */
static char *header_value(const struct mc_sess *s, const struct sg_header *h)
{
    const char *v = h->value;
    size_t n = h->value_len;
    if (n >= 2 && v[n - 2] == '\r' && v[n - 1] == '\n')
        n -= 2;
    if (!(s->protocol & SMFIP_HDR_LEADSPC))
        while (n && (*v == ' ' || *v == '\t')) {
            v++;
            n--;
        }
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n')
            continue;
        out[k++] = v[i] == '\0' ? ' ' : v[i];
    }
    out[k] = '\0';
    return out;
}

/* The next header field for the milter: those earlier milter instances put
 * at the top (the last one inserted first), the fields as received, then the
 * ones they appended.  false when all went. */
static bool msg_next_header(struct mc_sess *s, struct sg_ctx *ctx, const char **name, char **value)
{
    while (s->seen_top > 0) {
        const struct mc_seen_field *f = &s->seen[--s->seen_top];
        if (f->top) {
            *name = f->name;
            *value = strdup(f->value);
            return true;
        }
    }
    if (s->hdr_i < H(s)->header_count(ctx)) {
        const struct sg_header *h = H(s)->header_get(ctx, s->hdr_i++);
        if (!h) {
            *value = NULL;
            return true;
        }
        *name = h->name;
        *value = header_value(s, h);
        return true;
    }
    s->hdr_i = SIZE_MAX / 2;
    while (s->seen_bot < s->nseen) {
        const struct mc_seen_field *f = &s->seen[s->seen_bot++];
        if (!f->top) {
            *name = f->name;
            *value = strdup(f->value);
            return true;
        }
    }
    return false;
}

/* The message, one step after the other, until a step waits for a reply,
 * the output is full, or the call is resolved. */
static void msg_step(struct mc_sess *s)
{
    static __thread uint8_t chunk[MILTER_CHUNK_SIZE];
    for (int guard = 0; guard < 1000000 && s->ctx && s->bev && s->phase == PH_NONE; guard++) {
        struct sg_ctx *ctx = s->ctx;
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > MC_OUT_HIGH) {
            /* a milter that stops reading is a stall like any other */
            s->write_wait = true;
            s->timeout = s->cf->content_timeout;
            s->timeout_name = "content_timeout";
            s->what = "the message (the milter does not read)";
            sess_arm(s);
            return;
        }
        const char *hname = NULL;
        char *hvalue = NULL;
        if (!(s->protocol & SMFIP_NOHDRS) && msg_next_header(s, ctx, &hname, &hvalue)) {
            if (!hvalue) {
                sess_fail(s, "out of memory");
                return;
            }
            milter_out_header(&s->out, hname, hvalue);
            free(hvalue);
            if (sess_flush(s) < 0) {
                sess_fail(s, "cannot queue a header");
                return;
            }
            if (!(s->protocol & SMFIP_NR_HDR))
                sess_wait(s, PH_MSG_STEP, s->cf->content_timeout, "content_timeout", "header");
            continue;
        }
        if (!s->eoh_sent) {
            s->eoh_sent = true;
            sess_macros(s, ctx, SMFIC_EOH, SMFIM_EOH, NULL);
            if (!(s->protocol & SMFIP_NOEOH))
                milter_out_simple(&s->out, SMFIC_EOH);
            if (sess_flush(s) < 0) {
                sess_fail(s, "cannot queue end of headers");
                return;
            }
            if (!(s->protocol & (SMFIP_NOEOH | SMFIP_NR_EOH)))
                sess_wait(s, PH_MSG_STEP, s->cf->content_timeout, "content_timeout",
                          "end of headers");
            continue;
        }
        if (!s->body_done) {
            if ((s->protocol & SMFIP_NOBODY) || s->body_skip || s->body_off >= s->body_end) {
                s->body_done = true;
                continue;
            }
            uint64_t left = s->body_end - s->body_off;
            size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
            ssize_t got = H(s)->message_read(ctx, s->body_off, chunk, want);
            if (got <= 0) {
                sess_fail(s, "cannot read the message");
                return;
            }
            s->body_off += (uint64_t)got;
            milter_out_body(&s->out, chunk, (size_t)got);
            if (sess_flush(s) < 0) {
                sess_fail(s, "cannot queue the body");
                return;
            }
            if (!(s->protocol & SMFIP_NR_BODY))
                sess_wait(s, PH_MSG_STEP, s->cf->content_timeout, "content_timeout", "body");
            continue;
        }
        sess_macros(s, ctx, SMFIC_BODYEOB, SMFIM_EOM, NULL);
        milter_out_simple(&s->out, SMFIC_BODYEOB);
        if (sess_flush(s) < 0) {
            sess_fail(s, "cannot queue end of message");
            return;
        }
        sess_wait(s, PH_EOM, s->cf->content_timeout, "content_timeout", "end of message");
        return;
    }
}

struct seen_token {
    const void *owner;
    char tx[];
};

static void seen_token_free(void *arg)
{
    struct seen_token *t = arg;
    mc_seen_drop(t->tx, t->owner);
    free(t);
}

/* What earlier milter instances added to this transaction, and a token
 * whose end (with the transaction's) drops what this one will add. */
static void msg_seen_begin(struct mc_sess *s, struct sg_ctx *ctx)
{
    mc_seen_free(s->seen, s->nseen);
    s->seen = NULL;
    s->nseen = s->seen_top = s->seen_bot = 0;
    free(s->tx);
    s->tx = NULL;
    const struct sg_envelope *env = H(s)->envelope(ctx);
    if (!env || !env->tx_id)
        return;
    size_t n = strlen(env->tx_id);
    struct seen_token *t = malloc(sizeof(*t) + n + 1);
    s->tx = strdup(env->tx_id);
    if (!t || !s->tx) {
        free(t);
        free(s->tx);
        s->tx = NULL;
        return;
    }
    t->owner = s->cf;
    memcpy(t->tx, env->tx_id, n + 1);
    H(s)->set_msg_data(ctx, t, seen_token_free);
    s->seen = mc_seen_collect(s->tx, s->cf, &s->nseen);
    s->seen_top = s->nseen;
}

enum sg_verdict mc_stage_message(struct mc_sess *s, struct sg_ctx *ctx)
{
    if (!sess_usable(s))
        return s->failed ? sess_default(s, ctx) : SG_CONTINUE;
    if (s->conn_quiet || s->msg_quiet)
        return SG_CONTINUE;
    s->ctx = ctx;
    s->stage = SG_STAGE_EOM;
    s->phase = PH_NONE;
    sess_call_begin(s);
    s->hdr_i = 0;
    msg_seen_begin(s, ctx);
    s->eoh_sent = s->body_done = s->body_skip = false;
    s->body_off = H(s)->body_offset(ctx);
    s->body_end = H(s)->message_size(ctx);
    s->at_endm = false;
    sess_enter(s);
    msg_step(s);
    sess_leave(s);
    /* The host's call is answered through resolve() even when it came at
     * once: SG_PENDING holds either way. */
    return SG_PENDING;
}

void mc_stage_abort(struct mc_sess *s, struct sg_ctx *ctx)
{
    (void)ctx;
    if (s->ctx && !s->failed)
        sess_fail(s, "still no reply to %s when the transaction ended", s->what ? s->what : "?");
    if (s->failed || !s->bev || !s->in_msg)
        return;
    milter_out_simple(&s->out, SMFIC_ABORT);
    if (sess_flush(s) < 0)
        sess_fail(s, "cannot queue abort");
    s->in_msg = false;
    s->msg_quiet = false;
    s->at_endm = false;
}
