/*
 * runtime - the current config and the connection counters.
 *
 * Per-client counts live in a small open hash keyed by the client address,
 * under one mutex taken at accept and at close only.  Entries whose count
 * drops to zero are removed, so the table holds only connected clients.
 */
#include "daemon/runtime.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t runtime_config_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sg_config *runtime_current;

void runtime_set_config(struct sg_config *c)
{
    pthread_mutex_lock(&runtime_config_lock);
    struct sg_config *old = runtime_current;
    runtime_current = c;
    pthread_mutex_unlock(&runtime_config_lock);
    if (old)
        config_unref(old);
}

struct sg_config *runtime_config(void)
{
    pthread_mutex_lock(&runtime_config_lock);
    struct sg_config *c = runtime_current ? config_ref(runtime_current) : NULL;
    pthread_mutex_unlock(&runtime_config_lock);
    return c;
}

/* ---- connection counts ---- */

struct client_count {
    struct client_count *next;
    uint8_t addr[16];
    unsigned count;
};

#define CLIENT_BUCKETS 4096

static pthread_mutex_t runtime_conn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct client_count *client_buckets[CLIENT_BUCKETS];
static atomic_uint runtime_conns;

static void runtime_addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET6)
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    else if (sa->sa_family == AF_INET)
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
}

static unsigned runtime_addr_hash(const uint8_t key[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % CLIENT_BUCKETS;
}

enum runtime_admit runtime_conn_open(const struct sg_config *c, const struct sockaddr *peer)
{
    uint8_t key[16];
    runtime_addr_key(peer, key);
    unsigned b = runtime_addr_hash(key);

    pthread_mutex_lock(&runtime_conn_lock);
    if (atomic_load(&runtime_conns) >= c->max_connections) {
        pthread_mutex_unlock(&runtime_conn_lock);
        return ADMIT_TOO_MANY;
    }
    struct client_count *e;
    for (e = client_buckets[b]; e; e = e->next)
        if (memcmp(e->addr, key, 16) == 0)
            break;
    if (e && c->max_connections_per_client && e->count >= c->max_connections_per_client) {
        pthread_mutex_unlock(&runtime_conn_lock);
        return ADMIT_TOO_MANY_FROM_CLIENT;
    }
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e) {
            pthread_mutex_unlock(&runtime_conn_lock);
            return ADMIT_TOO_MANY;
        }
        memcpy(e->addr, key, 16);
        e->next = client_buckets[b];
        client_buckets[b] = e;
    }
    e->count++;
    atomic_fetch_add(&runtime_conns, 1);
    pthread_mutex_unlock(&runtime_conn_lock);
    return ADMIT_OK;
}

void runtime_conn_close(const struct sockaddr *peer)
{
    uint8_t key[16];
    runtime_addr_key(peer, key);
    unsigned b = runtime_addr_hash(key);

    pthread_mutex_lock(&runtime_conn_lock);
    for (struct client_count **pp = &client_buckets[b]; *pp; pp = &(*pp)->next) {
        struct client_count *e = *pp;
        if (memcmp(e->addr, key, 16) != 0)
            continue;
        if (--e->count == 0) {
            *pp = e->next;
            free(e);
        }
        atomic_fetch_sub(&runtime_conns, 1);
        break;
    }
    pthread_mutex_unlock(&runtime_conn_lock);
}

unsigned runtime_conn_count(void)
{
    return atomic_load(&runtime_conns);
}

void runtime_shutdown(void)
{
    runtime_set_config(NULL);
    pthread_mutex_lock(&runtime_conn_lock);
    for (unsigned b = 0; b < CLIENT_BUCKETS; b++) {
        while (client_buckets[b]) {
            struct client_count *e = client_buckets[b];
            client_buckets[b] = e->next;
            free(e);
        }
    }
    pthread_mutex_unlock(&runtime_conn_lock);
}
