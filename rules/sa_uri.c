/*
 * sa_uri - SpamAssassin's forms of a URI (see sa_uri.h).  Works in fixed
 * buffers of SA_URI_LEN octets (longer URIs are cut there: no rule needs
 * more, and it bounds the work); no allocation, recursion bounded by
 * SA_URI_NEST_MAX.
 */
#include "rules/sa_uri.h"

#include "rules/sa_redir.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SA_URI_LEN 2048

struct forms {
    const struct sa_redirs *redirs; /* NULL: only the generic redirector */
    sa_uri_fn fn;
    void *arg;
    unsigned n;
};

static void emit(struct forms *f, const char *s, size_t n)
{
    if (f->n >= SA_URI_FORMS_MAX || n == 0)
        return;
    f->n++;
    f->fn(f->arg, s, n);
}

static void forms(struct forms *f, const char *in, size_t len, unsigned depth);

/* &#NN; and &#xNN; of printable ASCII to the character, &#x2e; and its
 * kin to ".": in place, the new length. */
static size_t refs_decode(char *s, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        if (s[r] == '&' && r + 2 < n && s[r + 1] == '#') {
            size_t k = r + 2;
            bool hex = s[k] == 'x' || s[k] == 'X';
            if (hex)
                k++;
            unsigned long v = 0;
            size_t d = 0;
            while (k < n && d < 8 && (hex ? isxdigit((unsigned char)s[k]) : isdigit((unsigned char)s[k]))) {
                v = v * (hex ? 16 : 10) +
                    (unsigned long)(isdigit((unsigned char)s[k]) ? s[k] - '0'
                                                               : tolower((unsigned char)s[k]) - 'a' + 10);
                k++, d++;
            }
            if (d > 0 && k < n && s[k] == ';') {
                if (v >= 33 && v <= 126) {
                    s[w++] = (char)v;
                    r = k + 1;
                    continue;
                }
                if (v == 12290 || v == 65294 || v == 65377) {
                    s[w++] = '.';
                    r = k + 1;
                    continue;
                }
            }
        }
        s[w++] = s[r++];
    }
    return w;
}

/* Util::url_encode, called only when a %XX is there: a %XX whose first
 * digit is 2-7 decoded, but %20 and %7f (Util.pm's test), the
 * octets 0x00-0x20, 0x7f-0xff, '"', '%', '<' and '>' outside a %XX encoded
 * (lower-case hex).  out holds 3 * n. */
static size_t pct_decode(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char d1 = s[i + 1], d2 = s[i + 2];
            bool keep = strchr("0189abcdefABCDEF", d1) != NULL || (d1 == '2' && d2 == '0') ||
                        (d1 == '7' && (d2 == 'f' || d2 == 'F'));
            if (keep) {
                memcpy(out + w, s + i, 3);
                w += 3;
            } else {
                int v1 = d1 - '0';
                int v2 = isdigit((unsigned char)d2) ? d2 - '0' : tolower((unsigned char)d2) - 'a' + 10;
                out[w++] = (char)(v1 * 16 + v2);
            }
            i += 2;
            continue;
        }
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '%' || c == '<' || c == '>') {
            out[w++] = '%';
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        } else {
            out[w++] = (char)c;
        }
    }
    return w;
}

static bool has_pct(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == '%' && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2]))
            return true;
    return false;
}

static void host_forms(struct forms *f, const char *u, size_t n, unsigned depth)
{
    /* ^(https?://)([^@/?#]*@)?([^/?#:]+)((?::(\d*))?.*)$ */
    size_t p = strncasecmp(u, "https://", 8) == 0 ? 8 : strncasecmp(u, "http://", 7) == 0 ? 7 : 0;
    if (p == 0)
        return;
    bool https = p == 8;
    size_t a = p;
    while (a < n && !strchr("@/?#", u[a]))
        a++;
    size_t hs = a < n && u[a] == '@' ? a + 1 : p;
    size_t he = hs;
    while (he < n && !strchr("/?#:", u[he]))
        he++;
    if (he == hs)
        return;
    char buf[SA_URI_LEN];
    const char *rest = u + he;
    size_t rn = n - he;
    /* the default port said */
    const char *dp = https ? ":443" : ":80";
    size_t dl = strlen(dp);
    if (rn >= dl && memcmp(rest, dp, dl) == 0 && (rn == dl || !isalnum((unsigned char)rest[dl]))) {
        int k = snprintf(buf, sizeof(buf), "%.*s%.*s%.*s", (int)p, u, (int)(he - hs), u + hs,
                         (int)(rn - dl), rest + dl);
        if (k > 0 && (size_t)k < sizeof(buf))
            emit(f, buf, (size_t)k);
    }
    /* a redirector_pattern's target first, over "$proto$host$rest" (no
     * user part); the generic redirector only when none matches */
    bool redirected = false;
    if (f->redirs != NULL && depth < SA_URI_NEST_MAX) {
        int k = snprintf(buf, sizeof(buf), "%.*s%.*s%.*s", (int)p, u, (int)(he - hs), u + hs,
                         (int)rn, rest);
        size_t to, tl;
        if (k > 0 && (size_t)k < sizeof(buf) &&
            sa_redirs_target(f->redirs, buf, (size_t)k, &to, &tl)) {
            char target[SA_URI_LEN];
            memcpy(target, buf + to, tl);
            forms(f, target, tl, depth + 1);
            redirected = true;
        }
    }
    /* the generic redirector: the first http URI in the rest */
    for (size_t i = 0; i + 5 < rn && depth < SA_URI_NEST_MAX && !redirected; i++) {
        if (strncasecmp(rest + i, "http", 4) != 0)
            continue;
        size_t k = i + 4;
        if (k < rn && (rest[k] == 's' || rest[k] == 'S'))
            k++;
        if (k >= rn || rest[k] != ':')
            continue;
        size_t e = k + 1;
        while (e < rn && rest[e] != '&' && rest[e] != '#')
            e++;
        if (memchr(rest + i, '.', e - i) != NULL && e > k + 1)
            forms(f, rest + i, e - i, depth + 1);
        break;
    }
    /* the host without trailing punctuation */
    size_t ht = he;
    while (ht > hs && !isalnum((unsigned char)u[ht - 1]))
        ht--;
    if (ht < he) {
        int k = snprintf(buf, sizeof(buf), "%.*s%.*s%.*s", (int)p, u, (int)(ht - hs), u + hs,
                         (int)rn, rest);
        if (k > 0 && (size_t)k < sizeof(buf))
            emit(f, buf, (size_t)k);
    }
}

