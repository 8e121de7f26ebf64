/*
 * kv_local - the in-process backend of the state layer (contract in kv.h):
 * one hash table per store, shared by every worker thread under one mutex,
 * and every entry on a list in the order it was last written.
 *
 * Bounds: at most max_entries entries.  A write that would pass the bound
 * first drops the entry written longest ago (expired or not), so memory
 * stays at about max_entries * (sizeof(struct entry) + key) whatever
 * clients do: about 130 octets plus the key per entry on 64-bit Linux
 * (each entry carries room for a window's slots), plus 8 octets of bucket
 * per 2 entries.  Expired entries are dropped when read, and a write looks
 * at the two oldest entries and drops those that have expired, so an idle
 * store shrinks as it is used.
 *
 * Why "last written" and not "last read": an attacker who sprays new keys
 * evicts what is written least, and the keys that matter (a counter that is
 * hitting its limit) are written at every event.
 *
 * Every operation answers before it returns (done is called under no lock:
 * done may start another operation).  Nothing survives the process: a
 * restart forgets every rate and greylist entry (documented).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_impl.h"

struct entry {
    struct entry *hnext;
    struct entry *prev, *next; /* write order: head is the oldest */
    uint64_t hash;
    int64_t expires_ms; /* 0: never */
    bool is_window;
    int64_t last_slot; /* window: the newest slot counted */
    union {
        long long value;
        uint32_t slots[KV_WINDOW_SLOTS];
    } u;
    char key[];
};

struct kv_local {
    struct kv head;
    pthread_mutex_t lock;
    size_t max_entries, count;
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    struct entry *oldest, *newest;
};

static uint64_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static void list_unlink(struct kv_local *s, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->oldest = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->newest = e->prev;
    e->prev = e->next = NULL;
}

static void list_append(struct kv_local *s, struct entry *e)
{
    e->prev = s->newest;
    e->next = NULL;
    if (s->newest)
        s->newest->next = e;
    else
        s->oldest = e;
    s->newest = e;
}

static void entry_remove(struct kv_local *s, struct entry *e)
{
    struct entry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    list_unlink(s, e);
    s->count--;
    free(e);
}

static bool expired(const struct entry *e, int64_t now)
{
    return e->expires_ms != 0 && e->expires_ms <= now;
}

static struct entry *entry_find(struct kv_local *s, const char *key, uint64_t h, int64_t now)
{
    for (struct entry *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0) {
            if (expired(e, now)) {
                entry_remove(s, e);
                return NULL;
            }
            return e;
        }
    return NULL;
}

/* The entry for key, created (zeroed) if absent, moved to the newest end;
 * NULL only when memory runs out. */
