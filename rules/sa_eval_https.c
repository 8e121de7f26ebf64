/*
 * sa_eval_https - SpamAssassin's HTTPSMismatch test (Plugin::HTTPSMismatch),
 * natively:
 *
 *   check_https_http_mismatch([MIN[, MAX]])
 *       in one HTML part, an <a> whose href is an http(s) URI of a name
 *       with a valid registered domain has an anchor text naming an
 *       https:// host of another registered domain (or an IP address),
 *       and the part has at least MIN (1 when absent, 0 or empty) and
 *       fewer than MAX (no bound when absent) such hrefs, each distinct
 *       href counted once
 *
 * What it promises: the plugin's loop over each part's uri_detail entries
 * that have anchor texts (an <a>'s href as canon_uri left it, sa_html.h),
 * its patterns word for word, the domains as RegistryBoundaries'
 * trim_domain, uri_to_domain and is_domain_valid give them (sa_lists.h).
 * The result does not depend on the order Perl's hash walks the entries.
 *
 * What it assumes: a body eval's first argument in Perl is the body
 * itself, so the rule's own arguments are MIN and MAX.
 */
#include <stdbool.h>
#include <string.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_html.h"
#include "rules/sa_lists.h"

enum { RE_HREF_HOST, RE_TEXT_HTTPS };

static bool mismatch_check(struct sa_eval_call *c, char *why, size_t wn)
{
    if (!sa_eval_nargs(c, 0, 2, why, wn))
        return false;
    /* Perl's numbers, "" as 0 (||= 1 makes it 1) */
    for (size_t i = 0; i < c->args.n; i++)
        if (c->args.v[i][0] != '\0' && !sa_eval_number(c, i, false, why, wn))
            return false;
    return sa_eval_compile(c, "^https?://([^/:?#]+)", PCRE2_CASELESS, why, wn) &&
           sa_eval_compile(c, "https://([^\\s/:?#]+)", PCRE2_CASELESS, why, wn);
}

/* trim_domain(host), kept when is_domain_valid(uri_to_domain(it)) */
static bool href_domain(const struct sa_lists *l, const char *h, size_t n, char *out, size_t on)
{
    char dom[1024];
    sa_lists_trim_domain(l, h, n, out, on);
    return sa_lists_uri_to_domain(l, out, strlen(out), dom, sizeof(dom)) &&
           sa_lists_domain_valid(l, dom, strlen(dom));
}

static const char *item(const struct sa_html_strs *s, size_t k, size_t *n)
{
    size_t from = s->start[k], to = k + 1 < s->n ? s->start[k + 1] : s->len;
    *n = to - from;
    return s->text + from;
}

/* one part: *hit, and the hrefs that count in *anchors; -1 out of memory */
static int part_mismatch(const struct sa_eval_call *c, const struct sa_html_part *p, bool *hit,
                         double *anchors)
{
    const struct sa_html_strs *a = &p->anchor, *h = &p->anchor_href;
    size_t na = a->n < h->n ? a->n : h->n;
    *hit = false;
    *anchors = 0;
    for (size_t k = 0; k < na; k++) {
        size_t kn;
        const char *key = item(h, k, &kn);
        /* each distinct href once: its first anchor stands for all */
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++) {
            size_t jn;
            const char *o = item(h, j, &jn);
            seen = jn == kn && memcmp(o, key, kn) == 0;
        }
        if (seen)
            continue;
        size_t gs, gl;
        int rc = sa_eval_match(c, RE_HREF_HOST, NULL, key, kn, 1, &gs, &gl);
        if (rc < 0)
            return -1;
        char uri[1024];
        if (rc == 0 || sa_is_ip(key + gs, gl) ||
            !href_domain(c->lists, key + gs, gl, uri, sizeof(uri)) || uri[0] == '\0' ||
            strcmp(uri, "0") == 0)
            continue;
        (*anchors)++;
        /* the plugin's "last" leaves this href's texts, not the part */
        for (size_t j = k; j < na; j++) {
            size_t jn, tn;
            const char *o = item(h, j, &jn);
            if (jn != kn || memcmp(o, key, kn) != 0)
                continue;
            const char *t = item(a, j, &tn);
            size_t ts, tl;
            rc = sa_eval_match(c, RE_TEXT_HTTPS, NULL, t, tn, 1, &ts, &tl);
            if (rc < 0)
                return -1;
            if (rc == 0)
                continue;
            char https[1024];
            if (sa_is_ip(t + ts, tl)) {
                size_t cn = tl < sizeof(https) - 1 ? tl : sizeof(https) - 1;
                memcpy(https, t + ts, cn);
                https[cn] = '\0';
            } else {
                sa_lists_trim_domain(c->lists, t + ts, tl, https, sizeof(https));
                if (!sa_lists_domain_valid(c->lists, https, strlen(https)))
                    continue;
            }
            if (https[0] == '\0' || strcmp(https, "0") == 0 || strcmp(uri, https) == 0)
                continue;
            *hit = true;
            break;
        }
    }
    return 0;
}

static int https_http_mismatch(const struct sa_eval_call *c, struct rules_msg *m)
{
    double min = c->args.n > 0 && c->args.v[0][0] != '\0' ? c->num[0] : 0;
    if (min == 0)
        min = 1;
    bool bounded = c->args.n > 1;
    double max = bounded ? (c->args.v[1][0] != '\0' ? c->num[1] : 0) : 0;
    size_t n;
    const struct sa_html_part *parts = rules_msg_sa_html(m, &n);
    if (rules_msg_nomem(m))
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool hit;
        double anchors;
        if (part_mismatch(c, &parts[i], &hit, &anchors) != 0)
            return -1;
        if (hit && anchors >= min && (!bounded || anchors < max))
            return 1;
    }
    return 0;
}

const struct sa_eval_def sa_eval_https_defs[] = {
    {"check_https_http_mismatch", https_http_mismatch, mismatch_check},
    {NULL, NULL, NULL},
};
