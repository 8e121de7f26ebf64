/*
 * upstream_pool - health records of upstream MTAs and the probe that fills them.
 *
 * Records live in a process-wide list, found by the upstream's address text at
 * config load (main thread, under a mutex) and never freed before exit, so a
 * session holding an old config can still read them safely.  The fields a
 * worker reads are atomics: one EHLO per session reads them, nothing locks.
 *
 * A probe is one short SMTP conversation: greeting, EHLO, QUIT.  An upstream
 * is healthy when it greets with 2xx and answers EHLO with 250; its capability
 * bits and SIZE are taken from that EHLO reply.
 */
#include "daemon/upstream_pool.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codec/auth_relay.h"
#include "codec/client_identity.h"
#include "codec/esmtp.h"
#include "util/log.h"
#include "util/metrics.h"
#include "codec/smtp_reply.h"

static const char *const cap_names[] = {
    "SIZE",     "8BITMIME",   "BINARYMIME",          "SMTPUTF8", "DSN",     "AUTH",
    "CHUNKING", "PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS", "XCLIENT", "XFORWARD"};
#define NCAPS (sizeof(cap_names) / sizeof(cap_names[0]))

struct upstream_health {
    struct upstream_health *next;
    char address[SOCKADDR_TEXT_MAX]; /* the upstream's sg_sockaddr text: always fits */
    atomic_int state;                /* -1 unknown, 0 down, 1 up */
    atomic_uint caps;
    _Atomic uint64_t size_limit;
    atomic_uint auth_mechs; /* relayable SASL mechanisms (auth_relay.h) */
    atomic_int xclient;     /* enum upstream_xclient of the last good probe */
    struct metrics_series *up, *cap[NCAPS];
    struct metrics_series *message_latency, *message_replies[3]; /* 2xx, 4xx, 5xx */
};

static void health_metrics_init(struct upstream_health *h)
{
    static const char *const up_labels[] = {"upstream", NULL};
    static const char *const cap_labels[] = {"upstream", "capability", NULL};
    h->up = metrics_series(
        metrics_family("smtpgate_upstream_up", METRICS_GAUGE,
                       "1 when the upstream's last probe or session found it answering, else 0",
                       up_labels, NULL, 0),
        (const char *const[]){h->address});
    struct metrics_family *caps = metrics_family(
        "smtpgate_upstream_capability", METRICS_GAUGE,
        "1 for each ESMTP extension the upstream offered at its last successful probe", cap_labels,
        NULL, 0);
    for (size_t i = 0; i < NCAPS; i++)
        h->cap[i] = metrics_series(caps, (const char *const[]){h->address, cap_names[i]});
    h->message_latency = metrics_series(
        metrics_family("smtpgate_upstream_message_reply_seconds", METRICS_HISTOGRAM,
                       "Time from handing a whole message to the upstream to its final reply",
                       up_labels, metrics_seconds_buckets, metrics_seconds_nbuckets),
        (const char *const[]){h->address});
    static const char *const class_labels[] = {"upstream", "class", NULL};
    static const char *const classes[] = {"2xx", "4xx", "5xx"};
    struct metrics_family *replies = metrics_family(
        "smtpgate_upstream_message_replies_total", METRICS_COUNTER,
        "The upstream's final replies to messages, by reply class", class_labels, NULL, 0);
    for (size_t i = 0; i < 3; i++)
        h->message_replies[i] =
            metrics_series(replies, (const char *const[]){h->address, classes[i]});
}

void upstream_health_message_reply(struct upstream_health *h, int code, double seconds)
{
    if (!h)
        return;
    metrics_observe(h->message_latency, seconds);
    int k = code / 100;
    if (k == 2 || k == 4 || k == 5)
        metrics_add(h->message_replies[k == 2 ? 0 : k == 4 ? 1 : 2], 1);
}

static void health_metrics_caps(struct upstream_health *h, unsigned caps)
{
    for (size_t i = 0; i < NCAPS; i++)
        metrics_gauge_set(h->cap[i], (caps >> i) & 1u);
}

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upstream_health *pool_head;

