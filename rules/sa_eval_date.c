/*
 * sa_eval_date - SpamAssassin's date eval test check_for_shifted_date(MIN,
 * MAX) (DATE_IN_PAST_*, DATE_IN_FUTURE_*), natively, as HeaderEval computes
 * it: the Date header's time (Resent-Date first; the first value that
 * parses) minus each Received date (fetchmail's own local ones taken out,
 * as there), the last one dropped when it is the same as the Date, and the
 * difference of smallest size kept; no Date or no Received date is a
 * difference of 0.  The test hits when MIN hours <= difference < MAX hours
 * ('undef': no bound).
 *
 * What it promises: SpamAssassin's difference for the same header values;
 * it reads the clock not at all.  The difference is worked out once per
 * message (rules_msg_date_memo): the twelve DATE_IN_* rules share it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_date.h"
#include "rules/sa_eval.h"

#define RECEIVED_MAX 256 /* dates of Received lines looked at, as a bound */

/* The Date header's time: Resent-Date values first, then Date's. */
static int date_header(struct rules_msg *m, int64_t *t)
{
    static const char *const names[] = {"Resent-Date", "Date"};
    size_t nf = rules_msg_field_count(m);
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < nf; i++) {
            struct rules_msg_field *f = rules_msg_field(m, i);
            if (strcasecmp(f->name, names[k]) != 0)
                continue;
            const char *v = rules_msg_field_decoded(m, i);
            if (v == NULL)
                return -1;
            if (sa_date_parse(v, strlen(v), t))
                return 1;
        }
    return 0;
}

static bool contains(const char *s, const char *what)
{
    return strstr(s, what) != NULL;
}

/* \bfrom (?:localhost\s|(?:\S+ ){1,2}\S*\b127\.0\.0\.1\b) or qmail \d+ invoked by uid \d+ */
static bool local_first(const char *s)
{
    /* a loose reading is enough to decide: both need literal text */
    if (strstr(s, "qmail ") != NULL && strstr(s, " invoked by uid ") != NULL)
        return true;
    const char *p = strstr(s, "from localhost");
    if (p != NULL &&
        (p == s || !((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z') ||
                     (p[-1] >= '0' && p[-1] <= '9') || p[-1] == '_')) &&
        (p[14] == ' ' || p[14] == '\t'))
        return true;
    return strstr(s, "from ") != NULL && strstr(s, "127.0.0.1") != NULL &&
           strstr(s, "from ") < strstr(s, "127.0.0.1");
}

static int date_diff(struct rules_msg *m, int64_t *diff)
{
    *diff = 0;
    int64_t date;
    int rc = date_header(m, &date);
    if (rc <= 0)
        return rc;
    struct sa_eval_buf b = {0};
    if (sa_eval_get(m, "Received", false, &b) < 0) {
        sa_eval_buf_free(&b);
        return -1;
    }
    /* the lines with something on them */
    const char *lines[RECEIVED_MAX];
    size_t nl = 0;
    for (char *p = b.s; p != NULL && *p != '\0' && nl < RECEIVED_MAX;) {
        char *e = strchr(p, '\n');
        if (e != NULL)
            *e = '\0';
        bool any = false;
        for (const char *q = p; *q && !any; q++)
            any = !(*q == ' ' || *q == '\t' || *q == '\r' || *q == '\f' || *q == '\v');
        if (any)
            lines[nl++] = p;
        p = e ? e + 1 : NULL;
    }
    /* fetchmail's own lines (a local first hop, then "by localhost with ...
     * (fetchmail-") are not the message's: left out, as there */
    size_t first = nl > 0 && local_first(lines[0]) ? 1 : 0;
    if (first < nl && contains(lines[first], "by localhost with ") &&
        contains(lines[first], "(fetchmail-"))
        first++;
    else
        first = 0;
    int64_t diffs[RECEIVED_MAX];
    size_t nd = 0;
    for (size_t i = first; i < nl; i++) {
        int64_t t;
        if (sa_date_in_received(lines[i], strlen(lines[i]), &t))
            diffs[nd++] = date - t;
    }
    sa_eval_buf_free(&b);
    if (nd == 0)
        return 0;
    if (nd > 1 && diffs[nd - 1] == 0)
        nd--;
    /* the smallest size; Perl's sort is stable, so the first of equal sizes */
    int64_t best = diffs[0];
    for (size_t i = 1; i < nd; i++)
        if (llabs(diffs[i]) < llabs(best))
            best = diffs[i];
    *diff = best;
    return 0;
}

static bool check_shifted(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && sa_eval_number(c, 0, true, why, wn) &&
           sa_eval_number(c, 1, true, why, wn);
}

static int shifted_date(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct rules_msg_date_memo *memo = rules_msg_date_memo(m);
    if (memo->state == 0)
        memo->state = date_diff(m, &memo->diff) < 0 ? -1 : 1;
    if (memo->state < 0)
        return -1;
    int64_t d = memo->diff;
    return (c->undef[0] || (double)d >= 3600 * c->num[0]) &&
           (c->undef[1] || (double)d < 3600 * c->num[1]);
}

const struct sa_eval_def sa_eval_date_defs[] = {
    {"check_for_shifted_date", shifted_date, check_shifted},
    {NULL, NULL, NULL},
};
