/*
 * cmdline - what the daemon and the milter front-end share at start: the
 * options -c FILE, -o 'KEY = VALUE'..., -f, -t, -v, -h (and -p PIDFILE for
 * those that take it), loading the configuration, -t, and going to the
 * background.
 *
 * cmdline_parse() fills c from argv, or returns -1 with the exit status to
 * use (usage printed: 2 on a mistake, 0 for -h).  cmdline_start() opens the
 * log, loads the configuration and either returns it (in the background
 * unless -f) or returns NULL with the exit status: 0 after -t reported the
 * file good, 1 on errors (each logged with its file and line).  The loaded
 * configuration keeps the overrides' text: the same c is reused on reload.
 */
#ifndef SMTPGATE_CMDLINE_H
#define SMTPGATE_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

#define CMDLINE_DEFAULT_CONFIG "/usr/local/etc/smtpgate/smtpgate.conf"
#define CMDLINE_MAX_OVERRIDES  64

struct cmdline {
    const char *config_file;
    const char *overrides[CMDLINE_MAX_OVERRIDES];
    size_t noverrides;
    const char *pid_file; /* -p, where allowed */
    bool foreground;
    bool test_only;
    bool verbose;
};

int cmdline_parse(int argc, char **argv, const char *prog, bool with_pid_file,
                  void (*usage)(FILE *out), struct cmdline *c, int *exit_status);

struct sg_config *cmdline_start(const char *prog, const struct cmdline *c, int *exit_status);

#endif
