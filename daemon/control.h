/*
 * control - the control socket: a unix stream socket on which a running
 * smtpgate answers its admin (smtpgate-ctl(8)).
 *
 * One request line per connection (codec/control_request.h), one JSON object
 * and a newline in answer, then the daemon closes; "drain" alone keeps the
 * connection open after its answer, until the daemon exits, so that its
 * requester can wait for the end.  Every answer has "ok" (false: the command
 * failed or was refused, "error" says why) and "command".
 *
 *   status      version, pid, start time and uptime, generation, draining,
 *               sessions open, each upstream's health and capabilities, each
 *               plugin's timeouts, the quarantine's count
 *   reload      what SIGHUP does; the new generation, or "errors" (each
 *               "file:line: reason", as logged) and the generation that stays;
 *               "warnings" either way
 *   drain [S]   stop accepting, sessions in flight finish within S seconds
 *               (shutdown_grace without S), then the daemon exits
 *   sessions    every client connected: id, address, state, age...
 *   quarantine list | show ID | release ID | delete ID
 *               (daemon/control_quarantine.c, control_release.c)
 *
 * control_open() runs before the privileges are dropped: it makes the socket
 * at cfg->control_socket (its folder too, when only that is missing), with
 * mode control_socket_mode, owned by whoever starts the daemon (root in
 * production): the daemon serves it through the descriptor it keeps, so the
 * file need not be its run user's, and nothing running as that user can
 * steer it.  A socket left by a daemon that died is replaced; one that
 * answers means another daemon runs there, and start is refused.  *fd is -1
 * when control_socket is "".
 *
 * control_start() serves the socket on the main thread's loop; host is what
 * the commands act on.  control_stop() closes every connection (the drain's
 * requester sees the end) and removes the socket file when it can.
 */
#ifndef SMTPGATE_CONTROL_H
#define SMTPGATE_CONTROL_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config/cmdline.h"
#include "config/config.h"

struct worker;

struct control_host {
    const struct cmdline *cmd; /* what a reload re-reads */
    struct worker *workers;
    size_t nworkers;
    time_t started;
    /* Stop accepting and exit once sessions are done, within grace seconds. */
    void (*drain)(unsigned grace, void *arg);
    bool (*draining)(void *arg);
    void *arg;
};

struct control;

int control_open(const struct sg_config *cfg, int *fd);
struct control *control_start(struct event_base *base, int fd, const char *path,
                              const struct control_host *host);
void control_stop(struct control *ctl);

#endif
