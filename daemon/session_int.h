/*
 * session_int - what the session's files share, and no other module sees.
 *
 * The session is split by concern:
 *   session.c        lifetime (start, greeting, free) and I/O: the reply
 *                    queue, the input loop, the socket's events
 *   session_relay.c  the upstream side: commands forwarded, the replies they
 *                    expect, the upstream's replies and failure
 *   session_cmd.c    the command table and its driver; waiting for the filter
 *                    chain; HELO/EHLO and the commands that need no more
 *   session_tx.c     the transaction: MAIL, RCPT, DATA, BDAT, the message,
 *                    the end-of-message verdict and edits, the log line
 *   session_edge.c   STARTTLS, AUTH, the listener's TLS policy
 *
 * State.  `state` says where the client is in the SMTP dialogue, and which
 * commands the table lets through (each row has a mask of these).  `wait`
 * says what the input loop waits for before it reads the next line; for the
 * filter chain it also holds the continuation that takes the verdict (no
 * switch over what was waited for).  The transaction, the message being
 * received and the edge (TLS, AUTH) each have their own sub-struct.
 */
#ifndef SMTPGATE_SESSION_INT_H
#define SMTPGATE_SESSION_INT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "chain/chain.h"
#include "chain/msg_edit.h"
#include "codec/auth_relay.h"
#include "codec/data_decoder.h"
#include "codec/esmtp.h"
#include "codec/msg_headers.h"
#include "codec/smtp_cmd.h"
#include "codec/smtp_reply.h"
#include "config/config.h"
#include "daemon/runtime.h"
#include "message/msg_store.h"

/* Input held before the session stops reading from the socket, when the loop
 * is waiting (barrier, upstream busy, client not reading replies). */
#define SESSION_INPUT_HIGH_WATER (128 * 1024)
/* Unanswered commands one client may have in flight. */
#define SESSION_MAX_PENDING_REPLIES 200
/* Replies not yet read by the client before the session stops taking commands. */
#define SESSION_OUTPUT_HIGH_WATER (64 * 1024)

/* Where the client is in the dialogue. */
enum session_state {
    SESSION_CONNECTED, /* before the greeting: name lookup, implicit TLS, connect stage */
    SESSION_REFUSED,   /* the connect stage refused: QUIT and NOOP only */
    SESSION_GREETED,   /* no HELO/EHLO yet */
    SESSION_HELO,      /* after HELO */
    SESSION_EHLO,      /* after EHLO */
    SESSION_AUTH,      /* inside an AUTH exchange: lines are its responses */
    SESSION_MAIL,      /* a transaction: MAIL went upstream */
    SESSION_DATA,      /* message data after DATA */
    SESSION_BDAT,      /* the octets of one BDAT chunk (in a transaction or skipped) */
};
#define SESSION_IN(st) (1u << (st))

/* What the input loop waits for. */
enum session_wait_kind {
    WAIT_NONE,
    WAIT_BARRIER, /* a command that needs every earlier reply known */
    WAIT_CHAIN,   /* the filter chain's verdict: wait.then carries on */
    WAIT_FINAL,   /* the upstream's final reply to the message */
    WAIT_AUTH,    /* the upstream's reply to an AUTH line, or a failure's delay */
    WAIT_TLS,     /* the TLS handshake */
};

/* The filter stage of a row that has none. */
#define SESSION_NO_STAGE SG_STAGE__COUNT

struct session;
struct session_cmd;
struct session_host; /* session.h */

/* One command as its row's check parsed it, kept while the chain decides. */
struct session_args {
    const struct session_cmd *row;
    const char *line; /* the command line, without CRLF */
    size_t len;
    char *kept; /* line's own copy, once the command may outlive the input */
    struct smtp_cmd cmd;
    char *mailbox;         /* HELO name, RCPT mailbox (owned) */
    char *params;          /* RCPT parameters (owned), or NULL */
    bool esmtp;            /* EHLO */
    const char *chain_arg; /* what the chain's stage is given */
    const char *chain_params;
};

enum session_check {
    CHECK_FAIL, /* refused (replied): the command ends */
    CHECK_OK,   /* the row's chain stage, then proceed */
    CHECK_SKIP, /* proceed, without the chain stage */
};

/* One row of the command table. */
struct session_cmd {
    enum smtp_verb verb;
    unsigned states;   /* SESSION_IN() of the states it is allowed in */
    const char *early; /* the reply before those states (NULL: a generic 503) */
    const char *late;  /* the reply after them */
    bool barrier;      /* runs only once every earlier reply is known */
    enum sg_stage stage;
    enum session_check (*check)(struct session *s, struct session_args *a);
    void (*proceed)(struct session *s, struct session_args *a);
    void (*refused)(struct session *s, struct session_args *a); /* NULL: the chain's reply */
};

