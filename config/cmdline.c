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
#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "util/log.h"
#include "util/privdrop.h"

int cmdline_parse(int argc, char **argv, const char *prog, bool with_pid_file,
                  void (*usage)(FILE *out), struct cmdline *c, int *exit_status)
{
    memset(c, 0, sizeof(*c));
    static const struct option longopts[] = {
        {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, with_pid_file ? "c:o:p:ftvh" : "c:o:ftvh", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'V':
            printf("%s %s\n", prog, SMTPGATE_VERSION);
            *exit_status = 0;
            return -1;
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
    /* In the background the daemon's directory is "/": every reload must
     * still find the file named at start. */
    if (c->config_file[0] != '/') {
        char cwd[PATH_MAX];
        int n = getcwd(cwd, sizeof(cwd))
                    ? snprintf(c->config_path, sizeof(c->config_path), "%s/%s", cwd, c->config_file)
                    : -1;
        if (n < 0 || (size_t)n >= sizeof(c->config_path)) {
            fprintf(stderr, "%s: cannot make %s an absolute path: %s\n", prog, c->config_file,
                    n < 0 ? strerror(errno) : "too long");
            *exit_status = 2;
            return -1;
        }
        c->config_file = c->config_path;
    }
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

/* A folder the daemon writes into: it must be there (quarantine_dir may be
 * made on first use, so its parent will do) and writable by whoever the
 * daemon runs as. */
static int cmdline_check_dir(const char *file, const char *key, const char *dir, bool may_create,
                             const struct privdrop_ids *ids)
{
    const char *why = privdrop_dir_usable(dir, ids);
    if (why && may_create && errno == ENOENT) {
        char parent[4096];
        snprintf(parent, sizeof(parent), "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            if (privdrop_dir_usable(parent, ids) == NULL)
                return 0;
        }
    }
    if (!why)
        return 0;
    log_err("%s: %s \"%s\": %s%s", file, key, dir, why,
            ids ? " (the folder must exist, writable by the configured user)" : "");
    return 1;
}

int cmdline_check_start(const char *prog, const struct cmdline *c, const struct sg_config *cfg,
                        struct privdrop_ids *ids, bool *drop)
{
    int errors = 0;
    bool unknown_user = false;
    *drop = false;
    if (cfg->user[0]) {
        char err[256];
        if (privdrop_lookup(cfg->user, cfg->group, ids, err, sizeof(err)) < 0) {
            log_err("%s: %s", c->config_file, err);
            errors++;
            unknown_user = true;
        } else {
            *drop = geteuid() == 0;
        }
    } else if (cfg->group[0] || cfg->chroot_dir[0]) {
        log_err("%s: 'group' and 'chroot' need 'user'", c->config_file);
        errors++;
    } else if (geteuid() == 0 && !cfg->allow_root && !c->test_only) {
        log_err("%s: refusing to run as root: set user = \"smtpgate\" (the daemon opens its "
                "ports as root, then becomes that user), or allow_root = true",
                c->config_file);
        errors++;
    }
    if (!unknown_user) {
        const struct privdrop_ids *who = *drop ? ids : NULL;
        errors += cmdline_check_dir(c->config_file, "spool_dir", cfg->spool_dir, false, who);
        errors +=
            cmdline_check_dir(c->config_file, "quarantine_dir", cfg->quarantine_dir, true, who);
    }
    if (cfg->pidfile[0] && cfg->pidfile[0] != '/') {
        log_err("%s: pidfile \"%s\" must be an absolute path", c->config_file, cfg->pidfile);
        errors++;
    }
    (void)prog;
    return errors;
}

int cmdline_write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        log_err("%s: cannot write the pid file: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
