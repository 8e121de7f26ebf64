/*
 * kv_store - the front of the state layer (contract in kv.h): opens the backend
 * a configuration names, counts references, hands each operation to the
 * backend.  A key that is empty or longer than KV_KEY_MAX fails the
 * operation (KV_FAILED, through done as always) rather than being cut,
 * which would make two keys one.
 */
#include "kv.h"

#include <string.h>

#include "kv_impl.h"

struct kv *kv_open(const struct kv_config *cfg, char *err, size_t errlen)
{
    struct kv *kv = cfg->backend == KV_REDIS ? kv_redis_open(cfg, err, errlen)
                                             : kv_local_open(cfg, err, errlen);
    if (kv)
        atomic_init(&kv->refs, 1);
    return kv;
}

struct kv *kv_ref(struct kv *kv)
{
    atomic_fetch_add(&kv->refs, 1);
    return kv;
}

void kv_unref(struct kv *kv)
{
    if (kv && atomic_fetch_sub(&kv->refs, 1) == 1)
        kv->ops->destroy(kv);
}

bool kv_same_config(const struct kv *kv, const struct kv_config *cfg)
{
    return kv && kv->ops->same_config(kv, cfg);
}

const char *kv_backend_name(const struct kv *kv)
{
    return kv->ops->name;
}

void kv_attach(struct kv *kv, struct event_base *base)
{
    if (kv->ops->attach)
        kv->ops->attach(kv, base);
}

void kv_detach(struct kv *kv, struct event_base *base)
{
    if (kv->ops->detach)
        kv->ops->detach(kv, base);
}

static bool key_ok(const char *key)
{
    return key && *key && strnlen(key, KV_KEY_MAX + 1) <= KV_KEY_MAX;
}

void kv_window(struct kv *kv, struct event_base *base, const char *key, uint64_t window_ms,
               kv_done_fn done, void *arg)
{
    if (!key_ok(key) || window_ms == 0)
        done(arg, KV_FAILED, 0);
    else
        kv->ops->window(kv, base, key, window_ms, done, arg);
}

void kv_add(struct kv *kv, struct event_base *base, const char *key, long long delta,
            uint64_t ttl_ms, kv_done_fn done, void *arg)
{
    if (!key_ok(key))
        done(arg, KV_FAILED, 0);
    else
        kv->ops->add(kv, base, key, delta, ttl_ms, done, arg);
}

void kv_set(struct kv *kv, struct event_base *base, const char *key, long long value,
            uint64_t ttl_ms, kv_done_fn done, void *arg)
{
    if (!key_ok(key))
        done(arg, KV_FAILED, 0);
    else
        kv->ops->set(kv, base, key, value, ttl_ms, done, arg);
}

void kv_get(struct kv *kv, struct event_base *base, const char *key, kv_done_fn done, void *arg)
{
    if (!key_ok(key))
        done(arg, KV_FAILED, 0);
    else
        kv->ops->get(kv, base, key, done, arg);
}
