/*
 * session_edge - what the session does at the edge of the connection: TLS
 * (STARTTLS and implicit TLS, the listener's require_tls policy) and AUTH,
 * relayed to the upstream (RFC 3207, 4954).
 *
 * STARTTLS and AUTH are rows of the command table (session_cmd.c).  An AUTH
 * exchange puts the session in SESSION_AUTH: each client line is a response,
 * sent on as it is (it is the upstream's to judge), until the upstream's 235
 * or a failure.  A failure's reply is held back auth_failure_delay seconds,
 * and auth_max_failures of them close the connection.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/listener.h"
#include "daemon/session.h"
#include "daemon/session_int.h"
#include "daemon/tls.h"
#include "daemon/upstream.h"
#include "daemon/upstream_pool.h"
#include "util/log.h"

static bool session_auth_allowed(const struct session *s)
{
    return s->edge.listener->auth && (s->edge.tls || s->edge.listener->auth_plaintext);
}

/* RFC 4954 4: an AUTH command with its initial response may be longer than
 * other commands (OAuth tokens are); everything else keeps max_line_length. */
size_t session_line_limit(const struct session *s, struct evbuffer *in)
{
    size_t limit = s->cfg->max_line_length;
    size_t auth_limit = s->edge.listener->auth_max_line_length + 2;
    char head[5];
    if (session_auth_allowed(s) && auth_limit > limit &&
        evbuffer_copyout(in, head, sizeof(head)) == (ev_ssize_t)sizeof(head) &&
        strncasecmp(head, "AUTH ", sizeof(head)) == 0)
        limit = auth_limit;
    return limit;
}

/* Mechanisms shown: the listener's list, or what the upstreams offer. */
static unsigned session_auth_mechs(const struct session *s)
{
    return s->edge.listener->auth_mechs ? s->edge.listener->auth_mechs
                                        : upstream_pool_auth_mechs(s->rt);
}

void session_edge_ehlo(struct session *s, struct session_text *t)
{
    const struct sg_listener *l = s->edge.listener;
    if (l->tls == LISTENER_TLS_STARTTLS && runtime_listener_tls(s->rt, l) && !s->edge.tls)
        session_text_add(t, "250-STARTTLS\r\n");
    unsigned mechs = session_auth_mechs(s);
    if (session_auth_allowed(s) && mechs) {
        char names[200];
        auth_mechs_format(mechs, names, sizeof(names));
        session_text_add(t, "250-AUTH %s\r\n", names);
        /* MAIL FROM's AUTH= parameter (RFC 4954 5) goes with the extension. */
        s->client.caps |= ESMTP_CAP_AUTH;
    }
}

const char *session_edge_refusal(const struct session *s, enum smtp_verb verb)
{
    if (s->edge.tls)
        return NULL;
    const struct sg_listener *l = s->edge.listener;
    if (verb == SMTP_VERB_MAIL && l->require_tls == REQUIRE_TLS_MAIL)
        return "530 5.7.0 Must issue a STARTTLS command first";
    if (verb == SMTP_VERB_AUTH && l->require_tls != REQUIRE_TLS_NONE)
        return "530 5.7.0 Must issue a STARTTLS command first";
    return NULL;
}

/* ---- TLS ---- */

void session_tls_established(struct session *s)
{
    if (s->wait.kind != WAIT_TLS)
        return;
    s->wait.kind = WAIT_NONE;
    SSL *ssl = bufferevent_openssl_get_ssl(s->io.bev);
    struct tls_facts *f = malloc(sizeof(*f));
    if (!ssl || !f) {
        free(f);
        session_close_with(s, "421 4.3.0 Error: out of memory");
        return;
    }
    tls_facts_collect(ssl, f);
    session_metrics_tls(session_metrics_listener(s->cfg, s->edge.listener), f->version);
    free(s->edge.tls);
    s->edge.tls = f;
    if (s->chain)
        chain_set_tls(s->chain, f->version, f->cipher, f->sni[0] ? f->sni : NULL,
                      f->peer_subject[0] ? f->peer_subject : NULL,
                      f->peer_fingerprint[0] ? f->peer_fingerprint : NULL);
    if (s->state == SESSION_CONNECTED)
        session_greet_ready(s); /* implicit TLS: the handshake came first */
    log_info("%s: TLS established from %s: %s cipher=%s sni=%s%s ccert=%s%s%s", s->id, s->addr,
             f->version, f->cipher, f->sni[0] ? f->sni : "-", f->resumed ? " resumed" : "",
             f->peer_fingerprint[0] ? f->peer_fingerprint : "-",
             f->peer_subject[0] ? " subject=" : "", f->peer_subject);
    session_process(s);
}

