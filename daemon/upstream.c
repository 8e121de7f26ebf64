/*
 * upstream - client side of SMTP towards the upstream MTA, one per session.
 *
 * State machine: CONNECTING -> GREETING -> EHLO -> [XCLIENT... -> EHLO2] ->
 * READY, and from READY the message steps DATA354 -> STREAM -> FINAL.  Any
 * failure before READY moves on to the next upstream candidate; a failure after
 * it ends the connection with one on_failure() to the session.
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
#include "daemon/upstream_pool.h"

enum up_state {
    UP_CONNECTING,
    UP_GREETING,
    UP_EHLO,
    UP_STARTTLS, /* STARTTLS sent (listener.h: upstream tls) */
    UP_TLS_HANDSHAKE,
    UP_XCLIENT,
    UP_EHLO2,
    UP_READY,
    UP_DATA354,
    UP_STREAM,
    UP_FINAL,
    UP_CLOSING,
    UP_DEAD,
};

enum await_kind { AWAIT_CLIENT, AWAIT_INTERNAL };

struct queued_cmd {
    struct queued_cmd *next;
    bool message; /* the DATA/BDAT step rather than a command line */
    size_t len;
    char line[]; /* with CRLF */
};

#define AWAIT_MAX         512
#define STREAM_CHUNK      (64 * 1024)
#define STREAM_HIGH       (256 * 1024)
#define KEEPALIVE_SECONDS 60

struct upstream_conn {
    struct upstream_conn *closing_next, *closing_prev;
    struct event_base *base;
    struct sg_runtime *rt;       /* held: the settings, TLS contexts and health in force */
    const struct sg_config *cfg; /* rt->cfg */
    const struct upstream_events *ev;
    void *ctx;

    struct client_facts facts;
    char *facts_strings; /* owns the strings facts points to */
    struct sockaddr_storage client_sa;
    struct sockaddr_storage local_sa;

    size_t candidate; /* index into order[] */
    size_t order[64];
    size_t norder;

    struct bufferevent *bev;
    struct event *keepalive;
    struct event *start;
    enum up_state state;
    struct smtp_reply reply;
    unsigned caps;
    struct smtp_ehlo_caps ehlo;
    char label[128];

    char *xclient; /* remaining XCLIENT lines */
    size_t xclient_off;
    size_t xclient_len;

    struct queued_cmd *queue_head, *queue_tail;
    unsigned queued_client;         /* client commands in the queue */
    unsigned char await[AWAIT_MAX]; /* ring of enum await_kind */
    unsigned await_head, await_count;

    struct msg_view view; /* message being sent */
    bool bdat;
    uint64_t stream_off;
    bool at_line_start;
    bool last_was_cr;

    bool in_callback;
    bool close_requested;
    bool in_transaction; /* MAIL sent and no end yet: keep-alive applies */

    bool tls_on;       /* this candidate's connection is under TLS */
    bool tls_declined; /* opportunistic: STARTTLS refused, go on in plaintext */
};

/* Connections saying QUIT after their session is gone: owned by nobody but
 * this thread's list, so a worker ending its loop can free them. */
static __thread struct upstream_conn *upstream_closing;

static void upstream_try_next(struct upstream_conn *u, const char *why);
static bool upstream_tls_begin(struct upstream_conn *u);
static void upstream_tls_wrap(struct upstream_conn *u);
static void upstream_tls_done(struct upstream_conn *u);
static void upstream_pump(struct upstream_conn *u);
static void upstream_free(struct upstream_conn *u);

/* End of every event callback: free the connection if the session let go of
 * it meanwhile.  Returns true when u is gone. */
static bool upstream_settle(struct upstream_conn *u)
{
    if (u->close_requested && !u->in_callback && u->state != UP_CLOSING) {
        upstream_free(u);
        return true;
    }
    return false;
}

static void upstream_set_read_timeout(struct upstream_conn *u, unsigned seconds)
{
    struct timeval rt = {.tv_sec = seconds};
    struct timeval wt = {.tv_sec = u->cfg->upstream_data_timeout};
    bufferevent_set_timeouts(u->bev, seconds ? &rt : NULL, &wt);
}

static void upstream_write(struct upstream_conn *u, const char *bytes, size_t len)
{
    evbuffer_add(bufferevent_get_output(u->bev), bytes, len);
}

