/*
 * listen_socket - the daemon's listening sockets, opened once by the main
 * thread (as root, before the privileges go) and shared by every worker.
 *
 * The workers share the load through SO_REUSEPORT: each has a socket of its
 * own on the address and the kernel spreads new connections over them.
 * SO_REUSEPORT alone would also let smtpgate join a port that another
 * process of the same user (a second smtpgate, an smtp-sink, a Postfix)
 * already listens on and silently take part of its connections, so the
 * address is first bound by a probe socket without it: a port in use is
 * "address already in use" at start.  SO_REUSEADDR only lets a restart
 * bind while old connections linger in TIME_WAIT; Linux never lets it share
 * a listener.
 */
#ifndef SMTPGATE_LISTEN_SOCKET_H
#define SMTPGATE_LISTEN_SOCKET_H

#include <stddef.h>

#include "util/sockaddr.h"

#define LISTEN_BACKLOG 4096

/* n listening, non-blocking, close-on-exec sockets on addr, one per worker,
 * into fds; -1 after logging why (none left open). */
int listen_socket_open(const struct sg_sockaddr *addr, size_t n, int *fds);

#endif
