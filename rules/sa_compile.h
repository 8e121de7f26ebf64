/*
 * sa_compile - SpamAssassin's rules (a finished struct sa_conf) as rules of
 * the engine, beside the native ones in the same build.  Each rule is either
 * added or counted in skipped under the reason it cannot run here: disabled
 * by a score of 0 in the score set in use, a network or Bayes test with
 * those off, an eval function smtpgate does not implement (by name), a
 * construct the engine does not have (modifiers such as :host, or on the
 * relay pseudo-headers, regex modifiers other than
 * imsx, ? : in metas), a pattern grown too large by its templates.  What
 * PCRE2 refuses, a native rule of the same name, and metas left with no
 * rule to use are found by the compiler (compile.c), which counts them the
 * same way.  Not installed.
 */
#ifndef SMTPGATE_RULES_SA_COMPILE_H
#define SMTPGATE_RULES_SA_COMPILE_H

#include "rules/rules_int.h"
#include "rules/sa_cf.h"

/* Cap on a `tflags multiple` rule's count without maxhits=N. */
#define SA_MULTIPLE_CAP 10000

/* Adds c's rules to b (b->sa_skipped counts what is skipped, c->evals the
 * eval functions named); the number of rules c defines in *defined. */
void sa_compile(struct rules_build *b, struct sa_conf *c, size_t *defined);

#endif
