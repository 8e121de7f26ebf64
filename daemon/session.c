/*
 * session - server side of SMTP for one client (RFC 5321, 1869, 1870, 2920,
 * 3030, 3463, 6152, 6531).
 *
 * Shape (after OpenSMTPD's smtp_session.c): one table lists every command with
 * its flags and the function that carries it out.  The input loop takes one
 * line at a time, checks it against the table, and hands it on; commands that
 * need every earlier reply to be known (DATA, BDAT, EHLO, QUIT...) are
 * "barriers": the loop stops in front of them until the upstream has answered
 * everything before.
 *
 * Replies leave in the order commands came, whatever answers them: each
 * command appends a slot to the reply queue; a slot is filled at once (our own
 * replies) or when the upstream answers; the queue is written out up to the
 * first empty slot.  A command forwarded upstream also appends an "expect"
 * naming what kind of command it was, so the upstream's reply can update the
 * transaction (MAIL accepted, one more recipient accepted, message done).
 *
 * The message: after DATA, smtpgate answers 354 itself, decodes the data
 * (data_decoder: dot-unstuffing, end only at CRLF.CRLF, bare newline policy,
 * size and line limits while the data streams in) into a message store, and
 * only at the end sends it upstream.  The client's 250 is the upstream's 250.
 *
 * Transactions carry a generation number; a reply for a transaction the client
 * has already abandoned (RSET while MAIL was in flight) changes nothing.
 */
#include "daemon/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/auth_relay.h"
#include "chain/chain.h"
#include "daemon/client_name.h"
#include "codec/data_decoder.h"
#include "codec/esmtp.h"
#include "util/log.h"
#include "util/metrics.h"
#include "chain/msg_edit.h"
#include "codec/msg_headers.h"
#include "message/msg_store.h"
#include "message/msg_view.h"
#include "message/quarantine.h"
#include "daemon/runtime.h"
#include "codec/smtp_cmd.h"
#include "codec/smtp_reply.h"
#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "daemon/upstream_pool.h"
#include "daemon/worker.h"

/* Input the session holds before it stops reading from the socket, when the
 * loop is waiting (barrier, upstream busy, client not reading replies). */
#define INPUT_HIGH_WATER (128 * 1024)
/* Unanswered commands one client may have in flight. */
#define MAX_PENDING_REPLIES 200
/* Replies not yet read by the client before the session stops taking commands. */
#define OUTPUT_HIGH_WATER (64 * 1024)

/* What smtpgate itself implements of each extension.  What a client is shown
 * is this, intersected with what the upstreams offer. */
#define HONOURED_CAPS                                                                              \
    (ESMTP_CAP_SIZE | ESMTP_CAP_8BITMIME | ESMTP_CAP_BINARYMIME | ESMTP_CAP_SMTPUTF8 |             \
     ESMTP_CAP_DSN | ESMTP_CAP_CHUNKING)

enum sess_state { SESS_CMD, SESS_DATA, SESS_BDAT };

enum expect_kind {
    EXPECT_MAIL,
    EXPECT_RCPT,
    EXPECT_RELAY,       /* RSET, VRFY, EXPN: relay the reply, nothing else */
    EXPECT_MESSAGE,     /* the final reply to DATA/BDAT LAST */
    EXPECT_SILENT,      /* our own RSET after a refused message: no client reply */
    EXPECT_REPLAY_MAIL, /* the envelope a plugin changed, sent again: no client reply */
    EXPECT_REPLAY_RCPT,
    EXPECT_AUTH, /* AUTH and each response line of its exchange */
};

/* What the session waits for the filter chain to decide. */
enum chain_wait {
    WAIT_NONE,
    WAIT_CONNECT,
    WAIT_HELO,
    WAIT_MAIL,
    WAIT_RCPT,
    WAIT_DATA,
    WAIT_BDAT,
    WAIT_MESSAGE,
};

struct reply_slot {
    struct reply_slot *next;
    char *text; /* wire lines with CRLF */
    size_t len;
    bool ready;
    bool owned; /* text is malloc'd */
};

struct expect {
    struct expect *next;
    enum expect_kind kind;
    struct reply_slot *slot; /* NULL for EXPECT_SILENT */
    unsigned tx_gen;
    struct msg_rcpt rcpt; /* EXPECT_RCPT: the recipient, kept once accepted */
};

struct session {
    struct session *next, *prev;
    struct worker *worker;
    struct sg_config *cfg;
    struct bufferevent *bev;
    char id[24];
    struct sockaddr_storage peer;
    struct sockaddr_storage local;
    char addr[64];
    unsigned port;
    struct timespec started;
    struct event *grace_ev;

    char *helo;
    bool esmtp;
    unsigned caps;       /* advertised in the last EHLO */
    uint64_t size_limit; /* advertised SIZE */

    enum sess_state state;
    bool processing;
    bool waiting_barrier;
    bool awaiting_final;
    bool discard_line;
    bool closing;
    bool freed_upstream_in_cb;

    struct reply_slot *rq_head, *rq_tail;
    unsigned rq_len;
    struct expect *ex_head, *ex_tail;
    unsigned ex_len;

    struct upstream_conn *up;

    /* transaction */
    unsigned tx_gen;
    bool mail_sent;
    bool mail_ok;
    char *mail_from;
    enum esmtp_body body;
    unsigned rcpt_sent;
    unsigned rcpt_ok;
    bool bdat_used;
    bool data_used;
    struct timespec tx_started;
    const char *tx_fail; /* upstream lost during the transaction */

    /* message */
    struct data_decoder dec;
    struct msg_headers *hdrs;
    struct msg_store *store;
    uint64_t bdat_remaining;
    uint64_t bdat_total;
    bool bdat_last;
    const char *bdat_refusal; /* chunk is being discarded; reply at its end */

    /* the client's verified name */
    struct client_name_lookup *name_lookup;
    char *client_name;
    bool name_tempfail;
    bool before_greeting; /* nothing is read until the greeting is out */
    unsigned greet_waits; /* the name lookup, an implicit-TLS handshake */

    /* filter chain */
    struct chain_conn *chain;
    struct event *chain_ev;    /* made active (any thread) when a verdict is in */
    struct event *chain_timer; /* the waited-for plugin's timeout */
    enum chain_wait chain_for;
    struct chain_result chain_res;
    char *pending_line; /* the command waiting for the chain, to forward */
    size_t pending_len;
    char *pending_arg; /* its mailbox or HELO name */
    char *pending_params;
    bool pending_esmtp;
    bool refused; /* refused at connect: only QUIT is served */
    unsigned tx_count;
    struct msg_rcpt *rcpts; /* accepted recipients, for a changed envelope */
    size_t nrcpts;
    char *mail_params;
    bool replay; /* the envelope is being sent again */
    bool replay_mail_ok;
    unsigned replay_rcpt_ok;
    struct msg_store *edited_hdr; /* the rewritten header section */
    const char *tx_result;        /* set when the chain decided the outcome */

    /* counters for the connection log line */
    unsigned ncommands;
    unsigned ntransactions;
    unsigned naccepted;
    unsigned errors;

    /* edge: TLS and AUTH (listener.h, tls.h, auth_relay.h) */
    const struct sg_listener *listener; /* in cfg */
    struct tls_facts *tls;              /* set once a handshake has completed */
    bool tls_handshaking;
    char *login; /* after the upstream's 235 */
    bool authenticated;
    unsigned auth_mech;
    unsigned auth_step;
    bool auth_waiting;  /* an AUTH exchange reply is due upstream */
    bool auth_response; /* the next client line answers a 334 */
    unsigned auth_failures;
    char auth_guess[AUTH_LOGIN_MAX];
    struct event *auth_delay_ev;
    struct reply_slot *auth_delay_slot;
    char *auth_delay_text;
    size_t auth_delay_len;
};

static atomic_uint_fast64_t session_counter;

static void session_process(struct session *s);
static void session_free(struct session *s);
static void session_keep_rcpt(struct session *s, struct msg_rcpt *r);
static void session_chain_decided_helo(struct session *s);
static void session_chain_decided_mail(struct session *s);
static void session_chain_decided_rcpt(struct session *s);
static void session_chain_decided_data(struct session *s);
static void session_chain_decided_message(struct session *s);
static void session_set_read_timeout(struct session *s, unsigned seconds);
static bool session_auth_reply(struct session *s, struct reply_slot *slot,
                               const struct smtp_reply *r);
static size_t session_edge_ehlo(struct session *s, char *buf, size_t size);
static const char *session_edge_refusal(const struct session *s, enum smtp_verb verb);
static bool session_auth_feed(struct session *s);
static void session_under_write_cb(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        session_free(arg);
}

static void session_under_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    session_free(arg);
}

/*
 * Closing after STARTTLS: the last records may still sit in the TCP
 * bufferevent under the TLS filter, and freeing the filter would drop them
 * (the client would miss its 221 or 421).  The filter has nothing more to
 * say, so the socket's own callbacks take over until its output is out;
 * true while that is so.
 */
static bool session_tls_draining(struct session *s)
{
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    if (!under || evbuffer_get_length(bufferevent_get_output(under)) == 0)
        return false;
    struct timeval t = {.tv_sec = 10};
    bufferevent_setcb(under, NULL, session_under_write_cb, session_under_event_cb, s);
    bufferevent_set_timeouts(under, NULL, &t);
    bufferevent_enable(under, EV_WRITE);
    return true;
}

static void session_edge_summary(const struct session *s, char *buf, size_t size);
static void session_edge_free(struct session *s);
static struct bufferevent *session_edge_bev(struct session *s, evutil_socket_t fd);
static void session_tls_established(struct session *s);
static size_t session_line_limit(const struct session *s, struct evbuffer *in);
static bool session_auth_allowed(const struct session *s);
static bool session_tls_draining(struct session *s);
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);

/* ---- time and ids ---- */

static double session_elapsed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static void session_make_id(struct session *s)
{
    /* Time-based prefix so ids from different runs do not repeat; a counter
     * so ids within a run never do. */
    uint64_t n = atomic_fetch_add(&session_counter, 1);
    snprintf(s->id, sizeof(s->id), "%08" PRIX32 "%05" PRIX64, (uint32_t)time(NULL), n & 0xFFFFF);
}

/* ---- the reply queue ---- */

