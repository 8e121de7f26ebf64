/*
 * session - server side of SMTP for one client (RFC 5321, 1869, 1870, 2920,
 * 3030, 3463, 6152, 6531): its lifetime and its I/O.
 *
 * Shape (after OpenSMTPD's smtp_session.c): one table lists every command
 * with the states it is allowed in, its filter stage, a check and a proceed
 * function (session_cmd.c); this file holds what is around it: starting,
 * greeting and freeing the session, the reply queue, and the input loop that
 * takes one line at a time and hands it to the table's driver.
 *
 * Replies leave in the order commands came, whatever answers them: each
 * command appends a slot to the reply queue; a slot is filled at once (our own
 * replies) or when the upstream answers (session_relay.c); the queue is
 * written out up to the first empty slot.
 *
 * The loop reads nothing while the session waits (s->wait: a barrier, the
 * filter chain, the upstream's final reply, AUTH, a TLS handshake), while too
 * many replies are unread, and before the greeting.
 */
#include "daemon/session.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/client_name.h"
#include "daemon/runtime.h"
#include "daemon/session_int.h"
#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "daemon/upstream_pool.h"
#include "util/log.h"

static atomic_uint_fast64_t session_counter;

static void session_free(struct session *s);
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);

/* ---- time and ids ---- */

double session_elapsed(const struct timespec *since)
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

enum session_state session_idle_state(const struct session *s)
{
    if (!s->client.helo)
        return SESSION_GREETED;
    return s->client.esmtp ? SESSION_EHLO : SESSION_HELO;
}

/* ---- the reply queue ---- */

struct reply_slot *session_slot_new(struct session *s)
{
    struct reply_slot *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (s->io.cmd_what) {
        r->what = s->io.cmd_what;
        r->arg = s->io.cmd_arg ? strdup(s->io.cmd_arg) : NULL;
    }
    if (s->io.rq_tail)
        s->io.rq_tail->next = r;
    else
        s->io.rq_head = r;
    s->io.rq_tail = r;
    s->io.rq_len++;
    return r;
}

void session_slot_fill(struct session *s, struct reply_slot *r, char *text, size_t len, bool owned)
{
    r->text = text;
    r->len = len;
    r->owned = owned;
    r->ready = true;
    if (len >= 1 && (text[0] == '4' || text[0] == '5'))
        s->stats.errors++;
}

/*
 * A refused envelope command, in Postfix's shape so that its log tools and an
 * admin's habits work: "reject: RCPT from name[addr]: 550 5.1.1 text;
 * from=<s> to=<r> proto=ESMTP helo=<h>" - whoever refused it, smtpgate, a
 * plugin or the upstream.
 */
static void session_log_refusal(const struct session *s, const struct reply_slot *r)
{
    size_t n = strcspn(r->text, "\r\n");
    const char *arg = r->arg ? r->arg : "";
    bool rcpt = strcmp(r->what, "RCPT") == 0;
    bool mail = strcmp(r->what, "MAIL") == 0;
    const char *from = mail ? arg : s->tx.mail_from;
    log_info("%s: reject: %s from %s[%s]: %.*s;%s%s%s%s%s%s proto=%s helo=<%s>", s->id, r->what,
             s->client.name ? s->client.name : "unknown", s->addr, (int)(n > 512 ? 512 : n),
             r->text, from ? " from=<" : "", from ? from : "", from ? ">" : "", rcpt ? " to=<" : "",
             rcpt ? arg : "", rcpt ? ">" : "", s->client.esmtp ? "ESMTP" : "SMTP",
             s->client.helo ? s->client.helo : "");
}

static void session_slot_free(struct reply_slot *r)
{
    if (r->owned)
        free(r->text);
    free(r->arg);
    free(r);
}

/* Write out every reply whose turn has come. */
void session_flush(struct session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->io.bev);
    while (s->io.rq_head && s->io.rq_head->ready) {
        struct reply_slot *r = s->io.rq_head;
        if (r->what && r->len > 0 && (r->text[0] == '4' || r->text[0] == '5'))
            session_log_refusal(s, r);
        evbuffer_add(out, r->text, r->len);
        s->io.rq_head = r->next;
        if (!s->io.rq_head)
            s->io.rq_tail = NULL;
        s->io.rq_len--;
        session_slot_free(r);
    }
}

