/*
 * listener - what each listening address does at the edge: TLS (none,
 * STARTTLS, implicit), the TLS policy (required before MAIL or AUTH), AUTH
 * relaying and its bounds, the PROXY protocol and the networks trusted to
 * speak it; plus the TLS settings of each upstream.
 *
 * Config: "listener NAME { address = ...; ... }" sections next to the plain
 * "listen = {...}" list, which stays as it was (plain SMTP, no TLS, no AUTH).
 * listener_cfg_opts() and upstream_tls_cfg_opts are the libconfuse options;
 * their values are checked by parse callbacks, each error naming file:line.
 * listener_config_build() turns the sections into struct sg_listener entries
 * (building their TLS contexts) parallel to sg_config.listen, after the plain
 * addresses; upstream_tls_build() does the same for one upstream section.
 * Errors are logged as "file:line: reason" with the section's line, and the
 * call returns -1.
 *
 * listener_find() is the policy of the listener whose address a connection
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

struct sg_config;
struct sg_upstream_cfg;
struct tls_server;
struct tls_client;

enum listener_tls { LISTENER_TLS_NONE = 0, LISTENER_TLS_STARTTLS, LISTENER_TLS_IMPLICIT };
enum listener_require { REQUIRE_TLS_NONE = 0, REQUIRE_TLS_MAIL, REQUIRE_TLS_AUTH };

struct sg_listener {
    char *name; /* NULL for a plain "listen" address */
    enum listener_tls tls;
    enum listener_require require_tls;
    struct tls_server *tls_server;
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
};

enum upstream_tls_mode { UPSTREAM_TLS_NONE = 0, UPSTREAM_TLS_OPPORTUNISTIC, UPSTREAM_TLS_REQUIRED };

struct sg_upstream_tls {
    enum upstream_tls_mode mode;
    char *verify_name;
    struct tls_client *client;
};

/* The "listener" section's options (static, built once). */
cfg_opt_t *listener_cfg_opts(void);

/* Options to put into the upstream section, ending with CFG_END(). */
extern cfg_opt_t upstream_tls_cfg_opts[];

/* Number of "listener" sections, so the caller can size sg_config.listen. */
size_t listener_config_count(cfg_t *cfg);

/* Fill c->listeners for c->listen[0..nplain) and append the sections'
 * addresses to c->listen (sized for it by the caller).  Returns 0 or -1. */
int listener_config_build(cfg_t *cfg, struct sg_config *c, size_t nplain, const char *file);
void listener_config_free(struct sg_config *c);

int upstream_tls_build(cfg_t *sec, struct sg_upstream_cfg *u, const char *file);
void upstream_tls_free(struct sg_upstream_cfg *u);

const struct sg_listener *listener_find(const struct sg_config *c, const struct sockaddr *local);

#endif
