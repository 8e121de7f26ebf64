/*
 * smtpgate-milter - the filter chain as a libmilter milter inside the MTA.
 *
 *   smtpgate-milter [-c FILE] [-o 'KEY = VALUE']... [-p PIDFILE] [-f] [-t] [-v]
 *
 * Reads the same configuration as smtpgate (its "milter { socket = ... }"
 * section says where to listen; upstream sections are not needed), loads the
 * same plugins, and serves the MTA through libmilter: one thread per MTA
 * connection, callbacks in milter_front.c.
 *
 * Signals: libmilter's own signal thread stops the milter on SIGHUP, so the
 * milter runs smfi_main() on a thread of its own and the main thread, with
 * SIGHUP, SIGTERM and SIGINT blocked everywhere, takes them in sigwait().
 * Linux hands a process signal to the main thread first when it can take it
 * (it is waiting for it), so libmilter's thread never sees them:
 *   SIGHUP   re-read the configuration; one with errors is refused and the
 *            old one stays in force; MTA connections keep the configuration
 *            (and plugin chain) they started with
 *   SIGTERM  smfi_stop(): no new MTA connections; those in flight get up to
 *            shutdown_grace seconds to end, then exit
 *   SIGINT   as SIGTERM
 *
 * Diagnostics: configuration errors as "file:line: reason" (exit 1); a socket
 * libmilter cannot open, with libmilter's reason on stderr/syslog (exit 1).
 */
#include <errno.h>
#include <event2/thread.h>
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/privdrop.h"
#include "milter/milter_front.h"
#include "codec/milter_socket.h"
#include "milter/milter_conf.h"
#include "chain/workpool.h"

#define MILTER_NAME "smtpgate"

struct milter_main {
    struct cmdline cmd;
    struct privdrop_ids ids; /* the configured user, when privileges are to go */
    bool drop;
    pthread_t main_thread;
    int milter_rc;
};

static struct milter_main g;

static void milter_main_usage(FILE *out)
{
    fprintf(out, "usage: smtpgate-milter [-c FILE] [-o 'KEY = VALUE']... [-p PIDFILE] [-f] [-t] "
                 "[-v]\n"
                 "  -c FILE     configuration file (default " CMDLINE_DEFAULT_CONFIG ")\n"
                 "  -o SET      override a setting, in the config file's own syntax\n"
                 "  -p PIDFILE  write the process id there (removed at exit)\n"
                 "  -f          stay in the foreground and log to stderr\n"
                 "  -t          check the configuration and exit\n"
                 "  -v          verbose logging\n");
}

static void milter_main_reload(void)
{
    struct milter_conf *old = milter_conf_current();
    struct milter_conf *mc = milter_conf_assemble(&g.cmd, old);
    if (!mc) {
        log_err("reload refused: configuration has errors; generation %u stays in force",
                old->generation);
        milter_conf_unref(old);
        return;
    }
    if (strcmp(old->cfg->milter_socket, mc->cfg->milter_socket) != 0)
        log_warn("reload: a 'milter { socket }' change takes effect at the next restart");
    log_info("reloaded configuration, generation %u", mc->generation);
    milter_conf_unref(old);
    milter_conf_set(mc);
}

static void *milter_main_thread(void *arg)
{
    (void)arg;
    g.milter_rc = smfi_main() == MI_SUCCESS ? 0 : 1;
    /* Wake the main thread if the milter ended by itself. */
    pthread_kill(g.main_thread, SIGUSR1);
    return NULL;
}

/*
 * smfi_stop() waits for the listener's lock, which libmilter holds through
 * each poll of the listening socket (seconds); a connection of our own ends
 * that poll.  The waker knocks every 20 ms until smfi_stop() has returned.
 */
struct milter_waker {
    const char *spec;
    atomic_bool done;
};

static void milter_main_knock(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (milter_socket_address(spec, &ss, &len) < 0)
        return;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)connect(fd, (struct sockaddr *)&ss, len);
    close(fd);
}

