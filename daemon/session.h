/*
 * session - the server side of SMTP for one client connection: reads commands
 * and message data, answers what smtpgate answers itself (greeting, EHLO,
 * syntax and sequence errors, limits), forwards the rest to the upstream and
 * relays its replies, in order, however the client pipelines.
 *
 * session_start() takes over an accepted socket on the calling worker's event
 * loop; the session lives on that loop until it frees itself.
 * session_shutdown() ends a session that outlived the shutdown grace with 421.
 * The worker keeps its sessions in a list (worker->sessions, session_next()).
 */
#ifndef SMTPGATE_SESSION_H
#define SMTPGATE_SESSION_H

#include <event2/event.h>
#include <sys/socket.h>

#include "daemon/runtime.h"

struct worker;
struct session;

void session_start(struct worker *w, evutil_socket_t fd, const struct sockaddr *peer,
                   socklen_t peer_len, struct sg_runtime *rt);
void session_shutdown(struct session *s);

/* Free at once (the worker's loop has ended). */
void session_destroy(struct session *s);

/* What the edge knows of the client, for the filter chain and logs: the TLS
 * facts once a handshake has completed (NULL before or without TLS), and the
 * login name the upstream accepted with its 235 (NULL before AUTH, or when
 * the mechanism does not carry a name in the clear). */
struct tls_facts;
const struct tls_facts *session_tls(const struct session *s);
const char *session_login(const struct session *s);

/* The worker's list of sessions. */
struct session *session_next(const struct session *s);

#endif
