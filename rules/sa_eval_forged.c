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
 *   check_for_fake_aol_relay_in_rcvd()  AOL's rly-xx00 relay names in a
 *       trail AOL's relays did not write
 *   check_for_forged_hotmail_received_headers(),
 *   check_for_no_hotmail_received_headers()  a Hotmail name in a trail
 *       that is not Hotmail's; a Hotmail From with no Hotmail trail
 *   check_for_forged_eudoramail_received_headers(),
 *   check_for_forged_yahoo_received_headers(),
 *   check_for_forged_juno_received_headers()  the same for those services
 *
 * Received is read as SpamAssassin gets it where its MTA added its own
 * field: the session's relay first (sa_eval_get_received), so that a client
 * HELOing as hotmail.com counts here as it does there.
 *
 * What it promises: SpamAssassin's patterns, compiled once at load, over
 * the header values as its get() joins them.
 */
#include <string.h>

#include "rules/sa_eval.h"
#include "rules/sa_relays.h"

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

/* gated's patterns, at the call's next slots (GR_* from the first) */
static bool gated_compile(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_compile(c, "^contact \\S+\\@\\S+\\; run by ezmlm$", PCRE2_MULTILINE, why, wn) &&
           sa_eval_compile(c, "^mailing list \\S+\\@\\S+", PCRE2_MULTILINE, why, wn) &&
           sa_eval_compile(c, "qmail \\d+ invoked (?:from network|by .{3,20})\\); \\d+ ... \\d+", 0,
                           why, wn) &&
           sa_eval_compile(c, "from groups\\.msn\\.com \\(\\S+\\.msn\\.com ", 0, why, wn);
}

static bool gated_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) && gated_compile(c, why, wn);
}

/* The forged-trail tests call it with their own patterns after gated's. */
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
                sa_eval_get_received(m, &b) < 0)
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
    n = sa_eval_get_received(m, &b);
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

/* ---- the forged trails of big mail services (HeaderEval) ---- */

/* SpamAssassin's IP_ADDRESS (Constants.pm), its /x layout taken out */
#define IPA "(?i:(?:\\b(?<!:)(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\b|(?:IPv6:|(?<![a-f0-9:]))(?:(?:(?:[a-f0-9]{1,4}:){6}|::(?:[a-f0-9]{1,4}:){0,5}|(?:[a-f0-9]{1,4}:){1,5}:|[a-f0-9]{1,4}::(?:[a-f0-9]{1,4}:){1,4}|(?:[a-f0-9]{1,4}:){2}:(?:[a-f0-9]{1,4}:){1,3}|(?:[a-f0-9]{1,4}:){3}:(?:[a-f0-9]{1,4}:){1,2}|(?:[a-f0-9]{1,4}:){4}:[a-f0-9]{1,4}:)(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)|(?:[a-f0-9]{1,4}:){7}[a-f0-9]{1,4}|:(?::[a-f0-9]{1,4}){1,7}|(?:[a-f0-9]{1,4}:){1,7}:|[a-f0-9]{1,4}:(?::[a-f0-9]{1,4}){1,6}|(?:[a-f0-9]{1,4}:){2}(?::[a-f0-9]{1,4}){1,5}|(?:[a-f0-9]{1,4}:){3}(?::[a-f0-9]{1,4}){1,4}|(?:[a-f0-9]{1,4}:){4}(?::[a-f0-9]{1,4}){1,3}|(?:[a-f0-9]{1,4}:){5}(?::[a-f0-9]{1,4}){1,2}|(?:[a-f0-9]{1,4}:){6}:[a-f0-9]{1,4}|::)(?![a-f0-9:])))"

/* s/\s+/ /gs */
static void squash(struct sa_eval_buf *b)
{
    size_t k = 0;
    bool in_blank = false;
    for (size_t i = 0; i < b->n; i++) {
        char ch = b->s[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
            if (!in_blank)
                b->s[k++] = ' ';
            in_blank = true;
        } else {
            b->s[k++] = ch;
            in_blank = false;
        }
    }
    b->n = k;
    if (b->s != NULL)
        b->s[k] = '\0';
}

static int match_buf(const struct sa_eval_call *c, size_t k, const struct sa_eval_buf *b)
{
    return sa_eval_match(c, k, NULL, b->s ? b->s : "", b->n, 0, NULL, NULL);
}

