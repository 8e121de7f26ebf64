/*
 * sa_eval_uri - SpamAssassin's URIEval tests (Plugin::URIEval), natively:
 *
 *   check_uri_truncated()        a URI of the message was cut at
 *                                8,192 characters: one html_uri pushed
 *                                (href, src, background, action, ...), or
 *                                a form uri_list_canonicalize made of one
 *   check_https_ip_mismatch()    an <a> whose href is an http(s) URI of a
 *                                dotted IPv4 host has an anchor text that
 *                                says "https:" and does not start with an
 *                                https URI of such a host
 *   check_for_http_redirector()  a URI of the uri list holds a second
 *                                http(s) URI after its host, to another
 *                                registered domain (repeatedly, as the
 *                                plugin's substitution loop reads it)
 *
 * What it promises: the plugin's patterns word for word, over the HTML
 * parts' facts (sa_html.h: uri_truncated, the anchors beside their href,
 * the pushed URIs that only just fit) and the uri list (rules_msg_sa_uri);
 * the longest form uri_list_canonicalize makes of a pushed URI measured
 * as it would build it.  Text URIs never reach the limit: SpamAssassin
 * reads them out of 2,048-octet pieces.
 *
 * What it assumes: the redirector loop in SpamAssassin rewrites the list
 * it walks (a later uri rule would see the rewritten URI); here the list
 * stays as it is, which only a site's own rule calling the function would
 * notice (no shipped rule does).
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_html.h"
#include "rules/sa_lists.h"

enum { RE_IP_HREF, RE_IP_HTTPS, RE_HTTPS };
enum { RE_REDIRECTOR };

static bool ip_mismatch_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, SA_EVAL_ARGS_MAX, why, wn) &&
           sa_eval_compile(c, "^https?:/*(?:[^\\@/]+\\@)?\\d+\\.\\d+\\.\\d+\\.\\d+", PCRE2_CASELESS,
                           why, wn) &&
           sa_eval_compile(c, "^https:/*(?:[^\\@/]+\\@)?\\d+\\.\\d+\\.\\d+\\.\\d+", PCRE2_CASELESS,
                           why, wn) &&
           sa_eval_compile(c, "https:", PCRE2_CASELESS, why, wn);
}

static bool redirector_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, SA_EVAL_ARGS_MAX, why, wn) &&
           sa_eval_compile(c, "^https?://([^/:\\?]+).+?(https?:/{0,2}?([^/:\\?]+).*)$",
                           PCRE2_CASELESS, why, wn);
}

static bool truncated_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, SA_EVAL_ARGS_MAX, why, wn) &&
           sa_eval_compile(c, "^(?:mailto:)?(?:\\%20)*([^\\@]+\\@[^?&%]+)", 0, why, wn) &&
           sa_eval_compile(c, "^[^?&]*<([^\\@>]+\\@[^>]+)>", 0, why, wn);
}

static bool perl_space(char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Perl's sprintf "%c" of a decimal entity &#0*NN; of a printable (33-126),
 * or of a hex one &#x0*HH; (0x21-0x7e): the octets it takes, 0 if none */
static size_t entity_len(const char *s, size_t n)
{
    if (n < 4 || s[0] != '&' || s[1] != '#')
        return 0;
    size_t i = 2;
    bool hex = s[i] == 'x';
    i += hex;
    while (i < n && s[i] == '0')
        i++;
    unsigned v = 0, d = 0;
    while (i < n && d < 4 && (hex ? hexval(s[i]) >= 0 : (s[i] >= '0' && s[i] <= '9'))) {
        v = v * (hex ? 16u : 10u) + (unsigned)(hex ? hexval(s[i]) : s[i] - '0');
        i++, d++;
    }
    if (d == 0 || i >= n || s[i] != ';')
        return 0;
    bool ok = hex ? (d == 2 && v >= 0x21 && v <= 0x7e) : (d >= 2 && d <= 3 && v >= 33 && v <= 126);
    return ok ? i + 1 : 0;
}

