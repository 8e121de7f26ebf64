/*
 * kv_impl - what kv_store.c dispatches to: the operations table each backend
 * fills, and the common head of every store.  Private to plugins/state.
 */
#ifndef SMTPGATE_STATE_KV_IMPL_H
#define SMTPGATE_STATE_KV_IMPL_H

#include <stdatomic.h>

#include "kv.h"

struct kv_backend_ops {
    const char *name;
    void (*destroy)(struct kv *kv);
    bool (*same_config)(const struct kv *kv, const struct kv_config *cfg);
    void (*attach)(struct kv *kv, struct event_base *base);
    void (*detach)(struct kv *kv, struct event_base *base);
    void (*window)(struct kv *kv, struct event_base *base, const char *key, uint64_t window_ms,
                   kv_done_fn done, void *arg);
    void (*add)(struct kv *kv, struct event_base *base, const char *key, long long delta,
                uint64_t ttl_ms, kv_done_fn done, void *arg);
    void (*set)(struct kv *kv, struct event_base *base, const char *key, long long value,
                uint64_t ttl_ms, kv_done_fn done, void *arg);
    void (*get)(struct kv *kv, struct event_base *base, const char *key, kv_done_fn done,
                void *arg);
};

/* First member of every backend's store. */
struct kv {
    const struct kv_backend_ops *ops;
    atomic_int refs;
};

struct kv *kv_local_open(const struct kv_config *cfg, char *err, size_t errlen);
struct kv *kv_redis_open(const struct kv_config *cfg, char *err, size_t errlen);

#endif