static struct reply_slot *session_slot_new(struct session *s)
{
    struct reply_slot *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (s->rq_tail)
        s->rq_tail->next = r;
    else
        s->rq_head = r;
    s->rq_tail = r;
    s->rq_len++;
    return r;
}

static void session_slot_fill(struct session *s, struct reply_slot *r, char *text, size_t len,
                              bool owned)
{
    r->text = text;
    r->len = len;
    r->owned = owned;
    r->ready = true;
    if (len >= 1 && (text[0] == '4' || text[0] == '5'))
        s->errors++;
}

/* Write out every reply whose turn has come. */
static void session_flush(struct session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    while (s->rq_head && s->rq_head->ready) {
        struct reply_slot *r = s->rq_head;
        evbuffer_add(out, r->text, r->len);
        s->rq_head = r->next;
        if (!s->rq_head)
            s->rq_tail = NULL;
        s->rq_len--;
        if (r->owned)
            free(r->text);
        free(r);
    }
}

/* Queue one of our own replies (a single line without CRLF). */
static void session_reply(struct session *s, const char *line)
{
    struct reply_slot *r = session_slot_new(s);
    size_t n = strlen(line);
    char *text = r ? malloc(n + 2) : NULL;
    if (!text) {
        free(r);
        s->closing = true;
        return;
    }
    memcpy(text, line, n);
    memcpy(text + n, "\r\n", 2);
    session_slot_fill(s, r, text, n + 2, true);
    session_flush(s);
}

