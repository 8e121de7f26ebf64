/*
 * sa_cf - SpamAssassin's configuration files (.cf) read as SpamAssassin
 * reads them, into rules as written: a pure parser over bytes, with the
 * files' order and the include callback given by the caller.
 *
 * What it promises:
 *   - Lines as SpamAssassin's Conf::Parser splits them: an unescaped `#`
 *     starts a comment, `\#` stands for `#`, blanks around are dropped, the
 *     first word (lower-cased, `-` as `_`) is the setting; `lang XX ...` lines
 *     apply only when the environment's language starts with XX.
 *   - `if` / `ifplugin` / `else` / `endif` evaluated with sa_cond (a plugin
 *     smtpgate does not emulate is absent): the rules inside a block that is
 *     not read are counted in ->skipped by the block's reason.  An unclosed
 *     block ends with its file, as in SpamAssassin.
 *   - `require_version` other than the emulated version (or the literal
 *     @@VERSION@@) skips the rest of its file, with a warning.
 *   - `include FILE`, relative to the including file, through the callback;
 *     a loop, a depth beyond SA_INCLUDE_MAX_DEPTH or more than SA_FILES_MAX
 *     files in all is a warning.
 *   - Rules: header (with `exists:`, `=~` / `!~`, field modifiers,
 *     `[if-unset: ...]`, `eval:`), body, rawbody, full, uri (each a pattern
 *     or `eval:`), mimeheader, meta.  A later definition of a name replaces
 *     the earlier one (its score, description and flags stay), as in
 *     SpamAssassin.
 *   - score (1 or 4 values, relative `(N)` values), describe, tflags,
 *     priority: they may come before or after the rule; the last one wins.
 *   - The ReplaceTags templates (replace_start/_end, replace_tag, _pre,
 *     _post, _inter, replace_rules) applied by sa_conf_finish() exactly as
 *     the plugin does: after every file is read.
 *   - The list settings (sa_lists.h) go into ->lists, FreeMail's patterns
 *     compiled by sa_conf_finish().
 *   - The header and report settings (sa_hdrconf.h) go into ->hdr.
 *   - redirector_pattern lines are compiled into ->redirs (sa_redir.h) in
 *     the files' order; a bad one is a warning and left out.
 *   - Every other setting is counted in ->ignored by name: smtpgate does not
 *     use it (yet), and the report says so; those it never acts on
 *     (report_safe's rewriting of the message, ok_locales, Bayes) with why.
 *   - Malformed lines are warnings with file and line in ->warnings (what
 *     `spamassassin --lint` would complain about); they never stop a load.
 *
 * What it assumes: the caller gives the files in SpamAssassin's order (see
 * sa_files.h).  Out of memory: the functions return -1 and ->nomem is set.
 */
#ifndef SMTPGATE_RULES_SA_CF_H
#define SMTPGATE_RULES_SA_CF_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/rules.h"
#include "rules/sa_cond.h"
#include "rules/sa_hdrconf.h"
#include "rules/sa_lists.h"
#include "rules/sa_redir.h"
#include "rules/sa_tally.h"
#include "rules/sa_tmpl.h"

#define SA_SCORE_SETS        4
#define SA_INCLUDE_MAX_DEPTH 20
#define SA_IF_MAX_DEPTH      64
#define SA_FILES_MAX         512 /* files and includes of one load, against fan-out */

enum sa_kind {
    SA_NONE = 0, /* only score, describe, ... seen: not a rule */
    SA_HEADER,
    SA_BODY,
    SA_RAWBODY,
    SA_FULL,
    SA_URI,
    SA_MIMEHEADER,
    SA_META,
};

