/*
 * milter_seen - header fields milter instances added, per transaction (see
 * the header).  A list under one mutex: transactions in flight are few
 * compared with the cost of a milter round trip, and each entry is dropped
 * when its transaction ends.
 */
#include "plugins/milter/milter_seen.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct seen {
    char *tx;
    const void *owner;
    struct mc_seen_field f;
    struct seen *next;
};

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen *seen_head, **seen_tail = &seen_head;

int mc_seen_add(const char *tx, const void *owner, const char *name, const char *value, bool top)
{
    struct seen *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    e->tx = strdup(tx);
    e->f.name = strdup(name);
    e->f.value = strdup(value);
    e->f.top = top;
    e->owner = owner;
    if (!e->tx || !e->f.name || !e->f.value) {
        free(e->tx);
        free(e->f.name);
        free(e->f.value);
        free(e);
        return -1;
    }
    pthread_mutex_lock(&seen_lock);
    *seen_tail = e;
    seen_tail = &e->next;
    pthread_mutex_unlock(&seen_lock);
    return 0;
}

void mc_seen_drop(const char *tx, const void *owner)
{
    pthread_mutex_lock(&seen_lock);
    struct seen **pp = &seen_head;
    seen_tail = &seen_head;
    while (*pp) {
        struct seen *e = *pp;
        if (e->owner == owner && strcmp(e->tx, tx) == 0) {
            *pp = e->next;
            free(e->tx);
            free(e->f.name);
            free(e->f.value);
            free(e);
            continue;
        }
        pp = &e->next;
        seen_tail = pp;
    }
    pthread_mutex_unlock(&seen_lock);
}

struct mc_seen_field *mc_seen_collect(const char *tx, const void *not_owner, size_t *n)
{
    *n = 0;
    pthread_mutex_lock(&seen_lock);
    size_t count = 0;
    for (struct seen *e = seen_head; e; e = e->next)
        count += e->owner != not_owner && strcmp(e->tx, tx) == 0;
    struct mc_seen_field *out = count ? calloc(count, sizeof(*out)) : NULL;
    size_t k = 0;
    for (struct seen *e = seen_head; out && e; e = e->next) {
        if (e->owner == not_owner || strcmp(e->tx, tx) != 0)
            continue;
        out[k].name = strdup(e->f.name);
        out[k].value = strdup(e->f.value);
        out[k].top = e->f.top;
        if (!out[k].name || !out[k].value) {
            free(out[k].name);
            free(out[k].value);
            continue;
        }
        k++;
    }
    pthread_mutex_unlock(&seen_lock);
    *n = k;
    return out;
}

void mc_seen_free(struct mc_seen_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].value);
    }
    free(f);
}
