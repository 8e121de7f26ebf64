/*
 * sa_eval_forged - SpamAssassin's tests of a Received chain that does not
 * fit the mail service the From claims (Plugin::HeaderEval), natively:
 *
 *   check_for_forged_gmail_received_headers()  From @gmail.com, but none
 *       of Google's X-Received / Received forms and not both of Google's
 *       long X-Gm-Message-State and X-Google-Smtp-Source
 *   gated_through_received_hdr_remover()  an ezmlm list that strips
 *       Received fields (Mailing-List, Delivered-To, qmail's Received), or
 *       no Received at all, or MSN groups'
 *
 * What it promises: SpamAssassin's patterns, compiled once at load, over
 * the header values as its get() joins them.
 */
#include <string.h>

#include "rules/sa_eval.h"

enum { GM_FROM, GM_XRCVD_10, GM_XRCVD_2002, GM_RCVD_ESMTPSA, GM__N };

static bool gmail_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) &&
           sa_eval_compile(c, "\\bgmail\\.com$", PCRE2_CASELESS, why, wn) &&
           sa_eval_compile(c, "by 10\\.\\S+ with SMTP id \\S+", 0, why, wn) &&
           sa_eval_compile(c, "by 2002\\:a\\d\\d\\:\\w+\\:\\S+ with SMTP id \\S+", 0, why, wn) &&
           sa_eval_compile(c, "by smtp\\.googlemail\\.com with ESMTPSA id \\S+", 0, why, wn);
}

static int gmail(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_eval_buf b = {0};
    int rc = -1;
    if (sa_eval_get_addrs(m, "From", &b) < 0)
        goto out;
    if ((rc = sa_eval_match(c, GM_FROM, NULL, b.s, b.n, 0, NULL, NULL)) != 1)
        goto out;
    rc = -1;
    if (sa_eval_get(m, "X-Received", false, &b) < 0)
        goto out;
    int r1 = sa_eval_match(c, GM_XRCVD_10, NULL, b.s, b.n, 0, NULL, NULL);
    int r2 = sa_eval_match(c, GM_XRCVD_2002, NULL, b.s, b.n, 0, NULL, NULL);
    if (r1 < 0 || r2 < 0)
        goto out;
    rc = 0;
    if (r1 == 1 || r2 == 1)
        goto out;
    rc = -1;
    if (sa_eval_get(m, "Received", false, &b) < 0)
        goto out;
    if ((r1 = sa_eval_match(c, GM_RCVD_ESMTPSA, NULL, b.s, b.n, 0, NULL, NULL)) != 0) {
        rc = r1 == 1 ? 0 : -1;
        goto out;
    }
    long ngms = sa_eval_get(m, "X-Gm-Message-State", false, &b);
    size_t lgms = b.n;
    long nss = sa_eval_get(m, "X-Google-Smtp-Source", false, &b);
    if (ngms < 0 || nss < 0)
        goto out;
    rc = !(lgms >= 60 && b.n >= 60);
out:
    sa_eval_buf_free(&b);
    return rc;
}

enum { GR_EZMLM, GR_DLTO, GR_QMAIL, GR_MSN, GR__N };

static bool gated_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) &&
           sa_eval_compile(c, "^contact \\S+\\@\\S+\\; run by ezmlm$", PCRE2_MULTILINE, why, wn) &&
           sa_eval_compile(c, "^mailing list \\S+\\@\\S+", PCRE2_MULTILINE, why, wn) &&
           sa_eval_compile(c, "qmail \\d+ invoked (?:from network|by .{3,20})\\); \\d+ ... \\d+", 0,
                           why, wn) &&
           sa_eval_compile(c, "from groups\\.msn\\.com \\(\\S+\\.msn\\.com ", 0, why, wn);
}

static int gated(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_eval_buf b = {0}, d = {0};
    int rc = -1;
    long n = sa_eval_get(m, "Mailing-List", false, &b);
    if (n < 0)
        goto out;
    if (n > 0) {
        int r = sa_eval_match(c, GR_EZMLM, NULL, b.s, b.n, 0, NULL, NULL);
        if (r < 0)
            goto out;
        if (r == 1) {
            if (sa_eval_get(m, "Delivered-To", false, &d) < 0 ||
                sa_eval_get(m, "Received", false, &b) < 0)
                goto out;
            int a = sa_eval_match(c, GR_DLTO, NULL, d.s, d.n, 0, NULL, NULL);
            int q = sa_eval_match(c, GR_QMAIL, NULL, b.s, b.n, 0, NULL, NULL);
            if (a < 0 || q < 0)
                goto out;
            if (a == 1 && q == 1) {
                rc = 1;
                goto out;
            }
        }
    }
    n = sa_eval_get(m, "Received", false, &b);
    if (n < 0)
        goto out;
    if (n == 0) {
        rc = 1; /* no Received at all: these tests cannot run, SpamAssassin says */
        goto out;
    }
    rc = sa_eval_match(c, GR_MSN, NULL, b.s, b.n, 0, NULL, NULL);
out:
    sa_eval_buf_free(&b);
    sa_eval_buf_free(&d);
    return rc;
}

const struct sa_eval_def sa_eval_forged_defs[] = {
    {"check_for_forged_gmail_received_headers", gmail, gmail_check},
    {"gated_through_received_hdr_remover", gated, gated_check},
    {NULL, NULL, NULL},
};
