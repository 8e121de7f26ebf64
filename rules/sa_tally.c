/*
 * sa_tally - counts by reason (see sa_tally.h).  A linear search per add:
 * the number of distinct reasons of a load is small (tens to a few
 * hundred) while the adds are a few thousand, so this stays far below the
 * cost of compiling the patterns.
 */
#include "rules/sa_tally.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

int sa_tally_add(struct sa_tally *t, const char *what, const char *first)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].what, what) == 0) {
            t->v[i].count++;
            return 0;
        }
    char *w = util_strdup(what), *f = first ? util_strdup(first) : NULL;
    if (w == NULL || (first != NULL && f == NULL) ||
        util_grow(&t->v, &t->cap, t->n + 1, sizeof(*t->v)) != 0) {
        free(w);
        free(f);
        t->nomem = true;
        return -1;
    }
    t->v[t->n++] = (struct rules_sa_count){w, 1, f};
    return 0;
}

size_t sa_tally_total(const struct sa_tally *t)
{
    size_t s = 0;
    for (size_t i = 0; i < t->n; i++)
        s += t->v[i].count;
    return s;
}

static int cmp_items(const void *a, const void *b)
{
    const struct rules_sa_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->what, y->what);
}

void sa_tally_sort(struct sa_tally *t)
{
    if (t->n > 1)
        qsort(t->v, t->n, sizeof(*t->v), cmp_items);
}

void sa_tally_free(struct sa_tally *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].what);
        free(t->v[i].first);
    }
    free(t->v);
    *t = (struct sa_tally){0};
}