static struct entry *entry_for_write(struct kv_local *s, const char *key, int64_t now)
{
    for (int i = 0; i < 2 && s->oldest && expired(s->oldest, now); i++)
        entry_remove(s, s->oldest);
    uint64_t h = key_hash(key);
    struct entry *e = entry_find(s, key, h, now);
    if (e) {
        list_unlink(s, e);
        list_append(s, e);
        return e;
    }
    while (s->count >= s->max_entries && s->oldest)
        entry_remove(s, s->oldest);
    size_t klen = strlen(key);
    e = calloc(1, sizeof(*e) + klen + 1);
    if (!e)
        return NULL;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    struct entry **b = &s->buckets[h & (s->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    list_append(s, e);
    s->count++;
    return e;
}

static void local_window(struct kv *kv, struct event_base *base, const char *key,
                         uint64_t window_ms, kv_done_fn done, void *arg)
{
    (void)base;
    struct kv_local *s = (struct kv_local *)kv;
    int64_t now = kv_now_ms();
    int64_t slot_ms = (int64_t)(window_ms / KV_WINDOW_SLOTS);
    if (slot_ms < 1)
        slot_ms = 1;
    int64_t cur = now / slot_ms;
    pthread_mutex_lock(&s->lock);
    struct entry *e = entry_for_write(s, key, now);
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        done(arg, KV_FAILED, 0);
        return;
    }
    if (!e->is_window) {
        memset(&e->u, 0, sizeof(e->u));
        e->is_window = true;
        e->last_slot = cur;
    }
    /* Slots between the last event and now held events of long ago. */
    if (cur - e->last_slot >= KV_WINDOW_SLOTS)
        memset(e->u.slots, 0, sizeof(e->u.slots));
    else
        for (int64_t k = e->last_slot + 1; k <= cur; k++)
            e->u.slots[k % KV_WINDOW_SLOTS] = 0;
    if (cur > e->last_slot)
        e->last_slot = cur;
    uint32_t *slot = &e->u.slots[cur % KV_WINDOW_SLOTS];
    if (*slot < UINT32_MAX)
        (*slot)++;
    long long total = 0;
    for (int k = 0; k < KV_WINDOW_SLOTS; k++)
        total += e->u.slots[k];
    e->expires_ms = now + (int64_t)window_ms;
    pthread_mutex_unlock(&s->lock);
    done(arg, KV_OK, total);
}

static void local_add(struct kv *kv, struct event_base *base, const char *key, long long delta,
                      uint64_t ttl_ms, kv_done_fn done, void *arg)
{
    (void)base;
    struct kv_local *s = (struct kv_local *)kv;
    int64_t now = kv_now_ms();
    pthread_mutex_lock(&s->lock);
    struct entry *e = entry_for_write(s, key, now);
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        done(arg, KV_FAILED, 0);
        return;
    }
    if (e->is_window) {
        e->is_window = false;
        e->u.value = 0;
    }
    e->u.value += delta;
    if (ttl_ms)
        e->expires_ms = now + (int64_t)ttl_ms;
    long long v = e->u.value;
    pthread_mutex_unlock(&s->lock);
    done(arg, KV_OK, v);
}

static void local_set(struct kv *kv, struct event_base *base, const char *key, long long value,
                      uint64_t ttl_ms, kv_done_fn done, void *arg)
{
    (void)base;
    struct kv_local *s = (struct kv_local *)kv;
    int64_t now = kv_now_ms();
    pthread_mutex_lock(&s->lock);
    struct entry *e = entry_for_write(s, key, now);
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        done(arg, KV_FAILED, 0);
        return;
    }
    e->is_window = false;
    e->u.value = value;
    e->expires_ms = ttl_ms ? now + (int64_t)ttl_ms : 0;
    pthread_mutex_unlock(&s->lock);
    done(arg, KV_OK, value);
}

static void local_get(struct kv *kv, struct event_base *base, const char *key, kv_done_fn done,
                      void *arg)
{
    (void)base;
    struct kv_local *s = (struct kv_local *)kv;
    pthread_mutex_lock(&s->lock);
    struct entry *e = entry_find(s, key, key_hash(key), kv_now_ms());
    bool found = e && !e->is_window;
    long long v = found ? e->u.value : 0;
    pthread_mutex_unlock(&s->lock);
    done(arg, found ? KV_OK : KV_ABSENT, v);
}

static void local_destroy(struct kv *kv)
{
    struct kv_local *s = (struct kv_local *)kv;
    while (s->oldest) {
        struct entry *e = s->oldest;
        s->oldest = e->next;
        free(e);
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static bool local_same_config(const struct kv *kv, const struct kv_config *cfg)
{
    const struct kv_local *s = (const struct kv_local *)kv;
    return cfg->backend == KV_LOCAL && cfg->max_entries == s->max_entries;
}

static const struct kv_backend_ops local_ops = {
    .name = "local",
    .destroy = local_destroy,
    .same_config = local_same_config,
    .window = local_window,
    .add = local_add,
    .set = local_set,
    .get = local_get,
};

struct kv *kv_local_open(const struct kv_config *cfg, char *err, size_t errlen)
{
    struct kv_local *s = calloc(1, sizeof(*s));
    size_t want = cfg->max_entries > 0 ? cfg->max_entries : 1;
    if (s) {
        s->nbuckets = 64;
        while (s->nbuckets < want / 2 && s->nbuckets < ((size_t)1 << 26))
            s->nbuckets <<= 1;
        s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    }
    if (!s || !s->buckets) {
        free(s);
        snprintf(err, errlen, "out of memory for the local state");
        return NULL;
    }
    s->head.ops = &local_ops;
    s->max_entries = want;
    pthread_mutex_init(&s->lock, NULL);
    return &s->head;
}
