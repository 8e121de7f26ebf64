/*
 * instance - a loaded chain and its plugin instances, as the rest of chain/
 * sees them: what chain_ref()/chain_unref() (chain.h, chain/lifetime.c)
 * count, what a connection walks, what the loader fills in.  Nothing outside
 * chain/ (and its unit test) includes this.
 *
 *   chain_plugin_has()    does a descriptor have a callback for a stage
 *   chain_inst_has()      ... and does the instance want it (set_stages)
 *   chain_verdict_name()  "continue", "reject"... for log lines and metrics
 *   plugin_metrics_init() the instance's series, looked up once at load
 *   plugin_log()          a log line with the instance's name, outside sessions
 *   plugin_count_verdict(), plugin_count_latency(), plugin_count_timeout(),
 *   plugin_counter_add()
 *                         the instance's counters (any thread)
 */
#ifndef SMTPGATE_CHAIN_INSTANCE_H
#define SMTPGATE_CHAIN_INSTANCE_H

#include <pthread.h>
#include <stdatomic.h>

#include "smtpgate/plugin.h"
#include "util/metrics.h"

struct plugin_counter {
    struct plugin_counter *next;
    struct metrics_series *counter;
    char name[];
};

struct plugin_inst {
    char *name; /* the section's title */
    char *path;
    void *dl;
    const struct sg_plugin *desc;
    void *instance; /* from init/reload */
    bool initialised;
    unsigned timeout_ms;
    unsigned skipped_stages; /* SG_STAGE_BIT()s set_stages() left out */
    enum sg_verdict failure_verdict;
    size_t index;
    /* counters this instance has used, found once then kept */
    pthread_mutex_t counters_lock;
    struct plugin_counter *counters;
    struct metrics_series *verdicts[SG_PENDING + 1];
    struct metrics_series *latency[SG_STAGE__COUNT], *timeouts;
};

struct chain {
    atomic_uint refs;
    unsigned generation;
    size_t n;
    struct plugin_inst *plugins;
    unsigned stage_mask; /* SG_STAGE_BIT of every stage some plugin has */
};

bool chain_plugin_has(const struct sg_plugin *desc, enum sg_stage stage);
/* The descriptor has the callback and the instance wants the stage. */
bool chain_inst_has(const struct plugin_inst *p, enum sg_stage stage);
/* v may be any value: "?" for one that is not a verdict. */
const char *chain_verdict_name(enum sg_verdict v);

/* The instance's series: verdicts, latency per stage, timeouts. */
void plugin_metrics_init(struct plugin_inst *p);
void plugin_log(const struct plugin_inst *p, enum sg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void plugin_count_verdict(struct plugin_inst *p, enum sg_verdict v);
void plugin_count_latency(struct plugin_inst *p, enum sg_stage stage, uint64_t ns);
void plugin_count_timeout(struct plugin_inst *p);
/* "connect", "helo"... for metrics' labels; "?" for a value that is none. */
const char *chain_stage_name(enum sg_stage stage);
/* name must be metrics_name_ok(). */
void plugin_counter_add(struct plugin_inst *p, const char *name, uint64_t delta);

#endif
