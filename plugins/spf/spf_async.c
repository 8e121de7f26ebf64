/*
 * spf_async - an SPF check whose DNS waits on a libevent loop (see the
 * header).
 *
 * Evaluating again from the start instead of suspending check_host keeps
 * spf_check one plain recursive function shared with the blocking path;
 * the cost, a replay per answer over answers in memory, is small beside one
 * round trip, and spf_check's limits bound the answers a check can need.
 * Evaluations run from the step event, never inside c-ares's callbacks,
 * so that the channel can be torn down from there.
 */
#include "spf_async.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spf_dns.h"
#include "spf_dns_reply.h"
#include "spf_memo.h"

struct async_watch {
    ares_socket_t fd;
    struct event *ev;
    struct async_watch *next;
};

struct spf_async {
    struct event_base *base;
    SPF_dns_server_t *stack;
    struct spf_memo *memo;
    struct spf_check_request req;
    char *ip, *sender, *helo, *receiver;
    struct timespec deadline;
    ares_channel ch;
    bool have_ch;
    struct async_watch *watches;
    struct event *timer; /* c-ares's retry timeouts and the deadline */
    struct event *step;  /* the next evaluation */
    bool in_flight;
    char *qname;
    ns_type qtype;
    bool qcache;
    spf_async_done_fn done;
    void *arg;
};

static long async_ms_left(const struct spf_async *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ns = (long long)(a->deadline.tv_sec - now.tv_sec) * 1000000000LL +
                   (a->deadline.tv_nsec - now.tv_nsec);
    /* Rounded up: the timer must not fire before the deadline. */
    return ns <= 0 ? 0 : (long)((ns + 999999) / 1000000);
}

static void async_free(struct spf_async *a)
{
    if (a->have_ch)
        ares_destroy(a->ch); /* no query is in flight: no callback runs */
    while (a->watches != NULL) {
        struct async_watch *w = a->watches;
        a->watches = w->next;
        event_free(w->ev);
        free(w);
    }
    if (a->timer != NULL)
        event_free(a->timer);
    if (a->step != NULL)
        event_free(a->step);
    spf_memo_free(a->memo);
    free(a->ip);
    free(a->sender);
    free(a->helo);
    free(a->receiver);
    free(a->qname);
    free(a);
}

/* When c-ares waits next, or the deadline if sooner. */
static void async_arm(struct spf_async *a)
{
    long left = async_ms_left(a);
    struct timeval max = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000}, buf;
    struct timeval *tv = ares_timeout(a->ch, &max, &buf);
    evtimer_add(a->timer, tv);
}

static void async_sock_cb(evutil_socket_t fd, short what, void *arg)
{
    struct spf_async *a = arg;
    ares_process_fd(a->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    if (a->in_flight)
        async_arm(a);
}

/* c-ares opens, changes or closes a socket: its event follows. */
static void async_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct spf_async *a = data;
    struct async_watch **pp = &a->watches;
    while (*pp != NULL && (*pp)->fd != fd)
        pp = &(*pp)->next;
    struct async_watch *w = *pp;
    if (w != NULL) {
        *pp = w->next;
        event_free(w->ev);
        free(w);
    }
    if (!readable && !writable)
        return;
    /* Unwatched for want of memory, a socket's try still ends at the timer. */
    if ((w = calloc(1, sizeof *w)) == NULL)
        return;
    w->fd = fd;
    short ev = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    w->ev = event_new(a->base, fd, ev, async_sock_cb, a);
    if (w->ev == NULL || event_add(w->ev, NULL) < 0) {
        if (w->ev != NULL)
            event_free(w->ev);
        free(w);
        return;
    }
    w->next = a->watches;
    a->watches = w;
}

static void async_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct spf_async *a = arg;
    if (async_ms_left(a) <= 0) {
        spf_memo_expire(a->memo);
        ares_cancel(a->ch); /* the callback runs now, with ARES_ECANCELLED */
        return;
    }
    /* Tries whose time is up move on to the next server. */
    ares_process_fd(a->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (a->in_flight)
        async_arm(a);
}

