/*
 * upstream_hello - the steps before an upstream connection is ready: connect
 * to the next candidate, the PROXY v2 header, the greeting, EHLO, STARTTLS
 * towards the upstream (listener.h: upstream tls), XCLIENT and the second
 * EHLO it requires.  A failure at any step moves on to the next candidate
 * (upstream_try_next); at the end of the list the session gets one
 * on_failure() with a 4xx.  Then upstream.c relays the transaction.
 *
 * Diagnostics: each step's failure is logged with the candidate's address,
 * and a missing XCLIENT or STARTTLS that the config requires says which
 * setting to look at.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/esmtp.h"
#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "daemon/upstream_int.h"
#include "daemon/upstream_pool.h"
#include "util/log.h"

static bool upstream_tls_begin(struct upstream_conn *u);
static void upstream_tls_wrap(struct upstream_conn *u);
static void upstream_connect_candidate(struct upstream_conn *u);

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
    if (next == UP_EHLO2 && u->facts.helo && strlen(u->facts.helo) <= UPSTREAM_EHLO_NAME_MAX)
        name = u->facts.helo;
    char line[sizeof("EHLO \r\n") + UPSTREAM_EHLO_NAME_MAX];
    int n = snprintf(line, sizeof(line), "EHLO %s\r\n", name);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        /* Only our own name can be this long: no EHLO can be said with it. */
        upstream_try_next(u, "hostname too long for EHLO");
        return;
    }
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

static void upstream_after_ehlo(struct upstream_conn *u)
{
    smtp_ehlo_caps(u->reply.text, u->reply.text_len, &u->ehlo);
    u->caps = u->ehlo.caps;

    if (u->state != UP_EHLO2 &&
        upstream_identity_refused(u->cfg, u->cfg->upstreams[u->order[u->candidate]].addr.text,
                                  upstream_xclient_offered(u->caps, u->ehlo.xclient_attrs))) {
        upstream_try_next(u, "client_identity none towards an upstream that takes XCLIENT");
        return;
    }
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
    if (!smtp_ehlo_word(u->ehlo.xclient_attrs, "ADDR")) {
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

void upstream_tls_done(struct upstream_conn *u)
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
void upstream_hello_start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct upstream_conn *u = arg;
    upstream_connect_candidate(u);
    upstream_settle(u);
}

void upstream_try_next(struct upstream_conn *u, const char *why)
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

/* A reply before the connection is ready: the greeting, EHLO, STARTTLS and
 * XCLIENT steps. */
void upstream_hello_reply(struct upstream_conn *u)
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
        /* Postfix says 220, others 250: any 2xx took the attributes. */
        if (code / 100 != 2) {
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
    default:
        return;
    }
}

/* The TCP connection is up: the PROXY header when it carries the client's
 * identity, then the greeting is awaited. */
void upstream_hello_connected(struct upstream_conn *u)
{
    /* Commands are small and each waits for its reply: no Nagle delay. */
    int one = 1;
    setsockopt(bufferevent_getfd(u->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (u->cfg->identity == IDENTITY_PROXY) {
        uint8_t hdr[240];
        size_t n =
            proxy_v2_build((struct sockaddr *)&u->client_sa, (struct sockaddr *)&u->local_sa, hdr);
        upstream_write(u, (const char *)hdr, n);
    }
    u->state = UP_GREETING;
    upstream_set_read_timeout(u, u->cfg->upstream_greeting_timeout);
}
