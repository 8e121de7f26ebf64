/*
 * smtpgate-ctl - talk to a running smtpgate over its control socket.
 *
 *   smtpgate-ctl [-s SOCKET | -c CONFIG] [--json] [-t SECONDS] [--no-wait] COMMAND [ARG]...
 *
 * The request is the words of the command joined by spaces, checked with the
 * daemon's own parser (codec/control_request.h) before anything is sent, so
 * a mistake is a usage error here and never reaches the daemon.  The socket
 * is -s, else the control_socket of -c CONFIG (default: the installed
 * configuration when it exists), else the built-in default.
 *
 * The answer is one JSON line: --json writes it as it came, otherwise it is
 * written for a person (ctl_text.h).  "drain" then waits for the daemon to
 * close the connection, which it does as it exits (--no-wait: not).
 *
 * Exit status, for scripts:
 *   0  the command did what it was asked
 *   1  the daemon refused it or it failed ("ok": false): a reload refused, a
 *      release the upstream refused, an unknown ID...
 *   2  usage: unknown command, bad argument, bad option
 *   3  no answer: the socket cannot be found or reached, the answer is not
 *      one (timeout, garbage), the configuration cannot be read
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "codec/control_request.h"
#include "config/config.h"
#include "ctl/ctl_text.h"
#include "util/build_info.h"
#include "util/json_in.h"
#include "util/log.h"

#define CTL_OK       0
#define CTL_REFUSED  1
#define CTL_USAGE    2
#define CTL_NO_REACH 3

/* An answer larger than the daemon ever sends (control.c's 64 MiB) is garbage. */
#define CTL_ANSWER_MAX ((size_t)65 << 20)

static void ctl_usage(FILE *out)
{
    fprintf(out,
            "usage: smtpgate-ctl [-s SOCKET | -c CONFIG] [--json] [-t SECONDS] [--no-wait] "
            "COMMAND [ARG]...\n"
            "commands:\n"
            "  status                     version, uptime, generation, sessions, upstreams, "
            "plugins\n"
            "  reload                     re-read the configuration (as SIGHUP); errors if "
            "refused\n"
            "  drain [GRACE]              stop accepting, let sessions finish within GRACE s, "
            "exit\n"
            "  sessions                   the clients connected now\n"
            "  quarantine list            the quarantined messages\n"
            "  quarantine show ID         one of them, with its message\n"
            "  quarantine release ID      deliver it to the upstream, then remove it\n"
            "  quarantine delete ID       remove it\n"
            "options:\n"
            "  -s SOCKET    the control socket\n"
            "  -c CONFIG    read control_socket from this configuration (default " SMTPGATE_CONFIG_FILE
            ")\n"
            "  --json       the daemon's answer as it came (one JSON object)\n"
            "  -t SECONDS   how long to wait for the answer (default 300)\n"
            "  --no-wait    drain: return once the drain has begun\n"
            "exit status: 0 done, 1 refused or failed, 2 usage, 3 daemon not reached\n");
}

/* The socket path: -s, else the configuration's control_socket. */
static int ctl_socket_path(const char *sock, const char *config, char *out, size_t size)
{
    if (sock) {
        snprintf(out, size, "%s", sock);
        return 0;
    }
    const char *file = config ? config : SMTPGATE_CONFIG_FILE;
    if (!config && access(file, R_OK) != 0) {
        /* No installed configuration to ask: the built-in default. */
        snprintf(out, size, "%s", SMTPGATE_RUN_DIR "/smtpgate/control.sock");
        return 0;
    }
    struct config_load_opts opts = {.upstream_optional = true};
    struct sg_config *c = config_load(file, NULL, 0, &opts);
    if (!c) {
        fprintf(stderr, "smtpgate-ctl: %s: cannot read the configuration\n", file);
        return -1;
    }
    int rc = 0;
    if (!c->control_socket[0]) {
        fprintf(stderr, "smtpgate-ctl: %s: control_socket is \"\": the daemon has none\n", file);
        rc = -1;
    } else {
        snprintf(out, size, "%s", c->control_socket);
    }
    config_unref(c);
    return rc;
}

static double ctl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read until a newline (the answer) or, with to_eof, the end; bounded by
 * deadline (<0: none).  0, or -1 with a reason. */
static int ctl_read(int fd, char **buf, size_t *len, double deadline, bool to_eof,
                    const char **why)
{
    size_t cap = *buf ? *len : 0;
    for (;;) {
        if (!to_eof && *len && memchr(*buf, '\n', *len))
            return 0;
        int wait = -1;
        if (deadline >= 0) {
            double left = deadline - ctl_now();
            if (left <= 0) {
                *why = "no answer in time";
                return -1;
            }
            wait = (int)(left * 1000) + 1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, wait);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            *why = strerror(errno);
            return -1;
        }
        if (pr == 0)
            continue;
        if (*len + 65536 > cap) {
            if (cap >= CTL_ANSWER_MAX) {
                *why = "the answer is too long";
                return -1;
            }
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(*buf, ncap);
            if (!nb) {
                *why = "out of memory";
                return -1;
            }
            *buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, *buf + *len, cap - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *why = strerror(errno);
            return -1;
        }
        if (n == 0) {
            if (to_eof)
                return 0;
            *why = "the daemon closed the connection without answering";
            return -1;
        }
        *len += (size_t)n;
    }
}

