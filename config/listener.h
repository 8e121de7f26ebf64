/*
 * listener - what each listening address does at the edge: TLS (none,
 * STARTTLS, implicit), the TLS policy (required before MAIL or AUTH), AUTH
 * relaying and its bounds, the PROXY protocol and the networks trusted to
 * speak it; plus the TLS settings of each upstream.  Settings only: the TLS
 * contexts are built from them by the daemon (daemon/reload.c), which names
 * the section (its source and line, kept here) in its errors.
 *
 * Config: "listener NAME { address = ...; ... }" sections next to the plain
 * "listen = {...}" list, which stays as it was (plain SMTP, no TLS, no AUTH).
 * listener_cfg_opts() and upstream_tls_cfg_opts are the libconfuse options;
 * their values are checked by parse callbacks, each error naming file:line
 * (certificate and key files are read then: a file that is not PEM refuses
 * the config).  listener_config_build() turns the sections into struct
 * sg_listener entries parallel to the listen addresses, after the plain ones,
 * and appends the sections' addresses; upstream_tls_settings() reads one
 * upstream section's TLS settings.  Errors are logged as "file:line: reason"
 * with the section's line, and the call returns -1.
 *
 * listener_match() is the policy of the listener whose address a connection
 * came in on (exact address first, then a wildcard on the same port); the
 * plain policy when none matches.
 *
 * proxy_trusted ranges ("192.0.2.0/24", "2001:db8::/32", "127.0.0.1") are
 * util/net's struct net_range, parsed by net_range_parse() (host bits
 * refused) and matched by net_range_contains().
 */
#ifndef SMTPGATE_LISTENER_H
#define SMTPGATE_LISTENER_H

#include <confuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/net.h"
#include "util/sockaddr.h"

enum listener_tls { LISTENER_TLS_NONE = 0, LISTENER_TLS_STARTTLS, LISTENER_TLS_IMPLICIT };
enum listener_require { REQUIRE_TLS_NONE = 0, REQUIRE_TLS_MAIL, REQUIRE_TLS_AUTH };

struct sg_listener {
    char *name; /* NULL for a plain "listen" address */
    enum listener_tls tls;
    enum listener_require require_tls;
    /* TLS settings (tls != LISTENER_TLS_NONE): certificate and key files in pairs */
    char **tls_cert_files;
    char **tls_key_files;
    size_t tls_ncerts;
    const char *tls_min_version; /* "TLSv1.2"...: one of the schema's choices */
    char *tls_ciphers;           /* "" = OpenSSL's default */
    char *tls_ciphersuites;
    bool tls_ask_client_cert;
    char *tls_client_ca_file; /* "" = none */
    bool tls_session_tickets;
    unsigned proxy_protocol; /* proxy_hdr_versions bits; 0 = none */
    struct net_range *trusted;
    size_t ntrusted;
    unsigned proxy_timeout;
    bool auth;
    bool auth_plaintext;
    unsigned auth_mechs; /* 0: what the upstreams offer */
    unsigned auth_max_failures;
    unsigned auth_failure_delay;
    size_t auth_max_line_length;
    int greet_delay; /* seconds; -1: the global greet_delay */
    char *source; /* where the section was written, for errors: file, line */
    int line;
};

enum upstream_tls_mode { UPSTREAM_TLS_NONE = 0, UPSTREAM_TLS_OPPORTUNISTIC, UPSTREAM_TLS_REQUIRED };

struct sg_upstream_tls {
    enum upstream_tls_mode mode;
    char *verify_name; /* NULL: none */
    char *ca_file;     /* "" = the system's store */
    const char *min_version;
};

/* The "listener" section's options (static); numeric: host names refused. */
cfg_opt_t *listener_cfg_opts(bool numeric);

/* Options to put into the upstream section, ending with CFG_END(). */
extern cfg_opt_t upstream_tls_cfg_opts[];

/* Number of "listener" sections, so the caller can size sg_config.listen. */
size_t listener_config_count(cfg_t *cfg);

/* Fill listeners[0..nplain) with the plain policy and, after them, one entry
 * per section, whose address is appended to listen (both sized for it by the
 * caller); *nlisten counts the entries filled.  addr_flags: sockaddr_parse's.
 * Returns 0 or -1. */
int listener_config_build(cfg_t *cfg, struct sg_sockaddr *listen, struct sg_listener *listeners,
                          size_t nplain, size_t *nlisten, unsigned addr_flags);
void listener_config_free(struct sg_listener *listeners, size_t n);

int upstream_tls_settings(cfg_t *sec, struct sg_upstream_tls *t);
void upstream_tls_settings_free(struct sg_upstream_tls *t);

/* listeners[i] is the policy of listen[i]; NULL listeners: all plain. */
const struct sg_listener *listener_match(const struct sg_listener *listeners,
                                         const struct sg_sockaddr *listen, size_t n,
                                         const struct sockaddr *local);

#endif
