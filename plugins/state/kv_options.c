/*
 * kv_options - the state layer's common plugin options (contract in
 * kv_options.h).  The checks run in the host while it reads the file, so
 * a bad value is refused with its file and line before init.
 */
#include "kv_options.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

const char *kv_check_backend(const char *v)
{
    return v && (strcasecmp(v, "local") == 0 || strcasecmp(v, "redis") == 0)
               ? NULL
               : "must be \"local\" or \"redis\"";
}

const char *kv_check_failure(const char *v)
{
    return v && (strcasecmp(v, "open") == 0 || strcasecmp(v, "closed") == 0)
               ? NULL
               : "must be \"open\" or \"closed\"";
}

const char *kv_check_prefix(const char *v)
{
    if (!v || strlen(v) > 64)
        return "must be at most 64 characters";
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "must not contain blanks or control characters";
    return NULL;
}

int kv_parse_redis_address(const char *s, bool *is_unix, char *host, size_t hostlen, int *port,
                           const char **why)
{
    *is_unix = false;
    if (strncmp(s, "unix:", 5) == 0) {
        const char *path = s + 5;
        if (*path != '/' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
            strlen(path) >= hostlen) {
            *why = "want unix:/absolute/path (at most 107 characters)";
            return -1;
        }
        *is_unix = true;
        strcpy(host, path);
        *port = 0;
        return 0;
    }
    const char *colon;
    size_t hlen;
    const char *h = s;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            *why = "want [IPV6]:PORT";
            return -1;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s))) {
            *why = "want ADDRESS:PORT (numeric), [IPV6]:PORT or unix:/path";
            return -1;
        }
        hlen = (size_t)(colon - s);
    }
    char addr[INET6_ADDRSTRLEN];
    unsigned char buf[16];
    if (hlen == 0 || hlen >= sizeof(addr) || hlen >= hostlen) {
        *why = "want a numeric address before the port";
        return -1;
    }
    memcpy(addr, h, hlen);
    addr[hlen] = '\0';
    if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1) {
        *why = "want a numeric IPv4 or IPv6 address (a name would need a blocking lookup)";
        return -1;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || p < 1 || p > 65535) {
        *why = "want a port from 1 to 65535";
        return -1;
    }
    strcpy(host, addr);
    *port = (int)p;
    return 0;
}

const char *kv_check_redis(const char *v)
{
    char host[128];
    bool is_unix;
    int port;
    const char *why = NULL;
    if (!v || kv_parse_redis_address(v, &is_unix, host, sizeof(host), &port, &why) < 0)
        return why ? why : "want ADDRESS:PORT or unix:/path";
    return NULL;
}

void kv_options_read(const struct sg_host *h, const struct sg_section *sec, struct kv_options *o)
{
    memset(o, 0, sizeof(*o));
    o->cfg.backend = strcasecmp(h->opt_string(sec, "backend"), "redis") == 0 ? KV_REDIS : KV_LOCAL;
    o->cfg.max_entries = (size_t)h->opt_int(sec, "max_entries");
    o->cfg.redis = h->opt_string(sec, "redis");
    o->cfg.redis_password = h->opt_string(sec, "redis_password");
    o->cfg.redis_db = (long)h->opt_int(sec, "redis_db");
    o->cfg.redis_timeout_ms = (long)(h->opt_float(sec, "redis_timeout") * 1000 + 0.5);
    o->fail_closed = strcasecmp(h->opt_string(sec, "on_backend_failure"), "closed") == 0;
    o->ipv4_prefix = (unsigned)h->opt_int(sec, "ipv4_prefix");
    o->ipv6_prefix = (unsigned)h->opt_int(sec, "ipv6_prefix");
    o->key_prefix = h->opt_string(sec, "key_prefix");
}
