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

void plugin_log(const struct plugin_inst *p, enum sg_log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg((int)level, "plugin %s: %s", p->name, msg);
}

const char *chain_stage_name(enum sg_stage stage)
{
    static const char *const names[] = {"connect", "helo", "mail", "rcpt", "data",
                                        "header",  "eoh",  "body", "eom"};
    return (int)stage >= 0 && stage < SG_STAGE__COUNT ? names[stage] : "?";
}

void plugin_metrics_init(struct plugin_inst *p)
{
    static const char *const verdict_labels[] = {"plugin", "verdict", NULL};
    static const char *const stage_labels[] = {"plugin", "stage", NULL};
    static const char *const plugin_label[] = {"plugin", NULL};
    struct metrics_family *verdicts = metrics_family(
        "smtpgate_plugin_verdicts_total", METRICS_COUNTER,
        "Verdicts other than continue returned by each plugin instance, counted by the host",
        verdict_labels, NULL, 0);
    for (int v = SG_ACCEPT; v <= SG_QUARANTINE; v++)
        p->verdicts[v] = metrics_series(
            verdicts, (const char *const[]){p->name, chain_verdict_name((enum sg_verdict)v)});
    struct metrics_family *latency = metrics_family(
        "smtpgate_plugin_duration_seconds", METRICS_HISTOGRAM,
        "Time from calling a plugin instance at a stage to its verdict (body: per chunk)",
        stage_labels, metrics_seconds_buckets, metrics_seconds_nbuckets);
    for (int st = 0; st < SG_STAGE__COUNT; st++)
        if (chain_plugin_has(p->desc, (enum sg_stage)st))
            p->latency[st] = metrics_series(
                latency, (const char *const[]){p->name, chain_stage_name((enum sg_stage)st)});
    p->timeouts = metrics_series(
        metrics_family("smtpgate_plugin_timeouts_total", METRICS_COUNTER,
                       "Plugin calls abandoned for giving no verdict within the timeout",
                       plugin_label, NULL, 0),
        (const char *const[]){p->name});
}

void plugin_count_latency(struct plugin_inst *p, enum sg_stage stage, uint64_t ns)
{
    if ((int)stage >= 0 && stage < SG_STAGE__COUNT)
        metrics_observe(p->latency[stage], (double)ns / 1e9);
}

void plugin_count_timeout(struct plugin_inst *p)
{
    metrics_add(p->timeouts, 1);
}

void plugin_count_verdict(struct plugin_inst *p, enum sg_verdict v)
{
    if (v >= SG_CONTINUE && v <= SG_QUARANTINE)
        metrics_add(p->verdicts[v], 1);
}

/* A plugin's own counters share one family, labelled by instance and event,
 * so no name a plugin picks can land on one of the host's series. */
static struct metrics_family *plugin_event_family(void)
{
    static const char *const labels[] = {"plugin", "event", NULL};
    return metrics_family("smtpgate_plugin_events_total", METRICS_COUNTER,
                          "Events a plugin counts itself through host->counter_add", labels, NULL,
                          0);
}

void plugin_counter_add(struct plugin_inst *p, const char *name, uint64_t delta)
{
    pthread_mutex_lock(&p->counters_lock);
    struct plugin_counter *c = p->counters;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c) {
        size_t n = strlen(name);
        const char *values[] = {p->name, name};
        struct metrics_series *m = metrics_series(plugin_event_family(), values);
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
