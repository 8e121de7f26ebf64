/*
 * cmdline - what the daemon and the milter front-end share at start: the
 * options -c FILE, -o 'KEY = VALUE'..., -f, -t, -v, -h, --version (and -p
 * PIDFILE for those that take it), loading the configuration, -t, and going to the
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
#include "util/build_info.h"

#define CMDLINE_DEFAULT_CONFIG SMTPGATE_CONFIG_FILE
#define CMDLINE_MAX_OVERRIDES  64

struct cmdline {
    const char *config_file; /* always absolute (config_path when -c was relative) */
    char config_path[4096];
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
struct privdrop_ids;
/* What start needs beyond a valid configuration, for -t too: the user
 * exists (ids filled; *drop true when running as root, so privileges are to
 * be given up), root is not kept without allow_root (not judged under -t:
 * the check may run as root for a config run otherwise), spool_dir and
 * quarantine_dir are usable by the user the daemon will be.  Each problem
 * is logged; returns their number. */
int cmdline_check_start(const char *prog, const struct cmdline *c, const struct sg_config *cfg,
                        struct privdrop_ids *ids, bool *drop);
/* 0, or -1 after logging why. */
int cmdline_write_pidfile(const char *path);

bool cmdline_proceed(const char *prog, const struct cmdline *c, int syslog_facility,
                     int *exit_status);

#endif
