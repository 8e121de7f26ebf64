/*
 * rules_eval_int - one rule against one value, shared by the evaluator and
 * the example checker.  Not installed.
 */
#ifndef SMTPGATE_RULES_EVAL_INT_H
#define SMTPGATE_RULES_EVAL_INT_H

#include "rules/rules_int.h"

/* Matches rule's pattern (or address list, or size given as decimal text)
 * against s[0..len), ignoring negation.  1 match (*ms, *ml: the matched
 * octets, when not NULL), 0 no match, -1 a PCRE2 limit or error. */
int rules_match_one(const struct rules *r, const struct rule *rule, const char *s, size_t len,
                    pcre2_match_data *md, size_t *ms, size_t *ml);

#endif