static void session_replyf(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void session_replyf(struct session *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    session_reply(s, line);
}

/* Last words: reply, then close once the client has been sent everything. */
static void session_close_with(struct session *s, const char *line)
{
    if (s->closing)
        return;
    session_reply(s, line);
    s->closing = true;
    bufferevent_disable(s->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 && !s->rq_head)
        bufferevent_trigger(s->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- transaction ---- */

static void session_free_headers(void *h)
{
    msg_headers_free(h);
    free(h);
}

static void session_free_store(void *store)
{
    msg_store_free(store);
}

/* A plugin the chain gave up waiting for may still read the message: it
 * gets this one to keep, and the session starts a new store. */
static void session_release_content(struct session *s)
{
    if (!s->chain || !chain_busy(s->chain))
        return;
    if (s->store) {
        chain_adopt(s->chain, s->store, session_free_store);
        s->store = NULL;
    }
    struct msg_headers *fresh = malloc(sizeof(*fresh));
    if (fresh) {
        msg_headers_init(fresh, s->hdrs->max_bytes, s->hdrs->max_fields);
        chain_adopt(s->chain, s->hdrs, session_free_headers);
        s->hdrs = fresh;
    }
}

static void session_tx_reset(struct session *s)
{
    if (s->chain)
        chain_tx_end(s->chain);
    session_release_content(s);
    for (size_t i = 0; i < s->nrcpts; i++) {
        free(s->rcpts[i].mailbox);
        free(s->rcpts[i].params);
    }
    free(s->rcpts);
    s->rcpts = NULL;
    s->nrcpts = 0;
    free(s->mail_params);
    s->mail_params = NULL;
    s->replay = false;
    s->replay_mail_ok = false;
    s->replay_rcpt_ok = 0;
    s->tx_result = NULL;
    if (s->edited_hdr) {
        msg_store_free(s->edited_hdr);
        s->edited_hdr = NULL;
    }
    s->tx_gen++;
    s->mail_sent = false;
    s->mail_ok = false;
    free(s->mail_from);
    s->mail_from = NULL;
    s->body = ESMTP_BODY_UNSPEC;
    s->rcpt_sent = 0;
    s->rcpt_ok = 0;
    s->bdat_used = false;
    s->data_used = false;
    s->bdat_total = 0;
    s->tx_fail = NULL;
    if (s->store)
        msg_store_reset(s->store);
    if (s->hdrs)
        msg_headers_reset(s->hdrs);
}

static struct expect *session_expect(struct session *s, enum expect_kind kind,
                                     struct reply_slot *slot)
{
    struct expect *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->kind = kind;
    e->slot = slot;
    e->tx_gen = s->tx_gen;
    if (s->ex_tail)
        s->ex_tail->next = e;
    else
        s->ex_head = e;
    s->ex_tail = e;
    s->ex_len++;
    return e;
}

static void session_expect_free(struct expect *e)
{
    free(e->rcpt.mailbox);
    free(e->rcpt.params);
    free(e);
}

static struct expect *session_expect_pop(struct session *s)
{
    struct expect *e = s->ex_head;
    if (e) {
        s->ex_head = e->next;
        if (!s->ex_head)
            s->ex_tail = NULL;
        s->ex_len--;
    }
    return e;
}

/* "queued as ID" in the upstream's final reply: the key into the MTA's log. */
static void session_queue_id(const char *text, char *out, size_t out_size)
{
    out[0] = '\0';
    const char *p = strstr(text, "queued as ");
    if (!p)
        return;
    p += 10;
    size_t n = strcspn(p, " \t\r\n;,)");
    if (n >= out_size)
        n = out_size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Counters per transaction result and for connections, found once: the
 * registry's lock stays off the per-transaction path. */
static const char *const session_results[] = {"accepted", "deferred",  "rejected",   "refused",
                                              "aborted",  "discarded", "quarantined"};
#define SESSION_NRESULTS (sizeof(session_results) / sizeof(session_results[0]))
static struct metrics_counter *session_result_counters[SESSION_NRESULTS];
static struct metrics_counter *session_conn_counter;
static pthread_once_t session_counters_once = PTHREAD_ONCE_INIT;

static void session_counters_init(void)
{
    char name[128];
    for (size_t i = 0; i < SESSION_NRESULTS; i++) {
        snprintf(name, sizeof(name), "smtpgate_transactions_%s_total", session_results[i]);
        session_result_counters[i] = metrics_counter(name);
    }
    session_conn_counter = metrics_counter("smtpgate_connections_total");
}

static void session_count_result(const char *result)
{
    for (size_t i = 0; i < SESSION_NRESULTS; i++)
        if (strcmp(result, session_results[i]) == 0)
            metrics_add(session_result_counters[i], 1);
}

static void session_log_tx(struct session *s, const char *result, int code, const char *text)
{
    session_count_result(result);
    char qid[64];
    session_queue_id(text ? text : "", qid, sizeof(qid));
    char first[256];
    snprintf(first, sizeof(first), "%s", text ? text : "");
    first[strcspn(first, "\n")] = '\0';
    char filters[2048] = "";
    if (s->chain) {
        filters[0] = ' ';
        chain_tx_summary(s->chain, filters + 1, sizeof(filters) - 1);
    }
    log_info("%s: tx from=<%s> nrcpt=%u/%u size=%" PRIu64 " body=%s upstream=%s result=%s "
             "reply=\"%d %s\" queued_as=%s%s duration=%.3fs",
             s->id, s->mail_from ? s->mail_from : "", s->rcpt_ok, s->rcpt_sent,
             s->store ? msg_store_size(s->store) : 0,
             s->body == ESMTP_BODY_8BITMIME     ? "8BITMIME"
             : s->body == ESMTP_BODY_BINARYMIME ? "BINARYMIME"
                                                : "7BIT",
             s->up ? upstream_label(s->up) : "-", result, code, first, qid[0] ? qid : "-", filters,
             session_elapsed(&s->tx_started));
}

/* ---- upstream events ---- */

static char *session_format_reply(const struct smtp_reply *r, size_t *len)
{
    char *text = NULL;
    *len = smtp_reply_format(r, &text);
    if (*len == (size_t)-1)
        return NULL;
    return text;
}

static void session_upstream_reply(void *ctx, const struct smtp_reply *r)
{
    struct session *s = ctx;
    struct expect *e = session_expect_pop(s);
    if (!e)
        return;
    bool current = e->tx_gen == s->tx_gen;
    bool ok = r->code / 100 == 2;

    switch (e->kind) {
    case EXPECT_MAIL:
        if (current) {
            s->mail_ok = ok;
            if (!ok)
                session_tx_reset(s);
        }
        break;
    case EXPECT_RCPT:
        if (current && ok) {
            s->rcpt_ok++;
            session_keep_rcpt(s, &e->rcpt);
        }
        break;
    case EXPECT_REPLAY_MAIL:
        if (current)
            s->replay_mail_ok = ok;
        break;
    case EXPECT_REPLAY_RCPT:
        if (current && ok)
            s->replay_rcpt_ok++;
        break;
    case EXPECT_MESSAGE:
        s->awaiting_final = false;
        session_set_read_timeout(s, s->cfg->command_timeout);
        s->ntransactions++;
        if (current && s->replay && (!s->replay_mail_ok || s->replay_rcpt_ok == 0)) {
            /* The upstream took none of the envelope a plugin made: it has no
             * message, and the client must keep its copy. */
            static char refused_text[] = "4.3.0 Error: the upstream refused the changed envelope";
            static const struct smtp_reply refused = {.code = 451,
                                                      .nlines = 1,
                                                      .text = refused_text,
                                                      .text_len = sizeof(refused_text) - 1};
            session_log_tx(s, "deferred", refused.code, refused.text);
            session_tx_reset(s);
            r = &refused;
            ok = false;
            break;
        }
        if (ok)
            s->naccepted++;
        session_log_tx(s,
                       ok                   ? "accepted"
                       : r->code / 100 == 4 ? "deferred"
                                            : "rejected",
                       r->code, r->text);
        session_tx_reset(s);
        break;
    case EXPECT_RELAY:
    case EXPECT_SILENT:
        break;
    case EXPECT_AUTH:
        if (!session_auth_reply(s, e->slot, r)) {
            free(e);
            session_flush(s);
            return;
        }
        break;
    }

    if (e->slot) {
        size_t len;
        char *text = session_format_reply(r, &len);
        if (text)
            session_slot_fill(s, e->slot, text, len, true);
        else
            session_slot_fill(s, e->slot, (char *)"451 4.3.0 Error: out of memory\r\n", 32, false);
    }
    session_expect_free(e);
    session_flush(s);
    session_process(s);
}

static void session_upstream_failure(void *ctx, const char *reply)
{
    struct session *s = ctx;
    size_t n = strlen(reply);
    s->auth_waiting = s->auth_response = false;

    while (s->ex_head) {
        struct expect *e = session_expect_pop(s);
        if (e->kind == EXPECT_MESSAGE) {
            s->awaiting_final = false;
            session_set_read_timeout(s, s->cfg->command_timeout);
            s->ntransactions++;
            session_log_tx(s, "deferred", atoi(reply), reply + 4);
        }
        if (e->slot) {
            char *text = malloc(n + 2);
            if (text) {
                memcpy(text, reply, n);
                memcpy(text + n, "\r\n", 2);
                session_slot_fill(s, e->slot, text, n + 2, true);
            } else {
                session_slot_fill(s, e->slot, (char *)"451 4.3.0 Error: out of memory\r\n", 32,
                                  false);
            }
        }
        session_expect_free(e);
    }
    /* What the client does next in this transaction cannot reach the upstream:
     * the transaction is over, and a new MAIL opens a new connection. */
    if (s->mail_sent && s->state != SESS_CMD)
        s->tx_fail = "451 4.4.2 Upstream connection lost, try again later";
    else
        session_tx_reset(s);
    upstream_close(s->up);
    s->up = NULL;
    session_flush(s);
    session_process(s);
}

static const struct upstream_events session_upstream_events = {
    .on_reply = session_upstream_reply,
    .on_failure = session_upstream_failure,
};

static bool session_ensure_upstream(struct session *s)
{
    if (s->up)
        return true;
    struct client_facts f = {
        .addr = s->addr,
        .family = s->peer.ss_family,
        .port = s->port,
        .name = s->client_name,
        .name_tempfail = s->name_tempfail,
        .helo = s->helo,
        .proto = s->helo ? (s->esmtp ? "ESMTP" : "SMTP") : NULL,
        .login = s->login,
    };
    s->up = upstream_new(s->worker->base, s->cfg, &f, (struct sockaddr *)&s->peer,
                         (struct sockaddr *)&s->local, &session_upstream_events, s);
    return s->up != NULL;
}

/* Forward the client's command line; its reply comes from the upstream. */
static struct expect *session_forward(struct session *s, enum expect_kind kind, const char *line,
                                      size_t len)
{
    if (!session_ensure_upstream(s)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return NULL;
    }
    struct reply_slot *slot = session_slot_new(s);
    struct expect *e = slot ? session_expect(s, kind, slot) : NULL;
    if (!e) {
        s->closing = true;
        return NULL;
    }
    upstream_command(s->up, line, len);
    return e;
}

/* A command of our own to the upstream, whose reply the client never sees. */
static void session_send_silent(struct session *s, enum expect_kind kind, const char *line,
                                size_t len)
{
    if (session_expect(s, kind, NULL))
        upstream_command(s->up, line, len);
    else
        s->closing = true;
}

static void session_keep_rcpt(struct session *s, struct msg_rcpt *r)
{
    struct msg_rcpt *n = realloc(s->rcpts, (s->nrcpts + 1) * sizeof(*n));
    if (!n)
        return;
    s->rcpts = n;
    s->rcpts[s->nrcpts++] = *r;
    if (s->chain)
        chain_rcpt_accepted(s->chain, r->mailbox);
    r->mailbox = r->params = NULL;
}

/* Abort the upstream's side of a transaction smtpgate refused itself. */
static void session_abort_upstream_tx(struct session *s)
{
    if (s->up && s->mail_sent) {
        if (session_expect(s, EXPECT_SILENT, NULL))
            upstream_command(s->up, "RSET", 4);
    }
}

/* ---- waiting for the filter chain ---- */

static void session_chain_decided(struct session *s);

/* Any thread: the chain has a verdict (or the wait timed out). */
static void session_chain_notify(void *arg)
{
    struct session *s = arg;
    event_active(s->chain_ev, EV_READ, 0);
}

static void session_chain_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    if (s->chain_for == WAIT_NONE)
        return;
    if (chain_resume(s->chain, &s->chain_res) == CHAIN_WAIT) {
        /* another plugin further down the chain is out now */
        struct timeval t = {.tv_sec = chain_wait_ms(s->chain) / 1000,
                            .tv_usec = (chain_wait_ms(s->chain) % 1000) * 1000};
        evtimer_add(s->chain_timer, &t);
        return;
    }
    evtimer_del(s->chain_timer);
    session_chain_decided(s);
}

static void session_chain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    if (s->chain_for != WAIT_NONE)
        chain_expire(s->chain);
}

/* The chain's answer for stage: true when it is known now (in s->chain_res);
 * false when the session waits, and session_chain_decided() carries on. */
static bool session_chain_run(struct session *s, enum chain_wait what, enum sg_stage stage,
                              const char *arg, const char *params)
{
    enum chain_status st;
    if (what == WAIT_MESSAGE) {
        struct chain_content content = {.store = s->store, .headers = s->hdrs};
        st = chain_run_message(s->chain, &content, &s->chain_res);
    } else {
        st = chain_run(s->chain, stage, arg, params, &s->chain_res);
    }
    if (st == CHAIN_DONE)
        return true;
    s->chain_for = what;
    unsigned ms = chain_wait_ms(s->chain);
    struct timeval t = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(s->chain_timer, &t);
    return false;
}

static bool session_keep_pending(struct session *s, const char *line, size_t len, const char *arg,
                                 size_t arg_len, const char *params)
{
    free(s->pending_line);
    free(s->pending_arg);
    free(s->pending_params);
    s->pending_line = line ? strndup(line, len) : NULL;
    s->pending_len = len;
    s->pending_arg = arg ? strndup(arg, arg_len) : NULL;
    s->pending_params = params ? strdup(params) : NULL;
    return (!line || s->pending_line) && (!arg || s->pending_arg) && (!params || s->pending_params);
}

static void session_drop_pending(struct session *s)
{
    free(s->pending_line);
    free(s->pending_arg);
    free(s->pending_params);
    s->pending_line = s->pending_arg = s->pending_params = NULL;
}

/* A refusal from the chain, as the reply to the command. */
static void session_reply_refusal(struct session *s)
{
    session_reply(s, s->chain_res.reply);
}

/* ---- commands ---- */

struct session_cmd {
    enum smtp_verb verb;
    bool barrier; /* needs every earlier reply known before it runs */
    void (*proceed)(struct session *s, const struct smtp_cmd *cmd, const char *line, size_t len);
};

static void session_build_ehlo(struct session *s)
{
    unsigned up_caps;
    uint64_t up_size;
    upstream_pool_caps(s->cfg, &up_caps, &up_size);
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
    s->caps = caps;
    s->size_limit = size;

    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "250-%s\r\n250-PIPELINING\r\n", s->cfg->hostname);
    if (caps & ESMTP_CAP_SIZE)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-SIZE %" PRIu64 "\r\n", size);
    if (caps & ESMTP_CAP_8BITMIME)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-8BITMIME\r\n");
    if (caps & ESMTP_CAP_BINARYMIME)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-BINARYMIME\r\n");
    if (caps & ESMTP_CAP_CHUNKING)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-CHUNKING\r\n");
    if (caps & ESMTP_CAP_DSN)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-DSN\r\n");
    if (caps & ESMTP_CAP_SMTPUTF8)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-SMTPUTF8\r\n");
    n += (int)session_edge_ehlo(s, buf + n, sizeof(buf) - (size_t)n);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250 ENHANCEDSTATUSCODES\r\n");

    struct reply_slot *r = session_slot_new(s);
    char *text = r ? malloc((size_t)n) : NULL;
    if (!text) {
        free(r);
        s->closing = true;
        return;
    }
    memcpy(text, buf, (size_t)n);
    session_slot_fill(s, r, text, (size_t)n, true);
    session_flush(s);
}

/* HELO/EHLO after the chain let it pass (or had nothing to say). */
static void session_helo_finish(struct session *s, const char *name, bool esmtp)
{
    free(s->helo);
    s->helo = strdup(name);
    s->esmtp = esmtp;
    if (s->grace_ev) {
        event_free(s->grace_ev);
        s->grace_ev = NULL;
    }
    if (s->esmtp) {
        session_build_ehlo(s);
    } else {
        s->caps = 0;
        session_replyf(s, "250 %s", s->cfg->hostname);
    }
}

static void session_do_helo(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    (void)line;
    (void)len;
    const char *name;
    size_t name_len;
    enum smtp_cmd_status st = smtp_helo_parse(cmd->arg, cmd->arg_len, &name, &name_len);
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return;
    }
    if (s->mail_sent) {
        session_abort_upstream_tx(s);
        session_tx_reset(s);
    }
    bool esmtp = cmd->verb == SMTP_VERB_EHLO;
    if (!session_keep_pending(s, NULL, 0, name, name_len, NULL)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return;
    }
    s->pending_esmtp = esmtp;
    if (s->chain && chain_wants(s->cfg->chain, SG_STAGE_HELO)) {
        chain_set_helo(s->chain, s->pending_arg, esmtp);
        if (!session_chain_run(s, WAIT_HELO, SG_STAGE_HELO, NULL, NULL))
            return;
    } else {
        s->chain_res.action = CHAIN_PASS;
        if (s->chain)
            chain_set_helo(s->chain, s->pending_arg, esmtp);
    }
    session_chain_decided_helo(s);
}

static bool session_utf8_allowed(const struct session *s, bool smtputf8)
{
    return smtputf8 && (s->caps & ESMTP_CAP_SMTPUTF8);
}

/* MAIL passed every check of ours and the chain's: it goes upstream. */
static void session_mail_finish(struct session *s)
{
    s->mail_sent = true;
    session_forward(s, EXPECT_MAIL, s->pending_line, s->pending_len);
}

