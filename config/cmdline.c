/*
 * cmdline - option parsing and start-up shared by smtpgate and
 * smtpgate-milter.
 *
 * The log goes to stderr while the configuration is read (an admin running
 * the command sees its mistakes), and to syslog with the configured
 * facility once in the background.
 */
#include "config/cmdline.h"

#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "util/log.h"

int cmdline_parse(int argc, char **argv, const char *prog, bool with_pid_file,
                  void (*usage)(FILE *out), struct cmdline *c, int *exit_status)
{
    memset(c, 0, sizeof(*c));
    int opt;
    while ((opt = getopt(argc, argv, with_pid_file ? "c:o:p:ftvh" : "c:o:ftvh")) != -1) {
        switch (opt) {
        case 'c':
            c->config_file = optarg;
            break;
        case 'o':
            if (c->noverrides == CMDLINE_MAX_OVERRIDES) {
                fprintf(stderr, "%s: at most %d -o overrides\n", prog, CMDLINE_MAX_OVERRIDES);
                *exit_status = 2;
                return -1;
            }
            c->overrides[c->noverrides++] = optarg;
            break;
        case 'p':
            c->pid_file = optarg;
            break;
        case 'f':
            c->foreground = true;
            break;
        case 't':
            c->test_only = true;
            break;
        case 'v':
            c->verbose = true;
            break;
        case 'h':
            usage(stdout);
            *exit_status = 0;
            return -1;
        default:
            usage(stderr);
            *exit_status = 2;
            return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        *exit_status = 2;
        return -1;
    }
    if (!c->config_file)
        c->config_file = CMDLINE_DEFAULT_CONFIG;
    return 0;
}

void cmdline_open_log(const char *prog, const struct cmdline *c)
{
    log_open(prog, c->foreground || c->test_only, LOG_MAIL);
    log_set_verbose(c->verbose);
}

bool cmdline_proceed(const char *prog, const struct cmdline *c, int syslog_facility,
                     int *exit_status)
{
    if (c->test_only) {
        printf("%s: configuration OK\n", c->config_file);
        *exit_status = 0;
        return false;
    }
    if (c->foreground) {
        /* Now the configured facility is known: the journal takes it from each line. */
        log_open(prog, true, syslog_facility);
    } else {
        log_open(prog, false, syslog_facility);
        if (daemon(0, 0) < 0) {
            log_err("cannot run in the background: %s", strerror(errno));
            *exit_status = 1;
            return false;
        }
    }
    return true;
}
