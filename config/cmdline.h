/*
 * cmdline - what the daemon and the milter front-end share at start: the
 * options -c FILE, -o 'KEY = VALUE'..., -f, -t, -v, -h (and -p PIDFILE for
 * those that take it), loading the configuration, -t, and going to the
 * background.
 *
 * cmdline_parse() fills c from argv, or returns -1 with the exit status to
 * use (usage printed: 2 on a mistake, 0 for -h).  cmdline_open_log() opens
 * the log as the options say; the front-end then assembles its
 * configuration (settings and all that is built from them: a -t must judge
 * the plugins and certificates too), and cmdline_proceed() either reports
 * it good and returns false with exit status 0 (-t), or goes to the
 * background unless -f and returns true (false, status 1, if it cannot).
 * The overrides' text stays in c: the same c is reused on reload.
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
    struct config_load_opts load; /* set by the front-end before loading */
};

int cmdline_parse(int argc, char **argv, const char *prog, bool with_pid_file,
                  void (*usage)(FILE *out), struct cmdline *c, int *exit_status);

void cmdline_open_log(const char *prog, const struct cmdline *c);
bool cmdline_proceed(const char *prog, const struct cmdline *c, int syslog_facility,
                     int *exit_status);

#endif