/* Deliver the end of the connection to the session, once. */
static void upstream_fail(struct upstream_conn *u, const char *reply)
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

static void upstream_flush_queue(struct upstream_conn *u)
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

static void upstream_write_cb(struct bufferevent *bev, void *arg)
{
    struct upstream_conn *u = arg;
    (void)bev;
    if (u->state == UP_STREAM)
        upstream_pump(u);
    upstream_settle(u);
}

/* ---- replies ---- */

static void upstream_become_ready(struct upstream_conn *u)
{
    u->state = UP_READY;
    snprintf(u->label, sizeof(u->label), "%s[%s]", u->cfg->upstreams[u->order[u->candidate]].name,
             u->cfg->upstreams[u->order[u->candidate]].addr.text);
    upstream_set_read_timeout(u, 0);
    upstream_flush_queue(u);
}

static void upstream_send_ehlo(struct upstream_conn *u, enum up_state next)
{
    /* After XCLIENT the upstream takes this EHLO's argument as the client's
     * HELO name, so it must be the client's own, not ours. */
    const char *name = u->cfg->hostname;
    if (next == UP_EHLO2 && u->facts.helo && strlen(u->facts.helo) <= 255)
        name = u->facts.helo;
    char line[300];
    int n = snprintf(line, sizeof(line), "EHLO %s\r\n", name);
    upstream_write(u, line, (size_t)n);
    u->state = next;
    upstream_set_read_timeout(u, u->cfg->upstream_command_timeout);
}

static void upstream_send_next_xclient(struct upstream_conn *u)
{
    const char *p = u->xclient + u->xclient_off;
    const char *eol = memchr(p, '\n', u->xclient_len - u->xclient_off);
    size_t n = eol ? (size_t)(eol - p) + 1 : u->xclient_len - u->xclient_off;
    upstream_write(u, p, n);
    u->xclient_off += n;
    u->state = UP_XCLIENT;
    upstream_set_read_timeout(u, u->cfg->upstream_command_timeout);
}

static bool upstream_attr_announced(const char *attrs, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = attrs; *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && strncasecmp(p, name, n) == 0)
            return true;
        p += w;
        p += strspn(p, " ");
    }
    return false;
}

static void upstream_after_ehlo(struct upstream_conn *u)
{
    smtp_ehlo_caps(u->reply.text, u->reply.text_len, &u->ehlo);
    u->caps = u->ehlo.caps;

    if (u->state == UP_EHLO2 || u->cfg->identity != IDENTITY_XCLIENT) {
        upstream_become_ready(u);
        return;
    }
    if (!(u->caps & ESMTP_CAP_XCLIENT)) {
        /* Forwarding without the real client's identity would make every client
         * look like smtpgate to the upstream's relay checks: refuse instead. */
        log_err("upstream %s does not offer XCLIENT (client_identity = xclient): "
                "set smtpd_authorized_xclient_hosts on it, or choose another client_identity",
                u->cfg->upstreams[u->order[u->candidate]].addr.text);
        upstream_try_next(u, "upstream does not offer XCLIENT");
        return;
    }
    if (!upstream_attr_announced(u->ehlo.xclient_attrs, "ADDR")) {
        log_err("upstream %s offers XCLIENT without ADDR: it would judge every client as "
                "smtpgate's own address",
                u->cfg->upstreams[u->order[u->candidate]].addr.text);
        upstream_try_next(u, "XCLIENT without ADDR");
        return;
    }
    free(u->xclient);
    u->xclient = NULL;
    unsigned ncmds = 0;
    size_t len = xclient_build(&u->facts, u->ehlo.xclient_attrs, &u->xclient, &ncmds);
    if (len == (size_t)-1 || ncmds == 0) {
        upstream_try_next(u, "cannot build XCLIENT");
        return;
    }
    u->xclient_len = len;
    u->xclient_off = 0;
    upstream_send_next_xclient(u);
}

