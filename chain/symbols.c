/*
 * symbols - a connection's or a transaction's symbols (see symbols.h).
 * A linear list: a session carries a handful of symbols, at most
 * SYMBOLS_MAX, so a search costs less than a hash would.
 */
#include "chain/symbols.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

bool symbol_name_ok(const char *name)
{
    /* the rule language's names, so that symbol(NAME) can name any symbol */
    if (!name || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
        return false;
    for (size_t i = 0; name[i]; i++)
        if (i >= SYMBOL_NAME_MAX || !(isalnum((unsigned char)name[i]) || name[i] == '_'))
            return false;
    return true;
}

struct sg_symbol *symbols_find(const struct chain_symbols *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

/* A detail is one short line: it lands on the log line. */
static char *detail_copy(const char *detail)
{
    if (!detail)
        return NULL;
    size_t n = strnlen(detail, SYMBOL_DETAIL_MAX);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = ((unsigned char)detail[i] < 32 || detail[i] == '"' || detail[i] == 127) ? '?'
                                                                                       : detail[i];
    d[n] = '\0';
    return d;
}

int symbols_set(struct chain_symbols *s, const char *name, double score, const char *detail,
                const char *plugin, enum sg_symbol_scope scope)
{
    if (!symbol_name_ok(name) || !isfinite(score))
        return -1;
    char *d = detail_copy(detail);
    if (detail && !d)
        return -1;
    struct sg_symbol *e = symbols_find(s, name);
    if (e) {
        free((char *)e->detail);
        e->detail = d;
        e->score = score;
        e->plugin = plugin;
        return 0;
    }
    char *nm = util_strdup(name);
    if (!nm || util_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0) {
        free(nm);
        free(d);
        return -1;
    }
    s->v[s->n++] = (struct sg_symbol){
        .name = nm, .score = score, .detail = d, .plugin = plugin, .scope = scope};
    return 0;
}

void symbols_remove(struct chain_symbols *s, const char *name)
{
    struct sg_symbol *e = symbols_find(s, name);
    if (!e)
        return;
    free((char *)e->name);
    free((char *)e->detail);
    size_t i = (size_t)(e - s->v);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
    s->n--;
}

void symbols_clear(struct chain_symbols *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->v[i].name);
        free((char *)s->v[i].detail);
    }
    free(s->v);
    *s = (struct chain_symbols){0};
}

void symbol_score_text(double v, char out[32])
{
    snprintf(out, 32, "%.1f", v);
    if (strcmp(out, "-0.0") == 0) /* a log reader should not see a negative zero */
        snprintf(out, 32, "0.0");
}

size_t symbols_format(const struct chain_symbols *a, const struct chain_symbols *b, char *out,
                      size_t used, size_t out_size)
{
    const struct chain_symbols *sets[2] = {a, b};
    bool any = false;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sets[k]->n && used < out_size; i++) {
            char sc[32];
            symbol_score_text(sets[k]->v[i].score, sc);
            int n = snprintf(out + used, out_size - used, "%s%s(%s)", any ? "," : "",
                             sets[k]->v[i].name, sc);
            if (n < 0 || (size_t)n >= out_size - used) {
                out[used] = '\0';
                return used;
            }
            used += (size_t)n;
            any = true;
        }
    }
    return used;
}