static void *milter_main_waker(void *arg)
{
    struct milter_waker *w = arg;
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
    for (int i = 0; i < 500 && !atomic_load(&w->done); i++) {
        milter_main_knock(w->spec);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void milter_main_stop(const char *spec)
{
    struct milter_waker w = {.spec = spec};
    atomic_init(&w.done, false);
    pthread_t t;
    bool waker = pthread_create(&t, NULL, milter_main_waker, &w) == 0;
    smfi_stop();
    atomic_store(&w.done, true);
    if (waker)
        pthread_join(t, NULL);
}

static int milter_main_write_pid(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_err("%s: cannot write the pid file: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0) {
        log_err("%s: cannot write the pid file: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int milter_main_serve(const struct milter_conf *mconf)
{
    const struct sg_config *c = mconf->cfg;
    if (milter_front_register(MILTER_NAME) < 0 || smfi_setconn(c->milter_socket) != MI_SUCCESS) {
        log_err("libmilter refused the milter registration");
        return 1;
    }
    /* Open now, so a busy port or a bad path is reported before "ready". */
    if (smfi_opensocket(true) != MI_SUCCESS) {
        log_err("cannot listen on milter socket %s", c->milter_socket);
        return 1;
    }
    /* The socket and the syslog socket are open: root is needed no more. */
    if (g.drop) {
        char err[256];
        if (privdrop_apply(&g.ids, c->chroot_dir, err, sizeof(err)) < 0) {
            log_err("%s", err);
            return 1;
        }
        log_info("running as %s (uid %ld, gid %ld)", c->user, (long)g.ids.uid, (long)g.ids.gid);
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    g.main_thread = pthread_self();

    pthread_t milter;
    int err = pthread_create(&milter, NULL, milter_main_thread, NULL);
    if (err != 0) {
        log_err("cannot start the milter thread: %s", strerror(err));
        return 1;
    }
    log_info("ready: milter on %s, %zu plugin(s)", c->milter_socket,
             mconf->chain ? chain_size(mconf->chain) : (size_t)0);

    bool stopping = false;
    while (!stopping) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            milter_main_reload();
        } else if (sig == SIGUSR1) {
            stopping = true; /* smfi_main returned on its own */
        } else {
            log_info("stopping: no new MTA connections");
            milter_main_stop(c->milter_socket);
            stopping = true;
        }
    }
    pthread_join(milter, NULL);

    /* libmilter leaves a unix socket behind; the next start would remove it,
     * but a stopped milter should not look like one that is listening. */
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (milter_socket_address(c->milter_socket, &ss, &sslen) == 0 && ss.ss_family == AF_UNIX)
        unlink(((const struct sockaddr_un *)&ss)->sun_path);

    /* libmilter does not wait for its connection threads: give them up to
     * shutdown_grace to finish the message they are on. */
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
    unsigned rounds = c->shutdown_grace * 20;
    for (unsigned i = 0; i < rounds && milter_front_connections() > 0; i++)
        nanosleep(&pause, NULL);
    if (milter_front_connections() > 0)
        log_warn("exiting with %u MTA connection(s) still open after shutdown_grace",
                 milter_front_connections());
    return g.milter_rc;
}

int main(int argc, char **argv)
{
    /* Each connection's loop is woken by plugin threads' verdicts; a
     * plugin's init may make events too. */
    evthread_use_pthreads();
    int status;
    if (cmdline_parse(argc, argv, "smtpgate-milter", true, milter_main_usage, &g.cmd, &status) < 0)
        return status;
    g.cmd.load.upstream_optional = true; /* the MTA is the upstream */
    cmdline_open_log("smtpgate-milter", &g.cmd);
    struct milter_conf *mc = milter_conf_assemble(&g.cmd, NULL);
    if (!mc)
        return 1;
    if (cmdline_check_start("smtpgate-milter", &g.cmd, mc->cfg, &g.ids, &g.drop) > 0) {
        milter_conf_unref(mc);
        return 1;
    }
    if (!cmdline_proceed("smtpgate-milter", &g.cmd, mc->cfg->syslog_facility, &status) ||
        (g.cmd.pid_file && milter_main_write_pid(g.cmd.pid_file) < 0)) {
        milter_conf_unref(mc);
        return g.cmd.test_only ? status : 1;
    }

    signal(SIGPIPE, SIG_IGN);
    milter_conf_set(milter_conf_ref(mc)); /* and mc stays ours until exit */
    int rc = milter_main_serve(mc);

    /* Plugin calls still out hold their connections and chains. */
    workpool_shutdown();
    milter_conf_unref(mc);
    milter_conf_set(NULL);
    metrics_shutdown();
    if (g.cmd.pid_file)
        unlink(g.cmd.pid_file);
    log_info("stopped");
    return rc;
}
