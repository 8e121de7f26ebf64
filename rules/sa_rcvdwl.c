/*
 * sa_rcvdwl - the relay word of a welcomelist_from_rcvd entry against one
 * relay (see sa_rcvdwl.h), as WLBLEval.pm's _check_welcomelist_rcvd and
 * NetAddr::IP read it.
 */
#include "rules/sa_rcvdwl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* an address as NetAddr::IP holds it: 128 bits, IPv4 in the low 32 */
struct wide {
    uint8_t b[16];
    unsigned prefix;
};

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* /^\d+\.\d+\.\d+\.\d+\z/ */
static bool dotted_quad(const char *s, size_t n)
{
    size_t parts = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (run == 0)
                return false;
            parts++;
            run = 0;
        } else if (isdigit((unsigned char)s[i])) {
            run++;
        } else {
            return false;
        }
    }
    return run > 0 && parts == 3;
}

/* one to four decimal parts of 0..255, zeros filling the rest */
static bool parse_v4(const char *s, size_t n, uint8_t out[4])
{
    memset(out, 0, 4);
    size_t part = 0, i = 0;
    while (i < n) {
        size_t st = i;
        unsigned v = 0;
        while (i < n && isdigit((unsigned char)s[i]) && i - st < 4)
            v = v * 10 + (unsigned)(s[i++] - '0');
        size_t len = i - st;
        /* a leading zero is octal to NetAddr::IP: not read here */
        if (len == 0 || len > 3 || v > 255 || (len > 1 && s[st] == '0') || part == 4)
            return false;
        out[part++] = (uint8_t)v;
        if (i < n) {
            if (s[i] != '.' || i + 1 == n)
                return false;
            i++;
        }
    }
    return part > 0;
}

static bool parse_prefix(const char *s, size_t n, bool v4, unsigned *out)
{
    if (all_digits(s, n)) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
            v = v * 10 + (unsigned)(s[i] - '0');
            if (v > 128)
                return false;
        }
        if (v > (v4 ? 32u : 128u))
            return false;
        *out = v;
        return true;
    }
    uint8_t m[4];
    if (!v4 || !dotted_quad(s, n) || !parse_v4(s, n, m))
        return false;
    /* a netmask: ones, then zeros */
    uint32_t bits = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
    unsigned len = 0;
    while (len < 32 && (bits & (0x80000000u >> len)))
        len++;
    if (len < 32 && (bits << len) != 0)
        return false;
    *out = len;
    return true;
}

static bool parse_wide(const char *s, size_t n, struct wide *w)
{
    const char *slash = memchr(s, '/', n);
    size_t an = slash ? (size_t)(slash - s) : n;
    bool v6 = memchr(s, ':', an) != NULL;
    memset(w, 0, sizeof(*w));
    if (v6) {
        char buf[64];
        if (an == 0 || an >= sizeof(buf))
            return false;
        memcpy(buf, s, an);
        buf[an] = '\0';
        if (inet_pton(AF_INET6, buf, w->b) != 1)
            return false;
        w->prefix = 128;
    } else {
        if (!parse_v4(s, an, w->b + 12))
            return false;
        w->prefix = 32;
    }
    if (slash != NULL) {
        unsigned p;
        if (!parse_prefix(slash + 1, n - an - 1, !v6, &p))
            return false;
        w->prefix = p;
    }
    if (!v6)
        w->prefix += 96;
    return true;
}

static bool wide_contains(const struct wide *net, const struct wide *a)
{
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->b, a->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->b[full] & mask) == (a->b[full] & mask);
}

/* the entry's IP text (the brackets' content, a length after them
 * appended) against the relay's address */
static bool ip_matches(const char *wl, size_t wn, const char *ip)
{
    size_t in = strlen(ip);
    if (dotted_quad(wl, wn))
        return wn == in && memcmp(wl, ip, wn) == 0;
    if (strspn(wl, "0123456789.") >= wn && wn > 0) {
        /* s/\.*\z/./ and a prefix of the address */
        while (wn > 0 && wl[wn - 1] == '.')
            wn--;
        return in > wn && memcmp(wl, ip, wn) == 0 && ip[wn] == '.';
    }
    struct wide net, a;
    return parse_wide(ip, in, &a) && parse_wide(wl, wn, &net) && wide_contains(&net, &a);
}

bool sa_rcvdwl_relay_matches(const char *entry, const char *ip, const char *rdns)
{
    size_t n = strlen(entry);
    /* m{^ \[ (.*) \] ( / \d{1,3} )? \z}sx */
    if (n >= 2 && entry[0] == '[') {
        /* the brackets' content, and a length after them */
        size_t inner = 0, digits = 0;
        bool bracketed = false;
        if (entry[n - 1] == ']') {
            inner = n - 2;
            bracketed = true;
        } else {
            size_t d = n;
            while (d > 0 && isdigit((unsigned char)entry[d - 1]) && n - d < 4)
                d--;
            digits = n - d;
            if (digits >= 1 && digits <= 3 && d >= 3 && entry[d - 1] == '/' &&
                entry[d - 2] == ']') {
                inner = d - 3;
                bracketed = true;
            }
        }
        if (bracketed) {
            char wl[256];
            size_t wn = inner + (digits ? digits + 1 : 0);
            /* no address is written that long: NetAddr::IP reads none */
            if (ip == NULL || *ip == '\0' || wn >= sizeof(wl))
                return false;
            memcpy(wl, entry + 1, inner);
            if (digits)
                memcpy(wl + inner, entry + n - digits - 1, digits + 1);
            wl[wn] = '\0';
            return ip_matches(wl, wn, ip);
        }
    }
    /* /(?:^|\.)\Q$domain\E$/i over the rDNS */
    if (rdns == NULL)
        rdns = "";
    size_t rn = strlen(rdns);
    if (rn > 0 && rdns[rn - 1] == '\n' && !(n > 0 && entry[n - 1] == '\n'))
        rn--;
    if (rn < n || strncasecmp(rdns + rn - n, entry, n) != 0)
        return false;
    return rn == n || rdns[rn - n - 1] == '.';
}
