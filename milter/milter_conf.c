/*
 * milter_conf - settings and chain for smtpgate-milter (see milter_conf.h).
 */
#include "milter/milter_conf.h"

#include <pthread.h>
#include <stdlib.h>

#include "chain/chain.h"
#include "chain/plugin_host.h"
#include "util/log.h"

struct milter_conf *milter_conf_assemble(const struct cmdline *cmd,
                                         const struct milter_conf *running)
{
    struct sg_config *c =
        config_load(cmd->config_file, cmd->overrides, cmd->noverrides, &cmd->load);
    if (!c)
        return NULL;
    struct milter_conf *mc = calloc(1, sizeof(*mc));
    if (!mc) {
        log_err("out of memory assembling the configuration");
        config_unref(c);
        return NULL;
    }
    atomic_init(&mc->refs, 1);
    mc->generation = running ? running->generation + 1 : 1;
    mc->cfg = c;
    int errors = 0;
    mc->chain = plugin_load_chain(c, running ? running->chain : NULL, mc->generation, &errors);
    if (errors) {
        milter_conf_unref(mc);
        return NULL;
    }
    return mc;
}

struct milter_conf *milter_conf_ref(struct milter_conf *mc)
{
    atomic_fetch_add_explicit(&mc->refs, 1, memory_order_relaxed);
    return mc;
}

void milter_conf_unref(struct milter_conf *mc)
{
    if (!mc || atomic_fetch_sub_explicit(&mc->refs, 1, memory_order_acq_rel) != 1)
        return;
    chain_unref(mc->chain);
    config_unref(mc->cfg);
    free(mc);
}

static pthread_mutex_t milter_conf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct milter_conf *milter_conf_in_force;

void milter_conf_set(struct milter_conf *mc)
{
    pthread_mutex_lock(&milter_conf_lock);
    struct milter_conf *old = milter_conf_in_force;
    milter_conf_in_force = mc;
    pthread_mutex_unlock(&milter_conf_lock);
    milter_conf_unref(old);
}

struct milter_conf *milter_conf_current(void)
{
    pthread_mutex_lock(&milter_conf_lock);
    struct milter_conf *mc = milter_conf_in_force ? milter_conf_ref(milter_conf_in_force) : NULL;
    pthread_mutex_unlock(&milter_conf_lock);
    return mc;
}
