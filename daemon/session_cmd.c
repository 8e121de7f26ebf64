/*
 * session_cmd - the command table and its one driver.
 *
 * Every command is one row (struct session_cmd, session_int.h): its verb, the
 * session states it is allowed in, whether it is a barrier (it runs only once
 * every earlier reply is known: EHLO, DATA, BDAT, QUIT...), its filter stage,
 * a check that parses and validates the line into a session_args, and a
 * proceed that acts.  session_command() drives each line through the same
 * steps:
 *
 *     barrier -> state mask -> check -> chain stage -> proceed, or refusal
 *
 * A command outside its states gets the row's early or late reply; a check
 * that fails has replied itself; the chain's stage may answer at once or
 * later, from any thread (session_chain_run: the verdict comes back through
 * an event on the session's own loop, and the continuation stored in
 * s->wait carries on).  Adding a command is adding a row.
 *
 * The whole table is below; the check and proceed functions of the
 * transaction's rows live in session_tx.c, those of STARTTLS and AUTH in
 * session_edge.c, HELO/EHLO and the commands that need no more than a reply
 * or a relay here.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/session.h"
#include "daemon/session_int.h"
#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "daemon/upstream_pool.h"
#include "util/log.h"

/* What smtpgate itself implements of each extension.  What a client is shown
 * is this, intersected with what the upstreams offer. */
#define HONOURED_CAPS                                                                              \
    (ESMTP_CAP_SIZE | ESMTP_CAP_8BITMIME | ESMTP_CAP_BINARYMIME | ESMTP_CAP_SMTPUTF8 |             \
     ESMTP_CAP_DSN | ESMTP_CAP_CHUNKING)

/* Every state in which a command line is read. */
#define ANY_CMD_STATE                                                                              \
    (SESSION_IN(SESSION_GREETED) | SESSION_IN(SESSION_HELO) | SESSION_IN(SESSION_EHLO) |           \
     SESSION_IN(SESSION_MAIL))

void session_text_add(struct session_text *t, const char *fmt, ...)
{
    if (t->truncated)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(t->buf) - t->len) {
        t->truncated = true;
        t->buf[t->len] = '\0';
        return;
    }
    t->len += (size_t)n;
}

/* ---- waiting for the filter chain ---- */

/* Any thread: the chain has a verdict (or the wait timed out). */
static void session_chain_notify(void *arg)
{
    struct session *s = arg;
    event_active(s->chain_ev, EV_READ, 0);
}

static void session_chain_arm(struct session *s)
{
    unsigned ms = chain_wait_ms(s->chain);
    struct timeval t = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(s->chain_timer, &t);
}

static void session_chain_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    if (s->wait.kind != WAIT_CHAIN)
        return;
    if (chain_resume(s->chain, &s->wait.res) == CHAIN_WAIT) {
        /* another plugin further down the chain is out now */
        session_chain_arm(s);
        return;
    }
    evtimer_del(s->chain_timer);
    void (*then)(struct session *) = s->wait.then;
    s->wait.kind = WAIT_NONE;
    s->wait.then = NULL;
    then(s);
    session_flush(s);
    session_process(s);
}

static void session_chain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    if (s->wait.kind == WAIT_CHAIN)
        chain_expire(s->chain);
}

/* The chain's answer for stage: true when it is known now (in s->wait.res);
 * false when the session waits, and then(s) carries on once it is. */
bool session_chain_run(struct session *s, enum sg_stage stage, const char *arg, const char *params,
                       void (*then)(struct session *s))
{
    enum chain_status st;
    if (stage == SG_STAGE_EOM) {
        struct chain_content content = {.store = s->msg.store, .headers = s->msg.hdrs};
        st = chain_run_message(s->chain, &content, &s->wait.res);
    } else {
        st = chain_run(s->chain, stage, arg, params, &s->wait.res);
    }
    if (st == CHAIN_DONE)
        return true;
    s->wait.kind = WAIT_CHAIN;
    s->wait.then = then;
    session_chain_arm(s);
    return false;
}

