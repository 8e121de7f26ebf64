/*
 * sa_eval - the registry of SpamAssassin's eval functions run natively (see
 * sa_eval.h).  The functions live one concern a file (sa_eval_header.c,
 * sa_eval_date.c, ...), each with its table; this file only finds a name in
 * them and checks and runs the call.
 */
#include "rules/sa_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "util/alloc.h"

static const struct sa_eval_def *const tables[] = {
    sa_eval_header_defs,
    sa_eval_date_defs,
    sa_eval_forged_defs,
    sa_eval_body_defs,
    sa_eval_relay_defs,
    sa_eval_freemail_defs,
    sa_eval_wlbl_defs,
    sa_eval_rcvdwl_defs,
    sa_eval_subject_defs,
    sa_eval_recips_defs,
    sa_eval_mime_defs,
    sa_eval_image_defs,
    sa_eval_html_defs,
    sa_eval_alt_defs,
    sa_eval_fns_defs,
    sa_eval_av_defs,
    sa_eval_uri_defs,
    sa_eval_https_defs,
    sa_eval_vbounce_defs,
    sa_eval_dnsbl_defs,
};

const struct sa_eval_def *sa_eval_find(const char *name)
{
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const struct sa_eval_def *d = tables[t]; d->name != NULL; d++)
            if (strcmp(d->name, name) == 0)
                return d;
    return NULL;
}

bool sa_eval_nargs(struct sa_eval_call *c, size_t min, size_t max, char *why, size_t wn)
{
    if (c->args.n >= min && c->args.n <= max)
        return true;
    if (min == max)
        snprintf(why, wn, "eval %s takes %zu argument%s, not %zu", c->def->name, min,
                 min == 1 ? "" : "s", c->args.n);
    else
        snprintf(why, wn, "eval %s takes %zu to %zu arguments, not %zu", c->def->name, min, max,
                 c->args.n);
    return false;
}

