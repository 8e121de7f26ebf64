/*
 * plugin_load - plugins from their configuration sections to a chain.
 *
 * A section's values are strings (or lists of strings) as config/ read them;
 * they are typed here against the plugin's declared options, each error
 * naming the line the value was written on.  Defaults come from the plugin's
 * descriptor, parsed by the same rules (plugin_section_parse_body() and the
 * same checks) at load time, so a plugin with a broken default is refused at
 * load, not surprised at run time.
 *
 * Each chain dlopens its plugins again: the loader counts references, so the
 * shared object stays mapped exactly as long as some chain (and so some
 * session) may call into it.
 */
#include "chain/plugin_load.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain_impl.h"
#include "config/plugin_section.h"
#include "util/log.h"
#include "util/metrics.h"

#define HOST_DEFAULT_TIMEOUT_MS 30000

/* One section's plugin, loaded for one build. */
struct plugin_loaded {
    const struct plugin_section *sec;
    char *path;         /* resolved against plugin_dir */
    const char *source; /* where path was written (the section's line without one) */
    int line;
    void *dl;
    const struct sg_plugin *desc;
    struct plugin_section defaults; /* the descriptor's, parsed */
};

/* What a plugin's init sees as its section (plugin.h keeps it opaque). */
struct sg_section {
    const struct plugin_loaded *loaded;
};

/* ---- values ---- */

static const char *plugin_check_type(enum sg_opt_type type, const char *value)
{
    char *end;
    errno = 0;
    switch (type) {
    case SG_OPT_INT:
        (void)strtoll(value, &end, 0);
        if (*value == '\0' || *end != '\0' || errno)
            return "must be a whole number";
        return NULL;
    case SG_OPT_FLOAT: {
        double d = strtod(value, &end);
        if (*value == '\0' || *end != '\0' || errno || !isfinite(d))
            return "must be a number";
        return NULL;
    }
    case SG_OPT_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0 ||
            strcmp(value, "yes") == 0 || strcmp(value, "no") == 0 || strcmp(value, "on") == 0 ||
            strcmp(value, "off") == 0)
            return NULL;
        return "must be true or false";
    default:
        return NULL;
    }
}

