/*
 * workpool - a queue of jobs under one mutex and condition variable, taken
 * first come first served except that no client holds more than its share.
 *
 * Jobs are rare next to the per-octet work of the event loops (one per
 * blocking plugin call), so one lock and a walk of the queue are no
 * contention worth avoiding.  A client's share is a quarter of the threads
 * (at least one): jobs of a client whose share is busy - its DNS stuck on a
 * dead domain, say - wait while later jobs of other clients pass them, so
 * one client's stuck work never queues anyone else's.
 */
#include "chain/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/metrics.h"

struct workpool_job {
    struct workpool_job *next;
    void (*fn)(void *);
    void *arg;
    uint64_t client; /* 0: no client; not counted against a share */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static struct workpool_job *pool_head, *pool_tail;
static pthread_t *pool_threads;
static uint64_t *pool_running; /* per thread: the client of its job, 0 when idle */
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

unsigned workpool_client_share(void)
{
    pthread_mutex_lock(&pool_lock);
    unsigned n = pool_started ? pool_nthreads : pool_want;
    pthread_mutex_unlock(&pool_lock);
    return n / 4 > 0 ? n / 4 : 1;
}

/* FNV-1a, never 0 (0 is "no client"). */
static uint64_t workpool_client_key(const char *client)
{
    if (client == NULL || *client == '\0')
        return 0;
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)client; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h != 0 ? h : 1;
}

/* Called with the lock held. */
static bool workpool_may_run(uint64_t client)
{
    if (client == 0)
        return true;
    unsigned share = pool_nthreads / 4 > 0 ? pool_nthreads / 4 : 1, busy = 0;
    for (unsigned i = 0; i < pool_nthreads; i++)
        if (pool_running[i] == client)
            busy++;
    return busy < share;
}

/* Called with the lock held: the first job whose client is within its
 * share, out of the queue, or NULL. */
static struct workpool_job *workpool_take(void)
{
    struct workpool_job *prev = NULL;
    for (struct workpool_job *j = pool_head; j; prev = j, j = j->next) {
        if (!workpool_may_run(j->client))
            continue;
        if (prev)
            prev->next = j->next;
        else
            pool_head = j->next;
        if (pool_tail == j)
            pool_tail = prev;
        return j;
    }
    return NULL;
}

static void *workpool_thread(void *slot)
{
    uint64_t *running = slot;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        struct workpool_job *j;
        /* Stopping: the queue is drained whatever the shares. */
        while (!(j = pool_stopping ? pool_head : workpool_take()) && !pool_stopping)
            pthread_cond_wait(&pool_cond, &pool_lock);
        if (!j)
            break;
        if (pool_stopping) {
            pool_head = j->next;
            if (!pool_head)
                pool_tail = NULL;
        }
        *running = j->client;
        metrics_gauge_add(pool_queued, -1);
        metrics_gauge_add(pool_busy, 1);
        pthread_mutex_unlock(&pool_lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&pool_lock);
        metrics_gauge_add(pool_busy, -1);
        *running = 0;
        /* A job held back by this client's share may run now. */
        if (pool_head)
            pthread_cond_broadcast(&pool_cond);
    }
    pthread_mutex_unlock(&pool_lock);
    return NULL;
}

/* Called with the lock held. */
static int workpool_start(void)
{
    workpool_metrics();
    pool_threads = calloc(pool_want, sizeof(*pool_threads));
    pool_running = calloc(pool_want, sizeof(*pool_running));
    if (!pool_threads || !pool_running) {
        free(pool_threads);
        free(pool_running);
        pool_threads = NULL;
        pool_running = NULL;
        return -1;
    }
    for (unsigned i = 0; i < pool_want; i++) {
        if (pthread_create(&pool_threads[i], NULL, workpool_thread, &pool_running[i]) != 0)
            break;
        pool_nthreads++;
    }
    if (pool_nthreads == 0) {
        free(pool_threads);
        free(pool_running);
        pool_threads = NULL;
        pool_running = NULL;
        return -1;
    }
    pool_started = true;
    return 0;
}

int workpool_submit_for(const char *client, void (*fn)(void *arg), void *arg)
{
    struct workpool_job *j = malloc(sizeof(*j));
    if (!j)
        return -1;
    j->next = NULL;
    j->fn = fn;
    j->arg = arg;
    j->client = workpool_client_key(client);
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
    /* Every idle thread looks: the first may find only held-back jobs. */
    pthread_cond_broadcast(&pool_cond);
    pthread_mutex_unlock(&pool_lock);
    return 0;
}

int workpool_submit(void (*fn)(void *arg), void *arg)
{
    return workpool_submit_for(NULL, fn, arg);
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
    free(pool_running);
    pool_threads = NULL;
    pool_running = NULL;
    pool_nthreads = 0;
    pool_started = false;
    pthread_mutex_unlock(&pool_lock);
}
