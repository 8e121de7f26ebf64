/*
 * spf_explain - RFC 7208 6.2 explanation strings: expansion and sanitising, pure.
 *
 * spf_explain_expand(txt, len, ctx, &out) expands the TXT string an exp=
 * modifier pointed at as an explain-string (c, r, t macros and spaces
 * allowed).  A syntax error, or an expansion past SPF_EXPLAIN_MAX_EXPAND,
 * returns -1: the caller proceeds as if there were no exp= (6.2).  The text
 * comes from the sender's DNS and goes into an SMTP reply, so every octet
 * outside visible ASCII and SP becomes '?', and it is cut at
 * SPF_EXPLAIN_MAX octets.  *out is allocated (free()).
 */
#ifndef SMTPGATE_SPF_EXPLAIN_H
#define SMTPGATE_SPF_EXPLAIN_H

#include <stddef.h>

#include "spf_macro.h"

#define SPF_EXPLAIN_MAX        400
#define SPF_EXPLAIN_MAX_EXPAND 8192

int spf_explain_expand(const char *txt, size_t len, const struct spf_macro_ctx *ctx, char **out);

#endif
