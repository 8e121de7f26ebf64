/*
 * spf_header - the header fields the SPF plugin writes and reads, pure.
 *
 * Values are built token by token; a token that would pass column 78 goes
 * on a new line that starts with HTAB (the host sends "Name: value", so the
 * first line's column counts from the name).  A single token longer than a
 * line is kept whole: folding may only happen at white space.
 */
#include "spf_header.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

struct hdr {
    char *p;
    size_t len, cap;
    size_t col;
    bool oom;
};

static void hdr_raw(struct hdr *h, const char *s, size_t n)
{
    if (h->oom)
        return;
    if (h->len + n + 1 > h->cap && util_grow_first(&h->p, &h->cap, h->len + n + 1, 1, 256) != 0) {
        h->oom = true;
        return;
    }
    memcpy(h->p + h->len, s, n);
    h->len += n;
    h->p[h->len] = '\0';
    h->col += n;
}

/* A token, preceded by a space or by a fold when the line would get long. */
static void hdr_token(struct hdr *h, const char *s, size_t n)
{
    if (h->len > 0) {
        if (h->col + 1 + n > 78) {
            hdr_raw(h, "\r\n\t", 3);
            h->col = 8;
        } else {
            hdr_raw(h, " ", 1);
        }
    }
    hdr_raw(h, s, n);
}

static void hdr_tokenf(struct hdr *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void hdr_tokenf(struct hdr *h, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        h->oom = true;
        return;
    }
    hdr_token(h, s, (size_t)n);
    free(s);
}

/* For quoted-strings and comments: escapes special as '\c', non-visible as '?'. */
static char *hdr_escape(const char *s, const char *special, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n > max)
        n = max;
    char *out = malloc(2 * n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) {
            out[o++] = '?';
            continue;
        }
        if (strchr(special, c) != NULL)
            out[o++] = '\\';
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

static bool hdr_is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* dot-atom when it is one, quoted-string otherwise. */
static void hdr_kv(struct hdr *h, const char *key, const char *val, bool last)
{
    const char *v = val ? val : "";
    bool atom = v[0] != '\0' && v[0] != '.' && v[strlen(v) - 1] != '.' && strstr(v, "..") == NULL;
    for (const char *p = v; atom && *p; p++)
        atom = hdr_is_atext((unsigned char)*p);
    if (atom) {
        hdr_tokenf(h, "%s=%s%s", key, v, last ? "" : ";");
        return;
    }
    char *e = hdr_escape(v, "\"\\", 512);
    if (e == NULL) {
        h->oom = true;
        return;
    }
    hdr_tokenf(h, "%s=\"%s\"%s", key, e, last ? "" : ";");
    free(e);
}

/* A comment as several tokens so that it can fold between words. */
static void hdr_comment(struct hdr *h, const char *text)
{
    char *e = hdr_escape(text, "()\\", 600);
    if (e == NULL) {
        h->oom = true;
        return;
    }
    size_t n = strlen(e);
    size_t start = 0;
    bool first = true;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || e[i] == ' ') {
            if (i > start || i == n) {
                char *w = NULL;
                if (asprintf(&w, "%s%.*s%s", first ? "(" : "", (int)(i - start), e + start,
                             i == n ? ")" : "") < 0) {
                    h->oom = true;
                    break;
                }
                hdr_token(h, w, strlen(w));
                free(w);
                first = false;
            }
            start = i + 1;
        }
    }
    free(e);
}

