/*
 * sa_eval_subject - SpamAssassin's Plugin::WelcomeListSubject, natively,
 * over the rule set's welcomelist_subject and blocklist_subject strings
 * (sa_lists):
 *
 *   check_subject_in_welcomelist()  a welcomelist_subject string is in the
 *                                   Subject (get('Subject'): every Subject
 *                                   field decoded, each ending with a line
 *                                   end), case aside, * and ? its wildcards
 *   check_subject_in_blocklist()    ... a blocklist_subject string
 *   (the whitelist and blacklist names are the same functions)
 *
 * What it promises: SpamAssassin's results on the same subjects; no
 * Subject, no hit.
 *
 * What it assumes: the subject is octets as SpamAssassin's lc sees them
 * (ASCII letters lowered; `?` stands for one octet).
 */
#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_lists.h"

static int subject_in(const struct sa_eval_call *c, struct rules_msg *m, bool block)
{
    struct sa_eval_buf b = {0};
    long nv = sa_eval_get(m, "Subject", false, &b);
    int rc = nv < 0 ? -1 : b.n == 0 ? 0 : sa_lists_subject_listed(c->lists, block, b.s, b.n);
    sa_eval_buf_free(&b);
    return rc;
}

static int subject_in_welcomelist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return subject_in(c, m, false);
}

static int subject_in_blocklist(const struct sa_eval_call *c, struct rules_msg *m)
{
    return subject_in(c, m, true);
}

const struct sa_eval_def sa_eval_subject_defs[] = {
    {"check_subject_in_welcomelist", subject_in_welcomelist, NULL},
    {"check_subject_in_whitelist", subject_in_welcomelist, NULL},
    {"check_subject_in_blocklist", subject_in_blocklist, NULL},
    {"check_subject_in_blacklist", subject_in_blocklist, NULL},
    {NULL, NULL, NULL},
};
