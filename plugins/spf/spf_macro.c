/*
 * spf_macro - RFC 7208 section 7 macro strings: syntax check and expansion, pure.
 *
 * The check follows the ABNF of RFC 7208 section 12: a macro-expand is
 * "%{" letter *DIGIT ["r"] *delimiter "}", "%%", "%_" or "%-"; a literal is
 * any visible ASCII octet but "%" (plus SP in an explain-string).  A DIGIT
 * transformer of 0 is refused (7.3: "MUST be nonzero").
 *
 * Expansion splits a letter's value on the given delimiters (default "."),
 * reverses the parts for "r", keeps the rightmost DIGIT parts and joins them
 * with "."; an upper-case letter is URL-escaped (RFC 3986 unreserved octets
 * stay).  Output grows in a buffer bounded by the caller's max.
 */
#include "spf_macro.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/alloc.h"

struct macro_buf {
    char *p;
    size_t len, cap, max;
    enum spf_macro_status st;
};

static bool macro_is_delim(unsigned char c)
{
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

static bool macro_letter_ok(unsigned char c, unsigned flags)
{
    switch (c | 0x20) {
    case 's':
    case 'l':
    case 'o':
    case 'd':
    case 'i':
    case 'p':
    case 'h':
    case 'v':
        return true;
    case 'c':
    case 'r':
    case 't':
        return (flags & SPF_MACRO_EXP) != 0;
    default:
        return false;
    }
}

/* One "%{...}" starting at s[i] == '%', s[i+1] == '{'.  Returns the offset
 * after '}' or 0 on a syntax error (*errpos set). */
static size_t macro_scan_expand(const char *s, size_t len, size_t i, unsigned flags, size_t *errpos)
{
    size_t j = i + 2;
    if (j >= len || !macro_letter_ok((unsigned char)s[j], flags)) {
        *errpos = j;
        return 0;
    }
    j++;
    size_t digits = j;
    bool nonzero = false;
    while (j < len && s[j] >= '0' && s[j] <= '9') {
        if (s[j] != '0')
            nonzero = true;
        j++;
    }
    if (j > digits && !nonzero) {
        *errpos = digits;
        return 0;
    }
    if (j < len && (s[j] == 'r' || s[j] == 'R'))
        j++;
    while (j < len && macro_is_delim((unsigned char)s[j]))
        j++;
    if (j >= len || s[j] != '}') {
        *errpos = j;
        return 0;
    }
    return j + 1;
}

bool spf_macro_check(const char *s, size_t len, unsigned flags, size_t *errpos)
{
    size_t dummy;
    if (errpos == NULL)
        errpos = &dummy;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 1 >= len) {
                *errpos = i;
                return false;
            }
            unsigned char n = (unsigned char)s[i + 1];
            if (n == '%' || n == '_' || n == '-') {
                i += 2;
                continue;
            }
            if (n != '{') {
                *errpos = i + 1;
                return false;
            }
            size_t next = macro_scan_expand(s, len, i, flags, errpos);
            if (next == 0)
                return false;
            i = next;
            continue;
        }
        if ((c >= 0x21 && c <= 0x7e) || (c == ' ' && (flags & SPF_MACRO_EXP))) {
            i++;
            continue;
        }
        *errpos = i;
        return false;
    }
    return true;
}