static void session_do_mail(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    if (!s->helo) {
        session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->mail_sent) {
        session_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    struct smtp_path path;
    enum smtp_cmd_status st = smtp_path_parse(cmd->arg, cmd->arg_len, true, &path);
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return;
    }
    struct esmtp_mail mp;
    enum esmtp_status es =
        esmtp_mail_params(path.params ? path.params : "", path.params_len, s->caps, &mp);
    if (es != ESMTP_OK) {
        session_reply(s, esmtp_status_reply(es));
        return;
    }
    if (path.utf8 && !session_utf8_allowed(s, mp.smtputf8)) {
        session_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send UTF8 address");
        return;
    }
    if (mp.has_size &&
        (mp.size > s->cfg->max_message_size || (s->size_limit && mp.size > s->size_limit))) {
        session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    session_tx_reset(s);
    s->mail_from = strndup(path.mailbox, path.mailbox_len);
    s->mail_params = path.params ? strndup(path.params, path.params_len) : NULL;
    s->body = mp.body;
    clock_gettime(CLOCK_MONOTONIC, &s->tx_started);
    if (!s->mail_from || !session_keep_pending(s, line, len, NULL, 0, NULL)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return;
    }
    if (s->chain) {
        char tx_id[48];
        snprintf(tx_id, sizeof(tx_id), "%s.%u", s->id, ++s->tx_count);
        chain_tx_begin(s->chain, tx_id);
        chain_tx_set_mail(s->chain, s->mail_from, s->mail_params);
        if (chain_wants(s->cfg->chain, SG_STAGE_MAIL) &&
            !session_chain_run(s, WAIT_MAIL, SG_STAGE_MAIL, s->mail_from, s->mail_params))
            return;
        if (!chain_wants(s->cfg->chain, SG_STAGE_MAIL))
            s->chain_res.action = CHAIN_PASS;
        session_chain_decided_mail(s);
        return;
    }
    session_mail_finish(s);
}

static void session_do_rcpt(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    if (!s->mail_sent) {
        session_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    struct smtp_path path;
    enum smtp_cmd_status st = smtp_path_parse(cmd->arg, cmd->arg_len, false, &path);
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return;
    }
    struct esmtp_rcpt rp;
    enum esmtp_status es =
        esmtp_rcpt_params(path.params ? path.params : "", path.params_len, s->caps, &rp);
    if (es != ESMTP_OK) {
        session_reply(s, esmtp_status_reply(es));
        return;
    }
    if (path.utf8 && !(s->caps & ESMTP_CAP_SMTPUTF8)) {
        session_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send UTF8 address");
        return;
    }
    if (s->rcpt_sent >= s->cfg->max_recipients) {
        session_reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    s->rcpt_sent++;
    char *params = path.params ? strndup(path.params, path.params_len) : NULL;
    bool kept = session_keep_pending(s, line, len, path.mailbox, path.mailbox_len, params);
    free(params);
    if (!kept) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return;
    }
    if (s->chain && chain_wants(s->cfg->chain, SG_STAGE_RCPT)) {
        if (!session_chain_run(s, WAIT_RCPT, SG_STAGE_RCPT, s->pending_arg, s->pending_params))
            return;
    } else {
        s->chain_res.action = CHAIN_PASS;
    }
    session_chain_decided_rcpt(s);
}

static bool session_store_ready(struct session *s)
{
    if (!s->store)
        s->store = msg_store_new(s->cfg->spill_threshold, s->cfg->spool_dir);
    return s->store != NULL;
}

static int session_sink(void *ctx, const char *bytes, size_t len)
{
    struct session *s = ctx;
    if (!s->hdrs->complete && msg_headers_feed(s->hdrs, bytes, len) < 0)
        return -1;
    return msg_store_append(s->store, bytes, len);
}

/* The message may start only when MAIL and at least one RCPT were accepted. */
static const char *session_message_refusal(const struct session *s)
{
    if (s->tx_fail)
        return s->tx_fail;
    if (!s->mail_ok)
        return "503 5.5.1 Error: need MAIL command";
    if (s->rcpt_ok == 0)
        return s->rcpt_sent ? "554 5.5.1 Error: no valid recipients"
                            : "503 5.5.1 Error: need RCPT command";
    if (s->bdat_used)
        return "503 5.5.1 Error: DATA after BDAT";
    if (!s->up)
        return "451 4.4.2 Upstream connection lost, try again later";
    return NULL;
}

/* 0: no read timeout, while the client waits for the upstream rather than the
 * other way round. */
static void session_set_read_timeout(struct session *s, unsigned seconds)
{
    struct timeval t = {.tv_sec = seconds};
    struct timeval w = {.tv_sec = s->cfg->command_timeout};
    bufferevent_set_timeouts(s->bev, seconds ? &t : NULL, &w);
}

static void session_data_start(struct session *s)
{
    msg_store_reset(s->store);
    msg_headers_reset(s->hdrs);
    data_decoder_init(&s->dec, s->cfg->newline_policy, s->cfg->max_data_line_length,
                      s->cfg->max_message_size, session_sink, s);
}

/* DATA after the chain's data stage let it pass. */
static void session_data_finish(struct session *s)
{
    session_data_start(s);
    s->data_used = true;
    s->state = SESS_DATA;
    session_set_read_timeout(s, s->cfg->data_timeout);
    session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* The transaction refused by the chain before its message: the upstream
 * forgets it too. */
static void session_refuse_tx(struct session *s)
{
    s->ntransactions++;
    session_log_tx(s, s->chain_res.reply[0] == '4' ? "deferred" : "refused",
                   atoi(s->chain_res.reply), s->chain_res.reply + 4);
    session_abort_upstream_tx(s);
    session_tx_reset(s);
}

static void session_do_data(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    (void)cmd;
    (void)line;
    (void)len;
    const char *refusal = session_message_refusal(s);
    if (refusal) {
        session_reply(s, refusal);
        return;
    }
    if (!session_store_ready(s)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return;
    }
    if (s->chain && chain_wants(s->cfg->chain, SG_STAGE_DATA)) {
        if (!session_chain_run(s, WAIT_DATA, SG_STAGE_DATA, NULL, NULL))
            return;
    } else {
        s->chain_res.action = CHAIN_PASS;
    }
    session_chain_decided_data(s);
}

/* The message after the chain's end-of-message verdict and edits. */
static void session_message_send(struct session *s);

/* End of the message from the client: refuse it, or send it upstream. */
static void session_message_complete(struct session *s, enum data_error err)
{
    s->state = SESS_CMD;
    session_set_read_timeout(s, s->cfg->command_timeout);
    const char *refusal = NULL;
    if (err != DATA_ERR_NONE)
        refusal = data_error_reply(err);
    else if (msg_headers_finish(s->hdrs) < 0)
        refusal = "451 4.3.0 Error: out of memory";
    else if (s->tx_fail || !s->up)
        refusal = s->tx_fail ? s->tx_fail : "451 4.4.2 Upstream connection lost, try again later";
    if (refusal) {
        s->ntransactions++;
        session_log_tx(s, refusal[0] == '4' ? "deferred" : "refused", atoi(refusal), refusal + 4);
        session_reply(s, refusal);
        session_abort_upstream_tx(s);
        session_tx_reset(s);
        return;
    }
    if (s->chain) {
        /* Reading stops until the verdict: the client waits for our reply. */
        s->awaiting_final = true;
        session_set_read_timeout(s, 0);
        if (!session_chain_run(s, WAIT_MESSAGE, SG_STAGE_EOM, NULL, NULL))
            return;
        s->awaiting_final = false;
        session_set_read_timeout(s, s->cfg->command_timeout);
        session_chain_decided_message(s);
        return;
    }
    session_message_send(s);
}

/* "MAIL FROM:<mailbox> params" or "RCPT TO:<...>", in an allocation of its
 * exact size; false when out of memory. */
static bool session_path_line(char **out, const char *verb, const char *mailbox,
                              const char *params)
{
    size_t n = strlen(verb) + strlen(mailbox) + 2 + (params ? 1 + strlen(params) : 0);
    char *line = malloc(n + 1);
    if (!line)
        return false;
    int w = snprintf(line, n + 1, "%s<%s>%s%s", verb, mailbox, params ? " " : "",
                     params ? params : "");
    if (w < 0 || (size_t)w != n) {
        free(line);
        return false;
    }
    *out = line;
    return true;
}

/* Give the upstream the message: as received, or as the plugins edited it. */
static void session_message_send(struct session *s)
{
    struct msg_view view;
    msg_view_of_store(&view, s->store);
    if (s->chain) {
        const struct chain_tx_info *t = chain_tx_info(s->chain);
        if (msg_edit_has_header_edits(t->edits, t->nedits) || t->new_body) {
            s->edited_hdr = msg_store_new(s->cfg->spill_threshold, s->cfg->spool_dir);
            if (!s->edited_hdr || msg_edit_apply(s->hdrs, s->store, t->edits, t->nedits,
                                                 t->new_body, s->edited_hdr, &view) < 0) {
                snprintf(s->chain_res.reply, sizeof(s->chain_res.reply),
                         "451 4.3.0 Error: cannot apply the filters' changes");
                session_reply(s, s->chain_res.reply);
                session_refuse_tx(s);
                return;
            }
        }
        if (msg_edit_has_envelope_edits(t->edits, t->nedits)) {
            struct msg_envelope env;
            if (msg_edit_envelope(s->mail_from, s->mail_params, s->rcpts, s->nrcpts, t->edits,
                                  t->nedits, &env) < 0) {
                snprintf(s->chain_res.reply, sizeof(s->chain_res.reply),
                         "451 4.3.0 Error: out of memory");
                session_reply(s, s->chain_res.reply);
                session_refuse_tx(s);
                return;
            }
            /* The upstream has the envelope the client gave: it gets the
             * new one in a new transaction, before the message.  Every line
             * is made first, each sized to what it holds: a line that cannot
             * be made fails the transaction, never leaves a recipient out. */
            size_t nlines = env.nrcpt + 1;
            char **lines = calloc(nlines, sizeof(*lines));
            bool made = lines && session_path_line(&lines[0], "MAIL FROM:", env.mail_from,
                                                   env.mail_params);
            for (size_t i = 0; made && i < env.nrcpt; i++)
                made = session_path_line(&lines[i + 1], "RCPT TO:", env.rcpt[i].mailbox,
                                         env.rcpt[i].params);
            if (made) {
                s->replay = true;
                session_send_silent(s, EXPECT_SILENT, "RSET", 4);
                session_send_silent(s, EXPECT_REPLAY_MAIL, lines[0], strlen(lines[0]));
                for (size_t i = 1; i < nlines; i++)
                    session_send_silent(s, EXPECT_REPLAY_RCPT, lines[i], strlen(lines[i]));
            }
            for (size_t i = 0; lines && i < nlines; i++)
                free(lines[i]);
            free(lines);
            if (!made) {
                msg_envelope_free(&env);
                snprintf(s->chain_res.reply, sizeof(s->chain_res.reply),
                         "451 4.3.0 Error: out of memory");
                session_reply(s, s->chain_res.reply);
                session_refuse_tx(s);
                return;
            }
            msg_envelope_free(&env);
        }
    }
    struct reply_slot *slot = session_slot_new(s);
    if (!slot || !session_expect(s, EXPECT_MESSAGE, slot)) {
        s->closing = true;
        return;
    }
    s->awaiting_final = true;
    session_set_read_timeout(s, 0);
    bool bdat = s->body == ESMTP_BODY_BINARYMIME && (upstream_caps(s->up) & ESMTP_CAP_CHUNKING);
    upstream_message(s->up, &view, bdat);
}

/* Discard or quarantine: the client is told 250, the upstream forgets the
 * transaction.  A quarantine that cannot be written is a 451: the client
 * keeps its copy. */
static void session_message_hold(struct session *s, bool quarantine)
{
    const char *result = "discarded";
    char path[4096] = "";
    if (quarantine) {
        const struct chain_tx_info *t = chain_tx_info(s->chain);
        const char **rcpt = calloc(s->nrcpts ? s->nrcpts : 1, sizeof(*rcpt));
        for (size_t i = 0; rcpt && i < s->nrcpts; i++)
            rcpt[i] = s->rcpts[i].mailbox;
        char id[48];
        snprintf(id, sizeof(id), "%s.%u", s->id, s->tx_count);
        struct quarantine_facts f = {.id = id,
                                     .client_addr = s->addr,
                                     .helo = s->helo,
                                     .mail_from = s->mail_from,
                                     .rcpt = rcpt,
                                     .nrcpt = rcpt ? s->nrcpts : 0,
                                     .reason = t->quarantine_reason,
                                     .decided_by = s->chain_res.decided_by};
        struct msg_view view;
        msg_view_of_store(&view, s->store);
        int rc =
            rcpt ? quarantine_write(s->cfg->quarantine_dir, &f, &view, path, sizeof(path)) : -1;
        free(rcpt);
        if (rc < 0) {
            log_err("%s: cannot write quarantine file %s: %s", s->id, path, strerror(errno));
            snprintf(s->chain_res.reply, sizeof(s->chain_res.reply),
                     "451 4.3.0 Error: cannot keep the message, try again later");
            session_reply(s, s->chain_res.reply);
            session_refuse_tx(s);
            return;
        }
        result = "quarantined";
        log_info("%s: quarantined in %s: %s", s->id, path,
                 t->quarantine_reason ? t->quarantine_reason : "-");
    }
    s->ntransactions++;
    s->naccepted++;
    session_log_tx(s, result, 250, "2.0.0 Ok");
    session_reply(s, "250 2.0.0 Ok");
    session_abort_upstream_tx(s);
    session_tx_reset(s);
}

static void session_do_bdat(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    (void)line;
    (void)len;
    uint64_t size;
    bool last;
    enum smtp_cmd_status st = smtp_bdat_parse(cmd->arg, cmd->arg_len, &size, &last);
    if (st != SMTP_CMD_OK) {
        /* Without a valid size the chunk cannot be skipped: the stream is lost. */
        session_close_with(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]; closing connection");
        return;
    }
    s->bdat_remaining = size;
    s->bdat_last = last;
    s->bdat_refusal = NULL;
    session_set_read_timeout(s, s->cfg->data_timeout);

    if (!(s->caps & ESMTP_CAP_CHUNKING)) {
        s->bdat_refusal = "503 5.5.1 Error: BDAT not announced";
        s->state = SESS_BDAT;
        return;
    }
    if (s->data_used) {
        s->bdat_refusal = "503 5.5.1 Error: BDAT after DATA";
        s->state = SESS_BDAT;
        return;
    }
    const char *refusal = NULL;
    bool first = !s->bdat_used;
    if (first) {
        refusal = session_message_refusal(s);
        if (!refusal && !session_store_ready(s))
            refusal = "451 4.3.0 Error: out of memory";
        if (!refusal) {
            session_data_start(s);
            s->bdat_used = true;
            s->bdat_total = 0;
        }
    } else if (s->tx_fail) {
        refusal = s->tx_fail;
    }
    if (!refusal && s->bdat_total + size > s->cfg->max_message_size)
        refusal = "552 5.3.4 Message size exceeds fixed limit";
    s->bdat_refusal = refusal;
    s->bdat_total += size;
    if (first && !refusal && s->chain && chain_wants(s->cfg->chain, SG_STAGE_DATA)) {
        /* The chunk waits in the input buffer until the chain has spoken. */
        if (!session_chain_run(s, WAIT_BDAT, SG_STAGE_DATA, NULL, NULL))
            return;
        if (s->chain_res.action == CHAIN_REFUSE)
            s->bdat_refusal = s->chain_res.reply;
    }
    s->state = SESS_BDAT;
}

/* The chunk has been read (or skipped) completely. */
static void session_bdat_chunk_done(struct session *s)
{
    s->state = SESS_CMD;
    session_set_read_timeout(s, s->cfg->command_timeout);
    if (s->bdat_refusal) {
        const char *r = s->bdat_refusal;
        s->bdat_refusal = NULL;
        if (s->bdat_used) {
            s->ntransactions++;
            session_log_tx(s, r[0] == '4' ? "deferred" : "refused", atoi(r), r + 4);
            session_reply(s, r);
            session_abort_upstream_tx(s);
            session_tx_reset(s);
            return;
        }
        session_reply(s, r);
        return;
    }
    if (!s->bdat_last) {
        /* A defect in this chunk is answered at LAST, as for DATA at its end,
         * so the client learns that the whole message was refused. */
        session_replyf(s, "250 2.0.0 Ok: %" PRIu64 " octets", s->bdat_total);
        return;
    }
    if (s->body != ESMTP_BODY_BINARYMIME)
        bdat_check_finish(&s->dec);
    session_message_complete(s, s->dec.error);
}

/* ---- the chain's verdicts, stage by stage ---- */

static void session_chain_decided_helo(struct session *s)
{
    if (s->chain_res.action == CHAIN_REFUSE)
        session_reply_refusal(s);
    else
        session_helo_finish(s, s->pending_arg, s->pending_esmtp);
    session_drop_pending(s);
}

static void session_chain_decided_mail(struct session *s)
{
    if (s->chain_res.action == CHAIN_REFUSE) {
        session_reply_refusal(s);
        s->ntransactions++;
        session_log_tx(s, s->chain_res.reply[0] == '4' ? "deferred" : "refused",
                       atoi(s->chain_res.reply), s->chain_res.reply + 4);
        session_tx_reset(s);
    } else {
        session_mail_finish(s);
    }
    session_drop_pending(s);
}

static void session_chain_decided_rcpt(struct session *s)
{
    if (s->chain_res.action == CHAIN_REFUSE) {
        session_reply_refusal(s);
    } else {
        struct expect *e = session_forward(s, EXPECT_RCPT, s->pending_line, s->pending_len);
        if (e) {
            e->rcpt.mailbox = s->pending_arg;
            e->rcpt.params = s->pending_params;
            s->pending_arg = s->pending_params = NULL;
        }
    }
    session_drop_pending(s);
}

static void session_chain_decided_data(struct session *s)
{
    if (s->chain_res.action == CHAIN_REFUSE) {
        session_reply_refusal(s);
        session_refuse_tx(s);
        return;
    }
    session_data_finish(s);
}

static void session_chain_decided_message(struct session *s)
{
    switch (s->chain_res.action) {
    case CHAIN_REFUSE:
        session_reply_refusal(s);
        session_refuse_tx(s);
        break;
    case CHAIN_DISCARD:
        session_message_hold(s, false);
        break;
    case CHAIN_QUARANTINE:
        session_message_hold(s, true);
        break;
    case CHAIN_PASS:
        session_message_send(s);
        break;
    }
}

static void session_connect_decided(struct session *s);
static bool session_chain_start(struct session *s);
static void session_begin(struct session *s);
static void session_greet_ready(struct session *s);
static void session_name_done(void *arg, enum client_name_status st, const char *name);

static void session_chain_decided(struct session *s)
{
    enum chain_wait what = s->chain_for;
    s->chain_for = WAIT_NONE;
    switch (what) {
    case WAIT_CONNECT:
        session_connect_decided(s);
        break;
    case WAIT_HELO:
        session_chain_decided_helo(s);
        break;
    case WAIT_MAIL:
        session_chain_decided_mail(s);
        break;
    case WAIT_RCPT:
        session_chain_decided_rcpt(s);
        break;
    case WAIT_DATA:
        session_chain_decided_data(s);
        break;
    case WAIT_BDAT:
        if (s->chain_res.action == CHAIN_REFUSE)
            s->bdat_refusal = s->chain_res.reply;
        s->state = SESS_BDAT;
        break;
    case WAIT_MESSAGE:
        s->awaiting_final = false;
        session_set_read_timeout(s, s->cfg->command_timeout);
        session_chain_decided_message(s);
        break;
    case WAIT_NONE:
        return;
    }
    session_flush(s);
    session_process(s);
}

static void session_do_rset(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    (void)cmd;
    session_tx_reset(s);
    if (s->up)
        session_forward(s, EXPECT_RELAY, line, len);
    else
        session_reply(s, "250 2.0.0 Ok");
}

static void session_do_noop(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    (void)cmd;
    (void)line;
    (void)len;
    session_reply(s, "250 2.0.0 Ok");
}

static void session_do_quit(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    (void)cmd;
    (void)line;
    (void)len;
    session_close_with(s, "221 2.0.0 Bye");
}

static void session_do_relay(struct session *s, const struct smtp_cmd *cmd, const char *line,
                             size_t len)
{
    (void)cmd;
    session_forward(s, EXPECT_RELAY, line, len);
}

static void session_do_help(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    (void)cmd;
    (void)line;
    (void)len;
    session_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY "
                     "EXPN HELP");
}

/* ---- the edge: TLS, its policy, AUTH relaying ---- */

static bool session_auth_allowed(const struct session *s)
{
    return s->listener->auth && (s->tls || s->listener->auth_plaintext);
}

/* RFC 4954 4: an AUTH command with its initial response may be longer than
 * other commands (OAuth tokens are); everything else keeps max_line_length. */
static size_t session_line_limit(const struct session *s, struct evbuffer *in)
{
    size_t limit = s->cfg->max_line_length;
    char head[5];
    if (session_auth_allowed(s) && s->listener->auth_max_line_length + 2 > limit &&
        evbuffer_copyout(in, head, sizeof(head)) == (ev_ssize_t)sizeof(head) &&
        strncasecmp(head, "AUTH ", sizeof(head)) == 0)
        limit = s->listener->auth_max_line_length + 2;
    return limit;
}

/* Mechanisms shown: the listener's list, or what the upstreams offer. */
static unsigned session_auth_mechs(const struct session *s)
{
    return s->listener->auth_mechs ? s->listener->auth_mechs : upstream_pool_auth_mechs(s->cfg);
}

static size_t session_edge_ehlo(struct session *s, char *buf, size_t size)
{
    size_t n = 0;
    if (s->listener->tls == LISTENER_TLS_STARTTLS && s->listener->tls_server && !s->tls)
        n += (size_t)snprintf(buf + n, size - n, "250-STARTTLS\r\n");
    unsigned mechs = session_auth_mechs(s);
    if (session_auth_allowed(s) && mechs && n < size) {
        char names[200];
        auth_mechs_format(mechs, names, sizeof(names));
        n += (size_t)snprintf(buf + n, size - n, "250-AUTH %s\r\n", names);
        /* MAIL FROM's AUTH= parameter (RFC 4954 5) goes with the extension. */
        s->caps |= ESMTP_CAP_AUTH;
    }
    return n < size ? n : size - 1;
}

static const char *session_edge_refusal(const struct session *s, enum smtp_verb verb)
{
    if (s->tls)
        return NULL;
    if (verb == SMTP_VERB_MAIL && s->listener->require_tls == REQUIRE_TLS_MAIL)
        return "530 5.7.0 Must issue a STARTTLS command first";
    if (verb == SMTP_VERB_AUTH && s->listener->require_tls != REQUIRE_TLS_NONE)
        return "530 5.7.0 Must issue a STARTTLS command first";
    return NULL;
}

static void session_tls_established(struct session *s)
{
    if (!s->tls_handshaking)
        return;
    s->tls_handshaking = false;
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    struct tls_facts *f = malloc(sizeof(*f));
    if (!ssl || !f) {
        free(f);
        session_close_with(s, "421 4.3.0 Error: out of memory");
        return;
    }
    tls_facts_collect(ssl, f);
    free(s->tls);
    s->tls = f;
    if (s->chain)
        chain_set_tls(s->chain, f->version, f->cipher, f->sni[0] ? f->sni : NULL,
                      f->peer_subject[0] ? f->peer_subject : NULL,
                      f->peer_fingerprint[0] ? f->peer_fingerprint : NULL);
    if (s->before_greeting)
        session_greet_ready(s); /* implicit TLS: the handshake came first */
    log_info("%s: TLS established from %s: %s cipher=%s sni=%s%s ccert=%s%s%s", s->id, s->addr,
             f->version, f->cipher, f->sni[0] ? f->sni : "-", f->resumed ? " resumed" : "",
             f->peer_fingerprint[0] ? f->peer_fingerprint : "-",
             f->peer_subject[0] ? " subject=" : "", f->peer_subject);
    session_process(s);
}

/* A bufferevent for a new connection: TLS from the first octet on an
 * implicit-TLS listener, plain otherwise. */
static struct bufferevent *session_edge_bev(struct session *s, evutil_socket_t fd)
{
    if (s->listener->tls != LISTENER_TLS_IMPLICIT || !s->listener->tls_server)
        return bufferevent_socket_new(s->worker->base, fd, BEV_OPT_CLOSE_ON_FREE);
    SSL *ssl = tls_server_ssl(s->listener->tls_server);
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        s->worker->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev) {
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        s->tls_handshaking = true;
    }
    return bev;
}

