/*
 * milter_conf - what smtpgate-milter runs with: the settings and the filter
 * chain built from their plugin sections, assembled in one place at start
 * and on SIGHUP, and the one in force.
 *
 * milter_conf_assemble() parses the settings (config_load) and builds the
 * chain (plugin_load_chain (chain/plugin_host.h), the daemon's own step: instances of running's
 * chain are reloaded), and returns the new, immutable, reference-counted
 * pair with generation running's + 1 (or 1); or NULL after every error was
 * logged with its file and line, the running one unchanged.
 *
 * milter_conf_current() hands out a reference to the one in force (any
 * thread: each MTA connection takes one and keeps it to its end, so a reload
 * never changes the chain under a connection); milter_conf_set() replaces it
 * (taking over the caller's reference; NULL drops it at exit).
 */
#ifndef SMTPGATE_MILTER_CONF_H
#define SMTPGATE_MILTER_CONF_H

#include <stdatomic.h>

#include "config/cmdline.h"
#include "config/config.h"

struct chain;

struct milter_conf {
    atomic_uint refs;
    unsigned generation;
    struct sg_config *cfg;
    struct chain *chain; /* NULL without plugin sections */
};

struct milter_conf *milter_conf_assemble(const struct cmdline *cmd,
                                         const struct milter_conf *running);
struct milter_conf *milter_conf_ref(struct milter_conf *mc);
void milter_conf_unref(struct milter_conf *mc);

void milter_conf_set(struct milter_conf *mc);
struct milter_conf *milter_conf_current(void);

#endif
