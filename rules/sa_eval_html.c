/*
 * sa_eval_html - SpamAssassin's HTML eval tests (Plugin::HTMLEval),
 * natively, over the facts of each text/html part (sa_html.h; HTMLEval's
 * "html_all"): a test hits when one part satisfies it.
 *
 *   html_tag_balance(TAG, EXPR)   TAG's balance (start tags minus end
 *                                 tags, never below 0) satisfies EXPR
 *   html_tag_exists(TAG)          TAG was seen (opened or closed)
 *   html_test(NAME)               the result NAME is true (a flag, a
 *                                 non-zero number, a list)
 *   html_eval(NAME, EXPR)         the number NAME is defined and satisfies
 *                                 EXPR
 *   html_range(NAME, MIN[, MAX])  the number NAME is defined and above MIN
 *                                 and at most MAX ("inf" or no MAX: above
 *                                 MIN only)
 *   html_image_only(MIN, MAX)     an img tag was seen and the part's length
 *                                 is above MIN and at most MAX
 *   html_image_ratio(MIN, MAX)    the non-blank rendered length over the
 *                                 image area (when there is some) is above
 *                                 MIN and at most MAX
 *   html_text_match(NAME, RE)     a string of the list NAME (title,
 *                                 comment, anchor, script) matches RE
 *   html_text_not_match(NAME, RE) one of them does not match RE
 *   html_title_subject_ratio(R)   the longest title over the Subject's
 *                                 length (the value with its line end) is
 *                                 above R; no Subject: no hit
 *   html_charset_faraway()        never: HTML.pm keeps the meta charsets
 *                                 to itself, so HTMLEval sees none
 *   check_iframe_src()            an iframe has a source
 *
 * What it promises: EXPR is what HTMLEval hands Perl's eval, "OP N" with
 * OP one of < <= > >= == != and N an integer; HTMLEval lets only
 * [<>=!+- 0-9] through (anything else never hits: so here), and a longer
 * expression of those is refused at load, named, rather than guessed.
 * A TAG of html_tag_balance that is not [A-Za-z0-9]+ never hits, as there.
 * Lengths are characters of the decoded part, as SpamAssassin counts them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_html.h"

/* num[] slots past the arguments: what the check read of EXPR */
#define SLOT_OP    (SA_EVAL_ARGS_MAX - 1)
#define SLOT_VALUE (SA_EVAL_ARGS_MAX - 2)
#define SLOT_NEVER (SA_EVAL_ARGS_MAX - 3) /* 1: the test can never hit */

enum expr_op { OP_LT = 1, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE };

/* EXPR as HTMLEval evaluates it; false (with why) when it is more than
 * "OP N", true with SLOT_NEVER set when HTMLEval would refuse it. */
static bool expr_check(struct sa_eval_call *c, size_t i, char *why, size_t wn)
{
    const char *e = c->args.v[i];
    if (e[0] == '\0' || strspn(e, "<>=!-+ 0123456789") != strlen(e)) {
        c->num[SLOT_NEVER] = 1;
        return true;
    }
    while (*e == ' ')
        e++;
    enum expr_op op = 0;
    if (e[0] == '<' && e[1] == '=')
        op = OP_LE, e += 2;
    else if (e[0] == '>' && e[1] == '=')
        op = OP_GE, e += 2;
    else if (e[0] == '=' && e[1] == '=')
        op = OP_EQ, e += 2;
    else if (e[0] == '!' && e[1] == '=')
        op = OP_NE, e += 2;
    else if (e[0] == '<')
        op = OP_LT, e += 1;
    else if (e[0] == '>')
        op = OP_GT, e += 1;
    while (*e == ' ')
        e++;
    const char *d = e;
    if (*d == '-' || *d == '+')
        d++;
    size_t nd = strspn(d, "0123456789");
    const char *rest = d + nd;
    while (*rest == ' ')
        rest++;
    if (op == 0 || nd == 0 || nd > 15 || *rest != '\0') {
        snprintf(why, wn, "eval %s: expression '%.40s' is not 'OP NUMBER'", c->def->name,
                 c->args.v[i]);
        return false;
    }
    c->num[SLOT_OP] = op;
    c->num[SLOT_VALUE] = strtod(e, NULL);
    return true;
}

static bool expr_true(const struct sa_eval_call *c, double v)
{
    double n = c->num[SLOT_VALUE];
    switch ((int)c->num[SLOT_OP]) {
    case OP_LT:
        return v < n;
    case OP_LE:
        return v <= n;
    case OP_GT:
        return v > n;
    case OP_GE:
        return v >= n;
    case OP_EQ:
        return v == n;
    case OP_NE:
        return v != n;
    }
    return false;
}

/* The parts, or -1 when out of memory (n is then 0). */
static const struct sa_html_part *parts_of(struct rules_msg *m, size_t *n, int *rc)
{
    const struct sa_html_part *p = rules_msg_sa_html(m, n);
    *rc = rules_msg_nomem(m) ? -1 : 0;
    return p;
}

static bool tag_balance_check(struct sa_eval_call *c, char *why, size_t wn)
{
    if (!sa_eval_nargs(c, 2, 2, why, wn) || !expr_check(c, 1, why, wn))
        return false;
    const char *t = c->args.v[0];
    if (t[0] == '\0' ||
        strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != strlen(t))
        c->num[SLOT_NEVER] = 1;
    return true;
}

