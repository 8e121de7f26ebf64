/*
 * symbols - a set of named, scored symbols (plugin.h's add_symbol): the
 * connection's set and the transaction's set of a chain_conn are two of
 * these.  Names are checked here, where a plugin's input arrives.
 *
 * Promises: a name appears once in a set (adding it again replaces score
 * and detail); strings are owned copies; the order is the order of first
 * addition, so a log line reads the same for the same session.  Not thread
 * safe: a connection's sets are touched by one callback at a time.
 */
#ifndef SMTPGATE_CHAIN_SYMBOLS_H
#define SMTPGATE_CHAIN_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpgate/plugin.h"

#define SYMBOL_NAME_MAX   128
#define SYMBOL_DETAIL_MAX 200
#define SYMBOLS_MAX       256 /* connection and transaction together */

struct chain_symbols {
    struct sg_symbol *v;
    size_t n, cap;
};

/* ASCII letters, digits and '_', not starting with a digit, at most
 * SYMBOL_NAME_MAX octets (the rule language's names). */
bool symbol_name_ok(const char *name);
/* 0, or -1 on a bad name or score, or no memory.  plugin must outlive the
 * set (the chain's instance name). */
int symbols_set(struct chain_symbols *s, const char *name, double score, const char *detail,
                const char *plugin, enum sg_symbol_scope scope);
/* The entry of that name, or NULL. */
struct sg_symbol *symbols_find(const struct chain_symbols *s, const char *name);
/* Removes the entry of that name, if any. */
void symbols_remove(struct chain_symbols *s, const char *name);
void symbols_clear(struct chain_symbols *s);
/* "%.1f" of v, without "-0.0". */
void symbol_score_text(double v, char out[32]);
/* Appends "NAME(1.0),NAME(-2.0)" of a then b to out (at used); returns the new used.  Never
 * writes past out_size. */
size_t symbols_format(const struct chain_symbols *a, const struct chain_symbols *b, char *out,
                      size_t used, size_t out_size);

#endif
