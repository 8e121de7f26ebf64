/*
 * sa_cond - the conditions of SpamAssassin's `if` and `ifplugin` lines,
 * evaluated as SpamAssassin evaluates them, for the SpamAssassin smtpgate
 * emulates (struct sa_env): `plugin(NAME)` is true only for a plugin smtpgate
 * emulates (so the rules of every other plugin are skipped, as SpamAssassin
 * skips them when the plugin is not loaded), and for one it emulates that
 * Debian's .pre files leave out (AntiVirus, FromNameSpoof) only once a
 * loadplugin line has named it, `can(NAME)` and `has(NAME)` only
 * for the features listed, `version` is the emulated version,
 * `local_tests_only` is 1 when network tests are off.  Pure.
 *
 * The grammar is the part of Perl's that SpamAssassin's lexer lets through:
 * numbers, those words, ( ) ! && || and the comparisons < <= > >= == !=,
 * with Perl's precedence (! above comparisons above && above ||).  Anything
 * else is a syntax error, which the caller reports (SpamAssassin would fail
 * the line too) and treats as false.
 */
#ifndef SMTPGATE_RULES_SA_COND_H
#define SMTPGATE_RULES_SA_COND_H

#include <stdbool.h>
#include <stddef.h>

struct sa_env {
    const char *version;        /* "4.000001", as in require_version */
    const char *const *plugins; /* emulated: Mail::SpamAssassin::Plugin::ReplaceTags ... */
    size_t nplugins;
    const char *const *features; /* true for can()/has() */
    size_t nfeatures;
    bool network;     /* network tests on: score sets 1 and 3, local_tests_only 0 */
    const char *lang; /* "lang XX" lines apply when lang starts with XX; NULL: never */
    unsigned optional_loaded; /* bit i: sa_env_optional[i] was named by loadplugin */
};

/* The plugins and features smtpgate emulates today, and its version. */
extern const struct sa_env sa_env_default;

/* The emulated plugins SpamAssassin loads only when asked to, in order. */
extern const char *const sa_env_optional[];
/* A loadplugin or tryplugin line naming name[0..n): an optional plugin
 * smtpgate emulates is present from now on; false for any other name. */
bool sa_env_load_plugin(struct sa_env *env, const char *name, size_t n);
/* name[0..n) is one of sa_env_optional. */
bool sa_env_is_optional(const char *name, size_t n);

/* 0 and *out, or -1 when expr is not a condition SpamAssassin accepts. */
int sa_cond_eval(const char *expr, size_t len, const struct sa_env *env, bool *out);

#endif