/* Queue one of our own replies (a single line without CRLF). */
void session_reply(struct session *s, const char *line)
{
    struct reply_slot *r = session_slot_new(s);
    size_t n = strlen(line);
    if (!r) {
        s->io.closing = true;
        return;
    }
    char *text = malloc(n + 2);
    if (!text) {
        /* The slot is queued already: it still owes the client an answer. */
        session_slot_fill(s, r, (char *)"451 4.3.0 Error: out of memory\r\n", 32, false);
        s->io.closing = true;
        session_flush(s);
        return;
    }
    memcpy(text, line, n);
    memcpy(text + n, "\r\n", 2);
    session_slot_fill(s, r, text, n + 2, true);
    session_flush(s);
}

void session_replyf(struct session *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    session_reply(s, line);
}

/* Last words: reply, then close once the client has been sent everything. */
void session_close_with(struct session *s, const char *line)
{
    if (s->io.closing)
        return;
    s->io.cmd_what = NULL; /* last words answer the session, not a command */
    session_reply(s, line);
    s->io.closing = true;
    bufferevent_disable(s->io.bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->io.bev)) == 0 && !s->io.rq_head)
        bufferevent_trigger(s->io.bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* 0: no read timeout, while the client waits for the upstream rather than the
 * other way round. */
void session_set_read_timeout(struct session *s, unsigned seconds)
{
    struct timeval t = {.tv_sec = seconds};
    struct timeval w = {.tv_sec = s->cfg->command_timeout};
    bufferevent_set_timeouts(s->io.bev, seconds ? &t : NULL, &w);
}

void session_set_callbacks(struct session *s)
{
    bufferevent_setcb(s->io.bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->io.bev, EV_WRITE, SESSION_OUTPUT_HIGH_WATER / 4, 0);
}

/* ---- input ---- */

/* One command line from the input buffer; false when the loop must stop. */
static bool session_take_line(struct session *s, struct evbuffer *in)
{
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0) {
        size_t have = evbuffer_get_length(in);
        if (have >= session_line_limit(s, in)) {
            if (!s->io.discard_line)
                session_reply(s, "500 5.5.2 Error: line too long");
            s->io.discard_line = true;
            evbuffer_drain(in, have);
        }
        return false;
    }
    size_t line_len = (size_t)eol.pos;
    if (s->io.discard_line) {
        s->io.discard_line = false;
        evbuffer_drain(in, line_len + eol_len);
        return true;
    }
    if (line_len + 2 > session_line_limit(s, in)) {
        evbuffer_drain(in, line_len + eol_len);
        session_reply(s, "500 5.5.2 Error: line too long");
    } else {
        const char *line = (const char *)evbuffer_pullup(in, (ssize_t)(line_len + eol_len));
        if (!line || !session_command(s, line, line_len))
            return false;
        evbuffer_drain(in, line_len + eol_len);
    }
    if (s->stats.errors >= s->cfg->hard_error_limit && !s->io.closing) {
        session_close_with(s, "421 4.7.0 Error: too many errors");
        log_info("%s: too many errors from %s", s->id, s->addr);
    }
    return true;
}

/*
 * The client shut its sending side (shutdown(SHUT_WR), "nc -N"): what it sent
 * before still counts, and every reply it is owed - above all the final reply
 * to a message the upstream may already have committed - still goes out
 * before the connection is closed; only then is the session over.  A message
 * cut short by the end of input is aborted and logged.
 */
