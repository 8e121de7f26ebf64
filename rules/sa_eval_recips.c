/*
 * sa_eval_recips - SpamAssassin's HeaderEval tests of the envelope sender
 * and the recipients, natively:
 *
 *   check_for_matching_env_and_hdr_from()  the first EnvelopeFrom and From
 *                                 addresses are the same (case-insensitive;
 *                                 two absent ones are the same too)
 *   check_ratware_envelope_from() the EnvelopeFrom holds "DOMAIN?USER@" of
 *                                 the first To address USER@HOST (DOMAIN the
 *                                 registered domain of HOST, with a valid
 *                                 TLD), not an SRS address
 *   sorted_recipients()           7 or more To/Cc addresses in sorted order
 *   similar_recipients(MIN,MAX)   5 or more To/Cc (else also Bcc) addresses
 *                                 whose pairs share the first two octets of
 *                                 the user or of a different host, in a
 *                                 ratio within [MIN, MAX) ('undef': no bound)
 *
 * What it promises: SpamAssassin's results on the same addresses (adjacent
 * repeats dropped, at most 256, as _check_recipients takes them).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_addrs.h"
#include "rules/sa_eval.h"
#include "rules/sa_lists.h"
#include "util/alloc.h"

#define TOCC_SORTED_COUNT  7
#define TOCC_SIMILAR_COUNT 5
#define TOCC_ADDR_MAX      256

/* get('NAME:addr') in scalar context: the first address, or "" */
static int first_addr(struct rules_msg *m, const char *name, char **out)
{
    struct sa_addrs a = {0};
    int rc = sa_addrs_field(m, name, false, false, &a);
    *out = NULL;
    if (rc == 0)
        *out = util_strdup(a.n > 0 ? a.v[0] : "");
    sa_addrs_free(&a);
    return *out == NULL ? -1 : 0;
}

static int env_and_hdr_from(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    char *env = NULL, *from = NULL;
    int rc = -1;
    if (first_addr(m, "EnvelopeFrom", &env) == 0 && first_addr(m, "From", &from) == 0)
        rc = strcasecmp(env, from) == 0; /* lc on both: ASCII */
    free(env);
    free(from);
    return rc;
}

/* pattern octets quoted for PCRE2 into b */
static int add_quoted(struct sa_eval_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && (unsigned char)s[i] < 0x80 &&
            sa_eval_buf_add(b, "\\", 1) != 0)
            return -1;
        if (sa_eval_buf_add(b, s + i, 1) != 0)
            return -1;
    }
    return 0;
}

static int ratware_envelope_from(const struct sa_eval_call *c, struct rules_msg *m)
{
    char *to = NULL, *from = NULL;
    int rc = -1;
    struct sa_eval_buf re = {0};
    if (first_addr(m, "To", &to) != 0 || first_addr(m, "EnvelopeFrom", &from) != 0)
        goto out;
    rc = 0;
    if (*from == '\0' || *to == '\0')
        goto out;
    /* /^SRS\d[=+-]/i */
    if (strncasecmp(from, "srs", 3) == 0 && isdigit((unsigned char)from[3]) &&
        (from[4] == '=' || from[4] == '+' || from[4] == '-'))
        goto out;
    /* /^([^@]+)\@(.+)$/ */
    const char *at = strchr(to, '@');
    if (at == NULL || at == to || at[1] == '\0')
        goto out;
    size_t tn = strlen(at + 1);
    char *dom = util_malloc(tn + 1);
    if (dom == NULL) {
        rc = -1;
        goto out;
    }
    size_t dn = sa_lists_trim_domain(c->lists, at + 1, tn, dom, tn + 1);
    /* is_domain_valid: no blanks, a dot, a valid TLD after the last */
    const char *dot = strrchr(dom, '.');
    bool blank = false;
    for (size_t i = 0; i < dn; i++)
        blank |= isspace((unsigned char)dom[i]) != 0;
    if (dn == 0 || blank || dot == NULL ||
        !sa_lists_tld_valid(c->lists, dot + 1, strlen(dot + 1))) {
        free(dom);
        goto out;
    }
    /* /\b\Q$dom\E.\Q$user\E@/i */
    int q = sa_eval_buf_add(&re, "\\b", 2) || add_quoted(&re, dom, dn) ||
            sa_eval_buf_add(&re, ".", 1) || add_quoted(&re, to, (size_t)(at - to)) ||
            sa_eval_buf_add(&re, "@", 1);
    free(dom);
    if (q != 0) {
        rc = -1;
        goto out;
    }
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re.s, re.n, PCRE2_CASELESS, &err, &off, NULL);
    if (code == NULL)
        goto out;
    rc = sa_eval_match(c, 0, code, from, strlen(from), 0, NULL, NULL);
    pcre2_code_free(code);
out:
    sa_eval_buf_free(&re);
    free(to);
    free(from);
    return rc;
}

