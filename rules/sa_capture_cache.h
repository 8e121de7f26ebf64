/*
 * sa_capture_cache - the patterns of SpamAssassin's template rules as the
 * messages' tags filled them in, compiled, kept with the rule set so that a
 * value that comes again (the same recipient, the same sender) costs no
 * compilation.  Shared by every thread that evaluates the set: a mutex
 * guards the table, and each pattern is reference counted, so one that
 * leaves the table while a match runs on it is freed by the last user.
 * Bounded: at most SA_CAPTURE_CACHE_MAX patterns, the least recently used
 * leaving first.  Not installed.
 */
#ifndef SMTPGATE_RULES_SA_CAPTURE_CACHE_H
#define SMTPGATE_RULES_SA_CAPTURE_CACHE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

#define SA_CAPTURE_CACHE_MAX 256

struct sa_capture_cache;
struct sa_capture_code; /* one compiled pattern, counted */

/* NULL when out of memory. */
struct sa_capture_cache *sa_capture_cache_new(void);
void sa_capture_cache_free(struct sa_capture_cache *c);

/* Rule rule's compiled pattern pat[0..len), a reference for the caller,
 * or NULL when not kept. */
struct sa_capture_code *sa_capture_cache_get(struct sa_capture_cache *c, size_t rule,
                                             const char *pat, size_t len);
/* Keeps re (owned from now on) as rule's pattern pat (copied); a reference
 * for the caller, or NULL when out of memory (re is then freed). */
struct sa_capture_code *sa_capture_cache_put(struct sa_capture_cache *c, size_t rule,
                                             const char *pat, size_t len, pcre2_code *re);
const pcre2_code *sa_capture_code_re(const struct sa_capture_code *k);
void sa_capture_code_release(struct sa_capture_code *k);

#endif
