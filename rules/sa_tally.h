/*
 * sa_tally - counts of what a SpamAssassin load skipped or ignored, by
 * reason ("unknown eval function check_rbl", "plugin ... is not emulated"),
 * each reason once with how often it happened and the first rule it
 * happened to.  The lint report and the daemon's load log print it, so no
 * rule of SpamAssassin's files goes missing without a word.  Not installed.
 *
 * Out of memory: sa_tally_add returns -1 and sets t->nomem; what was counted
 * before stays.
 */
#ifndef SMTPGATE_RULES_SA_TALLY_H
#define SMTPGATE_RULES_SA_TALLY_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/rules.h"

struct sa_tally {
    struct rules_sa_count *v;
    size_t n;
    size_t cap;
    bool nomem;
};

/* Counts one more of what (first: recorded when what is new, may be NULL). */
int sa_tally_add(struct sa_tally *t, const char *what, const char *first);
/* The total of all counts. */
size_t sa_tally_total(const struct sa_tally *t);
/* Sorts by count, highest first, then by name: the report's order. */
void sa_tally_sort(struct sa_tally *t);
void sa_tally_free(struct sa_tally *t);

#endif
