/*
 * plugin_host - loading plugins, their configuration sections, and the host
 * function table.
 *
 * Every value of a plugin section is kept by libconfuse as a string (or a
 * list of strings) and typed here: the parse callback checks it against the
 * plugin's declared type and check function while libconfuse still knows its
 * line, and records that line so that init's config_error() can name it too.
 * Defaults come from the plugin's descriptor, parsed once by the same rules
 * at load time, so a plugin with a broken default is refused at load, not
 * surprised at run time.
 *
 * Each chain dlopens its plugins again: the loader counts references, so the
 * shared object stays mapped exactly as long as some chain (and so some
 * session) may call into it.
 */
#include "chain/plugin_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain/chain_impl.h"
#include "config/config.h"
#include "util/log.h"

#define HOST_DEFAULT_TIMEOUT 30

/* Where a value was written: "file:line". */
struct plugin_where {
    char *title;
    char *key; /* NULL: the section itself */
    char where[320];
};

struct plugin_loaded {
    char *title;
    char *path;
    char where[320];
    void *dl;
    const struct sg_plugin *desc;
    cfg_t *defaults;
};

struct plugin_prep {
    char *dir;
    struct plugin_loaded *loaded;
    size_t nloaded;
    struct plugin_where *lines;
    size_t nlines;
    cfg_opt_t *section_opts;
    size_t nsection_opts;
};

struct sg_section {
    struct plugin_prep *prep;
    const struct plugin_loaded *loaded;
    cfg_t *sec;
};

static __thread struct plugin_prep *prep_current;
/* Set while a plugin's defaults are parsed: its values have no section. */
static __thread const struct plugin_loaded *defaults_for;

static const char *const verdict_names[] = {"continue", "accept",     "reject",  "tempfail",
                                            "discard",  "quarantine", "pending", NULL};

/* ---- prep ---- */

struct plugin_prep *plugin_prep_new(void)
{
    return calloc(1, sizeof(struct plugin_prep));
}

void plugin_prep_use(struct plugin_prep *p)
{
    prep_current = p;
}

void plugin_prep_free(struct plugin_prep *p)
{
    if (!p)
        return;
    if (prep_current == p)
        prep_current = NULL;
    for (size_t i = 0; i < p->nloaded; i++) {
        free(p->loaded[i].title);
        free(p->loaded[i].path);
        if (p->loaded[i].defaults)
            cfg_free(p->loaded[i].defaults);
        if (p->loaded[i].dl)
            dlclose(p->loaded[i].dl);
    }
    free(p->loaded);
    for (size_t i = 0; i < p->nlines; i++) {
        free(p->lines[i].title);
        free(p->lines[i].key);
    }
    free(p->lines);
    for (size_t i = 0; i < p->nsection_opts; i++)
        free((char *)p->section_opts[i].name);
    free(p->section_opts);
    free(p->dir);
    free(p);
}

void plugin_prep_set_dir(struct plugin_prep *p, const char *dir)
{
    free(p->dir);
    p->dir = dir && *dir ? strdup(dir) : NULL;
}

/* "rules.so" means plugin_dir/rules.so; a path with a "/" is taken as it is. */
static int plugin_resolve_path(const struct plugin_prep *p, struct plugin_loaded *l)
{
    if (strchr(l->path, '/') || !p->dir)
        return 0;
    size_t n = strlen(p->dir) + strlen(l->path) + 2;
    char *full = malloc(n);
    if (!full)
        return -1;
    snprintf(full, n, "%s/%s", p->dir, l->path);
    free(l->path);
    l->path = full;
    return 0;
}

static void prep_record_where(struct plugin_prep *p, const char *title, const char *key,
                              const char *where)
{
    for (size_t i = 0; i < p->nlines; i++) {
        struct plugin_where *w = &p->lines[i];
        if (strcmp(w->title, title) == 0 &&
            ((key == NULL && w->key == NULL) || (key && w->key && strcmp(key, w->key) == 0))) {
            snprintf(w->where, sizeof(w->where), "%s", where);
            return;
        }
    }
    struct plugin_where *n = realloc(p->lines, (p->nlines + 1) * sizeof(*n));
    if (!n)
        return;
    p->lines = n;
    struct plugin_where *w = &p->lines[p->nlines];
    w->title = strdup(title);
    w->key = key ? strdup(key) : NULL;
    if (!w->title || (key && !w->key)) {
        free(w->title);
        free(w->key);
        return;
    }
    snprintf(w->where, sizeof(w->where), "%s", where);
    p->nlines++;
}