bool session_chain_start(struct session *s)
{
    char local[64] = "";
    unsigned local_port = 0;
    if (s->local.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s->local;
        inet_ntop(AF_INET6, &a->sin6_addr, local, sizeof(local));
        local_port = ntohs(a->sin6_port);
    } else if (s->local.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&s->local;
        inet_ntop(AF_INET, &a->sin_addr, local, sizeof(local));
        local_port = ntohs(a->sin_port);
    }
    struct sg_conn_info info = {
        .session_id = s->id,
        .client_addr = s->addr,
        .client_port = s->port,
        .client_name = s->client.name,
        .local_addr = local,
        .local_port = local_port,
        .host_name = s->cfg->hostname,
    };
    const struct tls_facts *tls = s->edge.tls;
    if (tls) {
        info.tls = true;
        info.tls_version = tls->version;
        info.tls_cipher = tls->cipher;
        info.tls_sni = tls->sni[0] ? tls->sni : NULL;
        info.tls_peer_subject = tls->peer_subject[0] ? tls->peer_subject : NULL;
        info.tls_peer_fingerprint = tls->peer_fingerprint[0] ? tls->peer_fingerprint : NULL;
    }
    struct chain_front front = {.notify = session_chain_notify,
                               .arg = s,
                               .base = s->host->base,
                               .base_outlives = true};
    s->chain_ev = event_new(s->host->base, -1, 0, session_chain_event_cb, s);
    s->chain_timer = evtimer_new(s->host->base, session_chain_timer_cb, s);
    if (!s->chain_ev || !s->chain_timer)
        return false;
    s->chain =
        chain_conn_new(s->rt->chain, &info, &front, s->cfg->spill_threshold, s->cfg->spool_dir);
    return s->chain != NULL;
}

/* ---- HELO and EHLO ---- */

static void session_build_ehlo(struct session *s)
{
    unsigned up_caps;
    uint64_t up_size;
    upstream_pool_caps(s->rt, &up_caps, &up_size);
    if (s->up && upstream_ready(s->up))
        up_caps &= upstream_caps(s->up);
    unsigned caps = up_caps & HONOURED_CAPS;
    /* BINARYMIME only travels in BDAT: both must be there. */
    if (!(caps & ESMTP_CAP_CHUNKING))
        caps &= ~ESMTP_CAP_BINARYMIME;
    caps |= ESMTP_CAP_PIPELINING | ESMTP_CAP_ENHANCEDSTATUSCODES;
    uint64_t size = s->cfg->max_message_size;
    if (up_size && up_size < size)
        size = up_size;
    s->client.caps = caps;
    s->client.size_limit = size;

    struct session_text *t = malloc(sizeof(*t));
    if (!t) {
        s->io.closing = true;
        return;
    }
    t->len = 0;
    t->truncated = false;
    session_text_add(t, "250-%s\r\n250-PIPELINING\r\n", s->cfg->hostname);
    if (caps & ESMTP_CAP_SIZE)
        session_text_add(t, "250-SIZE %" PRIu64 "\r\n", size);
    if (caps & ESMTP_CAP_8BITMIME)
        session_text_add(t, "250-8BITMIME\r\n");
    if (caps & ESMTP_CAP_BINARYMIME)
        session_text_add(t, "250-BINARYMIME\r\n");
    if (caps & ESMTP_CAP_CHUNKING)
        session_text_add(t, "250-CHUNKING\r\n");
    if (caps & ESMTP_CAP_DSN)
        session_text_add(t, "250-DSN\r\n");
    if (caps & ESMTP_CAP_SMTPUTF8)
        session_text_add(t, "250-SMTPUTF8\r\n");
    session_edge_ehlo(s, t);
    session_text_add(t, "250 ENHANCEDSTATUSCODES\r\n");
    if (t->truncated) {
        /* Cannot happen with a hostname of the length config allows. */
        free(t);
        session_reply(s, "451 4.3.0 Error: internal error");
        return;
    }
    struct reply_slot *r = session_slot_new(s);
    char *text = r ? malloc(t->len) : NULL;
    if (!text) {
        free(t);
        free(r);
        s->io.closing = true;
        return;
    }
    memcpy(text, t->buf, t->len);
    session_slot_fill(s, r, text, t->len, true);
    free(t);
    session_flush(s);
}

