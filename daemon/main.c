/*
 * smtpgate - SMTP filtering proxy: entry point.
 *
 *   smtpgate [-c FILE] [-o 'KEY = VALUE']... [-f] [-t] [-v]
 *
 * The main thread reads the config, probes the upstreams once, starts the
 * workers, and then only handles signals and the periodic upstream probe:
 *   SIGHUP   re-read the config; a config with errors is refused and the old
 *            one stays in force; sessions keep the config they started with
 *   SIGTERM  stop accepting, let sessions finish within shutdown_grace, exit
 *   SIGINT   as SIGTERM
 * and serves the control socket (control.h), whose reload and drain are the
 * same steps.  While a stop lets sessions finish, the main loop runs on (the
 * control socket still answers); each worker says when it is done, and the
 * loop ends with the last.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/cmdline.h"
#include "config/config.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/privdrop.h"
#include "daemon/control.h"
#include "daemon/listen_socket.h"
#include "daemon/reload.h"
#include "daemon/runtime.h"
#include "daemon/status_page.h"
#include "daemon/upstream_pool.h"
#include "chain/workpool.h"
#include "daemon/worker.h"

struct main_state {
    struct cmdline cmd;
    struct event_base *base;
    struct worker *workers;
    size_t nworkers;
    int *listen_fds; /* the listening sockets, nlisten of them; each worker watches duplicates of
                        its own */
    size_t nlisten;
    size_t started;        /* workers running */
    atomic_size_t ended;   /* of those, done (worker_main has returned its sessions) */
    struct event *end_ev;  /* made active by a worker that is done */
    int control_fd;        /* the control socket until control_start() takes it, or -1 */
    bool stopping;
};

static struct main_state g;

static void main_usage(FILE *out)
{
    fprintf(out, "usage: smtpgate [-c FILE] [-o 'KEY = VALUE']... [-f] [-t] [-v] [--version]\n"
                 "  -c FILE   configuration file (default " CMDLINE_DEFAULT_CONFIG ")\n"
                 "  -o SET    override a setting, in the config file's own syntax\n"
                 "  -f        stay in the foreground and log to stderr\n"
                 "  -t        check the configuration and exit\n"
                 "  -v        verbose logging\n");
}

static struct sg_runtime *main_get_runtime(void)
{
    return runtime_current();
}

/* Every listen address, one socket per worker (listen_socket.h): worker w's
 * socket of address i is fds[w * nlisten + i]; NULL after logging. */
static int *main_open_listeners(const struct sg_config *c)
{
    size_t n = c->nlisten * c->workers;
    int *fds = calloc(n ? n : 1, sizeof(*fds));
    int *per_address = calloc(c->workers ? c->workers : 1, sizeof(*per_address));
    if (!fds || !per_address) {
        log_err("out of memory");
        free(fds);
        free(per_address);
        return NULL;
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        if (listen_socket_open(&c->listen[i], c->workers, per_address) < 0) {
            for (size_t w = 0; w < c->workers; w++)
                for (size_t j = 0; j < i; j++)
                    close(fds[w * c->nlisten + j]);
            free(fds);
            free(per_address);
            return NULL;
        }
        for (size_t w = 0; w < c->workers; w++)
            fds[w * c->nlisten + i] = per_address[w];
    }
    free(per_address);
    return fds;
}

static void main_close_listeners(int *fds, size_t n)
{
    for (size_t i = 0; fds && i < n; i++)
        close(fds[i]);
    free(fds);
}

static bool main_all_ended(void)
{
    return atomic_load(&g.ended) >= g.started;
}

/* SIGTERM's and the control socket's drain: stop accepting, and end the loop
 * once every worker's sessions are done (within grace seconds). */
static void main_stop(unsigned grace, void *arg)
{
    (void)arg;
    if (g.stopping)
        return;
    g.stopping = true;
    log_info("stopping: no new connections; sessions in flight may finish within %u s", grace);
    for (size_t i = 0; i < g.started; i++)
        worker_stop_within(&g.workers[i], grace);
    /* The ports close once the workers have dropped their duplicates too. */
    main_close_listeners(g.listen_fds, g.nlisten);
    g.listen_fds = NULL;
    if (main_all_ended())
        event_base_loopbreak(g.base);
}

static bool main_stopping(void *arg)
{
    (void)arg;
    return g.stopping;
}

/* On a worker's thread, as it ends. */
static void main_worker_ended(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g.ended, 1);
    event_active(g.end_ev, EV_TIMEOUT, 0);
}

