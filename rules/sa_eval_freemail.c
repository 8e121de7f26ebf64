/*
 * sa_eval_freemail - SpamAssassin's Plugin::FreeMail tests, natively, over
 * the rule set's freemail_domains and freemail_welcomelist (sa_lists):
 *
 *   check_freemail_from([RE])     an all_from_addrs() address is freemail
 *                                 (and matches RE)
 *   check_freemail_header(H [,RE]) an address of H (H:first for the first
 *                                 field only; EnvelopeFrom too) is freemail
 *   check_freemail_replyto(['replyto'|'reply'])  From and Reply-To are
 *                                 different freemails, or the reply address
 *                                 (Reply-To; for 'reply' the From when there
 *                                 is no Reply-To) is freemail and the body
 *                                 holds another freemail; skipped when the
 *                                 EnvelopeFrom looks bulk
 *                                 (freemail_skip_bulk_envfrom)
 *   check_freemail_body([RE])     the body holds a freemail (matching RE)
 *
 * What it promises: SpamAssassin's results on the same addresses: all of
 * them lower-cased, FreeMail's own welcomelist (abuse@, postmaster@, ...),
 * the body's addresses taken as _parse_body takes them (http URLs holding
 * an '@' and addresses followed by "word:" dropped first, at most 40
 * unique; freemail_max_body_emails / _freemails with
 * freemail_skip_when_over_max).  Without freemail_domains nothing hits, as
 * the plugin disables itself.  A bad RE or option makes the rule a miss,
 * as SpamAssassin warns and returns 0.
 *
 * What it assumes: the mailto: links of HTML anchors are not among the
 * body's addresses here (smtpgate's body has the rendered text only); a
 * message whose only freemail address is such a link differs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"
#include "rules/sa_addrs.h"
#include "rules/sa_eval.h"
#include "rules/sa_lists.h"
#include "util/alloc.h"

#define BODY_EMAILS_MAX 40 /* _parse_body's sanity limit */

/* the optional RE argument k, compiled as compile_regexp($re, 0): bare,
 * no delimiters; a pattern that does not compile leaves the rule a miss */
static bool optional_re(struct sa_eval_call *c, size_t k, char *why, size_t wn)
{
    if (c->args.n <= k)
        return true;
    if (!sa_eval_compile(c, c->args.v[k], 0, why, wn))
        c->undef[k] = true; /* marks "bad pattern": never hits */
    return true;
}

static bool check_re0(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 1, why, wn) && optional_re(c, 0, why, wn);
}

static bool check_header(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 2, why, wn) && optional_re(c, 1, why, wn);
}

static bool check_replyto(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 1, why, wn);
}

/* the RE of argument k matches email (no RE: it does) */
static int re_ok(const struct sa_eval_call *c, size_t k, const char *email)
{
    if (c->args.n <= k)
        return 1;
    if (c->undef[k] || c->nre == 0)
        return 0;
    int rc = sa_eval_match(c, 0, NULL, email, strlen(email), 0, NULL, NULL);
    return rc < 0 ? -1 : rc;
}

/* the first of a that is freemail and matches the RE: 1, 0, -1 */
static int any_freemail(const struct sa_eval_call *c, const struct sa_addrs *a, size_t rek)
{
    for (size_t i = 0; i < a->n; i++) {
        int fm = sa_lists_is_freemail(c->lists, a->v[i], strlen(a->v[i]));
        if (fm != 1) {
            if (fm < 0)
                return -1;
            continue;
        }
        int r = re_ok(c, rek, a->v[i]);
        if (r != 0)
            return r;
    }
    return 0;
}

