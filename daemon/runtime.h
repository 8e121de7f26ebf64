/*
 * runtime - process-wide state shared by the main thread and the workers: the
 * runtime in force, and the connection counts that the limits are checked
 * against.
 *
 * A struct sg_runtime is what one load assembled (daemon/reload.c): the plain
 * settings, the filter chain built from their plugin sections, the TLS
 * contexts of the listeners and upstreams, and each upstream's health record.
 * It is immutable and reference-counted.  runtime_current() hands out a
 * reference to the one in force; the main thread replaces it on SIGHUP with
 * runtime_set().  Sessions keep the reference they took at accept for their
 * whole life, so they finish with the settings, chain and certificates they
 * started with.
 *
 * runtime_conn_open() admits or refuses a new connection against
 * max_connections and max_connections_per_client and counts it;
 * runtime_conn_close() uncounts it.  These run once per connection (accept and
 * close), never per command.
 */
#ifndef SMTPGATE_RUNTIME_H
#define SMTPGATE_RUNTIME_H

#include <stdbool.h>
#include <sys/socket.h>

#include <stdatomic.h>

#include "config/config.h"

struct chain;
struct tls_server;
struct tls_client;
struct upstream_health;

struct runtime_upstream {
    struct tls_client *tls;         /* NULL: no STARTTLS towards it */
    struct upstream_health *health; /* the pool's, shared by every runtime naming the address */
};

struct sg_runtime {
    atomic_uint refs;
    unsigned generation;
    struct sg_config *cfg;              /* the settings (owned) */
    struct chain *chain;                /* NULL without plugin sections */
    struct tls_server **listen_tls;     /* [cfg->nlisten]; NULL where the listener has no TLS */
    struct runtime_upstream *upstreams; /* [cfg->nupstreams], the order of cfg->upstreams */
    int verdict_fd;                     /* the verdict log, or -1 */
};

/* An empty runtime around cfg (taking over its reference); NULL when out of memory. */
struct sg_runtime *runtime_new(struct sg_config *cfg, unsigned generation);
struct sg_runtime *runtime_ref(struct sg_runtime *rt);
void runtime_unref(struct sg_runtime *rt);

/* The TLS server of listener l (from listener_find(rt->cfg, ...)), or NULL. */
struct tls_server *runtime_listener_tls(const struct sg_runtime *rt, const struct sg_listener *l);

void runtime_set(struct sg_runtime *rt);  /* takes over the caller's reference */
struct sg_runtime *runtime_current(void); /* new reference, or NULL */

enum runtime_admit { ADMIT_OK, ADMIT_TOO_MANY, ADMIT_TOO_MANY_FROM_CLIENT };
enum runtime_admit runtime_conn_open(const struct sg_config *c, const struct sockaddr *peer);
void runtime_conn_close(const struct sockaddr *peer);
unsigned runtime_conn_count(void);

void runtime_shutdown(void);

#endif