/* the From addresses end with domain (pattern k) */
static int from_is(const struct sa_eval_call *c, size_t k, struct rules_msg *m)
{
    struct sa_eval_buf b = {0};
    int rc = sa_eval_get_addrs(m, "From", &b) < 0 ? -1 : match_buf(c, k, &b);
    sa_eval_buf_free(&b);
    return rc;
}

/* get(NAME, undef) =~ pattern k: 0 when the field is not there */
static int field_has(const struct sa_eval_call *c, size_t k, struct rules_msg *m,
                     const char *name)
{
    struct sa_eval_buf b = {0};
    long n = sa_eval_get(m, name, false, &b);
    int rc = n < 0 ? -1 : n == 0 ? 0 : match_buf(c, k, &b);
    sa_eval_buf_free(&b);
    return rc;
}

enum { AOL_RLY, AOL_RELAY, AOL_ESMTP, AOL__N };

static bool aol_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) &&
           sa_eval_compile(c, " rly-[a-z][a-z]\\d\\d\\.", PCRE2_CASELESS, why, wn) &&
           sa_eval_compile(c, "/AOL-\\d+\\.\\d+\\.\\d+\\)", 0, why, wn) &&
           sa_eval_compile(c, "ESMTP id (?:RELAY|MAILRELAY|MAILIN)", 0, why, wn);
}

/* check_for_fake_aol_relay_in_rcvd: AOL's relay names outside AOL's relays */
static int fake_aol(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_eval_buf b = {0};
    int rc = -1;
    if (sa_eval_get_received(m, &b) < 0)
        goto out;
    squash(&b);
    if ((rc = match_buf(c, AOL_RLY, &b)) != 1)
        goto out;
    int a = match_buf(c, AOL_RELAY, &b), e = match_buf(c, AOL_ESMTP, &b);
    rc = a < 0 || e < 0 ? -1 : a == 0 && e == 0;
out:
    sa_eval_buf_free(&b);
    return rc;
}

enum { HM_PICKUP = GR__N, HM_IP, HM_ORIG, HM_BY_IP, HM_BY_ORIG, HM_NAMED, HM_FROM, HM__N };

static bool hotmail_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) && gated_compile(c, why, wn) &&
           sa_eval_compile(c, "from mail pickup service by hotmail\\.com with Microsoft SMTPSVC;",
                           0, why, wn) &&
           sa_eval_compile(c, IPA, 0, why, wn) &&
           sa_eval_compile(c, "hotmail\\.com|msonline\\-outlook", 0, why, wn) &&
           /* the forms that are Hotmail's own when X-Originating-Ip has an address */
           sa_eval_compile(c,
                           "from (?:\\S*\\.)?hotmail.com \\(\\S+\\.hotmail(?:\\.msn)?\\.com[ \\)]|"
                           "from \\S*\\.hotmail.com \\(\\[" IPA "\\][ \\):]|"
                           "from \\S+ by \\S+\\.hotmail(?:\\.msn)?\\.com with HTTP\\;|"
                           "from \\[66\\.218.\\S+\\] by \\S+\\.yahoo\\.com",
                           0, why, wn) &&
           /* and when X-OriginatorOrg names Hotmail or Outlook */
           sa_eval_compile(c,
                           "from \\S*\\.outbound\\.protection\\.outlook\\.com \\(\\S+\\.outbound\\."
                           "protection\\.outlook\\.com[ \\)]|"
                           "from \\S*\\.(?:eur|nam)prd\\d+\\.prod\\.outlook\\.com \\(" IPA "\\)",
                           0, why, wn) &&
           sa_eval_compile(c, "(?:from |HELO |helo=)\\S*hotmail\\.com\\b", 0, why, wn) &&
           sa_eval_compile(c, "\\bhotmail\\.com$", PCRE2_CASELESS, why, wn);
}

/* HeaderEval's _check_for_forged_hotmail_received_headers: 1 a Hotmail name
 * in a trail that is not Hotmail's, 2 a Hotmail From without any, 0 neither.
 * (Its exception for MSN Groups, a service gone since 2009, is not here.) */
