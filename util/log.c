/*
 * log - stderr or syslog, one line per call.
 *
 * The line is formatted into a local buffer first and written with a single
 * write(2)/syslog(3) call: worker threads log concurrently and a line must never
 * be split by another thread's output.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool log_to_stderr = true;
static atomic_bool log_verbose_flag;
static const char *log_ident = "smtpgate";
/* Only stderr lines carry it, and those come from a process that never forks
 * after log_open(): asking the kernel for every line is wasted. */
static pid_t log_pid;

static const struct {
    const char *name;
    int value;
} log_facilities[] = {
    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

int log_facility_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
        if (strcasecmp(name, log_facilities[i].name) == 0)
            return log_facilities[i].value;
    return -1;
}

void log_open(const char *ident, bool to_stderr, int facility)
{
    log_ident = ident;
    log_to_stderr = to_stderr;
    log_pid = getpid();
    if (!to_stderr)
        openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void log_set_verbose(bool verbose)
{
    atomic_store(&log_verbose_flag, verbose);
}

bool log_verbose(void)
{
    return atomic_load_explicit(&log_verbose_flag, memory_order_relaxed);
}

static const char *log_level_name(int priority)
{
    switch (priority) {
    case LOG_ERR:
        return "error: ";
    case LOG_WARNING:
        return "warning: ";
    case LOG_DEBUG:
        return "debug: ";
    default:
        return "";
    }
}

void log_msg(int priority, const char *fmt, ...)
{
    char line[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (!log_to_stderr) {
        syslog(priority, "%s%s", log_level_name(priority), line);
        return;
    }

    char out[4200];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s%s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_ident, (int)(log_pid ? log_pid : getpid()),
                     log_level_name(priority), line);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(out)) {
        n = sizeof(out) - 1;
        out[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, out, (size_t)n);
    (void)w;
}
