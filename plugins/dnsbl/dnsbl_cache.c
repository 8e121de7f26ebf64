/*
 * dnsbl_cache - a hash table of query names with a list from the oldest
 * entry to the newest (see dnsbl_cache.h).  Entries are looked up under one
 * mutex: a lookup is a hash and a few string compares, far less than the
 * DNS round trip it saves, so a finer lock would buy nothing.
 */
#include "dnsbl_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next_in_bucket;
    struct entry *older, *newer;
    double expires;
    struct dnsbl_answer answer;
    char name[];
};

struct dnsbl_cache {
    atomic_uint refs;
    pthread_mutex_t lock;
    size_t max, n, nbuckets;
    struct entry **buckets;
    struct entry *oldest, *newest;
};

static size_t hash(const char *s)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

struct dnsbl_cache *dnsbl_cache_new(size_t max)
{
    struct dnsbl_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->max = max;
    c->nbuckets = 64;
    while (c->nbuckets < max)
        c->nbuckets *= 2;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

struct dnsbl_cache *dnsbl_cache_ref(struct dnsbl_cache *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void dnsbl_cache_unref(struct dnsbl_cache *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (struct entry *e = c->oldest; e;) {
        struct entry *next = e->newer;
        free(e);
        e = next;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct entry **slot_of(struct dnsbl_cache *c, const char *name)
{
    struct entry **pp = &c->buckets[hash(name) & (c->nbuckets - 1)];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next_in_bucket;
    return pp;
}

static void unlink_entry(struct dnsbl_cache *c, struct entry **slot)
{
    struct entry *e = *slot;
    *slot = e->next_in_bucket;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    c->n--;
    free(e);
}

bool dnsbl_cache_get(struct dnsbl_cache *c, const char *name, double now, struct dnsbl_answer *out)
{
    if (!c)
        return false;
    pthread_mutex_lock(&c->lock);
    struct entry **slot = slot_of(c, name);
    bool found = false;
    if (*slot && (*slot)->expires <= now)
        unlink_entry(c, slot);
    else if (*slot) {
        *out = (*slot)->answer;
        found = true;
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void dnsbl_cache_put(struct dnsbl_cache *c, const char *name, const struct dnsbl_answer *a,
                     double ttl, double now)
{
    if (!c || c->max == 0 || ttl <= 0)
        return;
    size_t len = strlen(name);
    struct entry *e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return; /* a cache that cannot grow only costs queries */
    memcpy(e->name, name, len + 1);
    e->answer = *a;
    e->expires = now + ttl;
    pthread_mutex_lock(&c->lock);
    struct entry **slot = slot_of(c, name);
    if (*slot)
        unlink_entry(c, slot);
    while (c->n >= c->max && c->oldest)
        unlink_entry(c, slot_of(c, c->oldest->name));
    slot = slot_of(c, name);
    e->next_in_bucket = NULL;
    *slot = e;
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
    c->n++;
    pthread_mutex_unlock(&c->lock);
}

size_t dnsbl_cache_size(struct dnsbl_cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}