/* A bufferevent for a new connection: TLS from the first octet on an
 * implicit-TLS listener, plain otherwise. */
struct bufferevent *session_edge_bev(struct session *s, evutil_socket_t fd)
{
    const struct sg_listener *l = s->edge.listener;
    if (l->tls != LISTENER_TLS_IMPLICIT || !runtime_listener_tls(s->rt, l))
        return bufferevent_socket_new(s->host->base, fd, BEV_OPT_CLOSE_ON_FREE);
    SSL *ssl = tls_server_ssl(runtime_listener_tls(s->rt, l));
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        s->host->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev) {
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        s->wait.kind = WAIT_TLS;
    }
    return bev;
}

/* RFC 3207 4.2: after the handshake the session starts over, knowing nothing
 * the client said before it. */
static void session_tls_forget(struct session *s)
{
    if (session_tx_open(s))
        session_abort_upstream_tx(s);
    session_tx_reset(s);
    free(s->client.helo);
    s->client.helo = NULL;
    s->client.esmtp = false;
    s->client.caps = 0;
    s->client.size_limit = 0;
    s->state = SESSION_GREETED;
    free(s->edge.login);
    s->edge.login = NULL;
    if (s->chain)
        chain_set_login(s->chain, NULL);
    s->edge.authenticated = false;
    s->edge.auth_guess[0] = '\0';
    if (s->up) {
        /* The upstream heard the old HELO (and XCLIENT): a new connection
         * will carry what the client says over TLS. */
        upstream_close(s->up);
        s->up = NULL;
    }
}

enum session_check session_check_starttls(struct session *s, struct session_args *a)
{
    const struct sg_listener *l = s->edge.listener;
    if (l->tls != LISTENER_TLS_STARTTLS || !runtime_listener_tls(s->rt, l)) {
        session_reply(s, "502 5.5.1 Error: command not implemented");
        return CHECK_FAIL;
    }
    if (s->edge.tls) {
        session_reply(s, "554 5.5.1 Error: TLS already active");
        return CHECK_FAIL;
    }
    if (a->cmd.arg_len > 0) {
        session_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return CHECK_FAIL;
    }
    return CHECK_OK;
}

void session_do_starttls(struct session *s, struct session_args *a)
{
    SSL *ssl = tls_server_ssl(runtime_listener_tls(s->rt, s->edge.listener));
    if (!ssl) {
        session_reply(s, "454 4.7.0 TLS not available due to temporary reason");
        return;
    }
    session_reply(s, "220 2.0.0 Ready to start TLS");
    if (s->io.rq_head) {
        /* Cannot happen behind the barrier; never wrap with replies owed. */
        SSL_free(ssl);
        session_close_with(s, "421 4.3.0 Error: internal error");
        return;
    }
    /* Whatever the client sent after STARTTLS in plaintext is discarded, never
     * executed over TLS (CVE-2011-0411). */
    struct evbuffer *in = bufferevent_get_input(s->io.bev);
    size_t junk = evbuffer_get_length(in);
    evbuffer_drain(in, junk);
    if (junk > a->len + 2)
        log_info("%s: discarded %zu octets pipelined after STARTTLS from %s", s->id,
                 junk - a->len - 2, s->addr);
    /* The socket keeps only a write timeout; reads are timed on the TLS side. */
    struct timeval wt = {.tv_sec = s->cfg->command_timeout};
    bufferevent_set_timeouts(s->io.bev, NULL, &wt);
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        s->host->base, s->io.bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!tls) {
        SSL_free(ssl);
        s->io.closing = true;
        bufferevent_disable(s->io.bev, EV_READ);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    s->io.bev = tls;
    s->wait.kind = WAIT_TLS;
    session_set_callbacks(s);
    session_set_read_timeout(s, s->cfg->command_timeout);
    bufferevent_enable(s->io.bev, EV_READ | EV_WRITE);
    session_tls_forget(s);
}

