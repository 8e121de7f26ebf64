/*
 * log - stderr or syslog, one line per call.
 *
 * On stderr a line carries its own time stamp and name, unless stderr is
 * systemd's journal: then "<N>text" with N = facility | level, as
 * sd-daemon(3) describes, so journalctl and a syslog daemon reading the
 * journal see the mail facility and the right level.
 *
 * The line is formatted into a local buffer first and written with a single
 * write(2)/syslog(3) call: worker threads log concurrently and a line must never
 * be split by another thread's output.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool log_to_stderr = true;
static atomic_bool log_verbose_flag;
static const char *log_ident = "smtpgate";
/* Only stderr lines carry it, and those come from a process that never forks
 * after log_open(): asking the kernel for every line is wasted. */
static pid_t log_pid;
/* stderr is systemd's journal (JOURNAL_STREAM names it): the journal stamps
 * and names each line itself, and reads level and facility from a "<N>"
 * prefix, so that is all a line carries. */
static bool log_to_journal;
static int log_facility = LOG_MAIL;
static __thread void (*log_capture_fn)(void *arg, int priority, const char *line);
static __thread void *log_capture_arg;

void log_capture(void (*fn)(void *arg, int priority, const char *line), void *arg)
{
    log_capture_fn = fn;
    log_capture_arg = arg;
}

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

bool log_stderr_is_journal(const char *journal_stream)
{
    unsigned long long dev, ino;
    char rest;
    struct stat st;
    if (!journal_stream || sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &rest) != 2)
        return false;
    return fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void log_open(const char *ident, bool to_stderr, int facility)
{
    log_ident = ident;
    log_to_stderr = to_stderr;
    log_facility = facility;
    log_pid = getpid();
    log_to_journal = to_stderr && log_stderr_is_journal(getenv("JOURNAL_STREAM"));
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

    if (log_capture_fn && priority <= LOG_WARNING)
        log_capture_fn(log_capture_arg, priority, line);
    if (!log_to_stderr) {
        syslog(priority, "%s%s", log_level_name(priority), line);
        return;
    }

    char out[4200];
    int n;
    if (log_to_journal) {
        n = snprintf(out, sizeof(out), "<%d>%s%s\n", log_facility | priority,
                     log_level_name(priority), line);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s%s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_ident, (int)(log_pid ? log_pid : getpid()),
                     log_level_name(priority), line);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(out)) {
        n = sizeof(out) - 1;
        out[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, out, (size_t)n);
    (void)w;
}