static void upstream_on_reply(struct upstream_conn *u)
{
    int code = u->reply.code;

    switch (u->state) {
    case UP_GREETING:
        if (code / 100 != 2) {
            upstream_try_next(u, "greeting not 2xx");
            return;
        }
        upstream_send_ehlo(u, UP_EHLO);
        return;
    case UP_EHLO:
    case UP_EHLO2:
        if (code != 250) {
            upstream_try_next(u, "EHLO refused");
            return;
        }
        if (u->state == UP_EHLO && upstream_tls_begin(u))
            return;
        upstream_after_ehlo(u);
        return;
    case UP_STARTTLS:
        if (code != 220) {
            if (u->cfg->upstreams[u->order[u->candidate]].tls.mode == UPSTREAM_TLS_REQUIRED) {
                upstream_try_next(u, "STARTTLS refused and TLS is required");
                return;
            }
            /* Opportunistic: learn the plaintext capabilities again. */
            u->tls_declined = true;
            upstream_send_ehlo(u, UP_EHLO);
            return;
        }
        upstream_tls_wrap(u);
        return;
    case UP_XCLIENT:
        if (code != 220) {
            log_err("upstream %s refused XCLIENT: %d %s (is smtpgate listed in "
                    "smtpd_authorized_xclient_hosts?)",
                    u->cfg->upstreams[u->order[u->candidate]].addr.text, code, u->reply.text);
            upstream_try_next(u, "XCLIENT refused");
            return;
        }
        if (u->xclient_off < u->xclient_len)
            upstream_send_next_xclient(u);
        else
            upstream_send_ehlo(u, UP_EHLO2);
        return;
    case UP_DATA354:
        if (code != 354) {
            u->state = UP_READY;
            u->in_transaction = false;
            upstream_set_read_timeout(u, 0);
            upstream_deliver(u);
            return;
        }
        u->state = UP_STREAM;
        upstream_set_read_timeout(u, 0);
        upstream_pump(u);
        return;
    case UP_STREAM:
        /* Refused before we finished writing: that is the final reply, and the
         * rest of the content still in flight makes the connection unusable. */
        u->state = UP_READY;
        upstream_deliver(u);
        upstream_fail(u, "451 4.4.2 Upstream protocol error");
        return;
    case UP_FINAL:
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

static void upstream_read_cb(struct bufferevent *bev, void *arg)
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
            if (evbuffer_get_length(in) > SMTP_REPLY_MAX_BYTES)
                upstream_fail(u, "451 4.4.2 Upstream protocol error");
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

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
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
        /* Commands are small and each waits for its reply: no Nagle delay. */
        int one = 1;
        setsockopt(bufferevent_getfd(u->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (u->cfg->identity == IDENTITY_PROXY) {
            uint8_t hdr[240];
            size_t n = proxy_v2_build((struct sockaddr *)&u->client_sa,
                                      (struct sockaddr *)&u->local_sa, hdr);
            upstream_write(u, (const char *)hdr, n);
        }
        u->state = UP_GREETING;
        upstream_set_read_timeout(u, u->cfg->upstream_greeting_timeout);
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

/* ---- TLS towards the upstream ---- */

/*
 * After the first EHLO: STARTTLS when this upstream wants TLS and it is not on
 * yet.  Required TLS that the upstream does not offer moves on to the next
 * candidate (and at the end to 4xx for the client), never to plaintext.
 * Returns true when the EHLO reply has been dealt with here.
 */
static bool upstream_tls_begin(struct upstream_conn *u)
{
    const struct sg_upstream_cfg *uc = &u->cfg->upstreams[u->order[u->candidate]];
    const struct tls_client *tls = u->rt->upstreams[u->order[u->candidate]].tls;
    if (uc->tls.mode == UPSTREAM_TLS_NONE || u->tls_on || u->tls_declined || !tls)
        return false;
    struct smtp_ehlo_caps ec;
    smtp_ehlo_caps(u->reply.text, u->reply.text_len, &ec);
    if (!(ec.caps & ESMTP_CAP_STARTTLS)) {
        if (uc->tls.mode == UPSTREAM_TLS_REQUIRED) {
            log_err("upstream %s does not offer STARTTLS and its tls = \"required\"",
                    uc->addr.text);
            upstream_try_next(u, "STARTTLS not offered and TLS is required");
            return true;
        }
        return false;
    }
    upstream_write(u, "STARTTLS\r\n", 10);
    u->state = UP_STARTTLS;
    upstream_set_read_timeout(u, u->cfg->upstream_command_timeout);
    return true;
}

static void upstream_tls_wrap(struct upstream_conn *u)
{
    const struct sg_upstream_cfg *uc = &u->cfg->upstreams[u->order[u->candidate]];
    /* Anything after the 220 came before the handshake: it is not from the
     * TLS peer, and is discarded unread (the CVE-2011-0411 class, reversed). */
    struct evbuffer *in = bufferevent_get_input(u->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        log_warn("upstream %s: %zu octets after the 220 to STARTTLS discarded", uc->addr.text,
                 junk);
        evbuffer_drain(in, junk);
    }
    SSL *ssl = tls_client_ssl(u->rt->upstreams[u->order[u->candidate]].tls, uc->tls.verify_name,
                              uc->tls.verify_name);
    if (!ssl) {
        upstream_try_next(u, "cannot set up TLS");
        return;
    }
    bufferevent_set_timeouts(u->bev, NULL, NULL);
    struct bufferevent *f = bufferevent_openssl_filter_new(
        u->base, u->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!f) {
        SSL_free(ssl);
        upstream_try_next(u, "cannot set up TLS");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
    u->bev = f;
    u->state = UP_TLS_HANDSHAKE;
    bufferevent_setcb(u->bev, upstream_read_cb, upstream_write_cb, upstream_event_cb, u);
    bufferevent_setwatermark(u->bev, EV_WRITE, STREAM_HIGH / 4, 0);
    upstream_set_read_timeout(u, u->cfg->upstream_greeting_timeout);
    bufferevent_enable(u->bev, EV_READ | EV_WRITE);
}

static void upstream_tls_done(struct upstream_conn *u)
{
    const struct sg_upstream_cfg *uc = &u->cfg->upstreams[u->order[u->candidate]];
    SSL *ssl = bufferevent_openssl_get_ssl(u->bev);
    struct tls_facts f;
    if (ssl) {
        tls_facts_collect(ssl, &f);
        log_info("upstream %s: TLS established: %s cipher=%s%s", uc->addr.text, f.version, f.cipher,
                 uc->tls.mode == UPSTREAM_TLS_REQUIRED ? " verified" : " (not verified)");
    }
    u->tls_on = true;
    /* RFC 3207: everything learned before TLS is forgotten; ask again. */
    upstream_send_ehlo(u, UP_EHLO);
}

/* ---- candidates ---- */

static void upstream_connect_candidate(struct upstream_conn *u)
{
    const struct sg_upstream_cfg *uc = &u->cfg->upstreams[u->order[u->candidate]];

    smtp_reply_reset(&u->reply);
    u->caps = 0;
    u->tls_on = false;
    u->tls_declined = false;
    u->state = UP_CONNECTING;
    u->bev = bufferevent_socket_new(u->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!u->bev) {
        upstream_try_next(u, "out of memory");
        return;
    }
    bufferevent_setcb(u->bev, upstream_read_cb, upstream_write_cb, upstream_event_cb, u);
    bufferevent_setwatermark(u->bev, EV_WRITE, STREAM_HIGH / 4, 0);
    struct timeval ct = {.tv_sec = u->cfg->upstream_connect_timeout};
    bufferevent_set_timeouts(u->bev, &ct, &ct);
    bufferevent_enable(u->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(u->bev, (const struct sockaddr *)&uc->addr.sa,
                                   (int)uc->addr.len) < 0)
        upstream_try_next(u, "connect failed");
}

/* Connecting starts from the event loop, never inside upstream_new(): a failure
 * must not call back into a session that has not stored the connection yet. */
static void upstream_start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct upstream_conn *u = arg;
    upstream_connect_candidate(u);
    upstream_settle(u);
}

static void upstream_try_next(struct upstream_conn *u, const char *why)
{
    if (u->bev) {
        log_warn("upstream %s: %s", u->cfg->upstreams[u->order[u->candidate]].addr.text, why);
        upstream_health_report(u->rt->upstreams[u->order[u->candidate]].health, false);
        bufferevent_free(u->bev);
        u->bev = NULL;
        u->candidate++;
    }
    if (u->candidate >= u->norder) {
        upstream_fail(u, "451 4.4.1 No upstream server available, try again later");
        return;
    }
    upstream_connect_candidate(u);
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
    u->start = evtimer_new(base, upstream_start_cb, u);
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