int upstream_pool_attach(struct sg_runtime *rt)
{
    const struct sg_config *c = rt->cfg;
    pthread_mutex_lock(&pool_lock);
    for (size_t i = 0; i < c->nupstreams; i++) {
        struct upstream_health *h;
        for (h = pool_head; h; h = h->next)
            if (strcmp(h->address, c->upstreams[i].addr.text) == 0)
                break;
        if (!h) {
            h = calloc(1, sizeof(*h));
            if (!h) {
                pthread_mutex_unlock(&pool_lock);
                return -1;
            }
            snprintf(h->address, sizeof(h->address), "%s", c->upstreams[i].addr.text);
            atomic_init(&h->state, -1);
            atomic_init(&h->xclient, UP_XCLIENT_UNKNOWN);
            health_metrics_init(h);
            h->next = pool_head;
            pool_head = h;
        }
        rt->upstreams[i].health = h;
    }
    pthread_mutex_unlock(&pool_lock);
    return 0;
}

void upstream_pool_shutdown(void)
{
    pthread_mutex_lock(&pool_lock);
    while (pool_head) {
        struct upstream_health *h = pool_head;
        pool_head = h->next;
        free(h);
    }
    pthread_mutex_unlock(&pool_lock);
}

bool upstream_health_ok(const struct upstream_health *h)
{
    return h && atomic_load_explicit(&h->state, memory_order_relaxed) == 1;
}

int upstream_health_state(const struct upstream_health *h)
{
    return h ? atomic_load_explicit(&h->state, memory_order_relaxed) : -1;
}

unsigned upstream_health_caps(const struct upstream_health *h)
{
    return h ? atomic_load_explicit(&h->caps, memory_order_relaxed) : 0;
}

uint64_t upstream_health_size(const struct upstream_health *h)
{
    return h ? atomic_load_explicit(&h->size_limit, memory_order_relaxed) : 0;
}

const char *upstream_cap_name(unsigned i)
{
    return i < NCAPS ? cap_names[i] : NULL;
}

void upstream_health_report(struct upstream_health *h, bool ok)
{
    if (!h)
        return;
    int was = atomic_exchange(&h->state, ok ? 1 : 0);
    metrics_gauge_set(h->up, ok);
    if (was != (ok ? 1 : 0))
        log_msg(ok ? LOG_INFO : LOG_WARNING, "upstream %s is %s", h->address, ok ? "up" : "down");
}

bool upstream_pool_any_healthy(const struct sg_runtime *rt)
{
    for (size_t i = 0; i < rt->cfg->nupstreams; i++)
        if (upstream_health_ok(rt->upstreams[i].health))
            return true;
    return false;
}

void upstream_pool_caps(const struct sg_runtime *rt, unsigned *caps, uint64_t *size_limit)
{
    unsigned common = ~0u;
    uint64_t smallest = 0;
    bool any = false;

    for (size_t i = 0; i < rt->cfg->nupstreams; i++) {
        const struct upstream_health *h = rt->upstreams[i].health;
        if (!upstream_health_ok(h))
            continue;
        any = true;
        common &= atomic_load_explicit(&h->caps, memory_order_relaxed);
        uint64_t sz = atomic_load_explicit(&h->size_limit, memory_order_relaxed);
        if (sz && (!smallest || sz < smallest))
            smallest = sz;
    }
    *caps = any ? common : 0;
    *size_limit = smallest;
}

unsigned upstream_pool_auth_mechs(const struct sg_runtime *rt)
{
    unsigned common = ~0u;
    bool any = false;
    for (size_t i = 0; i < rt->cfg->nupstreams; i++) {
        const struct upstream_health *h = rt->upstreams[i].health;
        if (!upstream_health_ok(h))
            continue;
        any = true;
        common &= atomic_load_explicit(&h->auth_mechs, memory_order_relaxed);
    }
    return any ? common : 0;
}

/* ---- the probe ---- */

enum probe_step { PROBE_GREETING, PROBE_EHLO, PROBE_QUIT };

struct probe_conn {
    struct probe_conn *next, *prev;
    struct upstream_probe *probe;
    struct upstream_health *health;
    struct bufferevent *bev;
    struct smtp_reply reply;
    enum probe_step step;
    unsigned caps;
    uint64_t size_limit;
    bool ok;
    bool proxy_header;
    unsigned auth_mechs;
    enum upstream_xclient xclient;
};

struct upstream_probe {
    struct event_base *base;
    struct event *timer;
    struct sg_runtime *(*get_runtime)(void);
    void (*done)(void *arg);
    void *done_arg;
    struct probe_conn *conns;
    unsigned running;
    bool first_round_done;
};

