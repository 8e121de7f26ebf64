/*
 * json_out - one JSON object built into a fixed buffer, for log lines that
 * log shippers read (the verdict log).
 *
 * Strings are escaped as RFC 8259 requires: quote, backslash and every
 * control octet; an octet sequence that is not valid UTF-8 has each bad
 * octet written as U+FFFD, so any input gives valid JSON.  When the buffer
 * is too small the object is cut at a value boundary and closed, with
 * "truncated":true as its last member: the line stays parseable.
 */
#ifndef SMTPGATE_JSON_OUT_H
#define SMTPGATE_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_out {
    char *buf;
    size_t cap;
    size_t len;
    unsigned depth;  /* open objects and arrays */
    bool need_comma; /* a value precedes in the current container */
    bool truncated;  /* something did not fit and was left out */
    char stack[8];   /* the closers of the open containers */
};

void json_out_init(struct json_out *j, char *buf, size_t cap); /* opens the top object */
void json_out_key(struct json_out *j, const char *key);
void json_out_str(struct json_out *j, const char *s, size_t len);
void json_out_cstr(struct json_out *j, const char *s); /* NULL: null */
void json_out_int(struct json_out *j, int64_t v);
void json_out_num(struct json_out *j, double v);
void json_out_bool(struct json_out *j, bool v);
void json_out_open(struct json_out *j, char kind); /* '{' or '[' */
void json_out_close(struct json_out *j);
/* Closes everything, ends the line with "\n" and a NUL; the line's length. */
size_t json_out_finish(struct json_out *j);

#endif
