/*
 * plugin_conf - the plugin sections of a configuration, as chain/ shares
 * them: each section's plugin as one build loads it, the checks every value
 * passes (with the line it was written on), and the lookups init's host
 * functions make.  Nothing outside chain/ includes this.
 *
 *   plugin_conf_path()      "x.so" becomes plugin_dir/x.so (malloc'd)
 *   plugin_conf_defaults()  parse a descriptor's defaults by the rules of
 *                           its values (type, range, check): 0 or -1, logged
 *   plugin_conf_check()     every value of a loaded section: errors logged
 *                           with their lines and counted
 *   plugin_conf_reserved()  path, timeout, failure_verdict: the host's keys
 *   plugin_conf_ranged()    does an option carry a range the host enforces
 *   plugin_conf_option()    a descriptor's option of that name, or NULL
 *   plugin_conf_value()     the value init reads for a key: the admin's
 *                           (an empty list "{}" included), else the default
 *   plugin_conf_has()       the admin wrote the key (not only its default)
 *   plugin_conf_where()     where the admin wrote key (NULL: the section's
 *                           path), as source and line
 */
#ifndef SMTPGATE_CHAIN_PLUGIN_CONF_H
#define SMTPGATE_CHAIN_PLUGIN_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/plugin_section.h"
#include "smtpgate/plugin.h"

/* The timeout of an instance that sets none, in seconds. */
#define PLUGIN_CONF_DEFAULT_TIMEOUT 30

/* One section's plugin, loaded for one build. */
struct plugin_loaded {
    const struct plugin_section *sec; /* the admin's (the configuration's) */
    char *path;                       /* resolved against plugin_dir */
    const char *source;               /* where path was written (the section without one) */
    int line;
    void *dl;
    const struct sg_plugin *desc;   /* NULL until its descriptor passed the checks */
    struct plugin_section defaults; /* the descriptor's, parsed */
};

/* What init's host functions get as const struct sg_section *. */
struct sg_section {
    const struct plugin_loaded *loaded;
    unsigned *skipped;   /* the instance's stages set_stages() left out */
    unsigned timeout_ms; /* the instance's verdict timeout */
};

char *plugin_conf_path(const char *dir, const char *path);
int plugin_conf_defaults(struct plugin_loaded *l);
int plugin_conf_check(const struct plugin_loaded *l, const struct plugin_loaded *all, size_t nall);
bool plugin_conf_reserved(const char *name);
bool plugin_conf_ranged(const struct sg_option *o);
const struct sg_option *plugin_conf_option(const struct sg_plugin *d, const char *name);
const struct plugin_value *plugin_conf_value(const struct sg_section *s, const char *key);
bool plugin_conf_has(const struct sg_section *s, const char *key);
void plugin_conf_where(const struct plugin_loaded *l, const char *key, const char **source,
                       int *line);

#endif
