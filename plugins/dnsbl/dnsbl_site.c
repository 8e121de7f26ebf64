/*
 * dnsbl_site - the site list parser, reply filters and query names (see
 * dnsbl_site.h for the syntax and the contract).
 *
 * The parser walks the text once with an index, never past len, and reads
 * numbers digit by digit with their bound checked on the way, so no input
 * can overflow or read beyond the buffer (the fuzz harness hands it exact
 * sized copies).  Entries go into a fixed-size array first, allocated only
 * when the whole text is good.
 */
#include "dnsbl_site.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sp {
    const char *s;
    size_t len, i;
    const char *why;
};

static bool sp_fail(struct sp *p, const char *why)
{
    if (!p->why)
        p->why = why;
    return false;
}

static bool is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool ldh(char c)
{
    return isalnum((unsigned char)c) || c == '-';
}

/* A name of LDH labels of 1..63 octets each, lower-cased into out. */
static bool domain_ok(const char *d, size_t n, size_t max, size_t min_labels, char *out)
{
    if (n == 0 || n > max)
        return false;
    size_t label = 0, labels = 1;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            labels++;
        } else if (ldh(c) || c == '_') {
            if (label == 0 && c == '-')
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        out[i] = (char)tolower((unsigned char)c);
    }
    if (label == 0 || d[n - 1] == '-')
        return false;
    out[n] = '\0';
    return labels >= min_labels;
}

/* A number 0..255 at the cursor. */
static bool octet_num(struct sp *p, unsigned *v)
{
    if (p->i >= p->len || !isdigit((unsigned char)p->s[p->i]))
        return sp_fail(p, "expected a number from 0 to 255");
    unsigned x = 0;
    while (p->i < p->len && isdigit((unsigned char)p->s[p->i])) {
        x = x * 10 + (unsigned)(p->s[p->i++] - '0');
        if (x > 255)
            return sp_fail(p, "an octet is more than 255");
    }
    *v = x;
    return true;
}

static void bit_set(uint8_t set[32], unsigned lo, unsigned hi)
{
    for (unsigned v = lo; v <= hi; v++)
        set[v / 8] |= (uint8_t)(1u << (v % 8));
}

/* "2", or "[2;4..11]" */
static bool octet_pattern(struct sp *p, uint8_t set[32])
{
    memset(set, 0, 32);
    if (p->i >= p->len || p->s[p->i] != '[') {
        unsigned v;
        if (!octet_num(p, &v))
            return false;
        bit_set(set, v, v);
        return true;
    }
    p->i++; /* [ */
    for (;;) {
        unsigned lo, hi;
        if (!octet_num(p, &lo))
            return false;
        hi = lo;
        if (p->i + 1 < p->len && p->s[p->i] == '.' && p->s[p->i + 1] == '.') {
            p->i += 2;
            if (!octet_num(p, &hi))
                return false;
            if (hi < lo)
                return sp_fail(p, "a range ends below its start");
        }
        bit_set(set, lo, hi);
        if (p->i < p->len && p->s[p->i] == ';') {
            p->i++;
            continue;
        }
        if (p->i < p->len && p->s[p->i] == ']') {
            p->i++;
            return true;
        }
        return sp_fail(p, "expected ';', '..' or ']' in a filter");
    }
}

static bool filter(struct sp *p, struct dnsbl_site *site)
{
    for (int k = 0; k < 4; k++) {
        if (k > 0) {
            if (p->i >= p->len || p->s[p->i] != '.')
                return sp_fail(p, "a filter has four octets: expected '.'");
            p->i++;
        }
        if (!octet_pattern(p, site->filter[k]))
            return false;
    }
    site->has_filter = true;
    return true;
}

/* [+-]digits[.digits], from -1000 to 1000 */
static bool weight(struct sp *p, double *w)
{
    char buf[32];
    size_t k = 0;
    if (p->i < p->len && (p->s[p->i] == '-' || p->s[p->i] == '+'))
        buf[k++] = p->s[p->i++];
    size_t digits = 0;
    bool dot = false;
    while (p->i < p->len && k + 1 < sizeof(buf) &&
           (isdigit((unsigned char)p->s[p->i]) || (p->s[p->i] == '.' && !dot))) {
        if (p->s[p->i] == '.')
            dot = true;
        else
            digits++;
        buf[k++] = p->s[p->i++];
    }
    buf[k] = '\0';
    if (digits == 0 || buf[k - 1] == '.')
        return sp_fail(p, "expected a weight such as 3, -2 or 0.5 after '*'");
    if (p->i < p->len && (isdigit((unsigned char)p->s[p->i]) || p->s[p->i] == '.'))
        return sp_fail(p, "weight too long");
    *w = strtod(buf, NULL);
    if (*w < -1000 || *w > 1000)
        return sp_fail(p, "a weight must be from -1000 to 1000");
    return true;
}