struct reply_slot {
    struct reply_slot *next;
    char *text; /* wire lines with CRLF */
    size_t len;
    bool ready;
    bool owned;       /* text is malloc'd */
    const char *what; /* the envelope command it answers (a refusal is logged), or NULL */
    char *arg;        /* that command's address, for the log (owned) */
};

enum expect_kind {
    EXPECT_MAIL,
    EXPECT_RCPT,
    EXPECT_RELAY,       /* RSET, VRFY, EXPN: relay the reply, nothing else */
    EXPECT_MESSAGE,     /* the final reply to DATA/BDAT LAST */
    EXPECT_SILENT,      /* our own RSET after a refused message: no client reply */
    EXPECT_REPLAY_MAIL, /* the envelope a plugin changed, sent again: no client reply */
    EXPECT_REPLAY_RCPT,
    EXPECT_AUTH, /* AUTH and each response line of its exchange */
};

struct expect {
    struct expect *next;
    enum expect_kind kind;
    struct reply_slot *slot; /* NULL for the silent kinds */
    unsigned tx_gen;
    struct msg_rcpt rcpt; /* EXPECT_RCPT: the recipient, kept once accepted */
    struct timespec sent; /* EXPECT_MESSAGE: when the message went to the upstream */
};

struct session_io {
    struct bufferevent *bev;
    bool processing;      /* the input loop runs (no re-entry) */
    bool discard_line;    /* the rest of an over-long line is dropped */
    bool closing;         /* last words queued: nothing more is read */
    bool peer_eof;        /* the client shut its side: owed replies still go out */
    const char *cmd_what; /* MAIL, RCPT, DATA, BDAT: the command replies now answer */
    char *cmd_arg;        /* its address (owned), for the refusal's log line */
    struct reply_slot *rq_head, *rq_tail; /* replies, in command order */
    unsigned rq_len;
    struct expect *ex_head, *ex_tail; /* replies due from the upstream */
    unsigned ex_len;
};

struct session_wait {
    enum session_wait_kind kind;
    void (*then)(struct session *s); /* WAIT_CHAIN: takes the verdict in res */
    struct chain_result res;         /* the chain's verdict, or a local refusal */
    struct session_args args;        /* the command at its chain stage */
};

struct session_client {
    struct client_name_lookup *name_lookup;
    char *name; /* the verified name */
    bool name_tempfail;
    unsigned greet_waits; /* the name lookup, an implicit-TLS handshake */
    struct event *greet_delay_ev; /* between "220-" and "220 ": greet_delay */
    char *helo;
    bool esmtp;
    unsigned caps;       /* advertised in the last EHLO */
    uint64_t size_limit; /* advertised SIZE */
};

struct session_tx {
    unsigned gen; /* a reply for an abandoned transaction changes nothing */
    unsigned count;
    bool mail_ok;
    char *mail_from;
    char *mail_params;
    enum esmtp_body body;
    unsigned rcpt_sent;
    unsigned rcpt_ok;
    struct msg_rcpt *rcpts; /* accepted recipients, for a changed envelope */
    size_t nrcpts;
    bool bdat_used;
    bool data_used;
    struct timespec started;
    const char *fail; /* upstream lost during the transaction */
    bool replay;      /* the envelope a plugin changed is being sent again */
    bool replay_mail_ok;
    unsigned replay_rcpt_ok;
    struct msg_store *edited_hdr; /* the rewritten header section */
};

struct session_msg {
    struct data_decoder dec;
    struct msg_headers *hdrs;
    struct msg_store *store;
    uint64_t bdat_remaining;
    uint64_t bdat_total;
    bool bdat_last;
    const char *bdat_refusal;      /* chunk is being discarded; reply at its end */
    enum session_state bdat_after; /* the state a chunk returns to */
};

struct session_edge {
    const struct sg_listener *listener; /* in cfg */
    struct tls_facts *tls;              /* set once a handshake has completed */
    char *login;                        /* after the upstream's 235 */
    bool authenticated;
    unsigned auth_mech;
    unsigned auth_step;
    unsigned auth_failures;
    char auth_guess[AUTH_LOGIN_MAX];
    struct event *auth_delay_ev;
    struct reply_slot *auth_delay_slot;
    char *auth_delay_text;
    size_t auth_delay_len;
};

struct session_stats {
    unsigned ncommands;
    unsigned ntransactions;
    unsigned naccepted;
    unsigned errors;
};

struct session {
    struct session *next, *prev;
    const struct session_host *host;
    struct sg_runtime *rt; /* held for the session's life */
    struct sg_config *cfg; /* rt->cfg */
    char id[24];
    struct sockaddr_storage peer;
    struct sockaddr_storage local;
    char addr[64];
    unsigned port;
    struct timespec started;
    struct event *grace_ev;