static const char *prep_where(const struct plugin_prep *p, const char *title, const char *key)
{
    const char *section = NULL;
    for (size_t i = 0; i < p->nlines; i++) {
        const struct plugin_where *w = &p->lines[i];
        if (strcmp(w->title, title) != 0)
            continue;
        if (key && w->key && strcmp(key, w->key) == 0)
            return w->where;
        if (!w->key)
            section = w->where;
    }
    return section ? section : "(config)";
}

/* ---- pass 1 ---- */

static int plugin_pass1_path_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    *(const char **)result = value;
    struct plugin_prep *p = prep_current;
    const char *title = cfg_title(cfg);
    if (!p || !title)
        return 0;
    char where[320];
    config_where(cfg, where, sizeof(where));
    for (size_t i = 0; i < p->nloaded; i++) {
        if (strcmp(p->loaded[i].title, title) == 0) {
            char *path = strdup(value);
            if (path) {
                free(p->loaded[i].path);
                p->loaded[i].path = path;
                snprintf(p->loaded[i].where, sizeof(p->loaded[i].where), "%s", where);
            }
            return 0;
        }
    }
    struct plugin_loaded *n = realloc(p->loaded, (p->nloaded + 1) * sizeof(*n));
    if (!n)
        return 0;
    p->loaded = n;
    struct plugin_loaded *l = &p->loaded[p->nloaded];
    memset(l, 0, sizeof(*l));
    l->title = strdup(title);
    l->path = strdup(value);
    if (!l->title || !l->path) {
        free(l->title);
        free(l->path);
        return 0;
    }
    snprintf(l->where, sizeof(l->where), "%s", where);
    p->nloaded++;
    return 0;
}

cfg_opt_t *plugin_prep_pass1_opts(void)
{
    static cfg_opt_t opts[] = {
        CFG_STR_CB("path", NULL, CFGF_NODEFAULT, plugin_pass1_path_cb),
        CFG_STR_LIST("__unknown", NULL, CFGF_NONE),
        CFG_END(),
    };
    return opts;
}

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

static const struct plugin_loaded *prep_find(const struct plugin_prep *p, const char *title)
{
    for (size_t i = 0; p && title && i < p->nloaded; i++)
        if (strcmp(p->loaded[i].title, title) == 0)
            return &p->loaded[i];
    return NULL;
}

static int plugin_value_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    *(const char **)result = value;
    const struct plugin_loaded *l = defaults_for;
    if (!l)
        l = prep_find(prep_current, cfg_title(cfg));
    if (!l || !l->desc)
        return 0; /* a section whose plugin did not load: that error is logged already */
    const struct sg_option *o = plugin_find_option(l->desc, opt->name);
    if (!o) {
        cfg_error(cfg, "plugin %s (%s) has no option '%s'", l->title, l->desc->name, opt->name);
        return -1;
    }
    bool list_value = opt->type == CFGT_STR && (opt->flags & CFGF_LIST);
    if ((o->type == SG_OPT_LIST) != list_value) {
        cfg_error(cfg, "plugin %s: '%s' %s", l->title, opt->name,
                  o->type == SG_OPT_LIST ? "is a list: {\"a\", \"b\"}" : "is not a list");
        return -1;
    }
    const char *why = plugin_check_type(o->type, value);
    if (!why && o->check)
        why = o->check(value);
    if (why) {
        cfg_error(cfg, "plugin %s: '%s' is \"%s\": %s", l->title, opt->name, value, why);
        return -1;
    }
    if (!defaults_for && prep_current) {
        char where[320];
        config_where(cfg, where, sizeof(where));
        prep_record_where(prep_current, l->title, opt->name, where);
    }
    return 0;
}

static int plugin_path_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    *(const char **)result = value;
    if (prep_current && cfg_title(cfg)) {
        char where[320];
        config_where(cfg, where, sizeof(where));
        prep_record_where(prep_current, cfg_title(cfg), NULL, where);
    }
    return 0;
}

