/*
 * loader - dlopen each plugin a configuration's sections name, check its
 * descriptor and the sections' values (plugin_conf.c), and build the chain by
 * calling every instance's init (or reload) in chain order
 * (chain/plugin_host.h states the whole sequence).
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
#include <pthread.h>
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

static int plugin_load_one(struct plugin_loaded *l)
{
    const char *title = l->sec->name;
    dlerror();
    l->dl = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        const char *e = dlerror();
        log_err("%s:%d: plugin %s: cannot load %s", l->source, l->line, title, e ? e : l->path);
        return 1;
    }
    const struct sg_plugin *d = dlsym(l->dl, SG_PLUGIN_SYMBOL);
    if (!d) {
        log_err("%s:%d: plugin %s: %s has no '%s' descriptor: not an smtpgate plugin", l->source,
                l->line, title, l->path, SG_PLUGIN_SYMBOL);
        return 1;
    }
    if (d->abi_version != SG_PLUGIN_ABI_VERSION) {
        log_err("%s:%d: plugin %s: %s is built for plugin ABI version %u; this smtpgate has "
                "version %u",
                l->source, l->line, title, l->path, d->abi_version, SG_PLUGIN_ABI_VERSION);
        return 1;
    }
    if (!d->name || !d->init) {
        log_err("%s:%d: plugin %s: %s has no name or no init function", l->source, l->line, title,
                l->path);
        return 1;
    }
    for (const struct sg_option *o = d->options; o && o->name; o++) {
        if (plugin_conf_reserved(o->name) || !metrics_name_ok(o->name) || o->type < SG_OPT_STRING ||
            o->type > SG_OPT_LIST || !plugin_range_usable(o)) {
            log_err("%s:%d: plugin %s: %s declares an unusable option '%s'", l->source, l->line,
                    title, l->path, o->name);
            return 1;
        }
    }
    l->desc = d;
    if (plugin_conf_defaults(l) < 0) {
        log_err("%s:%d: plugin %s: %s has defaults that do not parse", l->source, l->line, title,
                l->path);
        l->desc = NULL;
        return 1;
    }
    return 0;
}

/* Section sec's plugin into l; errors counted. */
static int plugin_load_section(const struct sg_config *c, const struct plugin_section *sec,
                               struct plugin_loaded *l)
{
    l->sec = sec;
    l->source = sec->source;
    l->line = sec->line;
    const struct plugin_value *path = plugin_section_get(sec, "path");
    if (!path || path->nitems == 0) {
        log_err("%s:%d: plugin %s has no path", sec->source, sec->line, sec->name);
        return 1;
    }
    l->line = path->line;
    if (path->list || path->nitems != 1) {
        log_err("%s:%d: unexpected token '{': plugin %s: 'path' is not a list", sec->source,
                path->line, sec->name);
        return 1;
    }
    l->path = plugin_conf_path(c->plugin_dir, path->items[0]);
    if (!l->path) {
        log_err("out of memory loading plugin %s", sec->name);
        return 1;
    }
    return plugin_load_one(l);
}

static void plugin_loaded_free(struct plugin_loaded *all, size_t n)
{
    for (size_t i = 0; all && i < n; i++) {
        plugin_section_clear(&all[i].defaults);
        if (all[i].dl)
            dlclose(all[i].dl);
        free(all[i].path);
    }
    free(all);
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

static int plugin_inst_init(const struct plugin_loaded *l, struct plugin_inst *p, size_t index,
                            const struct chain *previous)
{
    const char *title = l->sec->name;
    p->index = index;
    p->desc = l->desc;
    p->name = strdup(title);
    p->path = strdup(l->path);
    pthread_mutex_init(&p->counters_lock, NULL);
    if (!p->name || !p->path) {
        log_err("out of memory loading plugin %s", title);
        return -1;
    }
    const struct plugin_value *t = plugin_section_get(l->sec, "timeout");
    double timeout = t ? strtod(t->items[0], NULL) : PLUGIN_CONF_DEFAULT_TIMEOUT;
    p->timeout_ms = (unsigned)(timeout * 1000.0 + 0.5);
    if (p->timeout_ms == 0)
        p->timeout_ms = 1;
    const struct plugin_value *f = plugin_section_get(l->sec, "failure_verdict");
    const char *fv = f ? f->items[0] : "tempfail";
    p->failure_verdict = strcmp(fv, "continue") == 0 ? SG_CONTINUE
                         : strcmp(fv, "accept") == 0 ? SG_ACCEPT
                         : strcmp(fv, "reject") == 0 ? SG_REJECT
                                                     : SG_TEMPFAIL;
    plugin_metrics_init(p);
    p->dl = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        log_err("%s:%d: plugin %s: cannot load %s", l->source, l->line, title, l->path);
        return -1;
    }
    struct sg_section s = {.loaded = l, .skipped = &p->skipped_stages, .timeout_ms = p->timeout_ms};
    const struct plugin_inst *prev = chain_find(previous, title, l->desc->name);
    int rc;
    if (prev && l->desc->reload)
        rc = l->desc->reload(&host_api_table, &s, prev->instance, &p->instance);
    else
        rc = l->desc->init(&host_api_table, &s, &p->instance);
    if (rc != 0) {
        log_err("%s:%d: plugin %s: %s failed", l->source, l->line, title,
                prev && l->desc->reload ? "reload" : "init");
        return -1;
    }
    p->initialised = true;
    return 0;
}

static struct chain *plugin_build(const struct plugin_loaded *all, size_t n,
                                  const struct chain *previous, unsigned generation, int *errors)
{
    struct chain *ch = calloc(1, sizeof(*ch));
    if (ch)
        ch->plugins = calloc(n, sizeof(*ch->plugins));
    if (!ch || !ch->plugins) {
        free(ch);
        log_err("out of memory building the filter chain");
        (*errors)++;
        return NULL;
    }
    atomic_init(&ch->refs, 1);
    ch->generation = generation;
    for (size_t i = 0; i < n; i++) {
        struct plugin_inst *p = &ch->plugins[ch->n++];
        if (plugin_inst_init(&all[i], p, i, previous) < 0) {
            (*errors)++;
            break;
        }
        for (int st = 0; st < SG_STAGE__COUNT; st++)
            if (chain_inst_has(p, (enum sg_stage)st))
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

struct chain *plugin_load_chain(const struct sg_config *c, const struct chain *previous,
                                unsigned generation, int *errors)
{
    size_t n = c->plugins.n;
    if (n == 0)
        return NULL;
    struct plugin_loaded *all = calloc(n, sizeof(*all));
    if (!all) {
        log_err("out of memory loading the plugins");
        (*errors)++;
        return NULL;
    }
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += plugin_load_section(c, &c->plugins.v[i], &all[i]);
    /* The options of every plugin that loaded are judged, whatever became of
     * the others; one that did not load has no options to judge them by. */
    for (size_t i = 0; i < n; i++)
        if (all[i].desc)
            bad += plugin_conf_check(&all[i], all, n);
    struct chain *ch = NULL;
    if (bad == 0)
        ch = plugin_build(all, n, previous, generation, &bad);
    *errors += bad;
    plugin_loaded_free(all, n);
    return ch;
}
