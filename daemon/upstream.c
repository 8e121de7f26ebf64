/*
 * upstream - client side of SMTP towards the upstream MTA, one per session:
 * the connection's life and the relay of the transaction once it is ready.
 *
 * State machine: CONNECTING -> GREETING -> EHLO -> [XCLIENT... -> EHLO2] ->
 * READY (those steps are upstream_hello.c's), and from READY the message
 * steps DATA354 -> STREAM -> FINAL.  Any failure before READY moves on to the
 * next upstream candidate; a failure after it ends the connection with one
 * on_failure() to the session.
 *
 * Client commands wait in a FIFO ("queued") until the connection is ready and,
 * without PIPELINING, until the previous reply is in.  Each sent command is
 * remembered in the "await" ring by kind, so that replies to our own commands
 * (keep-alive NOOP, QUIT) are swallowed and every client command gets exactly
 * one reply, in order.
 *
 * Callbacks into the session may close this connection; the in_callback flag
 * turns such a close into a deferred free, done when the callback returns.
 */
#include "daemon/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/esmtp.h"
#include "util/log.h"
#include "daemon/tls.h"
#include "daemon/upstream_int.h"
#include "daemon/upstream_pool.h"

/* Connections saying QUIT after their session is gone: owned by nobody but
 * this thread's list, so a worker ending its loop can free them. */
static __thread struct upstream_conn *upstream_closing;

static void upstream_pump(struct upstream_conn *u);
static void upstream_free(struct upstream_conn *u);

/* End of every event callback: free the connection if the session let go of
 * it meanwhile.  Returns true when u is gone. */
bool upstream_settle(struct upstream_conn *u)
{
    if (u->close_requested && !u->in_callback && u->state != UP_CLOSING) {
        upstream_free(u);
        return true;
    }
    return false;
}

void upstream_set_read_timeout(struct upstream_conn *u, unsigned seconds)
{
    struct timeval rt = {.tv_sec = seconds};
    struct timeval wt = {.tv_sec = u->cfg->upstream_data_timeout};
    bufferevent_set_timeouts(u->bev, seconds ? &rt : NULL, &wt);
}

void upstream_write(struct upstream_conn *u, const char *bytes, size_t len)
{
    evbuffer_add(bufferevent_get_output(u->bev), bytes, len);
}

/* Deliver the end of the connection to the session, once. */
void upstream_fail(struct upstream_conn *u, const char *reply)
{
    if (u->state == UP_DEAD)
        return;
    u->state = UP_DEAD;
    if (u->bev) {
        bufferevent_free(u->bev);
        u->bev = NULL;
    }
    if (u->close_requested)
        return;
    u->in_callback = true;
    u->ev->on_failure(u->ctx, reply);
    u->in_callback = false;
}

static void upstream_deliver(struct upstream_conn *u)
{
    u->in_callback = true;
    u->ev->on_reply(u->ctx, &u->reply);
    u->in_callback = false;
}

/* ---- sending commands ---- */

static bool upstream_may_send(const struct upstream_conn *u)
{
    if (u->state != UP_READY || u->await_count >= AWAIT_MAX)
        return false;
    return u->await_count == 0 || (u->caps & ESMTP_CAP_PIPELINING);
}

static void upstream_await_push(struct upstream_conn *u, enum await_kind k)
{
    u->await[(u->await_head + u->await_count) % AWAIT_MAX] = (unsigned char)k;
    u->await_count++;
}

static void upstream_start_message(struct upstream_conn *u)
{
    if (u->bdat) {
        char line[64];
        int n = snprintf(line, sizeof(line), "BDAT %llu LAST\r\n",
                         (unsigned long long)msg_view_size(&u->view));
        upstream_write(u, line, (size_t)n);
        u->state = UP_STREAM;
    } else {
        upstream_write(u, "DATA\r\n", 6);
        u->state = UP_DATA354;
        upstream_set_read_timeout(u, u->cfg->upstream_data_timeout);
    }
    u->stream_off = 0;
    u->at_line_start = true;
    u->last_was_cr = false;
    if (u->state == UP_STREAM)
        upstream_pump(u);
}