/* ---- AUTH ---- */

/* The exchange is over (its end, or the upstream is gone). */
void session_auth_end(struct session *s)
{
    if (s->wait.kind == WAIT_AUTH)
        s->wait.kind = WAIT_NONE;
    if (s->state == SESSION_AUTH)
        s->state = session_idle_state(s);
}

static void session_auth_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)fd;
    (void)what;
    struct session_edge *e = &s->edge;
    event_free(e->auth_delay_ev);
    e->auth_delay_ev = NULL;
    session_slot_fill(s, e->auth_delay_slot, e->auth_delay_text, e->auth_delay_len, true);
    e->auth_delay_slot = NULL;
    e->auth_delay_text = NULL;
    if (s->wait.kind == WAIT_AUTH)
        s->wait.kind = WAIT_NONE;
    session_flush(s);
    if (e->auth_failures >= e->listener->auth_max_failures) {
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
bool session_auth_reply(struct session *s, struct reply_slot *slot, const struct smtp_reply *r)
{
    struct session_edge *e = &s->edge;
    char mech[32];
    auth_mechs_format(e->auth_mech, mech, sizeof(mech));
    if (r->code == 334) {
        if (s->wait.kind == WAIT_AUTH)
            s->wait.kind = WAIT_NONE;
        e->auth_step++;
        return true;
    }
    session_auth_end(s);
    if (r->code == 235) {
        e->authenticated = true;
        free(e->login);
        e->login = e->auth_guess[0] ? strdup(e->auth_guess) : NULL;
        if (s->chain)
            chain_set_login(s->chain, e->login);
        log_info("%s: AUTH %s accepted for %s login=%s", s->id, mech, s->addr,
                 e->login ? e->login : "(not known)");
        return true;
    }
    e->auth_failures++;
    log_info("%s: AUTH %s failed for %s login=%s: %d (%u of %u)", s->id, mech, s->addr,
             e->auth_guess[0] ? e->auth_guess : "(not known)", r->code, e->auth_failures,
             e->listener->auth_max_failures);
    e->auth_guess[0] = '\0';
    if (!slot)
        return true;
    size_t len;
    char *text = session_format_reply(r, &len);
    unsigned delay = e->listener->auth_failure_delay;
    if (text && delay > 0) {
        e->auth_delay_ev = evtimer_new(s->host->base, session_auth_delay_cb, s);
        if (e->auth_delay_ev) {
            e->auth_delay_slot = slot;
            e->auth_delay_text = text;
            e->auth_delay_len = len;
            s->wait.kind = WAIT_AUTH; /* nothing more is read until the reply is out */
            struct timeval t = {.tv_sec = delay};
            evtimer_add(e->auth_delay_ev, &t);
            return false;
        }
    }
    free(text);
    if (e->auth_failures >= e->listener->auth_max_failures) {
        /* Queued behind the failure's own slot, which the caller fills. */
        log_info("%s: too many failed AUTH attempts from %s", s->id, s->addr);
        session_close_with(s, "421 4.7.0 Error: too many failed authentication attempts");
    }
    return true;
}

/* One response line of the exchange, sent on as it is (it is the upstream's
 * to judge); "*", or a line that is not base64, cancels.  False when the
 * line is not all there yet. */
bool session_auth_feed(struct session *s)
{
    struct session_edge *e = &s->edge;
    struct evbuffer *in = bufferevent_get_input(s->io.bev);
    size_t max = e->listener->auth_max_line_length;
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0) {
        size_t have = evbuffer_get_length(in);
        if (have <= max + 2)
            return false;
        /* Too long: the rest of the line is dropped, the exchange cancelled. */
        evbuffer_drain(in, have);
        s->io.discard_line = true;
        session_forward(s, EXPECT_AUTH, "*", 1);
        s->wait.kind = WAIT_AUTH;
        return true;
    }
    size_t line_len = (size_t)eol.pos;
    const char *line = (const char *)evbuffer_pullup(in, (ssize_t)(line_len + eol_len));
    if (!line)
        return false;
    if (auth_response_check(line, line_len, max) != AUTH_OK) {
        session_forward(s, EXPECT_AUTH, "*", 1);
    } else {
        if (!e->auth_guess[0])
            auth_login_guess(e->auth_mech, e->auth_step, line, line_len, e->auth_guess,
                             sizeof(e->auth_guess));
        session_forward(s, EXPECT_AUTH, line, line_len);
    }
    evbuffer_drain(in, line_len + eol_len);
    s->wait.kind = WAIT_AUTH;
    return true;
}