/* RFC 3207 4.2: after the handshake the session starts over, knowing nothing
 * the client said before it. */
static void session_tls_forget(struct session *s)
{
    if (s->mail_sent)
        session_abort_upstream_tx(s);
    session_tx_reset(s);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    s->caps = 0;
    s->size_limit = 0;
    free(s->login);
    s->login = NULL;
    if (s->chain)
        chain_set_login(s->chain, NULL);
    s->authenticated = false;
    s->auth_guess[0] = '\0';
    if (s->up) {
        /* The upstream heard the old HELO (and XCLIENT): a new connection
         * will carry what the client says over TLS. */
        upstream_close(s->up);
        s->up = NULL;
    }
}

static void session_do_starttls(struct session *s, const struct smtp_cmd *cmd, const char *line,
                                size_t len)
{
    (void)line;
    if (s->listener->tls != LISTENER_TLS_STARTTLS || !s->listener->tls_server) {
        session_reply(s, "502 5.5.1 Error: command not implemented");
        return;
    }
    if (s->tls) {
        session_reply(s, "554 5.5.1 Error: TLS already active");
        return;
    }
    if (cmd->arg_len > 0) {
        session_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (s->mail_sent) {
        session_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    SSL *ssl = tls_server_ssl(s->listener->tls_server);
    if (!ssl) {
        session_reply(s, "454 4.7.0 TLS not available due to temporary reason");
        return;
    }
    session_reply(s, "220 2.0.0 Ready to start TLS");
    if (s->rq_head) {
        /* Cannot happen behind the barrier; never wrap with replies owed. */
        SSL_free(ssl);
        session_close_with(s, "421 4.3.0 Error: internal error");
        return;
    }
    /* Whatever the client sent after STARTTLS in plaintext is discarded, never
     * executed over TLS (CVE-2011-0411). */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t junk = evbuffer_get_length(in);
    evbuffer_drain(in, junk);
    if (junk > len + 2)
        log_info("%s: discarded %zu octets pipelined after STARTTLS from %s", s->id, junk - len - 2,
                 s->addr);
    /* The socket keeps only a write timeout; reads are timed on the TLS side. */
    struct timeval wt = {.tv_sec = s->cfg->command_timeout};
    bufferevent_set_timeouts(s->bev, NULL, &wt);
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        s->worker->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!tls) {
        SSL_free(ssl);
        s->closing = true;
        bufferevent_disable(s->bev, EV_READ);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    s->bev = tls;
    s->tls_handshaking = true;
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_HIGH_WATER / 4, 0);
    session_set_read_timeout(s, s->cfg->command_timeout);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    session_tls_forget(s);
}

static void session_auth_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)fd;
    (void)what;
    event_free(s->auth_delay_ev);
    s->auth_delay_ev = NULL;
    session_slot_fill(s, s->auth_delay_slot, s->auth_delay_text, s->auth_delay_len, true);
    s->auth_delay_slot = NULL;
    s->auth_delay_text = NULL;
    s->auth_waiting = false;
    session_flush(s);
    if (s->auth_failures >= s->listener->auth_max_failures) {
        log_info("%s: too many failed AUTH attempts from %s", s->id, s->addr);
        session_close_with(s, "421 4.7.0 Error: too many failed authentication attempts");
        return;
    }
    session_process(s);
}