static bool site(struct sp *p, struct dnsbl_site *site)
{
    *site = (struct dnsbl_site){.weight = 1};
    size_t start = p->i;
    while (p->i < p->len && !is_sep(p->s[p->i]) && p->s[p->i] != '=' && p->s[p->i] != '*')
        p->i++;
    if (!domain_ok(p->s + start, p->i - start, DNSBL_DOMAIN_MAX, 1, site->domain)) {
        p->i = start;
        return sp_fail(p, "not a domain name (LDH labels of 1 to 63 octets, at most 180 in all)");
    }
    if (p->i < p->len && p->s[p->i] == '=') {
        p->i++;
        if (!filter(p, site))
            return false;
    }
    if (p->i < p->len && p->s[p->i] == '*') {
        p->i++;
        if (!weight(p, &site->weight))
            return false;
    }
    if (p->i < p->len && !is_sep(p->s[p->i]))
        return sp_fail(p, "expected ',' or a blank after a site");
    return true;
}

int dnsbl_sites_parse(const char *text, size_t len, struct dnsbl_sites *out, const char **why,
                      size_t *at)
{
    struct dnsbl_site tmp[DNSBL_MAX_SITES];
    struct sp p = {.s = text, .len = text ? len : 0};
    size_t n = 0;
    *out = (struct dnsbl_sites){0};
    for (;;) {
        while (p.i < p.len && is_sep(p.s[p.i]))
            p.i++;
        if (p.i >= p.len)
            break;
        if (n == DNSBL_MAX_SITES) {
            p.why = "more than 64 sites";
            break;
        }
        if (!site(&p, &tmp[n]))
            break;
        n++;
    }
    if (!p.why && n == 0)
        p.why = "no site";
    if (p.why) {
        *why = p.why;
        *at = p.i;
        return -1;
    }
    out->v = calloc(n, sizeof(*out->v));
    if (!out->v) {
        *why = "out of memory";
        *at = 0;
        return -1;
    }
    memcpy(out->v, tmp, n * sizeof(*tmp));
    out->n = n;
    return 0;
}

void dnsbl_sites_free(struct dnsbl_sites *s)
{
    free(s->v);
    *s = (struct dnsbl_sites){0};
}

bool dnsbl_site_match(const struct dnsbl_site *site, const uint8_t addr[4])
{
    if (!site->has_filter)
        return true;
    for (int k = 0; k < 4; k++)
        if (!(site->filter[k][addr[k] / 8] & (1u << (addr[k] % 8))))
            return false;
    return true;
}

bool dnsbl_ip_name(const char *addr, const char *domain, char out[DNSBL_NAME_MAX])
{
    unsigned char b[16];
    int n;
    if (!addr || !domain)
        return false;
    if (inet_pton(AF_INET, addr, b) == 1) {
        n = snprintf(out, DNSBL_NAME_MAX, "%u.%u.%u.%u.%s", b[3], b[2], b[1], b[0], domain);
        return n > 0 && n < DNSBL_NAME_MAX;
    }
    if (inet_pton(AF_INET6, addr, b) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, mapped, 12) == 0) {
        n = snprintf(out, DNSBL_NAME_MAX, "%u.%u.%u.%u.%s", b[15], b[14], b[13], b[12], domain);
        return n > 0 && n < DNSBL_NAME_MAX;
    }
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (int i = 15; i >= 0; i--) {
        out[k++] = hex[b[i] & 15];
        out[k++] = '.';
        out[k++] = hex[b[i] >> 4];
        out[k++] = '.';
    }
    n = snprintf(out + k, DNSBL_NAME_MAX - k, "%s", domain);
    return n > 0 && (size_t)n < DNSBL_NAME_MAX - k;
}

bool dnsbl_rhs_name(const char *name, const char *domain, char out[DNSBL_NAME_MAX])
{
    if (!name || !domain)
        return false;
    size_t n = strlen(name), d = strlen(domain);
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n + 1 + d > 253)
        return false;
    if (!domain_ok(name, n, 253, 2, out))
        return false;
    out[n] = '.';
    memcpy(out + n + 1, domain, d + 1);
    return true;
}

void dnsbl_symbol_name(const char *prefix, const char *domain, char *out, size_t out_size)
{
    size_t k = 0;
    if (out_size == 0)
        return;
    for (const char *p = prefix; *p && k + 1 < out_size; p++)
        out[k++] = *p;
    for (const char *p = domain; *p && k + 1 < out_size; p++)
        out[k++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    out[k] = '\0';
}

int dnsbl_route_parse(const char *text, char *zone, size_t zone_size, char *server,
                      size_t server_size, const char **why)
{
    const char *eq = text ? strchr(text, '=') : NULL;
    if (!eq) {
        *why = "want ZONE=ADDRESS[:PORT]";
        return -1;
    }
    size_t zl = (size_t)(eq - text);
    if (zl >= zone_size || !domain_ok(text, zl, DNSBL_DOMAIN_MAX, 1, zone)) {
        *why = "the zone is not a domain name";
        return -1;
    }
    const char *sv = eq + 1;
    size_t sl = strlen(sv);
    if (sl == 0 || sl >= server_size) {
        *why = "no nameserver address after '='";
        return -1;
    }
    for (size_t i = 0; i < sl; i++)
        if (!(isxdigit((unsigned char)sv[i]) || strchr(".:[]", sv[i]))) {
            *why = "the nameserver must be a numeric address, with :PORT if not 53";
            return -1;
        }
    memcpy(server, sv, sl + 1);
    return 0;
}
