/*
 * config - the daemon's settings, read from a libconfuse file plus command-line
 * overrides in the same syntax, validated completely before anything uses them.
 *
 * config_load() returns a new, immutable, reference-counted struct sg_config, or
 * NULL after logging every error as "file:line: reason" (overrides are named
 * "-o #N").  The running daemon swaps configs on SIGHUP only when the new one
 * loaded cleanly; sessions hold a reference to the config they started with.
 */
#ifndef SMTPGATE_CONFIG_H
#define SMTPGATE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/data_decoder.h"
#include "config/listener.h"

enum client_identity_mode { IDENTITY_XCLIENT = 0, IDENTITY_PROXY, IDENTITY_NONE };

struct sg_sockaddr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[80]; /* as written in the config, normalised: "1.2.3.4:25", "[::1]:25" */
};

struct upstream_health;
struct chain;
struct cfg_t;

struct sg_upstream_cfg {
    char *name;
    struct sg_sockaddr addr;
    int priority;
    struct upstream_health *health; /* shared by every config naming this address */
    struct sg_upstream_tls tls;     /* STARTTLS towards this upstream (listener.h) */
};

struct sg_config {
    atomic_uint refs;
    unsigned generation;

    char *hostname;
    struct sg_sockaddr *listen;
    size_t nlisten;
    unsigned workers;

    enum client_identity_mode identity;
    struct sg_upstream_cfg *upstreams; /* sorted by priority, then order of appearance */
    size_t nupstreams;

    enum data_newline_policy newline_policy;
    char *spool_dir;
    size_t spill_threshold;

    uint64_t max_message_size;
    unsigned max_recipients;
    unsigned max_connections;
    unsigned max_connections_per_client;
    size_t max_line_length;
    size_t max_data_line_length;
    unsigned hard_error_limit;
    size_t max_header_size;

    unsigned command_timeout;
    unsigned data_timeout;
    unsigned connect_grace;
    unsigned upstream_connect_timeout;
    unsigned upstream_greeting_timeout;
    unsigned upstream_command_timeout;
    unsigned upstream_data_timeout;
    unsigned upstream_final_timeout;
    unsigned probe_interval;
    unsigned shutdown_grace;

    int syslog_facility;

    char *quarantine_dir;
    char *metrics_listen; /* "" when off */
    unsigned plugin_threads;
    bool client_name_lookup;
    char *dns_nameserver; /* "" for the system's resolv.conf */
    unsigned dns_timeout;
    struct chain *chain; /* the plugins, in order; NULL without plugin sections */
    /* Edge policy of each address in listen[] (same index): TLS, AUTH, PROXY
     * protocol; see listener.h.  listen[] holds the plain "listen" addresses
     * first, then those of the "listener" sections. */
    struct sg_listener *listeners;

    char *milter_socket; /* smtpgate-milter's libmilter socket: "inet:PORT@ADDR", "unix:PATH" */
};

/* Load file (may be NULL for built-in defaults only) and the overrides. */
struct sg_config *config_load(const char *file, const char *const *overrides, size_t noverrides);

struct sg_config *config_ref(struct sg_config *c);
void config_unref(struct sg_config *c);

/* Parse "host:port", "[v6]:port", "*:port"; host may be a name (resolved now).
 * Returns NULL on success, or a static reason. */
const char *config_parse_sockaddr(const char *text, bool passive, struct sg_sockaddr *out);

/* "file:line" of the value libconfuse is reading now (for plugin_host). */
void config_where(const struct cfg_t *cfg, char *out, size_t out_size);

/* A libconfuse integer callback's work: value as a whole number within
 * [min, max] into *(long *)result, or -1 after a file:line error. */
int config_int_in_range(struct cfg_t *cfg, const char *name, const char *value, long min, long max,
                        void *result);

/* Refuse host names instead of resolving them (tests and fuzzing must never
 * query a DNS server). */
void config_numeric_hosts_only(bool only);

/* smtpgate-milter has no upstream: it lets a config without one load. */
void config_upstream_optional(bool optional);

#endif
