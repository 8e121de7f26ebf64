/*
 * test_wait - a plugin for smtpgate's tests of late verdicts: a blocking
 * mail callback that sleeps (run on the host's work pool), and a rcpt
 * callback that answers pending and resolves from a thread of its own after
 * a delay, or never (to test the host's timeout).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smtpgate/plugin.h"

struct waiter {
    const struct sg_host *host;
    char *slow_sender;
    long long sleep_ms;
    char *pending_rcpt; /* resolved with continue after delay_ms */
    char *never_rcpt;   /* resolved only after the host gave up (late_ms) */
    long long delay_ms;
    long long late_ms;
    pthread_mutex_t lock;
    unsigned threads; /* resolver threads still running */
    pthread_cond_t done;
};

struct late {
    struct waiter *w;
    struct sg_ctx *ctx;
    long long ms;
};

static void wait_sleep(long long ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&t, &t) != 0)
        ;
}

static void *wait_resolver(void *arg)
{
    struct late *l = arg;
    struct waiter *w = l->w;
    wait_sleep(l->ms);
    w->host->resolve(l->ctx, SG_CONTINUE, NULL);
    free(l);
    pthread_mutex_lock(&w->lock);
    w->threads--;
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static char *wait_str(const struct sg_host *h, const struct sg_section *sec, const char *key)
{
    const char *v = h->opt_string(sec, key);
    return v && *v ? strdup(v) : NULL;
}

static int wait_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    w->host = h;
    w->slow_sender = wait_str(h, sec, "slow_sender");
    w->pending_rcpt = wait_str(h, sec, "pending_rcpt");
    w->never_rcpt = wait_str(h, sec, "never_rcpt");
    w->sleep_ms = h->opt_int(sec, "sleep_ms");
    w->delay_ms = h->opt_int(sec, "delay_ms");
    w->late_ms = h->opt_int(sec, "late_ms");
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->done, NULL);
    *instance = w;
    return 0;
}

static void wait_fini(void *instance)
{
    struct waiter *w = instance;
    /* Resolvers still sleeping call back into the host: wait for them. */
    pthread_mutex_lock(&w->lock);
    while (w->threads > 0)
        pthread_cond_wait(&w->done, &w->lock);
    pthread_mutex_unlock(&w->lock);
    free(w->slow_sender);
    free(w->pending_rcpt);
    free(w->never_rcpt);
    free(w);
}

static enum sg_verdict wait_mail(struct sg_ctx *ctx, void *instance, const char *from,
                                 const char *params)
{
    (void)params;
    struct waiter *w = instance;
    if (w->slow_sender && strcasecmp(from, w->slow_sender) == 0) {
        w->host->log(ctx, SG_LOG_INFO, "sleeping %lld ms for %s", w->sleep_ms, from);
        wait_sleep(w->sleep_ms);
    }
    return SG_CONTINUE;
}

static enum sg_verdict wait_later(struct waiter *w, struct sg_ctx *ctx, long long ms)
{
    struct late *l = malloc(sizeof(*l));
    if (!l)
        return SG_TEMPFAIL;
    *l = (struct late){w, ctx, ms};
    pthread_t t;
    pthread_mutex_lock(&w->lock);
    w->threads++;
    pthread_mutex_unlock(&w->lock);
    if (pthread_create(&t, NULL, wait_resolver, l) != 0) {
        pthread_mutex_lock(&w->lock);
        w->threads--;
        pthread_mutex_unlock(&w->lock);
        free(l);
        return SG_TEMPFAIL;
    }
    pthread_detach(t);
    return SG_PENDING;
}

static enum sg_verdict wait_rcpt(struct sg_ctx *ctx, void *instance, const char *rcpt,
                                 const char *params)
{
    (void)params;
    struct waiter *w = instance;
    if (w->pending_rcpt && strcasecmp(rcpt, w->pending_rcpt) == 0)
        return wait_later(w, ctx, w->delay_ms);
    if (w->never_rcpt && strcasecmp(rcpt, w->never_rcpt) == 0)
        return wait_later(w, ctx, w->late_ms);
    return SG_CONTINUE;
}

static const struct sg_option wait_options[] = {
    {"slow_sender", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"sleep_ms", SG_OPT_INT, "1000", NULL, 0, 600000},
    {"pending_rcpt", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"never_rcpt", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"delay_ms", SG_OPT_INT, "200", NULL, 0, 600000},
    {"late_ms", SG_OPT_INT, "3000", NULL, 0, 600000},
    {NULL, 0, NULL, NULL, 0, 0},
};

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "test_wait",
    .version = "1",
    .description = "slow, pending and late verdicts, for smtpgate's tests",
    .options = wait_options,
    .blocking_stages = SG_STAGE_BIT(SG_STAGE_MAIL),
    .init = wait_init,
    .fini = wait_fini,
    .mail = wait_mail,
    .rcpt = wait_rcpt,
};
