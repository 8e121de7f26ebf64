/*
 * upstream - the client side of SMTP: one connection from a session to an
 * upstream MTA.
 *
 * upstream_new() starts connecting at once, trying the config's upstreams by
 * priority (healthy ones first) and moving to the next on connection failure,
 * a non-2xx greeting, or a refused EHLO.  On each connection it sends the PROXY
 * v2 header (client_identity = proxy), reads the greeting, says EHLO, tells the
 * upstream who the real client is with XCLIENT (client_identity = xclient) and
 * says EHLO again, as XCLIENT requires.  Only then is it ready.
 *
 * upstream_command() queues a client command line (without CRLF) to be sent;
 * commands are written as soon as the connection is ready, all at once when the
 * upstream offers PIPELINING, one by one otherwise.  Each command gets exactly
 * one on_reply(), in order.
 *
 * upstream_message() sends the message of the current transaction once every
 * earlier reply has come: DATA, "354", the content dot-stuffed and streamed from
 * the store in large writes, the final dot; or one BDAT LAST chunk.  Its one
 * on_reply() is the upstream's final reply (or the refusal of DATA).
 *
 * on_failure() reports that the connection could not be made or broke (closed,
 * timed out, spoke garbage); reply is what the session should answer for every
 * command still without a reply.  No callback comes after it.
 *
 * Timeouts are the config's upstream_* ones, per step, as RFC 5321 4.5.3.2 has
 * them.  A connection idle inside a transaction is kept alive with NOOP, so a
 * slow client upload does not lose the upstream transaction.
 */
#ifndef SMTPGATE_UPSTREAM_H
#define SMTPGATE_UPSTREAM_H

#include <event2/event.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "codec/client_identity.h"
#include "config/config.h"
#include "daemon/runtime.h"
#include "message/msg_view.h"
#include "codec/smtp_reply.h"

struct upstream_conn;

struct upstream_events {
    void (*on_reply)(void *ctx, const struct smtp_reply *reply);
    void (*on_failure)(void *ctx, const char *reply);
};

struct upstream_conn *upstream_new(struct event_base *base, struct sg_runtime *rt,
                                   const struct client_facts *facts,
                                   const struct sockaddr *client_sa,
                                   const struct sockaddr *local_sa,
                                   const struct upstream_events *ev, void *ctx);

void upstream_command(struct upstream_conn *u, const char *line, size_t len);
void upstream_message(struct upstream_conn *u, const struct msg_view *view, bool bdat);

/* Capability bits of the connected upstream's (last) EHLO reply; 0 before ready. */
unsigned upstream_caps(const struct upstream_conn *u);
bool upstream_ready(const struct upstream_conn *u);

/* "name address" of the upstream in use, for logs. */
const char *upstream_label(const struct upstream_conn *u);
/* The health record of the upstream u talks to; NULL before it has one. */
struct upstream_health *upstream_health_of(const struct upstream_conn *u);

/* Commands sent or queued that have no reply yet. */
unsigned upstream_pending(const struct upstream_conn *u);

/* Close: QUIT first when the connection is ready and quiet.  No callback comes
 * after this call; safe to call from inside a callback. */
void upstream_close(struct upstream_conn *u);

/* Free the connections of this thread still waiting for their QUIT reply
 * (their event loop has ended). */
void upstream_discard_closing(void);

#endif