static void probe_conn_free(struct probe_conn *pc)
{
    struct upstream_probe *p = pc->probe;
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        p->conns = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    bufferevent_free(pc->bev);
    smtp_reply_free(&pc->reply);
    free(pc);
}

static void probe_conn_finish(struct probe_conn *pc, bool ok, const char *why)
{
    struct upstream_probe *p = pc->probe;

    if (ok) {
        atomic_store(&pc->health->caps, pc->caps);
        atomic_store(&pc->health->size_limit, pc->size_limit);
        atomic_store(&pc->health->auth_mechs, pc->auth_mechs);
        int was = atomic_exchange(&pc->health->xclient, (int)pc->xclient);
        health_metrics_caps(pc->health, pc->caps);
        /* The first round is judged by its caller; later, only a change. */
        if (p->first_round_done && was != (int)pc->xclient) {
            struct sg_runtime *rt = p->get_runtime();
            if (rt) {
                upstream_identity_refused(rt->cfg, pc->health->address, pc->xclient);
                runtime_unref(rt);
            }
        }
    } else {
        log_debug("probe of upstream %s failed: %s", pc->health->address, why);
    }
    upstream_health_report(pc->health, ok);
    probe_conn_free(pc);

    if (--p->running == 0 && !p->first_round_done) {
        p->first_round_done = true;
        if (p->done)
            p->done(p->done_arg);
    }
}

static void probe_read_cb(struct bufferevent *bev, void *arg)
{
    struct probe_conn *pc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    char *line;

    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        enum smtp_reply_status st = smtp_reply_feed(&pc->reply, line, len);
        free(line);
        if (st == SMTP_REPLY_ERROR) {
            probe_conn_finish(pc, false, "malformed reply");
            return;
        }
        if (st == SMTP_REPLY_MORE)
            continue;

        int code = pc->reply.code;
        switch (pc->step) {
        case PROBE_GREETING:
            if (code / 100 != 2) {
                probe_conn_finish(pc, false, "greeting not 2xx");
                return;
            }
            evbuffer_add_printf(bufferevent_get_output(bev), "EHLO %s\r\n", "smtpgate-probe");
            pc->step = PROBE_EHLO;
            break;
        case PROBE_EHLO:
            if (code != 250) {
                probe_conn_finish(pc, false, "EHLO refused");
                return;
            }
            {
                struct smtp_ehlo_caps ec;
                smtp_ehlo_caps(pc->reply.text, pc->reply.text_len, &ec);
                pc->caps = ec.caps;
                pc->size_limit = ec.size_limit;
                pc->auth_mechs = auth_mechs_parse(ec.auth_mechs, strlen(ec.auth_mechs));
                pc->xclient = upstream_xclient_offered(ec.caps, ec.xclient_attrs);
            }
            pc->ok = true;
            evbuffer_add(bufferevent_get_output(bev), "QUIT\r\n", 6);
            pc->step = PROBE_QUIT;
            break;
        case PROBE_QUIT:
            probe_conn_finish(pc, true, NULL);
            return;
        }
        smtp_reply_reset(&pc->reply);
    }
    if (evbuffer_get_length(in) > SMTP_REPLY_MAX_BYTES)
        probe_conn_finish(pc, false, "reply line too long");
}

static void probe_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct probe_conn *pc = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (pc->proxy_header) {
            /* An upstream that expects PROXY v2 waits for it before its
             * greeting; a probe is nobody's connection: LOCAL. */
            struct sockaddr_storage none = {0};
            uint8_t hdr[240];
            size_t n = proxy_v2_build((struct sockaddr *)&none, (struct sockaddr *)&none, hdr);
            evbuffer_add(bufferevent_get_output(bev), hdr, n);
        }
        return;
    }
    /* A server that closes right after answering QUIT has passed the probe. */
    probe_conn_finish(pc, pc->ok, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "connection lost");
}