static void session_settle_eof(struct session *s)
{
    if (s->io.closing)
        return;
    if (s->wait.kind != WAIT_NONE || s->io.rq_head ||
        evbuffer_get_length(bufferevent_get_output(s->io.bev)) > SESSION_OUTPUT_HIGH_WATER)
        return; /* called again when the reply or the room comes */
    if ((s->state == SESSION_DATA || s->state == SESSION_BDAT) && session_tx_open(s)) {
        s->stats.ntransactions++;
        session_tx_log(s, "aborted", 0, "client closed its side during message data");
    }
    log_debug("%s: end of input from %s", s->id, s->addr);
    s->io.closing = true;
    bufferevent_trigger(s->io.bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void session_early_talker(struct session *s);

void session_process(struct session *s)
{
    if (s->io.processing || !s->io.bev)
        return;
    s->io.processing = true;
    struct evbuffer *in = bufferevent_get_input(s->io.bev);

    while (!s->io.closing) {
        if (s->state == SESSION_CONNECTED) {
            if (s->client.greet_delay_ev && evbuffer_get_length(in) > 0)
                session_early_talker(s);
            break;
        }
        if (s->wait.kind == WAIT_BARRIER && s->io.ex_len == 0)
            s->wait.kind = WAIT_NONE;
        if (s->wait.kind != WAIT_NONE || s->io.rq_len >= SESSION_MAX_PENDING_REPLIES ||
            evbuffer_get_length(bufferevent_get_output(s->io.bev)) > SESSION_OUTPUT_HIGH_WATER)
            break;
        bool go_on;
        if (s->state == SESSION_AUTH)
            go_on = session_auth_feed(s);
        else if (s->state == SESSION_DATA)
            go_on = session_feed_data(s);
        else if (s->state == SESSION_BDAT)
            go_on = session_feed_bdat(s);
        else
            go_on = session_take_line(s, in);
        if (!go_on)
            break;
    }
    s->io.processing = false;

    if (s->io.peer_eof) {
        session_settle_eof(s);
        return;
    }
    /* Stop reading while the loop cannot take more; resume when it can. */
    if (!s->io.closing) {
        if (evbuffer_get_length(in) > SESSION_INPUT_HIGH_WATER && s->state != SESSION_DATA &&
            s->state != SESSION_BDAT)
            bufferevent_disable(s->io.bev, EV_READ);
        else
            bufferevent_enable(s->io.bev, EV_READ);
    }
}

/* ---- socket events ---- */

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
    struct bufferevent *under = bufferevent_get_underlying(s->io.bev);
    if (!under || evbuffer_get_length(bufferevent_get_output(under)) == 0)
        return false;
    struct timeval t = {.tv_sec = 10};
    bufferevent_setcb(under, NULL, session_under_write_cb, session_under_event_cb, s);
    bufferevent_set_timeouts(under, NULL, &t);
    bufferevent_enable(under, EV_WRITE);
    return true;
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    if (s->io.closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && !s->io.rq_head &&
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
    if (s->wait.kind == WAIT_TLS && (what & BEV_EVENT_ERROR)) {
        char e[256];
        log_info("%s: TLS handshake failed with %s: %s", s->id, s->addr,
                 tls_bev_error(s->io.bev, e, sizeof(e)));
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && s->state != SESSION_CONNECTED) {
        bufferevent_disable(s->io.bev, EV_READ);
        if (s->io.peer_eof)
            return; /* reading was turned on again somewhere: the end is known */
        s->io.peer_eof = true;
        if (s->io.closing) {
            /* Last words queued: the write side frees the session once they are out. */
            if (evbuffer_get_length(bufferevent_get_output(s->io.bev)) == 0 && !s->io.rq_head)
                bufferevent_trigger(s->io.bev, EV_WRITE,
                                    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
        session_process(s);
        return;
    }
    bool in_message = s->state == SESSION_DATA || s->state == SESSION_BDAT;
    if (what & BEV_EVENT_TIMEOUT) {
        if (!s->io.closing) {
            log_info("%s: timeout after %s from %s", s->id, in_message ? "data" : "command",
                     s->addr);
            session_close_with(s, "421 4.4.2 Error: timeout exceeded");
            bufferevent_enable(s->io.bev, EV_WRITE);
            return;
        }
    }
    if (in_message && session_tx_open(s)) {
        s->stats.ntransactions++;
        session_tx_log(s, "aborted", 0, "client disconnected during message data");
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
    if (!s->client.helo && !s->io.closing)
        session_close_with(s, "421 4.4.2 Error: timeout exceeded");
}

/* ---- life ---- */

static void session_link(struct session *s)
{
    struct session_list *l = s->host->sessions;
    s->next = l->head;
    if (l->head)
        l->head->prev = s;
    l->head = s;
    l->count++;
}

static void session_unlink(struct session *s)
{
    struct session_list *l = s->host->sessions;
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    l->count--;
}

static void session_free(struct session *s)
{
    char edge[768];
    session_edge_summary(s, edge, sizeof(edge));
    log_info("%s: disconnect from %s[%s]:%u helo=%s commands=%u transactions=%u accepted=%u "
             "errors=%u%s duration=%.3fs",
             s->id, s->client.name ? s->client.name : "unknown", s->addr, s->port,
             s->client.helo ? s->client.helo : "-", s->stats.ncommands, s->stats.ntransactions,
             s->stats.naccepted, s->stats.errors, edge, session_elapsed(&s->started));
    session_metrics_close(session_elapsed(&s->started));
    session_edge_free(s);
    if (s->up) {
        upstream_close(s->up);
        s->up = NULL;
    }
    while (s->io.rq_head) {
        struct reply_slot *r = s->io.rq_head;
        s->io.rq_head = r->next;
        session_slot_free(r);
    }
    free(s->io.cmd_arg);
    while (s->io.ex_head)
        session_expect_free(session_expect_pop(s));
    if (s->grace_ev)
        event_free(s->grace_ev);
    if (s->client.greet_delay_ev)
        event_free(s->client.greet_delay_ev);
    client_name_cancel(s->client.name_lookup);
    free(s->client.name);
    if (s->io.bev)
        bufferevent_free(s->io.bev);
    if (s->chain) {
        chain_tx_end(s->chain);
        session_release_content(s);
        chain_conn_release(s->chain);
        s->chain = NULL;
    }
    s->wait.kind = WAIT_NONE;
    if (s->chain_ev)
        event_free(s->chain_ev);
    if (s->chain_timer)
        event_free(s->chain_timer);
    session_tx_reset(s);
    session_args_clear(&s->wait.args);
    if (s->msg.store)
        msg_store_free(s->msg.store);
    if (s->msg.hdrs)
        session_free_headers(s->msg.hdrs);
    free(s->tx.mail_from);
    free(s->client.helo);
    runtime_conn_close((struct sockaddr *)&s->peer);
    runtime_unref(s->rt);
    const struct session_host *host = s->host;
    session_unlink(s);
    free(s);
    host->gone(host->arg);
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
    if (s->io.closing) {
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

static void session_name_done(void *arg, enum client_name_status st, const char *name);

void session_start(const struct session_host *host, evutil_socket_t fd, const struct sockaddr *peer,
                   socklen_t peer_len, struct sg_runtime *rt)
{
    struct sg_config *cfg = rt->cfg;
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
        runtime_unref(rt);
        return;
    }

    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        runtime_conn_close(peer);
        session_refuse_socket(fd, "421 4.3.0 Error: out of memory\r\n");
        runtime_unref(rt);
        return;
    }
    s->host = host;
    s->rt = rt;
    s->cfg = cfg;
    s->state = SESSION_CONNECTED;
    memcpy(&s->peer, peer, peer_len < sizeof(s->peer) ? peer_len : sizeof(s->peer));
    socklen_t llen = sizeof(s->local);
    getsockname(fd, (struct sockaddr *)&s->local, &llen);
    s->edge.listener = listener_find(cfg, (struct sockaddr *)&s->local);
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
    session_metrics_open(session_metrics_listener(cfg, s->edge.listener));
    session_link(s);
    s->msg.hdrs = malloc(sizeof(*s->msg.hdrs));
    if (!s->msg.hdrs) {
        evutil_closesocket(fd);
        session_free(s);
        return;
    }
    msg_headers_init(s->msg.hdrs, cfg->max_header_size, 1000);

    s->io.bev = session_edge_bev(s, fd);
    if (!s->io.bev) {
        evutil_closesocket(fd);
        session_free(s);
        return;
    }
    session_set_callbacks(s);
    session_set_read_timeout(s, cfg->command_timeout);
    bufferevent_enable(s->io.bev, EV_READ | EV_WRITE);

    if (!upstream_pool_any_healthy(rt)) {
        log_warn("%s: refusing %s: no upstream is available", s->id, s->addr);
        session_close_with(s, "421 4.3.2 Service not available, no upstream server");
        return;
    }
    s->grace_ev = evtimer_new(host->base, session_grace_cb, s);
    if (s->grace_ev) {
        struct timeval g = {.tv_sec = cfg->connect_grace};
        evtimer_add(s->grace_ev, &g);
    }
    log_debug("%s: connect from %s:%u", s->id, s->addr, s->port);
    /* The plugins' connect stage knows the client's name and, on an
     * implicit-TLS listener, the TLS facts: the greeting waits for both. */
    s->client.greet_waits = 1 + (s->wait.kind == WAIT_TLS ? 1 : 0);
    if (host->dns && cfg->client_name_lookup &&
        (s->client.name_lookup =
             client_name_start(host->dns, (struct sockaddr *)&s->peer, session_name_done, s)))
        return;
    s->client.name_tempfail = cfg->client_name_lookup;
    session_greet_ready(s);
}

static void session_name_done(void *arg, enum client_name_status st, const char *name)
{
    struct session *s = arg;
    s->client.name_lookup = NULL;
    s->client.name_tempfail = st == NAME_TEMPUNAVAIL;
    if (st == NAME_OK)
        s->client.name = strdup(name);
    log_debug("%s: client name %s", s->id,
              st == NAME_OK            ? name
              : st == NAME_TEMPUNAVAIL ? "[TEMPUNAVAIL]"
                                       : "[UNAVAILABLE]");
    session_greet_ready(s);
    session_process(s);
}

/* ---- early talkers (postscreen's pregreet test) ---- */

#define SESSION_EARLY_TALKER_REPLY "554 5.5.1 Error: SMTP protocol violation"

/* A client that sent anything before the greeting ended: a bot that does not
 * wait for the server, as a real MTA does (RFC 5321 3.1). */
static void session_early_talker(struct session *s)
{
    size_t n = evbuffer_get_length(bufferevent_get_input(s->io.bev));
    log_info("%s: early talker %s: %zu octets before the greeting ended: refused", s->id, s->addr,
             n);
    session_metrics_early_talker();
    if (s->client.greet_delay_ev) {
        event_free(s->client.greet_delay_ev);
        s->client.greet_delay_ev = NULL;
    }
    s->state = SESSION_GREETED; /* whatever it sent is never read */
    session_close_with(s, SESSION_EARLY_TALKER_REPLY);
}

static void session_greet_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    event_free(s->client.greet_delay_ev);
    s->client.greet_delay_ev = NULL;
    if (evbuffer_get_length(bufferevent_get_input(s->io.bev)) > 0) {
        session_early_talker(s);
        return;
    }
    s->state = SESSION_GREETED;
    session_replyf(s, "220 %s ESMTP", s->cfg->hostname);
}

/* Does the client skip the delay (a connection symbol, e.g. a DNS allowlist's)? */
static bool session_greet_delay_skipped(const struct session *s)
{
    const char *skip = s->cfg->greet_delay_skip_symbol;
    if (!s->chain || !skip || !*skip)
        return false;
    for (size_t i = 0; i < chain_symbol_count(s->chain); i++)
        if (strcmp(chain_symbol_get(s->chain, i)->name, skip) == 0)
            return true;
    return false;
}

/* The greeting's first part, "220-", and the wait before its end; false
 * when there is no delay to make (off, skipped, no memory for the timer). */
static bool session_greet_delay_start(struct session *s)
{
    const struct sg_listener *l = s->edge.listener;
    unsigned delay = l && l->greet_delay >= 0 ? (unsigned)l->greet_delay : s->cfg->greet_delay;
    if (delay == 0 || session_greet_delay_skipped(s))
        return false;
    /* talking before the first part counts too */
    if (evbuffer_get_length(bufferevent_get_input(s->io.bev)) > 0) {
        session_early_talker(s);
        return true;
    }
    s->client.greet_delay_ev = evtimer_new(s->host->base, session_greet_delay_cb, s);
    if (!s->client.greet_delay_ev)
        return false;
    struct timeval t = {.tv_sec = delay};
    evtimer_add(s->client.greet_delay_ev, &t);
    /* the reply queue is empty: nothing was said yet, so this goes out first */
    evbuffer_add_printf(bufferevent_get_output(s->io.bev), "220-%s ESMTP\r\n", s->cfg->hostname);
    return true;
}

/* The greeting, or the connect stage's refusal: 554 and only QUIT served
 * after it, or 421 and the door (RFC 5321 3.1, 4.2.5). */
static void session_connect_decided(struct session *s)
{
    const struct chain_result *res = &s->wait.res;
    if (res->action != CHAIN_REFUSE) {
        if (session_greet_delay_start(s))
            return;
        s->state = SESSION_GREETED;
        session_replyf(s, "220 %s ESMTP", s->cfg->hostname);
        return;
    }
    const char *text = res->reply + 4;
    log_info("%s: refused at connect from %s by %s: %s", s->id, s->addr,
             res->decided_by ? res->decided_by : "-", res->reply);
    char line[1100];
    if (res->reply[0] == '4') {
        s->state = SESSION_GREETED;
        snprintf(line, sizeof(line), "421 %s", text);
        line[strcspn(line, "\r\n")] = '\0';
        session_close_with(s, line);
        return;
    }
    snprintf(line, sizeof(line), "554 %s", text);
    line[strcspn(line, "\r\n")] = '\0';
    s->state = SESSION_REFUSED;
    if (s->grace_ev) {
        event_free(s->grace_ev);
        s->grace_ev = NULL;
    }
    session_reply(s, line);
}

/* The connection is known: the chain's connect stage, then the greeting. */
static void session_begin(struct session *s)
{
    if (s->rt->chain && !session_chain_start(s)) {
        session_close_with(s, "421 4.3.0 Error: out of memory");
        return;
    }
    if (s->chain && chain_wants(s->rt->chain, SG_STAGE_CONNECT)) {
        if (!session_chain_run(s, SG_STAGE_CONNECT, NULL, NULL, session_connect_decided))
            return;
    } else {
        s->wait.res.action = CHAIN_PASS;
    }
    session_connect_decided(s);
}

void session_greet_ready(struct session *s)
{
    if (s->client.greet_waits > 0 && --s->client.greet_waits == 0)
        session_begin(s);
}
