/*
 * meta - the expression of a meta rule: rule names, numbers (decimals too),
 * ! and unary -, * /, + -, the comparisons < <= > >= == !=, && ||, with
 * parentheses, C precedence; values are doubles, a division by zero gives
 * 0; and symbol(NAME), true when a plugin added the symbol NAME.  Not
 * installed.
 *
 * rules_meta_parse(c, rule) reads the expression at the cursor into
 * rule->meta in post order (operands before their operator, so the
 * evaluator needs no recursion) and returns the index of the root node, or
 * -1 after an error reported at the cursor (or out of memory).  Nesting is
 * bounded by META_MAX_DEPTH, length by META_MAX_NODES; names are left as
 * written, for the compiler to resolve.
 */
#ifndef SMTPGATE_RULES_META_H
#define SMTPGATE_RULES_META_H

#include "rules/lex.h"

#define META_MAX_DEPTH 64
#define META_MAX_NODES 4096

int rules_meta_parse(struct cur *c, struct rule *rule);

#endif
