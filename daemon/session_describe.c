/*
 * session_describe - one session seen from outside (session.h), on its own
 * thread: everything is copied, bounded, into the caller's struct.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/session.h"
#include "daemon/session_int.h"
#include "daemon/tls.h"

static const char *session_state_name(enum session_state st)
{
    switch (st) {
    case SESSION_CONNECTED:
        return "connected";
    case SESSION_REFUSED:
        return "refused";
    case SESSION_GREETED:
        return "greeted";
    case SESSION_HELO:
        return "helo";
    case SESSION_EHLO:
        return "ehlo";
    case SESSION_AUTH:
        return "auth";
    case SESSION_MAIL:
        return "mail";
    case SESSION_DATA:
        return "data";
    case SESSION_BDAT:
        return "bdat";
    }
    return "?";
}

static const char *session_wait_name(enum session_wait_kind w)
{
    switch (w) {
    case WAIT_NONE:
        return "";
    case WAIT_BARRIER:
        return "earlier replies";
    case WAIT_CHAIN:
        return "filter chain";
    case WAIT_FINAL:
        return "upstream final reply";
    case WAIT_AUTH:
        return "upstream auth reply";
    case WAIT_TLS:
        return "tls handshake";
    }
    return "?";
}

void session_describe(const struct session *s, struct session_info *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", s->id);
    snprintf(out->addr, sizeof(out->addr), "%s", s->addr);
    out->port = s->port;
    snprintf(out->name, sizeof(out->name), "%s", s->client.name ? s->client.name : "");
    snprintf(out->helo, sizeof(out->helo), "%s", s->client.helo ? s->client.helo : "");
    snprintf(out->listener, sizeof(out->listener), "%s",
             session_metrics_listener(s->cfg, s->edge.listener));
    snprintf(out->login, sizeof(out->login), "%s", s->edge.login ? s->edge.login : "");
    out->in_transaction = session_tx_open(s);
    snprintf(out->mail_from, sizeof(out->mail_from), "%s",
             out->in_transaction && s->tx.mail_from ? s->tx.mail_from : "");
    snprintf(out->tls_version, sizeof(out->tls_version), "%s",
             s->edge.tls ? s->edge.tls->version : "");
    out->state = session_state_name(s->state);
    out->waiting = session_wait_name(s->wait.kind);
    out->age = session_elapsed(&s->started);
    out->transactions = s->stats.ntransactions;
    out->recipients = out->in_transaction ? s->tx.rcpt_ok : 0;
}
