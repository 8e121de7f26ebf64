/*
 * sa_addrs - the addresses of SpamAssassin's list tests (see sa_addrs.h),
 * after PerMsgStatus.pm's _get, all_from_addrs and all_to_addrs.
 */
#include "rules/sa_addrs.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/sa_lists.h"
#include "util/alloc.h"

int sa_addrs_add(struct sa_addrs *a, const char *s, size_t n)
{
    if (util_grow(&a->v, &a->cap, a->n + 1, sizeof(*a->v)) != 0)
        return -1;
    if ((a->v[a->n] = util_memdup(s, n)) == NULL)
        return -1;
    a->n++;
    return 0;
}

bool sa_addrs_has(const struct sa_addrs *a, const char *s)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], s) == 0)
            return true;
    return false;
}

void sa_addrs_free(struct sa_addrs *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    *a = (struct sa_addrs){0};
}

static int add_lower(struct sa_addrs *a, const char *s, bool lower)
{
    if (sa_addrs_add(a, s, strlen(s)) != 0)
        return -1;
    if (lower)
        for (char *p = a->v[a->n - 1]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return 0;
}

int sa_addrs_field(struct rules_msg *m, const char *name, bool first, bool lower,
                   struct sa_addrs *a)
{
    if (strcmp(name, "EnvelopeFrom") == 0) {
        /* the evaluator's EnvelopeFrom is an address already; the null
         * sender has none */
        const char *e = rules_msg_envelope_from(m);
        return e == NULL || *e == '\0' ? 0 : add_lower(a, e, lower);
    }
    size_t nf = rules_msg_field_count(m);
    for (size_t i = 0; i < nf; i++) {
        struct rules_msg_field *f = rules_msg_field(m, i);
        if (strcasecmp(f->name, name) != 0)
            continue;
        rules_msg_field_addrs(m, i);
        if (rules_msg_nomem(m))
            return -1;
        for (size_t k = 0; k < f->naddrs; k++)
            if (add_lower(a, f->addrs[k], lower) != 0)
                return -1;
        if (first)
            break;
    }
    return 0;
}

/* drops a[from..] that are empty or seen before */
static void dedup(struct sa_addrs *a, size_t from)
{
    size_t k = from;
    for (size_t i = from; i < a->n; i++) {
        bool dup = a->v[i][0] == '\0';
        for (size_t j = from; j < k && !dup; j++)
            dup = strcmp(a->v[j], a->v[i]) == 0;
        if (dup)
            free(a->v[i]);
        else
            a->v[k++] = a->v[i];
    }
    a->n = k;
}

int sa_addrs_all_from(struct rules_msg *m, struct sa_addrs *a)
{
    size_t from = a->n;
    if (sa_addrs_field(m, "Resent-From", true, false, a) != 0)
        return -1;
    if (a->n == from) {
        static const char *const names[] = {"From", "Envelope-Sender", "Resent-Sender",
                                            "X-Envelope-From", "EnvelopeFrom"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (sa_addrs_field(m, names[i], false, false, a) != 0)
                return -1;
        /* tr/././s */
        for (size_t i = from; i < a->n; i++) {
            char *s = a->v[i], *d = s;
            for (; *s; s++)
                if (!(*s == '.' && d > a->v[i] && d[-1] == '.'))
                    *d++ = *s;
            *d = '\0';
        }
    }
    dedup(a, from);
    return 0;
}


int sa_addrs_all_to(struct rules_msg *m, const pcre2_code *for_re, struct sa_addrs *a)
{
    size_t from = a->n;
    if (sa_addrs_field(m, "Resent-To", true, false, a) != 0 ||
        sa_addrs_field(m, "Resent-Cc", true, false, a) != 0)
        return -1;
    if (a->n == from) {
        /* the recipient of the newest three Received fields, as fetchmail
         * leaves it for sendmail */
        size_t nf = rules_msg_field_count(m), seen = 0;
        pcre2_match_data *md = for_re ? pcre2_match_data_create_from_pattern(for_re, NULL) : NULL;
        if (for_re != NULL && md == NULL)
            return -1;
        for (size_t i = 0; i < nf && seen < 3 && md != NULL; i++) {
            struct rules_msg_field *f = rules_msg_field(m, i);
            if (strcasecmp(f->name, "Received") != 0)
                continue;
            seen++;
            const char *v = rules_msg_field_decoded(m, i);
            if (v == NULL) {
                pcre2_match_data_free(md);
                return -1;
            }
            if (pcre2_match(for_re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL) < 0)
                continue;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (sa_fqdn_valid(v + ov[4], ov[5] - ov[4]) &&
                sa_addrs_add(a, v + ov[2], ov[3] - ov[2]) != 0) {
                pcre2_match_data_free(md);
                return -1;
            }
        }
        pcre2_match_data_free(md);
        static const char *const names[] = {"To",
                                            "Apparently-To",
                                            "Delivered-To",
                                            "Envelope-Recipients",
                                            "Apparently-Resent-To",
                                            "X-Envelope-To",
                                            "Envelope-To",
                                            "X-Delivered-To",
                                            "X-Original-To",
                                            "X-Rcpt-To",
                                            "X-Real-To",
                                            "Cc"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (sa_addrs_field(m, names[i], false, false, a) != 0)
                return -1;
    }
    /* grep { !$seen{$_}++ }: empty ones stay */
    size_t k = from;
    for (size_t i = from; i < a->n; i++) {
        bool dup = false;
        for (size_t j = from; j < k && !dup; j++)
            dup = strcmp(a->v[j], a->v[i]) == 0;
        if (dup)
            free(a->v[i]);
        else
            a->v[k++] = a->v[i];
    }
    a->n = k;
    return 0;
}
