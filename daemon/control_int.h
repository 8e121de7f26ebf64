/*
 * control_int - what the control socket's files share (control.h).
 *
 *   control.c             the socket, connections, the request, status,
 *                         reload, drain, sessions
 *   control_quarantine.c  quarantine list, show, delete
 *   control_release.c     quarantine release: the message handed to the
 *                         upstream as a new transaction
 *
 * An answer is rendered by a function into a json_out (util/json_out.h); when
 * it does not fit, it is rendered again into a buffer twice the size, so no
 * answer is ever cut.  A command that finishes later (sessions, release) holds
 * its connection through a struct control_wait: the connection may go first
 * (its requester gave up), and then the answer goes nowhere.
 */
#ifndef SMTPGATE_CONTROL_INT_H
#define SMTPGATE_CONTROL_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "codec/control_request.h"
#include "util/json_out.h"

struct control_conn;

/* The answer's first members ("ok", "command") are the sender's. */
typedef void (*control_render_fn)(struct json_out *j, void *arg);

void control_answer(struct control_conn *c, bool ok, control_render_fn render, void *arg);
void control_answer_error(struct control_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Who asked (the peer's uid), for log lines. */
long control_conn_uid(const struct control_conn *c);
struct event_base *control_conn_base(const struct control_conn *c);
enum control_cmd control_conn_cmd(const struct control_conn *c);

/* A later answer: the connection, or NULL once it has gone. */
struct control_wait {
    struct control_conn *conn;
};
/* When the connection closes first, w->conn becomes NULL; w stays the
 * command's, which frees it once it has answered (or not). */
struct control_wait *control_wait_new(struct control_conn *c);
void control_wait_free(struct control_wait *w);

/* control_quarantine.c */
void control_quarantine_list(struct control_conn *c);
void control_quarantine_show(struct control_conn *c, const char *id);
void control_quarantine_delete(struct control_conn *c, const char *id);
/* The file dir/ID.eml read whole into *buf (malloc'd, *len octets): 0, or -1
 * with errno (ENOENT: no such message). */
int control_quarantine_read(const char *dir, const char *id, char **buf, size_t *len);
size_t control_quarantine_count(const char *dir);
/* A release of id is in flight: it may be neither released again nor deleted. */
bool control_release_busy(const char *id);

/* control_release.c */
void control_quarantine_release(struct control_conn *c, const char *id);
/* Abandon releases still in flight (the daemon is exiting); their files stay. */
void control_release_shutdown(void);

#endif