void upstream_flush_queue(struct upstream_conn *u)
{
    while (u->queue_head && u->state == UP_READY) {
        struct queued_cmd *q = u->queue_head;
        if (q->message) {
            if (u->await_count > 0)
                return;
            u->queue_head = q->next;
            if (!u->queue_head)
                u->queue_tail = NULL;
            free(q);
            u->queued_client--;
            upstream_start_message(u);
            return;
        }
        if (!upstream_may_send(u))
            return;
        u->queue_head = q->next;
        if (!u->queue_head)
            u->queue_tail = NULL;
        upstream_write(u, q->line, q->len);
        upstream_await_push(u, AWAIT_CLIENT);
        u->queued_client--;
        free(q);
        upstream_set_read_timeout(u, u->cfg->upstream_command_timeout);
    }
}

static void upstream_enqueue(struct upstream_conn *u, struct queued_cmd *q)
{
    q->next = NULL;
    if (u->queue_tail)
        u->queue_tail->next = q;
    else
        u->queue_head = q;
    u->queue_tail = q;
    u->queued_client++;
    upstream_flush_queue(u);
}

void upstream_command(struct upstream_conn *u, const char *line, size_t len)
{
    struct queued_cmd *q = malloc(sizeof(*q) + len + 2);
    if (!q) {
        upstream_fail(u, "451 4.3.0 Error: out of memory");
        return;
    }
    q->message = false;
    memcpy(q->line, line, len);
    memcpy(q->line + len, "\r\n", 2);
    q->len = len + 2;
    if (len >= 4 && strncasecmp(line, "MAIL", 4) == 0)
        u->in_transaction = true;
    upstream_enqueue(u, q);
}

void upstream_message(struct upstream_conn *u, const struct msg_view *view, bool bdat)
{
    struct queued_cmd *q = malloc(sizeof(*q));
    if (!q) {
        upstream_fail(u, "451 4.3.0 Error: out of memory");
        return;
    }
    q->message = true;
    q->len = 0;
    u->view = *view;
    u->bdat = bdat;
    if (msg_view_flush(view) < 0) {
        free(q);
        upstream_fail(u, "451 4.3.0 Error: queue file write error");
        return;
    }
    upstream_enqueue(u, q);
}

/* ---- streaming the message ---- */

/*
 * Append chunk to out with dot-stuffing: a "." at the start of a line gets a
 * second one.  The store holds CRLF lines (the decoder made sure), so a line
 * starts after every LF.
 */
static void upstream_stuff(struct upstream_conn *u, struct evbuffer *out, const char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (u->at_line_start && p[i] == '.') {
            evbuffer_add(out, p + start, i - start);
            evbuffer_add(out, ".", 1);
            start = i;
        }
        u->at_line_start = false;
        const char *lf = memchr(p + i, '\n', n - i);
        if (!lf) {
            i = n;
            break;
        }
        i = (size_t)(lf - p);
        u->at_line_start = true;
    }
    evbuffer_add(out, p + start, n - start);
    if (n > 0)
        u->last_was_cr = p[n - 1] == '\r';
}

static void upstream_pump(struct upstream_conn *u)
{
    struct evbuffer *out = bufferevent_get_output(u->bev);
    uint64_t total = msg_view_size(&u->view);
    char buf[STREAM_CHUNK];

    while (evbuffer_get_length(out) < STREAM_HIGH && u->stream_off < total) {
        ssize_t n = msg_view_read(&u->view, u->stream_off, buf, sizeof(buf));
        if (n <= 0) {
            upstream_fail(u, "451 4.3.0 Error: queue file read error");
            return;
        }
        if (u->bdat)
            evbuffer_add(out, buf, (size_t)n);
        else
            upstream_stuff(u, out, buf, (size_t)n);
        u->stream_off += (uint64_t)n;
    }
    if (u->stream_off < total)
        return;

    if (!u->bdat) {
        /* A message that does not end in CRLF (possible after BDAT) still needs
         * the dot on a line of its own. */
        if (total > 0 && !u->at_line_start)
            evbuffer_add(out, u->last_was_cr ? "\n.\r\n" : "\r\n.\r\n", u->last_was_cr ? 4 : 5);
        else
            evbuffer_add(out, ".\r\n", 3);
    }
    u->state = UP_FINAL;
    upstream_set_read_timeout(u, u->cfg->upstream_final_timeout);
}

