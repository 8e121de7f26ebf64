/*
 * worker - a thread with its own event loop and listening sockets.
 *
 * Each worker has its own socket on every listen address, opened by the main
 * thread with SO_REUSEPORT (listen_socket.h), so the kernel balances new
 * connections across workers and no acceptor thread hands sockets around.  Stopping is asked from
 * the main thread through an event made active on the worker's base (libevent's pthread support
 * makes that safe); everything else the worker touches belongs to its own thread.
 */
#include "daemon/worker.h"

#include "daemon/client_name.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "util/log.h"
#include "daemon/proxy_accept.h"
#include "daemon/runtime.h"
#include "daemon/session.h"
#include "daemon/upstream.h"

/* How long a stopping worker runs its loop for plugin calls still out on
 * it: past the longest deadline a plugin keeps (the SPF plugin's
 * dns_timeout is at most 120 s). */
#define WORKER_LOOP_CALLS_MAX_S 130

struct worker_ask {
    struct worker_ask *next;
    void (*fn)(struct worker *w, void *arg);
    void *arg;
};

/* Every ask waiting, in the order they came; the list is taken whole under
 * the lock and run outside it, so fn may ask again. */
static void worker_run_asks(struct worker *w, bool ending)
{
    pthread_mutex_lock(&w->ask_lock);
    struct worker_ask *list = w->asks;
    w->asks = NULL;
    if (ending)
        w->loop_ended = true;
    pthread_mutex_unlock(&w->ask_lock);
    struct worker_ask *rev = NULL;
    while (list) {
        struct worker_ask *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        struct worker_ask *next = rev->next;
        rev->fn(w, rev->arg);
        free(rev);
        rev = next;
    }
}

static void worker_ask_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_run_asks(arg, false);
}

bool worker_ask(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg)
{
    struct worker_ask *a = malloc(sizeof(*a));
    if (!a)
        return false;
    a->fn = fn;
    a->arg = arg;
    pthread_mutex_lock(&w->ask_lock);
    bool open = !w->loop_ended && w->ask_ev;
    if (open) {
        a->next = w->asks;
        w->asks = a;
        event_active(w->ask_ev, EV_TIMEOUT, 0);
    }
    pthread_mutex_unlock(&w->ask_lock);
    if (!open)
        free(a);
    return open;
}

static void worker_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int len, void *arg)
{
    struct worker *w = arg;
    (void)l;
    if (atomic_load(&w->stopping)) {
        evutil_closesocket(fd);
        return;
    }
    /* Replies are small and must not wait for the peer's delayed ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sg_runtime *rt = runtime_current();
    if (!rt) {
        evutil_closesocket(fd);
        return;
    }
    log_debug("worker %u: accepted a connection", w->index);
    if (proxy_accept_start(&w->host, &w->proxy_pending, fd, sa, (socklen_t)len, rt))
        return;
    session_start(&w->host, fd, sa, (socklen_t)len, rt);
}

static void worker_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct worker *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)l;
    /* Out of descriptors: keep running; the listener retries on the next event. */
    log_warn("worker %u: accept: %s", w->index, evutil_socket_error_to_string(err));
}

/* A session has ended: a stopping worker finishes with its last one. */
static void worker_session_gone(void *arg)
{
    struct worker *w = arg;
    if (atomic_load(&w->stopping) && w->sessions.count == 0)
        event_base_loopexit(w->base, NULL);
}

int worker_init(struct worker *w, unsigned index, const struct sg_config *c, const int *listen_fds)
{
    memset(w, 0, sizeof(*w));
    w->index = index;
    w->shutdown_grace = c->shutdown_grace;
    atomic_init(&w->grace, c->shutdown_grace);
    atomic_init(&w->stopping, false);
    pthread_mutex_init(&w->ask_lock, NULL);
    session_metrics_register(c);
    /* The changelist folds the enable/disable of each bufferevent's events
     * within one loop pass into one epoll_ctl, or none: without it every
     * reply written costs two. */
    struct event_config *ecfg = event_config_new();
    if (ecfg)
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg)
        event_config_free(ecfg);
    if (!w->base) {
        log_err("worker %u: cannot create event loop", index);
        return -1;
    }
    if (c->client_name_lookup &&
        !(w->dns = client_name_dns_new(w->base, c->dns_nameserver, c->dns_timeout)))
        return -1;
    w->host = (struct session_host){.base = w->base,
                                    .dns = w->dns,
                                    .sessions = &w->sessions,
                                    .gone = worker_session_gone,
                                    .arg = w};
    w->listeners = calloc(c->nlisten, sizeof(*w->listeners));
    if (!w->listeners)
        return -1;
    for (size_t i = 0; i < c->nlisten; i++) {
        /* A descriptor of its own, closed with the listener. */
        int fd = fcntl(listen_fds[i], F_DUPFD_CLOEXEC, 0);
        w->listeners[i] =
            fd < 0 ? NULL
                   /* backlog 0: the socket listens already */
                   : evconnlistener_new(w->base, worker_accept_cb, w,
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
        if (!w->listeners[i]) {
            log_err("worker %u: cannot accept on %s: %s", index, c->listen[i].text,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        evconnlistener_set_error_cb(w->listeners[i], worker_accept_error_cb);
        w->nlisteners++;
    }
    return 0;
}

static void worker_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->sessions.count)
        log_info("worker %u: shutdown grace over, closing %u sessions", w->index,
                 w->sessions.count);
    struct session *s = w->sessions.head;
    while (s) {
        /* session_shutdown may free s: find the next one first. */
        struct session *next = session_next(s);
        session_shutdown(s);
        s = next;
    }
    /* Sessions closing politely still get a moment to send their 421. */
    struct timeval last = {.tv_sec = 2};
    event_base_loopexit(w->base, &last);
}

