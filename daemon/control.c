/*
 * control - the control socket (control.h): the socket file, its
 * connections, one request each, and the commands that need no quarantine.
 *
 * Everything here runs on the main thread's loop, where the runtime is
 * swapped and the upstream probe runs, so a reload or a drain asked here is
 * exactly what SIGHUP or SIGTERM does.  Sessions live on the workers' loops:
 * "sessions" asks each worker (worker_ask()) to describe its own, and
 * answers once the last one has; a worker whose loop has ended has none.
 */
#include "daemon/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "chain/chain.h"
#include "daemon/control_int.h"
#include "daemon/reload.h"
#include "daemon/runtime.h"
#include "daemon/session.h"
#include "daemon/upstream.h"
#include "daemon/upstream_pool.h"
#include "daemon/worker.h"
#include "util/build_info.h"
#include "util/log.h"
#include "util/metrics.h"

/* A requester that says nothing is let go after this. */
#define CONTROL_REQUEST_TIMEOUT 10
/* ...and one that does not read its answer. */
#define CONTROL_WRITE_TIMEOUT 30
/* The largest answer: a list of every quarantined message, a whole message. */
#define CONTROL_ANSWER_MAX (64u << 20)

struct control {
    struct event_base *base;
    struct evconnlistener *listener;
    char *path;
    struct control_host host;
    struct control_conn *conns;
    struct control_sessions *queries; /* "sessions" waiting for the workers */
};

struct control_conn {
    struct control_conn *next, *prev;
    struct control *ctl;
    struct bufferevent *bev;
    long uid;
    enum control_cmd cmd;
    const char *cmd_name; /* NULL until the request is read */
    bool answered;
    bool hold; /* drain: kept open until the daemon exits */
    struct control_wait *wait;
};

/* ---- the socket file ---- */

static int control_sockaddr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path))
        return -1;
    memcpy(sun->sun_path, path, strlen(path) + 1);
    return 0;
}

/* What is at path already: nothing, a socket nobody answers on (removed),
 * or something that must not be touched (-1, logged). */
