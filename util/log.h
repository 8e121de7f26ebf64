/*
 * log - one logging path for the daemon: stderr when running in the
 * foreground, syslog otherwise.  Each call writes one whole line, so lines from
 * worker threads never interleave.
 */
#ifndef SMTPGATE_LOG_H
#define SMTPGATE_LOG_H

#include <stdbool.h>
#include <syslog.h>

void log_open(const char *ident, bool to_stderr, int facility);
/* JOURNAL_STREAM's "device:inode" names the file stderr is open on. */
bool log_stderr_is_journal(const char *journal_stream);
void log_set_verbose(bool verbose);
bool log_verbose(void);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)  log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_verbose())                                                                         \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

/*
 * A thread's errors and warnings, handed to fn as they are logged (and
 * logged as always): how a caller that runs a step on its own thread (a
 * reload asked for over the control socket) tells its requester what went
 * wrong, in the words of the log.  fn NULL ends it.  Only the calling
 * thread's lines are seen: workers logging meanwhile are not.
 */
void log_capture(void (*fn)(void *arg, int priority, const char *line), void *arg);

/* Facility name ("mail", "local0"...) to its value; -1 if unknown. */
int log_facility_from_name(const char *name);

#endif
