/*
 * plugin_host - the chain layer's loader API: the filter chain a
 * configuration names, its plugin sections (plain data from config/, see
 * config/plugin_section.h) loaded, checked and initialised.  Both front-ends
 * assemble their chain with it: the daemon at start and on SIGHUP
 * (daemon/reload.c), smtpgate-milter likewise (milter/milter_conf.c).
 * Implemented by chain/loader.c (dlopen, descriptor checks, init) and
 * chain/plugin_conf.c (the values, their checks and lines); the host
 * function table plugins get is chain/host_api.c's.
 *
 * plugin_load_chain() dlopens the shared object of every section (a path
 * without "/" is looked for in plugin_dir), checks its descriptor (symbol
 * SG_PLUGIN_SYMBOL, ABI version, usable options, ranges that can be
 * enforced, defaults that pass their own checks), checks every value of the
 * section against the plugin's declared options (known, of its type, a list
 * only where a list is wanted, within its range, and passing the plugin's own
 * check) and the host's keys (path, timeout, failure_verdict), and then calls
 * each plugin's init (or reload, with the instance of the same name in
 * previous) in section order.  It returns the chain; or NULL without plugin
 * sections (*errors untouched); or NULL after logging every error as
 * "file:line: plugin NAME: ..." with the line the value was written on, and
 * counting them in *errors.  The instances made so far are finalised again.
 *
 * Nothing is fatal to the running daemon, which keeps its chain when a new
 * one fails.
 */
#ifndef SMTPGATE_PLUGIN_HOST_H
#define SMTPGATE_PLUGIN_HOST_H

#include "chain/chain.h"
#include "config/config.h"

struct chain *plugin_load_chain(const struct sg_config *c, const struct chain *previous,
                                unsigned generation, int *errors);

#endif
