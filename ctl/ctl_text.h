/*
 * ctl_text - a control socket answer (daemon/control.h) as text for a
 * person, from its JSON tree (util/json_in.h).
 *
 * ctl_text_print() writes every member but "ok" and "command", one per line,
 * "key: value"; objects and arrays of objects indented below their key, a
 * short array of plain values on one line, joined by ", " (a long one, such
 * as a refused reload's errors, a line per value); null as "-", booleans as
 * yes/no.  A failed answer's "error" comes first, as "error: ...".  A
 * "message" member (quarantine show) is written last, after a blank line, as
 * the message's own text with CRLF shown as LF.
 */
#ifndef SMTPGATE_CTL_TEXT_H
#define SMTPGATE_CTL_TEXT_H

#include <stdio.h>

#include "util/json_in.h"

void ctl_text_print(FILE *out, const struct json_value *answer);

#endif