static enum session_check session_check_helo(struct session *s, struct session_args *a)
{
    const char *name;
    size_t name_len;
    enum smtp_cmd_status st = smtp_helo_parse(a->cmd.arg, a->cmd.arg_len, &name, &name_len);
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return CHECK_FAIL;
    }
    if (session_tx_open(s)) {
        session_abort_upstream_tx(s);
        session_tx_reset(s);
    }
    a->esmtp = a->cmd.verb == SMTP_VERB_EHLO;
    a->mailbox = strndup(name, name_len);
    if (!a->mailbox) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return CHECK_FAIL;
    }
    if (s->chain)
        chain_set_helo(s->chain, a->mailbox, a->esmtp);
    return CHECK_OK;
}

/* HELO/EHLO after the chain let it pass (or had nothing to say). */
static void session_do_helo(struct session *s, struct session_args *a)
{
    free(s->client.helo);
    s->client.helo = a->mailbox;
    a->mailbox = NULL;
    s->client.esmtp = a->esmtp;
    s->state = session_idle_state(s);
    if (s->grace_ev) {
        event_free(s->grace_ev);
        s->grace_ev = NULL;
    }
    if (s->client.esmtp) {
        session_build_ehlo(s);
    } else {
        s->client.caps = 0;
        session_replyf(s, "250 %s", s->cfg->hostname);
    }
}

/* ---- commands that need no more ---- */

static enum session_check session_check_none(struct session *s, struct session_args *a)
{
    (void)s;
    (void)a;
    return CHECK_OK;
}

static void session_do_rset(struct session *s, struct session_args *a)
{
    session_tx_reset(s);
    if (s->up)
        session_forward(s, EXPECT_RELAY, a->line, a->len);
    else
        session_reply(s, "250 2.0.0 Ok");
}

static void session_do_noop(struct session *s, struct session_args *a)
{
    (void)a;
    session_reply(s, "250 2.0.0 Ok");
}

static void session_do_quit(struct session *s, struct session_args *a)
{
    (void)a;
    session_close_with(s, "221 2.0.0 Bye");
}

static void session_do_relay(struct session *s, struct session_args *a)
{
    session_forward(s, EXPECT_RELAY, a->line, a->len);
}

static void session_do_help(struct session *s, struct session_args *a)
{
    (void)a;
    session_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY "
                     "EXPN HELP");
}

/* ---- the table ---- */

/* Where each command is allowed. */
#define IN_GREETED SESSION_IN(SESSION_GREETED)
#define IN_IDLE    (SESSION_IN(SESSION_HELO) | SESSION_IN(SESSION_EHLO))
#define IN_EHLO    SESSION_IN(SESSION_EHLO)
#define IN_MAIL    SESSION_IN(SESSION_MAIL)
#define IN_REFUSED SESSION_IN(SESSION_REFUSED)
#define IN_ANY     (IN_GREETED | IN_IDLE | IN_MAIL)
#define IN_PRE_TX  (IN_GREETED | IN_IDLE)

/* What a command outside those states is told. */
#define NEED_HELO "503 5.5.1 Error: send HELO/EHLO first"
#define NEED_EHLO "503 5.5.1 Error: send EHLO first"
#define NEED_MAIL "503 5.5.1 Error: need MAIL command"
#define NESTED    "503 5.5.1 Error: nested MAIL command"
#define IN_TX     "503 5.5.1 Error: MAIL transaction in progress"

#define NO_STAGE SESSION_NO_STAGE
#define B        true /* barrier */
#define _        false