static const struct sg_option *plugin_find_option(const struct sg_plugin *d, const char *name)
{
    for (const struct sg_option *o = d->options; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

static bool plugin_host_key(const char *name)
{
    return strcmp(name, "path") == 0 || strcmp(name, "timeout") == 0 ||
           strcmp(name, "failure_verdict") == 0;
}

/* Checks one value of plugin l's option o; NULL, or the reason in msg. */
static const char *plugin_check_value(const struct plugin_loaded *l, const struct sg_option *o,
                                      const struct plugin_value *v, char *msg, size_t size)
{
    const char *title = l->sec->name;
    if (v->list && o->type != SG_OPT_LIST) {
        snprintf(msg, size, "unexpected token '{': plugin %s: '%s' is not a list", title, v->key);
        return msg;
    }
    for (size_t i = 0; i < v->nitems; i++) {
        const char *why = plugin_check_type(o->type, v->items[i]);
        if (!why && o->check)
            why = o->check(v->items[i]);
        if (why) {
            snprintf(msg, size, "plugin %s: '%s' is \"%s\": %s", title, v->key, v->items[i], why);
            return msg;
        }
    }
    return NULL;
}

/* The host's own keys: timeout and failure_verdict (path is checked at load). */
static const char *plugin_check_host_value(const char *title, const struct plugin_value *v,
                                           char *msg, size_t size)
{
    const char *value = v->nitems ? v->items[v->nitems - 1] : "";
    if (v->list || v->nitems != 1) {
        snprintf(msg, size, "unexpected token '{': plugin %s: '%s' is not a list", title, v->key);
        return msg;
    }
    if (strcmp(v->key, "timeout") == 0) {
        char *end;
        errno = 0;
        double t = strtod(value, &end);
        if (*value == '\0' || *end != '\0' || errno || !(t > 0) || t > 3600) {
            snprintf(msg, size, "plugin %s: '%s' is \"%s\"; it must be from 0.001 to 3600 seconds",
                     title, v->key, value);
            return msg;
        }
    } else if (strcmp(v->key, "failure_verdict") == 0) {
        static const char *const allowed[] = {"tempfail", "continue", "accept", "reject", NULL};
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(value, allowed[i]) == 0)
                return NULL;
        snprintf(msg, size,
                 "plugin %s: '%s' is \"%s\"; expected one of: tempfail, continue, accept, reject",
                 title, v->key, value);
        return msg;
    }
    return NULL;
}

/* Every value of l's section, against the plugin's options; errors counted. */
static int plugin_check_section(const struct plugin_loaded *l, const struct plugin_loaded *all,
                                size_t nall)
{
    int errors = 0;
    const struct plugin_section *sec = l->sec;
    for (size_t i = 0; i < sec->nvalues; i++) {
        const struct plugin_value *v = &sec->values[i];
        char msg[1024];
        const char *why = NULL;
        const struct sg_option *o = plugin_find_option(l->desc, v->key);
        if (plugin_host_key(v->key)) {
            why = strcmp(v->key, "path") == 0
                      ? NULL
                      : plugin_check_host_value(sec->name, v, msg, sizeof(msg));
        } else if (!o) {
            /* Known to another plugin of the chain, or to none. */
            bool elsewhere = false;
            for (size_t k = 0; k < nall && !elsewhere; k++)
                elsewhere = all[k].desc && plugin_find_option(all[k].desc, v->key);
            if (elsewhere)
                snprintf(msg, sizeof(msg), "plugin %s (%s) has no option '%s'", sec->name,
                         l->desc->name, v->key);
            else
                snprintf(msg, sizeof(msg), "no such option '%s'", v->key);
            why = msg;
        } else {
            why = plugin_check_value(l, o, v, msg, sizeof(msg));
        }
        if (why) {
            log_err("%s:%d: %s", sec->source, v->line, why);
            errors++;
        }
    }
    return errors;
}

/* ---- loading ---- */

/* The plugin's declared defaults, parsed and checked by the rules of its values. */
static int plugin_load_defaults(struct plugin_loaded *l)
{
    size_t textcap = 1;
    for (const struct sg_option *o = l->desc->options; o && o->name; o++)
        textcap += strlen(o->name) + (o->def ? strlen(o->def) : 0) + 8;
    char *text = malloc(textcap);
    if (!text)
        return -1;
    size_t used = 0;
    text[0] = '\0';
    for (const struct sg_option *o = l->desc->options; o && o->name; o++) {
        if (!o->def)
            continue;
        /* textcap counted every name and default with room to spare. */
        int n = snprintf(text + used, textcap - used, "%s = %s\n", o->name, o->def);
        if (n < 0 || (size_t)n >= textcap - used) {
            free(text);
            return -1;
        }
        used += (size_t)n;
    }
    char err[256];
    int line = 0;
    int rc = plugin_section_parse_body(text, l->path, &l->defaults, &line, err, sizeof(err));
    free(text);
    if (rc < 0) {
        log_err("plugin %s: bad built-in default: %s", l->path, err);
        return -1;
    }
    for (size_t i = 0; i < l->defaults.nvalues; i++) {
        const struct plugin_value *v = &l->defaults.values[i];
        const struct sg_option *o = plugin_find_option(l->desc, v->key);
        char msg[1024];
        const char *why = o ? plugin_check_value(l, o, v, msg, sizeof(msg)) : "not an option";
        if (why) {
            log_err("plugin %s: bad built-in default: %s", l->path, why);
            return -1;
        }
    }
    return 0;
}

/* "rules.so" means plugin_dir/rules.so; a path with a "/" is taken as it is. */
static char *plugin_resolve_path(const char *dir, const char *path)
{
    if (strchr(path, '/') || !dir || !*dir)
        return strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *full = malloc(n);
    if (full)
        snprintf(full, n, "%s/%s", dir, path);
    return full;
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
        if (plugin_host_key(o->name) || !metrics_name_ok(o->name) || o->type < SG_OPT_STRING ||
            o->type > SG_OPT_LIST) {
            log_err("%s:%d: plugin %s: %s declares an unusable option '%s'", l->source, l->line,
                    title, l->path, o->name);
            return 1;
        }
    }
    l->desc = d;
    if (plugin_load_defaults(l) < 0) {
        log_err("%s:%d: plugin %s: %s has defaults that do not parse", l->source, l->line, title,
                l->path);
        l->desc = NULL;
        return 1;
    }
    return 0;
}