static void worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < w->nlisteners; i++) {
        evconnlistener_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
    w->nlisteners = 0;
    if (w->sessions.count == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    /* Stop may be asked twice (signal, then exit path): one grace period. */
    if (w->grace_ev)
        return;
    w->grace_ev = evtimer_new(w->base, worker_grace_cb, w);
    struct timeval g = {.tv_sec = atomic_load(&w->grace)};
    if (w->grace_ev)
        evtimer_add(w->grace_ev, &g);
}

static void worker_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Plugin calls waiting on the loops (host->event_loop) hold their
 * connections until they resolve, each within its plugin's own deadline:
 * the loop runs on until none is left, as the pool's calls end before its
 * threads are joined.  Every worker waits for all of them, so that none
 * frees a loop another's call might still be told about; bounded in time. */
static void worker_finish_loop_calls(struct worker *w)
{
    if (chain_loop_calls() == 0)
        return;
    log_info("worker %u: waiting for %u plugin calls still out", w->index, chain_loop_calls());
    struct event *tick = event_new(w->base, -1, EV_PERSIST, worker_tick_cb, NULL);
    struct timeval every = {.tv_usec = 100000};
    if (!tick || event_add(tick, &every) < 0) {
        if (tick)
            event_free(tick);
        return;
    }
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += WORKER_LOOP_CALLS_MAX_S;
    do {
        event_base_loop(w->base, EVLOOP_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (chain_loop_calls() > 0 && now.tv_sec < end.tv_sec);
    event_free(tick);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    /* Asks that came while the loop ended still see its sessions. */
    worker_run_asks(w, true);
    /* Sessions and their upstreams belong to this thread: end them here. */
    while (w->sessions.head)
        session_destroy(w->sessions.head);
    worker_finish_loop_calls(w);
    proxy_accept_discard(&w->proxy_pending);
    upstream_discard_closing();
    if (w->ended)
        w->ended(w->ended_arg);
    return NULL;
}

int worker_run(struct worker *w)
{
    w->stop_ev = event_new(w->base, -1, 0, worker_stop_cb, w);
    if (!w->stop_ev)
        return -1;
    /* Keeps the loop alive while there are no listeners left but sessions run. */
    event_add(w->stop_ev, NULL);
    w->ask_ev = event_new(w->base, -1, 0, worker_ask_cb, w);
    if (!w->ask_ev)
        return -1;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        log_err("worker %u: cannot start thread", w->index);
        return -1;
    }
    return 0;
}

void worker_stop(struct worker *w)
{
    worker_stop_within(w, w->shutdown_grace);
}

void worker_stop_within(struct worker *w, unsigned grace)
{
    /* A second stop (the exit path's, after a drain) keeps the first grace. */
    if (!atomic_exchange(&w->stopping, true))
        atomic_store(&w->grace, grace);
    if (w->stop_ev)
        event_active(w->stop_ev, EV_TIMEOUT, 0);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_free(struct worker *w)
{
    /* Sessions still there after the loop ended are freed with their sockets. */
    while (w->sessions.head)
        session_destroy(w->sessions.head);
    proxy_accept_discard(&w->proxy_pending);
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i])
            evconnlistener_free(w->listeners[i]);
    free(w->listeners);
    if (w->grace_ev)
        event_free(w->grace_ev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    /* No thread asks any more: the main thread frees workers last. */
    while (w->asks) {
        struct worker_ask *a = w->asks;
        w->asks = a->next;
        free(a);
    }
    if (w->ask_ev)
        event_free(w->ask_ev);
    pthread_mutex_destroy(&w->ask_lock);
    if (w->dns)
        evdns_base_free(w->dns, 0);
    if (w->base)
        event_base_free(w->base);
}