/* clang-format off */
static const struct session_cmd session_commands[SMTP_VERB__COUNT] = {
#define ROW(verb, states, barrier, stage, check, proceed, refused, early, late)                     \
    [SMTP_VERB_##verb] = {SMTP_VERB_##verb, states, early, late, barrier, stage, check, proceed,   \
                          refused}
    /*  verb      states               bar stage          check                   proceed              refused               early      late */
    ROW(HELO,     IN_ANY,              B, SG_STAGE_HELO, session_check_helo,     session_do_helo,     NULL,                 NULL,      NULL),
    ROW(EHLO,     IN_ANY,              B, SG_STAGE_HELO, session_check_helo,     session_do_helo,     NULL,                 NULL,      NULL),
    ROW(MAIL,     IN_IDLE,             _, SG_STAGE_MAIL, session_check_mail,     session_do_mail,     session_refused_mail, NEED_HELO, NESTED),
    ROW(RCPT,     IN_MAIL,             _, SG_STAGE_RCPT, session_check_rcpt,     session_do_rcpt,     NULL,                 NEED_MAIL, NULL),
    ROW(DATA,     IN_MAIL,             B, SG_STAGE_DATA, session_check_data,     session_do_data,     session_refused_data, NEED_MAIL, NULL),
    ROW(BDAT,     IN_ANY,              B, SG_STAGE_DATA, session_check_bdat,     session_do_bdat,     session_refused_bdat, NULL,      NULL),
    ROW(RSET,     IN_ANY,              _, NO_STAGE,      session_check_none,     session_do_rset,     NULL,                 NULL,      NULL),
    ROW(NOOP,     IN_ANY | IN_REFUSED, _, NO_STAGE,      session_check_none,     session_do_noop,     NULL,                 NULL,      NULL),
    ROW(QUIT,     IN_ANY | IN_REFUSED, B, NO_STAGE,      session_check_none,     session_do_quit,     NULL,                 NULL,      NULL),
    ROW(VRFY,     IN_ANY,              _, NO_STAGE,      session_check_none,     session_do_relay,    NULL,                 NULL,      NULL),
    ROW(EXPN,     IN_ANY,              _, NO_STAGE,      session_check_none,     session_do_relay,    NULL,                 NULL,      NULL),
    ROW(HELP,     IN_ANY,              _, NO_STAGE,      session_check_none,     session_do_help,     NULL,                 NULL,      NULL),
    ROW(STARTTLS, IN_PRE_TX,           B, NO_STAGE,      session_check_starttls, session_do_starttls, NULL,                 NULL,      IN_TX),
    ROW(AUTH,     IN_EHLO,             B, NO_STAGE,      session_check_auth,     session_do_auth,     NULL,                 NEED_EHLO, IN_TX),
#undef ROW
};
/* clang-format on */

/* ---- the driver ---- */

void session_args_clear(struct session_args *a)
{
    free(a->kept);
    free(a->mailbox);
    free(a->params);
    memset(a, 0, sizeof(*a));
}

/* The chain's verdict on the command waiting in s->wait.args (the
 * continuation of every command's stage). */
static void session_cmd_decided(struct session *s)
{
    struct session_args *a = &s->wait.args;
    const struct session_cmd *row = a->row;
    if (s->wait.res.action == CHAIN_REFUSE) {
        if (row->refused)
            row->refused(s, a);
        else
            session_reply(s, s->wait.res.reply);
    } else {
        row->proceed(s, a);
    }
    session_args_clear(a);
}

/* The reply to a command outside the states its row allows. */
static const char *session_cmd_out_of_state(const struct session *s, const struct session_cmd *row)
{
    unsigned here = SESSION_IN(s->state);
    unsigned first = row->states & -row->states; /* the earliest state it is allowed in */
    const char *reply = here < first ? row->early : row->late;
    return reply ? reply : "503 5.5.1 Error: bad sequence of commands";
}

/* A web browser or proxy speaking to the SMTP port: no point answering more. */
static bool session_is_http(const struct smtp_cmd *cmd)
{
    static const char *const verbs[] = {"GET", "POST", "CONNECT", "HEAD", "PUT", NULL};
    for (size_t i = 0; verbs[i]; i++)
        if (cmd->verb_len == strlen(verbs[i]) &&
            strncasecmp(cmd->verb_text, verbs[i], cmd->verb_len) == 0)
            return true;
    return false;
}

/* The address of a MAIL or RCPT argument as the log shows it: what is
 * between the first <> (or up to the first blank), printable ASCII only,
 * so a client cannot forge log lines. */
