/*
 * session_relay - the session's side towards the upstream: commands
 * forwarded, the replies they are owed, what the upstream answers.
 *
 * A command forwarded upstream appends a reply slot (session.c) and an
 * "expect" naming what kind of command it was, so that the upstream's reply
 * can update the transaction (MAIL accepted, one more recipient, message
 * done) before it fills the slot.  Silent expects (our own RSET, an envelope
 * sent again) have no slot: the client never sees their replies.
 *
 * Transactions carry a generation number; a reply for a transaction the
 * client has already abandoned (RSET while MAIL was in flight) changes
 * nothing.
 *
 * The upstream connection is opened when a command first needs it
 * (session_forward): refused bots and idle clients cost the MTA nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/session.h"
#include "daemon/session_int.h"
#include "daemon/upstream.h"
#include "daemon/upstream_pool.h"

struct expect *session_expect(struct session *s, enum expect_kind kind, struct reply_slot *slot)
{
    struct expect *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->kind = kind;
    e->slot = slot;
    e->tx_gen = s->tx.gen;
    if (s->io.ex_tail)
        s->io.ex_tail->next = e;
    else
        s->io.ex_head = e;
    s->io.ex_tail = e;
    s->io.ex_len++;
    return e;
}

void session_expect_free(struct expect *e)
{
    free(e->rcpt.mailbox);
    free(e->rcpt.params);
    free(e);
}

struct expect *session_expect_pop(struct session *s)
{
    struct expect *e = s->io.ex_head;
    if (e) {
        s->io.ex_head = e->next;
        if (!s->io.ex_head)
            s->io.ex_tail = NULL;
        s->io.ex_len--;
    }
    return e;
}

char *session_format_reply(const struct smtp_reply *r, size_t *len)
{
    char *text = NULL;
    *len = smtp_reply_format(r, &text);
    if (*len == (size_t)-1)
        return NULL;
    return text;
}

/* The final reply to the message: the transaction is over, whatever it says.
 * Returns the reply the client gets (r, or a 451 of ours). */
static const struct smtp_reply *session_message_done(struct session *s, const struct expect *e,
                                                     const struct smtp_reply *r)
{
    bool current = e->tx_gen == s->tx.gen;
    bool ok = r->code / 100 == 2;
    if (s->wait.kind == WAIT_FINAL)
        s->wait.kind = WAIT_NONE;
    session_set_read_timeout(s, s->cfg->command_timeout);
    s->stats.ntransactions++;
    if (current && s->tx.replay && (!s->tx.replay_mail_ok || s->tx.replay_rcpt_ok == 0)) {
        /* The upstream took none of the envelope a plugin made: it has no
         * message, and the client must keep its copy. */
        static char refused_text[] = "4.3.0 Error: the upstream refused the changed envelope";
        static const struct smtp_reply refused = {
            .code = 451, .nlines = 1, .text = refused_text, .text_len = sizeof(refused_text) - 1};
        session_tx_log(s, "deferred", refused.code, refused.text);
        session_tx_reset(s);
        return &refused;
    }
    if (ok)
        s->stats.naccepted++;
    session_tx_log(s,
                   ok                   ? "accepted"
                   : r->code / 100 == 4 ? "deferred"
                                        : "rejected",
                   r->code, r->text);
    session_tx_reset(s);
    return r;
}

static void session_upstream_reply(void *ctx, const struct smtp_reply *r)
{
    struct session *s = ctx;
    struct expect *e = session_expect_pop(s);
    if (!e)
        return;
    bool current = e->tx_gen == s->tx.gen;
    bool ok = r->code / 100 == 2;

    switch (e->kind) {
    case EXPECT_MAIL:
        if (current) {
            s->tx.mail_ok = ok;
            if (!ok)
                session_tx_reset(s);
        }
        break;
    case EXPECT_RCPT:
        if (current && ok) {
            s->tx.rcpt_ok++;
            session_keep_rcpt(s, &e->rcpt);
        }
        break;
    case EXPECT_REPLAY_MAIL:
        if (current)
            s->tx.replay_mail_ok = ok;
        break;
    case EXPECT_REPLAY_RCPT:
        if (current && ok)
            s->tx.replay_rcpt_ok++;
        break;
    case EXPECT_MESSAGE:
        upstream_health_message_reply(upstream_health_of(s->up), r->code,
                                      session_elapsed(&e->sent));
        r = session_message_done(s, e, r);
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
    session_auth_end(s);

    while (s->io.ex_head) {
        struct expect *e = session_expect_pop(s);
        if (e->kind == EXPECT_MESSAGE) {
            if (s->wait.kind == WAIT_FINAL)
                s->wait.kind = WAIT_NONE;
            session_set_read_timeout(s, s->cfg->command_timeout);
            s->stats.ntransactions++;
            session_tx_log(s, "deferred", atoi(reply), reply + 4);
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
    if (session_tx_open(s) && (s->state == SESSION_DATA || s->state == SESSION_BDAT))
        s->tx.fail = "451 4.4.2 Upstream connection lost, try again later";
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
        .name = s->client.name,
        .name_tempfail = s->client.name_tempfail,
        .helo = s->client.helo,
        .proto = s->client.helo ? (s->client.esmtp ? "ESMTP" : "SMTP") : NULL,
        .login = s->edge.login,
    };
    s->up = upstream_new(s->host->base, s->rt, &f, (struct sockaddr *)&s->peer,
                         (struct sockaddr *)&s->local, &session_upstream_events, s);
    return s->up != NULL;
}

/* Forward the client's command line; its reply comes from the upstream. */
struct expect *session_forward(struct session *s, enum expect_kind kind, const char *line,
                               size_t len)
{
    if (!session_ensure_upstream(s)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return NULL;
    }
    struct reply_slot *slot = session_slot_new(s);
    struct expect *e = slot ? session_expect(s, kind, slot) : NULL;
    if (!e) {
        s->io.closing = true;
        return NULL;
    }
    upstream_command(s->up, line, len);
    return e;
}

/* A command of our own to the upstream, whose reply the client never sees. */
void session_send_silent(struct session *s, enum expect_kind kind, const char *line, size_t len)
{
    if (session_expect(s, kind, NULL))
        upstream_command(s->up, line, len);
    else
        s->io.closing = true;
}

/* Abort the upstream's side of a transaction smtpgate refused itself. */
void session_abort_upstream_tx(struct session *s)
{
    if (s->up && session_tx_open(s)) {
        if (session_expect(s, EXPECT_SILENT, NULL))
            upstream_command(s->up, "RSET", 4);
    }
}
