/*
 * alloc - overflow-checked allocation that returns NULL on failure.
 *
 * The program's policy on running out of memory, the same in the daemon,
 * the milter front-end, the rules library and the plugins: an allocation
 * that fails is an error like any other.  Nothing aborts or exits on it; the
 * function that saw it frees what it built, returns its error value, and its
 * callers do the same, up to the one that answers for it: a session answers
 * 451 4.3.0 and keeps the connection, a plugin returns its failure verdict
 * (tempfail), a loader refuses the configuration and the running one stays,
 * a command-line tool prints a message and exits non-zero.
 *
 * Every function below returns NULL (or -1) with errno ENOMEM when the
 * allocation fails or when n * size does not fit a size_t.  Memory comes
 * from malloc() and goes back with free().  A zero size allocates one octet,
 * so NULL always means failure.
 *
 *   util_malloc(n)                       malloc
 *   util_calloc(n, size)                 calloc (zeroed)
 *   util_mallocarray(n, size)            malloc of n * size, not zeroed
 *   util_reallocarray(p, n, size)        realloc to n * size; p untouched on failure
 *   util_grow(&p, &cap, need, size)      0 when p holds at least need elements of size
 *                                        (capacity doubled, 8 at first), -1 with p kept
 *   util_grow_first(&p, &cap, need, size, first)   the same, first elements at first
 *   util_strdup(s), util_strndup(s, n)   copies, NUL-terminated (strndup: n octets
 *                                        at most, stopping at a NUL)
 *   util_memdup(p, n)                    n octets copied, and a NUL after them
 *   util_asprintf(&s, fmt, ...)          vasprintf: the length, or -1 and s NULL
 *
 * Testing the policy: util_alloc_fail_after(n) makes the allocations of this
 * file succeed n more times and fail from then on (every thread), until it
 * is called with a negative n.  It is compiled in always, costs one relaxed
 * atomic load per allocation, and is for tests only: a test loops n over a
 * run and checks that each failure comes back as an error, without a crash
 * or a leak.  util_alloc_failed() counts the allocations it made fail.
 * Libraries that allocate on their own (GLib, libevent, OpenSSL) are not
 * covered (GLib aborts on its own); PCRE2 is, where its caller makes a
 * general context with util_alloc_hook_malloc / util_alloc_hook_free.
 */
#ifndef SMTPGATE_UTIL_ALLOC_H
#define SMTPGATE_UTIL_ALLOC_H

#include <stddef.h>

void *util_malloc(size_t n);
void *util_calloc(size_t n, size_t size);
void *util_mallocarray(size_t n, size_t size);
void *util_reallocarray(void *p, size_t n, size_t size);
int util_grow(void *pp, size_t *cap, size_t need, size_t size);
int util_grow_first(void *pp, size_t *cap, size_t need, size_t size, size_t first);
char *util_strdup(const char *s);
char *util_strndup(const char *s, size_t n);
char *util_memdup(const void *p, size_t n);
int util_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* malloc/free with an opaque argument, as PCRE2's general context wants them. */
void *util_alloc_hook_malloc(size_t n, void *arg);
void util_alloc_hook_free(void *p, void *arg);

void util_alloc_fail_after(long n);
unsigned long util_alloc_failed(void);

#endif
