/*
 * recent_tx - the ring of the last transactions (see recent_tx.h).
 */
#include "daemon/recent_tx.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static char **ring;
static size_t ring_cap, ring_next, ring_used;
/* Read without the lock on every transaction: off is the common case. */
static atomic_bool ring_on;

void recent_tx_enable(size_t n)
{
    pthread_mutex_lock(&ring_lock);
    for (size_t i = 0; i < ring_cap; i++)
        free(ring[i]);
    free(ring);
    ring = n ? calloc(n, sizeof(*ring)) : NULL;
    ring_cap = ring ? n : 0;
    ring_next = ring_used = 0;
    atomic_store(&ring_on, ring_cap > 0);
    pthread_mutex_unlock(&ring_lock);
}

bool recent_tx_enabled(void)
{
    return atomic_load(&ring_on);
}

void recent_tx_add(const char *json, size_t len)
{
    if (!recent_tx_enabled())
        return;
    while (len > 0 && (json[len - 1] == '\n' || json[len - 1] == '\0'))
        len--;
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* the page misses one line; the mail does not care */
    memcpy(copy, json, len);
    copy[len] = '\0';
    pthread_mutex_lock(&ring_lock);
    if (ring_cap == 0) {
        pthread_mutex_unlock(&ring_lock);
        free(copy);
        return;
    }
    char *old = ring[ring_next];
    ring[ring_next] = copy;
    ring_next = (ring_next + 1) % ring_cap;
    if (ring_used < ring_cap)
        ring_used++;
    pthread_mutex_unlock(&ring_lock);
    free(old);
}

char *recent_tx_json(size_t *len)
{
    pthread_mutex_lock(&ring_lock);
    size_t total = 3;
    for (size_t i = 0; i < ring_used; i++)
        total += strlen(ring[(ring_next + ring_cap - 1 - i) % ring_cap]) + 2;
    char *out = malloc(total);
    size_t k = 0;
    if (out) {
        out[k++] = '[';
        for (size_t i = 0; i < ring_used; i++) {
            const char *e = ring[(ring_next + ring_cap - 1 - i) % ring_cap];
            size_t n = strlen(e);
            if (i > 0)
                out[k++] = ',';
            out[k++] = '\n';
            memcpy(out + k, e, n);
            k += n;
        }
        out[k++] = ']';
        out[k] = '\0';
    }
    pthread_mutex_unlock(&ring_lock);
    if (len)
        *len = k;
    return out;
}