static int freemail_from(const struct sa_eval_call *c, struct rules_msg *m)
{
    if (!sa_lists_freemail_available(c->lists))
        return 0;
    struct sa_addrs a = {0};
    int rc = sa_addrs_all_from(m, &a);
    if (rc == 0) {
        for (size_t i = 0; i < a.n; i++)
            for (char *p = a.v[i]; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        rc = any_freemail(c, &a, 0);
    }
    sa_addrs_free(&a);
    return rc;
}

/* "Name:mod:mod": the field's name and whether :first is among them */
static void header_request(const char *req, char *name, size_t nn, bool *first)
{
    const char *colon = strchr(req, ':');
    size_t len = colon ? (size_t)(colon - req) : strlen(req);
    snprintf(name, nn, "%.*s", (int)(len < nn ? len : nn - 1), req);
    *first = false;
    for (const char *p = colon; p != NULL; p = strchr(p + 1, ':'))
        *first |= strncmp(p, ":first", 6) == 0 && (p[6] == ':' || p[6] == '\0');
}

static int freemail_header(const struct sa_eval_call *c, struct rules_msg *m)
{
    if (!sa_lists_freemail_available(c->lists))
        return 0;
    char name[256];
    bool first;
    header_request(c->args.v[0], name, sizeof(name), &first);
    struct sa_addrs a = {0};
    int rc = sa_addrs_field(m, name, first, true, &a);
    if (rc == 0)
        rc = any_freemail(c, &a, 1);
    sa_addrs_free(&a);
    return rc;
}

/* ---- the body's freemails (_parse_body) ---- */
struct body_fm {
    struct sa_addrs emails; /* the freemails kept */
    bool skip;              /* a limit was reached: the body tests are off */
};

/* pattern re's matches in s replaced by one space, globally */
static char *substitute(const pcre2_code *re, const char *s, size_t n, size_t *outn)
{
    size_t cap = n + 16;
    for (int tries = 0; tries < 2; tries++) {
        char *out = util_malloc(cap);
        if (out == NULL)
            return NULL;
        PCRE2_SIZE on = cap;
        int rc = pcre2_substitute(re, (PCRE2_SPTR)s, n, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, NULL,
                                  NULL, (PCRE2_SPTR) " ", 1, (PCRE2_UCHAR *)out, &on);
        if (rc >= 0) {
            *outn = on;
            return out;
        }
        free(out);
        if (rc != PCRE2_ERROR_NOMEMORY)
            break;
        cap = on + 1;
    }
    /* a match limit: the text stays as it was */
    char *copy = util_memdup(s, n);
    *outn = n;
    return copy;
}

static int body_emails(const struct sa_lists *l, struct rules_msg *m, struct sa_addrs *all)
{
    size_t len, nends;
    const size_t *ends;
    const char *body = rules_msg_sa_body(m, &len, &ends, &nends);
    const pcre2_code *email = sa_lists_email_re(l);
    if (body == NULL || email == NULL)
        return rules_msg_nomem(m) ? -1 : 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(email, NULL);
    if (md == NULL)
        return -1;
    int rc = 0;
    size_t from = 0;
    for (size_t e = 0; e < nends && rc == 0 && all->n < BODY_EMAILS_MAX; e++) {
        size_t n1, n2;
        char *t1 = substitute(sa_lists_body_strip_re(l, 0), body + from, ends[e] - from, &n1);
        char *t2 = t1 ? substitute(sa_lists_body_strip_re(l, 1), t1, n1, &n2) : NULL;
        from = ends[e];
        free(t1);
        if (t2 == NULL) {
            rc = -1;
            break;
        }
        size_t off = 0;
        while (off <= n2 && all->n < BODY_EMAILS_MAX) {
            if (pcre2_match(email, (PCRE2_SPTR)t2, n2, off, 0, md, NULL) < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            char *addr = util_memdup(t2 + ov[2], ov[3] - ov[2]);
            if (addr == NULL) {
                rc = -1;
                break;
            }
            for (char *p = addr; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            if (!sa_addrs_has(all, addr) && sa_addrs_add(all, addr, strlen(addr)) != 0)
                rc = -1;
            free(addr);
            off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
        free(t2);
    }
    pcre2_match_data_free(md);
    return rc;
}

static void body_fm_free(void *v)
{
    struct body_fm *b = v;
    sa_addrs_free(&b->emails);
    free(b);
}

/* _parse_body's result, worked out on the first call for a message and kept
 * with it: check_freemail_body and every check_freemail_replyto that gets
 * that far read the same addresses. */
static int parse_body(const struct sa_eval_call *c, struct rules_msg *m,
                      const struct body_fm **out)
{
    struct body_fm *b = rules_msg_memo(m, RULES_MEMO_FREEMAIL_BODY, c->lists);
    if (b != NULL) {
        *out = b;
        return 0;
    }
    if ((b = util_calloc(1, sizeof(*b))) == NULL)
        return -1;
    struct sa_addrs all = {0};
    int rc = body_emails(c->lists, m, &all);
    const struct sa_freemail_opts *o = sa_lists_freemail_opts(c->lists);
    double count_all = 0, count_fm = 0;
    for (size_t i = 0; i < all.n && rc == 0; i++) {
        if (++count_all == o->max_body_emails && o->skip_when_over_max != 0) {
            b->skip = true;
            break;
        }
        int fm = sa_lists_is_freemail(c->lists, all.v[i], strlen(all.v[i]));
        if (fm < 0)
            rc = -1;
        if (fm != 1)
            continue;
        if (++count_fm == o->max_body_freemails && o->skip_when_over_max != 0) {
            b->skip = true;
            break;
        }
        if (sa_addrs_add(&b->emails, all.v[i], strlen(all.v[i])) != 0)
            rc = -1;
    }
    sa_addrs_free(&all);
    if (rc != 0) {
        body_fm_free(b);
        return rc;
    }
    rules_msg_memo_keep(m, RULES_MEMO_FREEMAIL_BODY, c->lists, b, body_fm_free);
    *out = b;
    return 0;
}

static int freemail_body(const struct sa_eval_call *c, struct rules_msg *m)
{
    if (!sa_lists_freemail_available(c->lists))
        return 0;
    const struct body_fm *b;
    int rc = parse_body(c, m, &b);
    if (rc == 0 && !b->skip) {
        if (c->args.n == 0) {
            rc = b->emails.n > 0;
        } else {
            for (size_t i = 0; i < b->emails.n && rc == 0; i++)
                rc = re_ok(c, 0, b->emails.v[i]);
        }
    }
    return rc;
}

static int count_freemail(const struct sa_eval_call *c, const struct sa_addrs *a, bool *any)
{
    *any = false;
    for (size_t i = 0; i < a->n && !*any; i++) {
        int fm = sa_lists_is_freemail(c->lists, a->v[i], strlen(a->v[i]));
        if (fm < 0)
            return -1;
        *any = fm == 1;
    }
    return 0;
}

static int freemail_replyto(const struct sa_eval_call *c, struct rules_msg *m)
{
    if (!sa_lists_freemail_available(c->lists))
        return 0;
    bool reply = false;
    if (c->args.n == 1) {
        if (strcmp(c->args.v[0], "reply") == 0)
            reply = true;
        else if (strcmp(c->args.v[0], "replyto") != 0)
            return 0; /* SpamAssassin warns: invalid option */
    }
    const struct sa_freemail_opts *o = sa_lists_freemail_opts(c->lists);
    if (o->skip_bulk_envfrom != 0) {
        const char *env = rules_msg_envelope_from(m);
        const pcre2_code *bulk = sa_lists_bulk_envfrom_re(c->lists);
        if (env != NULL && bulk != NULL) {
            int rc = sa_eval_match(c, 0, bulk, env, strlen(env), 0, NULL, NULL);
            if (rc != 0)
                return rc < 0 ? -1 : 0;
        }
    }
    struct sa_addrs from = {0}, rt = {0};
    const struct body_fm *b;
    int rc = -1;
    bool from_fm, rt_fm;
    if (sa_addrs_field(m, "From", false, true, &from) != 0 ||
        sa_addrs_field(m, "Reply-To", false, true, &rt) != 0 ||
        count_freemail(c, &from, &from_fm) != 0 || count_freemail(c, &rt, &rt_fm) != 0)
        goto out;
    bool from_not_in_rt = true;
    for (size_t i = 0; i < from.n; i++)
        if (sa_addrs_has(&rt, from.v[i]))
            from_not_in_rt = false;
    rc = 1;
    if (from_fm && rt_fm && from_not_in_rt)
        goto out;
    rc = 0;
    if (!reply && !rt_fm)
        goto out;
    if (reply && ((rt.n > 0 && !rt_fm) || !from_fm))
        goto out;
    if ((rc = parse_body(c, m, &b)) != 0 || b->skip)
        goto out;
    const struct sa_addrs *reply_addrs = !reply || rt_fm ? &rt : &from;
    for (size_t i = 0; i < b->emails.n && rc == 0; i++)
        for (size_t k = 0; k < reply_addrs->n && rc == 0; k++)
            rc = strcmp(b->emails.v[i], reply_addrs->v[k]) != 0;
out:
    sa_addrs_free(&from);
    sa_addrs_free(&rt);
    return rc;
}

const struct sa_eval_def sa_eval_freemail_defs[] = {
    {"check_freemail_from", freemail_from, check_re0},
    {"check_freemail_header", freemail_header, check_header},
    {"check_freemail_replyto", freemail_replyto, check_replyto},
    {"check_freemail_body", freemail_body, check_re0},
    {NULL, NULL, NULL},
};
