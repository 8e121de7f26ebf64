/*
 * upstream_int - what upstream.c (the transaction relay) and upstream_hello.c
 * (connecting, greeting, EHLO, STARTTLS, XCLIENT) share; no other module
 * includes it.
 *
 * State machine: CONNECTING -> GREETING -> EHLO -> [STARTTLS -> TLS -> EHLO]
 * -> [XCLIENT... -> EHLO2] -> READY (upstream_hello.c), and from READY the
 * message steps DATA354 -> STREAM -> FINAL (upstream.c).
 */
#ifndef SMTPGATE_UPSTREAM_INT_H
#define SMTPGATE_UPSTREAM_INT_H

#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/client_identity.h"
#include "codec/smtp_reply.h"
#include "config/config.h"
#include "daemon/runtime.h"
#include "message/msg_view.h"

struct upstream_events; /* upstream.h */

/* The longest name said in EHLO: a domain (RFC 5321 4.5.3.1.2). */
#define UPSTREAM_EHLO_NAME_MAX 255

enum up_state {
    UP_CONNECTING,
    UP_GREETING,
    UP_EHLO,
    UP_STARTTLS, /* STARTTLS sent (listener.h: upstream tls) */
    UP_TLS_HANDSHAKE,
    UP_XCLIENT,
    UP_EHLO2,
    UP_READY,
    UP_DATA354,
    UP_STREAM,
    UP_FINAL,
    UP_CLOSING,
    UP_DEAD,
};

enum await_kind { AWAIT_CLIENT, AWAIT_INTERNAL };

struct queued_cmd {
    struct queued_cmd *next;
    bool message; /* the DATA/BDAT step rather than a command line */
    size_t len;
    char line[]; /* with CRLF */
};

#define AWAIT_MAX         512
#define STREAM_CHUNK      (64 * 1024)
#define STREAM_HIGH       (256 * 1024)
#define KEEPALIVE_SECONDS 60

struct upstream_conn {
    struct upstream_conn *closing_next, *closing_prev;
    struct event_base *base;
    struct sg_runtime *rt;       /* held: the settings, TLS contexts and health in force */
    const struct sg_config *cfg; /* rt->cfg */
    const struct upstream_events *ev;
    void *ctx;

    struct client_facts facts;
    char *facts_strings; /* owns the strings facts points to */
    struct sockaddr_storage client_sa;
    struct sockaddr_storage local_sa;

    size_t candidate; /* index into order[] */
    size_t order[64];
    size_t norder;

    struct bufferevent *bev;
    struct event *keepalive;
    struct event *start;
    enum up_state state;
    struct smtp_reply reply;
    unsigned caps;
    struct smtp_ehlo_caps ehlo;
    char label[128];

    char *xclient; /* remaining XCLIENT lines */
    size_t xclient_off;
    size_t xclient_len;

    struct queued_cmd *queue_head, *queue_tail;
    unsigned queued_client;         /* client commands in the queue */
    unsigned char await[AWAIT_MAX]; /* ring of enum await_kind */
    unsigned await_head, await_count;

    struct msg_view view; /* message being sent */
    bool bdat;
    uint64_t stream_off;
    bool at_line_start;
    bool last_was_cr;

    bool in_callback;
    bool close_requested;
    bool in_transaction; /* MAIL sent and no end yet: keep-alive applies */

    bool tls_on;       /* this candidate's connection is under TLS */
    bool tls_declined; /* opportunistic: STARTTLS refused, go on in plaintext */
};

/* upstream.c */
bool upstream_settle(struct upstream_conn *u);
void upstream_set_read_timeout(struct upstream_conn *u, unsigned seconds);
void upstream_write(struct upstream_conn *u, const char *bytes, size_t len);
void upstream_fail(struct upstream_conn *u, const char *reply);
void upstream_flush_queue(struct upstream_conn *u);
void upstream_read_cb(struct bufferevent *bev, void *arg);
void upstream_write_cb(struct bufferevent *bev, void *arg);
void upstream_event_cb(struct bufferevent *bev, short what, void *arg);

/* upstream_hello.c */
void upstream_hello_start_cb(evutil_socket_t fd, short what, void *arg);
void upstream_hello_reply(struct upstream_conn *u);
void upstream_hello_connected(struct upstream_conn *u);
void upstream_try_next(struct upstream_conn *u, const char *why);
void upstream_tls_done(struct upstream_conn *u);

#endif
