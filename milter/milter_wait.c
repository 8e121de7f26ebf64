/*
 * milter_wait - a flag, a mutex and a condition variable on the monotonic
 * clock (see the header).  The flag makes a notify that comes before the
 * waiter sleeps, or while it is busy, count: a condition variable alone would
 * lose it and the thread would sleep the full timeout.
 */
#include "milter/milter_wait.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct milter_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool notified;
};

struct milter_wait *milter_wait_new(void)
{
    struct milter_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        free(w);
        return NULL;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    return w;
}

void milter_wait_free(void *arg)
{
    struct milter_wait *w = arg;
    if (!w)
        return;
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void milter_wait_notify(void *arg)
{
    struct milter_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->notified = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

bool milter_wait_for(struct milter_wait *w, unsigned ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    while (!w->notified && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
    bool got = w->notified;
    w->notified = false;
    pthread_mutex_unlock(&w->lock);
    return got;
}
