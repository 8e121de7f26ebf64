/*
 * proxy_accept - the first step of a connection on a PROXY protocol listener:
 * is the peer a trusted proxy, and what does its header say.
 *
 * proxy_accept_start() is called for every accepted connection.  It returns
 * false when the connection's listener does not use the PROXY protocol (the
 * caller goes on as before).  Otherwise it owns fd and cfg: a peer outside the
 * listener's proxy_trusted networks is closed at once; a trusted one has its
 * header read (never an octet past it) within proxy_timeout seconds, and a
 * valid header hands the connection to session_start() with the header's
 * source as the client address.  Missing, malformed or late headers close the
 * connection without a greeting.  Each refusal is logged with the reason.
 *
 * proxy_accept_discard() frees the list's connections still waiting for a
 * header (its event loop has ended).
 */
#ifndef SMTPGATE_PROXY_ACCEPT_H
#define SMTPGATE_PROXY_ACCEPT_H

#include <event2/event.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "daemon/runtime.h"
#include "daemon/session.h"

struct proxy_pending;

/* pending is the caller's list of connections waiting for their header; a
 * valid header starts the session on host. */
bool proxy_accept_start(const struct session_host *host, struct proxy_pending **pending,
                        evutil_socket_t fd, const struct sockaddr *peer, socklen_t peer_len,
                        struct sg_runtime *rt);
void proxy_accept_discard(struct proxy_pending **pending);

#endif
