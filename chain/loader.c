/*
 * loader - dlopen each plugin a configuration names, check its descriptor,
 * and build the configuration's chain by calling every instance's init (or
 * reload) in chain order (chain/plugin_host.h states the whole sequence).
 *
 * A descriptor is refused, with "file:line: plugin NAME: ..." naming the
 * section's path line, when it is not there, is built for another ABI
 * version (the version is the descriptor's first member in every ABI, so it
 * can be read before anything else is trusted), has no name or init, or
 * declares an option that cannot work: a reserved key (path, timeout,
 * failure_verdict), a name that cannot be a metric, an unknown type, a range
 * on a type that has none or a range that is no range (min above max, NaN,
 * fractional bounds on a whole number).
 *
 * Each chain dlopens its plugins again: the loader counts references, so the
 * shared object stays mapped exactly as long as some chain (and so some
 * session) may call into it.
 */
#include "chain/plugin_host.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/host_api.h"
#include "chain/instance.h"
#include "chain/plugin_conf.h"
#include "util/log.h"
#include "util/metrics.h"

/* No range (0, 0), or one the host can enforce on this option's type. */
static bool plugin_range_usable(const struct sg_option *o)
{
    if (o->min == 0 && o->max == 0)
        return true;
    if (!plugin_conf_ranged(o))
        return false; /* not a number type, or not min < max (NaN included) */
    if (o->type == SG_OPT_INT)
        return (isinf(o->min) || o->min == floor(o->min)) &&
               (isinf(o->max) || o->max == floor(o->max));
    return true;
}

static bool loading_disabled;

void plugin_host_disable_loading(bool disable)
{
    loading_disabled = disable;
}

static int plugin_load_one(struct plugin_loaded *l)
{
    if (loading_disabled) {
        log_err("%s: plugin %s: loading plugins is disabled here", l->where, l->title);
        return 1;
    }
    dlerror();
    l->dl = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        const char *e = dlerror();
        log_err("%s: plugin %s: cannot load %s", l->where, l->title, e ? e : l->path);
        return 1;
    }
    const struct sg_plugin *d = dlsym(l->dl, SG_PLUGIN_SYMBOL);
    if (!d) {
        log_err("%s: plugin %s: %s has no '%s' descriptor: not an smtpgate plugin", l->where,
                l->title, l->path, SG_PLUGIN_SYMBOL);
        return 1;
    }
    if (d->abi_version != SG_PLUGIN_ABI_VERSION) {
        log_err("%s: plugin %s: %s is built for plugin ABI version %u; this smtpgate has "
                "version %u",
                l->where, l->title, l->path, d->abi_version, SG_PLUGIN_ABI_VERSION);
        return 1;
    }
    if (!d->name || !d->init) {
        log_err("%s: plugin %s: %s has no name or no init function", l->where, l->title, l->path);
        return 1;
    }
    for (const struct sg_option *o = d->options; o && o->name; o++) {
        if (plugin_conf_reserved(o->name) || !metrics_name_ok(o->name) || o->type < SG_OPT_STRING ||
            o->type > SG_OPT_LIST || !plugin_range_usable(o)) {
            log_err("%s: plugin %s: %s declares an unusable option '%s'", l->where, l->title,
                    l->path, o->name);
            return 1;
        }
    }
    l->desc = d;
    if (plugin_conf_defaults(l) < 0) {
        log_err("%s: plugin %s: %s has defaults that do not parse", l->where, l->title, l->path);
        l->desc = NULL;
        return 1;
    }
    return 0;
}

int plugin_prep_load(struct plugin_prep *p)
{
    int errors = 0;
    for (size_t i = 0; i < p->nloaded; i++)
        errors += plugin_conf_path(p, &p->loaded[i]) < 0 ? 1 : plugin_load_one(&p->loaded[i]);
    if (errors)
        return errors;

    /* Options of the same name in two plugins must have the same shape, as one
     * section schema carries them all. */
    for (size_t i = 0; i < p->nloaded; i++) {
        for (const struct sg_option *o = p->loaded[i].desc->options; o && o->name; o++) {
            for (size_t j = 0; j < i; j++) {
                const struct sg_option *q = plugin_conf_option(p->loaded[j].desc, o->name);
                if (q && (q->type == SG_OPT_LIST) != (o->type == SG_OPT_LIST)) {
                    log_err("%s: plugin %s: option '%s' is a list in one of %s and %s and not "
                            "in the other",
                            p->loaded[i].where, p->loaded[i].title, o->name,
                            p->loaded[j].desc->name, p->loaded[i].desc->name);
                    errors++;
                }
            }
        }
    }
    return errors;
}

