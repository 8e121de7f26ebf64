/*
 * esmtp - ESMTP parameters of MAIL and RCPT (RFC 1869/5321 4.1.2, 1870 SIZE,
 * 6152 8BITMIME, 3030 BINARYMIME, 6531 SMTPUTF8, 3461 DSN RET/ENVID/NOTIFY/ORCPT,
 * 4954 AUTH=), pure.
 *
 * esmtp_params_split() cuts "KEY[=VALUE] KEY[=VALUE]..." into pairs.
 * esmtp_mail_params() / esmtp_rcpt_params() validate the pairs against what the
 * session advertised (caps) and fill a typed structure.  Values point into the
 * caller's buffer; the command line is forwarded upstream verbatim, so nothing
 * here rebuilds it.
 *
 * Diagnostics: esmtp_status codes, turned into replies by esmtp_status_reply().
 */
#ifndef SMTPGATE_ESMTP_H
#define SMTPGATE_ESMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ESMTP_MAX_PARAMS 16

struct esmtp_param {
    const char *key; /* esmtp-keyword: ALPHA/DIGIT *(ALPHA/DIGIT/"-") */
    size_t key_len;
    const char *value; /* NULL when the parameter has no "=" */
    size_t value_len;
};

enum esmtp_status {
    ESMTP_OK = 0,
    ESMTP_SYNTAX,         /* malformed keyword or value: 501 5.5.4 */
    ESMTP_TOO_MANY,       /* more than ESMTP_MAX_PARAMS: 501 5.5.4 */
    ESMTP_UNKNOWN,        /* keyword not recognised or not advertised: 555 5.5.4 */
    ESMTP_DUPLICATE,      /* same keyword twice: 501 5.5.4 */
    ESMTP_BAD_SIZE,       /* SIZE value not a number: 501 5.5.4 */
    ESMTP_BAD_BODY,       /* BODY value not 7BIT/8BITMIME/BINARYMIME: 501 5.5.4 */
    ESMTP_BAD_XTEXT,      /* ENVID/ORCPT/AUTH value not valid xtext: 501 5.5.4 */
    ESMTP_BAD_RET,        /* RET not FULL/HDRS: 501 5.5.4 */
    ESMTP_BAD_NOTIFY,     /* NOTIFY not NEVER or a list of SUCCESS,FAILURE,DELAY: 501 5.5.4 */
    ESMTP_BAD_ORCPT,      /* ORCPT not addr-type;xtext: 501 5.5.4 */
    ESMTP_SMTPUTF8_VALUE, /* SMTPUTF8 given a value: 501 5.5.4 */
};

/* Capabilities the session advertised; a parameter whose extension was not
 * advertised is refused with ESMTP_UNKNOWN. */
enum esmtp_cap {
    ESMTP_CAP_SIZE = 1u << 0,
    ESMTP_CAP_8BITMIME = 1u << 1,
    ESMTP_CAP_BINARYMIME = 1u << 2,
    ESMTP_CAP_SMTPUTF8 = 1u << 3,
    ESMTP_CAP_DSN = 1u << 4,
    ESMTP_CAP_AUTH = 1u << 5,
    ESMTP_CAP_CHUNKING = 1u << 6,
    ESMTP_CAP_PIPELINING = 1u << 7,
    ESMTP_CAP_ENHANCEDSTATUSCODES = 1u << 8,
    ESMTP_CAP_STARTTLS = 1u << 9,
    ESMTP_CAP_XCLIENT = 1u << 10,
    ESMTP_CAP_XFORWARD = 1u << 11,
};

enum esmtp_body {
    ESMTP_BODY_UNSPEC = 0,
    ESMTP_BODY_7BIT,
    ESMTP_BODY_8BITMIME,
    ESMTP_BODY_BINARYMIME
};
enum esmtp_ret { ESMTP_RET_UNSPEC = 0, ESMTP_RET_FULL, ESMTP_RET_HDRS };

struct esmtp_mail {
    bool has_size;
    uint64_t size; /* saturates at UINT64_MAX for absurd values */
    enum esmtp_body body;
    bool smtputf8;
    enum esmtp_ret ret;
    const char *envid; /* xtext as received, NULL if absent */
    size_t envid_len;
    const char *auth; /* AUTH= value (xtext or "<>"), NULL if absent */
    size_t auth_len;
};

enum esmtp_notify {
    ESMTP_NOTIFY_NEVER = 1u << 0,
    ESMTP_NOTIFY_SUCCESS = 1u << 1,
    ESMTP_NOTIFY_FAILURE = 1u << 2,
    ESMTP_NOTIFY_DELAY = 1u << 3,
};

struct esmtp_rcpt {
    unsigned notify;   /* esmtp_notify bits; 0 if absent */
    const char *orcpt; /* "addr-type;xtext" as received, NULL if absent */
    size_t orcpt_len;
};

/* Split a parameter string into at most max pairs. */
enum esmtp_status esmtp_params_split(const char *s, size_t len, struct esmtp_param *out, size_t max,
                                     size_t *n);

/* Validate MAIL parameters (caps: esmtp_cap bits advertised). */
enum esmtp_status esmtp_mail_params(const char *s, size_t len, unsigned caps,
                                    struct esmtp_mail *out);

/* Validate RCPT parameters. */
enum esmtp_status esmtp_rcpt_params(const char *s, size_t len, unsigned caps,
                                    struct esmtp_rcpt *out);

/* RFC 3461 xtext: "+" followed by two upper-case hex digits, or any printable
 * ASCII 33..126 except "+" and "=". */
bool esmtp_xtext_valid(const char *s, size_t len);

/* Encode bytes as xtext into out (at most out_size-1 chars plus NUL).
 * Returns the encoded length, or (size_t)-1 if it does not fit. */
size_t esmtp_xtext_encode(const char *in, size_t len, char *out, size_t out_size);

const char *esmtp_status_reply(enum esmtp_status st);

#endif