/*
 * The upstream answered AUTH or a response line.  334: the client's next line
 * is a response.  235: authenticated.  Anything else: a failure, counted, and
 * its reply held back auth_failure_delay seconds.  Returns false when the slot
 * will be filled later (by the delay timer).
 */
static bool session_auth_reply(struct session *s, struct reply_slot *slot,
                               const struct smtp_reply *r)
{
    char mech[32];
    auth_mechs_format(s->auth_mech, mech, sizeof(mech));
    if (r->code == 334) {
        s->auth_response = true;
        s->auth_waiting = false;
        s->auth_step++;
        return true;
    }
    s->auth_waiting = false;
    s->auth_response = false;
    if (r->code == 235) {
        s->authenticated = true;
        free(s->login);
        s->login = s->auth_guess[0] ? strdup(s->auth_guess) : NULL;
        if (s->chain)
            chain_set_login(s->chain, s->login);
        log_info("%s: AUTH %s accepted for %s login=%s", s->id, mech, s->addr,
                 s->login ? s->login : "(not known)");
        return true;
    }
    s->auth_failures++;
    log_info("%s: AUTH %s failed for %s login=%s: %d (%u of %u)", s->id, mech, s->addr,
             s->auth_guess[0] ? s->auth_guess : "(not known)", r->code, s->auth_failures,
             s->listener->auth_max_failures);
    s->auth_guess[0] = '\0';
    if (!slot)
        return true;
    size_t len;
    char *text = session_format_reply(r, &len);
    unsigned delay = s->listener->auth_failure_delay;
    if (text && delay > 0) {
        s->auth_delay_ev = evtimer_new(s->worker->base, session_auth_delay_cb, s);
        if (s->auth_delay_ev) {
            s->auth_delay_slot = slot;
            s->auth_delay_text = text;
            s->auth_delay_len = len;
            s->auth_waiting = true; /* nothing more is read until the reply is out */
            struct timeval t = {.tv_sec = delay};
            evtimer_add(s->auth_delay_ev, &t);
            return false;
        }
    }
    free(text);
    if (s->auth_failures >= s->listener->auth_max_failures) {
        /* Queued behind the failure's own slot, which the caller fills. */
        log_info("%s: too many failed AUTH attempts from %s", s->id, s->addr);
        session_close_with(s, "421 4.7.0 Error: too many failed authentication attempts");
    }
    return true;
}

/* One response line of the exchange, sent on as it is (it is the upstream's
 * to judge); "*", or a line that is not base64, cancels. */
static bool session_auth_feed(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t max = s->listener->auth_max_line_length;
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    s->auth_response = false;
    if (eol.pos < 0) {
        size_t have = evbuffer_get_length(in);
        if (have <= max + 2) {
            s->auth_response = true;
            return false;
        }
        /* Too long: the rest of the line is dropped, the exchange cancelled. */
        evbuffer_drain(in, have);
        s->discard_line = true;
        session_forward(s, EXPECT_AUTH, "*", 1);
        s->auth_waiting = true;
        return true;
    }
    size_t line_len = (size_t)eol.pos;
    const char *line = (const char *)evbuffer_pullup(in, (ssize_t)(line_len + eol_len));
    if (!line) {
        s->auth_response = true;
        return false;
    }
    if (auth_response_check(line, line_len, max) != AUTH_OK) {
        session_forward(s, EXPECT_AUTH, "*", 1);
    } else {
        if (!s->auth_guess[0])
            auth_login_guess(s->auth_mech, s->auth_step, line, line_len, s->auth_guess,
                             sizeof(s->auth_guess));
        session_forward(s, EXPECT_AUTH, line, line_len);
    }
    evbuffer_drain(in, line_len + eol_len);
    s->auth_waiting = true;
    return true;
}

