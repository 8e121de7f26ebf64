/*
 * sa_eval_args - the arguments of a SpamAssassin eval test, eval:NAME(ARGS),
 * read as SpamAssassin's Conf::Parser::pack_eval_args reads them: a pure
 * parser over bytes.
 *
 * What it promises: ARGS is a comma separated list of items, each a quoted
 * string ('...' or "...", the quote closing at the first same quote that is
 * followed by blanks and a comma or the end; nothing inside is unescaped)
 * or a bare word of digits, letters, '.', ':' and '-'; blanks around items
 * and commas are dropped; a trailing comma is allowed; an empty or blank
 * ARGS is no argument.  Anything else is a syntax error, as SpamAssassin's
 * lint says "syntax error for eval function".  The values are copies, NUL
 * terminated (a value holding a NUL octet keeps it; len says how long).
 *
 * What it assumes: nothing of the text; at most SA_EVAL_ARGS_MAX items.
 */
#ifndef SMTPGATE_RULES_SA_EVAL_ARGS_H
#define SMTPGATE_RULES_SA_EVAL_ARGS_H

#include <stddef.h>

#define SA_EVAL_ARGS_MAX 32

struct sa_eval_args {
    char *v[SA_EVAL_ARGS_MAX];
    size_t len[SA_EVAL_ARGS_MAX];
    size_t n;
};

enum sa_eval_args_rc {
    SA_EVAL_ARGS_OK = 0,
    SA_EVAL_ARGS_SYNTAX = 1,   /* not SpamAssassin's argument syntax */
    SA_EVAL_ARGS_TOO_MANY = 2, /* more than SA_EVAL_ARGS_MAX items */
    SA_EVAL_ARGS_NOMEM = -1,
};

/* Parses s[0..n) into out (emptied first; freed on every error). */
enum sa_eval_args_rc sa_eval_args_parse(const char *s, size_t n, struct sa_eval_args *out);
void sa_eval_args_free(struct sa_eval_args *a);

#endif
