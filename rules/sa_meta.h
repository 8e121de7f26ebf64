/*
 * sa_meta - a SpamAssassin meta expression into the engine's meta nodes
 * (rules_int.h), in post order like the native parser's.  The language is
 * the part of Perl's SpamAssassin lets through (Conf::Parser::is_meta_valid):
 * rule names, decimal numbers, ( ) and the operators with Perl's precedence,
 * from the tightest: `!` and unary `-`, `* /`, `+ -`, `< <= > >=`, `== !=`,
 * `&&`, `||`.  `&&` and `||` give an operand's value as Perl does, so a count
 * survives `(A && B) + C`.  `? :`, `^` and rules_matching() are not taken
 * yet: the caller reports the rule as an unsupported construct.  Pure.
 */
#ifndef SMTPGATE_RULES_SA_META_H
#define SMTPGATE_RULES_SA_META_H

#include "rules/rules_int.h"

/* The root node's index in rule->meta, or -1 with *why (a static text), or
 * -2 when out of memory. */
int sa_meta_parse(const char *s, size_t n, struct rule *rule, const char **why);

#endif