enum session_check session_check_auth(struct session *s, struct session_args *a)
{
    const struct sg_listener *l = s->edge.listener;
    if (!l->auth || !session_auth_mechs(s)) {
        session_reply(s, "503 5.5.1 Error: authentication not enabled");
        return CHECK_FAIL;
    }
    if (!session_auth_allowed(s)) {
        session_reply(s, l->tls == LISTENER_TLS_STARTTLS
                             ? "538 5.7.11 Encryption required for requested authentication "
                               "mechanism"
                             : "503 5.5.1 Error: authentication not enabled");
        return CHECK_FAIL;
    }
    if (s->edge.authenticated) {
        session_reply(s, "503 5.5.1 Error: already authenticated");
        return CHECK_FAIL;
    }
    struct auth_cmd ac;
    enum auth_status st = auth_cmd_parse(a->cmd.arg, a->cmd.arg_len, &ac);
    if (st == AUTH_OK && !(ac.mech & session_auth_mechs(s)))
        st = AUTH_UNKNOWN_MECH;
    if (st != AUTH_OK) {
        session_reply(s, auth_status_reply(st));
        return CHECK_FAIL;
    }
    struct session_edge *e = &s->edge;
    e->auth_mech = ac.mech;
    e->auth_step = 0;
    e->auth_guess[0] = '\0';
    if (ac.initial)
        auth_login_guess(ac.mech, 0, ac.initial, ac.initial_len, e->auth_guess,
                         sizeof(e->auth_guess));
    return CHECK_OK;
}

void session_do_auth(struct session *s, struct session_args *a)
{
    session_forward(s, EXPECT_AUTH, a->line, a->len);
    s->state = SESSION_AUTH;
    s->wait.kind = WAIT_AUTH;
}

/* ---- what the rest of the daemon asks ---- */

void session_edge_summary(const struct session *s, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    const struct tls_facts *tls = s->edge.tls;
    if (tls) {
        int w = snprintf(buf, size, " tls=%s/%s sni=%s ccert=%s", tls->version, tls->cipher,
                         tls->sni[0] ? tls->sni : "-",
                         tls->peer_fingerprint[0] ? tls->peer_fingerprint : "-");
        n = w < 0 ? 0 : (size_t)w < size ? (size_t)w : size;
    }
    if (n < size && s->edge.authenticated)
        snprintf(buf + n, size - n, " login=%s", s->edge.login ? s->edge.login : "(not known)");
}

void session_edge_free(struct session *s)
{
    struct session_edge *e = &s->edge;
    if (e->auth_delay_ev)
        event_free(e->auth_delay_ev);
    e->auth_delay_ev = NULL;
    if (e->auth_delay_slot) {
        /* The slot itself is still in the reply queue and freed with it. */
        free(e->auth_delay_text);
        e->auth_delay_text = NULL;
        e->auth_delay_slot = NULL;
    }
    free(e->tls);
    e->tls = NULL;
    free(e->login);
    e->login = NULL;
}

const struct tls_facts *session_tls(const struct session *s)
{
    return s->edge.tls;
}

const char *session_login(const struct session *s)
{
    return s->edge.authenticated ? s->edge.login : NULL;
}
