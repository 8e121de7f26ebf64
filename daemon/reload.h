/*
 * reload - the one place a configuration becomes a runtime, at start and on
 * every SIGHUP.
 *
 * reload_assemble() takes the steps in order, each on the result of the one
 * before:
 *
 *   1. parse the settings (config_load: the file and the -o overrides);
 *   2. load the plugins their sections name and build the chain
 *      (plugin_load_chain, chain/plugin_host.h; instances of running's chain with the same name
 *      and plugin are reloaded rather than initialised);
 *   3. build the TLS contexts of the listeners and upstreams (daemon/tls.c)
 *      from the paths and policies of the settings;
 *   4. attach every upstream to its health record (upstream_pool.c), which
 *      outlives reloads.
 *
 * It returns the new runtime (generation: running's + 1, or 1), for the
 * caller to put in force with runtime_set(); or NULL after logging every
 * error as "file:line: reason" (the settings, the plugin, the TLS file), in
 * which case nothing of the running one has changed.
 *
 * reload_run() is SIGHUP's whole work: assemble on top of the runtime in
 * force, and swap it in, or log that the running generation stays.
 */
#ifndef SMTPGATE_RELOAD_H
#define SMTPGATE_RELOAD_H

#include <stddef.h>

#include "config/cmdline.h"
#include "daemon/runtime.h"

struct sg_runtime *reload_assemble(const struct cmdline *cmd, const struct sg_runtime *running);

/* true when the new runtime is in force. */
bool reload_run(const struct cmdline *cmd);

/* reload_run()'s second half, for a caller that assembled rt itself on top
 * of old (the control socket's reload, which keeps the assembly's errors):
 * counts and logs the result, names the settings that need a restart, puts
 * rt in force when it is not NULL.  Takes over both references. */
bool reload_commit(struct sg_runtime *old, struct sg_runtime *rt);

#endif
