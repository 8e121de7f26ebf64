/*
 * instance - what every part of chain/ asks of a plugin instance: its
 * callbacks, its name on log lines, its counters.  The chain's lifetime is
 * in lifetime.c.
 */
#include "chain/instance.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

bool chain_plugin_has(const struct sg_plugin *d, enum sg_stage stage)
{
    switch (stage) {
    case SG_STAGE_CONNECT:
        return d->connect != NULL;
    case SG_STAGE_HELO:
        return d->helo != NULL;
    case SG_STAGE_MAIL:
        return d->mail != NULL;
    case SG_STAGE_RCPT:
        return d->rcpt != NULL;
    case SG_STAGE_DATA:
        return d->data != NULL;
    case SG_STAGE_HEADER:
        return d->header != NULL;
    case SG_STAGE_EOH:
        return d->eoh != NULL;
    case SG_STAGE_BODY:
        return d->body != NULL;
    case SG_STAGE_EOM:
        return d->eom != NULL;
    default:
        return false;
    }
}

bool chain_inst_has(const struct plugin_inst *p, enum sg_stage stage)
{
    return (p->skipped_stages & SG_STAGE_BIT(stage)) == 0 && chain_plugin_has(p->desc, stage);
}

const char *chain_verdict_name(enum sg_verdict v)
{
    static const char *const names[] = {"continue", "accept",     "reject", "tempfail",
                                        "discard",  "quarantine", "pending"};
    return (int)v >= SG_CONTINUE && v <= SG_PENDING ? names[v] : "?";
}

bool plugin_metric_name(char *out, size_t n, const char *instance, const char *what)
{
    int k = snprintf(out, n, "smtpgate_plugin_%s_%s", instance, what);
    if (k < 0 || (size_t)k >= n)
        return false; /* no counter: a cut name could be another's */
    for (int i = 0; i < k; i++) {
        char c = out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            out[i] = '_';
    }
    return true;
}

void plugin_log(const struct plugin_inst *p, enum sg_log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg((int)level, "plugin %s: %s", p->name, msg);
}

void plugin_count_verdict(struct plugin_inst *p, enum sg_verdict v)
{
    if (v >= SG_CONTINUE && v <= SG_QUARANTINE)
        metrics_add(p->verdicts[v], 1);
}

void plugin_counter_add(struct plugin_inst *p, const char *name, uint64_t delta)
{
    pthread_mutex_lock(&p->counters_lock);
    struct plugin_counter *c = p->counters;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c) {
        size_t n = strlen(name);
        char metric[512];
        struct metrics_counter *m = plugin_metric_name(metric, sizeof(metric), p->name, name)
                                        ? metrics_counter(metric)
                                        : NULL;
        if (m && (c = malloc(sizeof(*c) + n + 1))) {
            memcpy(c->name, name, n + 1);
            c->counter = m;
            c->next = p->counters;
            p->counters = c;
        }
    }
    pthread_mutex_unlock(&p->counters_lock);
    if (c)
        metrics_add(c->counter, delta);
}
