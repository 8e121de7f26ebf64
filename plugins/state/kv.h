/*
 * kv - the key-value state that the rate limit and greylist plugins keep:
 * counters over a sliding window, counters, values with a lifetime.  One
 * contract, two backends: "local" (in the process, kv_local.c) and "redis"
 * (a Redis server shared by a fleet, kv_redis.c).
 *
 * Operations (key: a NUL-terminated text of at most KV_KEY_MAX octets):
 *
 *   kv_window(key, window_ms)   records one event now and gives the number
 *                               of events in the last window_ms, this one
 *                               included
 *   kv_add(key, delta, ttl_ms)  adds delta (may be negative) to a counter
 *                               (absent: 0) and gives the new value; ttl_ms
 *                               > 0 (re)starts its lifetime
 *   kv_set(key, value, ttl_ms)  stores value for ttl_ms (0: no expiry)
 *   kv_get(key)                 the value, or KV_ABSENT
 *
 * Each result comes through done(arg, status, value) exactly once: KV_OK
 * (value set), KV_ABSENT (kv_get only) or KV_FAILED (the backend could not
 * answer in time, or answered nonsense).  The local backend calls done
 * before the operation returns; the Redis backend calls it later, from the
 * event loop given as base, on that loop's thread, and never later than its
 * deadline (redis_timeout) after the call; done may be called before the
 * call returns there too (a connection that cannot even be started).  done
 * may start further operations.
 *
 * The sliding window: the window is cut into KV_WINDOW_SLOTS slots of
 * window_ms / KV_WINDOW_SLOTS, aligned on the Unix epoch, so that every
 * instance of a fleet cuts time the same way.  The count is the events of
 * the current slot and of the KV_WINDOW_SLOTS - 1 before it: an event older
 * than window_ms never counts, one younger than window_ms minus one slot
 * always does.  Every call records an event, refused or not.
 *
 * An event loop that a connection uses is attached with kv_attach() before
 * its first operation and detached with kv_detach() when the connection is
 * done with it, on the loop's thread both; the Redis backend keeps one
 * server connection per attached loop and closes it when the last user
 * detaches (so nothing of it outlives the loop).
 *
 * A struct kv is reference counted (kv_ref, kv_unref): a plugin's reload
 * carries a store over to the new instance when the backend settings did
 * not change.  Operations on one struct kv may run on any number of threads
 * at once.
 */
#ifndef SMTPGATE_STATE_KV_H
#define SMTPGATE_STATE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define KV_KEY_MAX      512
#define KV_WINDOW_SLOTS 20

enum kv_status { KV_OK = 0, KV_ABSENT, KV_FAILED };
enum kv_backend { KV_LOCAL = 0, KV_REDIS };

typedef void (*kv_done_fn)(void *arg, enum kv_status status, long long value);

/* What a store is made from; strings are copied by kv_open. */
struct kv_config {
    enum kv_backend backend;
    size_t max_entries;         /* local */
    const char *redis;          /* "host:port" or "unix:/path" */
    const char *redis_password; /* NULL or "": no AUTH */
    long redis_db;              /* 0: no SELECT */
    long redis_timeout_ms;
};

/* A new store, or NULL with the reason in err. */
struct kv *kv_open(const struct kv_config *cfg, char *err, size_t errlen);
struct kv *kv_ref(struct kv *kv);
void kv_unref(struct kv *kv);
/* Whether a store opened from cfg would be the same as kv (reload). */
bool kv_same_config(const struct kv *kv, const struct kv_config *cfg);
const char *kv_backend_name(const struct kv *kv);

void kv_attach(struct kv *kv, struct event_base *base);
void kv_detach(struct kv *kv, struct event_base *base);

void kv_window(struct kv *kv, struct event_base *base, const char *key, uint64_t window_ms,
               kv_done_fn done, void *arg);
void kv_add(struct kv *kv, struct event_base *base, const char *key, long long delta,
            uint64_t ttl_ms, kv_done_fn done, void *arg);
void kv_set(struct kv *kv, struct event_base *base, const char *key, long long value,
            uint64_t ttl_ms, kv_done_fn done, void *arg);
void kv_get(struct kv *kv, struct event_base *base, const char *key, kv_done_fn done, void *arg);

static inline void kv_incr(struct kv *kv, struct event_base *base, const char *key, uint64_t ttl_ms,
                           kv_done_fn done, void *arg)
{
    kv_add(kv, base, key, 1, ttl_ms, done, arg);
}

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): the clock every
 * instance of a fleet shares. */
int64_t kv_now_ms(void);

#endif
