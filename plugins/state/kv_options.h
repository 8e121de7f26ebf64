/*
 * kv_options - the plugin options every user of the state layer shares,
 * declared once so that the rate limit and greylist plugins read them alike:
 *
 *   backend             "local" (default) | "redis"
 *   redis               "HOST:PORT" ("127.0.0.1:6379", "[::1]:6379"; numeric:
 *                       a name would need a blocking DNS lookup) or
 *                       "unix:/path/to/redis.sock"
 *   redis_password      AUTH before anything else (empty: none)
 *   redis_db            SELECT this database first (0: the default)
 *   redis_timeout       seconds an operation may take, 0.01 to 60 (default 0.5)
 *   max_entries         local backend's bound (default 100000)
 *   on_backend_failure  "open" (default: the check passes) | "closed" (the
 *                       plugin's temporary refusal)
 *   ipv4_prefix         network of an IPv4 client, 8 to 32 (default 24)
 *   ipv6_prefix         network of an IPv6 client, 16 to 128 (default 64)
 *   key_prefix          put before every key in the store (default the
 *                       plugin's own prefix): two fleets on one Redis
 *                       database keep apart with two prefixes
 *
 * KV_OPTIONS(prefix) expands to the rows of struct sg_option for a plugin's
 * table; kv_options_read() reads them in init and fills a kv_config plus
 * the rest.  kv_parse_redis_address() is pure (option check and backend
 * share it).
 */
#ifndef SMTPGATE_STATE_KV_OPTIONS_H
#define SMTPGATE_STATE_KV_OPTIONS_H

#include <math.h>
#include <stdbool.h>

#include "kv.h"
#include "smtpgate/plugin.h"

const char *kv_check_backend(const char *v);
const char *kv_check_redis(const char *v);
const char *kv_check_failure(const char *v);
const char *kv_check_prefix(const char *v);

#define KV_OPTIONS(default_prefix)                                                                 \
    {"backend", SG_OPT_STRING, "\"local\"", kv_check_backend, 0, 0},                               \
        {"redis", SG_OPT_STRING, "\"127.0.0.1:6379\"", kv_check_redis, 0, 0},                      \
        {"redis_password", SG_OPT_STRING, "\"\"", NULL, 0, 0},                                     \
        {"redis_db", SG_OPT_INT, "0", NULL, 0, 1000000},                                           \
        {"redis_timeout", SG_OPT_FLOAT, "0.5", NULL, 0.01, 60},                                    \
        {"max_entries", SG_OPT_INT, "100000", NULL, 1, 50000000},                                  \
        {"on_backend_failure", SG_OPT_STRING, "\"open\"", kv_check_failure, 0, 0},                 \
        {"ipv4_prefix", SG_OPT_INT, "24", NULL, 8, 32},                                            \
        {"ipv6_prefix", SG_OPT_INT, "64", NULL, 16, 128},                                          \
    {                                                                                              \
        "key_prefix", SG_OPT_STRING, "\"" default_prefix "\"", kv_check_prefix, 0, 0               \
    }

struct kv_options {
    struct kv_config cfg; /* its strings point into the section: valid during init */
    bool fail_closed;
    unsigned ipv4_prefix, ipv6_prefix;
    const char *key_prefix;
};

void kv_options_read(const struct sg_host *h, const struct sg_section *sec, struct kv_options *o);

/* "unix:/path" -> *is_unix, path in host; "H:P" / "[H6]:P" -> numeric host
 * and port.  0, or -1 with a reason. */
int kv_parse_redis_address(const char *s, bool *is_unix, char *host, size_t hostlen, int *port,
                           const char **why);

#endif