static int plugin_timeout_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (*value == '\0' || *end != '\0' || errno || !(v > 0) || v > 3600) {
        cfg_error(cfg, "plugin %s: '%s' is \"%s\"; it must be from 0.001 to 3600 seconds",
                  cfg_title(cfg), opt->name, value);
        return -1;
    }
    *(double *)result = v;
    return 0;
}

static int plugin_failure_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    static const char *const allowed[] = {"tempfail", "continue", "accept", "reject", NULL};
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(value, allowed[i]) == 0) {
            *(const char **)result = value;
            return 0;
        }
    }
    cfg_error(cfg,
              "plugin %s: '%s' is \"%s\"; expected one of: tempfail, continue, accept, "
              "reject",
              cfg_title(cfg), opt->name, value);
    return -1;
}

/* ---- loading ---- */

static cfg_opt_t plugin_opt_for(const struct sg_option *o)
{
    char *name = strdup(o->name);
    if (o->type == SG_OPT_LIST)
        return (cfg_opt_t)CFG_STR_LIST_CB(name, NULL, CFGF_NODEFAULT, plugin_value_cb);
    return (cfg_opt_t)CFG_STR_CB(name, NULL, CFGF_NODEFAULT, plugin_value_cb);
}

static void plugin_defaults_error(cfg_t *cfg, const char *fmt, va_list ap)
{
    (void)cfg;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_err("plugin %s: bad built-in default: %s", defaults_for ? defaults_for->path : "?", msg);
}

/* The plugin's declared defaults, parsed by the rules of its values. */
static int plugin_load_defaults(struct plugin_loaded *l)
{
    size_t n = 0;
    for (const struct sg_option *o = l->desc->options; o && o->name; o++)
        n++;
    cfg_opt_t *opts = calloc(n + 1, sizeof(*opts));
    size_t textcap = 1;
    for (const struct sg_option *o = l->desc->options; o && o->name; o++)
        textcap += strlen(o->name) + (o->def ? strlen(o->def) : 0) + 8;
    char *text = malloc(textcap);
    if (!opts || !text) {
        free(opts);
        free(text);
        return -1;
    }
    size_t k = 0, used = 0;
    text[0] = '\0';
    for (const struct sg_option *o = l->desc->options; o && o->name; o++) {
        opts[k++] = plugin_opt_for(o);
        if (o->def)
            used += (size_t)snprintf(text + used, textcap - used, "%s = %s\n", o->name, o->def);
    }
    opts[k] = (cfg_opt_t)CFG_END();
    int rc = -1;
    cfg_t *cfg = cfg_init(opts, CFGF_NONE);
    if (cfg) {
        cfg_set_error_function(cfg, plugin_defaults_error);
        defaults_for = l;
        rc = cfg_parse_buf(cfg, text) == CFG_SUCCESS ? 0 : -1;
        defaults_for = NULL;
        if (rc == 0)
            l->defaults = cfg;
        else
            cfg_free(cfg);
    }
    for (size_t i = 0; i < k; i++)
        free((char *)opts[i].name);
    free(opts);
    free(text);
    return rc;
}

