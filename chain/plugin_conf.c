/*
 * plugin_conf - the values of the plugin sections: typed, range-checked and
 * passed through the plugin's own check against the options its descriptor
 * declares, each error naming the line the value was written on
 * (chain/plugin_conf.h).
 *
 * A section's values are strings (or lists of strings) as config/ read them.
 * Defaults come from the plugin's descriptor, parsed by the same syntax
 * (plugin_section_parse_body()) and the same checks at load time, so a
 * plugin with a broken default is refused at load, not surprised at run time.
 *
 * Diagnostics: "file:line: plugin NAME: 'key' is ...", one per wrong value;
 * "plugin PATH: bad built-in default: ..." for a descriptor's.
 */
#include "chain/plugin_conf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

char *plugin_conf_path(const char *dir, const char *path)
{
    /* "rules.so" means plugin_dir/rules.so; a path with a "/" is taken as it is. */
    if (strchr(path, '/') || !dir || !*dir)
        return strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *full = malloc(n);
    if (full)
        snprintf(full, n, "%s/%s", dir, path);
    return full;
}

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

bool plugin_conf_reserved(const char *name)
{
    return strcmp(name, "path") == 0 || strcmp(name, "timeout") == 0 ||
           strcmp(name, "failure_verdict") == 0;
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

/* One value of section title against option o: NULL, or the reason in msg. */
static const char *plugin_check_value(const char *title, const struct sg_option *o,
                                      const struct plugin_value *v, char *msg, size_t size)
{
    if (v->list && o->type != SG_OPT_LIST) {
        snprintf(msg, size, "unexpected token '{': plugin %s: '%s' is not a list", title, v->key);
        return msg;
    }
    for (size_t i = 0; i < v->nitems; i++) {
        const char *value = v->items[i];
        const char *why = plugin_check_type(o->type, value);
        if (!why && !plugin_in_range(o, value)) {
            char range[160];
            plugin_range_text(o, range, sizeof(range));
            snprintf(msg, size, "plugin %s: '%s' is %s; it must be %s", title, v->key, value,
                     range);
            return msg;
        }
        if (!why && o->check)
            why = o->check(value);
        if (why) {
            snprintf(msg, size, "plugin %s: '%s' is \"%s\": %s", title, v->key, value, why);
            return msg;
        }
    }
    return NULL;
}

/* The host's own keys: timeout and failure_verdict (path is the loader's). */
static const char *plugin_check_host_value(const char *title, const struct plugin_value *v,
                                           char *msg, size_t size)
{
    if (strcmp(v->key, "path") == 0)
        return NULL;
    if (v->list || v->nitems != 1) {
        snprintf(msg, size, "unexpected token '{': plugin %s: '%s' is not a list", title, v->key);
        return msg;
    }
    const char *value = v->items[0];
    if (strcmp(v->key, "timeout") == 0) {
        char *end;
        errno = 0;
        double t = strtod(value, &end);
        if (*value == '\0' || *end != '\0' || errno || !(t > 0) || t > 3600) {
            snprintf(msg, size, "plugin %s: '%s' is \"%s\"; it must be from 0.001 to 3600 seconds",
                     title, v->key, value);
            return msg;
        }
        return NULL;
    }
    static const char *const allowed[] = {"tempfail", "continue", "accept", "reject", NULL};
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(value, allowed[i]) == 0)
            return NULL;
    snprintf(msg, size,
             "plugin %s: '%s' is \"%s\"; expected one of: tempfail, continue, accept, reject",
             title, v->key, value);
    return msg;
}

int plugin_conf_check(const struct plugin_loaded *l, const struct plugin_loaded *all, size_t nall)
{
    int errors = 0;
    const struct plugin_section *sec = l->sec;
    for (size_t i = 0; i < sec->nvalues; i++) {
        const struct plugin_value *v = &sec->values[i];
        char msg[1024];
        const char *why;
        const struct sg_option *o = plugin_conf_option(l->desc, v->key);
        if (plugin_conf_reserved(v->key)) {
            why = plugin_check_host_value(sec->name, v, msg, sizeof(msg));
        } else if (!o) {
            /* Known to another plugin of the chain, or to none. */
            bool elsewhere = false;
            for (size_t k = 0; k < nall && !elsewhere; k++)
                elsewhere = all[k].desc && plugin_conf_option(all[k].desc, v->key);
            if (elsewhere)
                snprintf(msg, sizeof(msg), "plugin %s (%s) has no option '%s'", sec->name,
                         l->desc->name, v->key);
            else
                snprintf(msg, sizeof(msg), "plugin %s (%s): no such option '%s'", sec->name,
                         l->desc->name, v->key);
            why = msg;
        } else {
            why = plugin_check_value(sec->name, o, v, msg, sizeof(msg));
        }
        if (why) {
            log_err("%s:%d: %s", sec->source, v->line, why);
            errors++;
        }
    }
    return errors;
}

int plugin_conf_defaults(struct plugin_loaded *l)
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
        const struct sg_option *o = plugin_conf_option(l->desc, v->key);
        char msg[1024];
        const char *why =
            o ? plugin_check_value(l->sec->name, o, v, msg, sizeof(msg)) : "not an option";
        if (why) {
            log_err("plugin %s: bad built-in default: %s", l->path, why);
            return -1;
        }
    }
    return 0;
}

const struct plugin_value *plugin_conf_value(const struct sg_section *s, const char *key)
{
    const struct plugin_value *v = plugin_section_get(s->loaded->sec, key);
    if (v)
        return v;
    v = plugin_section_get(&s->loaded->defaults, key);
    return v && v->nitems > 0 ? v : NULL;
}

bool plugin_conf_has(const struct sg_section *s, const char *key)
{
    return plugin_section_get(s->loaded->sec, key) != NULL;
}

void plugin_conf_where(const struct plugin_loaded *l, const char *key, const char **source,
                       int *line)
{
    const struct plugin_value *v = key ? plugin_section_get(l->sec, key) : NULL;
    *source = v ? l->sec->source : l->source;
    *line = v ? v->line : l->line;
}
