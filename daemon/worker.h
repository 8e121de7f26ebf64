/*
 * worker - one thread, one libevent loop, its own listening sockets (opened
 * for it by the main thread with SO_REUSEPORT, listen_socket.h: the kernel
 * spreads new connections over the workers) and the sessions it accepted.  A connection stays on
 * its worker for life, so nothing on the per-connection path takes a lock.
 *
 * worker_stop() (any thread) stops accepting and lets sessions finish within
 * shutdown_grace; then the rest get 421 and the loop ends.
 */
#ifndef SMTPGATE_WORKER_H
#define SMTPGATE_WORKER_H

#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config/config.h"
#include "daemon/session.h"

struct proxy_pending;

struct worker {
    unsigned index;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener **listeners;
    size_t nlisteners;
    struct event *stop_ev;
    struct event *grace_ev;
    struct session_list sessions; /* linked by the session module */
    struct session_host host;     /* what sessions started here are given */
    struct evdns_base *dns;       /* client name lookups; NULL when off */
    atomic_bool stopping;
    unsigned shutdown_grace;
    struct proxy_pending *proxy_pending; /* waiting for a PROXY header (proxy_accept) */
};

/* Create the worker's base and listeners (bind errors are logged, -1). */
/* listen_fds[i]: this worker's socket on c->listen[i] (listen_socket.h); the
 * worker takes a duplicate of each. */
int worker_init(struct worker *w, unsigned index, const struct sg_config *c, const int *listen_fds);
int worker_run(struct worker *w);   /* starts the thread */
void worker_stop(struct worker *w); /* thread-safe */
void worker_join(struct worker *w);
void worker_free(struct worker *w);

#endif