static void session_do_auth(struct session *s, const struct smtp_cmd *cmd, const char *line,
                            size_t len)
{
    if (!s->listener->auth || !session_auth_mechs(s)) {
        session_reply(s, "503 5.5.1 Error: authentication not enabled");
        return;
    }
    if (!session_auth_allowed(s)) {
        session_reply(s, s->listener->tls == LISTENER_TLS_STARTTLS
                             ? "538 5.7.11 Encryption required for requested authentication "
                               "mechanism"
                             : "503 5.5.1 Error: authentication not enabled");
        return;
    }
    if (!s->helo || !s->esmtp) {
        session_reply(s, "503 5.5.1 Error: send EHLO first");
        return;
    }
    if (s->authenticated) {
        session_reply(s, "503 5.5.1 Error: already authenticated");
        return;
    }
    if (s->mail_sent) {
        session_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    struct auth_cmd ac;
    enum auth_status st = auth_cmd_parse(cmd->arg, cmd->arg_len, &ac);
    if (st == AUTH_OK && !(ac.mech & session_auth_mechs(s)))
        st = AUTH_UNKNOWN_MECH;
    if (st != AUTH_OK) {
        session_reply(s, auth_status_reply(st));
        return;
    }
    s->auth_mech = ac.mech;
    s->auth_step = 0;
    s->auth_guess[0] = '\0';
    if (ac.initial)
        auth_login_guess(ac.mech, 0, ac.initial, ac.initial_len, s->auth_guess,
                         sizeof(s->auth_guess));
    session_forward(s, EXPECT_AUTH, line, len);
    s->auth_waiting = true;
}

static void session_edge_summary(const struct session *s, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    if (s->tls)
        n += (size_t)snprintf(buf + n, size - n, " tls=%s/%s sni=%s ccert=%s", s->tls->version,
                              s->tls->cipher, s->tls->sni[0] ? s->tls->sni : "-",
                              s->tls->peer_fingerprint[0] ? s->tls->peer_fingerprint : "-");
    if (n < size && s->authenticated)
        snprintf(buf + n, size - n, " login=%s", s->login ? s->login : "(not known)");
}

static void session_edge_free(struct session *s)
{
    if (s->auth_delay_ev)
        event_free(s->auth_delay_ev);
    s->auth_delay_ev = NULL;
    if (s->auth_delay_slot) {
        /* The slot itself is still in the reply queue and freed with it. */
        free(s->auth_delay_text);
        s->auth_delay_text = NULL;
        s->auth_delay_slot = NULL;
    }
    free(s->tls);
    s->tls = NULL;
    free(s->login);
    s->login = NULL;
}

const struct tls_facts *session_tls(const struct session *s)
{
    return s->tls;
}

const char *session_login(const struct session *s)
{
    return s->authenticated ? s->login : NULL;
}

static const struct session_cmd session_commands[SMTP_VERB__COUNT] = {
    [SMTP_VERB_HELO] = {SMTP_VERB_HELO, true, session_do_helo},
    [SMTP_VERB_EHLO] = {SMTP_VERB_EHLO, true, session_do_helo},
    [SMTP_VERB_MAIL] = {SMTP_VERB_MAIL, false, session_do_mail},
    [SMTP_VERB_RCPT] = {SMTP_VERB_RCPT, false, session_do_rcpt},
    [SMTP_VERB_DATA] = {SMTP_VERB_DATA, true, session_do_data},
    [SMTP_VERB_BDAT] = {SMTP_VERB_BDAT, true, session_do_bdat},
    [SMTP_VERB_RSET] = {SMTP_VERB_RSET, false, session_do_rset},
    [SMTP_VERB_NOOP] = {SMTP_VERB_NOOP, false, session_do_noop},
    [SMTP_VERB_QUIT] = {SMTP_VERB_QUIT, true, session_do_quit},
    [SMTP_VERB_VRFY] = {SMTP_VERB_VRFY, false, session_do_relay},
    [SMTP_VERB_EXPN] = {SMTP_VERB_EXPN, false, session_do_relay},
    [SMTP_VERB_HELP] = {SMTP_VERB_HELP, false, session_do_help},
    [SMTP_VERB_STARTTLS] = {SMTP_VERB_STARTTLS, true, session_do_starttls},
    [SMTP_VERB_AUTH] = {SMTP_VERB_AUTH, true, session_do_auth},
};

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

/* One command line; returns false when the loop must stop in front of it. */
static bool session_command(struct session *s, const char *line, size_t len)
{
    struct smtp_cmd cmd;
    enum smtp_cmd_status st = smtp_cmd_parse(line, len, &cmd);
    const struct session_cmd *entry =
        st == SMTP_CMD_OK && cmd.verb != SMTP_VERB_UNKNOWN ? &session_commands[cmd.verb] : NULL;

    if (entry && entry->barrier && s->ex_len > 0) {
        s->waiting_barrier = true;
        return false;
    }
    s->ncommands++;
    size_t shown = auth_loggable_len(line, len); /* never an AUTH initial response */
    log_debug("%s: < %.*s", s->id, (int)(shown > 200 ? 200 : shown), line);

    if (st == SMTP_CMD_UNKNOWN_VERB && session_is_http(&cmd)) {
        session_close_with(s, "521 5.5.1 Protocol error");
        return true;
    }
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return true;
    }
    if (!entry || !entry->proceed) {
        session_reply(s, "500 5.5.1 Error: command not recognized");
        return true;
    }
    if (s->refused && cmd.verb != SMTP_VERB_QUIT && cmd.verb != SMTP_VERB_NOOP) {
        /* Refused at connect: the client may only leave (RFC 5321 3.1). */
        session_reply(s, "503 5.7.0 Error: access denied");
        return true;
    }
    const char *policy = session_edge_refusal(s, cmd.verb);
    if (policy) {
        session_reply(s, policy);
        return true;
    }
    entry->proceed(s, &cmd, line, len);
    return true;
}

/* ---- input ---- */

/* Feed message data to the decoder; true when the loop may go on. */
static bool session_feed_data(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    struct evbuffer_iovec v[16];
    int n = evbuffer_peek(in, -1, NULL, v, 16);
    size_t consumed = 0;

    for (int i = 0; i < n && i < 16 && !s->dec.done; i++)
        consumed += data_decoder_feed(&s->dec, v[i].iov_base, v[i].iov_len);
    evbuffer_drain(in, consumed);
    if (s->dec.done) {
        session_message_complete(s, s->dec.error);
        return true;
    }
    return n > 16;
}

/* Read chunk octets; true when the loop may go on. */
static bool session_feed_bdat(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    while (s->bdat_remaining > 0) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return false;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return false;
        size_t take = v.iov_len;
        if (take > s->bdat_remaining)
            take = (size_t)s->bdat_remaining;
        if (!s->bdat_refusal) {
            if (s->body == ESMTP_BODY_BINARYMIME) {
                if (session_sink(s, v.iov_base, take) < 0)
                    s->bdat_refusal = "451 4.3.0 Error: queue file write error";
            } else {
                bdat_check_feed(&s->dec, v.iov_base, take);
            }
        }
        evbuffer_drain(in, take);
        s->bdat_remaining -= take;
    }
    session_bdat_chunk_done(s);
    return true;
}

static void session_process(struct session *s)
{
    if (s->processing || !s->bev)
        return;
    s->processing = true;
    struct evbuffer *in = bufferevent_get_input(s->bev);

    while (!s->closing) {
        if (s->before_greeting || s->chain_for != WAIT_NONE || s->awaiting_final ||
            s->rq_len >= MAX_PENDING_REPLIES ||
            evbuffer_get_length(bufferevent_get_output(s->bev)) > OUTPUT_HIGH_WATER)
            break;
        if (s->waiting_barrier) {
            if (s->ex_len > 0)
                break;
            s->waiting_barrier = false;
        }
        if (s->auth_waiting || s->tls_handshaking)
            break;
        if (s->auth_response) {
            if (!session_auth_feed(s))
                break;
            continue;
        }
        if (s->state == SESS_DATA) {
            if (!session_feed_data(s))
                break;
            continue;
        }
        if (s->state == SESS_BDAT) {
            if (!session_feed_bdat(s))
                break;
            continue;
        }

        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        if (eol.pos < 0) {
            size_t have = evbuffer_get_length(in);
            if (have >= session_line_limit(s, in)) {
                if (!s->discard_line)
                    session_reply(s, "500 5.5.2 Error: line too long");
                s->discard_line = true;
                evbuffer_drain(in, have);
            }
            break;
        }
        size_t line_len = (size_t)eol.pos;
        if (s->discard_line) {
            s->discard_line = false;
            evbuffer_drain(in, line_len + eol_len);
            continue;
        }
        if (line_len + 2 > session_line_limit(s, in)) {
            evbuffer_drain(in, line_len + eol_len);
            session_reply(s, "500 5.5.2 Error: line too long");
        } else {
            const char *line = (const char *)evbuffer_pullup(in, (ssize_t)(line_len + eol_len));
            if (!line || !session_command(s, line, line_len))
                break;
            evbuffer_drain(in, line_len + eol_len);
        }
        if (s->errors >= s->cfg->hard_error_limit && !s->closing) {
            session_close_with(s, "421 4.7.0 Error: too many errors");
            log_info("%s: too many errors from %s", s->id, s->addr);
        }
    }
    s->processing = false;

    /* Stop reading while the loop cannot take more; resume when it can. */
    if (!s->closing) {
        if (evbuffer_get_length(in) > INPUT_HIGH_WATER && s->state == SESS_CMD)
            bufferevent_disable(s->bev, EV_READ);
        else
            bufferevent_enable(s->bev, EV_READ);
    }
}

