/*
 * match - one rule against one value, shared by the evaluator and the
 * example checker.  Not installed.
 */
#ifndef SMTPGATE_RULES_MATCH_H
#define SMTPGATE_RULES_MATCH_H

#include "rules/rules_int.h"

/* What a match gave besides hit or miss. */
#define RULES_MATCH_LIMIT (-1) /* a PCRE2 limit or error: a miss, and an event */
#define RULES_MATCH_NOMEM (-2) /* PCRE2 had no memory: the evaluation fails */

/* Matches rule's pattern (or address list, or size given as decimal text)
 * against s[0..len), ignoring negation.  1 match (*ms, *ml: the matched
 * octets, when not NULL), 0 no match, or RULES_MATCH_LIMIT or
 * RULES_MATCH_NOMEM. */
int rules_match_one(const struct rules *r, const struct rule *rule, const char *s, size_t len,
                    pcre2_match_data *md, size_t *ms, size_t *ml);
bool rules_size_cmp(enum size_op op, uint64_t have, uint64_t want);

#endif