static bool plugin_host_key(const char *name)
{
    return strcmp(name, "path") == 0 || strcmp(name, "timeout") == 0 ||
           strcmp(name, "failure_verdict") == 0;
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
        if (plugin_host_key(o->name) || !metrics_name_ok(o->name) || o->type < SG_OPT_STRING ||
            o->type > SG_OPT_LIST) {
            log_err("%s: plugin %s: %s declares an unusable option '%s'", l->where, l->title,
                    l->path, o->name);
            return 1;
        }
    }
    l->desc = d;
    if (plugin_load_defaults(l) < 0) {
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
        errors += plugin_resolve_path(p, &p->loaded[i]) < 0 ? 1 : plugin_load_one(&p->loaded[i]);
    if (errors)
        return errors;

    /* Options of the same name in two plugins must have the same shape, as one
     * section schema carries them all. */
    for (size_t i = 0; i < p->nloaded; i++) {
        for (const struct sg_option *o = p->loaded[i].desc->options; o && o->name; o++) {
            for (size_t j = 0; j < i; j++) {
                const struct sg_option *q = plugin_find_option(p->loaded[j].desc, o->name);
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

static bool opts_have(const cfg_opt_t *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return true;
    return false;
}

cfg_opt_t *plugin_prep_section_opts(struct plugin_prep *p)
{
    if (p->section_opts)
        return p->section_opts;
    size_t cap = 4;
    for (size_t i = 0; i < p->nloaded; i++)
        for (const struct sg_option *o = p->loaded[i].desc ? p->loaded[i].desc->options : NULL;
             o && o->name; o++)
            cap++;
    cfg_opt_t *opts = calloc(cap, sizeof(*opts));
    if (!opts)
        return NULL;
    size_t k = 0;
    opts[k++] = (cfg_opt_t)CFG_STR_CB(strdup("path"), NULL, CFGF_NODEFAULT, plugin_path_cb);
    opts[k++] = (cfg_opt_t)CFG_FLOAT_CB(strdup("timeout"), HOST_DEFAULT_TIMEOUT, CFGF_NONE,
                                        plugin_timeout_cb);
    opts[k++] =
        (cfg_opt_t)CFG_STR_CB(strdup("failure_verdict"), "tempfail", CFGF_NONE, plugin_failure_cb);
    for (size_t i = 0; i < p->nloaded; i++)
        for (const struct sg_option *o = p->loaded[i].desc ? p->loaded[i].desc->options : NULL;
             o && o->name; o++)
            if (!opts_have(opts, k, o->name))
                opts[k++] = plugin_opt_for(o);
    opts[k] = (cfg_opt_t)CFG_END();
    for (size_t i = 0; i < k; i++) {
        if (!opts[i].name) {
            for (size_t j = 0; j < k; j++)
                free((char *)opts[j].name);
            free(opts);
            return NULL;
        }
    }
    p->section_opts = opts;
    p->nsection_opts = k;
    return opts;
}

/* ---- sections (init) ---- */

/* Written by the admin (an empty list "{}" included), not only defaulted. */
static bool section_has(cfg_t *sec, const char *key)
{
    cfg_opt_t *o = sec ? cfg_getopt(sec, key) : NULL;
    return o && ((o->flags & CFGF_MODIFIED) || cfg_opt_size(o) > 0);
}

static cfg_t *section_source(const struct sg_section *s, const char *key)
{
    if (section_has(s->sec, key))
        return s->sec;
    if (s->loaded->defaults && cfg_size(s->loaded->defaults, key) > 0)
        return s->loaded->defaults;
    return NULL;
}

static const char *host_opt_string(const struct sg_section *s, const char *key)
{
    cfg_t *c = section_source(s, key);
    const struct sg_option *o = plugin_find_option(s->loaded->desc, key);
    if (!c || !o || o->type == SG_OPT_LIST)
        return NULL;
    return cfg_getstr(c, key);
}

static long long host_opt_int(const struct sg_section *s, const char *key)
{
    const char *v = host_opt_string(s, key);
    return v ? strtoll(v, NULL, 0) : 0;
}

static double host_opt_float(const struct sg_section *s, const char *key)
{
    const char *v = host_opt_string(s, key);
    return v ? strtod(v, NULL) : 0.0;
}

static bool host_opt_bool(const struct sg_section *s, const char *key)
{
    const char *v = host_opt_string(s, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0);
}

static size_t host_opt_list_size(const struct sg_section *s, const char *key)
{
    cfg_t *c = section_source(s, key);
    const struct sg_option *o = plugin_find_option(s->loaded->desc, key);
    if (!c || !o || o->type != SG_OPT_LIST)
        return 0;
    return cfg_size(c, key);
}

static const char *host_opt_list_item(const struct sg_section *s, const char *key, size_t i)
{
    if (i >= host_opt_list_size(s, key))
        return NULL;
    return cfg_getnstr(section_source(s, key), key, (unsigned)i);
}

static bool host_opt_is_set(const struct sg_section *s, const char *key)
{
    return plugin_find_option(s->loaded->desc, key) && section_has(s->sec, key);
}

static const char *host_section_name(const struct sg_section *s)
{
    return s->loaded->title;
}

static void host_config_error(const struct sg_section *s, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *where = prep_where(s->prep, s->loaded->title, key);
    if (key)
        log_err("%s: plugin %s: %s: %s", where, s->loaded->title, key, msg);
    else
        log_err("%s: plugin %s: %s", where, s->loaded->title, msg);
}

/* ---- the chain ---- */

static void chain_free_plugins(struct chain *ch)
{
    for (size_t i = ch->n; i-- > 0;) {
        struct plugin_inst *p = &ch->plugins[i];
        if (p->initialised && p->desc->fini)
            p->desc->fini(p->instance);
        while (p->counters) {
            struct plugin_counter *c = p->counters;
            p->counters = c->next;
            free(c);
        }
        pthread_mutex_destroy(&p->counters_lock);
        if (p->dl)
            dlclose(p->dl);
        free(p->name);
        free(p->path);
    }
    free(ch->plugins);
    ch->plugins = NULL;
    ch->n = 0;
}

struct chain *chain_ref(struct chain *ch)
{
    if (ch)
        atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return ch;
}

void chain_unref(struct chain *ch)
{
    if (!ch || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    chain_free_plugins(ch);
    free(ch);
}

size_t chain_size(const struct chain *ch)
{
    return ch ? ch->n : 0;
}

unsigned chain_generation(const struct chain *ch)
{
    return ch ? ch->generation : 0;
}

bool chain_wants(const struct chain *ch, enum sg_stage stage)
{
    return ch && (ch->stage_mask & SG_STAGE_BIT(stage));
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

static void plugin_metric_name(char *out, size_t n, const char *instance, const char *what)
{
    int k = snprintf(out, n, "smtpgate_plugin_%s_%s", instance, what);
    for (int i = 0; i < k && (size_t)i < n; i++) {
        char c = out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            out[i] = '_';
    }
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
        snprintf(what, sizeof(what), "verdict_%s", verdict_names[v]);
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
        rc = l->desc->reload(&plugin_host_table, &s, prev->instance, &p->instance);
    else
        rc = l->desc->init(&plugin_host_table, &s, &p->instance);
    if (rc != 0) {
        log_err("%s: plugin %s: %s failed", prep_where(prep, l->title, NULL), l->title,
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
        const struct plugin_loaded *l = prep_find(prep, cfg_title(sec));
        if (!cfg_getstr(sec, "path")) {
            log_err("%s: plugin %s has no path", prep_where(prep, cfg_title(sec), NULL),
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

/* ---- logging outside sessions, counters ---- */

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

/* Exposed to chain.c through the table only. */
static void host_counter_for(struct plugin_inst *p, const char *name, uint64_t delta)
{
    pthread_mutex_lock(&p->counters_lock);
    struct plugin_counter *c = p->counters;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c) {
        size_t n = strlen(name);
        char metric[512];
        plugin_metric_name(metric, sizeof(metric), p->name, name);
        struct metrics_counter *m = metrics_counter(metric);
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

void chain_host_counter_add(const struct sg_ctx *ctx, const char *name, uint64_t delta)
{
    struct plugin_inst *p = ctx ? chain_ctx_plugin(ctx) : NULL;
    if (!p || !metrics_name_ok(name))
        return;
    host_counter_for(p, name, delta);
}

const struct sg_host plugin_host_table = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .opt_string = host_opt_string,
    .opt_int = host_opt_int,
    .opt_float = host_opt_float,
    .opt_bool = host_opt_bool,
    .opt_list_size = host_opt_list_size,
    .opt_list_item = host_opt_list_item,
    .opt_is_set = host_opt_is_set,
    .section_name = host_section_name,
    .config_error = host_config_error,
    .log = chain_host_log,
    .counter_add = chain_host_counter_add,
    .conn = chain_host_conn,
    .envelope = chain_host_envelope,
    .stage = chain_host_stage,
    .header_count = chain_host_header_count,
    .header_get = chain_host_header_get,
    .message_size = chain_host_message_size,
    .message_read = chain_host_message_read,
    .body_offset = chain_host_body_offset,
    .set_conn_data = chain_host_set_conn_data,
    .conn_data = chain_host_conn_data,
    .set_msg_data = chain_host_set_msg_data,
    .msg_data = chain_host_msg_data,
    .set_reply = chain_host_set_reply,
    .set_quarantine_reason = chain_host_set_quarantine_reason,
    .resolve = chain_host_resolve,
    .add_header = chain_host_add_header,
    .insert_header = chain_host_insert_header,
    .change_header = chain_host_change_header,
    .change_from = chain_host_change_from,
    .add_rcpt = chain_host_add_rcpt,
    .del_rcpt = chain_host_del_rcpt,
    .replace_body = chain_host_replace_body,
    .tx_note = chain_host_tx_note,
};
