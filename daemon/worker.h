/*
 * worker - one thread, one libevent loop, its own listening sockets (opened
 * for it by the main thread with SO_REUSEPORT, listen_socket.h: the kernel
 * spreads new connections over the workers) and the sessions it accepted.  A connection stays on
 * its worker for life, so nothing on the per-connection path takes a lock.
 *
 * worker_stop() (any thread) stops accepting and lets sessions finish within
 * shutdown_grace (worker_stop_within(): within another grace); then the rest
 * get 421 and the loop ends.  The thread then calls ended(ended_arg), if set,
 * once its sessions are gone: the main thread learns that this worker is done
 * without blocking in a join.
 *
 * worker_ask() (any thread) has fn(w, arg) run on the worker's own thread,
 * where its sessions may be read: at the loop's next turn, or, for a worker
 * whose loop has ended meanwhile, as it ends.  It returns false when the loop
 * has already ended (fn never runs; the worker has no sessions).
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
    atomic_uint grace;                   /* the grace the next stop gives */
    void (*ended)(void *arg);            /* set before worker_run(), or NULL */
    void *ended_arg;
    pthread_mutex_t ask_lock;
    struct worker_ask *asks; /* waiting to run on the thread */
    struct event *ask_ev;
    bool loop_ended; /* under ask_lock */
};

/* Create the worker's base and listeners (bind errors are logged, -1). */
/* listen_fds[i]: this worker's socket on c->listen[i] (listen_socket.h); the
 * worker takes a duplicate of each. */
int worker_init(struct worker *w, unsigned index, const struct sg_config *c, const int *listen_fds);
int worker_run(struct worker *w);   /* starts the thread */
void worker_stop(struct worker *w); /* thread-safe */
void worker_stop_within(struct worker *w, unsigned grace);
bool worker_ask(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

#endif
