/*
 * config_value - the libconfuse parse callbacks' shared work, for config.c and
 * listener.c alike.
 *
 * Values are checked by parse callbacks, which run while the value's own line
 * is current (validation callbacks run after the lexer has read ahead, past
 * comments, and would name the wrong line).  Each helper reports through
 * cfg_error(), so the message carries the file and line, and returns -1; on
 * success it stores the value into result as libconfuse expects and returns
 * 0.
 *
 * config_value_int() takes a whole number within [min, max] into *(long *)
 * result.  config_value_choice() takes one of the NULL-terminated choices and
 * hands the string back.  config_value_pass() hands a checked string back.
 * config_value_where() is "file:line" of what libconfuse reads now: the file
 * is the section's filename, which config.c sets to the name of the text it
 * parses ("-o #2" for an override), so it needs no other state.
 */
#ifndef SMTPGATE_CONFIG_VALUE_H
#define SMTPGATE_CONFIG_VALUE_H

#include <confuse.h>
#include <stddef.h>

int config_value_int(cfg_t *cfg, const char *name, const char *value, long min, long max,
                     void *result);
int config_value_choice(cfg_t *cfg, const char *name, const char *value, const char *const *choices,
                        void *result);
int config_value_pass(const char *value, void *result);

/* The name errors carry for cfg: its file, or "(config)". */
const char *config_value_source(const cfg_t *cfg);

#endif
