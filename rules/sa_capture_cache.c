/*
 * sa_capture_cache - compiled template patterns shared by the set's users
 * (see sa_capture_cache.h).  The table is small and looked up a few times
 * a message, so a linear scan under the mutex is cheaper than keeping a
 * hash; the mutex is held for the scan only, never for a compilation.
 */
#include "rules/sa_capture_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct sa_capture_code {
    atomic_uint refs;
    size_t rule;
    char *pat;
    size_t len;
    pcre2_code *re;
    uint64_t used; /* the cache's clock at its last use */
};

struct sa_capture_cache {
    pthread_mutex_t lock;
    struct sa_capture_code *v[SA_CAPTURE_CACHE_MAX];
    size_t n;
    uint64_t clock;
};

struct sa_capture_cache *sa_capture_cache_new(void)
{
    struct sa_capture_cache *c = util_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void sa_capture_code_release(struct sa_capture_code *k)
{
    if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    pcre2_code_free(k->re);
    free(k->pat);
    free(k);
}

void sa_capture_cache_free(struct sa_capture_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        sa_capture_code_release(c->v[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const pcre2_code *sa_capture_code_re(const struct sa_capture_code *k)
{
    return k->re;
}

struct sa_capture_code *sa_capture_cache_get(struct sa_capture_cache *c, size_t rule,
                                             const char *pat, size_t len)
{
    struct sa_capture_code *found = NULL;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n && found == NULL; i++) {
        struct sa_capture_code *k = c->v[i];
        if (k->rule == rule && k->len == len && memcmp(k->pat, pat, len) == 0) {
            atomic_fetch_add(&k->refs, 1);
            k->used = ++c->clock;
            found = k;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

struct sa_capture_code *sa_capture_cache_put(struct sa_capture_cache *c, size_t rule,
                                             const char *pat, size_t len, pcre2_code *re)
{
    struct sa_capture_code *k = util_calloc(1, sizeof(*k));
    char *copy = k != NULL ? util_memdup(pat, len) : NULL;
    if (copy == NULL) {
        free(k);
        pcre2_code_free(re);
        return NULL;
    }
    *k = (struct sa_capture_code){.rule = rule, .pat = copy, .len = len, .re = re};
    atomic_init(&k->refs, 2); /* the caller's and the table's */
    struct sa_capture_code *out = NULL;
    pthread_mutex_lock(&c->lock);
    k->used = ++c->clock;
    if (c->n == SA_CAPTURE_CACHE_MAX) {
        size_t old = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->v[i]->used < c->v[old]->used)
                old = i;
        out = c->v[old];
        c->v[old] = c->v[--c->n];
    }
    c->v[c->n++] = k;
    pthread_mutex_unlock(&c->lock);
    sa_capture_code_release(out); /* freed now, or by its last user */
    return k;
}
