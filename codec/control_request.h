/*
 * control_request - one request line of the control socket (daemon/control.h),
 * parsed, pure.
 *
 *   status
 *   reload
 *   drain [GRACE]                      GRACE: whole seconds, 0 to 86400
 *   sessions
 *   quarantine list
 *   quarantine show|release|delete ID
 *
 * Words are separated by spaces or tabs; the line may end with LF or CRLF and
 * holds nothing else of 0x00-0x1f or 0x7f.  Command words are matched without
 * regard to case.  An ID is what quarantine_write() names a file with (the
 * transaction's id): 1 to CONTROL_ID_MAX octets of letters, digits, '.', '_'
 * and '-', starting with a letter or digit and never holding "..", so that
 * "dir/ID.eml" always names a file inside the quarantine folder.
 *
 * control_request_parse() fills out and returns NULL, or returns a static
 * reason for the requester ("unknown command", ...).  It reads exactly len
 * octets; the line need not be NUL-terminated.
 */
#ifndef SMTPGATE_CONTROL_REQUEST_H
#define SMTPGATE_CONTROL_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

/* A request is one short line: anything longer is refused unread. */
#define CONTROL_LINE_MAX  512
#define CONTROL_ID_MAX    128
#define CONTROL_GRACE_MAX 86400

enum control_cmd {
    CONTROL_STATUS,
    CONTROL_RELOAD,
    CONTROL_DRAIN,
    CONTROL_SESSIONS,
    CONTROL_QUARANTINE_LIST,
    CONTROL_QUARANTINE_SHOW,
    CONTROL_QUARANTINE_RELEASE,
    CONTROL_QUARANTINE_DELETE,
};

struct control_request {
    enum control_cmd cmd;
    bool has_grace; /* drain: a GRACE was given */
    unsigned grace;
    char id[CONTROL_ID_MAX + 1]; /* quarantine show|release|delete, NUL-terminated */
};

const char *control_request_parse(const char *line, size_t len, struct control_request *out);

/* Is id[0..len) a quarantine ID as described above? */
bool control_id_valid(const char *id, size_t len);

/* "status", "quarantine release", ... */
const char *control_cmd_name(enum control_cmd cmd);

#endif