void upstream_write_cb(struct bufferevent *bev, void *arg)
{
    struct upstream_conn *u = arg;
    (void)bev;
    if (u->state == UP_STREAM)
        upstream_pump(u);
    upstream_settle(u);
}

/* ---- replies ---- */

static bool upstream_refusal(int code)
{
    return code / 100 == 4 || code / 100 == 5;
}

static void upstream_protocol_error(struct upstream_conn *u, const char *after)
{
    log_warn("upstream %s: reply %d after %s breaks the protocol; connection dropped", u->label,
             u->reply.code, after);
    upstream_fail(u, "451 4.4.2 Upstream protocol error");
}

/*
 * A reply while the message is still going out.  A refusal is the final
 * reply (the rest of the content still in flight makes the connection
 * unusable); anything else cannot be, since the upstream has not seen the
 * whole message: the client gets 451 and keeps its copy.
 */
static void upstream_early_reply(struct upstream_conn *u, int code)
{
    if (!upstream_refusal(code)) {
        upstream_protocol_error(u, "part of the message");
        return;
    }
    u->state = UP_READY;
    upstream_deliver(u);
    upstream_fail(u, "451 4.4.2 Upstream protocol error");
}

static void upstream_on_reply(struct upstream_conn *u)
{
    int code = u->reply.code;
    if (u->state < UP_READY) {
        upstream_hello_reply(u);
        return;
    }

    switch (u->state) {
    case UP_DATA354:
        if (code == 354) {
            u->state = UP_STREAM;
            upstream_set_read_timeout(u, 0);
            upstream_pump(u);
            return;
        }
        if (!upstream_refusal(code)) {
            /* Only 354 lets the message go on; a 2xx here is no final reply
             * (nothing was sent), so the client must keep its copy. */
            upstream_protocol_error(u, "DATA");
            return;
        }
        u->state = UP_READY;
        u->in_transaction = false;
        upstream_set_read_timeout(u, 0);
        upstream_deliver(u);
        return;
    case UP_STREAM:
        upstream_early_reply(u, code);
        return;
    case UP_FINAL:
        /* The dot is out only once the output is empty: a reply before that
         * answered part of the message. */
        if (evbuffer_get_length(bufferevent_get_output(u->bev)) > 0) {
            upstream_early_reply(u, code);
            return;
        }
        if (code / 100 != 2 && !upstream_refusal(code)) {
            upstream_protocol_error(u, "the end of data");
            return;
        }
        u->state = UP_READY;
        u->in_transaction = false;
        upstream_set_read_timeout(u, 0);
        upstream_deliver(u);
        if (u->state == UP_READY)
            upstream_flush_queue(u);
        return;
    case UP_READY:
        if (u->await_count == 0) {
            /* Unsolicited: a 421 before closing, typically. */
            upstream_fail(u, code == 421 ? "421 4.4.2 Upstream closed the connection"
                                         : "451 4.4.2 Upstream protocol error");
            return;
        }
        {
            enum await_kind k = u->await[u->await_head];
            u->await_head = (u->await_head + 1) % AWAIT_MAX;
            u->await_count--;
            if (u->await_count == 0)
                upstream_set_read_timeout(u, 0);
            if (k == AWAIT_CLIENT) {
                upstream_deliver(u);
                if (u->close_requested || u->state != UP_READY)
                    return;
            }
            upstream_flush_queue(u);
        }
        return;
    case UP_CLOSING:
        upstream_free(u);
        return;
    default:
        return;
    }
}

