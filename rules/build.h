/*
 * build - the error list of a load and the bookkeeping of a set being built
 * (its file names, the files read), shared by the parser and the compiler.
 * Not installed.
 *
 * rules_build_error() records one error at file:line:col and counts it;
 * rules_build_nomem() records that an allocation failed (counted as an
 * error: the load fails, and the list says "out of memory").  Neither can
 * fail: when the error itself cannot be stored the count and the nomem flag
 * still say the load failed.
 */
#ifndef SMTPGATE_RULES_BUILD_H
#define SMTPGATE_RULES_BUILD_H

#include "rules/rules_int.h"

/* Appends a copy of (file, line, col, msg); -1 and errs->nomem when out of
 * memory.  errs may be NULL (0, nothing kept). */
int rules_errors_add(struct rules_errors *errs, const char *file, unsigned line, unsigned col,
                     const char *msg);

void rules_build_error(struct rules_build *b, const char *file, unsigned line, unsigned col,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Always false, so that a caller can `return rules_build_nomem(b);`. */
bool rules_build_nomem(struct rules_build *b);
/* Interns a file name in the set; the pointer lives as long as the set.
 * NULL when out of memory (recorded). */
const char *rules_build_file(struct rules_build *b, const char *path);
/* Remembers the name of a SpamAssassin rule that is not loaded (a copy), so
 * that a native meta using it is told why (out of memory: recorded). */
void rules_build_sa_pruned(struct rules_build *b, const char *name);
/* name is a SpamAssassin rule whose eval function smtpgate lacks */
void rules_build_sa_lacking(struct rules_build *b, const char *name);
/* 0 when canon is new (remembered), 1 when it was read already, -1 when out
 * of memory (recorded). */
int rules_build_seen(struct rules_build *b, const char *canon);

#endif
