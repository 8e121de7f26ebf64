/*
 * sa_eval_args - SpamAssassin's eval arguments (see sa_eval_args.h).
 *
 * SpamAssassin matches, again and again at the start of what is left,
 *   ^\s* (?: (['"]) (.*?) \1 | ([\d.:A-Za-z-]+?) ) \s* (?: ,\s* | $ )
 * and the text must be used up.  The lazy quoted item therefore ends at the
 * first closing quote after which only blanks come before a comma or the
 * end, and `.` does not cross a line end; the lazy bare word can only end
 * where the next octet is a blank, a comma or the end, which is its longest
 * run.  Every round consumes at least one octet, so the loop ends.
 */
#include "rules/sa_eval_args.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* Perl's \s */
static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool word_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == ':' || c == '-';
}

/* After an item at i: blanks, then a comma and blanks or the end.  The
 * position after them, or (size_t)-1 when neither follows. */
static size_t item_end(const char *s, size_t n, size_t i)
{
    while (i < n && blank(s[i]))
        i++;
    if (i == n)
        return n;
    if (s[i] != ',')
        return (size_t)-1;
    i++;
    while (i < n && blank(s[i]))
        i++;
    return i;
}

void sa_eval_args_free(struct sa_eval_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

enum sa_eval_args_rc sa_eval_args_parse(const char *s, size_t n, struct sa_eval_args *out)
{
    memset(out, 0, sizeof(*out));
    size_t p = 0;
    while (p < n) {
        size_t q = p;
        while (q < n && blank(s[q]))
            q++;
        if (q == n && p == 0)
            return SA_EVAL_ARGS_OK; /* blank: no argument */
        size_t vs = 0, vl = 0, next = (size_t)-1;
        if (q < n && (s[q] == '\'' || s[q] == '"')) {
            for (size_t k = q + 1; k < n && s[k] != '\n'; k++) {
                if (s[k] != s[q])
                    continue;
                next = item_end(s, n, k + 1);
                if (next != (size_t)-1) {
                    vs = q + 1;
                    vl = k - vs;
                    break;
                }
            }
        } else if (q < n && word_char(s[q])) {
            size_t k = q;
            while (k < n && word_char(s[k]))
                k++;
            next = item_end(s, n, k);
            vs = q;
            vl = k - q;
        }
        if (next == (size_t)-1) {
            sa_eval_args_free(out);
            return SA_EVAL_ARGS_SYNTAX;
        }
        if (out->n == SA_EVAL_ARGS_MAX) {
            sa_eval_args_free(out);
            return SA_EVAL_ARGS_TOO_MANY;
        }
        char *v = util_malloc(vl + 1);
        if (v == NULL) {
            sa_eval_args_free(out);
            return SA_EVAL_ARGS_NOMEM;
        }
        memcpy(v, s + vs, vl);
        v[vl] = '\0';
        out->v[out->n] = v;
        out->len[out->n++] = vl;
        p = next;
    }
    return SA_EVAL_ARGS_OK;
}