bool sa_eval_number(struct sa_eval_call *c, size_t i, bool undef_ok, char *why, size_t wn)
{
    const char *s = c->args.v[i];
    if (undef_ok && strcmp(s, "undef") == 0) {
        c->undef[i] = true;
        return true;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = NULL;
    double v = strtod(s, &end);
    /* Perl's numbers are decimal: no hex, inf or nan from a rule file */
    bool decimal =
        end != s && (s[0] == '-' || s[0] == '+' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9'));
    if (!decimal || !isfinite(v) || memchr(s, 'x', (size_t)(end - s)) != NULL ||
        memchr(s, 'X', (size_t)(end - s)) != NULL) {
        snprintf(why, wn, "eval %s: argument %zu (%.40s) is not a number", c->def->name, i + 1,
                 c->args.v[i]);
        return false;
    }
    c->num[i] = v;
    return true;
}

void sa_eval_call_free(struct sa_eval_call *c)
{
    if (c == NULL)
        return;
    sa_eval_args_free(&c->args);
    for (size_t i = 0; i < c->nre; i++)
        pcre2_code_free(c->re[i]);
    sa_lists_unref(c->lists);
    free(c);
}

enum sa_eval_new_rc sa_eval_call_new(const char *name, const char *args, struct sa_eval_call **out,
                                     char *why, size_t wn)
{
    *out = NULL;
    const struct sa_eval_def *d = sa_eval_find(name);
    if (d == NULL)
        return SA_EVAL_NEW_UNKNOWN;
    struct sa_eval_call *c = util_calloc(1, sizeof(*c));
    if (c == NULL)
        return SA_EVAL_NEW_NOMEM;
    c->def = d;
    enum sa_eval_args_rc rc = sa_eval_args_parse(args, args ? strlen(args) : 0, &c->args);
    if (rc == SA_EVAL_ARGS_NOMEM) {
        free(c);
        return SA_EVAL_NEW_NOMEM;
    }
    if (rc != SA_EVAL_ARGS_OK) {
        snprintf(why, wn, "eval %s: %s", name,
                 rc == SA_EVAL_ARGS_SYNTAX ? "syntax error in its arguments"
                                           : "too many arguments");
        free(c);
        return SA_EVAL_NEW_BAD;
    }
    bool ok = d->check ? d->check(c, why, wn) : sa_eval_nargs(c, 0, 0, why, wn);
    if (!ok) {
        sa_eval_call_free(c);
        return SA_EVAL_NEW_BAD;
    }
    *out = c;
    return SA_EVAL_NEW_OK;
}

int sa_eval_run(const struct sa_eval_call *c, struct rules_msg *m)
{
    return c->def->run(c, m);
}

int sa_eval_buf_add(struct sa_eval_buf *b, const char *s, size_t n)
{
    if (util_grow(&b->s, &b->cap, b->n + n + 1, 1) != 0)
        return -1;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

void sa_eval_buf_free(struct sa_eval_buf *b)
{
    free(b->s);
    *b = (struct sa_eval_buf){0};
}

/* s/\r?\n\s+/ /g over the value, as SpamAssassin unfolds raw values */
static int add_unfolded(struct sa_eval_buf *b, const char *v, size_t len)
{
    while (len > 0 && (*v == ' ' || *v == '\t'))
        v++, len--;
    for (size_t j = 0; j < len; j++) {
        size_t e = j;
        if (v[e] == '\r' && e + 1 < len && v[e + 1] == '\n')
            e++;
        if (v[e] == '\n' && e + 1 < len && (v[e + 1] == ' ' || v[e + 1] == '\t')) {
            while (e + 1 < len &&
                   (v[e + 1] == ' ' || v[e + 1] == '\t' || v[e + 1] == '\r' || v[e + 1] == '\n'))
                e++;
            if (sa_eval_buf_add(b, " ", 1) != 0)
                return -1;
            j = e;
            continue;
        }
        if (sa_eval_buf_add(b, v + j, 1) != 0)
            return -1;
    }
    return 0;
}

long sa_eval_get(struct rules_msg *m, const char *name, bool raw, struct sa_eval_buf *b)
{
    b->n = 0;
    if (sa_eval_buf_add(b, "", 0) != 0)
        return -1;
    long nv = 0;
    size_t nf = rules_msg_field_count(m);
    for (size_t i = 0; i < nf; i++) {
        struct rules_msg_field *f = rules_msg_field(m, i);
        if (strcasecmp(f->name, name) != 0)
            continue;
        if (raw) {
            if (add_unfolded(b, f->raw, f->raw_len) != 0)
                return -1;
        } else {
            const char *v = rules_msg_field_decoded(m, i);
            if (v == NULL || sa_eval_buf_add(b, v, strlen(v)) != 0)
                return -1;
        }
        if (sa_eval_buf_add(b, "\n", 1) != 0)
            return -1;
        nv++;
    }
    return nv;
}

long sa_eval_get_addrs(struct rules_msg *m, const char *name, struct sa_eval_buf *b)
{
    b->n = 0;
    if (sa_eval_buf_add(b, "", 0) != 0)
        return -1;
    long nv = 0;
    size_t nf = rules_msg_field_count(m);
    for (size_t i = 0; i < nf; i++) {
        struct rules_msg_field *f = rules_msg_field(m, i);
        if (strcasecmp(f->name, name) != 0)
            continue;
        rules_msg_field_addrs(m, i);
        for (size_t a = 0; a < f->naddrs; a++) {
            if ((nv > 0 && sa_eval_buf_add(b, "\n", 1) != 0) ||
                sa_eval_buf_add(b, f->addrs[a], strlen(f->addrs[a])) != 0)
                return -1;
            nv++;
        }
    }
    return rules_msg_nomem(m) ? -1 : nv;
}

bool sa_eval_compile(struct sa_eval_call *c, const char *pattern, uint32_t flags, char *why,
                     size_t wn)
{
    int err;
    PCRE2_SIZE off;
    if (c->nre == SA_EVAL_RE_MAX) {
        snprintf(why, wn, "eval %s: too many patterns", c->def->name);
        return false;
    }
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags, &err, &off, NULL);
    if (re == NULL) {
        snprintf(why, wn, "eval %s: its pattern does not compile", c->def->name);
        return false;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    c->re[c->nre++] = re;
    return true;
}

int sa_eval_match(const struct sa_eval_call *c, size_t k, const pcre2_code *re, const char *s,
                  size_t n, unsigned g, size_t *gs, size_t *gl)
{
    if (re == NULL)
        re = c->re[k];
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL)
        return -1;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    int out = rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
    if (out == 1 && gs != NULL) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if ((int)g < rc && ov[2 * g] != PCRE2_UNSET) {
            *gs = ov[2 * g];
            *gl = ov[2 * g + 1] - ov[2 * g];
        } else {
            *gs = *gl = 0;
        }
    }
    pcre2_match_data_free(md);
    return out;
}