static void probe_round(struct upstream_probe *p)
{
    struct sg_runtime *rt = p->get_runtime();
    const struct sg_config *c = rt->cfg;

    /* Held while starting, so that connections failing at once cannot end the
     * round before every one has started. */
    p->running++;

    for (size_t i = 0; i < c->nupstreams; i++) {
        struct probe_conn *pc = calloc(1, sizeof(*pc));
        if (!pc)
            continue;
        pc->probe = p;
        pc->health = rt->upstreams[i].health;
        pc->proxy_header = c->identity == IDENTITY_PROXY;
        smtp_reply_init(&pc->reply);
        pc->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!pc->bev) {
            free(pc);
            continue;
        }
        struct timeval tv = {.tv_sec = c->upstream_connect_timeout};
        bufferevent_set_timeouts(pc->bev, &tv, &tv);
        bufferevent_setcb(pc->bev, probe_read_cb, NULL, probe_event_cb, pc);
        bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
        pc->next = p->conns;
        if (p->conns)
            p->conns->prev = pc;
        p->conns = pc;
        p->running++;
        if (bufferevent_socket_connect(pc->bev, (struct sockaddr *)&c->upstreams[i].addr.sa,
                                       (int)c->upstreams[i].addr.len) < 0) {
            probe_conn_finish(pc, false, "connect failed");
        }
    }
    struct timeval next = {.tv_sec = c->probe_interval};
    runtime_unref(rt);
    evtimer_add(p->timer, &next);
    if (--p->running == 0 && !p->first_round_done) {
        p->first_round_done = true;
        if (p->done)
            p->done(p->done_arg);
    }
}

static void probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct upstream_probe *p = arg;
    /* A round still running (upstream slow to answer) is not doubled. */
    if (p->running == 0)
        probe_round(p);
    else {
        struct timeval again = {.tv_sec = 1};
        evtimer_add(p->timer, &again);
    }
}

struct upstream_probe *upstream_probe_start(struct event_base *base,
                                            struct sg_runtime *(*get_runtime)(void),
                                            void (*done)(void *arg), void *arg)
{
    struct upstream_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->base = base;
    p->get_runtime = get_runtime;
    p->done = done;
    p->done_arg = arg;
    p->timer = evtimer_new(base, probe_timer_cb, p);
    if (!p->timer) {
        free(p);
        return NULL;
    }
    probe_round(p);
    return p;
}

enum upstream_xclient upstream_xclient_offered(unsigned caps, const char *xclient_attrs)
{
    if (!(caps & ESMTP_CAP_XCLIENT))
        return UP_XCLIENT_NONE;
    return smtp_ehlo_word(xclient_attrs, "ADDR") ? UP_XCLIENT_ADDR : UP_XCLIENT_NO_ADDR;
}

bool upstream_identity_refused(const struct sg_config *c, const char *upstream,
                               enum upstream_xclient x)
{
    if (c->identity == IDENTITY_NONE && x == UP_XCLIENT_ADDR) {
        if (c->identity_none_despite_xclient)
            return false;
        log_err("upstream %s offers XCLIENT, but client_identity = \"none\" would show it "
                "every client as smtpgate's own address (a Postfix that trusts that address "
                "relays for anyone): set client_identity = \"xclient\", or "
                "client_identity_none_despite_xclient = true if the upstream judges nobody by "
                "address",
                upstream);
        return true;
    }
    if (c->identity == IDENTITY_XCLIENT && x == UP_XCLIENT_NONE)
        log_warn("upstream %s does not offer XCLIENT (client_identity = \"xclient\"): sessions "
                 "through it will fail with 451; on Postfix set smtpd_authorized_xclient_hosts "
                 "to smtpgate's address, or choose client_identity = \"proxy\"",
                 upstream);
    else if (c->identity == IDENTITY_XCLIENT && x == UP_XCLIENT_NO_ADDR)
        log_warn("upstream %s offers XCLIENT without ADDR (client_identity = \"xclient\"): it "
                 "cannot learn the client's address, and sessions through it will fail with "
                 "451; use an upstream that takes XCLIENT ADDR, or another client_identity",
                 upstream);
    return false;
}

int upstream_pool_identity_check(const struct sg_runtime *rt, bool warn_unknown)
{
    int errors = 0;
    const struct sg_config *c = rt->cfg;
    for (size_t i = 0; i < c->nupstreams; i++) {
        const char *name = c->upstreams[i].addr.text;
        int x = atomic_load(&rt->upstreams[i].health->xclient);
        if (x == UP_XCLIENT_UNKNOWN) {
            if (warn_unknown)
                log_warn("upstream %s did not answer: what it offers for client_identity is "
                         "not checked",
                         name);
            continue;
        }
        errors += upstream_identity_refused(c, name, (enum upstream_xclient)x);
    }
    return errors;
}

void upstream_probe_stop(struct upstream_probe *p)
{
    if (!p)
        return;
    event_free(p->timer);
    while (p->conns)
        probe_conn_free(p->conns);
    free(p);
}