struct recips {
    char **v;
    size_t n;
};

/* _check_recipients' addresses: ToCc, then Bcc when fewer than 5 */
static int recipients(struct rules_msg *m, struct sa_addrs *in, struct recips *r)
{
    static const char *const names[] = {"To", "Cc"};
    for (size_t i = 0; i < 2; i++)
        if (sa_addrs_field(m, names[i], false, false, in) != 0)
            return -1;
    if (in->n < TOCC_SIMILAR_COUNT && sa_addrs_field(m, "Bcc", false, false, in) != 0)
        return -1;
    r->v = util_calloc(in->n ? in->n : 1, sizeof(*r->v));
    if (r->v == NULL)
        return -1;
    const char *prev = "";
    for (size_t i = 0; i < in->n; i++) {
        const char *cur = in->v[i];
        /* while (my $current = shift @inputs): a false value ends it */
        if (cur[0] == '\0' || strcmp(cur, "0") == 0)
            break;
        if (strcasecmp(cur, prev) != 0)
            r->v[r->n++] = in->v[i], prev = cur;
        if (r->n == TOCC_ADDR_MAX)
            break;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sorted(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    struct sa_addrs in = {0};
    struct recips r = {0};
    int rc = -1;
    if (recipients(m, &in, &r) != 0)
        goto out;
    rc = 0;
    if (r.n < TOCC_SORTED_COUNT)
        goto out;
    char **s = util_calloc(r.n, sizeof(*s));
    if (s == NULL) {
        rc = -1;
        goto out;
    }
    memcpy(s, r.v, r.n * sizeof(*s));
    qsort(s, r.n, sizeof(*s), cmp_str);
    /* join(',', @address) eq join(',', sort @address) */
    struct sa_eval_buf x = {0}, y = {0};
    bool nomem = false;
    for (size_t i = 0; i < r.n; i++) {
        nomem |= (i > 0 && (sa_eval_buf_add(&x, ",", 1) || sa_eval_buf_add(&y, ",", 1))) ||
                 sa_eval_buf_add(&x, r.v[i], strlen(r.v[i])) ||
                 sa_eval_buf_add(&y, s[i], strlen(s[i]));
    }
    rc = nomem ? -1 : x.n == y.n && memcmp(x.s, y.s, x.n) == 0;
    sa_eval_buf_free(&x);
    sa_eval_buf_free(&y);
    free(s);
out:
    free(r.v);
    sa_addrs_free(&in);
    return rc;
}

static bool check_similar(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && sa_eval_number(c, 0, true, why, wn) &&
           sa_eval_number(c, 1, true, why, wn);
}

/* substr($s, 0, 2), with a missing element as undef: "" */
static void prefix2(const char *s, char out[3])
{
    size_t n = s ? strlen(s) : 0;
    n = n < 2 ? n : 2;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
}

static int similar(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_addrs in = {0};
    struct recips r = {0};
    const char **fqhn = NULL;
    int rc = -1;
    if (recipients(m, &in, &r) != 0)
        goto out;
    double ratio = 0;
    if (r.n >= TOCC_SIMILAR_COUNT) {
        /* map { m/\@(.*)/ } @address: those without an '@' give nothing,
         * so the later hosts shift down, as in SpamAssassin */
        fqhn = util_calloc(r.n, sizeof(*fqhn));
        if (fqhn == NULL)
            goto out;
        size_t nh = 0;
        for (size_t i = 0; i < r.n; i++) {
            const char *at = strchr(r.v[i], '@');
            if (at != NULL)
                fqhn[nh++] = at + 1;
        }
        double hits = 0, combos = 0;
        for (size_t i = 0; i < r.n; i++) {
            for (size_t j = i + 1; j < r.n; j++) {
                char ui[3], uj[3], hi[3], hj[3];
                prefix2(r.v[i], ui);
                prefix2(r.v[j], uj);
                prefix2(i < nh ? fqhn[i] : NULL, hi);
                prefix2(j < nh ? fqhn[j] : NULL, hj);
                hits += strcmp(ui, uj) == 0;
                hits += strcmp(hi, hj) == 0 &&
                        strcmp(i < nh ? fqhn[i] : "", j < nh ? fqhn[j] : "") != 0;
                combos++;
            }
        }
        ratio = hits / combos;
    }
    rc = (c->undef[0] || ratio >= c->num[0]) && (c->undef[1] || ratio < c->num[1]);
out:
    free(fqhn);
    free(r.v);
    sa_addrs_free(&in);
    return rc;
}

const struct sa_eval_def sa_eval_recips_defs[] = {
    {"check_for_matching_env_and_hdr_from", env_and_hdr_from, NULL},
    {"check_ratware_envelope_from", ratware_envelope_from, NULL},
    {"sorted_recipients", sorted, NULL},
    {"similar_recipients", similar, check_similar},
    {NULL, NULL, NULL},
};
