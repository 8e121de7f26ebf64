/*
 * milter_wait - a flag under a mutex and an event loop (see the header).
 * The flag makes a notify that comes before the waiter runs the loop, or
 * while it is busy, count; the notify event only wakes a loop that sleeps.
 * The loop runs one round at a time (EVLOOP_ONCE) and the flag and the
 * deadline are checked after each, so a plugin's own events (sockets,
 * timers) run in between, on this thread.
 */
#include "milter/milter_wait.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct milter_wait {
    pthread_mutex_t lock;
    bool notified;
    struct event_base *base;
    struct event *wake;  /* made active by notify */
    struct event *timer; /* the wait's deadline */
};

static void milter_wait_nothing(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

struct milter_wait *milter_wait_new(void)
{
    struct milter_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    w->base = event_base_new();
    if (w->base) {
        w->wake = event_new(w->base, -1, 0, milter_wait_nothing, w);
        w->timer = evtimer_new(w->base, milter_wait_nothing, w);
    }
    if (!w->base || !w->wake || !w->timer) {
        milter_wait_free(w);
        return NULL;
    }
    return w;
}

struct event_base *milter_wait_base(const struct milter_wait *w)
{
    return w->base;
}

void milter_wait_free(void *arg)
{
    struct milter_wait *w = arg;
    if (!w)
        return;
    if (w->wake)
        event_free(w->wake);
    if (w->timer)
        event_free(w->timer);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void milter_wait_notify(void *arg)
{
    struct milter_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->notified = true;
    pthread_mutex_unlock(&w->lock);
    event_active(w->wake, EV_READ, 0);
}

static long milter_wait_ms_left(const struct timespec *end)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(end->tv_sec - now.tv_sec) * 1000L + (end->tv_nsec - now.tv_nsec) / 1000000L;
}

static void milter_wait_deadline(struct timespec *end, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, end);
    end->tv_sec += ms / 1000;
    end->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end->tv_nsec >= 1000000000L) {
        end->tv_sec++;
        end->tv_nsec -= 1000000000L;
    }
}

/* One round of the loop, sleeping at most until the deadline. */
static void milter_wait_round(struct milter_wait *w, long left_ms)
{
    struct timeval tv = {.tv_sec = left_ms / 1000, .tv_usec = (left_ms % 1000) * 1000};
    evtimer_add(w->timer, &tv);
    event_base_loop(w->base, EVLOOP_ONCE);
    evtimer_del(w->timer);
}

static bool milter_wait_take(struct milter_wait *w)
{
    pthread_mutex_lock(&w->lock);
    bool got = w->notified;
    w->notified = false;
    pthread_mutex_unlock(&w->lock);
    return got;
}

bool milter_wait_for(struct milter_wait *w, unsigned ms)
{
    struct timespec end;
    milter_wait_deadline(&end, ms);
    for (;;) {
        if (milter_wait_take(w))
            return true;
        long left = milter_wait_ms_left(&end);
        if (left <= 0)
            return false;
        milter_wait_round(w, left);
    }
}

bool milter_wait_idle(struct milter_wait *w, bool (*busy)(const void *arg), const void *arg,
                      unsigned ms)
{
    struct timespec end;
    milter_wait_deadline(&end, ms);
    while (busy(arg)) {
        long left = milter_wait_ms_left(&end);
        if (left <= 0)
            return false;
        milter_wait_round(w, left);
    }
    (void)milter_wait_take(w);
    return true;
}