char *spf_header_received(const struct spf_check_result *res, const char *client_ip,
                          const char *helo, const char *envelope_from, const char *receiver)
{
    struct hdr h = {.col = sizeof "Received-SPF: " - 1};
    const char *r = receiver ? receiver : "unknown";
    const char *who = res->sender ? res->sender : "";
    const char *ip = client_ip ? client_ip : "";
    char *c = NULL;
    int n;
    switch (res->result) {
    case SPFC_PASS:
        n = asprintf(&c, "%s: domain of %s designates %s as permitted sender", r, who, ip);
        break;
    case SPFC_FAIL:
        n = asprintf(&c, "%s: domain of %s does not designate %s as permitted sender", r, who, ip);
        break;
    case SPFC_SOFTFAIL:
        n = asprintf(&c, "%s: transitioning domain of %s does not designate %s as permitted sender",
                     r, who, ip);
        break;
    case SPFC_NEUTRAL:
        n = asprintf(&c, "%s: %s is neither permitted nor denied by domain of %s", r, ip, who);
        break;
    case SPFC_NONE:
        n = asprintf(&c, "%s: domain of %s does not publish an SPF policy", r, who);
        break;
    case SPFC_TEMPERROR:
        n = asprintf(&c, "%s: error in processing during lookup of %s", r, who);
        break;
    default:
        n = asprintf(&c, "%s: permanent error in processing domain of %s", r, who);
        break;
    }
    if (n < 0)
        return NULL;
    hdr_token(&h, spf_result_name(res->result), strlen(spf_result_name(res->result)));
    hdr_comment(&h, c);
    free(c);
    hdr_kv(&h, "client-ip", ip, false);
    hdr_kv(&h, "envelope-from", envelope_from, false);
    hdr_kv(&h, "helo", helo, false);
    hdr_kv(&h, "receiver", r, false);
    const char *detail = res->mechanism ? "mechanism" : res->problem ? "problem" : NULL;
    hdr_kv(&h, "identity", res->identity == SPF_ID_HELO ? "helo" : "mailfrom", detail == NULL);
    if (detail != NULL)
        hdr_kv(&h, detail, res->mechanism ? res->mechanism : res->problem, true);
    if (h.oom) {
        free(h.p);
        return NULL;
    }
    return h.p;
}

char *spf_header_auth_results(const char *authserv_id, const struct spf_check_result *const *res,
                              size_t n)
{
    struct hdr h = {.col = sizeof "Authentication-Results: " - 1};
    hdr_tokenf(&h, "%s%s", authserv_id, n > 0 ? ";" : "; none");
    for (size_t i = 0; i < n; i++) {
        const struct spf_check_result *r = res[i];
        hdr_tokenf(&h, "spf=%s", spf_result_name(r->result));
        if (r->problem != NULL && (r->result == SPFC_TEMPERROR || r->result == SPFC_PERMERROR)) {
            char *e = hdr_escape(r->problem, "\"\\", 200);
            if (e == NULL) {
                h.oom = true;
                break;
            }
            hdr_tokenf(&h, "reason=\"%s\"", e);
            free(e);
        }
        const char *ptype = r->identity == SPF_ID_HELO ? "smtp.helo" : "smtp.mailfrom";
        const char *v = r->identity == SPF_ID_HELO ? r->domain : r->sender;
        bool plain = v != NULL && v[0] != '\0';
        for (const char *p = v; plain && *p; p++)
            plain = hdr_is_atext((unsigned char)*p) || *p == '@';
        if (plain) {
            hdr_tokenf(&h, "%s=%s%s", ptype, v, i + 1 < n ? ";" : "");
        } else {
            char *e = hdr_escape(v ? v : "", "\"\\", 512);
            if (e == NULL) {
                h.oom = true;
                break;
            }
            hdr_tokenf(&h, "%s=\"%s\"%s", ptype, e, i + 1 < n ? ";" : "");
            free(e);
        }
    }
    if (h.oom) {
        free(h.p);
        return NULL;
    }
    return h.p;
}

/* Skips white space, CRLF and (nested) comments. */
static size_t hdr_skip_cfws(const char *v, size_t len, size_t i)
{
    for (;;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
            i++;
        if (i >= len || v[i] != '(')
            return i;
        unsigned depth = 0;
        for (; i < len; i++) {
            if (v[i] == '\\' && i + 1 < len) {
                i++;
                continue;
            }
            if (v[i] == '(')
                depth++;
            else if (v[i] == ')' && --depth == 0) {
                i++;
                break;
            }
        }
    }
}

bool spf_header_authserv_id(const char *value, size_t len, char *buf, size_t cap)
{
    size_t i = hdr_skip_cfws(value, len, 0);
    size_t o = 0;
    if (cap == 0 || i >= len)
        return false;
    if (value[i] == '"') {
        for (i++; i < len && value[i] != '"'; i++) {
            if (value[i] == '\\' && i + 1 < len)
                i++;
            if (o + 1 >= cap)
                return false;
            buf[o++] = value[i];
        }
        if (i >= len)
            return false;
    } else {
        for (; i < len; i++) {
            unsigned char c = (unsigned char)value[i];
            if (c <= ' ' || c == ';' || c == '(' || c == 0x7f)
                break;
            if (o + 1 >= cap)
                return false;
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return o > 0;
}
