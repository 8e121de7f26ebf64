/*
 * plugin_conf - the plugin sections of a configuration, as chain/ shares
 * them: the prep that one load of a configuration fills (the sections and
 * their plugins, where every value was written), the checks a value passes
 * while its line is known, and the lookups init's host functions make.
 * The public side (plugin_prep_new, _free, _use, _set_dir, _pass1_opts,
 * _section_opts) is declared in chain/plugin_host.h.  Nothing outside
 * chain/ includes this.
 *
 *   plugin_conf_path()      "x.so" becomes plugin_dir/x.so
 *   plugin_conf_defaults()  parse a descriptor's defaults by the rules of
 *                           its values (type, range, check): 0 or -1, logged
 *   plugin_conf_reserved()  path, timeout, failure_verdict: the host's keys
 *   plugin_conf_ranged()    does an option carry a range the host enforces
 *   plugin_conf_option()    a descriptor's option of that name, or NULL
 *   plugin_conf_find()      the loaded plugin of a section title, or NULL
 *   plugin_conf_where()     "file:line" of a section's key (NULL: of the
 *                           section), "(config)" when not known
 *   plugin_conf_has()       the admin wrote the key (not only its default)
 *   plugin_conf_source()    the cfg_t holding a key's value for a section:
 *                           the admin's section, or the plugin's defaults
 */
#ifndef SMTPGATE_CHAIN_PLUGIN_CONF_H
#define SMTPGATE_CHAIN_PLUGIN_CONF_H

#include <confuse.h>
#include <stdbool.h>

#include "chain/plugin_host.h"
#include "smtpgate/plugin.h"

/* The timeout of an instance that sets none, in seconds. */
#define PLUGIN_CONF_DEFAULT_TIMEOUT 30

/* A plugin section found by pass 1, and what loading it found. */
struct plugin_loaded {
    char *title;
    char *path;
    char where[320];
    void *dl;
    const struct sg_plugin *desc; /* NULL until its descriptor passed the checks */
    cfg_t *defaults;
};

/* Where a value was written: "file:line". */
struct plugin_where {
    char *title;
    char *key; /* NULL: the section itself */
    char where[320];
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

/* What init's host functions get as const struct sg_section *. */
struct sg_section {
    struct plugin_prep *prep;
    const struct plugin_loaded *loaded;
    cfg_t *sec;
};

int plugin_conf_path(const struct plugin_prep *p, struct plugin_loaded *l);
int plugin_conf_defaults(struct plugin_loaded *l);
bool plugin_conf_reserved(const char *name);
bool plugin_conf_ranged(const struct sg_option *o);
const struct sg_option *plugin_conf_option(const struct sg_plugin *d, const char *name);
const struct plugin_loaded *plugin_conf_find(const struct plugin_prep *p, const char *title);
const char *plugin_conf_where(const struct plugin_prep *p, const char *title, const char *key);
bool plugin_conf_has(cfg_t *sec, const char *key);
cfg_t *plugin_conf_source(const struct sg_section *s, const char *key);

#endif