static const struct plugin_inst *chain_find(const struct chain *ch, const char *name,
                                            const char *plugin)
{
    for (size_t i = 0; ch && i < ch->n; i++)
        if (strcmp(ch->plugins[i].name, name) == 0 &&
            strcmp(ch->plugins[i].desc->name, plugin) == 0)
            return &ch->plugins[i];
    return NULL;
}

static int plugin_inst_init(struct plugin_prep *prep, const struct plugin_loaded *l, cfg_t *sec,
                            struct plugin_inst *p, size_t index, const struct chain *previous)
{
    p->index = index;
    p->desc = l->desc;
    p->name = strdup(l->title);
    p->path = strdup(l->path);
    pthread_mutex_init(&p->counters_lock, NULL);
    if (!p->name || !p->path) {
        log_err("out of memory loading plugin %s", l->title);
        return -1;
    }
    p->timeout_ms = (unsigned)(cfg_getfloat(sec, "timeout") * 1000.0 + 0.5);
    if (p->timeout_ms == 0)
        p->timeout_ms = 1;
    const char *fv = cfg_getstr(sec, "failure_verdict");
    p->failure_verdict = strcmp(fv, "continue") == 0 ? SG_CONTINUE
                         : strcmp(fv, "accept") == 0 ? SG_ACCEPT
                         : strcmp(fv, "reject") == 0 ? SG_REJECT
                                                     : SG_TEMPFAIL;
    for (int v = SG_ACCEPT; v <= SG_QUARANTINE; v++) {
        char name[256], what[64];
        snprintf(what, sizeof(what), "verdict_%s", chain_verdict_name((enum sg_verdict)v));
        plugin_metric_name(name, sizeof(name), p->name, what);
        p->verdicts[v] = metrics_counter(name);
    }
    p->dl = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        log_err("%s: plugin %s: cannot load %s", l->where, l->title, l->path);
        return -1;
    }
    struct sg_section s = {.prep = prep, .loaded = l, .sec = sec};
    const struct plugin_inst *prev = chain_find(previous, l->title, l->desc->name);
    int rc;
    if (prev && l->desc->reload)
        rc = l->desc->reload(&host_api_table, &s, prev->instance, &p->instance);
    else
        rc = l->desc->init(&host_api_table, &s, &p->instance);
    if (rc != 0) {
        log_err("%s: plugin %s: %s failed", plugin_conf_where(prep, l->title, NULL), l->title,
                prev && l->desc->reload ? "reload" : "init");
        return -1;
    }
    p->initialised = true;
    return 0;
}

struct chain *plugin_prep_build(struct plugin_prep *prep, cfg_t *cfg, struct chain *previous,
                                unsigned generation, int *errors)
{
    unsigned nsec = cfg_size(cfg, "plugin");
    if (nsec == 0)
        return NULL;
    struct chain *ch = calloc(1, sizeof(*ch));
    if (ch)
        ch->plugins = calloc(nsec, sizeof(*ch->plugins));
    if (!ch || !ch->plugins) {
        free(ch);
        log_err("out of memory building the filter chain");
        (*errors)++;
        return NULL;
    }
    atomic_init(&ch->refs, 1);
    ch->generation = generation;
    for (unsigned i = 0; i < nsec; i++) {
        cfg_t *sec = cfg_getnsec(cfg, "plugin", i);
        const struct plugin_loaded *l = plugin_conf_find(prep, cfg_title(sec));
        if (!cfg_getstr(sec, "path")) {
            log_err("%s: plugin %s has no path", plugin_conf_where(prep, cfg_title(sec), NULL),
                    cfg_title(sec));
            (*errors)++;
            break;
        }
        if (!l || !l->desc) {
            (*errors)++;
            break;
        }
        struct plugin_inst *p = &ch->plugins[ch->n++];
        if (plugin_inst_init(prep, l, sec, p, i, previous) < 0) {
            (*errors)++;
            break;
        }
        for (int st = 0; st < SG_STAGE__COUNT; st++)
            if (chain_plugin_has(p->desc, (enum sg_stage)st))
                ch->stage_mask |= SG_STAGE_BIT(st);
        log_info("plugin %s: %s %s loaded from %s", p->name, p->desc->name,
                 p->desc->version ? p->desc->version : "", p->path);
    }
    if (*errors) {
        chain_unref(ch);
        return NULL;
    }
    return ch;
}
