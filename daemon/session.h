/*
 * session - the server side of SMTP for one client connection: reads commands
 * and message data, answers what smtpgate answers itself (greeting, EHLO,
 * syntax and sequence errors, limits), forwards the rest to the upstream and
 * relays its replies, in order, however the client pipelines.
 *
 * session_start() takes over an accepted socket on the host's event loop; the
 * session lives on that loop until it frees itself.  The host (a worker) says
 * which loop, keeps the list the sessions link themselves into, and is told
 * through gone() each time one has ended: the session knows nothing of who
 * started it.
 * session_shutdown() ends a session that outlived the shutdown grace with 421.
 */
#ifndef SMTPGATE_SESSION_H
#define SMTPGATE_SESSION_H

#include <event2/event.h>
#include <sys/socket.h>

#include "daemon/runtime.h"

struct session;
struct evdns_base;

/* The sessions of one host, linked by the session module. */
struct session_list {
    struct session *head;
    unsigned count;
};

struct session_host {
    struct event_base *base;
    struct evdns_base *dns; /* client name lookups; NULL when off */
    struct session_list *sessions;
    void (*gone)(void *arg); /* after a session has unlinked and freed itself */
    void *arg;
};

/* host must outlive every session started on it. */
void session_start(const struct session_host *host, evutil_socket_t fd, const struct sockaddr *peer,
                   socklen_t peer_len, struct sg_runtime *rt);
void session_shutdown(struct session *s);

/* The sessions' metric families and each listener's connection count of c,
 * there before the first client (any thread). */
struct sg_config;
void session_metrics_register(const struct sg_config *c);

/* Free at once (the host's loop has ended). */
void session_destroy(struct session *s);

/* What the edge knows of the client, for the filter chain and logs: the TLS
 * facts once a handshake has completed (NULL before or without TLS), and the
 * login name the upstream accepted with its 235 (NULL before AUTH, or when
 * the mechanism does not carry a name in the clear). */
struct tls_facts;
const struct tls_facts *session_tls(const struct session *s);
const char *session_login(const struct session *s);

/* The host's list of sessions. */
struct session *session_next(const struct session *s);

/* What an admin asking "who is connected" is told of one session: copies,
 * so that they may leave the session's thread (daemon/control.c).  state is
 * where the client is in the dialogue (session_int.h's names, lower case);
 * waiting what the session waits for before it reads on ("" when nothing:
 * then it waits for the client). */
struct session_info {
    char id[24];
    char addr[64];
    unsigned port;
    char name[256]; /* the verified client name, "" when none */
    char helo[256];
    char listener[80];
    char login[128];
    char mail_from[256]; /* the open transaction's sender, "" when none */
    char tls_version[16];
    const char *state;
    const char *waiting;
    double age; /* seconds since accept */
    unsigned transactions;
    unsigned recipients; /* accepted in the open transaction */
    bool in_transaction;
};
void session_describe(const struct session *s, struct session_info *out);

#endif
