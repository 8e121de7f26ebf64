/*
 * workpool's per-client share: with 4 threads a client runs one job at a
 * time, so jobs of client A that block leave three threads to everyone else,
 * and a job of client B queued after all of A's runs while A's first still
 * blocks.  Jobs without a client are never held back.  Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "chain/workpool.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool release_a;
static int a_running, a_done, b_done, free_done;

static void job_a(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    a_running++;
    pthread_cond_broadcast(&cond);
    while (!release_a)
        pthread_cond_wait(&cond, &lock);
    a_running--;
    a_done++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void job_count(void *arg)
{
    pthread_mutex_lock(&lock);
    (*(int *)arg)++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* Waits (at most 5 s) until *v reaches want; true when it did. */
static bool wait_for(int *v, int want)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 5;
    pthread_mutex_lock(&lock);
    int rc = 0;
    while (*v < want && rc == 0)
        rc = pthread_cond_timedwait(&cond, &lock, &end);
    bool ok = *v >= want;
    pthread_mutex_unlock(&lock);
    return ok;
}

static void test_one_client_holds_its_share_only(void **state)
{
    (void)state;
    workpool_set_threads(4);
    assert_int_equal(workpool_client_share(), 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(workpool_submit_for("192.0.2.1", job_a, NULL), 0);
    assert_int_equal(workpool_submit_for("192.0.2.2", job_count, &b_done), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(workpool_submit(job_count, &free_done), 0);
    assert_true(wait_for(&b_done, 1));
    assert_true(wait_for(&free_done, 3));
    pthread_mutex_lock(&lock);
    /* A's share is one thread, however many of its jobs wait. */
    assert_int_equal(a_running, 1);
    assert_int_equal(a_done, 0);
    release_a = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    assert_true(wait_for(&a_done, 6));
    workpool_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_client_holds_its_share_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