static void main_end_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (g.stopping && main_all_ended())
        event_base_loopbreak(g.base);
}

static void main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGHUP) {
        reload_run(&g.cmd);
        return;
    }
    struct sg_runtime *rt = runtime_current();
    unsigned grace = rt ? rt->cfg->shutdown_grace : 0;
    runtime_unref(rt);
    main_stop(grace, NULL);
}

static void main_probe_done(void *arg)
{
    (void)arg;
    event_base_loopbreak(g.base);
}

/* -t asks each upstream once, as the start-up probe would, so that what it
 * offers is judged against client_identity before the daemon ever runs. */
static int main_test_upstreams(struct sg_runtime *rt)
{
    runtime_set(runtime_ref(rt));
    g.base = event_base_new();
    if (!g.base) {
        log_err("cannot create the event loop");
        return 1;
    }
    struct upstream_probe *probe =
        upstream_probe_start(g.base, main_get_runtime, main_probe_done, NULL);
    if (probe)
        event_base_dispatch(g.base);
    int errors = upstream_pool_identity_check(rt, true);
    upstream_probe_stop(probe);
    event_base_free(g.base);
    g.base = NULL;
    runtime_shutdown();
    return errors;
}

/* A start that fails after the listeners are open gives everything back, so
 * that valgrind's exit report stays about real leaks. */
static int main_abandon_start(struct sg_runtime *rt, struct metrics_http *metrics)
{
    metrics_http_stop(metrics);
    main_close_listeners(g.listen_fds, g.nlisten);
    if (g.control_fd >= 0) {
        close(g.control_fd);
        unlink(rt->cfg->control_socket);
    }
    runtime_unref(rt);
    upstream_pool_shutdown();
    if (g.base)
        event_base_free(g.base);
    g.base = NULL;
    return 1;
}

