/*
 * sa_hdrconf - SpamAssassin's header and report settings (see
 * sa_hdrconf.h).  The syntax checks are Conf.pm's regexes written out:
 * add_header /^(ham|spam|all)\s+([A-Za-z0-9_-]+)\s+(.*?)\s*$/, numbers
 * /^[+-]?\d+(?:\.\d*)?$/, booleans 0/1/yes/no.  A malformed line changes
 * nothing, as SpamAssassin refuses it.
 */
#include "rules/sa_hdrconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

struct sa_hdrconf *sa_hdrconf_new(void)
{
    struct sa_hdrconf *c = util_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->report = util_strdup("");
    c->contact = util_strdup("the administrator of that system");
    c->required = 5;
    c->fold = true;
    c->wrap_width = 75;
    if (c->report == NULL || c->contact == NULL) {
        sa_hdrconf_free(c);
        return NULL;
    }
    return c;
}

static void free_list(struct sa_hdr_tmpl *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].template);
    }
    free(v);
}

void sa_hdrconf_free(struct sa_hdrconf *c)
{
    if (c == NULL)
        return;
    free_list(c->spam, c->nspam);
    free_list(c->ham, c->nham);
    free(c->report);
    free(c->contact);
    free(c->hostname);
    free(c);
}

static bool is_blank(char ch)
{
    return isspace((unsigned char)ch) != 0;
}

/* (ham|spam|all)\s+([A-Za-z0-9_-]+): 1 ham, 2 spam, 3 all; *rest after it */
static int which_and_name(const char *v, size_t n, const char **name, size_t *nn, size_t *rest)
{
    int which = 0;
    size_t i = 0;
    if (n >= 3 && memcmp(v, "ham", 3) == 0)
        which = 1, i = 3;
    else if (n >= 4 && memcmp(v, "spam", 4) == 0)
        which = 2, i = 4;
    else if (n >= 3 && memcmp(v, "all", 3) == 0)
        which = 3, i = 3;
    else
        return 0;
    size_t b = i;
    while (i < n && is_blank(v[i]))
        i++;
    if (i == b)
        return 0;
    size_t s = i;
    while (i < n && (isalnum((unsigned char)v[i]) || v[i] == '_' || v[i] == '-'))
        i++;
    if (i == s)
        return 0;
    *name = v + s;
    *nn = i - s;
    *rest = i;
    return which;
}

static void drop(struct sa_hdr_tmpl *v, size_t *n, const char *name, size_t nn)
{
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        if (strlen(v[i].name) == nn && strncasecmp(v[i].name, name, nn) == 0) {
            free(v[i].name);
            free(v[i].template);
            continue;
        }
        v[w++] = v[i];
    }
    *n = w;
}

static int append(struct sa_hdr_tmpl **v, size_t *n, const char *name, size_t nn, const char *t)
{
    struct sa_hdr_tmpl *w = util_reallocarray(*v, *n + 1, sizeof(**v));
    if (w == NULL)
        return -1;
    *v = w;
    char *a = util_strndup(name, nn), *b = util_strdup(t);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return -1;
    }
    w[(*n)++] = (struct sa_hdr_tmpl){a, b};
    return 0;
}

/* The template's escapes: \\ a backslash, \t, \n, any other \X dropped. */
static char *unescape(const char *s, size_t n)
{
    char *o = util_malloc(n + 1);
    if (o == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            o[k++] = s[i];
            continue;
        }
        char x = s[++i];
        if (x == '\\')
            o[k++] = '\\';
        else if (x == 't')
            o[k++] = '\t';
        else if (x == 'n')
            o[k++] = '\n';
        else if (x == '\n')
            o[k++] = '\\', o[k++] = '\n';
    }
    o[k] = '\0';
    return o;
}

static enum sa_hdrconf_rc add_header(struct sa_hdrconf *c, const char *v, size_t n, char *why,
                                     size_t wn)
{
    const char *name;
    size_t nn, rest;
    int which = which_and_name(v, n, &name, &nn, &rest);
    size_t i = rest;
    while (i < n && is_blank(v[i]))
        i++;
    if (which == 0 || i == rest) {
        snprintf(why, wn, "add_header: expected ham|spam|all, a name of [A-Za-z0-9_-] and a "
                          "template");
        return SA_HDRCONF_BAD;
    }
    const char *t = v + i;
    size_t tn = n - i;
    while (tn > 0 && is_blank(t[tn - 1]))
        tn--;
    if (tn >= 2 && t[0] == '"' && t[tn - 1] == '"')
        t++, tn -= 2;
    char *tmpl = unescape(t, tn);
    if (tmpl == NULL)
        return SA_HDRCONF_NOMEM;
    int rc = 0;
    if (which & 1) {
        drop(c->ham, &c->nham, name, nn);
        rc |= append(&c->ham, &c->nham, name, nn, tmpl);
    }
    if (which & 2) {
        drop(c->spam, &c->nspam, name, nn);
        rc |= append(&c->spam, &c->nspam, name, nn, tmpl);
    }
    free(tmpl);
    return rc ? SA_HDRCONF_NOMEM : SA_HDRCONF_OK;
}

static enum sa_hdrconf_rc remove_header(struct sa_hdrconf *c, const char *v, size_t n, char *why,
                                        size_t wn)
{
    const char *name;
    size_t nn, rest;
    int which = which_and_name(v, n, &name, &nn, &rest);
    while (rest < n && is_blank(v[rest]))
        rest++;
    if (which == 0 || rest != n) {
        snprintf(why, wn, "remove_header: expected ham|spam|all and a name of [A-Za-z0-9_-]");
        return SA_HDRCONF_BAD;
    }
    if (nn == 15 && memcmp(name, "Checker-Version", 15) == 0)
        return SA_HDRCONF_OK;
    if (which & 1)
        drop(c->ham, &c->nham, name, nn);
    if (which & 2)
        drop(c->spam, &c->nspam, name, nn);
    return SA_HDRCONF_OK;
}

