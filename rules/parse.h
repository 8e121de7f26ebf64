/*
 * parse - the rule file parser: one file's text to rules and thresholds in
 * a struct rules_build (see parse.c for the language).  Not installed.
 */
#ifndef SMTPGATE_RULES_PARSE_H
#define SMTPGATE_RULES_PARSE_H

#include "rules/rules_int.h"

/* Parses one file's text into b.  Includes are resolved relative to file
 * through b->read_file (NULL: include is an error). */
void rules_parse(struct rules_build *b, const char *file, const char *data, size_t len);

#endif
