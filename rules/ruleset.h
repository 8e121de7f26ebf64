/*
 * ruleset - a rule set's life: made empty, filled by the parser and the
 * compiler, shared by reference, freed by the last rules_unref (rules.h).
 * Not installed.
 */
#ifndef SMTPGATE_RULES_RULESET_H
#define SMTPGATE_RULES_RULESET_H

#include "rules/rules_int.h"

/* An empty set with one reference; NULL when out of memory. */
struct rules *rules_set_new(void);
/* Frees the set whatever its references (a load that failed). */
void rules_set_free(struct rules *r);
/* Frees a rule's or a threshold's members. */
void rules_rule_free(struct rule *rule);
void rules_threshold_free(struct threshold *t);

#endif
