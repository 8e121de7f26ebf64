/*
 * reload - settings -> chain -> TLS -> health -> runtime (see reload.h).
 *
 * Each step logs its own errors with the file and line the settings carry,
 * and the first step that fails ends the assembly: what was built so far is
 * released with the half-made runtime, and the caller keeps the one it has.
 */
#include "daemon/reload.h"

#include <fcntl.h>

#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "chain/plugin_host.h"
#include "config/config.h"
#include "daemon/tls.h"
#include "daemon/upstream_pool.h"
#include "util/log.h"
#include "util/metrics.h"

static int reload_listener_tls(const struct sg_listener *l, struct tls_server **out)
{
    if (l->tls == LISTENER_TLS_NONE)
        return 0;
    struct tls_server_opts o = {
        .cert_files = (const char *const *)l->tls_cert_files,
        .key_files = (const char *const *)l->tls_key_files,
        .ncerts = l->tls_ncerts,
        .min_version = tls_version_from_name(l->tls_min_version),
        .ciphers = l->tls_ciphers,
        .ciphersuites = l->tls_ciphersuites,
        .ask_client_cert = l->tls_ask_client_cert,
        .client_ca_file = l->tls_client_ca_file,
        .session_tickets = l->tls_session_tickets,
    };
    char err[512];
    *out = tls_server_new(&o, err, sizeof(err));
    if (!*out) {
        log_err("%s:%d: listener %s: %s", l->source, l->line, l->name, err);
        return -1;
    }
    return 0;
}

static int reload_upstream_tls(const struct sg_upstream_cfg *u, struct tls_client **out)
{
    if (u->tls.mode == UPSTREAM_TLS_NONE)
        return 0;
    char err[512];
    *out = tls_client_new(u->tls.mode == UPSTREAM_TLS_REQUIRED, u->tls.ca_file,
                          tls_version_from_name(u->tls.min_version), err, sizeof(err));
    if (!*out) {
        log_err("%s:%d: upstream %s: %s", u->source, u->line, u->name, err);
        return -1;
    }
    return 0;
}

static int reload_tls(struct sg_runtime *rt)
{
    const struct sg_config *c = rt->cfg;
    int errors = 0;
    for (size_t i = 0; i < c->nlisten; i++)
        errors += reload_listener_tls(&c->listeners[i], &rt->listen_tls[i]) < 0;
    for (size_t i = 0; i < c->nupstreams; i++)
        errors += reload_upstream_tls(&c->upstreams[i], &rt->upstreams[i].tls) < 0;
    return errors;
}

/* Looked up at the first assembly too, so both series are there before any reload. */
static struct metrics_series *reload_counter(bool accepted)
{
    static const char *const result_label[] = {"result", NULL};
    struct metrics_family *reloads = metrics_family(
        "smtpgate_reloads_total", METRICS_COUNTER,
        "Configuration reloads asked for, by whether they took effect", result_label, NULL, 0);
    struct metrics_series *refused = metrics_series(reloads, (const char *const[]){"refused"});
    struct metrics_series *done = metrics_series(reloads, (const char *const[]){"accepted"});
    return accepted ? done : refused;
}

