/*
 * dnsbl_cache - the answers of DNS list queries, kept for their TTL, shared
 * by every connection and thread of a dnsbl instance (and carried over a
 * reload), bounded in entries.
 *
 * Promises: at most max entries (the oldest goes first when full; each
 * entry holds one query name and at most DNSBL_ANSWER_MAX addresses, so
 * the memory bound is max * about 330 octets); an entry is never returned
 * after its expiry; every function takes the cache's mutex, so any thread
 * may call it.  A cache of max 0 keeps nothing.
 */
#ifndef SMTPGATE_DNSBL_CACHE_H
#define SMTPGATE_DNSBL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSBL_ANSWER_MAX 8

/* What a list said of a name: its A records (none: not listed). */
struct dnsbl_answer {
    unsigned n;
    uint8_t addr[DNSBL_ANSWER_MAX][4];
};

struct dnsbl_cache;

struct dnsbl_cache *dnsbl_cache_new(size_t max);
struct dnsbl_cache *dnsbl_cache_ref(struct dnsbl_cache *c);
void dnsbl_cache_unref(struct dnsbl_cache *c);
/* now: seconds of a monotonic clock.  true and *out when a live entry is there. */
bool dnsbl_cache_get(struct dnsbl_cache *c, const char *name, double now, struct dnsbl_answer *out);
void dnsbl_cache_put(struct dnsbl_cache *c, const char *name, const struct dnsbl_answer *a,
                     double ttl, double now);
size_t dnsbl_cache_size(struct dnsbl_cache *c);

#endif