static int control_clear_path(const char *path, const struct sockaddr_un *sun)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : (log_err("control_socket %s: %s", path, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        log_err("control_socket %s: exists and is not a socket; not replacing it", path);
        return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        log_err("control_socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    int rc = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
    int err = errno;
    close(probe);
    if (rc == 0) {
        log_err("control_socket %s: another smtpgate answers there; refusing to start", path);
        return -1;
    }
    if (err != ECONNREFUSED && err != ENOENT) {
        log_err("control_socket %s: %s", path, strerror(err));
        return -1;
    }
    /* Left by a daemon that died. */
    if (unlink(path) < 0 && errno != ENOENT) {
        log_err("control_socket %s: cannot remove the stale socket: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The socket's folder; only its last component is made (a run directory
 * such as /run/smtpgate that nothing created yet). */
static int control_folder(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        log_err("control_socket %s: cannot make its folder %s: %s", path, dir, strerror(errno));
        return -1;
    }
    return 0;
}

int control_open(const struct sg_config *cfg, int *fd)
{
    *fd = -1;
    const char *path = cfg->control_socket;
    if (!path[0])
        return 0;
    struct sockaddr_un sun;
    if (control_sockaddr(path, &sun) < 0) {
        log_err("control_socket %s: path too long", path);
        return -1;
    }
    if (control_folder(path) < 0 || control_clear_path(path, &sun) < 0)
        return -1;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        log_err("control_socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    /* Made owner-only from the start: no moment when others may connect. */
    mode_t old = umask(0177);
    int rc = bind(s, (const struct sockaddr *)&sun, sizeof(sun));
    int err = errno;
    umask(old);
    if (rc < 0) {
        log_err("control_socket %s: bind: %s", path, strerror(err));
        close(s);
        return -1;
    }
    if (chmod(path, (mode_t)cfg->control_socket_mode) < 0 || listen(s, 16) < 0) {
        log_err("control_socket %s: %s", path, strerror(errno));
        close(s);
        unlink(path);
        return -1;
    }
    *fd = s;
    return 0;
}

/* ---- connections ---- */

static void control_conn_free(struct control_conn *c)
{
    struct control *ctl = c->ctl;
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->wait)
        c->wait->conn = NULL;
    bufferevent_free(c->bev);
    free(c);
}

struct control_wait *control_wait_new(struct control_conn *c)
{
    struct control_wait *w = calloc(1, sizeof(*w));
    if (w) {
        w->conn = c;
        c->wait = w;
    }
    return w;
}

void control_wait_free(struct control_wait *w)
{
    if (!w)
        return;
    if (w->conn)
        w->conn->wait = NULL;
    free(w);
}

long control_conn_uid(const struct control_conn *c)
{
    return c->uid;
}

struct event_base *control_conn_base(const struct control_conn *c)
{
    return c->ctl->base;
}

enum control_cmd control_conn_cmd(const struct control_conn *c)
{
    return c->cmd;
}

void control_answer(struct control_conn *c, bool ok, control_render_fn render, void *arg)
{
    if (c->answered)
        return;
    c->answered = true;
    char *buf = NULL;
    size_t len = 0;
    for (size_t cap = 16384; cap <= CONTROL_ANSWER_MAX; cap *= 2) {
        char *nbuf = realloc(buf, cap);
        if (!nbuf)
            break;
        buf = nbuf;
        struct json_out j;
        json_out_init(&j, buf, cap);
        json_out_key(&j, "ok");
        json_out_bool(&j, ok);
        json_out_key(&j, "command");
        json_out_cstr(&j, c->cmd_name);
        if (render)
            render(&j, arg);
        len = json_out_finish(&j);
        if (!j.truncated)
            break;
    }
    if (buf && len)
        bufferevent_write(c->bev, buf, len);
    free(buf);
    bufferevent_disable(c->bev, EV_READ);
    /* Closed once written (control_write_cb), unless held. */
    bufferevent_enable(c->bev, EV_WRITE);
}

struct control_error {
    char text[1024];
};

static void control_render_error(struct json_out *j, void *arg)
{
    struct control_error *e = arg;
    json_out_key(j, "error");
    json_out_cstr(j, e->text);
}

void control_answer_error(struct control_conn *c, const char *fmt, ...)
{
    struct control_error e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.text, sizeof(e.text), fmt, ap);
    va_end(ap);
    control_answer(c, false, control_render_error, &e);
}

static void control_write_cb(struct bufferevent *bev, void *arg)
{
    struct control_conn *c = arg;
    if (c->answered && !c->hold && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        control_conn_free(c);
}

static void control_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct control_conn *c = arg;
    (void)what;
    /* EOF, error or silence: the requester is gone (a command still running
     * finishes without it). */
    control_conn_free(c);
}

/* ---- status ---- */

static void control_render_status(struct json_out *j, void *arg)
{
    struct control *ctl = arg;
    struct sg_runtime *rt = runtime_current();
    const struct sg_config *c = rt ? rt->cfg : NULL;
    time_t now = time(NULL);
    json_out_key(j, "version");
    json_out_cstr(j, SMTPGATE_VERSION);
    json_out_key(j, "pid");
    json_out_int(j, (int64_t)getpid());
    char when[32];
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&ctl->host.started, &tm));
    json_out_key(j, "started");
    json_out_cstr(j, when);
    json_out_key(j, "uptime_seconds");
    json_out_int(j, (int64_t)(now - ctl->host.started));
    json_out_key(j, "config_file");
    json_out_cstr(j, ctl->host.cmd->config_file);
    json_out_key(j, "generation");
    json_out_int(j, rt ? rt->generation : 0);
    json_out_key(j, "draining");
    json_out_bool(j, ctl->host.draining(ctl->host.arg));
    json_out_key(j, "workers");
    json_out_int(j, (int64_t)ctl->host.nworkers);
    json_out_key(j, "sessions");
    json_out_int(j, runtime_conn_count());
    json_out_key(j, "max_connections");
    json_out_int(j, c ? c->max_connections : 0);
    json_out_key(j, "listen");
    json_out_open(j, '[');
    for (size_t i = 0; c && i < c->nlisten; i++)
        json_out_cstr(j, c->listen[i].text);
    json_out_close(j);
    json_out_key(j, "upstreams");
    json_out_open(j, '[');
    for (size_t i = 0; c && i < c->nupstreams; i++) {
        const struct upstream_health *h = rt->upstreams[i].health;
        int state = upstream_health_state(h);
        json_out_open(j, '{');
        json_out_key(j, "name");
        json_out_cstr(j, c->upstreams[i].name);
        json_out_key(j, "address");
        json_out_cstr(j, c->upstreams[i].addr.text);
        json_out_key(j, "priority");
        json_out_int(j, c->upstreams[i].priority);
        json_out_key(j, "health");
        json_out_cstr(j, state == 1 ? "up" : state == 0 ? "down" : "unknown");
        json_out_key(j, "capabilities");
        json_out_open(j, '[');
        unsigned caps = upstream_health_caps(h);
        for (unsigned b = 0; upstream_cap_name(b); b++)
            if (caps & (1u << b))
                json_out_cstr(j, upstream_cap_name(b));
        json_out_close(j);
        json_out_key(j, "size_limit");
        json_out_int(j, (int64_t)upstream_health_size(h));
        json_out_close(j);
    }
    json_out_close(j);
    json_out_key(j, "plugins");
    json_out_open(j, '[');
    static const char *const plugin_label[] = {"plugin", NULL};
    /* The family instance.c counts timeouts in (same name, type and labels). */
    struct metrics_family *timeouts =
        metrics_family("smtpgate_plugin_timeouts_total", METRICS_COUNTER,
                       "Plugin calls abandoned for giving no verdict within the timeout",
                       plugin_label, NULL, 0);
    for (size_t i = 0; c && i < c->plugins.n; i++) {
        const char *name = c->plugins.v[i].name;
        json_out_open(j, '{');
        json_out_key(j, "name");
        json_out_cstr(j, name);
        json_out_key(j, "timeouts");
        json_out_int(j, metrics_value(metrics_series(timeouts, (const char *const[]){name})));
        json_out_close(j);
    }
    json_out_close(j);
    json_out_key(j, "quarantine");
    json_out_open(j, '{');
    json_out_key(j, "dir");
    json_out_cstr(j, c ? c->quarantine_dir : NULL);
    json_out_key(j, "messages");
    json_out_int(j, c ? (int64_t)control_quarantine_count(c->quarantine_dir) : 0);
    json_out_close(j);
    runtime_unref(rt);
}

