/*
 * json_in - a JSON text (RFC 8259) read into a tree, pure: what
 * smtpgate-ctl makes of the control socket's answers (json_out.h writes them).
 *
 * json_parse() takes exactly len octets holding one value, blanks around it
 * allowed, and returns the tree (json_free()) or NULL with a static reason in
 * *err and the octet offset where reading stopped in *err_at.  Strings are
 * decoded (escapes, \uXXXX with surrogate pairs) into NUL-terminated UTF-8
 * with their length, which counts an escaped U+0000 as one octet; a string
 * whose octets are not valid UTF-8 or that holds a raw control octet is an
 * error, as is nesting deeper than JSON_IN_MAX_DEPTH, a number outside the
 * grammar, or anything after the value.  An object's members keep their
 * order; json_get() finds the first of a name.
 */
#ifndef SMTPGATE_JSON_IN_H
#define SMTPGATE_JSON_IN_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_IN_MAX_DEPTH 64

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
    enum json_type type;
    bool boolean;
    double number;
    char *str; /* JSON_STRING */
    size_t str_len;
    struct json_value *items; /* JSON_ARRAY's elements, JSON_OBJECT's values */
    char **keys;              /* JSON_OBJECT's names, one per item */
    size_t n;
};

struct json_value *json_parse(const char *buf, size_t len, const char **err, size_t *err_at);
void json_free(struct json_value *v);

/* obj's member called key, or NULL (also when obj is not an object). */
const struct json_value *json_get(const struct json_value *obj, const char *key);

#endif
