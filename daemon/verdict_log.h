#ifndef SMTPGATE_VERDICT_LOG_H
#define SMTPGATE_VERDICT_LOG_H

struct session;

/* The transaction's JSON line, when the runtime has a verdict log. */
void verdict_log_write(const struct session *s, const char *result, int code, const char *text,
                       const char *queued_as, double duration);

#endif
