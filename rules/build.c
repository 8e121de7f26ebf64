/*
 * build - errors of a load and the bookkeeping of a set being built (see
 * build.h).  Every allocation is checked: out of memory is recorded in the
 * build (b->nomem) and in the error list (errs->nomem), never an abort.
 */
#include "rules/build.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

void rules_errors_free(struct rules_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->v[i].file);
        free(errs->v[i].msg);
    }
    free(errs->v);
    *errs = (struct rules_errors){0};
}

char *rules_error_format(const struct rules_error *e)
{
    char *s = NULL;
    if (e->line == 0)
        util_asprintf(&s, "%s: %s", e->file, e->msg);
    else if (e->col == 0)
        util_asprintf(&s, "%s:%u: %s", e->file, e->line, e->msg);
    else
        util_asprintf(&s, "%s:%u:%u: %s", e->file, e->line, e->col, e->msg);
    return s;
}

int rules_errors_add(struct rules_errors *errs, const char *file, unsigned line, unsigned col,
                     const char *msg)
{
    if (errs == NULL)
        return 0;
    char *f = util_strdup(file), *m = util_strdup(msg);
    if (f == NULL || m == NULL || util_grow(&errs->v, &errs->cap, errs->n + 1, sizeof(*errs->v))) {
        free(f);
        free(m);
        errs->nomem = true;
        return -1;
    }
    errs->v[errs->n++] = (struct rules_error){f, line, col, m};
    return 0;
}

void rules_build_error(struct rules_build *b, const char *file, unsigned line, unsigned col,
                       const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->nerrs++;
    if (rules_errors_add(b->errs, file, line, col, msg) != 0)
        b->nomem = true;
}

bool rules_build_nomem(struct rules_build *b)
{
    b->nerrs++;
    b->nomem = true;
    if (b->errs != NULL)
        b->errs->nomem = true;
    return false;
}

const char *rules_build_file(struct rules_build *b, const char *path)
{
    struct rules *r = b->r;
    char *copy = util_strdup(path);
    if (copy == NULL || util_grow(&r->files, &r->files_cap, r->nfiles + 1, sizeof(*r->files))) {
        free(copy);
        rules_build_nomem(b);
        return NULL;
    }
    r->files[r->nfiles] = copy;
    return r->files[r->nfiles++];
}

int rules_build_seen(struct rules_build *b, const char *canon)
{
    for (size_t i = 0; i < b->nseen; i++)
        if (strcmp(b->seen[i], canon) == 0)
            return 1;
    char *copy = util_strdup(canon);
    char **seen = copy ? util_reallocarray(b->seen, b->nseen + 1, sizeof(*b->seen)) : NULL;
    if (seen == NULL) {
        free(copy);
        rules_build_nomem(b);
        return -1;
    }
    b->seen = seen;
    b->seen[b->nseen++] = copy;
    return 0;
}

void rules_build_sa_lacking(struct rules_build *b, const char *name)
{
    char *copy = util_strdup(name);
    char **v = copy ? util_reallocarray(b->sa_lacking, b->nsa_lacking + 1, sizeof(*v)) : NULL;
    if (v == NULL) {
        free(copy);
        rules_build_nomem(b);
        return;
    }
    b->sa_lacking = v;
    b->sa_lacking[b->nsa_lacking++] = copy;
}

void rules_build_sa_pruned(struct rules_build *b, const char *name)
{
    char *copy = util_strdup(name);
    char **v = copy ? util_reallocarray(b->sa_pruned, b->nsa_pruned + 1, sizeof(*v)) : NULL;
    if (v == NULL) {
        free(copy);
        rules_build_nomem(b);
        return;
    }
    b->sa_pruned = v;
    b->sa_pruned[b->nsa_pruned++] = copy;
}
