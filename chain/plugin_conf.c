/*
 * plugin_conf - the plugin sections of a configuration: the prep one load
 * fills, the two passes' schemas, every value typed and range-checked while
 * libconfuse still knows its line, and the lookups init's host functions
 * make (chain/plugin_conf.h, chain/plugin_host.h).
 *
 * Every value of a plugin section is kept by libconfuse as a string (or a
 * list of strings) and typed here: the parse callback checks it against the
 * plugin's declared type, range and check function while libconfuse still
 * knows its line, and records that line so that init's config_error() can
 * name it too.  Defaults come from the plugin's descriptor, parsed once by
 * the same rules at load time, so a plugin with a broken default is refused
 * at load, not surprised at run time.
 *
 * libconfuse's callbacks get no argument of ours: the prep being filled is
 * the thread's current one (plugin_prep_use()), and a plugin's defaults are
 * parsed with defaults_for set, as their values have no section.
 *
 * Diagnostics: "file:line: plugin NAME: 'key' is ...", through libconfuse's
 * error function (the configuration's), one per wrong value.
 */
#include "chain/plugin_conf.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/log.h"

static __thread struct plugin_prep *prep_current;
/* Set while a plugin's defaults are parsed: its values have no section. */
static __thread const struct plugin_loaded *defaults_for;

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
int plugin_conf_path(const struct plugin_prep *p, struct plugin_loaded *l)
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

const char *plugin_conf_where(const struct plugin_prep *p, const char *title, const char *key)
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

const struct sg_option *plugin_conf_option(const struct sg_plugin *d, const char *name)
{
    for (const struct sg_option *o = d->options; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

const struct plugin_loaded *plugin_conf_find(const struct plugin_prep *p, const char *title)
{
    for (size_t i = 0; p && title && i < p->nloaded; i++)
        if (strcmp(p->loaded[i].title, title) == 0)
            return &p->loaded[i];
    return NULL;
}

bool plugin_conf_ranged(const struct sg_option *o)
{
    return (o->type == SG_OPT_INT || o->type == SG_OPT_FLOAT) && o->min < o->max;
}

/* A value that passed its type check, within the option's range (if any). */
static bool plugin_in_range(const struct sg_option *o, const char *value)
{
    if (!plugin_conf_ranged(o))
        return true;
    double v = o->type == SG_OPT_INT ? (double)strtoll(value, NULL, 0) : strtod(value, NULL);
    return v >= o->min && v <= o->max;
}

static void plugin_bound_text(const struct sg_option *o, double bound, char *out, size_t n)
{
    if (o->type == SG_OPT_INT && fabs(bound) < 9e18)
        snprintf(out, n, "%lld", (long long)bound);
    else
        snprintf(out, n, "%g", bound);
}

/* "from 0 to 16", "at least 1", "at most 5": what the range asks for. */
static void plugin_range_text(const struct sg_option *o, char *out, size_t n)
{
    char lo[64], hi[64];
    plugin_bound_text(o, o->min, lo, sizeof(lo));
    plugin_bound_text(o, o->max, hi, sizeof(hi));
    if (isinf(o->max))
        snprintf(out, n, "at least %s", lo);
    else if (isinf(o->min))
        snprintf(out, n, "at most %s", hi);
    else
        snprintf(out, n, "from %s to %s", lo, hi);
}

static int plugin_value_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    *(const char **)result = value;
    const struct plugin_loaded *l = defaults_for;
    if (!l)
        l = plugin_conf_find(prep_current, cfg_title(cfg));
    if (!l || !l->desc)
        return 0; /* a section whose plugin did not load: that error is logged already */
    const struct sg_option *o = plugin_conf_option(l->desc, opt->name);
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
    if (!why && !plugin_in_range(o, value)) {
        char range[160];
        plugin_range_text(o, range, sizeof(range));
        cfg_error(cfg, "plugin %s: '%s' is %s; it must be %s", l->title, opt->name, value, range);
        return -1;
    }
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
int plugin_conf_defaults(struct plugin_loaded *l)
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
    opts[k++] = (cfg_opt_t)CFG_FLOAT_CB(strdup("timeout"), PLUGIN_CONF_DEFAULT_TIMEOUT, CFGF_NONE,
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

/* ---- lookups for init ---- */

bool plugin_conf_reserved(const char *name)
{
    return strcmp(name, "path") == 0 || strcmp(name, "timeout") == 0 ||
           strcmp(name, "failure_verdict") == 0;
}

/* Written by the admin (an empty list "{}" included), not only defaulted. */
bool plugin_conf_has(cfg_t *sec, const char *key)
{
    cfg_opt_t *o = sec ? cfg_getopt(sec, key) : NULL;
    return o && ((o->flags & CFGF_MODIFIED) || cfg_opt_size(o) > 0);
}

cfg_t *plugin_conf_source(const struct sg_section *s, const char *key)
{
    if (plugin_conf_has(s->sec, key))
        return s->sec;
    if (s->loaded->defaults && cfg_size(s->loaded->defaults, key) > 0)
        return s->loaded->defaults;
    return NULL;
}
