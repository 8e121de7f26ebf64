/*
 * sa_eval_body - SpamAssassin's body eval tests (Plugin::BodyEval),
 * natively:
 *
 *   check_body_length(MIN)   the message's body, as received (the octets
 *                            after the header's empty line), is at most MIN
 *                            octets long
 *
 * What it promises: SpamAssassin's pristine body length: the header ends at
 * the first line that is empty or holds a lone CR; a message without one
 * has an empty body.
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

const struct sa_eval_def sa_eval_body_defs[] = {
    {"check_body_length", body_length, body_length_check},
    {NULL, NULL, NULL},
};