static void async_on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct spf_async *a = arg;
    if (!a->in_flight)
        return;
    a->in_flight = false;
    evtimer_del(a->timer);
    SPF_dns_rr_t *rr = spf_dns_reply_rr(NULL, a->qname, a->qtype, status, abuf, alen);
    if (rr == NULL)
        rr = SPF_dns_rr_new_init(NULL, a->qname, a->qtype, 0, TRY_AGAIN);
    if (rr != NULL && rr->herrno != TRY_AGAIN)
        spf_dns_cache_put(a->stack, rr, a->qcache);
    /* Without the answer (no memory) the name would be missed again and
     * again: the check ends in temperror instead. */
    if (rr == NULL || spf_memo_add(a->memo, a->qname, a->qtype, rr) < 0)
        spf_memo_expire(a->memo);
    event_active(a->step, EV_TIMEOUT, 0);
}

static void async_finish(struct spf_async *a, struct spf_check_result *res, int rc)
{
    spf_async_done_fn done = a->done;
    void *arg = a->arg;
    async_free(a);
    done(arg, res, rc);
}

static void async_step_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct spf_async *a = arg;
    if (async_ms_left(a) <= 0)
        spf_memo_expire(a->memo);
    spf_memo_rearm(a->memo);
    struct spf_check_result res;
    int rc = spf_check_host(spf_memo_layer(a->memo), &a->req, &res);
    const char *name;
    ns_type type;
    bool cache;
    if (!spf_memo_missed(a->memo, &name, &type, &cache)) {
        async_finish(a, &res, rc);
        return;
    }
    spf_check_result_free(&res);
    free(a->qname);
    if ((a->qname = strdup(name)) == NULL) {
        spf_memo_expire(a->memo);
        event_active(a->step, EV_TIMEOUT, 0);
        return;
    }
    a->qtype = type;
    a->qcache = cache;
    if (!a->have_ch) {
        if (spf_dns_channel_for(a->stack, async_sock_state, a, &a->ch, NULL) != ARES_SUCCESS) {
            spf_memo_expire(a->memo);
            event_active(a->step, EV_TIMEOUT, 0);
            return;
        }
        a->have_ch = true;
    }
    a->in_flight = true;
    ares_query(a->ch, a->qname, ns_c_in, type, async_on_reply, a);
    if (a->in_flight)
        async_arm(a);
}

static char *async_dup(const char *s)
{
    return strdup(s != NULL ? s : "");
}

struct spf_async *spf_async_start(struct event_base *base, SPF_dns_server_t *stack,
                                  const struct spf_check_request *req, spf_async_done_fn done,
                                  void *arg)
{
    struct spf_async *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->base = base;
    a->stack = stack;
    a->done = done;
    a->arg = arg;
    a->deadline = req->deadline;
    a->memo = spf_memo_new(stack);
    a->ip = async_dup(req->ip);
    a->sender = async_dup(req->sender);
    a->helo = async_dup(req->helo);
    a->receiver = req->receiver ? strdup(req->receiver) : NULL;
    a->timer = evtimer_new(base, async_timer_cb, a);
    a->step = event_new(base, -1, 0, async_step_cb, a);
    if (a->memo == NULL || a->ip == NULL || a->sender == NULL || a->helo == NULL ||
        (req->receiver != NULL && a->receiver == NULL) || a->timer == NULL || a->step == NULL) {
        async_free(a);
        return NULL;
    }
    /* The deadline is kept here, not in the request: an evaluation after it
     * must still read the answers had before it.  %{t} is fixed once so
     * that every evaluation expands it alike. */
    a->req = (struct spf_check_request){
        .ip = a->ip,
        .sender = a->sender,
        .helo = a->helo,
        .receiver = a->receiver,
        .identity = req->identity,
        .now = req->now ? req->now : (long long)time(NULL),
    };
    event_active(a->step, EV_TIMEOUT, 0);
    return a;
}
