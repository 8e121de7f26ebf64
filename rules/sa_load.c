/*
 * sa_load - SpamAssassin's files into a build (see sa_load.h).  The files
 * are read with the build's own reader (the same size limit and errors as
 * a native file); a file that cannot be read is a warning of the report,
 * as SpamAssassin warns and goes on, unless nothing at all can be read.
 */
#include "rules/sa_load.h"

#include <stdlib.h>
#include <string.h>

#include "rules/build.h"
#include "rules/sa_cf.h"
#include "rules/sa_compile.h"
#include "rules/sa_eval.h"
#include "rules/sa_files.h"
#include "util/alloc.h"

static int read_cb(void *arg, const char *path, char **data, size_t *len, char **why)
{
    struct rules_build *b = arg;
    return b->read_file(path, data, len, why);
}

/* By name: a rule skipped twice (two false blocks) is counted once, under
 * one of its reasons. */
static int cmp_kv(const void *a, const void *b)
{
    const struct sa_kv *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Moves a tally into the report's array. */
/* The eval functions skipped rules name (sa_cf counts them all) less those
 * smtpgate has: such a rule is skipped for another reason (the other
 * branch of an if, its plugin absent), its function is not lacking. */
static void drop_known_evals(struct sa_tally *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (sa_eval_find(t->v[i].what) != NULL) {
            free(t->v[i].what);
            free(t->v[i].first);
            continue;
        }
        t->v[w++] = t->v[i];
    }
    t->n = w;
}

static void take(struct sa_tally *t, struct rules_sa_count **v, size_t *n)
{
    sa_tally_sort(t);
    *v = t->v;
    *n = t->n;
    *t = (struct sa_tally){0};
}

void sa_load(struct rules_build *b, const struct rules_sa_opts *o, struct rules_sa_report *rep)
{
    struct sa_env env = sa_env_default;
    env.network = o->network;
    char **files = NULL, *why = NULL;
    size_t nfiles = 0;
    if (sa_files_list(o, env.version, &files, &nfiles, &why) != 0) {
        if (why == NULL)
            rules_build_nomem(b);
        else
            rules_build_error(b, "spamassassin", 0, 0, "%s", why);
        free(why);
        return;
    }
    struct sa_conf *c = sa_conf_new(&env, read_cb, b);
    if (c == NULL) {
        sa_files_free(files, nfiles);
        rules_build_nomem(b);
        return;
    }
    /* the .pre files' loadplugin lines, before any rule */
    char **pre = NULL;
    size_t npre = 0;
    if (sa_files_pre(o, env.version, &pre, &npre) != 0)
        c->nomem = true;
    for (size_t i = 0; i < npre && !c->nomem; i++) {
        char *data = NULL;
        size_t len = 0;
        why = NULL;
        if (b->read_file(pre[i], &data, &len, &why) == 0)
            sa_cf_preload(c, data, len);
        free(data);
        free(why);
    }
    sa_files_free(pre, npre);
    size_t nread = 0;
    for (size_t i = 0; i < nfiles && !c->nomem; i++) {
        char *data = NULL;
        size_t len = 0;
        why = NULL;
        if (b->read_file(files[i], &data, &len, &why) != 0) {
            if (rules_errors_add(&c->warnings, files[i], 0, 0, why ? why : "cannot read") != 0)
                c->nomem = true;
            free(why);
            continue;
        }
        nread++;
        sa_cf_parse(c, files[i], data, len);
        free(data);
    }
    if (!c->nomem)
        sa_conf_finish(c);
    if (c->nomem) {
        rules_build_nomem(b);
    } else if (nread == 0) {
        rules_build_error(b, files[0], 0, 0, "no SpamAssassin rule file could be read");
    } else {
        size_t defined = 0;
        sa_compile(b, c, &defined);
        b->r->sa_relay_conf = c->relay_conf;
        c->relay_conf = NULL;
        b->r->sa_redirs = c->redirs;
        c->redirs = NULL;
        b->r->sa_hdr = c->hdr;
        c->hdr = NULL;
        /* rules the if blocks kept out count as defined and skipped, each
         * name once, and not when the rule is defined elsewhere after all */
        if (c->nskipped_rules > 1)
            qsort(c->skipped_rules, c->nskipped_rules, sizeof(*c->skipped_rules), cmp_kv);
        for (size_t i = 0; i < c->nskipped_rules; i++) {
            const struct sa_kv *k = &c->skipped_rules[i];
            if (i > 0 && strcmp(k->name, c->skipped_rules[i - 1].name) == 0)
                continue;
            const struct sa_rule *sr = sa_conf_rule(c, k->name);
            if (sr != NULL && sr->kind != SA_NONE)
                continue;
            if (sa_tally_add(b->sa_skipped, k->value, k->name) != 0)
                rules_build_nomem(b);
            rules_build_sa_pruned(b, k->name);
            defined++;
        }
        if (rep != NULL) {
            rep->defined = defined;
            rep->score_set = sa_score_set(&env);
            rep->version = sa_env_default.version;
            rep->warnings = c->warnings;
            c->warnings = (struct rules_errors){0};
            take(&c->ignored, &rep->ignored, &rep->nignored);
            drop_known_evals(&c->evals);
            take(&c->evals, &rep->evals, &rep->nevals);
            take(&c->evals_done, &rep->evals_done, &rep->nevals_done);
            rep->files = c->files;
            rep->nfiles = c->nfiles;
            c->files = NULL;
            c->nfiles = 0;
        }
    }
    sa_conf_free(c);
    sa_files_free(files, nfiles);
}
