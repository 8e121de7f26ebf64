/*
 * test_evloop - a plugin for smtpgate's tests of host->event_loop(): its
 * verdicts wait on the connection's event loop, never on a thread.
 *
 *   mail   with delay_ms set: a timer on the loop, then continue, or reject
 *          for reject_sender
 *   rcpt   with oracle set ("127.0.0.1:PORT"): a bufferevent connects to the
 *          oracle, sends "RCPT <address>\n" and reads one line: "reject ..."
 *          refuses the recipient with that text, anything else continues;
 *          no answer within delay_ms + 5 s, or a failed connection, tempfails
 *   eom    adds "X-Evloop: outlives=yes|no" (what the host said of its loop)
 *
 * A callback that gets no loop (NULL: it runs on the work pool) tempfails
 * and logs why, which the tests can see.  Nothing here is for production.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "smtpgate/plugin.h"

struct evloop {
    const struct sg_host *host;
    long long delay_ms;
    char *reject_sender;
    struct sockaddr_in oracle;
    bool have_oracle;
};

/* One verdict in the making: whatever it waits on is freed with it. */
struct pending {
    struct evloop *x;
    struct sg_ctx *ctx;
    struct event *timer;
    struct bufferevent *bev;
    enum sg_verdict on_timer; /* the mail stage's verdict when its timer fires */
};

static void pending_finish(struct pending *p, enum sg_verdict v, const char *reply)
{
    const struct sg_host *h = p->x->host;
    struct sg_ctx *ctx = p->ctx;
    if (p->timer)
        event_free(p->timer);
    if (p->bev)
        bufferevent_free(p->bev);
    free(p);
    h->resolve(ctx, v, reply);
}

static struct event_base *evloop_base(struct evloop *x, struct sg_ctx *ctx)
{
    struct event_base *base = x->host->event_loop(ctx, NULL);
    if (!base)
        x->host->log(ctx, SG_LOG_ERR, "no event loop in this callback");
    return base;
}

static void evloop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    if (p->bev) {
        p->x->host->log(p->ctx, SG_LOG_WARNING, "the oracle did not answer");
        pending_finish(p, SG_TEMPFAIL, NULL);
        return;
    }
    enum sg_verdict v = p->on_timer;
    pending_finish(p, v, v == SG_REJECT ? "550 5.7.1 refused after a wait on the loop" : NULL);
}

static enum sg_verdict evloop_mail(struct sg_ctx *ctx, void *instance, const char *from,
                                   const char *params)
{
    (void)params;
    struct evloop *x = instance;
    if (x->delay_ms <= 0)
        return SG_CONTINUE;
    struct event_base *base = evloop_base(x, ctx);
    struct pending *p = base ? calloc(1, sizeof(*p)) : NULL;
    if (!p)
        return SG_TEMPFAIL;
    p->x = x;
    p->ctx = ctx;
    p->on_timer =
        x->reject_sender && strcasecmp(from, x->reject_sender) == 0 ? SG_REJECT : SG_CONTINUE;
    p->timer = evtimer_new(base, evloop_timer_cb, p);
    struct timeval tv = {.tv_sec = x->delay_ms / 1000, .tv_usec = (x->delay_ms % 1000) * 1000};
    if (!p->timer || evtimer_add(p->timer, &tv) < 0) {
        if (p->timer)
            event_free(p->timer);
        free(p);
        return SG_TEMPFAIL;
    }
    return SG_PENDING;
}

static void evloop_read_cb(struct bufferevent *bev, void *arg)
{
    struct pending *p = arg;
    size_t n;
    char *line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_CRLF);
    if (!line)
        return;
    if (strncasecmp(line, "reject ", 7) == 0) {
        char reply[600];
        snprintf(reply, sizeof(reply), "550 5.7.1 %s", line + 7);
        free(line);
        pending_finish(p, SG_REJECT, reply);
        return;
    }
    free(line);
    pending_finish(p, SG_CONTINUE, NULL);
}

static void evloop_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct pending *p = arg;
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        p->x->host->log(p->ctx, SG_LOG_WARNING, "the oracle's connection failed");
        pending_finish(p, SG_TEMPFAIL, NULL);
    }
}

static enum sg_verdict evloop_rcpt(struct sg_ctx *ctx, void *instance, const char *rcpt,
                                   const char *params)
{
    (void)params;
    struct evloop *x = instance;
    if (!x->have_oracle)
        return SG_CONTINUE;
    struct event_base *base = evloop_base(x, ctx);
    struct pending *p = base ? calloc(1, sizeof(*p)) : NULL;
    if (!p)
        return SG_TEMPFAIL;
    p->x = x;
    p->ctx = ctx;
    p->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    p->timer = evtimer_new(base, evloop_timer_cb, p);
    long long ms = x->delay_ms + 5000;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (!p->bev || !p->timer || evtimer_add(p->timer, &tv) < 0) {
        if (p->bev)
            bufferevent_free(p->bev);
        if (p->timer)
            event_free(p->timer);
        free(p);
        return SG_TEMPFAIL;
    }
    bufferevent_setcb(p->bev, evloop_read_cb, NULL, evloop_event_cb, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    evbuffer_add_printf(bufferevent_get_output(p->bev), "RCPT %s\n", rcpt);
    /* A failed connect reports through the event callback, which resolves:
     * the pending answer stands either way. */
    (void)bufferevent_socket_connect(p->bev, (struct sockaddr *)&x->oracle, sizeof(x->oracle));
    return SG_PENDING;
}

static enum sg_verdict evloop_eom(struct sg_ctx *ctx, void *instance)
{
    struct evloop *x = instance;
    bool outlives = false;
    struct event_base *base = x->host->event_loop(ctx, &outlives);
    x->host->add_header(ctx, "X-Evloop",
                        !base ? "no-loop" : outlives ? "outlives=yes" : "outlives=no");
    return SG_CONTINUE;
}

static const char *evloop_check_oracle(const char *value)
{
    struct in_addr a;
    char host[64];
    unsigned port;
    if (sscanf(value, "%63[0-9.]:%u", host, &port) != 2 || inet_pton(AF_INET, host, &a) != 1 ||
        port == 0 || port > 65535)
        return "must be IPV4:PORT";
    return NULL;
}

static int evloop_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    struct evloop *x = calloc(1, sizeof(*x));
    if (!x)
        return -1;
    x->host = h;
    x->delay_ms = h->opt_int(sec, "delay_ms");
    const char *r = h->opt_string(sec, "reject_sender");
    x->reject_sender = r && *r ? strdup(r) : NULL;
    const char *o = h->opt_string(sec, "oracle");
    if (o && *o) {
        char host[64];
        unsigned port;
        sscanf(o, "%63[0-9.]:%u", host, &port);
        x->oracle.sin_family = AF_INET;
        x->oracle.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, host, &x->oracle.sin_addr);
        x->have_oracle = true;
    }
    *instance = x;
    return 0;
}

static void evloop_fini(void *instance)
{
    struct evloop *x = instance;
    free(x->reject_sender);
    free(x);
}

static const struct sg_option evloop_options[] = {
    {"delay_ms", SG_OPT_INT, "0", NULL, 0, 600000},
    {"reject_sender", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"oracle", SG_OPT_STRING, NULL, evloop_check_oracle, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "test_evloop",
    .version = "1",
    .description = "verdicts that wait on the connection's event loop, for smtpgate's tests",
    .options = evloop_options,
    .init = evloop_init,
    .fini = evloop_fini,
    .mail = evloop_mail,
    .rcpt = evloop_rcpt,
    .eom = evloop_eom,
};
