/*
 * listen_socket - the daemon's listening sockets, opened once by the main
 * thread (as root, before the privileges go) and shared by every worker.
 *
 * No SO_REUSEPORT: with it the kernel would let smtpgate join a port that
 * another process of the same user (a second smtpgate, an smtp-sink, a
 * Postfix) already listens on and silently take part of its connections.
 * Bound without it, a port in use is "address already in use" at start.
 * The workers share the load by each watching the one socket (a dup of it
 * in each worker's event loop): whichever loop wakes first accepts, the
 * others find nothing.  SO_REUSEADDR only lets a restart bind while old
 * connections linger in TIME_WAIT; Linux never lets it share a listener.
 */
#ifndef SMTPGATE_LISTEN_SOCKET_H
#define SMTPGATE_LISTEN_SOCKET_H

#include "util/sockaddr.h"

#define LISTEN_BACKLOG 4096

/* A listening, non-blocking, close-on-exec socket; -1 after logging why. */
int listen_socket_open(const struct sg_sockaddr *addr);

#endif