static void macro_put(struct macro_buf *b, const char *s, size_t n)
{
    if (b->st != SPF_MACRO_OK)
        return;
    if (n > b->max - b->len) {
        b->st = SPF_MACRO_TOO_LONG;
        return;
    }
    if (b->len + n + 1 > b->cap && util_grow_first(&b->p, &b->cap, b->len + n + 1, 1, 64) != 0) {
        b->st = SPF_MACRO_NOMEM;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool macro_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void macro_put_escaped(struct macro_buf *b, const char *s, size_t n, bool escape)
{
    if (!escape) {
        macro_put(b, s, n);
        return;
    }
    for (size_t i = 0; i < n && b->st == SPF_MACRO_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (macro_unreserved(c)) {
            macro_put(b, (const char *)&c, 1);
        } else {
            char hex[4];
            snprintf(hex, sizeof hex, "%%%02X", c);
            macro_put(b, hex, 3);
        }
    }
}

/* The raw value of a letter, written to tmp when it must be computed. */
static const char *macro_value(unsigned char letter, const struct spf_macro_ctx *ctx, char *tmp,
                               size_t tmplen)
{
    switch (letter | 0x20) {
    case 's':
        return ctx->sender ? ctx->sender : "";
    case 'l':
        return ctx->local ? ctx->local : "";
    case 'o':
        return ctx->sender_domain ? ctx->sender_domain : "";
    case 'd':
        return ctx->domain ? ctx->domain : "";
    case 'h':
        return ctx->helo ? ctx->helo : "";
    case 'r':
        return ctx->receiver ? ctx->receiver : "unknown";
    case 'v':
        return ctx->family == AF_INET6 ? "ip6" : "in-addr";
    case 't':
        snprintf(tmp, tmplen, "%lld", ctx->timestamp);
        return tmp;
    case 'p':
        if (ctx->validated != NULL) {
            const char *v = ctx->validated(ctx->arg);
            return v ? v : "unknown";
        }
        return "unknown";
    case 'c':
        if (inet_ntop(ctx->family == AF_INET6 ? AF_INET6 : AF_INET, ctx->ip, tmp,
                      (socklen_t)tmplen) == NULL)
            return "";
        return tmp;
    case 'i':
        if (ctx->family == AF_INET6) {
            static const char hexd[] = "0123456789abcdef";
            size_t k = 0;
            for (size_t i = 0; i < 16 && k + 4 <= tmplen; i++) {
                tmp[k++] = hexd[ctx->ip[i] >> 4];
                tmp[k++] = '.';
                tmp[k++] = hexd[ctx->ip[i] & 15];
                tmp[k++] = '.';
            }
            tmp[k ? k - 1 : 0] = '\0';
            return tmp;
        }
        snprintf(tmp, tmplen, "%u.%u.%u.%u", ctx->ip[0], ctx->ip[1], ctx->ip[2], ctx->ip[3]);
        return tmp;
    default:
        return "";
    }
}

/* Expand one "%{...}" whose body (letter to before '}') is s[0..n). */
static void macro_expand_one(struct macro_buf *b, const char *s, size_t n,
                             const struct spf_macro_ctx *ctx)
{
    char tmp[128];
    unsigned char letter = (unsigned char)s[0];
    const char *val = macro_value(letter, ctx, tmp, sizeof tmp);
    bool escape = letter >= 'A' && letter <= 'Z';
    size_t i = 1;
    size_t keep = 0; /* 0: all */
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (keep < 1000)
            keep = keep * 10 + (size_t)(s[i] - '0');
        i++;
    }
    bool reverse = false;
    if (i < n && (s[i] == 'r' || s[i] == 'R')) {
        reverse = true;
        i++;
    }
    const char *delims = s + i;
    size_t ndelims = n - i;

    size_t vlen = strlen(val);
    if (keep == 0 && !reverse && ndelims == 0) {
        macro_put_escaped(b, val, vlen, escape);
        return;
    }
    /* Split into parts: offsets and lengths, at most vlen + 1 parts. */
    size_t cap = vlen + 1;
    size_t *off = malloc(cap * sizeof *off);
    size_t *plen = malloc(cap * sizeof *plen);
    if (off == NULL || plen == NULL) {
        free(off);
        free(plen);
        b->st = SPF_MACRO_NOMEM;
        return;
    }
    size_t nparts = 0, start = 0;
    for (size_t k = 0; k <= vlen; k++) {
        bool cut = k == vlen;
        if (!cut) {
            if (ndelims == 0)
                cut = val[k] == '.';
            else
                cut = memchr(delims, val[k], ndelims) != NULL;
        }
        if (cut) {
            off[nparts] = start;
            plen[nparts] = k - start;
            nparts++;
            start = k + 1;
        }
    }
    if (reverse) {
        for (size_t a = 0, z = nparts - 1; a < z; a++, z--) {
            size_t t = off[a];
            off[a] = off[z];
            off[z] = t;
            t = plen[a];
            plen[a] = plen[z];
            plen[z] = t;
        }
    }
    size_t first = 0;
    if (keep != 0 && keep < nparts)
        first = nparts - keep;
    for (size_t k = first; k < nparts; k++) {
        if (k > first)
            macro_put(b, ".", 1);
        macro_put_escaped(b, val + off[k], plen[k], escape);
    }
    free(off);
    free(plen);
}

enum spf_macro_status spf_macro_expand(const char *s, size_t len, unsigned flags,
                                       const struct spf_macro_ctx *ctx, size_t max, char **out)
{
    struct macro_buf b = {.max = max, .st = SPF_MACRO_OK};
    size_t errpos;
    *out = NULL;
    if (!spf_macro_check(s, len, flags, &errpos))
        return SPF_MACRO_SYNTAX;
    macro_put(&b, "", 0);
    for (size_t i = 0; i < len && b.st == SPF_MACRO_OK;) {
        if (s[i] != '%') {
            size_t j = i;
            while (j < len && s[j] != '%')
                j++;
            macro_put(&b, s + i, j - i);
            i = j;
            continue;
        }
        char n = s[i + 1];
        if (n == '%') {
            macro_put(&b, "%", 1);
            i += 2;
        } else if (n == '_') {
            macro_put(&b, " ", 1);
            i += 2;
        } else if (n == '-') {
            macro_put(&b, "%20", 3);
            i += 2;
        } else {
            const char *close = memchr(s + i, '}', len - i);
            /* spf_macro_check() guarantees the '}' */
            macro_expand_one(&b, s + i + 2, (size_t)(close - (s + i + 2)), ctx);
            i = (size_t)(close - s) + 1;
        }
    }
    if (b.st != SPF_MACRO_OK) {
        free(b.p);
        return b.st;
    }
    *out = b.p;
    return SPF_MACRO_OK;
}

void spf_macro_truncate_domain(char *domain)
{
    size_t len = strlen(domain);
    char *p = domain;
    while (len > 253) {
        char *dot = memchr(p, '.', len);
        if (dot == NULL) {
            p += len - 253;
            len = 253;
            break;
        }
        len -= (size_t)(dot + 1 - p);
        p = dot + 1;
    }
    if (p != domain)
        memmove(domain, p, len + 1);
}