/* ---- reload ---- */

struct control_lines {
    char **v;
    size_t n;
};

struct control_reload {
    struct control_lines errors, warnings;
    bool warnings_only;
    unsigned generation;
};

static void control_lines_add(struct control_lines *l, const char *line)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (!v)
        return;
    l->v = v;
    if ((v[l->n] = strdup(line)))
        l->n++;
}

static void control_lines_render(struct json_out *j, const char *key, const struct control_lines *l)
{
    json_out_key(j, key);
    json_out_open(j, '[');
    for (size_t i = 0; i < l->n; i++)
        json_out_cstr(j, l->v[i]);
    json_out_close(j);
}

static void control_lines_free(struct control_lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static void control_reload_capture(void *arg, int priority, const char *line)
{
    struct control_reload *r = arg;
    if (priority <= LOG_ERR && !r->warnings_only)
        control_lines_add(&r->errors, line);
    else if (priority == LOG_WARNING)
        control_lines_add(&r->warnings, line);
}

static void control_render_reload(struct json_out *j, void *arg)
{
    struct control_reload *r = arg;
    json_out_key(j, "generation");
    json_out_int(j, r->generation);
    if (r->errors.n) {
        json_out_key(j, "error");
        json_out_cstr(j, "configuration has errors; the running one stays in force");
        control_lines_render(j, "errors", &r->errors);
    }
    control_lines_render(j, "warnings", &r->warnings);
}

static void control_reload(struct control_conn *c)
{
    struct control_reload r = {0};
    struct sg_runtime *old = runtime_current();
    log_info("control: reload asked by uid %ld", c->uid);
    log_capture(control_reload_capture, &r);
    struct sg_runtime *rt = reload_assemble(c->ctl->host.cmd, old);
    /* The refusal's own line is the answer's "ok": only warnings from here. */
    r.warnings_only = true;
    r.generation = rt ? rt->generation : old ? old->generation : 0;
    if (!rt && r.errors.n == 0)
        control_lines_add(&r.errors, "the configuration could not be assembled (see the log)");
    bool ok = reload_commit(old, rt);
    log_capture(NULL, NULL);
    control_answer(c, ok, control_render_reload, &r);
    control_lines_free(&r.errors);
    control_lines_free(&r.warnings);
}

/* ---- drain ---- */

struct control_drain {
    unsigned grace;
    bool already;
};

static void control_render_drain(struct json_out *j, void *arg)
{
    struct control_drain *d = arg;
    json_out_key(j, "draining");
    json_out_bool(j, true);
    json_out_key(j, "already_draining");
    json_out_bool(j, d->already);
    json_out_key(j, "grace_seconds");
    json_out_int(j, d->grace);
    json_out_key(j, "sessions");
    json_out_int(j, runtime_conn_count());
}

static void control_drain(struct control_conn *c, const struct control_request *rq)
{
    struct control *ctl = c->ctl;
    struct sg_runtime *rt = runtime_current();
    struct control_drain d = {
        .grace = rq->has_grace ? rq->grace : rt ? rt->cfg->shutdown_grace : 0,
        .already = ctl->host.draining(ctl->host.arg),
    };
    runtime_unref(rt);
    if (!d.already) {
        log_info("control: drain asked by uid %ld, grace %u s", c->uid, d.grace);
        ctl->host.drain(d.grace, ctl->host.arg);
    }
    c->hold = true;
    control_answer(c, true, control_render_drain, &d);
    /* Held until exit: nothing may time it out. */
    bufferevent_set_timeouts(c->bev, NULL, NULL);
}

/* ---- sessions ---- */

struct control_sessions {
    struct control_sessions *next, *prev;
    struct control *ctl;
    struct control_wait *wait;
    struct event *done_ev;
    pthread_mutex_t lock;
    struct session_info *items;
    unsigned *worker_of;
    size_t n, cap;
    bool out_of_memory;
    atomic_uint pending; /* workers yet to answer, and one for the asker */
};

/* On a worker's thread: its sessions, copied. */
static void control_sessions_collect(struct worker *w, void *arg)
{
    struct control_sessions *q = arg;
    for (struct session *s = w->sessions.head; s; s = session_next(s)) {
        struct session_info info;
        session_describe(s, &info);
        pthread_mutex_lock(&q->lock);
        if (q->n == q->cap) {
            size_t ncap = q->cap ? q->cap * 2 : 16;
            struct session_info *items = realloc(q->items, ncap * sizeof(*items));
            if (items)
                q->items = items;
            unsigned *wo = items ? realloc(q->worker_of, ncap * sizeof(*wo)) : NULL;
            if (wo) {
                q->worker_of = wo;
                q->cap = ncap;
            }
        }
        if (q->n < q->cap) {
            q->items[q->n] = info;
            q->worker_of[q->n++] = w->index;
        } else {
            q->out_of_memory = true;
        }
        pthread_mutex_unlock(&q->lock);
    }
    /* The last answer wakes the main thread; q is not touched after it. */
    if (atomic_fetch_sub(&q->pending, 1) == 1)
        event_active(q->done_ev, EV_TIMEOUT, 0);
}

static int control_session_cmp(const void *a, const void *b)
{
    const struct session_info *x = a, *y = b;
    return x->age < y->age ? 1 : x->age > y->age ? -1 : strcmp(x->id, y->id);
}

static void control_render_sessions(struct json_out *j, void *arg)
{
    struct control_sessions *q = arg;
    json_out_key(j, "count");
    json_out_int(j, (int64_t)q->n);
    if (q->out_of_memory) {
        json_out_key(j, "incomplete");
        json_out_bool(j, true);
    }
    json_out_key(j, "sessions");
    json_out_open(j, '[');
    for (size_t i = 0; i < q->n; i++) {
        const struct session_info *s = &q->items[i];
        json_out_open(j, '{');
        json_out_key(j, "id");
        json_out_cstr(j, s->id);
        json_out_key(j, "address");
        json_out_cstr(j, s->addr);
        json_out_key(j, "port");
        json_out_int(j, s->port);
        json_out_key(j, "name");
        json_out_cstr(j, s->name[0] ? s->name : NULL);
        json_out_key(j, "helo");
        json_out_cstr(j, s->helo[0] ? s->helo : NULL);
        json_out_key(j, "listener");
        json_out_cstr(j, s->listener);
        json_out_key(j, "state");
        json_out_cstr(j, s->state);
        json_out_key(j, "waiting_for");
        json_out_cstr(j, s->waiting[0] ? s->waiting : NULL);
        json_out_key(j, "age_seconds");
        json_out_num(j, (double)(int64_t)(s->age * 10) / 10);
        json_out_key(j, "tls");
        json_out_cstr(j, s->tls_version[0] ? s->tls_version : NULL);
        json_out_key(j, "login");
        json_out_cstr(j, s->login[0] ? s->login : NULL);
        json_out_key(j, "transactions");
        json_out_int(j, s->transactions);
        json_out_key(j, "mail_from");
        if (s->in_transaction)
            json_out_cstr(j, s->mail_from);
        else
            json_out_cstr(j, NULL);
        json_out_key(j, "recipients");
        json_out_int(j, s->recipients);
        json_out_close(j);
    }
    json_out_close(j);
}

static void control_sessions_free(struct control_sessions *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        q->ctl->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    control_wait_free(q->wait);
    event_free(q->done_ev);
    pthread_mutex_destroy(&q->lock);
    free(q->items);
    free(q->worker_of);
    free(q);
}

static void control_sessions_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct control_sessions *q = arg;
    /* Every worker has answered: nothing else touches q now. */
    if (q->n)
        qsort(q->items, q->n, sizeof(*q->items), control_session_cmp);
    if (q->wait->conn)
        control_answer(q->wait->conn, true, control_render_sessions, q);
    control_sessions_free(q);
}