static int hotmail(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_eval_buf b = {0};
    int rc = -1, r;
    if (sa_eval_get_received(m, &b) < 0)
        goto out;
    squash(&b);
    if ((r = match_buf(c, HM_PICKUP, &b)) != 0) {
        rc = r < 0 ? -1 : 0;
        goto out;
    }
    int ip = field_has(c, HM_IP, m, "X-Originating-Ip");
    int orig = field_has(c, HM_ORIG, m, "X-OriginatorOrg");
    int g = gated(c, m);
    if (ip < 0 || orig < 0 || g < 0)
        goto out;
    rc = 0;
    if (g == 1)
        goto out;
    int by_ip = match_buf(c, HM_BY_IP, &b), by_orig = match_buf(c, HM_BY_ORIG, &b);
    if (by_ip < 0 || by_orig < 0) {
        rc = -1;
        goto out;
    }
    if ((by_ip == 1 && ip == 1) || (by_orig == 1 && orig == 1))
        goto out;
    if ((r = match_buf(c, HM_NAMED, &b)) != 0) {
        rc = r < 0 ? -1 : 1;
        goto out;
    }
    r = from_is(c, HM_FROM, m);
    rc = r < 0 ? -1 : r == 1 ? 2 : 0;
out:
    sa_eval_buf_free(&b);
    return rc;
}

static int forged_hotmail(const struct sa_eval_call *c, struct rules_msg *m)
{
    int r = hotmail(c, m);
    return r < 0 ? -1 : r == 1;
}

static int no_hotmail(const struct sa_eval_call *c, struct rules_msg *m)
{
    int r = hotmail(c, m);
    return r < 0 ? -1 : r == 2;
}

enum { EU_FROM = GR__N, EU_IP, EU_WHOWHERE, EU__N };

static bool eudora_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) && gated_compile(c, why, wn) &&
           sa_eval_compile(c, "\\beudoramail\\.com$", PCRE2_CASELESS, why, wn) &&
           sa_eval_compile(c, IPA, 0, why, wn) &&
           sa_eval_compile(c, "by \\S*whowhere.com\\;", 0, why, wn);
}

static int eudora(const struct sa_eval_call *c, struct rules_msg *m)
{
    int r = from_is(c, EU_FROM, m);
    if (r != 1)
        return r;
    struct sa_eval_buf b = {0};
    int rc = -1;
    if (sa_eval_get_received(m, &b) < 0)
        goto out;
    squash(&b);
    int ip = field_has(c, EU_IP, m, "X-Sender-Ip"), g = gated(c, m);
    int w = match_buf(c, EU_WHOWHERE, &b);
    if (ip < 0 || g < 0 || w < 0)
        goto out;
    rc = !(g == 1 || (w == 1 && ip == 1));
out:
    sa_eval_buf_free(&b);
    return rc;
}

enum { YA_FROM = GR__N, YA_TRUSTED, YA_UNTRUSTED, YA_OWN, YA_BULK, YA_REPLY, YA__N };

static bool yahoo_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) && gated_compile(c, why, wn) &&
           sa_eval_compile(c, "\\byahoo\\.com$", PCRE2_CASELESS, why, wn) &&
           sa_eval_compile(c, " rdns=\\S+\\.yahoo\\.com ", 0, why, wn) &&
           sa_eval_compile(c, "^[^\\]]+ rdns=\\S+\\.yahoo\\.com ", 0, why, wn) &&
           /* Yahoo's own handovers */
           sa_eval_compile(c,
                           "by web\\S+\\.mail\\S*\\.yahoo\\.com via HTTP|"
                           "by sonic\\S+\\.consmr\\.mail\\S*\\.yahoo\\.com with HTTP|"
                           "by smtp\\S+\\.yahoo\\.com with SMTP|"
                           "from \\[" IPA "\\] by \\S+\\.(?:groups|scd|dcn)\\.yahoo\\.com with NNFMP|"
                           "by \\w+\\.\\w+\\.yahoo\\.com \\(\\d+\\.\\d+\\.\\d+/\\d+\\.\\d+\\.\\d+\\)"
                           "(?: with ESMTP)? id \\w+",
                           0, why, wn) &&
           sa_eval_compile(c, "\\bmailer\\d+\\.bulk\\.scd\\.yahoo\\.com\\b", 0, why, wn) &&
           sa_eval_compile(c, "\\@reply\\.yahoo\\.com$", PCRE2_CASELESS, why, wn);
}