void upstream_read_cb(struct bufferevent *bev, void *arg)
{
    struct upstream_conn *u = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (u->state == UP_CLOSING) {
        /* The answer to our QUIT, or anything else: we are done. */
        upstream_free(u);
        return;
    }
    while (u->bev && u->state != UP_DEAD && !u->close_requested) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > SMTP_REPLY_MAX_BYTES) {
                if (u->state < UP_READY)
                    upstream_try_next(u, "over-long reply line");
                else
                    upstream_fail(u, "451 4.4.2 Upstream protocol error");
            }
            break;
        }
        enum smtp_reply_status st = smtp_reply_feed(&u->reply, line, len);
        free(line);
        if (st == SMTP_REPLY_ERROR) {
            if (u->state < UP_READY)
                upstream_try_next(u, "malformed reply");
            else
                upstream_fail(u, "451 4.4.2 Upstream protocol error");
            break;
        }
        if (st == SMTP_REPLY_MORE)
            continue;
        upstream_on_reply(u);
        if (u->state == UP_CLOSING)
            return;
        smtp_reply_reset(&u->reply);
        if (u->state == UP_TLS_HANDSHAKE)
            break; /* the socket now belongs to the TLS filter */
    }
    upstream_settle(u);
}

void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upstream_conn *u = arg;
    (void)bev;

    if ((what & BEV_EVENT_CONNECTED) && u->state == UP_TLS_HANDSHAKE) {
        upstream_tls_done(u);
        upstream_settle(u);
        return;
    }
    if (u->state == UP_TLS_HANDSHAKE) {
        char e[256];
        log_warn("upstream %s: TLS handshake failed: %s",
                 u->cfg->upstreams[u->order[u->candidate]].addr.text,
                 tls_bev_error(u->bev, e, sizeof(e)));
    }
    if (what & BEV_EVENT_CONNECTED) {
        upstream_hello_connected(u);
        return;
    }
    if (u->state == UP_CLOSING) {
        upstream_free(u);
        return;
    }
    const char *why = (what & BEV_EVENT_TIMEOUT) ? "timeout"
                      : (what & BEV_EVENT_EOF)   ? "connection closed"
                                                 : "connection error";
    if (u->state < UP_READY) {
        upstream_try_next(u, why);
    } else {
        log_warn("upstream %s: %s", u->label, why);
        upstream_fail(u, (what & BEV_EVENT_TIMEOUT) ? "451 4.4.2 Upstream timeout"
                                                    : "451 4.4.2 Upstream connection lost");
    }
    upstream_settle(u);
}

static void upstream_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_conn *u = arg;
    (void)fd;
    (void)what;
    if (u->state == UP_READY && u->in_transaction && u->await_count == 0 && !u->queue_head) {
        upstream_write(u, "NOOP\r\n", 6);
        upstream_await_push(u, AWAIT_INTERNAL);
        upstream_set_read_timeout(u, u->cfg->upstream_command_timeout);
    }
}

