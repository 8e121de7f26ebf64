/*
 * config - the daemon's settings, read from a libconfuse file plus command-line
 * overrides in the same syntax, validated completely before anything uses them.
 *
 * config_load() returns a new, immutable, reference-counted struct sg_config, or
 * NULL after logging every error as "file:line: reason" (overrides are named
 * "-o #N").  It returns settings only: the plugin sections are kept as data
 * (plugin_section.h) for chain/ to load, and TLS files and policies as paths
 * and names for the daemon to build its contexts from (daemon/reload.c).
 * The running daemon swaps configs on SIGHUP only when the new one loaded and
 * assembled cleanly.
 *
 * config_load_opts are the load's own choices, passed in, never kept:
 * numeric_hosts refuses host names instead of resolving them (tests and
 * fuzzing must never query a DNS server); upstream_optional lets a config
 * without an upstream load (smtpgate-milter has none).
 *
 * listener_find() is the edge policy of the listener a connection came in
 * on (listener.h's listener_match() over this config's addresses).
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
#include "config/plugin_section.h"
#include "util/sockaddr.h"

/* The longest hostname accepted (a domain name is at most 253 octets). */
#define CONFIG_HOSTNAME_MAX 255

enum client_identity_mode { IDENTITY_XCLIENT = 0, IDENTITY_PROXY, IDENTITY_NONE };

struct sg_upstream_cfg {
    char *name;
    struct sg_sockaddr addr;
    int priority;
    struct sg_upstream_tls tls; /* STARTTLS towards this upstream (listener.h) */
    char *source;               /* where the section was written, for errors: file, line */
    int line;
};

struct sg_config {
    atomic_uint refs;

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
    /* Postscreen's pregreet test: seconds between "220-" and the final
     * "220 "; a client that talks before the end is refused (0: off) */
    unsigned greet_delay;
    char *greet_delay_skip_symbol; /* a connection symbol that skips the delay ("": none) */
    unsigned upstream_connect_timeout;
    unsigned upstream_greeting_timeout;
    unsigned upstream_command_timeout;
    unsigned upstream_data_timeout;
    unsigned upstream_final_timeout;
    unsigned probe_interval;
    unsigned status_recent; /* transactions the status page lists */
    bool status_page;       /* / and /status.json on the metrics listener */
    unsigned shutdown_grace;

    int syslog_facility;

    char *quarantine_dir;
    char *metrics_listen; /* "" when off */
    char *verdict_log;    /* JSON lines, one per transaction; "" when off */
    unsigned plugin_threads;
    bool client_name_lookup;
    /* MAIL/RCPT paths exactly as RFC 5321 writes them, instead of as leniently
     * as Postfix reads them by default */
    bool strict_envelopes;
    char *dns_nameserver; /* "" for the system's resolv.conf */
    unsigned dns_timeout;
    char *plugin_dir;               /* where a plugin path without "/" is looked for */
    struct plugin_sections plugins; /* the "plugin NAME { }" sections, in chain order */
    /* Edge policy of each address in listen[] (same index): TLS, AUTH, PROXY
     * protocol; see listener.h.  listen[] holds the plain "listen" addresses
     * first, then those of the "listener" sections. */
    struct sg_listener *listeners;

    /* Privileges: started as root, the daemon opens what needs root and then
     * becomes user (group: the user's own unless set), inside chroot_dir when
     * set (util/privdrop.h).  Without a user, root is refused unless
     * allow_root. */
    char *user;       /* "" none */
    char *group;      /* "" the user's primary group */
    char *chroot_dir; /* "" none */
    bool allow_root;
    char *pidfile; /* "" none */
    /* The control socket (daemon/control.h): its path ("" none) and mode. */
    char *control_socket;
    unsigned control_socket_mode;
    /* client_identity "none" in front of an upstream that offers XCLIENT is
     * refused (that upstream would take every client for smtpgate) unless set. */
    bool identity_none_despite_xclient;

    char *milter_socket; /* smtpgate-milter's libmilter socket: "inet:PORT@ADDR", "unix:PATH" */
};

struct config_load_opts {
    bool numeric_hosts;
    bool upstream_optional;
};

/* Load file (may be NULL for built-in defaults only) and the overrides;
 * opts may be NULL (resolve names, an upstream required). */
struct sg_config *config_load(const char *file, const char *const *overrides, size_t noverrides,
                              const struct config_load_opts *opts);

/* The same, reporting every error it can find: after an error the rest is
 * still judged (the faulty lines left out), *errors counts them, and the
 * configuration the rest makes is returned when it can be built, for the
 * caller to judge what is built from it (plugins, certificates) before
 * refusing it whole.  NULL when nothing could be built. */
struct sg_config *config_load_all(const char *file, const char *const *overrides, size_t noverrides,
                                  const struct config_load_opts *opts, int *errors);

struct sg_config *config_ref(struct sg_config *c);
void config_unref(struct sg_config *c);

const struct sg_listener *listener_find(const struct sg_config *c, const struct sockaddr *local);

#endif