static int tag_balance(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    if (rc < 0 || c->num[SLOT_NEVER])
        return rc;
    for (size_t i = 0; i < n; i++) {
        long v;
        if (sa_html_inside(&p[i], c->args.v[0], &v) && expr_true(c, (double)v))
            return 1;
    }
    return 0;
}

static bool one_arg(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn);
}

static int tag_exists(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++) {
        long v;
        if (sa_html_inside(&p[i], c->args.v[0], &v))
            return 1;
    }
    return rc;
}

static int html_test(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++)
        if (sa_html_true(&p[i], c->args.v[0]))
            return 1;
    return rc;
}

static bool html_eval_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && expr_check(c, 1, why, wn);
}

static int html_eval(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    if (rc < 0 || c->num[SLOT_NEVER])
        return rc;
    for (size_t i = 0; i < n; i++) {
        double v;
        if (sa_html_number(&p[i], c->args.v[0], &v) && expr_true(c, v))
            return 1;
    }
    return 0;
}

static bool range_check(struct sa_eval_call *c, char *why, size_t wn)
{
    if (!sa_eval_nargs(c, 2, 3, why, wn) || !sa_eval_number(c, 1, false, why, wn))
        return false;
    if (c->args.n == 2 || strcmp(c->args.v[2], "inf") == 0) {
        c->undef[2] = true;
        return true;
    }
    return sa_eval_number(c, 2, false, why, wn);
}

static int range(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++) {
        double v;
        if (!sa_html_number(&p[i], c->args.v[0], &v))
            continue;
        if (v > c->num[1] && (c->undef[2] || v <= c->num[2]))
            return 1;
    }
    return rc;
}

static bool min_max_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           sa_eval_number(c, 1, false, why, wn);
}

static int image_only(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++) {
        long v;
        if (sa_html_inside(&p[i], "img", &v) && p[i].length > c->num[0] && p[i].length <= c->num[1])
            return 1;
    }
    return rc;
}

static int image_ratio(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++) {
        if (!(p[i].image_area > 0))
            continue;
        double r = p[i].non_space_len / p[i].image_area;
        if (r > c->num[0] && r <= c->num[1])
            return 1;
    }
    return rc;
}

static bool text_match_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) &&
           sa_eval_compile(c, c->args.v[1], PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, why, wn);
}

/* 1 when a string of the list matches (want) or does not (!want) */
static int text_match_any(const struct sa_eval_call *c, struct rules_msg *m, bool want)
{
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++) {
        const struct sa_html_strs *l = sa_html_strings(&p[i], c->args.v[0]);
        for (size_t k = 0; l != NULL && k < l->n; k++) {
            size_t e = k + 1 < l->n ? l->start[k + 1] : l->len;
            int r =
                sa_eval_match(c, 0, NULL, l->text + l->start[k], e - l->start[k], 0, NULL, NULL);
            if (r < 0)
                return -1;
            if ((r == 1) == want)
                return 1;
        }
    }
    return rc;
}

static int text_match(const struct sa_eval_call *c, struct rules_msg *m)
{
    return text_match_any(c, m, true);
}

static int text_not_match(const struct sa_eval_call *c, struct rules_msg *m)
{
    return text_match_any(c, m, false);
}

static bool title_ratio_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn) && sa_eval_number(c, 0, false, why, wn);
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

static int title_ratio(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_eval_buf subject = {0};
    long nv = sa_eval_get(m, "Subject", false, &subject);
    size_t slen = subject.n;
    sa_eval_buf_free(&subject);
    if (nv < 0)
        return -1;
    if (slen == 0)
        return 0;
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++) {
        const struct sa_html_strs *l = sa_html_strings(&p[i], "title");
        double max = 0;
        for (size_t k = 0; l != NULL && k < l->n; k++) {
            size_t e = k + 1 < l->n ? l->start[k + 1] : l->len, len = e - l->start[k];
            /* Perl's truth: "" and "0" are false */
            if (len == 0 || (len == 1 && l->text[l->start[k]] == '0'))
                continue;
            double r = (double)utf8_chars(l->text + l->start[k], len) / (double)slen;
            if (r > max)
                max = r;
        }
        if (max > c->num[0])
            return 1;
    }
    return rc;
}

static int charset_faraway(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    (void)m;
    return 0;
}

static int iframe_src(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    size_t n;
    int rc;
    const struct sa_html_part *p = parts_of(m, &n, &rc);
    for (size_t i = 0; i < n; i++)
        if (p[i].iframe_src)
            return 1;
    return rc;
}

const struct sa_eval_def sa_eval_html_defs[] = {
    {"html_tag_balance", tag_balance, tag_balance_check},
    {"html_tag_exists", tag_exists, one_arg},
    {"html_test", html_test, one_arg},
    {"html_eval", html_eval, html_eval_check},
    {"html_range", range, range_check},
    {"html_image_only", image_only, min_max_check},
    {"html_image_ratio", image_ratio, min_max_check},
    {"html_text_match", text_match, text_match_check},
    {"html_text_not_match", text_not_match, text_match_check},
    {"html_title_subject_ratio", title_ratio, title_ratio_check},
    {"html_charset_faraway", charset_faraway, NULL},
    {"check_iframe_src", iframe_src, NULL},
    {NULL, NULL, NULL},
};