static enum sa_hdrconf_rc clear_headers(struct sa_hdrconf *c)
{
    const struct sa_hdr_tmpl *keep = NULL;
    for (size_t i = 0; i < c->nham && keep == NULL; i++)
        if (strcasecmp(c->ham[i].name, "checker-version") == 0)
            keep = &c->ham[i];
    struct sa_hdr_tmpl k = {0};
    if (keep != NULL) {
        k.name = util_strdup(keep->name);
        k.template = util_strdup(keep->template);
        if (k.name == NULL || k.template == NULL) {
            free(k.name);
            free(k.template);
            return SA_HDRCONF_NOMEM;
        }
    }
    struct sa_hdr_tmpl *h = NULL, *s = NULL;
    size_t nh = 0, ns = 0;
    if (keep != NULL && (append(&h, &nh, k.name, strlen(k.name), k.template) != 0 ||
                         append(&s, &ns, k.name, strlen(k.name), k.template) != 0)) {
        free_list(h, nh);
        free_list(s, ns);
        free(k.name);
        free(k.template);
        return SA_HDRCONF_NOMEM;
    }
    free(k.name);
    free(k.template);
    free_list(c->ham, c->nham);
    free_list(c->spam, c->nspam);
    c->ham = h, c->nham = nh;
    c->spam = s, c->nspam = ns;
    return SA_HDRCONF_OK;
}

static bool numeric(const char *v, size_t n, double *out)
{
    size_t i = 0;
    if (i < n && (v[i] == '+' || v[i] == '-'))
        i++;
    size_t d = i;
    while (i < n && isdigit((unsigned char)v[i]))
        i++;
    if (i == d)
        return false;
    if (i < n && v[i] == '.')
        for (i++; i < n && isdigit((unsigned char)v[i]);)
            i++;
    if (i != n || n > 60)
        return false;
    char t[64];
    memcpy(t, v, n);
    t[n] = '\0';
    *out = strtod(t, NULL);
    return true;
}

static enum sa_hdrconf_rc set_string(char **dst, const char *v, size_t n)
{
    char *s = util_strndup(v, n);
    if (s == NULL)
        return SA_HDRCONF_NOMEM;
    free(*dst);
    *dst = s;
    return SA_HDRCONF_OK;
}

enum sa_hdrconf_rc sa_hdrconf_setting(struct sa_hdrconf *c, const char *key, const char *val,
                                      size_t n, char *why, size_t wn)
{
    double d;
    if (strcmp(key, "add_header") == 0 || strcmp(key, "remove_header") == 0 ||
        strcmp(key, "clear_headers") == 0)
        c->fields_set = true;
    if (strcmp(key, "add_header") == 0)
        return add_header(c, val, n, why, wn);
    if (strcmp(key, "remove_header") == 0)
        return remove_header(c, val, n, why, wn);
    if (strcmp(key, "clear_headers") == 0 || strcmp(key, "clear_report_template") == 0) {
        if (n != 0) {
            snprintf(why, wn, "%s takes no value", key);
            return SA_HDRCONF_BAD;
        }
        return key[6] == 'h' ? clear_headers(c) : set_string(&c->report, "", 0);
    }
    if (strcmp(key, "report") == 0) {
        /* set_template_append: /^"(.*?)"$/ unquotes, then a line end */
        if (n >= 2 && val[0] == '"' && val[n - 1] == '"')
            val++, n -= 2;
        size_t l = strlen(c->report);
        char *r = util_malloc(l + n + 2);
        if (r == NULL)
            return SA_HDRCONF_NOMEM;
        memcpy(r, c->report, l);
        memcpy(r + l, val, n);
        r[l + n] = '\n';
        r[l + n + 1] = '\0';
        free(c->report);
        c->report = r;
        return SA_HDRCONF_OK;
    }
    if (strcmp(key, "report_contact") == 0 || strcmp(key, "report_hostname") == 0) {
        if (n == 0) {
            snprintf(why, wn, "%s: requires a value", key);
            return SA_HDRCONF_BAD;
        }
        return set_string(key[7] == 'c' ? &c->contact : &c->hostname, val, n);
    }
    if (strcmp(key, "required_score") == 0 || strcmp(key, "required_hits") == 0 ||
        strcmp(key, "report_wrap_width") == 0) {
        if (!numeric(val, n, &d)) {
            snprintf(why, wn, "%s: not a number: %.*s", key, (int)(n > 40 ? 40 : n), val);
            return SA_HDRCONF_BAD;
        }
        if (key[1] == 'e' && key[2] == 'q') {
            c->required = d;
            c->required_set = true;
        } else {
            c->wrap_width = d < 0 ? 0 : d > 100000 ? 100000 : (unsigned)d;
        }
        return SA_HDRCONF_OK;
    }
    if (strcmp(key, "fold_headers") == 0) {
        if (n == 1 && (val[0] == '0' || val[0] == '1'))
            c->fold = val[0] == '1';
        else if ((n == 3 && strncasecmp(val, "yes", 3) == 0) ||
                 (n == 2 && strncasecmp(val, "no", 2) == 0))
            c->fold = n == 3;
        else {
            snprintf(why, wn, "fold_headers: expected 0, 1, yes or no");
            return SA_HDRCONF_BAD;
        }
        return SA_HDRCONF_OK;
    }
    return SA_HDRCONF_NOT_MINE;
}
