/*
 * sa_eval_vbounce - SpamAssassin's Plugin::VBounce tests, natively, over the
 * rule set's welcomelist_bounce_relays list (sa_lists; whitelist_bounce_relays
 * is its other name):
 *
 *   have_any_bounce_relays()    the list has an entry
 *   check_welcomelist_bounce_relays(), check_whitelist_bounce_relays()
 *                               a host named in a Received line quoted in the
 *                               message (a bounce of mail that really passed
 *                               the admin's relays) is on the list
 *
 * The Received lines are looked for where VBounce looks, in this order:
 *   1. each element of the rendered body text (what body rules see, the
 *      Subject first) that starts with /^[> ]*Received:/i; every
 *      / (\S+\.\S+) /g in it is a host;
 *   2. the pristine body (everything after the top header section, as
 *      received, every MIME part undecoded: so the header of a
 *      message/rfc822 or text/rfc822-headers part is there): its lines
 *      (split at "\n", a CR kept) from the first one starting with
 *      /^[> ]*Received:/i on, a line starting with whitespace continuing the
 *      one before it (joined without a line end); in each joined line that
 *      starts with /^[> ]*Received:/i every /\s(\S+\.\S+)\s/g is a host.
 * A host is looked up lower-cased, exactly or by the list's globs (* and ?).
 *
 * What it promises: VBounce's answer on the same text.  The arguments a rule
 * gives are ignored, as VBounce ignores them; the rule's type (body,
 * rawbody, header) does not matter, as there.  Each joined line is searched
 * once, when it is complete: VBounce searches it again as each continuation
 * is added, but a host found in a part is found in the whole (the part's last
 * word only gains the blank it lacked), so the answer is the same.
 *
 * What it assumes: the rendered body's whitespace is the characters
 * sa_text_space knows (smtpgate's body is UTF-8); the pristine body is octets,
 * its \s ASCII whitespace (Perl's on a byte string).
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_lists.h"
#include "rules/sa_mime.h"
#include "rules/sa_text.h"

#define BOUNCE_RELAYS "welcomelist_bounce_relays"

/* VBounce's functions take whatever a rule gives and read none of it */
static bool any_args(struct sa_eval_call *c, char *why, size_t wn)
{
    (void)c, (void)why, (void)wn;
    return true;
}

static int have_any_bounce_relays(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)m;
    return sa_lists_has_addrlist(c->lists, BOUNCE_RELAYS) ? 1 : 0;
}

/* Perl's \s over octets */
static bool octet_space(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* /^[> ]*Received:/i */
static bool received_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == '>' || s[i] == ' '))
        i++;
    return n - i >= 9 && strncasecmp(s + i, "Received:", 9) == 0;
}

/* The width of the whitespace character at s[0..n) as the text's regex
 * sees it, 0 when it is none. */
static size_t space_width(const char *s, size_t n, bool octets)
{
    if (n == 0)
        return 0;
    return octets ? (octet_space((unsigned char)s[0]) ? 1 : 0) : sa_text_space(s, n);
}

/* Every match of / (\S+\.\S+) /g (blanks: false) or /\s(\S+\.\S+)\s/g
 * (octets: true) over s[0..n), each host asked of the list: 1 when one is
 * on it, 0 when none, -1 out of memory.  A match is a whole run of
 * non-whitespace with a dot inside it (not first, not last) between two
 * delimiters; the one after it is used up, so the next match needs its own
 * delimiter before it (as Perl's pos moves past it). */
static int scan_hosts(const struct sa_eval_call *c, const char *s, size_t n, bool octets)
{
    size_t i = 0;
    while (i < n) {
        bool delim = octets ? octet_space((unsigned char)s[i]) : s[i] == ' ';
        if (!delim) {
            i++;
            continue;
        }
        size_t r0 = i + 1, r1 = r0;
        while (r1 < n && space_width(s + r1, n - r1, octets) == 0)
            r1++;
        bool closed = r1 < n && (octets ? octet_space((unsigned char)s[r1]) : s[r1] == ' ');
        const char *dot = r1 - r0 >= 3 ? memchr(s + r0 + 1, '.', r1 - r0 - 2) : NULL;
        if (closed && dot != NULL) {
            int rc = sa_lists_addr_listed(c->lists, BOUNCE_RELAYS, s + r0, r1 - r0);
            if (rc != 0)
                return rc;
            i = r1 + 1;
            continue;
        }
        /* no match starts inside the run: the next try is at its end */
        i = r1 > i + 1 ? r1 : i + 1;
    }
    return 0;
}

/* 1. the rendered body's elements */
static int body_lines(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t len, nends;
    const size_t *ends;
    const char *s = rules_msg_sa_body(m, &len, &ends, &nends);
    if (rules_msg_nomem(m))
        return -1;
    size_t from = 0;
    for (size_t e = 0; e < nends; e++) {
        size_t to = ends[e];
        if (received_line(s + from, to - from)) {
            int rc = scan_hosts(c, s + from, to - from, false);
            if (rc != 0)
                return rc;
        }
        from = to;
    }
    return 0;
}

/* a joined line complete: searched when it is a Received line */
static int flush_joined(const struct sa_eval_call *c, const struct sa_eval_buf *h)
{
    if (h->n == 0 || !received_line(h->s, h->n))
        return 0;
    return scan_hosts(c, h->s, h->n, true);
}

/* 2. the pristine body's (joined) Received lines */
static int pristine_lines(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return -1;
    /* the same octets the tree was parsed from */
    size_t len;
    const char *raw = rules_msg_full(m, &len);
    size_t off = t->pristine_body_off < len ? t->pristine_body_off : len;
    const char *s = raw + off;
    size_t n = len - off;
    struct sa_eval_buf h = {0};
    bool found = false;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t ln = nl ? (size_t)(nl - (s + i)) : n - i;
        const char *line = s + i;
        i += ln + (nl ? 1 : 0);
        if (!found) {
            if (!received_line(line, ln))
                continue;
            found = true;
        }
        if (ln > 0 && octet_space((unsigned char)line[0])) {
            if (sa_eval_buf_add(&h, line, ln) != 0)
                rc = -1;
            continue;
        }
        rc = flush_joined(c, &h);
        h.n = 0;
        if (rc == 0 && sa_eval_buf_add(&h, line, ln) != 0)
            rc = -1;
    }
    if (rc == 0)
        rc = flush_joined(c, &h);
    sa_eval_buf_free(&h);
    return rc;
}

static int check_bounce_relays(const struct sa_eval_call *c, struct rules_msg *m)
{
    if (!sa_lists_has_addrlist(c->lists, BOUNCE_RELAYS))
        return 0;
    int rc = body_lines(c, m);
    return rc != 0 ? rc : pristine_lines(c, m);
}

const struct sa_eval_def sa_eval_vbounce_defs[] = {
    {"have_any_bounce_relays", have_any_bounce_relays, any_args},
    {"check_welcomelist_bounce_relays", check_bounce_relays, any_args},
    {"check_whitelist_bounce_relays", check_bounce_relays, any_args},
    {NULL, NULL, NULL},
};
