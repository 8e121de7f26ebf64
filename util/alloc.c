/*
 * alloc - overflow-checked allocation returning NULL on failure, and the
 * test hook that makes it fail (see alloc.h for the policy).
 */
#include "util/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before they fail; negative: never fail. */
static atomic_long alloc_budget = -1;
static atomic_ulong alloc_nfailed;

/* False when the test hook says this allocation fails. */
static bool alloc_allowed(void)
{
    if (atomic_load_explicit(&alloc_budget, memory_order_relaxed) < 0)
        return true;
    long left = atomic_fetch_sub_explicit(&alloc_budget, 1, memory_order_relaxed);
    if (left > 0)
        return true;
    /* keep it at 0, not counting further below */
    atomic_store_explicit(&alloc_budget, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&alloc_nfailed, 1, memory_order_relaxed);
    errno = ENOMEM;
    return false;
}

void util_alloc_fail_after(long n)
{
    atomic_store(&alloc_budget, n < 0 ? -1 : n);
    atomic_store(&alloc_nfailed, 0);
}

unsigned long util_alloc_failed(void)
{
    return atomic_load(&alloc_nfailed);
}

void *util_malloc(size_t n)
{
    return alloc_allowed() ? malloc(n ? n : 1) : NULL;
}

void *util_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        n = size = 1;
    return alloc_allowed() ? calloc(n, size) : NULL;
}

void *util_mallocarray(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return util_malloc(total);
}

void *util_reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_allowed() ? realloc(p, total ? total : 1) : NULL;
}

int util_grow_first(void *pp, size_t *cap, size_t need, size_t size, size_t first)
{
    void **p = pp;
    if (need <= *cap && *p != NULL)
        return 0;
    size_t ncap = *cap ? *cap : first ? first : 1;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    void *q = util_reallocarray(*p, ncap, size);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = ncap;
    return 0;
}

int util_grow(void *pp, size_t *cap, size_t need, size_t size)
{
    return util_grow_first(pp, cap, need, size, 8);
}

char *util_memdup(const void *p, size_t n)
{
    if (n == SIZE_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    char *d = util_malloc(n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

char *util_strdup(const char *s)
{
    return util_memdup(s, strlen(s));
}

char *util_strndup(const char *s, size_t n)
{
    return util_memdup(s, strnlen(s, n));
}

int util_asprintf(char **out, const char *fmt, ...)
{
    *out = NULL;
    if (!alloc_allowed())
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(out, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        *out = NULL;
        errno = ENOMEM;
    }
    return rc;
}

void *util_alloc_hook_malloc(size_t n, void *arg)
{
    (void)arg;
    return util_malloc(n);
}

void util_alloc_hook_free(void *p, void *arg)
{
    (void)arg;
    free(p);
}