static char *session_log_address(const char *arg, size_t len)
{
    const char *colon = arg ? memchr(arg, ':', len) : NULL;
    if (!colon)
        return NULL;
    const char *p = colon + 1, *end = arg + len;
    while (p < end && *p == ' ')
        p++;
    const char *lt = memchr(p, '<', (size_t)(end - p));
    const char *stop;
    if (lt) {
        p = lt + 1;
        stop = memchr(p, '>', (size_t)(end - p));
    } else {
        stop = memchr(p, ' ', (size_t)(end - p));
    }
    size_t n = (size_t)((stop ? stop : end) - p);
    if (n > 256)
        n = 256;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] > ' ' && p[i] < 127 && p[i] != '<' && p[i] != '>' ? p[i] : '?';
    out[n] = '\0';
    return out;
}

/* Which envelope command the replies from now on answer, for their log line. */
static void session_note_command(struct session *s, const struct smtp_cmd *cmd)
{
    free(s->io.cmd_arg);
    s->io.cmd_arg = NULL;
    switch (cmd->verb) {
    case SMTP_VERB_MAIL:
        s->io.cmd_what = "MAIL";
        break;
    case SMTP_VERB_RCPT:
        s->io.cmd_what = "RCPT";
        break;
    case SMTP_VERB_DATA:
        s->io.cmd_what = "DATA";
        break;
    case SMTP_VERB_BDAT:
        s->io.cmd_what = "BDAT";
        break;
    default:
        s->io.cmd_what = NULL;
        return;
    }
    if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT)
        s->io.cmd_arg = session_log_address(cmd->arg, cmd->arg_len);
}

/* One command line; returns false when the loop must stop in front of it. */
bool session_command(struct session *s, const char *line, size_t len)
{
    struct session_args *a = &s->wait.args;
    session_args_clear(a);
    enum smtp_cmd_status st = smtp_cmd_parse(line, len, &a->cmd);
    const struct session_cmd *row = NULL;
    if (st == SMTP_CMD_OK && a->cmd.verb != SMTP_VERB_UNKNOWN &&
        session_commands[a->cmd.verb].check)
        row = &session_commands[a->cmd.verb];
    if (row && row->barrier && s->io.ex_len > 0) {
        s->wait.kind = WAIT_BARRIER;
        return false;
    }
    s->stats.ncommands++;
    session_note_command(s, &a->cmd);
    size_t shown = auth_loggable_len(line, len); /* never an AUTH initial response */
    log_debug("%s: < %.*s", s->id, (int)(shown > 200 ? 200 : shown), line);

    if (st == SMTP_CMD_UNKNOWN_VERB && session_is_http(&a->cmd)) {
        session_close_with(s, "521 5.5.1 Protocol error");
        return true;
    }
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return true;
    }
    if (!row) {
        session_reply(s, "500 5.5.1 Error: command not recognized");
        return true;
    }
    if (s->state == SESSION_REFUSED && !(row->states & SESSION_IN(SESSION_REFUSED))) {
        /* Refused at connect: the client may only leave (RFC 5321 3.1). */
        session_reply(s, "503 5.7.0 Error: access denied");
        return true;
    }
    const char *policy = session_edge_refusal(s, a->cmd.verb);
    if (policy) {
        session_reply(s, policy);
        return true;
    }
    if (!(row->states & SESSION_IN(s->state))) {
        session_reply(s, session_cmd_out_of_state(s, row));
        return true;
    }
    a->row = row;
    a->line = line;
    a->len = len;
    enum session_check ck = row->check(s, a);
    if (ck == CHECK_FAIL) {
        session_args_clear(a);
        return true;
    }
    bool staged = ck == CHECK_OK && row->stage != SESSION_NO_STAGE && s->chain &&
                  chain_wants(s->rt->chain, row->stage);
    if (!staged) {
        s->wait.res.action = CHAIN_PASS;
        session_cmd_decided(s);
        return true;
    }
    /* The line must outlive the input buffer while the chain decides; a
     * check that rewrote it kept its own copy already. */
    if (!a->kept) {
        a->kept = strndup(line, len);
        if (!a->kept) {
            session_args_clear(a);
            session_reply(s, "451 4.3.0 Error: out of memory");
            return true;
        }
        a->line = a->kept;
    }
    if (session_chain_run(s, row->stage, a->chain_arg, a->chain_params, session_cmd_decided))
        session_cmd_decided(s);
    return true;
}