struct sg_runtime *reload_assemble(const struct cmdline *cmd, const struct sg_runtime *running)
{
    reload_counter(true);
    /* Every step runs even after errors of an earlier one, on what loaded,
     * so that one -t (or one refused reload) names every mistake. */
    int errors = 0;
    struct sg_config *c =
        config_load_all(cmd->config_file, cmd->overrides, cmd->noverrides, &cmd->load, &errors);
    if (!c)
        return NULL;
    struct sg_runtime *rt = runtime_new(c, running ? running->generation + 1 : 1);
    if (!rt) {
        log_err("out of memory assembling the configuration");
        return NULL;
    }
    rt->chain = plugin_load_chain(c, running ? running->chain : NULL, rt->generation, &errors);
    errors += reload_tls(rt);
    if (errors == 0 && c->verdict_log[0]) {
        /* Opened again at every reload, so that a rotated file is let go. */
        rt->verdict_fd = open(c->verdict_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (rt->verdict_fd < 0) {
            log_err("%s: verdict_log \"%s\": %s", cmd->config_file, c->verdict_log,
                    strerror(errno));
            errors++;
        }
    }
    if (errors == 0 && upstream_pool_attach(rt) < 0) {
        log_err("out of memory attaching the upstreams");
        errors++;
    }
    if (errors) {
        runtime_unref(rt);
        return NULL;
    }
    return rt;
}

static bool reload_same_listen(const struct sg_config *a, const struct sg_config *b)
{
    if (a->nlisten != b->nlisten)
        return false;
    for (size_t i = 0; i < a->nlisten; i++)
        if (strcmp(a->listen[i].text, b->listen[i].text) != 0)
            return false;
    return true;
}

/*
 * What a running daemon cannot change: the sockets it opened and the
 * privileges it gave up at start, and the threads it started.  Each such
 * setting that changed is named, so an admin knows a restart is due.
 */
static void reload_name_restart_settings(const struct sg_config *a, const struct sg_config *b)
{
    char names[512] = "";
    size_t n = 0;
#define RELOAD_CHANGED(cond, name)                                                                 \
    if (cond)                                                                                      \
    n += (size_t)snprintf(names + n, n < sizeof(names) ? sizeof(names) - n : 0, "%s'%s'",          \
                          n ? ", " : "", name)
    RELOAD_CHANGED(!reload_same_listen(a, b), "listen");
    RELOAD_CHANGED(a->workers != b->workers, "workers");
    RELOAD_CHANGED(strcmp(a->metrics_listen, b->metrics_listen) != 0, "metrics_listen");
    RELOAD_CHANGED(a->status_page != b->status_page, "status_page");
    RELOAD_CHANGED(a->status_recent != b->status_recent, "status_recent");
    RELOAD_CHANGED(strcmp(a->user, b->user) != 0, "user");
    RELOAD_CHANGED(strcmp(a->group, b->group) != 0, "group");
    RELOAD_CHANGED(strcmp(a->chroot_dir, b->chroot_dir) != 0, "chroot");
    RELOAD_CHANGED(a->allow_root != b->allow_root, "allow_root");
    RELOAD_CHANGED(strcmp(a->pidfile, b->pidfile) != 0, "pidfile");
    RELOAD_CHANGED(strcmp(a->control_socket, b->control_socket) != 0, "control_socket");
    RELOAD_CHANGED(a->control_socket_mode != b->control_socket_mode, "control_socket_mode");
    RELOAD_CHANGED(a->plugin_threads != b->plugin_threads, "plugin_threads");
    RELOAD_CHANGED(a->syslog_facility != b->syslog_facility, "syslog_facility");
    RELOAD_CHANGED(a->client_name_lookup != b->client_name_lookup, "client_name_lookup");
    RELOAD_CHANGED(strcmp(a->dns_nameserver, b->dns_nameserver) != 0, "dns_nameserver");
    RELOAD_CHANGED(a->dns_timeout != b->dns_timeout, "dns_timeout");
    RELOAD_CHANGED(a->shutdown_grace != b->shutdown_grace, "shutdown_grace");
    RELOAD_CHANGED(strcmp(a->milter_socket, b->milter_socket) != 0, "milter socket");
#undef RELOAD_CHANGED
    if (n)
        log_warn("reload: %s changed; %s take%s effect at the next restart (the running "
                 "daemon keeps the old value%s)",
                 names, strchr(names, ',') ? "they" : "it", strchr(names, ',') ? "" : "s",
                 strchr(names, ',') ? "s" : "");
}

bool reload_run(const struct cmdline *cmd)
{
    struct sg_runtime *old = runtime_current();
    return reload_commit(old, reload_assemble(cmd, old));
}

bool reload_commit(struct sg_runtime *old, struct sg_runtime *rt)
{
    metrics_add(reload_counter(rt != NULL), 1);
    if (!rt) {
        log_err("reload refused: configuration has errors; generation %u stays in force",
                old ? old->generation : 0);
        runtime_unref(old);
        return false;
    }
    if (old)
        reload_name_restart_settings(old->cfg, rt->cfg);
    log_info("reloaded configuration, generation %u", rt->generation);
    runtime_unref(old);
    runtime_set(rt);
    return true;
}