/* The longest form uri_list_canonicalize makes of u[0..n), in octets:
 * the URI trimmed, or its normalised copy (backslashes as slashes,
 * "http:" given its two slashes, %-escapes undone and octets escaped by
 * url_encode, a scheme added, a '/' before a '?' or '#' after the host,
 * printable entities decoded), or for an address the "mailto:" forms.
 * The other forms are shorter than these. */
static size_t longest_form(const struct sa_eval_call *c, const char *u, size_t n)
{
    /* line ends out, blanks trimmed */
    size_t a = 0, b = n;
    while (a < b && (perl_space(u[a]) || u[a] == '\n'))
        a++;
    while (b > a && (perl_space(u[b - 1]) || u[b - 1] == '\n'))
        b--;
    size_t len = 0;
    for (size_t i = a; i < b; i++)
        len += u[i] != '\n' && u[i] != '\r';
    const char *s = u + a;
    size_t sn = b - a;
    if (len <= 1 || s[0] == '#' || s[0] == '?' || s[0] == '&' || (s[0] == '/' && s[1] != '/'))
        return 0;
    size_t colon = strcspn(s, ":");
    const char *at = memchr(s, '@', sn);
    if (strncasecmp(s, "mailto:", 7) == 0 || (at != NULL && (size_t)(at - s) < colon)) {
        size_t best = len, gs, gl;
        if (memmem(s, sn, "%20", 3) != NULL &&
            sa_eval_match(c, 0, NULL, s, sn, 1, &gs, &gl) == 1 && 7 + gl > best)
            best = 7 + gl;
        if (sa_eval_match(c, 1, NULL, s, sn, 1, &gs, &gl) == 1 && 7 + gl > best)
            best = 7 + gl;
        return best;
    }
    /* the normalised copy, built once its length is known to matter */
    size_t nl = len;
    size_t p = strncasecmp(s, "https:", 6) == 0 ? 6 : strncasecmp(s, "http:", 5) == 0 ? 5 : 0;
    size_t slashes = 0;
    while (p > 0 && slashes < 2 && p + slashes < sn && (s[p + slashes] == '/' || s[p + slashes] == '\\'))
        slashes++;
    if (p > 0)
        nl += 2 - slashes;
    bool escaped = false;
    for (size_t i = 0; i + 2 < sn && !escaped; i++)
        escaped = s[i] == '%' && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0;
    if (escaped) {
        for (size_t i = 0; i < sn; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '%' && i + 2 < sn && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                int hi = hexval(s[i + 1]), v = hi * 16 + hexval(s[i + 2]);
                /* undone for 0x21-0x7e but '%' escapes of 0x?? kept as url_encode keeps them */
                bool keep = v == 0x20 || v == 0x7f || hi == 0 || hi == 1 || hi >= 8;
                if (!keep && hi >= 2 && hi <= 7)
                    nl -= 2;
                i += 2;
            } else if (ch != '\n' && ch != '\r' &&
                       (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '%' || ch == '<' || ch == '>')) {
                nl += 2;
            }
        }
    }
    /* a scheme: [-_a-z0-9]+: */
    size_t k = 0;
    while (k < sn && (isalnum((unsigned char)s[k]) || s[k] == '-' || s[k] == '_'))
        k++;
    if (!(k > 0 && k < sn && s[k] == ':'))
        nl += strncmp(s, "ftp.", 4) == 0 ? 6 : 7;
    /* http://host?x: a '/' goes before the '?' */
    if (p > 0 || !(k > 0 && k < sn && s[k] == ':')) {
        size_t h = p > 0 ? p + slashes : 0, e = h;
        while (e < sn && !strchr("/?#\\", s[e]))
            e++;
        if (e > h && e < sn && (s[e] == '?' || s[e] == '#') &&
            (p > 0 || strncmp(s, "ftp.", 4) != 0))
            nl++;
    }
    for (size_t i = 0; i < sn; i++) {
        size_t el = s[i] == '&' ? entity_len(s + i, sn - i) : 0;
        if (el > 0) {
            nl -= el - 1;
            i += el - 1;
        }
    }
    return nl > len ? nl : len;
}