static void control_sessions(struct control_conn *c)
{
    struct control *ctl = c->ctl;
    struct control_sessions *q = calloc(1, sizeof(*q));
    if (!q || !(q->done_ev = event_new(ctl->base, -1, 0, control_sessions_done, q)) ||
        !(q->wait = control_wait_new(c))) {
        if (q && q->done_ev)
            event_free(q->done_ev);
        free(q);
        control_answer_error(c, "out of memory");
        return;
    }
    pthread_mutex_init(&q->lock, NULL);
    q->ctl = ctl;
    q->next = ctl->queries;
    if (ctl->queries)
        ctl->queries->prev = q;
    ctl->queries = q;
    atomic_init(&q->pending, (unsigned)ctl->host.nworkers + 1);
    for (size_t i = 0; i < ctl->host.nworkers; i++)
        if (!worker_ask(&ctl->host.workers[i], control_sessions_collect, q))
            atomic_fetch_sub(&q->pending, 1);
    if (atomic_fetch_sub(&q->pending, 1) == 1)
        event_active(q->done_ev, EV_TIMEOUT, 0);
}

/* ---- requests ---- */

static void control_dispatch(struct control_conn *c, const char *line, size_t len)
{
    struct control_request rq;
    const char *why = control_request_parse(line, len, &rq);
    if (why) {
        log_debug("control: bad request from uid %ld: %s", c->uid, why);
        control_answer_error(c, "%s", why);
        return;
    }
    c->cmd = rq.cmd;
    c->cmd_name = control_cmd_name(rq.cmd);
    switch (rq.cmd) {
    case CONTROL_STATUS:
        control_answer(c, true, control_render_status, c->ctl);
        break;
    case CONTROL_RELOAD:
        control_reload(c);
        break;
    case CONTROL_DRAIN:
        control_drain(c, &rq);
        break;
    case CONTROL_SESSIONS:
        control_sessions(c);
        break;
    case CONTROL_QUARANTINE_LIST:
        control_quarantine_list(c);
        break;
    case CONTROL_QUARANTINE_SHOW:
        control_quarantine_show(c, rq.id);
        break;
    case CONTROL_QUARANTINE_RELEASE:
        control_quarantine_release(c, rq.id);
        break;
    case CONTROL_QUARANTINE_DELETE:
        control_quarantine_delete(c, rq.id);
        break;
    }
}