static int ctl_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "smtpgate-ctl: %s: path too long\n", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "smtpgate-ctl: cannot reach smtpgate at %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int ctl_send(int fd, const char *line, size_t len)
{
    while (len) {
        ssize_t n = send(fd, line, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        line += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *sock = NULL, *config = NULL;
    bool json = false, no_wait = false;
    double timeout = 300;
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"no-wait", no_argument, NULL, 'W'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    /* "+": options only before the command, so that no ID is read as one. */
    while ((opt = getopt_long(argc, argv, "+s:c:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sock = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 't': {
            char *end;
            timeout = strtod(optarg, &end);
            if (*end || timeout <= 0 || timeout > 86400) {
                fprintf(stderr, "smtpgate-ctl: -t takes seconds, from 1 to 86400\n");
                return CTL_USAGE;
            }
            break;
        }
        case 'j':
            json = true;
            break;
        case 'W':
            no_wait = true;
            break;
        case 'h':
            ctl_usage(stdout);
            return CTL_OK;
        case 'V':
            printf("smtpgate-ctl %s\n", SMTPGATE_VERSION);
            return CTL_OK;
        default:
            ctl_usage(stderr);
            return CTL_USAGE;
        }
    }
    if (sock && config) {
        fprintf(stderr, "smtpgate-ctl: -s and -c name the socket twice: give one\n");
        return CTL_USAGE;
    }
    if (optind >= argc) {
        ctl_usage(stderr);
        return CTL_USAGE;
    }
    char line[CONTROL_LINE_MAX + 2];
    size_t len = 0;
    for (int i = optind; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (len + n + 2 > sizeof(line)) {
            fprintf(stderr, "smtpgate-ctl: the command is too long\n");
            return CTL_USAGE;
        }
        if (len)
            line[len++] = ' ';
        memcpy(line + len, argv[i], n);
        len += n;
    }
    struct control_request rq;
    const char *why = control_request_parse(line, len, &rq);
    if (why) {
        fprintf(stderr, "smtpgate-ctl: %s (smtpgate-ctl -h lists the commands)\n", why);
        return CTL_USAGE;
    }
    line[len++] = '\n';

    log_open("smtpgate-ctl", true, LOG_MAIL);
    char path[4096];
    if (ctl_socket_path(sock, config, path, sizeof(path)) < 0)
        return CTL_NO_REACH;
    signal(SIGPIPE, SIG_IGN);
    int fd = ctl_connect(path);
    if (fd < 0)
        return CTL_NO_REACH;
    if (ctl_send(fd, line, len) < 0) {
        fprintf(stderr, "smtpgate-ctl: %s: %s\n", path, strerror(errno));
        close(fd);
        return CTL_NO_REACH;
    }
    char *buf = NULL;
    size_t blen = 0;
    if (ctl_read(fd, &buf, &blen, ctl_now() + timeout, false, &why) < 0) {
        fprintf(stderr, "smtpgate-ctl: %s: %s\n", path, why);
        free(buf);
        close(fd);
        return CTL_NO_REACH;
    }
    size_t answer_len = (size_t)((char *)memchr(buf, '\n', blen) - buf) + 1;
    const char *err;
    size_t err_at;
    struct json_value *answer = json_parse(buf, answer_len, &err, &err_at);
    const struct json_value *ok = json_get(answer, "ok");
    if (!answer || !ok || ok->type != JSON_BOOL) {
        fprintf(stderr, "smtpgate-ctl: %s: not an answer of smtpgate's (%s at octet %zu)\n", path,
                answer ? "no \"ok\"" : err, answer ? (size_t)0 : err_at);
        json_free(answer);
        free(buf);
        close(fd);
        return CTL_NO_REACH;
    }
    if (json)
        fwrite(buf, 1, answer_len, stdout);
    else
        ctl_text_print(ok->boolean ? stdout : stderr, answer);
    int rc = ok->boolean ? CTL_OK : CTL_REFUSED;
    if (rq.cmd == CONTROL_DRAIN && ok->boolean && !no_wait) {
        fflush(stdout);
        /* The daemon closes the connection as it exits. */
        blen = 0;
        if (ctl_read(fd, &buf, &blen, -1, true, &why) < 0) {
            fprintf(stderr, "smtpgate-ctl: %s: %s\n", path, why);
            rc = CTL_NO_REACH;
        } else if (!json) {
            printf("stopped: smtpgate has exited\n");
        }
    }
    json_free(answer);
    free(buf);
    close(fd);
    return rc;
}