/* ---- socket events ---- */

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    if (s->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && !s->rq_head &&
            !session_tls_draining(s))
            session_free(s);
        return;
    }
    session_process(s);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        session_tls_established(s);
        return;
    }
    if (s->tls_handshaking && (what & BEV_EVENT_ERROR)) {
        char e[256];
        log_info("%s: TLS handshake failed with %s: %s", s->id, s->addr,
                 tls_bev_error(s->bev, e, sizeof(e)));
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (!s->closing) {
            log_info("%s: timeout after %s from %s", s->id,
                     s->state == SESS_CMD ? "command" : "data", s->addr);
            session_close_with(s, "421 4.4.2 Error: timeout exceeded");
            bufferevent_enable(s->bev, EV_WRITE);
            return;
        }
    }
    if (s->state != SESS_CMD && s->mail_sent) {
        s->ntransactions++;
        session_log_tx(s, "aborted", 0, "client disconnected during message data");
    }
    session_free(s);
}

static void session_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)fd;
    (void)what;
    event_free(s->grace_ev);
    s->grace_ev = NULL;
    if (!s->helo && !s->closing)
        session_close_with(s, "421 4.4.2 Error: timeout exceeded");
}

/* ---- life ---- */

static void session_link(struct session *s)
{
    struct worker *w = s->worker;
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->nsessions++;
}

static void session_unlink(struct session *s)
{
    struct worker *w = s->worker;
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    w->nsessions--;
}

static void session_free(struct session *s)
{
    char edge[768];
    session_edge_summary(s, edge, sizeof(edge));
    log_info("%s: disconnect from %s[%s]:%u helo=%s commands=%u transactions=%u accepted=%u "
             "errors=%u%s duration=%.3fs",
             s->id, s->client_name ? s->client_name : "unknown", s->addr, s->port,
             s->helo ? s->helo : "-", s->ncommands, s->ntransactions, s->naccepted, s->errors, edge,
             session_elapsed(&s->started));
    session_edge_free(s);
    if (s->up) {
        upstream_close(s->up);
        s->up = NULL;
    }
    while (s->rq_head) {
        struct reply_slot *r = s->rq_head;
        s->rq_head = r->next;
        if (r->owned)
            free(r->text);
        free(r);
    }
    while (s->ex_head)
        session_expect_free(session_expect_pop(s));
    if (s->grace_ev)
        event_free(s->grace_ev);
    client_name_cancel(s->name_lookup);
    free(s->client_name);
    if (s->bev)
        bufferevent_free(s->bev);
    if (s->chain) {
        chain_tx_end(s->chain);
        session_release_content(s);
        chain_conn_release(s->chain);
        s->chain = NULL;
    }
    s->chain_for = WAIT_NONE;
    if (s->chain_ev)
        event_free(s->chain_ev);
    if (s->chain_timer)
        event_free(s->chain_timer);
    session_tx_reset(s);
    session_drop_pending(s);
    if (s->store)
        msg_store_free(s->store);
    if (s->hdrs)
        session_free_headers(s->hdrs);
    free(s->mail_from);
    free(s->helo);
    runtime_conn_close((struct sockaddr *)&s->peer);
    config_unref(s->cfg);
    struct worker *w = s->worker;
    session_unlink(s);
    free(s);
    worker_session_gone(w);
}

void session_destroy(struct session *s)
{
    session_free(s);
}

struct session *session_next(const struct session *s)
{
    return s->next;
}

void session_shutdown(struct session *s)
{
    if (s->closing) {
        session_free(s);
        return;
    }
    session_close_with(s, "421 4.3.2 Service shutting down, closing connection");
}

static void session_refuse_socket(evutil_socket_t fd, const char *line)
{
    /* Best effort, non-blocking: a refused client gets one line and the door. */
    ssize_t w = send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    evutil_closesocket(fd);
}

void session_start(struct worker *w, evutil_socket_t fd, const struct sockaddr *peer,
                   socklen_t peer_len, struct sg_config *cfg)
{
    enum runtime_admit admit = runtime_conn_open(cfg, peer);
    if (admit != ADMIT_OK) {
        char addr[64] = "?";
        if (peer->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, addr,
                      sizeof(addr));
        else if (peer->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, addr, sizeof(addr));
        log_info("refused: disconnect from unknown[%s]: %s", addr,
                 admit == ADMIT_TOO_MANY_FROM_CLIENT ? "too many connections from this client"
                                                     : "too many connections");
        session_refuse_socket(fd, admit == ADMIT_TOO_MANY_FROM_CLIENT
                                      ? "421 4.7.0 Error: too many connections from you\r\n"
                                      : "421 4.7.0 Error: too many connections\r\n");
        config_unref(cfg);
        return;
    }

    pthread_once(&session_counters_once, session_counters_init);
    metrics_add(session_conn_counter, 1);
    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        runtime_conn_close(peer);
        session_refuse_socket(fd, "421 4.3.0 Error: out of memory\r\n");
        config_unref(cfg);
        return;
    }
    s->worker = w;
    s->cfg = cfg;
    memcpy(&s->peer, peer, peer_len < sizeof(s->peer) ? peer_len : sizeof(s->peer));
    socklen_t llen = sizeof(s->local);
    getsockname(fd, (struct sockaddr *)&s->local, &llen);
    s->listener = listener_find(cfg, (struct sockaddr *)&s->local);
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    session_make_id(s);
    if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)peer;
        inet_ntop(AF_INET6, &a->sin6_addr, s->addr, sizeof(s->addr));
        s->port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)peer;
        inet_ntop(AF_INET, &a->sin_addr, s->addr, sizeof(s->addr));
        s->port = ntohs(a->sin_port);
    }
    session_link(s);
    s->hdrs = malloc(sizeof(*s->hdrs));
    if (!s->hdrs) {
        evutil_closesocket(fd);
        session_free(s);
        return;
    }
    msg_headers_init(s->hdrs, cfg->max_header_size, 1000);

    s->bev = session_edge_bev(s, fd);
    if (!s->bev) {
        evutil_closesocket(fd);
        session_free(s);
        return;
    }
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_HIGH_WATER / 4, 0);
    session_set_read_timeout(s, cfg->command_timeout);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);

    if (!upstream_pool_any_healthy(cfg)) {
        log_warn("%s: refusing %s: no upstream is available", s->id, s->addr);
        session_close_with(s, "421 4.3.2 Service not available, no upstream server");
        return;
    }
    s->grace_ev = evtimer_new(w->base, session_grace_cb, s);
    if (s->grace_ev) {
        struct timeval g = {.tv_sec = cfg->connect_grace};
        evtimer_add(s->grace_ev, &g);
    }
    log_debug("%s: connect from %s:%u", s->id, s->addr, s->port);
    /* The plugins' connect stage knows the client's name and, on an
     * implicit-TLS listener, the TLS facts: the greeting waits for both. */
    s->before_greeting = true;
    s->greet_waits = 1 + (s->tls_handshaking ? 1 : 0);
    if (s->worker->dns && cfg->client_name_lookup &&
        (s->name_lookup =
             client_name_start(s->worker->dns, (struct sockaddr *)&s->peer, session_name_done, s)))
        return;
    s->name_tempfail = cfg->client_name_lookup;
    session_greet_ready(s);
}

static void session_greet_ready(struct session *s)
{
    if (s->greet_waits > 0 && --s->greet_waits == 0)
        session_begin(s);
}

static void session_name_done(void *arg, enum client_name_status st, const char *name)
{
    struct session *s = arg;
    s->name_lookup = NULL;
    s->name_tempfail = st == NAME_TEMPUNAVAIL;
    if (st == NAME_OK)
        s->client_name = strdup(name);
    log_debug("%s: client name %s", s->id,
              st == NAME_OK            ? name
              : st == NAME_TEMPUNAVAIL ? "[TEMPUNAVAIL]"
                                       : "[UNAVAILABLE]");
    session_greet_ready(s);
    session_process(s);
}

/* The connection is known: the chain's connect stage, then the greeting. */
static void session_begin(struct session *s)
{
    struct sg_config *cfg = s->cfg;
    if (cfg->chain && !session_chain_start(s)) {
        session_close_with(s, "421 4.3.0 Error: out of memory");
        return;
    }
    if (s->chain && chain_wants(cfg->chain, SG_STAGE_CONNECT)) {
        if (!session_chain_run(s, WAIT_CONNECT, SG_STAGE_CONNECT, NULL, NULL))
            return;
    } else {
        s->chain_res.action = CHAIN_PASS;
    }
    session_connect_decided(s);
}

static bool session_chain_start(struct session *s)
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
        .client_name = s->client_name,
        .local_addr = local,
        .local_port = local_port,
        .host_name = s->cfg->hostname,
    };
    if (s->tls) {
        info.tls = true;
        info.tls_version = s->tls->version;
        info.tls_cipher = s->tls->cipher;
        info.tls_sni = s->tls->sni[0] ? s->tls->sni : NULL;
        info.tls_peer_subject = s->tls->peer_subject[0] ? s->tls->peer_subject : NULL;
        info.tls_peer_fingerprint = s->tls->peer_fingerprint[0] ? s->tls->peer_fingerprint : NULL;
    }
    struct chain_front front = {.notify = session_chain_notify, .arg = s};
    s->chain_ev = event_new(s->worker->base, -1, 0, session_chain_event_cb, s);
    s->chain_timer = evtimer_new(s->worker->base, session_chain_timer_cb, s);
    if (!s->chain_ev || !s->chain_timer)
        return false;
    s->chain =
        chain_conn_new(s->cfg->chain, &info, &front, s->cfg->spill_threshold, s->cfg->spool_dir);
    return s->chain != NULL;
}

/* The greeting, or the connect stage's refusal: 554 and only QUIT served
 * after it, or 421 and the door (RFC 5321 3.1, 4.2.5). */
static void session_connect_decided(struct session *s)
{
    s->before_greeting = false;
    if (s->chain_res.action != CHAIN_REFUSE) {
        session_replyf(s, "220 %s ESMTP", s->cfg->hostname);
        return;
    }
    const char *text = s->chain_res.reply + 4;
    log_info("%s: refused at connect from %s by %s: %s", s->id, s->addr,
             s->chain_res.decided_by ? s->chain_res.decided_by : "-", s->chain_res.reply);
    char line[1100];
    if (s->chain_res.reply[0] == '4') {
        snprintf(line, sizeof(line), "421 %s", text);
        line[strcspn(line, "\r\n")] = '\0';
        session_close_with(s, line);
        return;
    }
    snprintf(line, sizeof(line), "554 %s", text);
    line[strcspn(line, "\r\n")] = '\0';
    s->refused = true;
    if (s->grace_ev) {
        event_free(s->grace_ev);
        s->grace_ev = NULL;
    }
    session_reply(s, line);
}
