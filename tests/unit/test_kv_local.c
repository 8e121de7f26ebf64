/*
 * Unit tests for plugins/state's local backend through the kv contract:
 * every answer before the call returns, counters and values, lifetimes,
 * the sliding window (counts, and events leaving it), the max_entries bound
 * with the entry written longest ago going first, keys refused whole, and
 * a store shared by threads counting one key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "state/kv.h"

struct answer {
    int calls;
    enum kv_status st;
    long long value;
};

static void got(void *arg, enum kv_status st, long long value)
{
    struct answer *a = arg;
    a->calls++;
    a->st = st;
    a->value = value;
}

static struct kv *open_local(size_t max)
{
    struct kv_config cfg = {.backend = KV_LOCAL, .max_entries = max};
    char err[128];
    struct kv *kv = kv_open(&cfg, err, sizeof(err));
    assert_non_null(kv);
    assert_string_equal(kv_backend_name(kv), "local");
    return kv;
}

static struct answer get(struct kv *kv, const char *key)
{
    struct answer a = {0};
    kv_get(kv, NULL, key, got, &a);
    assert_int_equal(a.calls, 1);
    return a;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_values_and_counters(void **state)
{
    (void)state;
    struct kv *kv = open_local(100);
    assert_int_equal(get(kv, "a").st, KV_ABSENT);
    struct answer a = {0};
    kv_set(kv, NULL, "a", 42, 0, got, &a);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.st, KV_OK);
    assert_int_equal(get(kv, "a").value, 42);
    kv_add(kv, NULL, "a", 3, 0, got, &a);
    assert_int_equal(a.value, 45);
    kv_incr(kv, NULL, "n", 0, got, &a);
    kv_incr(kv, NULL, "n", 0, got, &a);
    kv_add(kv, NULL, "n", -5, 0, got, &a);
    assert_int_equal(a.calls, 5);
    assert_int_equal(a.value, -3);
    kv_unref(kv);
}

static void test_lifetimes(void **state)
{
    (void)state;
    struct kv *kv = open_local(100);
    struct answer a = {0};
    kv_set(kv, NULL, "short", 1, 150, got, &a);
    kv_set(kv, NULL, "long", 2, 60000, got, &a);
    kv_add(kv, NULL, "counter", 1, 150, got, &a);
    assert_int_equal(get(kv, "short").st, KV_OK);
    sleep_ms(300);
    assert_int_equal(get(kv, "short").st, KV_ABSENT);
    assert_int_equal(get(kv, "counter").st, KV_ABSENT);
    assert_int_equal(get(kv, "long").value, 2);
    /* An expired counter starts again from nothing. */
    kv_add(kv, NULL, "counter", 1, 150, got, &a);
    assert_int_equal(a.value, 1);
    kv_unref(kv);
}

static void test_window(void **state)
{
    (void)state;
    struct kv *kv = open_local(100);
    struct answer a = {0};
    for (int i = 1; i <= 5; i++) {
        kv_window(kv, NULL, "w", 3600000, got, &a);
        assert_int_equal(a.st, KV_OK);
        assert_int_equal(a.value, i);
    }
    /* Another window length is another key's business; another key too. */
    kv_window(kv, NULL, "w2", 3600000, got, &a);
    assert_int_equal(a.value, 1);
    /* A 1 s window: events of more than a second ago have left it. */
    kv_window(kv, NULL, "s", 1000, got, &a);
    kv_window(kv, NULL, "s", 1000, got, &a);
    assert_int_equal(a.value, 2);
    sleep_ms(1100);
    kv_window(kv, NULL, "s", 1000, got, &a);
    assert_int_equal(a.value, 1);
    /* A window's counts are not a value. */
    assert_int_equal(get(kv, "w").st, KV_ABSENT);
    assert_int_equal(a.calls, 9);
    kv_unref(kv);
}

static void test_bound_evicts_oldest_written(void **state)
{
    (void)state;
    struct kv *kv = open_local(3);
    struct answer a = {0};
    kv_set(kv, NULL, "k1", 1, 0, got, &a);
    kv_set(kv, NULL, "k2", 2, 0, got, &a);
    kv_set(kv, NULL, "k3", 3, 0, got, &a);
    kv_add(kv, NULL, "k1", 10, 0, got, &a); /* k1 is now the newest write */
    kv_set(kv, NULL, "k4", 4, 0, got, &a);  /* evicts k2 */
    assert_int_equal(get(kv, "k2").st, KV_ABSENT);
    assert_int_equal(get(kv, "k1").value, 11);
    assert_int_equal(get(kv, "k3").value, 3);
    assert_int_equal(get(kv, "k4").value, 4);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "x%d", i);
        kv_incr(kv, NULL, key, 0, got, &a);
    }
    assert_int_equal(get(kv, "x999").value, 1);
    assert_int_equal(get(kv, "x997").value, 1);
    assert_int_equal(get(kv, "x996").st, KV_ABSENT);
    assert_int_equal(get(kv, "k4").st, KV_ABSENT);
    kv_unref(kv);
}

static void test_keys_refused_whole(void **state)
{
    (void)state;
    struct kv *kv = open_local(10);
    char key[KV_KEY_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    struct answer a = {0};
    kv_set(kv, NULL, key, 1, 0, got, &a);
    assert_int_equal(a.st, KV_FAILED);
    key[KV_KEY_MAX] = '\0';
    kv_set(kv, NULL, key, 1, 0, got, &a);
    assert_int_equal(a.st, KV_OK);
    kv_set(kv, NULL, "", 1, 0, got, &a);
    assert_int_equal(a.st, KV_FAILED);
    kv_window(kv, NULL, "w", 0, got, &a);
    assert_int_equal(a.st, KV_FAILED);
    assert_int_equal(a.calls, 4);
    kv_unref(kv);
}

static void *count_up(void *arg)
{
    struct kv *kv = arg;
    struct answer a = {0};
    for (int i = 0; i < 5000; i++)
        kv_incr(kv, NULL, "shared", 0, got, &a);
    return NULL;
}

static void test_threads_share_one_store(void **state)
{
    (void)state;
    struct kv *kv = open_local(10);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_up, kv), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(get(kv, "shared").value, 20000);
    /* A reference taken (a reload) keeps the store for the next instance. */
    struct kv *again = kv_ref(kv);
    kv_unref(kv);
    assert_int_equal(get(again, "shared").value, 20000);
    struct kv_config same = {.backend = KV_LOCAL, .max_entries = 10};
    struct kv_config other = {.backend = KV_LOCAL, .max_entries = 11};
    assert_true(kv_same_config(again, &same));
    assert_false(kv_same_config(again, &other));
    kv_unref(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_counters),
        cmocka_unit_test(test_lifetimes),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_bound_evicts_oldest_written),
        cmocka_unit_test(test_keys_refused_whole),
        cmocka_unit_test(test_threads_share_one_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