static void main_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    /* Before any plugin's init: the loops a plugin reaches through
     * host->event_loop are woken from other threads. */
    evthread_use_pthreads();
    int status;
    g.control_fd = -1;
    if (cmdline_parse(argc, argv, "smtpgate", false, main_usage, &g.cmd, &status) < 0)
        return status;
    cmdline_open_log("smtpgate", &g.cmd);
    struct sg_runtime *rt = reload_assemble(&g.cmd, NULL);
    if (!rt)
        return 1;
    struct privdrop_ids ids;
    bool drop = false;
    const struct sg_config *c = rt->cfg;
    g.nlisten = c->nlisten * c->workers;
    if (cmdline_check_start("smtpgate", &g.cmd, c, &ids, &drop) > 0 ||
        (!g.cmd.test_only && !(g.listen_fds = main_open_listeners(c))) ||
        (!g.cmd.test_only && control_open(c, &g.control_fd) < 0)) {
        if (g.cmd.test_only)
            log_err("%s: configuration has errors", g.cmd.config_file);
        runtime_unref(rt);
        upstream_pool_shutdown();
        return 1;
    }
    if (g.cmd.test_only && main_test_upstreams(rt) > 0) {
        log_err("%s: configuration has errors", g.cmd.config_file);
        runtime_unref(rt);
        upstream_pool_shutdown();
        return 1;
    }
    if (!cmdline_proceed("smtpgate", &g.cmd, rt->cfg->syslog_facility, &status)) {
        main_close_listeners(g.listen_fds, g.nlisten);
        if (g.control_fd >= 0) {
            close(g.control_fd);
            unlink(c->control_socket);
        }
        runtime_unref(rt);
        upstream_pool_shutdown();
        return status;
    }
    signal(SIGPIPE, SIG_IGN);
    main_raise_fd_limit();
    g.base = event_base_new();
    if (!g.base) {
        log_err("cannot create the event loop");
        return main_abandon_start(rt, NULL);
    }
    struct metrics_http *metrics = NULL;
    if (c->metrics_listen[0] && !(metrics = metrics_http_start(g.base, c->metrics_listen)))
        return main_abandon_start(rt, NULL);
    if (metrics && c->status_page &&
        status_page_attach(metrics, c->hostname, c->status_recent) < 0) {
        log_err("metrics_listen %s: cannot add the status page", c->metrics_listen);
        return main_abandon_start(rt, metrics);
    }
    char *pidfile = c->pidfile[0] ? strdup(c->pidfile) : NULL;
    if (pidfile && cmdline_write_pidfile(pidfile) < 0) {
        free(pidfile);
        return main_abandon_start(rt, metrics);
    }
    /* Everything that needs root is open: the listeners, the metrics socket,
     * the control socket, the syslog socket (LOG_NDELAY), the pid file. */
    if (drop) {
        char err[256];
        if (privdrop_apply(&ids, c->chroot_dir, err, sizeof(err)) < 0) {
            log_err("%s", err);
            if (pidfile)
                (void)unlink(pidfile);
            free(pidfile);
            return main_abandon_start(rt, metrics);
        }
        log_info("running as %s (uid %ld, gid %ld)%s%s", c->user, (long)ids.uid, (long)ids.gid,
                 c->chroot_dir[0] ? " in " : "", c->chroot_dir);
    }
    runtime_set(runtime_ref(rt)); /* and rt stays ours until exit */
    workpool_set_threads(c->plugin_threads);
    struct event *sigs[3];
    int signums[3] = {SIGHUP, SIGTERM, SIGINT};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(g.base, signums[i], main_signal_cb, NULL);
        event_add(sigs[i], NULL);
    }

    /* Know which upstreams answer before the first client is greeted. */
    struct upstream_probe *probe =
        upstream_probe_start(g.base, main_get_runtime, main_probe_done, NULL);
    event_base_dispatch(g.base);
    if (!upstream_pool_any_healthy(rt))
        log_warn("no upstream answers yet: clients get 421 until one does");

    int rc = 0;
    if (upstream_pool_identity_check(rt, false) > 0) {
        log_err("%s: refusing to start", g.cmd.config_file);
        rc = 1;
    }
    g.nworkers = c->workers;
    g.workers = calloc(g.nworkers, sizeof(*g.workers));
    g.end_ev = event_new(g.base, -1, 0, main_end_cb, NULL);
    if (!g.workers || !g.end_ev) {
        log_err("out of memory");
        rc = 1;
        g.nworkers = 0;
    }
    atomic_init(&g.ended, 0);
    for (size_t i = 0; rc == 0 && !g.stopping && i < g.nworkers; i++) {
        if (worker_init(&g.workers[i], (unsigned)i, c, g.listen_fds + i * c->nlisten) < 0) {
            rc = 1;
            worker_free(&g.workers[i]);
            break;
        }
        g.workers[i].ended = main_worker_ended;
        if (worker_run(&g.workers[i]) < 0) {
            rc = 1;
            worker_free(&g.workers[i]);
            break;
        }
        g.started++;
    }
    struct control *control = NULL;
    if (rc == 0 && g.control_fd >= 0) {
        struct control_host host = {
            .cmd = &g.cmd,
            .workers = g.workers,
            .nworkers = g.started,
            .started = time(NULL),
            .drain = main_stop,
            .draining = main_stopping,
        };
        if (!(control = control_start(g.base, g.control_fd, c->control_socket, &host)))
            rc = 1;
        else
            g.control_fd = -1; /* the listener's now */
    }
    if (rc == 0) {
        log_info("ready: %zu workers, listening on %s%s, upstream %s", g.nworkers,
                 c->listen[0].text, c->nlisten > 1 ? " and more" : "", c->upstreams[0].addr.text);
        if (!g.stopping)
            event_base_dispatch(g.base);
    } else {
        g.stopping = true;
    }
    for (size_t i = 0; i < g.started; i++)
        worker_stop(&g.workers[i]);
    for (size_t i = 0; i < g.started; i++) {
        worker_join(&g.workers[i]);
        worker_free(&g.workers[i]);
    }
    free(g.workers);
    /* Last: a drain's requester learns of the end when this closes. */
    control_stop(control);
    if (g.control_fd >= 0) {
        close(g.control_fd);
        unlink(c->control_socket);
    }
    if (g.end_ev)
        event_free(g.end_ev);
    main_close_listeners(g.listen_fds, g.nlisten);
    /* Plugin calls still on the pool hold their connections and chains. */
    workpool_shutdown();
    runtime_unref(rt);
    metrics_http_stop(metrics);
    upstream_probe_stop(probe);
    for (int i = 0; i < 3; i++)
        event_free(sigs[i]);
    event_base_free(g.base);
    runtime_shutdown();
    upstream_pool_shutdown();
    metrics_shutdown();
    libevent_global_shutdown();
    if (pidfile)
        (void)unlink(pidfile); /* fails when its folder is root's: harmless */
    free(pidfile);
    log_info("stopped");
    return rc;
}