/* Section i's plugin into l; errors counted. */
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
    l->path = plugin_resolve_path(c->plugin_dir, path->items[0]);
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

/* ---- sections, as plugins read them ---- */

static const struct plugin_value *section_value(const struct sg_section *s, const char *key)
{
    const struct plugin_value *v = plugin_section_get(s->loaded->sec, key);
    if (v)
        return v; /* written by the admin, an empty list "{}" included */
    v = plugin_section_get(&s->loaded->defaults, key);
    return v && v->nitems > 0 ? v : NULL;
}

const char *plugin_load_opt_string(const struct sg_section *s, const char *key)
{
    const struct plugin_value *v = section_value(s, key);
    const struct sg_option *o = plugin_find_option(s->loaded->desc, key);
    if (!v || !o || o->type == SG_OPT_LIST || v->nitems == 0)
        return NULL;
    return v->items[v->nitems - 1];
}

long long plugin_load_opt_int(const struct sg_section *s, const char *key)
{
    const char *v = plugin_load_opt_string(s, key);
    return v ? strtoll(v, NULL, 0) : 0;
}

double plugin_load_opt_float(const struct sg_section *s, const char *key)
{
    const char *v = plugin_load_opt_string(s, key);
    return v ? strtod(v, NULL) : 0.0;
}

bool plugin_load_opt_bool(const struct sg_section *s, const char *key)
{
    const char *v = plugin_load_opt_string(s, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0);
}

size_t plugin_load_opt_list_size(const struct sg_section *s, const char *key)
{
    const struct plugin_value *v = section_value(s, key);
    const struct sg_option *o = plugin_find_option(s->loaded->desc, key);
    if (!v || !o || o->type != SG_OPT_LIST)
        return 0;
    return v->nitems;
}

const char *plugin_load_opt_list_item(const struct sg_section *s, const char *key, size_t i)
{
    if (i >= plugin_load_opt_list_size(s, key))
        return NULL;
    return section_value(s, key)->items[i];
}

bool plugin_load_opt_is_set(const struct sg_section *s, const char *key)
{
    return plugin_find_option(s->loaded->desc, key) && plugin_section_get(s->loaded->sec, key);
}

const char *plugin_load_section_name(const struct sg_section *s)
{
    return s->loaded->sec->name;
}

void plugin_load_config_error(const struct sg_section *s, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct plugin_loaded *l = s->loaded;
    const struct plugin_value *v = key ? plugin_section_get(l->sec, key) : NULL;
    const char *source = v ? l->sec->source : l->source;
    int line = v ? v->line : l->line;
    if (key)
        log_err("%s:%d: plugin %s: %s: %s", source, line, l->sec->name, key, msg);
    else
        log_err("%s:%d: plugin %s: %s", source, line, l->sec->name, msg);
}

/* ---- the chain ---- */

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
    p->timeout_ms =
        t ? (unsigned)(strtod(t->items[0], NULL) * 1000.0 + 0.5) : HOST_DEFAULT_TIMEOUT_MS;
    if (p->timeout_ms == 0)
        p->timeout_ms = 1;
    const struct plugin_value *f = plugin_section_get(l->sec, "failure_verdict");
    const char *fv = f ? f->items[0] : "tempfail";
    p->failure_verdict = strcmp(fv, "continue") == 0 ? SG_CONTINUE
                         : strcmp(fv, "accept") == 0 ? SG_ACCEPT
                         : strcmp(fv, "reject") == 0 ? SG_REJECT
                                                     : SG_TEMPFAIL;
    plugin_host_verdict_counters(p);
    p->dl = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        log_err("%s:%d: plugin %s: cannot load %s", l->source, l->line, title, l->path);
        return -1;
    }
    struct sg_section s = {.loaded = l};
    const struct plugin_inst *prev = chain_find(previous, title, l->desc->name);
    int rc;
    if (prev && l->desc->reload)
        rc = l->desc->reload(&plugin_host_table, &s, prev->instance, &p->instance);
    else
        rc = l->desc->init(&plugin_host_table, &s, &p->instance);
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
    for (size_t i = 0; bad == 0 && i < n; i++)
        bad += plugin_check_section(&all[i], all, n);
    struct chain *ch = NULL;
    if (bad == 0)
        ch = plugin_build(all, n, previous, generation, &bad);
    *errors += bad;
    plugin_loaded_free(all, n);
    return ch;
}