struct sa_rule {
    char *name;
    enum sa_kind kind;
    const char *file; /* of the definition; interned in the conf */
    unsigned line;
    char *field; /* header, mimeheader: "Subject", "From:addr", "ALL", ... */
    char *unset; /* [if-unset: TEXT] or NULL */
    bool exists; /* header NAME exists:FIELD */
    bool negate; /* !~ */
    char *re;    /* the pattern without its delimiters */
    size_t re_len;
    char mods[16]; /* the pattern's modifiers, "i", "is", ... */
    char *eval;    /* eval:NAME(ARGS): the function's name */
    char *eval_args;
    char *meta; /* the meta expression */
    double score[SA_SCORE_SETS];
    bool has_score;
    char *describe;
    char *tflags;
    int priority;
    /* when the rule was last defined and its priority last set, in the
     * conf's sequence: a capture rule's -10000 comes with its definition,
     * so a priority line after it wins, one before it does not */
    unsigned def_seq, prio_seq;
    bool replace;   /* named by replace_rules */
    bool too_large; /* its templates grew the pattern beyond 4 MiB */
};

/* Reads an included file: 0 and a malloc'ed buffer, or -1 and a reason. */
typedef int (*sa_read_fn)(void *arg, const char *path, char **data, size_t *len, char **why);

struct sa_conf {
    struct sa_env env;
    sa_read_fn read_file; /* NULL: include is a warning */
    void *read_arg;
    struct sa_rule *rules;
    size_t nrules;
    size_t cap;
    size_t *index; /* open addressing: rule index + 1, 0 empty */
    size_t index_cap;
    struct sa_kv *tmpl[SA_TMPL__COUNT];
    size_t ntmpl[SA_TMPL__COUNT];
    char *rstart; /* replace_start, "<" */
    char *rend;   /* replace_end, ">" */
    char **files; /* names read, in order; interned */
    size_t nfiles;
    unsigned depth;
    unsigned seq; /* def_seq, prio_seq */
    struct sa_tally skipped;     /* rule definitions not read, by reason */
    struct sa_kv *skipped_rules; /* the same one by one: name, reason */
    size_t nskipped_rules;
    struct sa_tally ignored; /* settings not used, by setting */
    struct sa_tally evals;      /* eval functions of the rules smtpgate does not have, by name */
    struct sa_tally evals_done; /* those it runs natively (sa_eval.h), by name */
    struct rules_errors warnings;
    struct sa_relay_conf *relay_conf; /* trusted/internal/msa_networks (sa_netset.h) */
    struct sa_lists *lists; /* the address and domain lists (sa_lists.h) */
    struct sa_hdrconf *hdr; /* add_header, report, required_score, ... (sa_hdrconf.h) */
    struct sa_redirs *redirs; /* redirector_pattern, compiled (sa_redir.h); NULL: none */
    bool finished;
    bool nomem;
};

/* A new, empty configuration for env (copied; its arrays must outlive it). */
struct sa_conf *sa_conf_new(const struct sa_env *env, sa_read_fn read_file, void *arg);
/* Reads one file's text named file. -1 when out of memory. */
int sa_cf_parse(struct sa_conf *c, const char *file, const char *data, size_t len);
/* Reads a .pre file's text before the first file: only its loadplugin and
 * tryplugin lines count (for the optional plugins sa_cond knows); it is
 * not one of the files read.  -1 when out of memory. */
int sa_cf_preload(struct sa_conf *c, const char *data, size_t len);
/* After the last file: the templates, the default scores. -1 when out of memory. */
int sa_conf_finish(struct sa_conf *c);
void sa_conf_free(struct sa_conf *c);

/* The rule named name, or NULL. */
struct sa_rule *sa_conf_rule(const struct sa_conf *c, const char *name);
/* tflags has the word flag (as in SpamAssassin's /\bflag\b/). */
bool sa_tflag(const struct sa_rule *r, const char *flag);
/* maxhits=N of tflags, or 0. */
unsigned sa_maxhits(const struct sa_rule *r);
/* The score set in use: bit 0 network, bit 1 Bayes (smtpgate has none). */
int sa_score_set(const struct sa_env *env);

#endif