    enum session_state state;
    struct session_io io;
    struct session_wait wait;
    struct session_client client;
    struct upstream_conn *up;
    struct chain_conn *chain;
    struct event *chain_ev;    /* made active (any thread) when a verdict is in */
    struct event *chain_timer; /* the waited-for plugin's timeout */
    struct session_tx tx;
    struct session_msg msg;
    struct session_edge edge;
    struct session_stats stats;
};

/* session.c: replies and I/O */
void session_reply(struct session *s, const char *line);
void session_replyf(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct reply_slot *session_slot_new(struct session *s);
void session_slot_fill(struct session *s, struct reply_slot *r, char *text, size_t len, bool owned);
void session_flush(struct session *s);
void session_close_with(struct session *s, const char *line);
void session_process(struct session *s);
void session_set_read_timeout(struct session *s, unsigned seconds);
void session_set_callbacks(struct session *s);
double session_elapsed(const struct timespec *since);
/* The command state to be in when no transaction is open. */
enum session_state session_idle_state(const struct session *s);
/* The greeting may go: one of the things it waits for is done. */
void session_greet_ready(struct session *s);

/* session_relay.c: the upstream */
struct expect *session_expect(struct session *s, enum expect_kind kind, struct reply_slot *slot);
void session_expect_free(struct expect *e);
struct expect *session_expect_pop(struct session *s);
struct expect *session_forward(struct session *s, enum expect_kind kind, const char *line,
                               size_t len);
void session_send_silent(struct session *s, enum expect_kind kind, const char *line, size_t len);
void session_abort_upstream_tx(struct session *s);
char *session_format_reply(const struct smtp_reply *r, size_t *len);

/* session_cmd.c: the table, its driver, the chain */
bool session_command(struct session *s, const char *line, size_t len);
bool session_chain_run(struct session *s, enum sg_stage stage, const char *arg, const char *params,
                       void (*then)(struct session *s));
bool session_chain_start(struct session *s);
void session_args_clear(struct session_args *a);

/* session_tx.c: the transaction and the message */
/* the rows' check, proceed and refused functions (session_cmd.c's table) */
enum session_check session_check_mail(struct session *s, struct session_args *a);
void session_do_mail(struct session *s, struct session_args *a);
void session_refused_mail(struct session *s, struct session_args *a);
enum session_check session_check_rcpt(struct session *s, struct session_args *a);
void session_do_rcpt(struct session *s, struct session_args *a);
enum session_check session_check_data(struct session *s, struct session_args *a);
void session_do_data(struct session *s, struct session_args *a);
void session_refused_data(struct session *s, struct session_args *a);
enum session_check session_check_bdat(struct session *s, struct session_args *a);
void session_do_bdat(struct session *s, struct session_args *a);
void session_refused_bdat(struct session *s, struct session_args *a);
bool session_tx_open(const struct session *s);
void session_tx_reset(struct session *s);
void session_tx_log(struct session *s, const char *result, int code, const char *text);
void session_keep_rcpt(struct session *s, struct msg_rcpt *r);
void session_release_content(struct session *s);
void session_free_headers(void *h);
bool session_feed_data(struct session *s);
bool session_feed_bdat(struct session *s);

/* session_metrics.c: one call each per session opened and closed and per
 * transaction ended; whole_message when its data arrived complete */
const char *session_metrics_listener(const struct sg_config *c, const struct sg_listener *l);
void session_metrics_open(const char *listener);
void session_metrics_tls(const char *listener, const char *version);
void session_metrics_close(double seconds);
void session_metrics_early_talker(void);
void session_metrics_transaction(const char *result, bool whole_message, uint64_t size);

/* session_edge.c: TLS and AUTH */
enum session_check session_check_starttls(struct session *s, struct session_args *a);
void session_do_starttls(struct session *s, struct session_args *a);
enum session_check session_check_auth(struct session *s, struct session_args *a);
void session_do_auth(struct session *s, struct session_args *a);
struct session_text; /* session_cmd.c */
void session_edge_ehlo(struct session *s, struct session_text *t);
const char *session_edge_refusal(const struct session *s, enum smtp_verb verb);
size_t session_line_limit(const struct session *s, struct evbuffer *in);
struct bufferevent *session_edge_bev(struct session *s, evutil_socket_t fd);
void session_tls_established(struct session *s);
bool session_auth_reply(struct session *s, struct reply_slot *slot, const struct smtp_reply *r);
bool session_auth_feed(struct session *s);
void session_auth_end(struct session *s);
void session_edge_summary(const struct session *s, char *buf, size_t size);
void session_edge_free(struct session *s);

/* Bounded text, for the EHLO reply: every addition checks what is left. */
struct session_text {
    char buf[2048];
    size_t len;
    bool truncated;
};
void session_text_add(struct session_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