static void control_read_cb(struct bufferevent *bev, void *arg)
{
    struct control_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->answered || c->wait || c->cmd_name) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    size_t n;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
    if (!line) {
        if (evbuffer_get_length(in) > CONTROL_LINE_MAX + 2)
            control_answer_error(c, "request line too long");
        return;
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    /* A release may wait on the upstream's timeouts: no read timeout now. */
    struct timeval wt = {.tv_sec = CONTROL_WRITE_TIMEOUT};
    bufferevent_set_timeouts(bev, NULL, &wt);
    control_dispatch(c, line, n);
    free(line);
}

static void control_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int len, void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct control *ctl = arg;
    struct control_conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev =
        c ? bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->ctl = ctl;
    c->bev = bev;
    c->uid = -1;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
        c->uid = (long)cred.uid;
    c->next = ctl->conns;
    if (ctl->conns)
        ctl->conns->prev = c;
    ctl->conns = c;
    struct timeval t = {.tv_sec = CONTROL_REQUEST_TIMEOUT};
    struct timeval wt = {.tv_sec = CONTROL_WRITE_TIMEOUT};
    bufferevent_set_timeouts(bev, &t, &wt);
    bufferevent_setcb(bev, control_read_cb, control_write_cb, control_event_cb, c);
    bufferevent_enable(bev, EV_READ);
}

