/*
 * sa_eval_body - SpamAssassin's body eval tests (Plugin::BodyEval),
 * natively:
 *
 *   check_body_length(MIN)   the message's body, as received (the octets
 *                            after the header's empty line), is at most MIN
 *                            octets long
 *   check_blank_line_ratio(MIN, MAX[, MINLINES])
 *                            the share (percent) of lines without a
 *                            non-blank character in the decoded body text
 *                            (rawbody's pieces, each split at its line
 *                            ends) is above MIN (or MIN is 0) and at most
 *                            MAX; under MINLINES lines (1 when absent or
 *                            below 1) the share is -1
 *   tvd_vertical_words(MIN, MAX)
 *                            the highest share of spaces to other
 *                            characters of a rendered body element longer
 *                            than 5 octets (100 when spaces outnumber the
 *                            rest), -1 when there is none, is at least MIN
 *                            and below MAX (a MAX of 100 or more is 101)
 *
 * What it promises: SpamAssassin's pristine body length: the header ends at
 * the first line that is empty or holds a lone CR; a message without one
 * has an empty body.  The ratios are computed as BodyEval computes them:
 * Perl's split(/^/m) (no empty piece after a last line end, none from an
 * empty piece), \S as Perl's non-blank octets, int() truncation.
 */
#include <string.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"

static bool body_length_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn) && sa_eval_number(c, 0, false, why, wn);
}

static int body_length(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    const char *s = rules_msg_full(m, &n);
    if (rules_msg_nomem(m))
        return -1;
    size_t body = n;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (s + i)) : n - i;
        if (len == 0 || (len == 1 && s[i] == '\r')) {
            body = nl ? i + len + 1 : n;
            break;
        }
        if (nl == NULL)
            break;
        i += len + 1;
    }
    return (double)(n - body) <= c->num[0];
}

static bool blank_line_ratio_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 3, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           sa_eval_number(c, 1, false, why, wn) &&
           (c->args.n < 3 || sa_eval_number(c, 2, false, why, wn));
}

/* Perl's \s over octets: space, \t, \n, \v, \f, \r */
static bool perl_space(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static int blank_line_ratio(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t len, nends;
    const size_t *ends;
    const char *s = rules_msg_sa_rawbody(m, &len, &ends, &nends);
    if (rules_msg_nomem(m))
        return -1;
    double minlines = c->args.n >= 3 ? c->num[2] : 1;
    if (minlines < 1)
        minlines = 1;
    unsigned long lines = 0, blank = 0;
    size_t from = 0;
    for (size_t e = 0; e < nends; e++) {
        size_t to = ends[e];
        /* split(/^/m): a line ends after each line end; text after the
         * last one is a line of its own; an empty piece has none */
        for (size_t i = from; i < to;) {
            const char *nl = memchr(s + i, '\n', to - i);
            size_t stop = nl ? (size_t)(nl - s) + 1 : to;
            bool has_text = false;
            for (size_t j = i; j < stop && !has_text; j++)
                has_text = !perl_space((unsigned char)s[j]);
            lines++;
            blank += !has_text;
            i = stop;
        }
        from = to;
    }
    double ratio = (double)lines < minlines ? -1 : 100.0 * (double)blank / (double)lines;
    double min = c->num[0], max = c->num[1];
    return (min == 0 && ratio <= max) || (ratio > min && ratio <= max);
}

static bool vertical_words_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           sa_eval_number(c, 1, false, why, wn);
}

static int vertical_words(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t len, nends;
    const size_t *ends;
    const char *s = rules_msg_sa_body(m, &len, &ends, &nends);
    if (rules_msg_nomem(m))
        return -1;
    long best = -1;
    size_t from = 0;
    for (size_t e = 0; e < nends; e++) {
        size_t to = ends[e], l = to - from;
        if (l > 5) {
            size_t spaces = 0;
            for (size_t j = from; j < to; j++)
                spaces += s[j] == ' ';
            size_t others = l - spaces;
            long pct = spaces > others || others == 0 ? 100 : (long)(100 * spaces / others);
            if (pct > best)
                best = pct;
        }
        from = to;
    }
    double max = c->num[1] >= 100 ? 101 : c->num[1];
    return (double)best >= c->num[0] && (double)best < max;
}

const struct sa_eval_def sa_eval_body_defs[] = {
    {"check_body_length", body_length, body_length_check},
    {"check_blank_line_ratio", blank_line_ratio, blank_line_ratio_check},
    {"tvd_vertical_words", vertical_words, vertical_words_check},
    {NULL, NULL, NULL},
};
