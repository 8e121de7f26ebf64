/*
 * net - IPv4 and IPv6 addresses and CIDR ranges (see net.h for the model
 * and the syntax).
 *
 * Texts are copied to a bounded stack buffer before inet_pton(), which
 * wants a NUL-terminated string: nothing longer than an IPv6 address with
 * an embedded IPv4 one can be an address, so a longer text is refused
 * before any copy.
 */
#include "util/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 octets. */
#define NET_ADDR_TEXT_MAX 63

static const uint8_t net_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* The address of s[0..len) as parsed, mapped addresses left as IPv6. */
static bool net_pton(const char *s, size_t len, int *family, uint8_t out[16])
{
    char buf[NET_ADDR_TEXT_MAX + 1];
    if (len == 0 || len > NET_ADDR_TEXT_MAX || memchr(s, '\0', len) != NULL)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

bool net_addr_parse(const char *s, size_t len, struct net_addr *out)
{
    if (s == NULL || !net_pton(s, len, &out->family, out->bytes))
        return false;
    if (out->family == AF_INET6 && memcmp(out->bytes, net_mapped, 12) == 0) {
        out->family = AF_INET;
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
    }
    return true;
}

bool net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        out->family = AF_INET;
        memcpy(out->bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (memcmp(a, net_mapped, 12) == 0) {
        /* an IPv4 client on a dual-stack socket */
        out->family = AF_INET;
        memcpy(out->bytes, a + 12, 4);
    } else {
        out->family = AF_INET6;
        memcpy(out->bytes, a, 16);
    }
    return true;
}

int net_range_parse_text(const char *s, size_t len, unsigned flags, struct net_range *out,
                         const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    memset(out, 0, sizeof(*out));
    const char *slash = s != NULL ? memchr(s, '/', len) : NULL;
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    int family;
    uint8_t a[16];
    if (s == NULL || !net_pton(s, alen, &family, a)) {
        *why = NET_WHY_ADDRESS;
        return -1;
    }
    unsigned max = family == AF_INET ? 32 : 128;
    unsigned prefix = max;
    if (slash != NULL) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3) {
            *why = NET_WHY_PREFIX;
            return -1;
        }
        prefix = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') {
                *why = NET_WHY_PREFIX;
                return -1;
            }
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        if (prefix > max) {
            *why = family == AF_INET ? NET_WHY_OVER_32 : NET_WHY_OVER_128;
            return -1;
        }
    }
    if ((flags & NET_RANGE_EXACT) != 0) {
        for (unsigned i = 0; i < max / 8; i++) {
            unsigned bit0 = i * 8;
            uint8_t mask = prefix >= bit0 + 8 ? 0xff
                           : prefix <= bit0   ? 0x00
                                              : (uint8_t)(0xff << (8 - (prefix - bit0)));
            if ((a[i] & (uint8_t)~mask) != 0) {
                *why = NET_WHY_HOST_BITS;
                return -1;
            }
        }
    }
    if (family == AF_INET6 && prefix >= 96 && memcmp(a, net_mapped, 12) == 0) {
        /* mapped clients are matched as IPv4: so are mapped ranges */
        family = AF_INET;
        prefix -= 96;
        memmove(a, a + 12, 4);
        memset(a + 4, 0, 12);
    }
    out->family = family;
    out->prefix = prefix;
    memcpy(out->addr, a, 16);
    return 0;
}

bool net_range_parse(const char *text, struct net_range *out)
{
    return text != NULL &&
           net_range_parse_text(text, strlen(text), NET_RANGE_EXACT, out, NULL) == 0;
}

bool net_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool net_range_match(const struct net_range *r, const struct net_addr *a)
{
    return r->family == a->family && net_prefix_equal(r->addr, a->bytes, r->prefix);
}

bool net_ranges_match(const struct net_range *r, size_t n, const struct net_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (net_range_match(&r[i], a))
            return true;
    return false;
}

bool net_ranges_match_text(const struct net_range *r, size_t n, const char *text)
{
    struct net_addr a;
    return text != NULL && net_addr_parse(text, strlen(text), &a) && net_ranges_match(r, n, &a);
}

bool net_range_contains(const struct net_range *r, size_t n, const struct sockaddr *sa)
{
    struct net_addr a;
    return net_addr_from_sockaddr(sa, &a) && net_ranges_match(r, n, &a);
}
