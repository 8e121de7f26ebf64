/*
 * workpool - a FIFO of jobs under one mutex and condition variable.
 *
 * Jobs are rare next to the per-octet work of the event loops (one per
 * blocking plugin call), so one lock is no contention worth avoiding.
 */
#include "chain/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/metrics.h"

struct workpool_job {
    struct workpool_job *next;
    void (*fn)(void *);
    void *arg;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static struct workpool_job *pool_head, *pool_tail;
static pthread_t *pool_threads;
static unsigned pool_nthreads;
static unsigned pool_want = 8;
static bool pool_started, pool_stopping;
static struct metrics_series *pool_queued, *pool_busy;

/* Called with the lock held; a daemon shows the gauges before the first job. */
static void workpool_metrics(void)
{
    pool_queued = metrics_single("smtpgate_workpool_queued_jobs", METRICS_GAUGE,
                                 "Blocking plugin calls waiting for a work-pool thread");
    pool_busy = metrics_single("smtpgate_workpool_busy_threads", METRICS_GAUGE,
                               "Work-pool threads running a blocking plugin call");
}

void workpool_set_threads(unsigned n)
{
    pthread_mutex_lock(&pool_lock);
    workpool_metrics();
    if (!pool_started && n > 0)
        pool_want = n;
    pthread_mutex_unlock(&pool_lock);
}

static void *workpool_thread(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        while (!pool_head && !pool_stopping)
            pthread_cond_wait(&pool_cond, &pool_lock);
        struct workpool_job *j = pool_head;
        if (!j)
            break;
        pool_head = j->next;
        if (!pool_head)
            pool_tail = NULL;
        metrics_gauge_add(pool_queued, -1);
        metrics_gauge_add(pool_busy, 1);
        pthread_mutex_unlock(&pool_lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&pool_lock);
        metrics_gauge_add(pool_busy, -1);
    }
    pthread_mutex_unlock(&pool_lock);
    return NULL;
}

/* Called with the lock held. */
static int workpool_start(void)
{
    workpool_metrics();
    pool_threads = calloc(pool_want, sizeof(*pool_threads));
    if (!pool_threads)
        return -1;
    for (unsigned i = 0; i < pool_want; i++) {
        if (pthread_create(&pool_threads[i], NULL, workpool_thread, NULL) != 0)
            break;
        pool_nthreads++;
    }
    if (pool_nthreads == 0) {
        free(pool_threads);
        pool_threads = NULL;
        return -1;
    }
    pool_started = true;
    return 0;
}

int workpool_submit(void (*fn)(void *arg), void *arg)
{
    struct workpool_job *j = malloc(sizeof(*j));
    if (!j)
        return -1;
    j->next = NULL;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&pool_lock);
    if (pool_stopping || (!pool_started && workpool_start() < 0)) {
        pthread_mutex_unlock(&pool_lock);
        free(j);
        log_err("work pool unavailable");
        return -1;
    }
    if (pool_tail)
        pool_tail->next = j;
    else
        pool_head = j;
    pool_tail = j;
    metrics_gauge_add(pool_queued, 1);
    pthread_cond_signal(&pool_cond);
    pthread_mutex_unlock(&pool_lock);
    return 0;
}

void workpool_shutdown(void)
{
    pthread_mutex_lock(&pool_lock);
    pool_stopping = true;
    pthread_cond_broadcast(&pool_cond);
    unsigned n = pool_nthreads;
    pthread_t *threads = pool_threads;
    pthread_mutex_unlock(&pool_lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_lock(&pool_lock);
    free(pool_threads);
    pool_threads = NULL;
    pool_nthreads = 0;
    pool_started = false;
    pthread_mutex_unlock(&pool_lock);
}