struct upstream_conn *upstream_new(struct event_base *base, struct sg_runtime *rt,
                                   const struct client_facts *facts,
                                   const struct sockaddr *client_sa,
                                   const struct sockaddr *local_sa,
                                   const struct upstream_events *ev, void *ctx)
{
    struct upstream_conn *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->base = base;
    u->rt = runtime_ref(rt);
    u->cfg = rt->cfg;
    u->ev = ev;
    u->ctx = ctx;
    smtp_reply_init(&u->reply);

    /* The facts' strings are copied: the session may change its HELO later. */
    const char *strs[] = {facts->addr, facts->name, facts->helo, facts->proto, facts->login};
    size_t total = 0;
    for (size_t i = 0; i < 5; i++)
        total += strs[i] ? strlen(strs[i]) + 1 : 0;
    u->facts_strings = malloc(total ? total : 1);
    if (!u->facts_strings) {
        runtime_unref(u->rt);
        free(u);
        return NULL;
    }
    char *w = u->facts_strings;
    const char *copies[5];
    for (size_t i = 0; i < 5; i++) {
        copies[i] = NULL;
        if (strs[i]) {
            size_t n = strlen(strs[i]) + 1;
            memcpy(w, strs[i], n);
            copies[i] = w;
            w += n;
        }
    }
    u->facts = *facts;
    u->facts.addr = copies[0];
    u->facts.name = copies[1];
    u->facts.helo = copies[2];
    u->facts.proto = copies[3];
    u->facts.login = copies[4];
    if (client_sa)
        memcpy(&u->client_sa, client_sa,
               client_sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in));
    if (local_sa)
        memcpy(&u->local_sa, local_sa,
               local_sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(struct sockaddr_in));

    /* Healthy upstreams first, in priority order; then the others, in case the
     * probe's view is stale. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < rt->cfg->nupstreams && u->norder < 64; i++)
            if (upstream_health_ok(rt->upstreams[i].health) == (pass == 0))
                u->order[u->norder++] = i;

    u->keepalive = event_new(base, -1, EV_PERSIST, upstream_keepalive_cb, u);
    if (u->keepalive) {
        struct timeval ka = {.tv_sec = KEEPALIVE_SECONDS};
        event_add(u->keepalive, &ka);
    }
    snprintf(u->label, sizeof(u->label), "(connecting)");
    u->candidate = 0;
    u->state = UP_CONNECTING;
    u->start = evtimer_new(base, upstream_hello_start_cb, u);
    if (!u->start) {
        upstream_free(u);
        return NULL;
    }
    event_active(u->start, EV_TIMEOUT, 0);
    return u;
}

unsigned upstream_caps(const struct upstream_conn *u)
{
    return u->state >= UP_READY && u->state < UP_CLOSING ? u->caps : 0;
}

bool upstream_ready(const struct upstream_conn *u)
{
    return u->state >= UP_READY && u->state < UP_CLOSING;
}

const char *upstream_label(const struct upstream_conn *u)
{
    return u->label;
}

struct upstream_health *upstream_health_of(const struct upstream_conn *u)
{
    if (!u || u->candidate >= u->norder)
        return NULL;
    return u->rt->upstreams[u->order[u->candidate]].health;
}

unsigned upstream_pending(const struct upstream_conn *u)
{
    unsigned n = u->queued_client;
    for (unsigned i = 0; i < u->await_count; i++)
        if (u->await[(u->await_head + i) % AWAIT_MAX] == AWAIT_CLIENT)
            n++;
    if (u->state == UP_DATA354 || u->state == UP_STREAM || u->state == UP_FINAL)
        n++;
    return n;
}

void upstream_discard_closing(void)
{
    while (upstream_closing)
        upstream_free(upstream_closing);
}

static void upstream_free(struct upstream_conn *u)
{
    if (u->state == UP_CLOSING) {
        if (u->closing_prev)
            u->closing_prev->closing_next = u->closing_next;
        else
            upstream_closing = u->closing_next;
        if (u->closing_next)
            u->closing_next->closing_prev = u->closing_prev;
    }
    if (u->bev)
        bufferevent_free(u->bev);
    if (u->keepalive)
        event_free(u->keepalive);
    if (u->start)
        event_free(u->start);
    while (u->queue_head) {
        struct queued_cmd *q = u->queue_head;
        u->queue_head = q->next;
        free(q);
    }
    smtp_reply_free(&u->reply);
    free(u->xclient);
    free(u->facts_strings);
    runtime_unref(u->rt);
    free(u);
}

void upstream_close(struct upstream_conn *u)
{
    if (!u || u->close_requested)
        return;
    u->close_requested = true;
    if (u->state == UP_READY && u->await_count == 0 && u->bev && !u->in_callback) {
        /* Say goodbye and let the upstream close; its reply, EOF or a short
         * timeout frees the connection. */
        upstream_write(u, "QUIT\r\n", 6);
        u->state = UP_CLOSING;
        u->closing_next = upstream_closing;
        u->closing_prev = NULL;
        if (upstream_closing)
            upstream_closing->closing_prev = u;
        upstream_closing = u;
        struct timeval t = {.tv_sec = 10};
        bufferevent_set_timeouts(u->bev, &t, &t);
        return;
    }
    upstream_settle(u);
}
