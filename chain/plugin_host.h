/*
 * plugin_host - the chain layer's loader API: loads the plugins named by a
 * configuration and builds its filter chain.  Implemented by
 * chain/plugin_conf.c (the prep, the schemas and the values) and
 * chain/loader.c (dlopen, descriptor checks, init); the host function table
 * plugins get is chain/host_api.c's.
 *
 * Configuration is read in two passes (the configuration loader drives them):
 *
 *   1. a lenient parse that only collects each "plugin NAME { path = ... }"
 *      section (plugin_prep_pass1_opts() is that section's schema);
 *      plugin_prep_load() then dlopens every path and checks its descriptor
 *      (symbol SG_PLUGIN_SYMBOL, ABI version, options that do not clash,
 *      ranges that can be enforced, defaults that pass their own checks);
 *   2. the real parse, whose "plugin" section schema is the host's keys
 *      (path, timeout, failure_verdict) and every loaded plugin's options
 *      (plugin_prep_section_opts()); each value is checked while its line is
 *      known: it must be an option of that section's plugin, of its type,
 *      within its declared range, and pass the plugin's own check.
 *
 * plugin_prep_build() then calls each plugin's init (or reload, with the
 * instance of the same name in previous) in chain order and returns the
 * chain, or NULL after logging "file:line: plugin NAME: ..." for every error;
 * the instances made so far are finalised again.  A configuration without
 * plugin sections builds no chain (NULL, no error).
 *
 * Diagnostics: errors are logged and counted in *errors; nothing is fatal to
 * the running daemon, which keeps its chain when a new one fails.
 */
#ifndef SMTPGATE_PLUGIN_HOST_H
#define SMTPGATE_PLUGIN_HOST_H

#include <confuse.h>
#include <stdbool.h>

#include "chain/chain.h"

struct plugin_prep;

struct plugin_prep *plugin_prep_new(void);
void plugin_prep_free(struct plugin_prep *p);

/* Pass 1: the plugin section's schema; its path callback records sections
 * into the prep made current by plugin_prep_use() (this thread). */
cfg_opt_t *plugin_prep_pass1_opts(void);
void plugin_prep_use(struct plugin_prep *p);

/* Where a plugin path without a "/" is looked for (plugin_dir). */
void plugin_prep_set_dir(struct plugin_prep *p, const char *dir);
int plugin_prep_load(struct plugin_prep *p);                /* number of errors */
cfg_opt_t *plugin_prep_section_opts(struct plugin_prep *p); /* owned by p */

/* Refuse to load any shared object (fuzzing the config parser must not
 * dlopen whatever path an input names). */
void plugin_host_disable_loading(bool disable);

struct chain *plugin_prep_build(struct plugin_prep *p, cfg_t *cfg, struct chain *previous,
                                unsigned generation, int *errors);

#endif