struct control *control_start(struct event_base *base, int fd, const char *path,
                              const struct control_host *host)
{
    struct control *ctl = calloc(1, sizeof(*ctl));
    if (!ctl || !(ctl->path = strdup(path))) {
        free(ctl);
        log_err("control_socket %s: out of memory", path);
        return NULL;
    }
    ctl->base = base;
    ctl->host = *host;
    /* backlog 0: the socket listens already (control_open). */
    ctl->listener = evconnlistener_new(base, control_accept_cb, ctl,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!ctl->listener) {
        log_err("control_socket %s: cannot serve it", path);
        free(ctl->path);
        free(ctl);
        return NULL;
    }
    return ctl;
}

/* An answer the loop had no turn left to write (a drain's, when nothing was
 * in flight and the loop ended at once) goes out now, within a bound.  The
 * bufferevent keeps the front of its output buffer frozen (only its own
 * write path may drain it), so the bytes are peeked and written by hand;
 * the connection is freed right after, so nothing needs draining. */
static void control_flush(struct control_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd < 0 || evbuffer_get_length(out) == 0)
        return;
    int n = evbuffer_peek(out, -1, NULL, NULL, 0);
    struct evbuffer_iovec *vec = n > 0 ? calloc((size_t)n, sizeof(*vec)) : NULL;
    if (!vec)
        return;
    n = evbuffer_peek(out, -1, NULL, vec, n);
    int tries = 0;
    for (int i = 0; i < n && tries < 20; i++) {
        const char *p = vec[i].iov_base;
        size_t len = vec[i].iov_len;
        while (len > 0 && tries < 20) {
            ssize_t w = write(fd, p, len);
            if (w > 0) {
                p += w;
                len -= (size_t)w;
                continue;
            }
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                goto done;
            tries++;
            struct pollfd pw = {.fd = fd, .events = POLLOUT};
            if (poll(&pw, 1, 100) < 0 && errno != EINTR)
                goto done;
        }
    }
done:
    free(vec);
}

void control_stop(struct control *ctl)
{
    if (!ctl)
        return;
    control_release_shutdown();
    evconnlistener_free(ctl->listener);
    while (ctl->conns) {
        control_flush(ctl->conns);
        control_conn_free(ctl->conns);
    }
    /* The workers have been joined: a query whose answer the loop did not
     * get to is finished with. */
    while (ctl->queries)
        control_sessions_free(ctl->queries);
    /* The folder may be root's and the daemon no longer: a stale socket is
     * replaced at the next start. */
    (void)unlink(ctl->path);
    free(ctl->path);
    free(ctl);
}