static void forms(struct forms *f, const char *in, size_t len, unsigned depth)
{
    char u[SA_URI_LEN];
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof(u) - 1; i++)
        if (in[i] != '\n' && in[i] != '\r')
            u[n++] = in[i];
    size_t s0 = 0;
    while (s0 < n && isspace((unsigned char)u[s0]))
        s0++;
    while (n > s0 && isspace((unsigned char)u[n - 1]))
        n--;
    memmove(u, u + s0, n - s0);
    n -= s0;
    u[n] = '\0';
    if (n <= 1 || u[0] == '#' || u[0] == '?' || u[0] == '&' || (u[0] == '/' && u[1] != '/'))
        return;
    emit(f, u, n);
    size_t colon = strcspn(u, ":");
    const char *at = memchr(u, '@', n);
    if (strncasecmp(u, "mailto:", 7) == 0 || (at != NULL && (size_t)(at - u) < colon)) {
        const char *q = at ? memchr(at, '?', (size_t)(u + n - at)) : NULL;
        if (q != NULL && q > at + 1)
            emit(f, u, (size_t)(q - u));
        return;
    }
    /* Util.pm's order: backslashes, "http:/x", %-decoding, then the scheme
     * asked on the decoded URI */
    char nu[3 * SA_URI_LEN + 16]; /* %-encoding may triple it */
    char tmp[SA_URI_LEN + 8];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        tmp[m++] = u[i] == '\\' ? '/' : u[i];
    tmp[m] = '\0';
    size_t p0 = strncasecmp(tmp, "https:", 6) == 0 ? 6 : strncasecmp(tmp, "http:", 5) == 0 ? 5 : 0;
    if (p0 > 0) {
        size_t sl2 = 0;
        while (sl2 < 2 && tmp[p0 + sl2] == '/')
            sl2++;
        if (sl2 != 2 && m + 2 < sizeof(tmp)) {
            memmove(tmp + p0 + 2, tmp + p0 + sl2, m - p0 - sl2 + 1);
            tmp[p0] = tmp[p0 + 1] = '/';
            m = m + 2 - sl2;
        }
    }
    /* decoded (or copied) after room for a scheme, which then moves in */
    enum { ROOM = 8 };
    char *src = nu + ROOM;
    if (has_pct(tmp, m)) {
        m = pct_decode(tmp, m, src);
    } else {
        memcpy(src, tmp, m);
    }
    /* a scheme: [-_a-z0-9]+: */
    size_t sl = 0;
    while (sl < m && (isalnum((unsigned char)src[sl]) || src[sl] == '-' || src[sl] == '_'))
        sl++;
    bool scheme = sl > 0 && sl < m && src[sl] == ':';
    const char *pre = scheme ? "" : m >= 4 && strncmp(src, "ftp.", 4) == 0 ? "ftp://" : "http://";
    size_t pl = strlen(pre);
    memmove(nu + pl, src, m);
    memcpy(nu, pre, pl);
    m += pl;
    nu[m] = '\0';
    size_t p = strncasecmp(nu, "https://", 8) == 0 ? 6 : strncasecmp(nu, "http://", 7) == 0 ? 5 : 0;
    if (p > 0) {
        /* ^(https?://[^/?#]+)([?#]) -> $1/$2 */
        size_t h = p + 2, e = h;
        while (e < m && !strchr("/?#", nu[e]))
            e++;
        if (e > h && e < m && (nu[e] == '?' || nu[e] == '#') && m + 1 < sizeof(nu)) {
            memmove(nu + e + 1, nu + e, m - e + 1);
            nu[e] = '/';
            m++;
        }
    }
    m = refs_decode(nu, m);
    if (m != n || memcmp(nu, u, n) != 0)
        emit(f, nu, m);
    host_forms(f, nu, m, depth);
}

void sa_uri_forms(const char *uri, size_t len, const struct sa_redirs *redirs, sa_uri_fn fn,
                  void *arg)
{
    struct forms f = {redirs, fn, arg, 0};
    forms(&f, uri, len, 0);
}