static int uri_truncated(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    size_t n;
    const struct sa_html_part *parts = rules_msg_sa_html(m, &n);
    if (rules_msg_nomem(m))
        return -1;
    bool cut = false;
    for (size_t i = 0; i < n && !cut; i++) {
        cut = parts[i].uri_truncated;
        const struct sa_html_strs *l = &parts[i].long_uri;
        for (size_t k = 0; k < l->n && !cut; k++) {
            size_t from = l->start[k], to = k + 1 < l->n ? l->start[k + 1] : l->len;
            cut = longest_form(c, l->text + from, to - from) > SA_HTML_URI_MAX;
        }
    }
    return cut;
}

static int https_ip_mismatch(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    const struct sa_html_part *parts = rules_msg_sa_html(m, &n);
    if (rules_msg_nomem(m))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct sa_html_strs *a = &parts[i].anchor, *h = &parts[i].anchor_href;
        for (size_t k = 0; k < a->n && k < h->n; k++) {
            size_t hf = h->start[k], ht = k + 1 < h->n ? h->start[k + 1] : h->len;
            if (sa_eval_match(c, RE_IP_HREF, NULL, h->text + hf, ht - hf, 0, NULL, NULL) != 1)
                continue;
            size_t af = a->start[k], at = k + 1 < a->n ? a->start[k + 1] : a->len;
            const char *t = a->text + af;
            if (sa_eval_match(c, RE_IP_HTTPS, NULL, t, at - af, 0, NULL, NULL) == 1)
                continue;
            if (sa_eval_match(c, RE_HTTPS, NULL, t, at - af, 0, NULL, NULL) == 1)
                return 1;
        }
    }
    return 0;
}

/* uri_to_domain($_) || $_ of a host */
static void domain_or_self(const struct sa_lists *l, const char *s, size_t n, char *out, size_t on)
{
    if (!sa_lists_uri_to_domain(l, s, n, out, on) || out[0] == '\0' || strcmp(out, "0") == 0) {
        size_t k = n < on - 1 ? n : on - 1;
        memcpy(out, s, k);
        out[k] = '\0';
    }
}

static int http_redirector(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n = rules_msg_sa_uri_count(m);
    char redir[1024], dest[1024];
    for (size_t i = 0; i < n; i++) {
        const char *u = rules_msg_sa_uri(m, i);
        if (u == NULL)
            continue;
        size_t len = strlen(u), off = 0;
        /* each round leaves the tail from the inner URI on: shorter */
        for (;;) {
            size_t gs[3], gl[3];
            if (sa_eval_match(c, RE_REDIRECTOR, NULL, u + off, len, 1, &gs[0], &gl[0]) != 1 ||
                sa_eval_match(c, RE_REDIRECTOR, NULL, u + off, len, 2, &gs[1], &gl[1]) != 1 ||
                sa_eval_match(c, RE_REDIRECTOR, NULL, u + off, len, 3, &gs[2], &gl[2]) != 1)
                break;
            domain_or_self(c->lists, u + off + gs[0], gl[0], redir, sizeof(redir));
            domain_or_self(c->lists, u + off + gs[2], gl[2], dest, sizeof(dest));
            if (strcmp(redir, dest) != 0)
                return 1;
            off += gs[1];
            len = gl[1];
        }
    }
    return rules_msg_nomem(m) ? -1 : 0;
}

const struct sa_eval_def sa_eval_uri_defs[] = {
    {"check_uri_truncated", uri_truncated, truncated_check},
    {"check_https_ip_mismatch", https_ip_mismatch, ip_mismatch_check},
    {"check_for_http_redirector", http_redirector, redirector_check},
    {NULL, NULL, NULL},
};
