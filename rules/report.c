/*
 * report - the SpamAssassin-style report of a message: X-Spam-Status
 * ("Yes, score=12.3 required=5.0 tests=A,B" folded at 76 columns, the
 * names of rules and of plugins' symbols sorted, shadow and __ rules left
 * out), X-Spam-Score ("12.3") and
 * X-Spam-Level (one "*" per point, at most 50).
 *
 * The verdict word is "Yes" when the score reached the required score, and
 * also when the message is refused, discarded or quarantined, by a rule's
 * action or a threshold: a message smtpgate did not let through as ham is
 * spam in the report (a GTUBE refusal scores 0 here, SpamAssassin's 1000);
 * an accepted (allow-listed) one is "No" whatever it scored, as it is not
 * tagged either.
 */
#include "rules/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_html.h"
#include "rules/sa_hdrconf.h"
#include "rules/sa_header.h"
#include "util/alloc.h"

#define REPORT_FOLD 76
#define LEVEL_MAX   50

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Spam as far as a downstream filter is concerned: not delivered as ham. */
static bool judged_spam(const struct rules_outcome *out)
{
    switch (out->verdict) {
    case RULES_REJECT:
    case RULES_TEMPFAIL:
    case RULES_DISCARD:
    case RULES_QUARANTINE:
        return true;
    case RULES_ACCEPT: /* allow-listed: never tagged, so never spam either */
        return false;
    case RULES_CONTINUE:
        break;
    }
    return out->spam;
}

static double round1(double v)
{
    double r = round(v * 10) / 10;
    return r == 0 ? 0 : r; /* no "-0.0" */
}

int rules_report_build(const struct rules *r, const unsigned char *hit,
                       const struct rules_symbol *syms, size_t nsyms,
                       const struct rules_outcome *out, char **status, char **score, char **level)
{
    *status = *score = *level = NULL;
    const char **names = util_calloc(r->n + nsyms + 1, sizeof(char *));
    if (names == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (hit[i] && !r->v[i].shadow && !r->v[i].hidden)
            names[n++] = r->v[i].name;
    for (size_t i = 0; i < nsyms; i++)
        names[n++] = syms[i].name;
    qsort(names, n, sizeof(*names), cmp_str);
    /* a symbol named as a rule is one test */
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
            names[u++] = names[i];
    n = u;
    struct rules_buf b = {0};
    char head[128];
    int hl = snprintf(head, sizeof(head),
                      "%s, score=%.1f required=%.1f tests=", judged_spam(out) ? "Yes" : "No",
                      round1(out->score), round1(out->required));
    rules_buf_add(&b, head, (size_t)hl);
    size_t line = (size_t)hl + strlen("X-Spam-Status: ");
    if (n == 0)
        rules_buf_add(&b, "none", 4);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (i > 0) {
            rules_buf_addc(&b, ',');
            line++;
            if (line + l > REPORT_FOLD) {
                rules_buf_add(&b, "\r\n\t", 3);
                line = 1;
            }
        }
        rules_buf_add(&b, names[i], l);
        line += l;
    }
    free(names);
    *status = rules_buf_cstr(&b);
    int stars = out->score >= 1 ? (int)floor(out->score) : 0;
    if (stars > LEVEL_MAX)
        stars = LEVEL_MAX;
    if (stars > 0 && (*level = util_calloc((size_t)stars + 1, 1)) != NULL)
        memset(*level, '*', (size_t)stars);
    if (util_asprintf(score, "%.1f", round1(out->score)) < 0 || *status == NULL ||
        (stars > 0 && *level == NULL))
        return -1;
    return 0;
}

static int cmp_test(const void *a, const void *b)
{
    return strcmp(((const struct sa_test *)a)->name, ((const struct sa_test *)b)->name);
}

/* "\n" folds as the host wants them: "\r\n". */
static char *crlf(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '\n' ? 2 : 1;
    char *o = util_malloc(n + 1), *w = o;
    if (o == NULL)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '\n')
            *w++ = '\r';
        *w++ = *p;
    }
    *w = '\0';
    return o;
}

int rules_report_sa(const struct rules *r, const unsigned char *hit,
                    const struct rules_symbol *syms, size_t nsyms,
                    const struct rules_outcome *out, const char *const relays[4],
                    const char *host, const char *date, struct rules_header **fields,
                    size_t *nfields)
{
    const struct sa_hdrconf *hc = r->sa_hdr;
    *fields = NULL;
    *nfields = 0;
    struct sa_test *tests = util_calloc(r->n + nsyms + 1, sizeof(*tests));
    const char **subs = util_calloc(r->n + 1, sizeof(*subs));
    if (tests == NULL || subs == NULL) {
        free(tests);
        free(subs);
        return -1;
    }
    size_t nt = 0, ns = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct rule *ru = &r->v[i];
        if (!hit[i] || ru->shadow)
            continue;
        if (ru->hidden)
            subs[ns++] = ru->name;
        else
            tests[nt++] = (struct sa_test){ru->name, ru->score, ru->sa_area ? ru->sa_area : "",
                                           ru->describe};
    }
    for (size_t i = 0; i < nsyms; i++) {
        bool dup = false;
        for (size_t k = 0; k < nt && !dup; k++)
            dup = strcmp(tests[k].name, syms[i].name) == 0;
        if (!dup)
            tests[nt++] = (struct sa_test){syms[i].name, syms[i].score, "", NULL};
    }
    qsort(tests, nt, sizeof(*tests), cmp_test);
    qsort(subs, ns, sizeof(*subs), cmp_str);
    bool spam = judged_spam(out);
    struct sa_tags v = {
        .spam = spam,
        /* PerMsgStatus rounds the score to three decimals before it judges */
        .score = round(out->score * 1000) / 1000,
        .required = out->required,
        .tests = tests,
        .ntests = nt,
        .subtests = subs,
        .nsubtests = ns,
        .version = SA_VERSION,
        .subversion = SA_SUBVERSION,
        .hostname = hc->hostname ? hc->hostname : host,
        .contact = hc->contact,
        .date = date,
        .autolearn = "disabled",
        .wrap_width = hc->wrap_width,
    };
    for (int k = 0; k < 4; k++)
        v.relays[k] = relays[k];
    const struct sa_hdr_tmpl *t = spam ? hc->spam : hc->ham;
    size_t nt_ = spam ? hc->nspam : hc->nham;
    int rc = 0;
    struct rules_header *f = util_calloc(nt_ + 1, sizeof(*f));
    if (f == NULL)
        rc = -1;
    for (size_t i = 0; i < nt_ && rc == 0; i++) {
        char *val = sa_header_value(&v, t[i].name, t[i].template, hc->fold);
        char *name = NULL, *value = val ? crlf(val) : NULL;
        free(val);
        if (value == NULL || util_asprintf(&name, "X-Spam-%s", t[i].name) < 0) {
            free(value);
            rc = -1;
            break;
        }
        f[(*nfields)++] = (struct rules_header){name, value};
    }
    *fields = f;
    free(tests);
    free(subs);
    return rc;
}