static int yahoo(const struct sa_eval_call *c, struct rules_msg *m)
{
    int r = from_is(c, YA_FROM, m);
    if (r != 1)
        return r;
    struct sa_eval_buf b = {0}, t = {0};
    int rc = -1;
    if (sa_eval_get_received(m, &b) < 0)
        goto out;
    long rf = sa_eval_get(m, "Resent-From", false, &t);
    long rt = rf > 0 ? sa_eval_get(m, "Resent-To", false, &t) : 0;
    if (rf < 0 || rt < 0)
        goto out;
    if (rf > 0 && rt > 0) {
        long nx = sa_eval_get(m, "X-Received", false, &t);
        if (nx < 0)
            goto out;
        if (nx > 0) {
            sa_eval_buf_free(&b);
            b = t;
            t = (struct sa_eval_buf){0};
        }
    }
    squash(&b);
    int g = gated(c, m);
    if (g != 0) {
        rc = g < 0 ? -1 : 0;
        goto out;
    }
    const struct sa_relays *rl = sa_relays_of(m);
    if (rl == NULL)
        goto out;
    const char *ts = rl->str[SA_RL_TRUSTED], *us = rl->str[SA_RL_UNTRUSTED];
    int a = sa_eval_match(c, YA_TRUSTED, NULL, ts, strlen(ts), 0, NULL, NULL);
    int u = sa_eval_match(c, YA_UNTRUSTED, NULL, us, strlen(us), 0, NULL, NULL);
    int own = match_buf(c, YA_OWN, &b), bulk = match_buf(c, YA_BULK, &b);
    int reply = from_is(c, YA_REPLY, m);
    if (a < 0 || u < 0 || own < 0 || bulk < 0 || reply < 0)
        goto out;
    rc = !(a == 1 || u == 1 || own == 1 || (bulk == 1 && reply == 1));
out:
    sa_eval_buf_free(&b);
    sa_eval_buf_free(&t);
    return rc;
}

enum { JU_FROM = GR__N, JU_RCVD, JU_COOKIE, JU__N };

static bool juno_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) && gated_compile(c, why, wn) &&
           sa_eval_compile(c, "\\bjuno\\.com$", PCRE2_CASELESS, why, wn) &&
           sa_eval_compile(c, "from.*\\b(?:juno|untd)\\.com.*[\\[\\(]" IPA "[\\]\\)].*by", 0, why,
                           wn) &&
           sa_eval_compile(c, " cookie\\.(?:juno|untd)\\.com ", 0, why, wn);
}

/* check_for_forged_juno_received_headers.  Without X-Originating-IP every
 * branch there ends in a hit (its last test wants an address in that empty
 * field), so only the other case reads the trail. */
static int juno(const struct sa_eval_call *c, struct rules_msg *m)
{
    int r = from_is(c, JU_FROM, m);
    if (r != 1)
        return r;
    int g = gated(c, m);
    if (g != 0)
        return g < 0 ? -1 : 0;
    struct sa_eval_buf x = {0}, b = {0};
    int rc = -1;
    long nx = sa_eval_get(m, "X-Originating-IP", false, &x);
    if (nx < 0)
        goto out;
    rc = 1;
    if (nx == 0 || x.n == 0)
        goto out;
    rc = -1;
    if (sa_eval_get_received(m, &b) < 0)
        goto out;
    int a = match_buf(c, JU_RCVD, &b), k = match_buf(c, JU_COOKIE, &b);
    if (a < 0 || k < 0)
        goto out;
    rc = 1;
    if (a == 0 && k == 0)
        goto out;
    if (sa_eval_get(m, "X-Mailer", false, &x) < 0) {
        rc = -1;
        goto out;
    }
    rc = x.s == NULL || strstr(x.s, "Juno ") == NULL;
out:
    sa_eval_buf_free(&x);
    sa_eval_buf_free(&b);
    return rc;
}

const struct sa_eval_def sa_eval_forged_defs[] = {
    {"check_for_forged_gmail_received_headers", gmail, gmail_check},
    {"gated_through_received_hdr_remover", gated, gated_check},
    {"check_for_fake_aol_relay_in_rcvd", fake_aol, aol_check},
    {"check_for_forged_hotmail_received_headers", forged_hotmail, hotmail_check},
    {"check_for_no_hotmail_received_headers", no_hotmail, hotmail_check},
    {"check_for_forged_eudoramail_received_headers", eudora, eudora_check},
    {"check_for_forged_yahoo_received_headers", yahoo, yahoo_check},
    {"check_for_forged_juno_received_headers", juno, juno_check},
    {NULL, NULL, NULL},
};
