/*
 * runtime - the runtime in force and the connection counters.
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
#include <unistd.h>

#include "chain/chain.h"
#include "daemon/tls.h"
#include "util/metrics.h"

struct sg_runtime *runtime_new(struct sg_config *cfg, unsigned generation)
{
    struct sg_runtime *rt = calloc(1, sizeof(*rt));
    if (rt) {
        rt->listen_tls = calloc(cfg->nlisten + 1, sizeof(*rt->listen_tls));
        rt->upstreams = calloc(cfg->nupstreams + 1, sizeof(*rt->upstreams));
    }
    if (!rt || !rt->listen_tls || !rt->upstreams) {
        if (rt) {
            free(rt->listen_tls);
            free(rt->upstreams);
        }
        free(rt);
        config_unref(cfg);
        return NULL;
    }
    atomic_init(&rt->refs, 1);
    rt->generation = generation;
    rt->cfg = cfg;
    rt->verdict_fd = -1;
    return rt;
}

struct sg_runtime *runtime_ref(struct sg_runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

void runtime_unref(struct sg_runtime *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < rt->cfg->nlisten; i++)
        tls_server_free(rt->listen_tls[i]);
    for (size_t i = 0; i < rt->cfg->nupstreams; i++)
        tls_client_free(rt->upstreams[i].tls);
    free(rt->listen_tls);
    free(rt->upstreams);
    if (rt->verdict_fd >= 0)
        close(rt->verdict_fd);
    chain_unref(rt->chain);
    config_unref(rt->cfg);
    free(rt);
}

struct tls_server *runtime_listener_tls(const struct sg_runtime *rt, const struct sg_listener *l)
{
    /* The plain policy is not one of the config's entries: no TLS. */
    const struct sg_listener *first = rt->cfg->listeners;
    if (!first || l < first || l >= first + rt->cfg->nlisten)
        return NULL;
    return rt->listen_tls[l - first];
}

static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sg_runtime *runtime_in_force;

void runtime_set(struct sg_runtime *rt)
{
    if (rt)
        metrics_gauge_set(metrics_single("smtpgate_config_generation", METRICS_GAUGE,
                                         "Generation of the configuration and chain in force; "
                                         "each accepted reload adds one"),
                          rt->generation);
    pthread_mutex_lock(&runtime_lock);
    struct sg_runtime *old = runtime_in_force;
    runtime_in_force = rt;
    pthread_mutex_unlock(&runtime_lock);
    runtime_unref(old);
}

struct sg_runtime *runtime_current(void)
{
    pthread_mutex_lock(&runtime_lock);
    struct sg_runtime *rt = runtime_in_force ? runtime_ref(runtime_in_force) : NULL;
    pthread_mutex_unlock(&runtime_lock);
    return rt;
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
    runtime_set(NULL);
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
